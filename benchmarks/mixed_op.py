"""Benchmarks 1, 4 and 5: one transformation block (mixed op), RepShare against unshared.

The block runs as in the search head: at c′ = 96 over the ``full`` space (12 transformations +
``none``), with weights softmax(α), α ~ 1e-3·N(0, 1), on the five FPN levels (strides 8…128)
of a batch of images, each level's output receiving a random gradient.  Variants:

* ``unshared``: :class:`~fad_d2.space.UnsharedMixedOp`, 26 representations;
* ``repshare_naive``: ``RepShareMixedOp(fused=False)``, the straightforward 12 representations;
* ``repshare``: ``RepShareMixedOp()``, the optimised implementation (same function).

Per variant: forward+backward time (median), saved activations and peak memory (see
``benchmarks/common.py``).  :func:`compare_blocks` measures one setting; :func:`scaling` sweeps
the batch size and the input's short side.
"""
from typing import Dict, List, Sequence, Tuple

import torch

from fad_d2.space import RepShareMixedOp, UnsharedMixedOp

from .common import (
    Settings,
    image_size,
    level_sizes,
    markdown_table,
    mib,
    parameter_tensors,
    peak_memory_bytes,
    ratio,
    saved_activation_bytes,
    time_fns,
)

VARIANTS = ("unshared", "repshare_naive", "repshare")
LABELS = {"unshared": "unshared (26 representations)",
          "repshare_naive": "RepShare, straightforward (12)",
          "repshare": "RepShare, optimised (12)"}


def build_block(variant: str, space: str, channels: int) -> torch.nn.Module:
    """The mixed op of ``variant`` (one of :data:`VARIANTS`)."""
    if variant == "unshared":
        return UnsharedMixedOp(space, channels)
    return RepShareMixedOp(space, channels, fused=variant == "repshare")


class BlockWorkload:
    """A block with fixed random inputs (requiring grad, as inside an edge), output gradients
    and α, on ``device``: :meth:`forward` runs the levels, :meth:`step` forward + backward
    (gradients dropped first, as ``zero_grad(set_to_none=True)`` does)."""

    def __init__(self, block: torch.nn.Module, batch: int, levels: Sequence[Tuple[int, int]],
                 device: torch.device, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        channels = block.channels

        def randn(*shape):
            return torch.randn(*shape, generator=g).to(device)

        self.block = block.to(device)
        self.inputs = [randn(batch, channels, h, w).requires_grad_() for h, w in levels]
        self.output_grads = [randn(batch, channels, h, w) for h, w in levels]
        self.alpha = (1e-3 * randn(block.space.num_choices)).requires_grad_()

    def forward(self) -> List[torch.Tensor]:
        weights = torch.softmax(self.alpha, dim=0)
        return [self.block(x, weights) for x in self.inputs]

    def zero_grad(self) -> None:
        for t in (*self.block.parameters(), self.alpha, *self.inputs):
            t.grad = None

    def step(self) -> None:
        self.zero_grad()
        torch.autograd.backward(self.forward(), self.output_grads)


def compare_blocks(settings: Settings, batch: int = 4, short_side: int = 416, channels: int = 96,
                   space: str = "full", variants: Sequence[str] = VARIANTS,
                   peak: bool = True) -> dict:
    """Time and memory of each variant's block at one setting (levels of ``short_side``'s
    input).  Returns ``{"setting": {...}, "variants": {name: {"time", "saved_bytes",
    "peak_bytes", "representations"}}}`` (``peak_bytes`` None when ``peak`` is false)."""
    device = settings.torch_device
    levels = level_sizes(*image_size(short_side))
    torch.manual_seed(0)
    workloads = {v: BlockWorkload(build_block(v, space, channels), batch, levels, device)
                 for v in variants}
    times = time_fns({v: w.step for v, w in workloads.items()}, settings)
    results = {}
    for v, w in workloads.items():
        w.zero_grad()  # the peak then counts this step's gradients, and frees nothing older
        results[v] = {
            "time": times[v],
            "saved_bytes": saved_activation_bytes(w.forward, parameter_tensors(w.block)),
            "peak_bytes": peak_memory_bytes(w.step, device) if peak else None,
            "representations": w.block.num_representations,
        }
    setting = {"batch": batch, "image": list(image_size(short_side)), "levels": levels,
               "channels": channels, "space": space}
    return {"setting": setting, "variants": results}


def scaling(settings: Settings, batches: Sequence[int] = (1, 2, 4, 8),
            short_sides: Sequence[int] = (416, 640, 800), batch_short_side: int = 416,
            size_batch: int = 1, channels: int = 96, space: str = "full",
            base: dict = None) -> List[dict]:
    """:func:`compare_blocks` (without peak memory) over the batch sizes at short side
    ``batch_short_side`` and over the short sides at batch ``size_batch``.  A point equal to the
    setting of ``base`` (a :func:`compare_blocks` result) reuses it instead of measuring again."""
    points = [(b, batch_short_side) for b in batches]
    points += [(size_batch, s) for s in short_sides if (size_batch, s) not in points]
    results = []
    for batch, short_side in points:
        if base is not None and (base["setting"]["batch"], base["setting"]["image"]) == (
                batch, list(image_size(short_side))):
            results.append(base)
        else:
            results.append(compare_blocks(settings, batch, short_side, channels, space, peak=False))
    return results


def _ms(result: dict, variant: str) -> float:
    return 1e3 * result["variants"][variant]["time"]["median_s"]


def format_comparison(result: dict) -> str:
    """The Markdown table of one :func:`compare_blocks` result, ratios against unshared and
    the optimised RepShare against the straightforward one."""
    s = result["setting"]
    v = result["variants"]
    base = v["unshared"]
    rows = []
    for name, r in v.items():
        peak = r["peak_bytes"]
        rows.append([
            LABELS[name], f"{_ms(result, name):.1f}", ratio(_ms(result, name), _ms(result, "unshared")),
            mib(r["saved_bytes"]), ratio(r["saved_bytes"], base["saved_bytes"]),
            "–" if peak is None else mib(peak),
            "–" if peak is None else ratio(peak, base["peak_bytes"]),
        ])
    title = (f"Transformation block, c′ = {s['channels']}, `{s['space']}` space, batch {s['batch']}, "
             f"{s['image'][0]}×{s['image'][1]} input ({len(s['levels'])} FPN levels "
             f"{', '.join(f'{h}×{w}' for h, w in s['levels'])}), forward + backward:")
    table = markdown_table(["block", "time (ms)", "vs unshared", "saved activations (MiB)",
                            "vs unshared", "peak (MiB)", "vs unshared"], rows)
    return f"{title}\n\n{table}"


def format_scaling(results: List[dict]) -> str:
    """The Markdown table of :func:`scaling`: time and saved activations per variant and the
    RepShare (optimised) / unshared ratios, per batch size and input size."""
    rows = []
    for r in results:
        s, v = r["setting"], r["variants"]
        rows.append([
            s["batch"], f"{s['image'][0]}×{s['image'][1]}",
            *(f"{_ms(r, name):.0f}" for name in VARIANTS),
            ratio(_ms(r, "repshare"), _ms(r, "unshared")),
            *(mib(v[name]["saved_bytes"]) for name in VARIANTS),
            ratio(v["repshare"]["saved_bytes"], v["unshared"]["saved_bytes"]),
        ])
    headers = ["batch", "input", "unshared (ms)", "RepShare naive (ms)", "RepShare (ms)",
               "time ratio", "unshared (MiB)", "RepShare naive (MiB)", "RepShare (MiB)",
               "memory ratio"]
    return markdown_table(headers, rows)


RATIOS = {"repshare_vs_unshared": ("repshare", "unshared"),
          "naive_vs_unshared": ("repshare_naive", "unshared"),
          "optimised_vs_naive": ("repshare", "repshare_naive")}
"""The headline ratios: name → (numerator variant, denominator variant)."""


def _figure(variant_result: dict, kind: str):
    """A variant's ``"time"`` (median s), ``"saved"`` or ``"peak"`` (bytes; None if not measured)."""
    return variant_result["time"]["median_s"] if kind == "time" else variant_result[f"{kind}_bytes"]


def summary(result: dict) -> Dict[str, float]:
    """``{kind}_{ratio}`` for kind in time / saved / peak (peak when measured) and every
    ratio of :data:`RATIOS`, e.g. ``saved_repshare_vs_unshared``."""
    v = result["variants"]
    return {f"{kind}_{name}": _figure(v[a], kind) / _figure(v[b], kind)
            for kind in ("time", "saved", "peak") for name, (a, b) in RATIOS.items()
            if _figure(v[b], kind) is not None}
