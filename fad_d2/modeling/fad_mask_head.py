"""Mask FAD (paper §3.1, appendix 6.2): one group of cells replaces Mask R-CNN's 4 mask convs.

``MODEL.ROI_MASK_HEAD.NAME: FADMaskHead``, configured by ``MODEL.FAD_MASK.*``; the genotype has a
single group named ``"mask"``.  After the cells: the usual 2×2 deconv (+ReLU) and 1×1 predictor.
"""
from detectron2.config import configurable
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec
from detectron2.modeling.roi_heads.mask_head import ROI_MASK_HEAD_REGISTRY, BaseMaskRCNNHead
from fvcore.nn import weight_init
from torch import nn

from ..space import CellGroup, get_search_space
from .fad_module import load_head_genotype

MASK_GROUP = "mask"


@ROI_MASK_HEAD_REGISTRY.register()
class FADMaskHead(BaseMaskRCNNHead):
    """RoI features Tensor[R, c, 14, 14] → cells → deconv → mask logits Tensor[R, K, 28, 28]."""

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, cells: CellGroup, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        c = input_shape.channels
        self.cells = cells
        self.deconv = ConvTranspose2d(c, c, kernel_size=2, stride=2)
        self.deconv_relu = nn.ReLU()
        self.predictor = Conv2d(c, num_classes, kernel_size=1)
        weight_init.c2_msra_fill(self.deconv)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.constant_(self.predictor.bias, 0.0)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec):
        ret = super().from_config(cfg, input_shape)
        fad = cfg.MODEL.FAD_MASK
        space = get_search_space(fad.SEARCH_SPACE).with_options(
            dilated_bias=fad.DILATED_BIAS, unshared_decouple=fad.UNSHARED_DECOUPLE)
        genotype = load_head_genotype(fad.GENOTYPE, space, (MASK_GROUP,), "MODEL.FAD_MASK.GENOTYPE")
        ret.update(
            input_shape=input_shape,
            cells=CellGroup(
                input_shape.channels, fad.INNER_CHANNELS, 1 if genotype is None else fad.NUM_CELLS,
                space=space, repshare=fad.REPSHARE,
                genotype=None if genotype is None else genotype.group(MASK_GROUP),
                num_nodes=fad.NUM_NODES, norm=fad.NORM, name=MASK_GROUP,
            ),
            num_classes=1 if cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK else cfg.MODEL.ROI_HEADS.NUM_CLASSES,
        )
        return ret

    def layers(self, x):
        return self.predictor(self.deconv_relu(self.deconv(self.cells(x))))
