"""FCOS configurable from YAML (``META_ARCHITECTURE: "FCOS"``) with a registry of heads.

Detectron2 ships ``detectron2.modeling.meta_arch.fcos.FCOS`` for its Python (lazy) configs only.
The classes here add ``from_config`` (and float32 losses under mixed precision): modules,
losses and inference are Detectron2's own, which ``tests/modeling/test_parity.py`` checks.
"""
from typing import List

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.meta_arch import fcos as d2_fcos
from detectron2.utils.registry import Registry
from torch import nn

from ..errors import ConfigError
from .backbone import apply_freeze_all

FCOS_HEAD_REGISTRY = Registry("FCOS_HEAD")
FCOS_HEAD_REGISTRY.__doc__ = """
Heads of the YAML FCOS, selected by ``MODEL.FCOS.HEAD_NAME``.

A registered class is called as ``cls(cfg, input_shape)`` with ``input_shape`` the list of
``ShapeSpec`` of ``MODEL.FCOS.IN_FEATURES``; its ``forward(features: List[Tensor[N, C, Hi, Wi]])``
returns ``(logits, bbox_reg, centerness)``, lists over levels of ``Tensor[N, K, Hi, Wi]``,
``Tensor[N, 4, Hi, Wi]`` and ``Tensor[N, 1, Hi, Wi]``.
"""


def build_fcos_head(cfg, input_shape: List[ShapeSpec]):
    """Build the head named by ``MODEL.FCOS.HEAD_NAME``."""
    return FCOS_HEAD_REGISTRY.get(cfg.MODEL.FCOS.HEAD_NAME)(cfg, input_shape)


@FCOS_HEAD_REGISTRY.register()
class FCOSHead(d2_fcos.FCOSHead):
    """Detectron2's stock FCOS head (two towers of ``NUM_CONVS`` 3×3 convs), built from YAML."""

    @configurable
    def __init__(self, *, bbox_reg_bias_init: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        nn.init.constant_(self.bbox_pred.bias, bbox_reg_bias_init)

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]):
        return {
            "bbox_reg_bias_init": cfg.MODEL.FCOS.BBOX_REG_BIAS_INIT,
            "input_shape": input_shape,
            "conv_dims": [input_shape[0].channels] * cfg.MODEL.FCOS.NUM_CONVS,
            "num_classes": cfg.MODEL.FCOS.NUM_CLASSES,
            "norm": cfg.MODEL.FCOS.NORM,
            "prior_prob": cfg.MODEL.FCOS.PRIOR_PROB,
        }


@META_ARCH_REGISTRY.register()
class FCOS(d2_fcos.FCOS):
    """Detectron2's ``FCOS`` meta-architecture with a ``from_config`` reading ``MODEL.FCOS``."""

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def forward_training(self, images, features, predictions, gt_instances):
        """Detectron2's, with the losses computed in float32 outside autocast: under mixed
        precision the head predicts in half precision, and Detectron2's GIoU box loss (fvcore's)
        cannot write its float32 values into a tensor of the predictions' dtype.  Without
        autocast the predictions are float32 already and nothing changes."""
        with torch.autocast(images.tensor.device.type, enabled=False):
            predictions = [[p.float() for p in per_level] for per_level in predictions]
            return super().forward_training(images, features, predictions, gt_instances)

    @classmethod
    def from_config(cls, cfg):
        backbone = apply_freeze_all(cfg, build_backbone(cfg))
        backbone_shape = backbone.output_shape()
        fcos = cfg.MODEL.FCOS
        missing = [f for f in fcos.IN_FEATURES if f not in backbone_shape]
        if missing:
            raise ConfigError(
                f"MODEL.FCOS.IN_FEATURES: {missing} not produced by the backbone "
                f"(it outputs {sorted(backbone_shape)})"
            )
        return {
            "backbone": backbone,
            "head": build_fcos_head(cfg, [backbone_shape[f] for f in fcos.IN_FEATURES]),
            "head_in_features": fcos.IN_FEATURES,
            "num_classes": fcos.NUM_CLASSES,
            "center_sampling_radius": fcos.CENTER_SAMPLING_RADIUS,
            "focal_loss_alpha": fcos.FOCAL_LOSS_ALPHA,
            "focal_loss_gamma": fcos.FOCAL_LOSS_GAMMA,
            "test_score_thresh": fcos.SCORE_THRESH_TEST,
            "test_topk_candidates": fcos.TOPK_CANDIDATES_TEST,
            "test_nms_thresh": fcos.NMS_THRESH_TEST,
            "max_detections_per_image": fcos.DETECTIONS_PER_IMAGE,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }
