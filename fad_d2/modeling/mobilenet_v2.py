"""MobileNetV2 (Sandler et al., CVPR 2018) as a Detectron2 backbone, for FCOS with MobileNetV2
(paper Table 3).

The layers are torchvision's ``mobilenet_v2(weights=None).features`` without the final 1×1 conv
to 1280 channels; the state-dict keys stay torchvision's (``features.<i>.…``), so an ImageNet
checkpoint converts by a prefix (``scripts/convert_mobilenet_v2_to_d2.py``).  Stages split at the
stride-2 blocks:

=========  ===============  ======  ========================
feature    torchvision      stride  channels (width 1.0)
=========  ===============  ======  ========================
``stem``   features[0:2]         2  16
``c2``     features[2:4]         4  24
``c3``     features[4:7]         8  32
``c4``     features[7:14]       16  96
``c5``     features[14:18]      32  320
=========  ===============  ======  ========================
"""
from typing import Dict, Sequence

import torchvision
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import Tensor, nn

from .backbone import fcos_fpn

STAGE_NAMES = ("stem", "c2", "c3", "c4", "c5")
NORMS = ("FrozenBN", "BN", "SyncBN")


class MobileNetV2(Backbone):
    """torchvision's MobileNetV2 feature layers: Tensor[N, 3, H, W] → {name: Tensor[N, Cₛ, H/s, W/s]}
    for the stages in ``out_features`` (names of the module docstring's table).

    Args:
        out_features: stages to return, e.g. ``("c3", "c4", "c5")`` for an FPN.
        width_mult: torchvision's width multiplier (1.0 in the paper).
        norm: ``"FrozenBN"`` (Detectron2's default for detection backbones), ``"BN"`` or
            ``"SyncBN"``.
        freeze_at: the first ``freeze_at`` stages (1 = ``stem``) get no gradient and frozen BN.
    """

    def __init__(self, out_features: Sequence[str] = ("c3", "c4", "c5"), width_mult: float = 1.0,
                 norm: str = "FrozenBN", freeze_at: int = 0):
        super().__init__()
        unknown = [f for f in out_features if f not in STAGE_NAMES]
        if unknown or not out_features:
            raise ValueError(f"out_features {list(out_features)}: choose among {STAGE_NAMES}")
        if norm not in NORMS:
            raise ValueError(f"norm {norm!r} is not one of {NORMS}")
        layers = torchvision.models.mobilenet_v2(weights=None, width_mult=width_mult).features[:-1]
        starts = [i for i, layer in enumerate(layers) if i == 0 or getattr(layer, "stride", 1) == 2]
        if len(starts) != len(STAGE_NAMES):
            raise ValueError(f"expected {len(STAGE_NAMES)} stride-2 stages, found {len(starts)}")
        # stage k ends before stage k + 1 starts; its stride is 2^(k+1)
        self._stage_ends = dict(zip(STAGE_NAMES, [i - 1 for i in starts[1:]] + [len(layers) - 1]))
        self.features = layers
        if norm == "FrozenBN":
            self.features = FrozenBatchNorm2d.convert_frozen_batchnorm(self.features)
        elif norm == "SyncBN":
            self.features = nn.SyncBatchNorm.convert_sync_batchnorm(self.features)
        self._out_features = list(out_features)
        self._out_feature_strides = {n: 2 ** (k + 1) for k, n in enumerate(STAGE_NAMES)}
        self._out_feature_channels = {n: layers[end].out_channels for n, end in self._stage_ends.items()}
        self._last = max(self._stage_ends[f] for f in out_features)
        if freeze_at > 0:
            self._freeze(self._stage_ends[STAGE_NAMES[freeze_at - 1]] + 1)

    def _freeze(self, num_layers: int):
        for i in range(num_layers):
            for p in self.features[i].parameters():
                p.requires_grad = False
            self.features[i] = FrozenBatchNorm2d.convert_frozen_batchnorm(self.features[i])

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        outputs = {}
        ends = {end: name for name, end in self._stage_ends.items() if name in self._out_features}
        for i, layer in enumerate(self.features[: self._last + 1]):
            x = layer(x)
            if i in ends:
                outputs[ends[i]] = x
        return outputs

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name],
                            stride=self._out_feature_strides[name])
            for name in self._out_features
        }


@BACKBONE_REGISTRY.register()
def build_mobilenet_v2_backbone(cfg, input_shape: ShapeSpec):
    """MobileNetV2 of ``MODEL.MOBILENET_V2`` (stages frozen by ``MODEL.BACKBONE.FREEZE_AT``)."""
    if input_shape.channels != 3:
        raise ValueError(f"MobileNetV2 takes 3-channel images, got {input_shape.channels}")
    mnv2 = cfg.MODEL.MOBILENET_V2
    return MobileNetV2(mnv2.OUT_FEATURES, mnv2.WIDTH_MULT, mnv2.NORM, cfg.MODEL.BACKBONE.FREEZE_AT)


@BACKBONE_REGISTRY.register()
def build_fcos_mobilenet_v2_fpn_backbone(cfg, input_shape: ShapeSpec):
    """MobileNetV2-FPN over ``c3``/``c4``/``c5`` (strides 8/16/32: 32, 96, 320 channels) with
    P6/P7 from P5, the FCOS MobileNetV2 setting of paper Table 3."""
    return fcos_fpn(cfg, build_mobilenet_v2_backbone(cfg, input_shape))
