"""RetinaNet whose head is chosen from YAML (``MODEL.RETINANET.HEAD_NAME``).

Select it with ``META_ARCHITECTURE: "SelectableHeadRetinaNet"``.  With the default head name
(``RetinaNetHead``) it is exactly Detectron2's ``RetinaNet`` (``tests/modeling/test_parity.py``).
"""
from typing import List

from detectron2.layers import ShapeSpec
from detectron2.modeling import META_ARCH_REGISTRY, RetinaNet
from detectron2.modeling.meta_arch.retinanet import RetinaNetHead
from detectron2.utils.registry import Registry

from .backbone import apply_freeze_all

RETINANET_HEAD_REGISTRY = Registry("RETINANET_HEAD")
RETINANET_HEAD_REGISTRY.__doc__ = """
Heads of ``SelectableHeadRetinaNet``, selected by ``MODEL.RETINANET.HEAD_NAME``.

A registered class is called as ``cls(cfg, input_shape)`` (``input_shape``: list of ``ShapeSpec``
of ``MODEL.RETINANET.IN_FEATURES``); ``forward(features)`` returns ``(logits, bbox_reg)``, lists
over levels of ``Tensor[N, A*K, Hi, Wi]`` and ``Tensor[N, A*4, Hi, Wi]``.
"""
RETINANET_HEAD_REGISTRY.register(RetinaNetHead)  # Detectron2's stock head, already configurable


def build_retinanet_head(cfg, input_shape: List[ShapeSpec]):
    """Build the head named by ``MODEL.RETINANET.HEAD_NAME``."""
    return RETINANET_HEAD_REGISTRY.get(cfg.MODEL.RETINANET.HEAD_NAME)(cfg, input_shape)


@META_ARCH_REGISTRY.register()
class SelectableHeadRetinaNet(RetinaNet):
    """Detectron2's ``RetinaNet`` with the head taken from ``RETINANET_HEAD_REGISTRY``."""

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        apply_freeze_all(cfg, ret["backbone"])
        if cfg.MODEL.RETINANET.HEAD_NAME != RetinaNetHead.__name__:
            shapes = ret["backbone"].output_shape()
            ret["head"] = build_retinanet_head(cfg, [shapes[f] for f in cfg.MODEL.RETINANET.IN_FEATURES])
        return ret
