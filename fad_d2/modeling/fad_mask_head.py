"""Mask FAD (paper §3.1, appendix 6.2): one group of cells replaces Mask R-CNN's 4 mask convs.

``MODEL.ROI_MASK_HEAD.NAME: FADMaskHead``, configured by ``MODEL.FAD_MASK.*``; the genotype has a
single group named ``"mask"`` (see ``heads.FAD_HEADS``).  After the cells: the usual 2×2 deconv (+ReLU) and 1×1 predictor.
"""
from detectron2.config import configurable
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec
from detectron2.modeling.roi_heads.mask_head import ROI_MASK_HEAD_REGISTRY, BaseMaskRCNNHead
from fvcore.nn import weight_init
from torch import nn

from ..space import CellGroup
from .batch_threads import batch_thread_chunks, run_batch_threads
from .heads import build_cell_groups, configured_space, fad_head_spec, head_genotype


@ROI_MASK_HEAD_REGISTRY.register()
class FADMaskHead(BaseMaskRCNNHead):
    """RoI features Tensor[R, c, 14, 14] → cells → deconv → mask logits Tensor[R, K, 28, 28].

    ``batch_threads`` (``MODEL.FAD_MASK.CPU_BATCH_THREADS``): on the CPU, the R RoIs are cut
    into that many chunks computed in parallel threads (:mod:`fad_d2.modeling.batch_threads`).
    """

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, cells: CellGroup, num_classes: int, batch_threads: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        c = input_shape.channels
        self.batch_threads = batch_threads
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
        spec = fad_head_spec(cls.__name__)
        (cells,) = build_cell_groups(
            names=spec.groups, channels=input_shape.channels, inner_channels=[fad.INNER_CHANNELS],
            num_cells=[fad.NUM_CELLS], space=configured_space(fad), repshare=fad.REPSHARE,
            genotype=head_genotype(cfg, spec), num_nodes=fad.NUM_NODES, norm=fad.NORM,
            cell=fad.CELL,
        )
        ret.update(
            input_shape=input_shape,
            cells=cells,
            num_classes=1 if cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK else cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            batch_threads=fad.CPU_BATCH_THREADS,
        )
        return ret

    def layers(self, x):
        chunks = batch_thread_chunks(self.batch_threads, x, self)
        if chunks > 1:
            return run_batch_threads(lambda xs: [self._mask_logits(xs[0])], [x], self, chunks)[0]
        return self._mask_logits(x)

    def _mask_logits(self, x):
        return self.predictor(self.deconv_relu(self.deconv(self.cells(x))))
