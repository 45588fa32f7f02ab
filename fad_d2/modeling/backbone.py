"""Backbone builders that Detectron2's YAML registry lacks."""
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone import FPN, build_resnet_backbone
from detectron2.modeling.backbone.fpn import LastLevelP6P7


def fcos_fpn(cfg, bottom_up: Backbone) -> FPN:
    """``MODEL.FPN`` over ``bottom_up`` with P6/P7 computed from P5 (FCOS, arXiv:2006.09214 §2.2),
    as in Detectron2's ``configs/common/models/fcos.py``; RetinaNet's builder uses C5 instead."""
    out_channels = cfg.MODEL.FPN.OUT_CHANNELS
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=out_channels,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelP6P7(out_channels, out_channels, in_feature="p5"),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


@BACKBONE_REGISTRY.register()
def build_fcos_resnet_fpn_backbone(cfg, input_shape: ShapeSpec):
    """ResNet-FPN with P6/P7 from P5 (:func:`fcos_fpn`)."""
    return fcos_fpn(cfg, build_resnet_backbone(cfg, input_shape))


def apply_freeze_all(cfg, backbone):
    """Freeze every weight of ``backbone`` (bottom-up and FPN) when ``MODEL.BACKBONE.FREEZE_ALL``.

    Its forward then records no autograd graph, so heads train on fixed features at the cost
    of the head alone.  Returns ``backbone``.
    """
    if cfg.MODEL.BACKBONE.FREEZE_ALL:
        backbone.requires_grad_(False)
    return backbone
