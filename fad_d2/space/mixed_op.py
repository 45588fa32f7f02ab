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

``RepShareMixedOp(..., fused=True)`` (the default) computes the same function faster and with
less activation memory, with the same modules and state-dict keys (``fused=False`` keeps the
straightforward version, the reference of ``tests/space/test_space_fast_repshare.py``):

* every depthwise → pointwise pair (``sep`` stem, dilated layers) runs as one autograd function
  that saves only its input and recomputes the cheap depthwise output in backward; its
  backward avoids CPU's slow dilated-depthwise gradient kernels (the input gradient is a
  depthwise conv with the flipped kernel, the weight gradient a dilation-1 conv over the d²
  phases of the input, as in space-to-batch atrous convolution);
* the weighted sum of eq. 2 accumulates in place and computes each weight's gradient as one
  dot product.
"""
from __future__ import annotations

import copy
import functools
from typing import Dict, List, Sequence, Union

import torch
import torch.nn.functional as F
from fvcore.common.registry import Registry
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .spaces import SearchSpace, get_search_space
from .transformations import (
    TRANSFORMATIONS,
    ConvNormAct,
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
    "FusedSeparableLayer",
    "build_mixed_op",
    "stem_depth",
]

MIXED_OP_REGISTRY = Registry("FAD_MIXED_OP")
MIXED_OP_REGISTRY.__doc__ = """
Registry for mixed ops (the transformation block of a search edge).

A registered class is called as ``cls(space: SearchSpace, channels: int, norm: str)`` and the
object must be an ``nn.Module`` whose ``forward(x: Tensor[N, c′, H, W], weights: Tensor[K])``
returns Tensor[N, c′, H, W], with attributes ``choices``, ``num_representations``, ``decouple``
(whether t1 / t2 carry H) and a method
``extract_transformation(name) -> nn.Module``.
"""


def stem_depth(ops: Sequence[str]) -> int:
    """How many stem layers (p1, p2, p3) the FAD transformations ``ops`` of one stream need."""
    return max(TRANSFORMATIONS[op].base_layers for op in ops)


def _same_depthwise(x: Tensor, weight: Tensor, dilation: int) -> Tensor:
    """Stride-1 depthwise conv with 'same' padding: Tensor[N, C, H, W] → Tensor[N, C, H, W]."""
    padding = dilation * (weight.shape[-1] - 1) // 2
    return F.conv2d(x, weight, None, 1, padding, dilation, x.shape[1])


def _phases(x: Tensor, dilation: int) -> Tensor:
    """Space-to-batch: Tensor[N, C, H, W] → Tensor[N·d², C, ⌈H/d⌉, ⌈W/d⌉], the d² phases
    ``x[..., r::d, s::d]`` (zero-padded to one size), in ``x``'s memory format.  A 'same' conv
    of dilation d on ``x`` is a 'same' conv of dilation 1 on every phase."""
    if dilation == 1:
        return x
    n, c, h, w = x.shape
    rows, cols = -(-h // dilation), -(-w // dilation)
    x = F.pad(x, (0, cols * dilation - w, 0, rows * dilation - h))
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    phases = torch.empty((n * dilation * dilation, c, rows, cols), dtype=x.dtype, device=x.device,
                         memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    phases.view(n, dilation, dilation, c, rows, cols).copy_(
        x.reshape(n, c, rows, dilation, cols, dilation).permute(0, 3, 5, 1, 2, 4))
    return phases


class _SeparableConvFunction(torch.autograd.Function):
    """Depthwise 'same' conv (dilation d, no bias) → pointwise 1×1 conv, saving only the input.

    ``apply(x, dw_weight[C, 1, k, k], pw_weight[C', C, 1, 1], pw_bias[C'] or None, d)`` →
    Tensor[N, C', H, W].  Backward recomputes the depthwise output, takes the input gradient as
    a depthwise conv with the flipped kernel and the depthwise weight gradient over the d²
    phases (dilation 1), instead of the (slow on CPU) dilated-depthwise backward kernels.
    Under autocast, backward computes in the dtype that forward's convs ran in.
    """

    @staticmethod
    def forward(ctx, x, dw_weight, pw_weight, pw_bias, dilation):
        out = F.conv2d(_same_depthwise(x, dw_weight, dilation), pw_weight, pw_bias)
        ctx.dilation = dilation
        ctx.dtype = out.dtype
        ctx.bias_sizes = None if pw_bias is None else list(pw_bias.shape)
        ctx.save_for_backward(x, dw_weight, pw_weight)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, dw_weight, pw_weight, grad = (t.to(ctx.dtype) for t in (*ctx.saved_tensors, grad))
        dilation = ctx.dilation
        need_x, need_dw, need_pw, need_bias = ctx.needs_input_grad[:4]
        hidden = _same_depthwise(x, dw_weight, dilation)
        grad_hidden, grad_pw, grad_bias = torch.ops.aten.convolution_backward(
            grad, hidden, pw_weight, ctx.bias_sizes, [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
            [need_x or need_dw, need_pw, need_bias])
        grad_x = grad_dw = None
        if need_x:
            grad_x = _same_depthwise(grad_hidden, dw_weight.flip((2, 3)), dilation)
        if need_dw:
            padding = (dw_weight.shape[-1] - 1) // 2
            grad_dw = torch.ops.aten.convolution_backward(
                _phases(grad_hidden, dilation), _phases(x, dilation), dw_weight, None, [1, 1],
                [padding, padding], [1, 1], False, [0, 0], x.shape[1], [False, True, False])[1]
        return grad_x, grad_dw, grad_pw, grad_bias, None


def _memory_order(x: Tensor) -> List[int]:
    """The dims of ``x`` from outermost to innermost in memory: ``x.permute(order)`` is
    contiguous for any dense layout (NCHW → 0, 1, 2, 3; channels-last → 0, 2, 3, 1)."""
    return sorted(range(x.dim()), key=lambda d: -x.stride(d))


class _WeightedSumFunction(torch.autograd.Function):
    """Eq. 2 in one pass: ``apply(weights[K], *outputs)`` → Σₖ weights[k]·outputs[k] (k <
    len(outputs)), in the outputs' promoted dtype.  Forward accumulates in place; backward gives
    each weight's gradient as one dot product (no product tensor) and saves nothing the
    outputs' producers do not keep."""

    @staticmethod
    def forward(ctx, weights, *outputs):
        ctx.save_for_backward(weights, *outputs)
        dtype = functools.reduce(torch.promote_types, (o.dtype for o in outputs))
        total = outputs[0].to(dtype) * weights[0]
        for k in range(1, len(outputs)):
            total.addcmul_(outputs[k], weights[k])
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        weights, *outputs = ctx.saved_tensors
        grad_weights = None
        if ctx.needs_input_grad[0]:
            order = _memory_order(grad)
            flat = grad.permute(order).reshape(-1)
            grad_weights = torch.zeros_like(weights)
            for k, output in enumerate(outputs):
                output = output.to(grad.dtype).permute(order).reshape(-1)
                grad_weights[k] = torch.dot(flat, output)
        grad_outputs = [grad * weights[k] if needed else None
                        for k, needed in enumerate(ctx.needs_input_grad[1:])]
        return (grad_weights, *grad_outputs)


class FusedSeparableLayer(ConvNormAct):
    """A depthwise → pointwise layer (``sep`` stem or dilated layer) whose conv pair runs as one
    memory-saving autograd function; same children (and state-dict keys) as the
    :class:`ConvNormAct` it wraps.  Tensor[N, c′, H, W] → Tensor[N, c′, H, W]."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_tracing():  # plain convs, which tracers (fvcore's FLOP count) can see
            return super().forward(x)
        depthwise, pointwise, *tail = self
        x = _SeparableConvFunction.apply(x, depthwise.weight, pointwise.weight, pointwise.bias,
                                         depthwise.dilation[0])
        for module in tail:
            x = module(x)
        return x


def _fuse_separable(layer: ConvNormAct) -> ConvNormAct:
    """``layer`` as a :class:`FusedSeparableLayer` when it starts with a stride-1 'same'
    depthwise conv followed by a 1×1 conv (same child modules); any other layer unchanged."""
    depthwise, pointwise = layer[0], layer[1] if len(layer) > 1 else None
    dilation = depthwise.dilation[0]
    fusable = (
        isinstance(pointwise, nn.Conv2d) and pointwise.kernel_size == (1, 1)
        and depthwise.groups == depthwise.in_channels == depthwise.out_channels > 1
        and depthwise.bias is None and depthwise.stride == (1, 1)
        and depthwise.dilation == (dilation, dilation)
        and depthwise.padding == (dilation * (depthwise.kernel_size[0] - 1) // 2,) * 2
    )
    return FusedSeparableLayer(*layer) if fusable else layer


class _MixedOp(nn.Module):
    """What both mixed ops share: the space, its choices and the weighted sum of eq. 2."""

    def __init__(self, space: Union[str, SearchSpace], channels: int, norm: str = "GN"):
        super().__init__()
        self.space = get_search_space(space)
        self.channels = channels
        self.norm = norm
        self.decouple = self.space.decouple  # t1 / t2 carry H (a subclass may turn it off)

    @property
    def choices(self):
        """The K choices in weight order (``space.choices``)."""
        return self.space.choices

    def _weighted_sum(self, outputs: Dict[str, Tensor], weights: Tensor,
                      fused: bool = False) -> Tensor:
        if weights.shape != (self.space.num_choices,):
            raise ValueError(
                f"mixed op over {self.space.name!r} needs weights of shape "
                f"[{self.space.num_choices}] (one per choice), got {list(weights.shape)}"
            )
        if fused:
            return _WeightedSumFunction.apply(weights, *(outputs[n] for n in self.space.ops))
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
    ``fused=True``: depthwise → pointwise layers are :class:`FusedSeparableLayer` s (a dilated
    layer with ``dilated_bias`` stays a plain one: the fused function has no depthwise bias).
    """

    def __init__(self, stream: str, ops: Sequence[str], channels: int, decouple: bool,
                 norm: str = "GN", fused: bool = False, dilated_bias: bool = False):
        super().__init__()
        specs = [TRANSFORMATIONS[op] for op in ops]
        wrap = _fuse_separable if fused else (lambda layer: layer)
        self.ops = tuple(ops)
        self.stem = nn.Sequential(*map(wrap, build_stem(stream, channels, stem_depth(ops), norm)))
        self.dilated = nn.ModuleDict({
            s.name: wrap(stream_layer(stream, channels, s.dilation, norm, dilated_bias))
            for s in specs if s.dilation
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
    ``full``.  ``forward(x′: Tensor[N, c′, H, W], weights: Tensor[K]) → Tensor[N, c′, H, W]``.

    ``fused=True`` (default): the fast path of the module docstring; ``fused=False``: the
    straightforward implementation.  Both have the same parameters and compute the same function.
    """

    def __init__(self, space: Union[str, SearchSpace], channels: int, norm: str = "GN",
                 fused: bool = True):
        super().__init__(space, channels, norm)
        if not self.space.supports_repshare:
            raise ValueError(f"search space {self.space.name!r} does not support RepShare")
        self.fused = fused
        self.streams = nn.ModuleDict({
            stream: SharedStream(stream, self.space.stream_ops(stream), channels,
                                 self.space.decouple, norm, fused, self.space.dilated_bias)
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
        return self._weighted_sum(outputs, weights, self.fused and not torch.jit.is_tracing())

    def extract_transformation(self, name: str) -> Transformation:
        """The derived transformation ``name`` with this op's weights (stem prefix, dilated
        layer, and H when the space decouples): one-hot weights on ``name`` make this op
        compute exactly what the returned module computes."""
        if name not in self.space.ops:
            raise ValueError(f"{name!r} is not an op of search space {self.space.name!r}")
        spec = TRANSFORMATIONS[name]
        shared = self.streams[spec.stream]
        derived = Transformation(name, self.channels, self.norm, decouple=self.decouple,
                                 dilated_bias=self.space.dilated_bias)
        copy_module_weights(derived.stem, shared.stem[: spec.base_layers])
        if derived.dilated is not None:
            copy_module_weights(derived.dilated, shared.dilated[name])
        if derived.decouple is not None:
            copy_module_weights(derived.decouple, shared.decouple[name])
        return derived


@MIXED_OP_REGISTRY.register()
class UnsharedMixedOp(_MixedOp):
    """Every transformation computed separately (``MODEL.FAD.REPSHARE False``; the ``darts``
    space).  ``forward(x′: Tensor[N, c′, H, W], weights: Tensor[K]) → Tensor[N, c′, H, W]``.

    t1 / t2 carry H when the space decouples, unless ``space.unshared_decouple`` is off (the
    paper's "w/o RepShare" supernet: nothing is shared, so nothing needs decoupling)."""

    def __init__(self, space: Union[str, SearchSpace], channels: int, norm: str = "GN"):
        super().__init__(space, channels, norm)
        self.decouple = self.space.decouple and self.space.unshared_decouple
        self.transformations = nn.ModuleDict({
            name: build_transformation(name, channels, norm, decouple=self.decouple,
                                       dilated_bias=self.space.dilated_bias)
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
        (e.g. a ``RepShareMixedOp``) with the same H: the two then compute the same function."""
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
