"""Benchmark: the search supernet's head, forward + backward, in the cells' CPU layout
(channels-last, :func:`fad_d2.space.cell.cell_layout`) against NCHW (``input_layout()``, what it
computed in before), with and without the batch split over threads
(:mod:`fad_d2.modeling.batch_threads`, ``MODEL.FAD.CPU_BATCH_THREADS``), beside the stock FCOS
head.

The heads of the paper's search config (``FADHead``: the FAD module with M = 1, c′ = 96, c = 256,
the ``full`` space, and its predictors; 20 classes) and of the same config with
``MODEL.FCOS.HEAD_NAME FCOSHead`` (four 3×3 convs per tower), on random FPN features of a batch
of 4 416×693 images (P3…P7: 52×87 … 4×6), every output receiving a random gradient (α included,
as in the w step).  Medians of single timed calls (``fad_d2.timing.time_fns``, variants
alternating round by round): at torch's default thread count (wall time) and on one thread
(process CPU time; one thread never splits).  The layouts compute the same values
(``tests/space/test_space_channels_last.py``), and so does the split
(``tests/modeling/test_batch_threads.py``).

    python -m benchmarks.search_head                       # default threads, then 1 thread
    python -m benchmarks.search_head --threads 2 --repeats 5
"""
import argparse
import contextlib
import os
import sys
import warnings
from typing import Dict, List, Sequence

import torch

from fad_d2.engine.setup import load_cfg
from fad_d2.space.cell import input_layout

from .common import Settings, image_size, level_sizes, machine_info, markdown_table, ratio, repo_path, \
    time_fns, write_json
from .derived_head import build_head
from .search_wallclock import RESULTS, SEARCH_CONFIG

VARIANTS = {"stock": "stock FCOS head (4 convs per tower)",
            "search_nchw": "search head, NCHW",
            "search_unsplit": "search head, channels-last, batch split off (`MODEL.FAD.CPU_BATCH_THREADS 1`)",
            "search": "search head, default (batch split over the threads; channels-last only on more than one thread per worker)"}


class HeadWorkload:
    """A head with fixed random FPN features and output gradients: :meth:`step` is one forward
    + backward (gradients dropped first)."""

    def __init__(self, head: torch.nn.Module, features, seed: int = 1):
        self.head = head
        self.features = features
        outputs = head(features)
        g = torch.Generator().manual_seed(seed)
        self.grads = [torch.randn(o.shape, generator=g) for kind in outputs for o in kind]

    def step(self) -> None:
        self.head.zero_grad(set_to_none=True)
        outputs = [o for kind in self.head(self.features) for o in kind]  # (logits, boxes, ...) × levels
        torch.autograd.backward(outputs, self.grads)


def search_and_stock_configs(config_file: str = SEARCH_CONFIG, extra_opts: Sequence[str] = ()):
    """The search config on the CPU without weights, and the same with the stock ``FCOSHead``."""
    cfg = load_cfg(repo_path(config_file), [*extra_opts, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    stock_cfg = cfg.clone()
    stock_cfg.merge_from_list(["MODEL.FCOS.HEAD_NAME", "FCOSHead"])
    return cfg, stock_cfg


def fpn_features(cfg, batch: int, short_side: int) -> List[torch.Tensor]:
    """Random FPN features (seed 0) of ``batch`` images at ``short_side``: Tensor[batch, C, H, W]
    per level P3…P7, requiring gradients."""
    g = torch.Generator().manual_seed(0)
    return [torch.randn(batch, cfg.MODEL.FPN.OUT_CHANNELS, h, w, generator=g).requires_grad_()
            for h, w in level_sizes(*image_size(short_side))]


def compare_heads(threads: Sequence[int], repeats: int = 3, config_file: str = SEARCH_CONFIG,
                  batch: int = 4, short_side: int = 416, extra_opts: Sequence[str] = ()) -> dict:
    """Forward + backward times of :data:`VARIANTS` on each thread count of ``threads``."""
    cfg, stock_cfg = search_and_stock_configs(config_file, extra_opts)
    torch.manual_seed(0)
    heads = {"stock": build_head(stock_cfg), "search": build_head(cfg)}
    features = fpn_features(cfg, batch, short_side)
    workloads = {name: HeadWorkload(head, features) for name, head in heads.items()}

    def run(name):
        workload = workloads["stock" if name == "stock" else "search"]
        if name != "stock":
            workload.head.batch_threads = 1 if name == "search_unsplit" else 0
        with input_layout() if name == "search_nchw" else contextlib.nullcontext():
            workload.step()

    results = {}
    for n in threads:
        settings = Settings(device="cpu", threads=n, warmup=1, repeats=repeats)
        results[str(n)] = time_fns({name: (lambda name=name: run(name)) for name in VARIANTS}, settings)
    setting = {"config": config_file, "batch": batch, "image": list(image_size(short_side)),
               "inner_channels": list(cfg.MODEL.FAD.INNER_CHANNELS), "classes": cfg.MODEL.FCOS.NUM_CLASSES}
    return {"setting": setting, "threads": results}


def summary(result: dict) -> Dict[str, float]:
    """Per thread count: channels-last / NCHW, and the search head (channels-last) / stock head."""
    out = {}
    for n, times in result["threads"].items():
        t = {name: r["median_s"] for name, r in times.items()}
        out[f"channels_last_vs_nchw_{n}t"] = t["search"] / t["search_nchw"]
        out[f"search_vs_stock_{n}t"] = t["search"] / t["stock"]
        out[f"split_vs_unsplit_{n}t"] = t["search"] / t["search_unsplit"]
    return out


def format_comparison(result: dict) -> str:
    """The Markdown table: time per variant and thread count, ratios to the stock head and to
    NCHW."""
    s = result["setting"]
    rows = []
    for n, times in result["threads"].items():
        stock, nchw = times["stock"]["median_s"], times["search_nchw"]["median_s"]
        for name, label in VARIANTS.items():
            t = times[name]["median_s"]
            rows.append([n, label, f"{1e3 * t:.0f}", ratio(t, stock),
                         ratio(t, nchw) if name.startswith("search") else "", times[name]["clock"]])
    title = (f"Head forward + backward on the FPN features of {s['batch']} {s['image'][0]}×{s['image'][1]} "
             f"images (`{s['config']}`: c′ = {s['inner_channels']}, {s['classes']} classes):")
    table = markdown_table(["threads", "head", "time (ms)", "vs stock", "vs NCHW", "clock"], rows)
    return f"{title}\n\n{table}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default=f"{torch.get_num_threads()},1",
                        help="comma-separated thread counts (default: torch's default, then 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant (default 3)")
    parser.add_argument("--out", default=RESULTS, help="output folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    threads = list(dict.fromkeys(int(n) for n in args.threads.split(",")))
    result = compare_heads(threads, args.repeats)
    machine = machine_info(Settings(device="cpu", threads=threads[0]))
    table = format_comparison(result)
    write_json(os.path.join(args.out, "search_head.json"),
               {"machine": machine, "result": result, "summary": summary(result)})
    with open(os.path.join(args.out, "search_head.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    print(f"[bench] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
