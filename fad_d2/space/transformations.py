"""Candidate transformations of the FAD transformation block Tᵢⱼ (paper §3.1–3.2, Fig. 2).

Every transformation maps Tensor[N, c′, H, W] → Tensor[N, c′, H, W] (same spatial size).
Two streams of 3×3 layers, each layer = conv(s) → norm (GroupNorm(32)) → ReLU:

* ``std``: a standard 3×3 conv (with bias);
* ``sep``: a depthwise 3×3 conv followed by a pointwise 1×1 conv (one pair per layer);
* a dilated layer, in *both* streams: depthwise dilated 3×3 (rate r) + pointwise 1×1.

Large filters are decomposed into stacks of 3×3 layers (paper §3.1, Fig. 2):

====  ============  =======================  ====
 t    name suffix   layers                    RF
====  ============  =======================  ====
 t1   ``3x3``       conv                       3
 t2   ``5x5``       conv, conv                 5
 t3   ``7x7``       conv, conv, conv           7
 t4   ``3x3_dil2``  conv, dil r=2              7
 t5   ``5x5_dil2``  conv, conv, dil r=2        9
 t6   ``3x3_dil3``  conv, dil r=3              9
====  ============  =======================  ====

with the prefix ``std_`` or ``sep_`` naming the stream of the ``conv`` layers.  The ``conv``
layers of t1…t6 are the stem p1 → p2 → p3 that RepShare shares (see ``mixed_op.py``).

Decoupling H (paper §3.2, "Decoupling with extra functions"): 1×1 conv + ReLU applied to the
outputs of t1 and t2, whose outputs *are* the shared representations p1 and p2.  A standalone
transformation carries H only when built with ``decouple=True``; derived architectures are
built without it by default (H is a search-time device), and with it when they inherit the
weights of a RepShare op searched in a decoupling space (``extract_transformation``), so that
the derived op computes exactly what the search computed.

``dilated_bias=True`` gives the dilated depthwise convs a bias, as in the authors' released
operators (their per-transformation parameter counts at c′ = 96, e.g. 93,696 for ``std_3x3_dil2``,
are then met exactly).  The default has none: the pointwise 1×1 conv that follows carries the
bias, so both compute the same functions and differ by c′ parameters per dilated layer.

The DARTS operations (Table 2's "DARTS" row; stream ``darts``) are provided for the DARTS search
space: 3×3 max / avg pooling, skip, separable 3×3 / 5×5 (doubled, as in DARTS) and dilated
separable 3×3 / 5×5 (r = 2).  They use the same conv-norm-ReLU layer as everything else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from torch import Tensor, nn

__all__ = [
    "NONE",
    "GN_GROUPS",
    "gn_groups",
    "TransformationSpec",
    "TRANSFORMATIONS",
    "ConvNormAct",
    "Transformation",
    "get_norm",
    "conv_norm_act",
    "stream_layer",
    "build_stem",
    "build_decoupling",
    "build_transformation",
    "copy_module_weights",
]

NONE = "none"
"""The zero choice of every edge (contributes 0; never part of a derived architecture)."""

GN_GROUPS = 32
"""GroupNorm group count used by ``norm="GN"`` (paper: GroupNorm after every conv)."""
NORMS = ("GN", "BN", "")  # the normalisations get_norm builds, besides "GN<k>" (k groups)

STREAMS = ("std", "sep")


@dataclass(frozen=True)
class TransformationSpec:
    """What a transformation is, independent of channels.

    Attributes:
        name: canonical name used in configs, genotype files and plots (e.g. ``"sep_5x5_dil2"``).
        stream: ``"std"``, ``"sep"`` (FAD) or ``"darts"``.
        base_layers: number of stacked non-dilated conv layers (FAD: the stem depth it uses).
        dilation: rate r of the final dilated layer, ``None`` if there is none.
        receptive_field: receptive field in pixels (the table above).
        num_layers: representations it computes when standalone (its conv/pool layers).
        kernel_size: kernel size of its conv layers (3 except DARTS' 5×5 ops).
        output_is_shared: t1, t2 — the output is a shared stem representation (p1, p2), so a
            decoupling space puts H after it.
        description: the layers in words (e.g. ``"conv, conv, dil r=2"``), for tables.
    """

    name: str
    stream: str
    base_layers: int
    dilation: Optional[int]
    receptive_field: int
    num_layers: int
    kernel_size: int = 3
    output_is_shared: bool = False
    description: str = ""


def _fad_specs() -> Dict[str, TransformationSpec]:
    # (suffix, base layers, dilation, receptive field): paper Fig. 2.
    table = (
        ("3x3", 1, None, 3),
        ("5x5", 2, None, 5),
        ("7x7", 3, None, 7),
        ("3x3_dil2", 1, 2, 7),
        ("5x5_dil2", 2, 2, 9),
        ("3x3_dil3", 1, 3, 9),
    )
    specs = {}
    for stream in STREAMS:
        for suffix, base, dilation, rf in table:
            words = ["conv"] * base + ([f"dil r={dilation}"] if dilation else [])
            name = f"{stream}_{suffix}"
            specs[name] = TransformationSpec(
                name=name, stream=stream, base_layers=base, dilation=dilation,
                receptive_field=rf, num_layers=len(words),
                output_is_shared=dilation is None and base < 3,
                description=", ".join(words),
            )
    return specs


def _darts_specs() -> Dict[str, TransformationSpec]:
    # (name, base layers, dilation, receptive field, layers, kernel, description)
    table = (
        ("max_pool_3x3", 0, None, 3, 1, 3, "max pool 3x3"),
        ("avg_pool_3x3", 0, None, 3, 1, 3, "avg pool 3x3"),
        ("skip_connect", 0, None, 1, 0, 1, "identity"),
        ("darts_sep_3x3", 2, None, 5, 2, 3, "sep 3x3, sep 3x3"),
        ("darts_sep_5x5", 2, None, 9, 2, 5, "sep 5x5, sep 5x5"),
        ("darts_dil_3x3", 0, 2, 5, 1, 3, "dil 3x3 r=2"),
        ("darts_dil_5x5", 0, 2, 9, 1, 5, "dil 5x5 r=2"),
    )
    return {
        name: TransformationSpec(
            name=name, stream="darts", base_layers=base, dilation=dilation, receptive_field=rf,
            num_layers=layers, kernel_size=kernel, description=text,
        )
        for name, base, dilation, rf, layers, kernel, text in table
    }


TRANSFORMATIONS: Dict[str, TransformationSpec] = {**_fad_specs(), **_darts_specs()}
"""Every transformation by canonical name: the 12 FAD ones, then the 7 DARTS ones."""


def gn_groups(norm: str) -> Optional[int]:
    """The group count of a GroupNorm name: ``"GN"`` → 32 (the paper's), ``"GN<k>"`` → k (k ≥ 1,
    e.g. ``"GN16"``: two channels per group at c′ = 32); ``None`` for any other name."""
    if norm == "GN":
        return GN_GROUPS
    digits = norm[2:] if norm.startswith("GN") else ""
    return int(digits) if digits.isdigit() and not digits.startswith("0") else None


def get_norm(norm: str, channels: int) -> Optional[nn.Module]:
    """The normalisation layer after a conv: ``"GN"`` (GroupNorm(32)), ``"GN<k>"`` (GroupNorm(k)),
    ``"BN"`` or ``""`` (None)."""
    if not norm:
        return None
    groups = gn_groups(norm)
    if groups is not None:
        if channels % groups != 0:
            raise ValueError(
                f"GroupNorm with {groups} groups needs a channel count divisible by "
                f"{groups}, got {channels} channels"
            )
        return nn.GroupNorm(groups, channels)
    if norm == "BN":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm {norm!r} (valid: {', '.join(map(repr, NORMS))} or 'GN<groups>')")


class ConvNormAct(nn.Sequential):
    """One conv layer of the method: conv (or depthwise + pointwise pair) → norm → ReLU.

    Every conv layer in this package (transformations, 1×1 edge convs, cell output) is one of
    these, built by :func:`conv_norm_act`; counting them counts computed representations.
    """


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int = 1, *,
                  dilation: int = 1, separable: bool = False, norm: str = "GN",
                  activation: bool = True, depthwise_bias: bool = False) -> ConvNormAct:
    """Build a conv → norm → ReLU layer: Tensor[N, in, H, W] → Tensor[N, out, H, W].

    ``separable=True``: depthwise ``kernel_size`` conv (dilation r, a bias only with
    ``depthwise_bias``) followed by a pointwise 1×1 conv (with bias); else one standard conv
    (with bias).  Padding keeps H, W.
    """
    padding = dilation * (kernel_size - 1) // 2
    if separable:
        convs = [
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=padding, dilation=dilation,
                      groups=in_channels, bias=depthwise_bias),
            nn.Conv2d(in_channels, out_channels, 1),
        ]
    else:
        convs = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding,
                           dilation=dilation)]
    norm_layer = get_norm(norm, out_channels)
    tail = [norm_layer] if norm_layer is not None else []
    if activation:
        tail.append(nn.ReLU(inplace=True))  # on the norm's (or conv's) own output: no copy
    return ConvNormAct(*convs, *tail)


def stream_layer(stream: str, channels: int, dilation: int = 1, norm: str = "GN",
                 dilated_bias: bool = False) -> ConvNormAct:
    """One 3×3 layer of a stream at c′ channels: ``std`` conv, ``sep`` conv, or (any stream,
    ``dilation`` > 1) the depthwise-separable dilated conv, whose depthwise conv has a bias
    when ``dilated_bias`` (the released code's convention)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r} (valid: {STREAMS})")
    return conv_norm_act(channels, channels, 3, dilation=dilation,
                         separable=stream == "sep" or dilation > 1, norm=norm,
                         depthwise_bias=dilated_bias and dilation > 1)


def build_stem(stream: str, channels: int, depth: int, norm: str = "GN") -> nn.Sequential:
    """The stem of a stream: ``depth`` stacked 3×3 layers; its i-th output is pᵢ (Fig. 2)."""
    return nn.Sequential(*(stream_layer(stream, channels, norm=norm) for _ in range(depth)))


def build_decoupling(channels: int) -> nn.Sequential:
    """The decoupling function H of paper §3.2: 1×1 conv (c′ → c′, with bias) + ReLU, no norm."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True))


class Transformation(nn.Module):
    """A standalone FAD transformation (std / sep stream): stem → [dilated layer] → [H].

    Tensor[N, c′, H, W] → Tensor[N, c′, H, W].  Submodule names match the RepShare streams
    (``stem``, then the dilated layer, then ``decouple``) so weights copy one-to-one.
    ``dilated_bias``: the dilated depthwise conv has a bias (released code).
    """

    def __init__(self, name: str, channels: int, norm: str = "GN", decouple: bool = False,
                 dilated_bias: bool = False):
        super().__init__()
        spec = TRANSFORMATIONS[name]
        if spec.stream not in STREAMS:
            raise ValueError(f"{name!r} is not a FAD (std/sep) transformation")
        self.name = name
        self.stem = build_stem(spec.stream, channels, spec.base_layers, norm)
        self.dilated = (stream_layer(spec.stream, channels, spec.dilation, norm, dilated_bias)
                        if spec.dilation else None)
        self.decouple = (build_decoupling(channels)
                         if decouple and spec.output_is_shared else None)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        if self.dilated is not None:
            x = self.dilated(x)
        if self.decouple is not None:
            x = self.decouple(x)
        return x

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def _build_darts_op(spec: TransformationSpec, channels: int, norm: str) -> nn.Module:
    if spec.name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    if spec.name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if spec.name == "skip_connect":
        return nn.Identity()
    return nn.Sequential(*(
        conv_norm_act(channels, channels, spec.kernel_size, dilation=spec.dilation or 1,
                      separable=True, norm=norm)
        for _ in range(spec.num_layers)
    ))


def build_transformation(name: str, channels: int, norm: str = "GN",
                         decouple: bool = False, dilated_bias: bool = False) -> nn.Module:
    """The standalone (derived) transformation ``name`` at c′ = ``channels``.

    Tensor[N, c′, H, W] → Tensor[N, c′, H, W].  ``decouple=True`` appends H to t1 / t2 (only
    they have it; see the module docstring); ``dilated_bias=True`` gives the dilated depthwise
    conv of a FAD transformation a bias.  Unknown names (and ``"none"``) raise ValueError.
    """
    spec = TRANSFORMATIONS.get(name)
    if spec is None:
        raise ValueError(
            f"unknown transformation {name!r} (valid: {', '.join(TRANSFORMATIONS)})"
        )
    if spec.stream == "darts":
        return _build_darts_op(spec, channels, norm)
    return Transformation(name, channels, norm, decouple, dilated_bias)


def copy_module_weights(dst: nn.Module, src: nn.Module) -> nn.Module:
    """Load ``src``'s state into ``dst`` (same structure, strict) after moving ``dst`` to
    ``src``'s device and dtype; returns ``dst``."""
    floats = [t for t in (*src.parameters(), *src.buffers()) if t.is_floating_point()]
    if floats:
        dst.to(device=floats[0].device, dtype=floats[0].dtype)
    dst.load_state_dict(src.state_dict())
    return dst
