"""Mixed ops: the transformation block Tᵢⱼ of a search edge (paper §3.2, eq. 2).

Both ops map (Tensor[N, c′, H, W], weights Tensor[K]) → Tensor[N, c′, H, W] with
``weights = softmax(αᵢⱼ)`` over ``space.choices`` (K = ops + ``none``)::

    Tᵢⱼ(x′) = Σₖ weights[k] · outputₖ(x′)        (``none`` contributes 0)

* :class:`RepShareMixedOp`: per stream one stem p1 → p2 → p3; the outputs of t1…t6 are
  H(p1), H(p2), p3, dil2(p1), dil2(p2), dil3(p1) (H only in decoupling spaces).  Only what the
  space needs is built: ``subset1`` builds p1, p2; ``no_dil3`` has no dil3 layer.  ``full``
  computes 12 representations.
* :class:`UnsharedMixedOp`: every transformation computed on its own (``full``: 26
  representations).  In a decoupling space its t1 / t2 carry H too, so that with the same
  weights both ops compute the same function.

Either can hand out a standalone copy of one transformation (``extract_transformation``),
built by :func:`~fad_d2.space.transformations.build_transformation` with the weights copied.
"""
from __future__ import annotations

import copy
from typing import Dict, Sequence, Union

from fvcore.common.registry import Registry
from torch import Tensor, nn

from .spaces import SearchSpace, get_search_space
from .transformations import (
    TRANSFORMATIONS,
    Transformation,
    build_decoupling,
    build_stem,
    build_transformation,
    copy_module_weights,
    stream_layer,
)

__all__ = [
    "MIXED_OP_REGISTRY",
    "RepShareMixedOp",
    "UnsharedMixedOp",
    "SharedStream",
    "build_mixed_op",
    "stem_depth",
]

MIXED_OP_REGISTRY = Registry("FAD_MIXED_OP")
MIXED_OP_REGISTRY.__doc__ = """
Registry for mixed ops (the transformation block of a search edge).

A registered class is called as ``cls(space: SearchSpace, channels: int, norm: str)`` and the
object must be an ``nn.Module`` whose ``forward(x: Tensor[N, c′, H, W], weights: Tensor[K])``
returns Tensor[N, c′, H, W], with attributes ``choices``, ``num_representations`` and a method
``extract_transformation(name) -> nn.Module``.
"""


def stem_depth(ops: Sequence[str]) -> int:
    """How many stem layers (p1, p2, p3) the FAD transformations ``ops`` of one stream need."""
    return max(TRANSFORMATIONS[op].base_layers for op in ops)


class _MixedOp(nn.Module):
    """What both mixed ops share: the space, its choices and the weighted sum of eq. 2."""

    def __init__(self, space: Union[str, SearchSpace], channels: int, norm: str = "GN"):
        super().__init__()
        self.space = get_search_space(space)
        self.channels = channels
        self.norm = norm

    @property
    def choices(self):
        """The K choices in weight order (``space.choices``)."""
        return self.space.choices

    def _weighted_sum(self, outputs: Dict[str, Tensor], weights: Tensor) -> Tensor:
        if weights.shape != (self.space.num_choices,):
            raise ValueError(
                f"mixed op over {self.space.name!r} needs weights of shape "
                f"[{self.space.num_choices}] (one per choice), got {list(weights.shape)}"
            )
        total = None
        for k, name in enumerate(self.space.ops):  # the last choice, none, adds 0
            term = weights[k] * outputs[name]
            total = term if total is None else total + term
        return total


class SharedStream(nn.Module):
    """One stream (``std`` or ``sep``) of RepShare.

    ``stem``: p1 → p2 → p3 (as deep as ``ops`` need); ``dilated[op]``: the dilated layer of
    t4 / t5 / t6 on p1 / p2 / p1; ``decouple[op]``: H after p1 / p2 for t1 / t2.
    ``forward(x′)`` → {op name: Tensor[N, c′, H, W]} for every op of the stream.
    """

    def __init__(self, stream: str, ops: Sequence[str], channels: int, decouple: bool,
                 norm: str = "GN"):
        super().__init__()
        specs = [TRANSFORMATIONS[op] for op in ops]
        self.ops = tuple(ops)
        self.stem = build_stem(stream, channels, stem_depth(ops), norm)
        self.dilated = nn.ModuleDict({
            s.name: stream_layer(stream, channels, s.dilation, norm) for s in specs if s.dilation
        })
        self.decouple = nn.ModuleDict({
            s.name: build_decoupling(channels) for s in specs if decouple and s.output_is_shared
        })

    @property
    def num_representations(self) -> int:
        """Stem outputs plus dilated outputs (H is not counted, as in the paper's 12)."""
        return len(self.stem) + len(self.dilated)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        stem_outputs = []  # p1, p2, p3
        for layer in self.stem:
            x = layer(x)
            stem_outputs.append(x)
        outputs = {}
        for name in self.ops:
            y = stem_outputs[TRANSFORMATIONS[name].base_layers - 1]
            if name in self.dilated:
                y = self.dilated[name](y)
            if name in self.decouple:
                y = self.decouple[name](y)
            outputs[name] = y
        return outputs


@MIXED_OP_REGISTRY.register()
class RepShareMixedOp(_MixedOp):
    """The RepShare transformation block (paper §3.2): shared stems, 12 representations for
    ``full``.  ``forward(x′: Tensor[N, c′, H, W], weights: Tensor[K]) → Tensor[N, c′, H, W]``."""

    def __init__(self, space: Union[str, SearchSpace], channels: int, norm: str = "GN"):
        super().__init__(space, channels, norm)
        if not self.space.supports_repshare:
            raise ValueError(f"search space {self.space.name!r} does not support RepShare")
        self.streams = nn.ModuleDict({
            stream: SharedStream(stream, self.space.stream_ops(stream), channels,
                                 self.space.decouple, norm)
            for stream in self.space.streams
        })

    @property
    def num_representations(self) -> int:
        """Representations computed per forward (``full``: 12)."""
        return sum(s.num_representations for s in self.streams.values())

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        outputs = {}
        for stream in self.streams.values():
            outputs.update(stream(x))
        return self._weighted_sum(outputs, weights)

    def extract_transformation(self, name: str) -> Transformation:
        """The derived transformation ``name`` with this op's weights (stem prefix, dilated
        layer, and H when the space decouples): one-hot weights on ``name`` make this op
        compute exactly what the returned module computes."""
        if name not in self.space.ops:
            raise ValueError(f"{name!r} is not an op of search space {self.space.name!r}")
        spec = TRANSFORMATIONS[name]
        shared = self.streams[spec.stream]
        derived = Transformation(name, self.channels, self.norm, decouple=self.space.decouple)
        copy_module_weights(derived.stem, shared.stem[: spec.base_layers])
        if derived.dilated is not None:
            copy_module_weights(derived.dilated, shared.dilated[name])
        if derived.decouple is not None:
            copy_module_weights(derived.decouple, shared.decouple[name])
        return derived


@MIXED_OP_REGISTRY.register()
class UnsharedMixedOp(_MixedOp):
    """Every transformation computed separately (``MODEL.FAD.REPSHARE False``; the ``darts``
    space).  ``forward(x′: Tensor[N, c′, H, W], weights: Tensor[K]) → Tensor[N, c′, H, W]``."""

    def __init__(self, space: Union[str, SearchSpace], channels: int, norm: str = "GN"):
        super().__init__(space, channels, norm)
        self.transformations = nn.ModuleDict({
            name: build_transformation(name, channels, norm, decouple=self.space.decouple)
            for name in self.space.ops
        })

    @property
    def num_representations(self) -> int:
        """Representations computed per forward (``full``: 26)."""
        return sum(TRANSFORMATIONS[name].num_layers for name in self.space.ops)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        outputs = {name: t(x) for name, t in self.transformations.items()}
        return self._weighted_sum(outputs, weights)

    def extract_transformation(self, name: str) -> nn.Module:
        """A copy of the transformation ``name`` (weights included)."""
        if name not in self.space.ops:
            raise ValueError(f"{name!r} is not an op of search space {self.space.name!r}")
        return copy.deepcopy(self.transformations[name])

    def load_transformations_from(self, other: nn.Module) -> "UnsharedMixedOp":
        """Copy every transformation's weights from another mixed op over the same space
        (e.g. a ``RepShareMixedOp``): the two then compute the same function."""
        for name, transformation in self.transformations.items():
            copy_module_weights(transformation, other.extract_transformation(name))
        return self


def build_mixed_op(space: Union[str, SearchSpace], channels: int, repshare: bool = True,
                   norm: str = "GN") -> nn.Module:
    """The mixed op for ``space`` at c′ = ``channels``: RepShare when the space supports it and
    ``repshare`` is true, else unshared (the ``darts`` space is always unshared)."""
    space = get_search_space(space)
    name = "RepShareMixedOp" if repshare and space.supports_repshare else "UnsharedMixedOp"
    return MIXED_OP_REGISTRY.get(name)(space, channels, norm)
