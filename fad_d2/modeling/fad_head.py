"""FAD heads for the one-stage detectors: ``FADHead`` (FCOS) and ``FADRetinaNetHead``.

Both replace the two stock towers by :class:`FADModule` and keep the stock predictors (3×3 convs,
N(0, 0.01) init, classification bias from the prior probability; FCOS's box-regression bias from
``MODEL.FCOS.BBOX_REG_BIAS_INIT``, as for the stock head).  Select them from YAML with
``MODEL.FCOS.HEAD_NAME: FADHead`` or ``MODEL.RETINANET.HEAD_NAME: FADRetinaNetHead``; the module
is configured by ``MODEL.FAD.*`` (a search supernet without ``MODEL.FAD.GENOTYPE``).
"""
import math
from typing import List

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.anchor_generator import build_anchor_generator
from torch import nn

from ..errors import ConfigError
from .batch_threads import batch_thread_chunks, run_batch_threads
from .fad_module import FADModule
from .fcos import FCOS_HEAD_REGISTRY
from .heads import configured_space, fad_head_spec, head_genotype
from .retinanet import RETINANET_HEAD_REGISTRY


def fad_module_from_config(cfg, input_shape: List[ShapeSpec], head: str) -> FADModule:
    """Build the :class:`FADModule` of ``MODEL.FAD`` for FPN features of ``input_shape``, for
    FAD head class ``head``."""
    channels = {s.channels for s in input_shape}
    if len(channels) != 1:
        raise ValueError(f"FAD heads share weights over levels: all input channels must be equal, got {channels}")
    fad = cfg.MODEL.FAD
    return FADModule(
        channels=channels.pop(), inner_channels=fad.INNER_CHANNELS, num_cells=fad.NUM_CELLS,
        space=configured_space(fad), repshare=fad.REPSHARE,
        genotype=head_genotype(cfg, fad_head_spec(head)),
        num_nodes=fad.NUM_NODES, norm=fad.NORM, layout=fad.LAYOUT, box_first=fad.BOX_FIRST,
        cell=fad.CELL,
    )


class _FADDenseHead(nn.Module):
    """The searchable module + the stock predictors, per FPN level (shared weights).

    ``forward(features: List[Tensor[N, c, Hi, Wi]])`` returns ``(logits, bbox_reg[, ctrness])``:
    lists over levels of ``Tensor[N, A·K, Hi, Wi]``, ``Tensor[N, A·4, Hi, Wi]`` and, with
    ``centerness=True`` (FCOS: predicted from the box group), ``Tensor[N, 1, Hi, Wi]``.

    ``batch_threads`` (``MODEL.FAD.CPU_BATCH_THREADS``): on the CPU, the batch is cut into that
    many chunks computed in parallel threads (0: one per intra-op thread; at most N // 2; 1: none;
    never with BatchNorm in training);
    see :mod:`fad_d2.modeling.batch_threads`.
    """

    @configurable
    def __init__(self, *, fad_module: FADModule, channels: int, num_classes: int, num_anchors: int,
                 prior_prob: float, centerness: bool, bbox_reg_bias_init: float = 0.0,
                 batch_threads: int = 0):
        super().__init__()
        self.fad = fad_module
        self.batch_threads = batch_threads
        self.cls_score = nn.Conv2d(channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(channels, num_anchors * 4, 3, padding=1)
        self.ctrness = nn.Conv2d(channels, 1, 3, padding=1) if centerness else None
        for layer in (self.cls_score, self.bbox_pred, self.ctrness):
            if layer is not None:
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.constant_(layer.bias, 0.0)
        nn.init.constant_(self.cls_score.bias, -math.log((1 - prior_prob) / prior_prob))
        nn.init.constant_(self.bbox_pred.bias, bbox_reg_bias_init)

    def forward(self, features: List[torch.Tensor]):
        chunks = batch_thread_chunks(self.batch_threads, features[0], self)
        if chunks > 1:
            flat = run_batch_threads(self._levels, list(features), self, chunks)
        else:
            flat = self._levels(features)
        levels = len(features)
        return tuple(flat[k:k + levels] for k in range(0, len(flat), levels))

    def _levels(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        """The outputs of every level, kind by kind: logits of each level, then box
        regressions, then (FCOS) centerness."""
        logits, bbox_reg, ctrness = [], [], []
        for feature in features:
            box_feature, cls_feature = self.fad(feature)
            logits.append(self.cls_score(cls_feature))
            bbox_reg.append(self.bbox_pred(box_feature))
            if self.ctrness is not None:
                ctrness.append(self.ctrness(box_feature))
        return logits + bbox_reg + ctrness


@FCOS_HEAD_REGISTRY.register()
class FADHead(_FADDenseHead):
    """FAD head for FCOS (paper §3.1): boxes and centerness from the box group."""

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]):
        return {
            "fad_module": fad_module_from_config(cfg, input_shape, cls.__name__),
            "channels": input_shape[0].channels,
            "num_classes": cfg.MODEL.FCOS.NUM_CLASSES,
            "num_anchors": 1,
            "prior_prob": cfg.MODEL.FCOS.PRIOR_PROB,
            "centerness": True,
            "bbox_reg_bias_init": cfg.MODEL.FCOS.BBOX_REG_BIAS_INIT,
            "batch_threads": cfg.MODEL.FAD.CPU_BATCH_THREADS,
        }


@RETINANET_HEAD_REGISTRY.register()
class FADRetinaNetHead(_FADDenseHead):
    """FAD head for RetinaNet (paper Table 3, "Transferability"): A anchors per location."""

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]):
        num_anchors = set(build_anchor_generator(cfg, input_shape).num_cell_anchors)
        if len(num_anchors) != 1:
            raise ConfigError(f"MODEL.ANCHOR_GENERATOR: FAD needs the same anchors per level, got {num_anchors}")
        return {
            "fad_module": fad_module_from_config(cfg, input_shape, cls.__name__),
            "channels": input_shape[0].channels,
            "num_classes": cfg.MODEL.RETINANET.NUM_CLASSES,
            "num_anchors": num_anchors.pop(),
            "prior_prob": cfg.MODEL.RETINANET.PRIOR_PROB,
            "centerness": False,
            "batch_threads": cfg.MODEL.FAD.CPU_BATCH_THREADS,
        }
