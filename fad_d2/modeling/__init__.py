"""Detectron2 modules of fad_d2; importing this package registers them."""
from . import backbone  # noqa: F401  (registration only)
from .fad_head import FADHead, FADRetinaNetHead
from .fad_mask_head import FADMaskHead
from .fad_module import FADModule
from .fcos import FCOS, FCOS_HEAD_REGISTRY, FCOSHead, build_fcos_head
from .heads import (
    FAD_HEADS,
    FADHeadSpec,
    build_cell_groups,
    fad_head_spec,
    head_genotype,
    replaceable_head,
    selected_fad_heads,
)
from .mask_scoring import MASKIOU_HEAD_REGISTRY, MaskIoUHead, MaskScoringROIHeads, build_maskiou_head
from .mobilenet_v2 import MobileNetV2
from .retinanet import RETINANET_HEAD_REGISTRY, SelectableHeadRetinaNet, build_retinanet_head

__all__ = [
    "FCOS", "FCOSHead", "FCOS_HEAD_REGISTRY", "build_fcos_head",
    "RETINANET_HEAD_REGISTRY", "SelectableHeadRetinaNet", "build_retinanet_head",
    "FADModule", "FADHead", "FADRetinaNetHead", "FADMaskHead",
    "FAD_HEADS", "FADHeadSpec", "build_cell_groups", "fad_head_spec", "head_genotype", "replaceable_head",
    "selected_fad_heads",
    "MASKIOU_HEAD_REGISTRY", "MaskIoUHead", "MaskScoringROIHeads", "build_maskiou_head",
    "MobileNetV2",
]
