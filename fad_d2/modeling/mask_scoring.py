"""Mask Scoring R-CNN (Huang et al., CVPR 2019), for the paper's Table 5 ("MS FAD": the searched
mask head inside MS R-CNN): a MaskIoU head that regresses the IoU of each predicted mask with its
ground truth, and ROI heads that train it and rescore masks at inference.

* MaskIoU head input: the mask branch's RoI feature Tensor[R, C, S, S] (S = 14) concatenated with
  the predicted mask of the RoI's class, Tensor[R, 1, 2S, 2S] max-pooled 2×2 to S×S.
* Target: IoU of the binarised (> 0.5) predicted mask with the matched ground truth, whose area is
  the whole object's (not only the part inside the proposal), in the 2S×2S grid of the proposal.
* Loss: L2 between the predicted IoU of the ground-truth class and the target, positive RoIs only.
* Inference: ``mask_scores = scores × predicted IoU`` of the predicted class; boxes keep ``scores``
  (``fad_d2.evaluation.MaskScoringCOCOEvaluator`` ranks ``segm`` results by ``mask_scores``).

Select with ``MODEL.ROI_HEADS.NAME: MaskScoringROIHeads``; the MaskIoU head is configured by
``MODEL.MASKIOU_HEAD.*``.  Any mask head with a ``layers(x)`` method (Detectron2's
``BaseMaskRCNNHead`` subclasses: the stock head, ``FADMaskHead``) works.
"""
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, cat
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads, select_foreground_proposals
from detectron2.modeling.roi_heads.mask_head import mask_rcnn_inference, mask_rcnn_loss
from detectron2.structures import Instances, PolygonMasks
from detectron2.utils.registry import Registry
from fvcore.nn import weight_init
from torch import Tensor, nn

MASKIOU_HEAD_REGISTRY = Registry("MASKIOU_HEAD")
MASKIOU_HEAD_REGISTRY.__doc__ = """
MaskIoU heads of Mask Scoring R-CNN, selected by ``MODEL.MASKIOU_HEAD.NAME``.

A registered class is called as ``cls(cfg, input_shape)`` with ``input_shape`` the ``ShapeSpec``
(channels C, height = width = S) of the mask branch's RoI features; its
``forward(features: Tensor[R, C, S, S], mask_probs: Tensor[R, 1, 2S, 2S])`` returns the
predicted MaskIoU per class, Tensor[R, K].
"""


def build_maskiou_head(cfg, input_shape: ShapeSpec) -> nn.Module:
    """Build the MaskIoU head named by ``MODEL.MASKIOU_HEAD.NAME``."""
    return MASKIOU_HEAD_REGISTRY.get(cfg.MODEL.MASKIOU_HEAD.NAME)(cfg, input_shape)


@MASKIOU_HEAD_REGISTRY.register()
class MaskIoUHead(nn.Module):
    """The MaskIoU head of MS R-CNN: concat(RoI feature, max-pooled mask) → 3×3 convs (ReLU, the
    last with stride 2) → FCs (ReLU) → one IoU per class.

    (Tensor[R, C, S, S], Tensor[R, 1, 2S, 2S]) → Tensor[R, K]; MS R-CNN: 4 convs of 256, FCs
    1024, 1024 (16.3 M parameters with C = 256, S = 14, K = 80).
    """

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, conv_dims: Sequence[int], fc_dims: Sequence[int],
                 num_classes: int):
        super().__init__()
        if not conv_dims or not fc_dims:
            raise ValueError("MaskIoUHead needs at least one conv and one FC layer")
        channels, size = input_shape.channels + 1, input_shape.height
        convs = []
        for k, dim in enumerate(conv_dims):
            stride = 2 if k == len(conv_dims) - 1 else 1
            convs += [Conv2d(channels, dim, 3, stride=stride, padding=1), nn.ReLU()]
            channels = dim
        self.convs = nn.Sequential(*convs)
        size = (size + 1) // 2
        fcs = []
        features = channels * size * size
        for dim in fc_dims:
            fcs += [nn.Linear(features, dim), nn.ReLU()]
            features = dim
        self.fcs = nn.Sequential(nn.Flatten(), *fcs)
        self.predictor = nn.Linear(features, num_classes)
        for layer in self.convs:
            if isinstance(layer, Conv2d):
                weight_init.c2_msra_fill(layer)
        for layer in self.fcs:
            if isinstance(layer, nn.Linear):
                weight_init.c2_xavier_fill(layer)
        nn.init.normal_(self.predictor.weight, std=0.01)
        nn.init.constant_(self.predictor.bias, 0.0)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec):
        head = cfg.MODEL.MASKIOU_HEAD
        return {"input_shape": input_shape, "conv_dims": head.CONV_DIMS, "fc_dims": head.FC_DIMS,
                "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES}

    def forward(self, features: Tensor, mask_probs: Tensor) -> Tensor:
        x = torch.cat([features, F.max_pool2d(mask_probs, kernel_size=2, stride=2)], dim=1)
        return self.predictor(self.fcs(self.convs(x)))


def _select_class(mask_logits: Tensor, classes: Tensor) -> Tensor:
    """Tensor[R, K or 1, M, M] logits → Tensor[R, 1, M, M] probabilities of each RoI's class."""
    if mask_logits.shape[1] > 1:
        mask_logits = mask_logits[torch.arange(len(classes), device=classes.device), classes][:, None]
    return mask_logits.sigmoid()


def _mask_areas(masks) -> Tensor:
    """Area in image pixels of every ground-truth mask (PolygonMasks or BitMasks): Tensor[G]."""
    if isinstance(masks, PolygonMasks):
        return masks.area().float()
    return masks.tensor.flatten(1).sum(1).float()


def maskiou_targets(mask_probs: Tensor, instances: List[Instances]) -> Tensor:
    """MaskIoU targets of the positive RoIs: Tensor[R, M, M] mask probabilities → Tensor[R].

    IoU of ``mask_probs > 0.5`` with the ground-truth mask cropped to the proposal (M×M, as the
    mask loss's target), the ground-truth area being the whole object's scaled to the M×M grid:
    area · M² / proposal area (at least the area inside the proposal)."""
    size = mask_probs.shape[-1]
    crops, full_areas = [], []
    for inst in instances:
        if len(inst) == 0:
            continue
        boxes = inst.proposal_boxes
        crops.append(inst.gt_masks.crop_and_resize(boxes.tensor, size).to(mask_probs.device))
        scale = size * size / boxes.area().clamp(min=1.0)
        full_areas.append(_mask_areas(inst.gt_masks).to(scale.device) * scale)
    if not crops:
        return mask_probs.new_zeros(0)
    target = cat(crops).float()
    pred = (mask_probs > 0.5).float()
    overlap = (pred * target).sum((1, 2))
    full = torch.maximum(cat(full_areas).to(mask_probs.device), target.sum((1, 2)))
    return overlap / (pred.sum((1, 2)) + full - overlap).clamp(min=1.0)


@ROI_HEADS_REGISTRY.register()
class MaskScoringROIHeads(StandardROIHeads):
    """``StandardROIHeads`` with a MaskIoU head on the mask branch (Mask Scoring R-CNN).

    Training adds ``loss_maskiou`` (L2 on positive RoIs, ``MODEL.MASKIOU_HEAD.LOSS_WEIGHT``);
    inference adds ``mask_scores`` (Tensor[D]) = ``scores`` × the predicted MaskIoU.  The mask
    fed to the MaskIoU head is detached: its loss trains the MaskIoU head and the features, not
    the mask head.
    """

    @configurable
    def __init__(self, *, maskiou_head: nn.Module, maskiou_loss_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not self.mask_on or self.mask_pooler is None:
            raise ValueError("MaskScoringROIHeads needs a mask branch with RoI pooling (MASK_ON)")
        self.maskiou_head = maskiou_head
        self.maskiou_loss_weight = maskiou_loss_weight

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        ret = super().from_config(cfg, input_shape)
        resolution = cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION
        channels = input_shape[cfg.MODEL.ROI_HEADS.IN_FEATURES[0]].channels
        ret["maskiou_head"] = build_maskiou_head(
            cfg, ShapeSpec(channels=channels, height=resolution, width=resolution))
        ret["maskiou_loss_weight"] = cfg.MODEL.MASKIOU_HEAD.LOSS_WEIGHT
        return ret

    def _forward_mask(self, features: Dict[str, Tensor], instances: List[Instances]):
        """Training: {"loss_mask", "loss_maskiou"}; inference: ``instances`` with ``pred_masks``
        (Tensor[D, 1, M, M] probabilities) and ``mask_scores`` (Tensor[D])."""
        if self.training:
            instances, _ = select_foreground_proposals(instances, self.num_classes)
        boxes = [x.proposal_boxes if self.training else x.pred_boxes for x in instances]
        roi_features = self.mask_pooler([features[f] for f in self.mask_in_features], boxes)
        mask_logits = self.mask_head.layers(roi_features)
        if self.training:
            losses = {"loss_mask": mask_rcnn_loss(mask_logits, instances, self.mask_head.vis_period)
                      * self.mask_head.loss_weight}
            classes = cat([x.gt_classes for x in instances])
            mask_probs = _select_class(mask_logits, classes).detach()
            predicted = self.maskiou_head(roi_features, mask_probs)
            losses["loss_maskiou"] = self.maskiou_loss_weight * maskiou_loss(
                predicted, classes, maskiou_targets(mask_probs[:, 0], instances))
            return losses
        mask_rcnn_inference(mask_logits, instances)
        classes = cat([x.pred_classes for x in instances])
        predicted = self.maskiou_head(roi_features, cat([x.pred_masks for x in instances]))
        ious = predicted[torch.arange(len(classes), device=classes.device), classes]
        for x, iou in zip(instances, ious.split([len(x) for x in instances])):
            x.mask_scores = x.scores * iou
        return instances


def maskiou_loss(predicted: Tensor, classes: Tensor, targets: Tensor) -> Tensor:
    """Mean L2 loss between Tensor[R, K]'s column of each RoI's class and Tensor[R] targets."""
    if predicted.shape[0] == 0:
        return predicted.sum() * 0.0
    chosen = predicted[torch.arange(len(classes), device=classes.device), classes]
    return F.mse_loss(chosen, targets, reduction="mean")
