"""Benchmark: the FAD head's batch split over CPU threads through the search trainer, paired.

Separate trainer runs cannot resolve a 10 % difference on a machine whose iterations vary by
±20 % within minutes (``search_wallclock --unsplit``).  Here one ``SearchTrainer`` run
alternates the split every iteration — a hook (:class:`AlternateSplit`) sets every FAD head's
``batch_threads`` after each step: 0 (``MODEL.FAD.CPU_BATCH_THREADS`` automatic, the default)
and 1 (off) in turn — so that both variants meet the same machine, the same loaders and the same
model state, and each pair of adjacent iterations gives one off / on ratio.  The setting is
``search_wallclock``'s (the paper's FCOS R-50 search config on the embedded data, batch 4 at
416 / 693, random weights, wall clock at the default threads, :class:`IterationTimer`).

    python -m benchmarks.split_paired                 # 2 warm-up iterations + 6 pairs
    python -m benchmarks.split_paired --pairs 10
    python -m benchmarks.split_paired --smoke         # tiny models and images (seconds)

Writes ``benchmarks/results/split_paired.{json,md}`` (``--smoke``: only where ``--out`` says).
"""
import argparse
import shutil
import statistics
import tempfile
import time
from typing import List, Optional, Sequence

import torch
from detectron2.engine import HookBase

from .common import Settings, machine_info, markdown_table
from .search_wallclock import (RESULTS, SEARCH_CONFIG, IterationTimer, add_run_arguments, run_setting, run_trainer,
                               trainer_config, write_results)

SPLIT, UNSPLIT = 0, 1
"""``batch_threads`` of the two variants: automatic (one chunk per thread) and off."""
LABELS = {SPLIT: "split over the threads (`MODEL.FAD.CPU_BATCH_THREADS 0`, the default)",
          UNSPLIT: "split off (`MODEL.FAD.CPU_BATCH_THREADS 1`)"}


class AlternateSplit(HookBase):
    """Sets ``batch_threads`` of every module of the model that has one (the FAD heads) to
    :data:`SPLIT` before the first iteration and to the other variant after every step, so that
    iterations alternate split, off, split, …  :attr:`states`: the value each iteration ran with."""

    def __init__(self):
        self.states: List[int] = []

    def _set(self, value: int) -> None:
        heads = [m for m in self.trainer.model.modules() if hasattr(m, "batch_threads")]
        if not heads:
            raise ValueError("split_paired: the model has no FAD head (no module with batch_threads)")
        for m in heads:
            m.batch_threads = value
        self.states.append(value)

    def before_train(self):
        self._set(SPLIT)

    def after_step(self):
        self._set(UNSPLIT if self.states[-1] == SPLIT else SPLIT)


def compare_paired(search_config: str = SEARCH_CONFIG, *, batch: int = 4, short_side: int = 416,
                   max_size: int = 693, warmup: int = 2, pairs: int = 6, num_classes: int = 20,
                   device: str = "cpu", workers: Optional[int] = None, extra_opts: Sequence[str] = ()) -> dict:
    """One search run of ``warmup`` + 2 · ``pairs`` timed iterations (+ the untimed last one),
    the split alternating (module docstring); per variant the median and the times, and per
    pair of adjacent timed iterations the ratio off / on."""
    output_dir = tempfile.mkdtemp(prefix="fad_bench_split_paired_")
    timer, alternate = IterationTimer(), AlternateSplit()
    try:
        cfg = trainer_config(search_config, output_dir=output_dir, batch=batch, short_side=short_side,
                             max_size=max_size, max_iter=warmup + 2 * pairs + 1, num_classes=num_classes,
                             device=device, workers=workers, extra_opts=extra_opts)
        run_trainer("search", cfg, lambda trainer: [alternate, timer])
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    times, usage = timer.times()[warmup:], timer.usage()[warmup:]
    states = alternate.states[warmup:warmup + 2 * pairs]
    variants = {}
    for state in (SPLIT, UNSPLIT):
        ts = [t for t, s in zip(times, states) if s == state]
        us = [u for u, s in zip(usage, states) if s == state]
        variants[LABELS[state]] = {"batch_threads": state, "median_s": statistics.median(ts), "times_s": ts,
                                   **{f"median_{k}": statistics.median(u[k] for u in us) for k in us[0]}}
    by_pair = [dict(zip(states[k:k + 2], times[k:k + 2])) for k in range(0, len(times), 2)]
    pair_ratios = [p[UNSPLIT] / p[SPLIT] for p in by_pair]
    setting = {"batch": batch, "image": [short_side, max_size], "classes": num_classes,
               "search_config": search_config, "threads": torch.get_num_threads(),
               "workers": cfg.DATALOADER.NUM_WORKERS, "warmup": warmup, "pairs": pairs,
               "extra_opts": list(extra_opts), "clock": "wall time (time.perf_counter)"}
    return {"setting": setting, "variants": variants, "states": states, "pair_ratios": pair_ratios,
            "median_pair_ratio": statistics.median(pair_ratios)}


def format_paired(result: dict) -> str:
    """The Markdown table of :func:`compare_paired`."""
    s, v = result["setting"], result["variants"]
    title = (f"The head's batch split through `SearchTrainer`, paired: one run of `{s['search_config']}` "
             f"whose iterations alternate split / off, {s['threads']} thread(s), {s['workers']} data loader "
             f"workers, batch {s['batch']} at short side {s['image'][0]} (long ≤ {s['image'][1]}), "
             f"{s['classes']} classes, random weights; {s['warmup']} warm-up iterations, then "
             f"{s['pairs']} pairs, wall clock per iteration (α step + w step); medians (CPU: this process's threads; minor page faults):")
    rows = [[label, f"{r['median_s']:.2f}", f"{r['median_user_s']:.1f}", f"{r['median_system_s']:.2f}",
             f"{r['median_page_faults'] / 1e3:.0f}k", ", ".join(f"{t:.2f}" for t in r["times_s"])]
            for label, r in v.items()]
    table = markdown_table(["search iteration, head batch", "median (s)", "user CPU (s)", "system CPU (s)",
                            "page faults", "iterations (s)"], rows)
    ratios = ", ".join(f"{r:.2f}" for r in result["pair_ratios"])
    return (f"{title}\n\n{table}\n\nOff / split per pair of adjacent iterations: {ratios}; "
            f"median **{result['median_pair_ratio']:.2f}×**.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6, help="timed pairs of iterations (default 6)")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    kwargs = run_setting(args, workers=None, pairs=args.pairs)
    if args.smoke:  # SMOKE's setting but its plain trainer; at most two pairs
        kwargs.pop("plain_config")
        kwargs["pairs"] = min(args.pairs, 2)
    machine = machine_info(Settings(device=args.device, threads=torch.get_num_threads()))
    start = time.perf_counter()
    result = compare_paired(**kwargs)
    table = format_paired(result)
    out = args.out or (None if args.smoke else RESULTS)
    write_results(out, "split_paired", {"machine": machine, "elapsed_s": time.perf_counter() - start,
                                        "result": result}, table)
    print(table)


if __name__ == "__main__":
    main()
