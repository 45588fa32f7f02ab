"""Benchmark: where the search head's time goes by kind of convolution, beside the stock head.

The heads of :mod:`benchmarks.search_head` (the paper's search config and the same config with
the stock ``FCOSHead``) run one forward + backward on random FPN features of a batch of
416×693 images, on one thread, in NCHW (what the batch split's one-thread workers compute in),
under ``torch.profiler`` with input shapes.  Every convolution kernel call (oneDNN's and
PyTorch's native im2col path, forward and backward) is charged to a kind by its weight's shape:
1×1, depthwise (one input channel per group) or dense k×k.  Forward kernel calls include those
that fad_d2's fused separable layers make in backward (recomputation, input gradient).  Also the
multiply-adds of one forward per image (``torch.utils.flop_counter``, which sees the convolutions
inside fad_d2's own autograd functions).

    python -m benchmarks.head_convs                    # writes benchmarks/results/head_convs.{json,md}
    python -m benchmarks.head_convs --batch 2 --out DIR
"""
import argparse
import sys
import warnings
from collections import defaultdict
from typing import Sequence

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from fad_d2.space.cell import input_layout

from .common import Settings, image_size, machine_info, markdown_table
from .derived_head import build_head
from .search_head import HeadWorkload, fpn_features, search_and_stock_configs
from .search_wallclock import RESULTS, SEARCH_CONFIG, write_results

FORWARD_KERNELS = {"aten::mkldnn_convolution": 1, "aten::_slow_conv2d_forward": 1}  # op → weight's argument
BACKWARD_KERNELS = {"aten::convolution_backward": 2, "aten::_slow_conv2d_backward": 2}
HEADS = {"search": "search head", "stock": "stock FCOS head"}


def conv_kind(weight_shape: Sequence[int]) -> str:
    """'1×1', 'depthwise' or 'dense k×k' for a conv weight Tensor[C_out, C_in / groups, kh, kw]."""
    _, per_group, kh, kw = weight_shape
    if (kh, kw) == (1, 1):
        return "1×1"
    return "depthwise" if per_group == 1 else f"dense {kh}×{kw}"


def profile_convs(head: torch.nn.Module, features) -> dict:
    """One forward + backward of ``head`` on ``features`` (after one warm-up): seconds of CPU
    time per (kind, forward / backward), forward multiply-adds per kind, and the total."""
    workload = HeadWorkload(head, features)
    workload.step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        workload.step()
    kernels = {**FORWARD_KERNELS, **BACKWARD_KERNELS}
    seconds, macs = defaultdict(float), defaultdict(float)
    for event in prof.events():
        parent = event.cpu_parent
        if event.name not in kernels or (parent is not None and parent.name in kernels):
            continue  # not a convolution kernel, or one inside another's time
        weight = event.input_shapes[kernels[event.name]]
        kind, direction = conv_kind(weight), "forward" if event.name in FORWARD_KERNELS else "backward"
        seconds[f"{kind} {direction}"] += event.cpu_time_total / 1e6
        if direction == "forward":  # stride-1 'same' convs: the output has the input's N, H, W
            n, _, h, w = event.input_shapes[0]
            macs[kind] += n * h * w * weight[0] * weight[1] * weight[2] * weight[3]
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
    return {"seconds": dict(seconds), "forward_macs": dict(macs), "total_s": total}


def forward_macs_per_image(head: torch.nn.Module, features) -> float:
    """Multiply-adds of one forward of ``head``, per image."""
    with FlopCounterMode(display=False) as counter:
        head(features)
    return counter.get_total_flops() / 2 / features[0].shape[0]


def compare(config_file: str = SEARCH_CONFIG, batch: int = 4, short_side: int = 416,
            extra_opts: Sequence[str] = ()) -> dict:
    """:func:`profile_convs` and :func:`forward_macs_per_image` of both heads, one thread, NCHW."""
    cfg, stock_cfg = search_and_stock_configs(config_file, extra_opts)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        features = fpn_features(cfg, batch, short_side)
        heads = {}
        with input_layout():
            for name, head_cfg in (("search", cfg), ("stock", stock_cfg)):
                head = build_head(head_cfg)
                heads[name] = {"macs_per_image": forward_macs_per_image(head, features),
                               **profile_convs(head, features)}
    finally:
        torch.set_num_threads(threads)
    setting = {"config": config_file, "batch": batch, "image": list(image_size(short_side))}
    return {"setting": setting, "heads": heads}


def format_convs(result: dict) -> str:
    """The Markdown table: per head and kind of convolution, forward multiply-adds, forward and
    backward time, forward GFLOPS and the share of the head's time."""
    s = result["setting"]
    rows = []
    for name, r in result["heads"].items():
        for kind, macs in sorted(r["forward_macs"].items()):
            fwd, bwd = r["seconds"].get(f"{kind} forward", 0.0), r["seconds"].get(f"{kind} backward", 0.0)
            rows.append([HEADS[name], kind, f"{macs / 1e9:.1f}", f"{fwd:.2f}", f"{2 * macs / fwd / 1e9:.0f}",
                         f"{bwd:.2f}", f"{100 * (fwd + bwd) / r['total_s']:.0f} %"])
        rows.append([HEADS[name], "**all** (forward multiply-adds per image: "
                     f"{r['macs_per_image'] / 1e9:.1f} G)", "", "", "", "", f"{r['total_s']:.2f} s"])
    title = (f"Convolutions of one head forward + backward on the FPN features of {s['batch']} "
             f"{s['image'][0]}×{s['image'][1]} images (`{s['config']}`), one thread, NCHW, `torch.profiler` "
             "CPU time; forward kernels include the fused layers' recomputation and input gradient:")
    table = markdown_table(["head", "convolutions", "forward GMAC", "forward (s)", "forward GFLOPS",
                            "backward (s)", "share of the head"], rows)
    return f"{title}\n\n{table}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4, help="images in the batch (default 4)")
    parser.add_argument("--out", default=RESULTS, help="output folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    result = compare(batch=args.batch)
    table = format_convs(result)
    write_results(args.out, "head_convs", {"machine": machine_info(Settings(device="cpu", threads=1)), "result": result},
                  table)
    print(table)
    print(f"[bench] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
