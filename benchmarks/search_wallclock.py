"""Benchmark: a search iteration against a plain training iteration as users meet them — wall
clock at the default thread count, through the real trainers and their data loaders.

* plain: :class:`fad_d2.engine.trainer.Trainer` (Detectron2's ``DefaultTrainer``) on
  ``configs/FCOS/fcos_R_50_FPN_1x_coco.yaml``;
* search: :class:`fad_d2.search.SearchTrainer` on the paper's search config
  ``configs/Search/search_fad_fcos_R_50_FPN_voc.yaml`` (FCOS R-50, M = 1, c′ = 96; an iteration
  is an α step and a w step, paper §3.2).

Both on the embedded dataset (``fad_synth_train``; the search splits it into a w-half and an
α-half), batch 4 at short side 416 / long ≤ 693, 20 classes (the search config's), random
weights (``MODEL.WEIGHTS ""``), every random generator seeded (the same batches, hence the same
image sizes, in every run), the configs' data loader workers, on the threads torch starts
with (the machine's cores) unless ``--threads`` says otherwise.  Each trainer is driven by its
public API only: ``Trainer(cfg)``, ``resume_or_load(resume=False)``, ``train()`` with
``SOLVER.MAX_ITER`` = warm-up + timed + 1 iterations, and a hook (:class:`IterationTimer`)
registered last that reads ``time.perf_counter`` in every ``before_step``: an iteration's time
runs from its ``before_step`` to the next one's, so it holds everything the iteration costs
(data loading, the step, every hook); the last iteration, which ends in the final checkpoint, is
not timed.  ``--rounds R`` runs plain, search, plain, search, …; every timed iteration of every
round enters the median, and each round's search / plain ratio is reported beside it (their
spread shows how steady the machine was).

    python -m benchmarks.search_wallclock                  # 2 warm-up + 5 timed iterations each
    python -m benchmarks.search_wallclock --iterations 10 --rounds 2 --threads 2
    python -m benchmarks.search_wallclock --smoke          # tiny models and images (seconds)

Writes ``benchmarks/results/search_wallclock.json`` (the section format of ``run_all``, whose
``README_table.md`` then shows it) and ``search_wallclock.md``, and prints the table (``--smoke``
writes only where ``--out`` says).
"""
import argparse
import gc
import logging
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import torch
from detectron2.engine import HookBase
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from fad_d2.engine.setup import load_cfg
from fad_d2.engine.trainer import Trainer
from fad_d2.search import SearchTrainer

from .common import (Settings, cpu_seconds_elsewhere, machine_info, markdown_table, ratio, release_memory,
                     repo_path, write_json)

SEARCH_CONFIG = "configs/Search/search_fad_fcos_R_50_FPN_voc.yaml"
PLAIN_CONFIG = "configs/FCOS/fcos_R_50_FPN_1x_coco.yaml"
DATASET = "fad_synth_train"
VARIANTS = ("plain", "search")
UNSPLIT = "search_unsplit"
"""The ``--unsplit`` variant: the search with the head's batch split off (on the CPU)."""
LABELS = {"plain": "plain FCOS iteration (`Trainer`, Detectron2's `DefaultTrainer`)",
          "search": "search iteration (`SearchTrainer`: α step + w step)",
          UNSPLIT: "search iteration, head batch split off (`MODEL.FAD.CPU_BATCH_THREADS 1`)"}
UNSPLIT_OPTS = ("MODEL.FAD.CPU_BATCH_THREADS", "1")
SMOKE = {"search_config": "configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml",
         "plain_config": "configs/Demo/fcos_R_18_FPN_demo.yaml", "batch": 2, "short_side": 128,
         "max_size": 160, "warmup": 1, "iterations": 2, "workers": 0,
         "extra_opts": ("MODEL.FAD.SEARCH_SPACE", "subset1")}
"""The ``--smoke`` setting (the CI test's): the demo's R-18 models, tiny images, few iterations."""
SEED = 0
BUSY = 0.05
"""Share of the CPUs other processes may take during a timed iteration before the table says so."""
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class IterationTimer(HookBase):
    """Reads ``time.perf_counter()``, this process's resource usage (``getrusage``) and the CPU
    time other processes used (:func:`~benchmarks.common.cpu_seconds_elsewhere`) in every
    ``before_step``.  Per iteration but the last: :meth:`times` (wall), :meth:`usage` (user and
    system CPU seconds of this process, all threads, and its minor page faults), :meth:`busy`
    (the share of the machine's CPUs that other processes took; None without ``/proc``)."""

    def __init__(self):
        self.starts: List[float] = []
        self.rusage: List[resource.struct_rusage] = []
        self.elsewhere: List[Optional[float]] = []

    def before_step(self):
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()  # the previous iteration's kernels belong to it
        self.starts.append(time.perf_counter())
        self.rusage.append(resource.getrusage(resource.RUSAGE_SELF))
        self.elsewhere.append(cpu_seconds_elsewhere())

    def times(self) -> List[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]

    def usage(self) -> List[Dict[str, float]]:
        return [{"user_s": b.ru_utime - a.ru_utime, "system_s": b.ru_stime - a.ru_stime,
                 "page_faults": b.ru_minflt - a.ru_minflt} for a, b in zip(self.rusage, self.rusage[1:])]

    def busy(self) -> List[Optional[float]]:
        cores = os.cpu_count() or 1
        return [None if a is None or b is None else (b - a) / (t * cores)
                for a, b, t in zip(self.elsewhere, self.elsewhere[1:], self.times())]


def trainer_config(config_file: str, *, output_dir: str, batch: int, short_side: int, max_size: int,
                   max_iter: int, num_classes: int, device: str, workers: Optional[int],
                   extra_opts: Sequence[str] = ()):
    """``config_file`` with the benchmark's setting (see the module docstring)."""
    opts = ["MODEL.WEIGHTS", "", "MODEL.DEVICE", device,
            "DATASETS.TRAIN", f"('{DATASET}',)", "DATASETS.TEST", "()", "TEST.EVAL_PERIOD", "0",
            "SOLVER.IMS_PER_BATCH", str(batch), "SOLVER.MAX_ITER", str(max_iter),
            "SOLVER.CHECKPOINT_PERIOD", str(10 * max_iter), "SEARCH.DERIVE_PERIOD", str(10 * max_iter),
            "SEARCH.ALPHA_WARMUP_ITERS", "0",  # every timed search iteration is an α step + a w step
            "INPUT.MIN_SIZE_TRAIN", f"({short_side},)", "INPUT.MAX_SIZE_TRAIN", str(max_size),
            "OUTPUT_DIR", output_dir, *extra_opts]
    if workers is not None:
        opts += ["DATALOADER.NUM_WORKERS", str(workers)]
    cfg = load_cfg(repo_path(config_file), opts)
    # On purpose a head for num_classes (the search config's 20) on the embedded data's 8 classes,
    # set after loading, which would refuse the mismatch.
    cfg.MODEL.FCOS.NUM_CLASSES = num_classes
    return cfg


def run_trainer(variant: str, cfg, make_hooks: Callable[[object], List[HookBase]]) -> None:
    """Build the trainer of ``variant`` (``"plain"`` or ``"search"``) for ``cfg`` with every random
    generator seeded by :data:`SEED` (the weights; the samplers' shuffles, hence the images and
    the sizes of the batches, the same in every run), register the hooks ``make_hooks(trainer)``
    returns (after the trainer's own), train, and free it."""
    seed_all_rng(SEED)
    setup_logger()  # once (it is cached): the trainers then leave the level set here alone
    for name in ("detectron2", "fad_d2"):  # the trainers' logging: warnings only
        logging.getLogger(name).setLevel(logging.WARNING)
    trainer = (SearchTrainer if variant == "search" else Trainer)(cfg)
    trainer.register_hooks(make_hooks(trainer))
    trainer.resume_or_load(resume=False)
    trainer.train()
    del trainer
    gc.collect()
    release_memory()


def time_trainer(variant: str, cfg, warmup: int) -> Dict[str, List[float]]:
    """Train ``cfg`` with the trainer of ``variant`` and return the wall times of its warm-up and
    timed iterations (and, on CUDA, the peak of ``torch.cuda.max_memory_allocated`` over the run)."""
    timer = IterationTimer()
    cuda = torch.device(cfg.MODEL.DEVICE).type == "cuda"
    if cuda:
        release_memory()
        torch.cuda.reset_peak_memory_stats()
    run_trainer(variant, cfg, lambda trainer: [timer])
    times = timer.times()
    return {"warmup_s": times[:warmup], "times_s": times[warmup:], "busy": timer.busy()[warmup:],
            "usage": timer.usage()[warmup:], "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None}


def compare_trainers(search_config: str = SEARCH_CONFIG, plain_config: str = PLAIN_CONFIG, *,
                     batch: int = 4, short_side: int = 416, max_size: int = 693, warmup: int = 2,
                     iterations: int = 5, rounds: int = 1, num_classes: int = 20, device: str = "cpu",
                     workers: Optional[int] = None, extra_opts: Sequence[str] = (),
                     unsplit: bool = False) -> dict:
    """Median wall time of a plain and a search iteration through the trainers (module
    docstring); ``workers``: ``DATALOADER.NUM_WORKERS`` (None: the configs'); ``unsplit``: also
    the search with the head's batch split off (:data:`UNSPLIT`, after the search in each round)."""
    configs = {"plain": (plain_config, ()), "search": (search_config, ()),
               UNSPLIT: (search_config, UNSPLIT_OPTS)}
    variants_run = VARIANTS + ((UNSPLIT,) if unsplit else ())
    runs = {v: [] for v in variants_run}
    workers_used = {}
    for _ in range(rounds):
        for variant in variants_run:
            output_dir = tempfile.mkdtemp(prefix=f"fad_bench_{variant}_")
            config_file, variant_opts = configs[variant]
            try:
                cfg = trainer_config(config_file, output_dir=output_dir, batch=batch,
                                     short_side=short_side, max_size=max_size,
                                     max_iter=warmup + iterations + 1, num_classes=num_classes,
                                     device=device, workers=workers, extra_opts=(*extra_opts, *variant_opts))
                workers_used[variant] = cfg.DATALOADER.NUM_WORKERS
                runs[variant].append(time_trainer("plain" if variant == "plain" else "search", cfg, warmup))
            finally:
                shutil.rmtree(output_dir, ignore_errors=True)
    variants = {}
    for variant, rs in runs.items():
        times = [t for r in rs for t in r["times_s"]]
        busy = [b for r in rs for b in r["busy"] if b is not None]
        usage = [u for r in rs for u in r["usage"]]
        peaks = [r["peak_bytes"] for r in rs if r["peak_bytes"] is not None]
        variants[variant] = {"median_s": statistics.median(times), "times_s": times,
                             "peak_bytes": max(peaks) if peaks else None,
                             "warmup_s": [t for r in rs for t in r["warmup_s"]],
                             "busy_max": max(busy) if busy else None, "usage": usage,
                             **{f"median_{k}": statistics.median(u[k] for u in usage) for k in usage[0]}}
    setting = {"batch": batch, "image": [short_side, max_size], "classes": num_classes,
               "dataset": DATASET, "seed": SEED, "search_config": search_config, "plain_config": plain_config,
               "threads": torch.get_num_threads(), "workers": workers_used, "warmup": warmup,
               "iterations": iterations, "rounds": rounds, "extra_opts": list(extra_opts),
               "clock": "wall time (time.perf_counter)"}
    round_ratios = [statistics.median(search["times_s"]) / statistics.median(plain["times_s"])
                    for plain, search in zip(runs["plain"], runs["search"])]
    return {"setting": setting, "variants": variants, "round_ratios": round_ratios}


def summary(result: dict) -> Dict[str, float]:
    """The search overhead factor: search iteration / plain iteration (medians); with the
    :data:`UNSPLIT` variant also its factor."""
    v = result["variants"]
    ret = {"wallclock_search_vs_plain": v["search"]["median_s"] / v["plain"]["median_s"]}
    if UNSPLIT in v:
        ret["wallclock_unsplit_vs_plain"] = v[UNSPLIT]["median_s"] / v["plain"]["median_s"]
    return ret


def format_comparison(result: dict) -> str:
    """The Markdown table of :func:`compare_trainers`."""
    s, v = result["setting"], result["variants"]
    plain_s = v["plain"]["median_s"]
    rows = [[LABELS[name], f"{r['median_s']:.2f}", ratio(r["median_s"], plain_s),
             f"{r['median_user_s']:.1f}", f"{r['median_system_s']:.2f}", f"{r['median_page_faults'] / 1e3:.0f}k",
             ", ".join(f"{t:.2f}" for t in r["times_s"])] for name, r in v.items()]
    workers = ", ".join(f"{name} {n}" for name, n in s["workers"].items())
    title = (f"Wall clock per iteration through the trainers, {s['threads']} thread(s), data loader "
             f"workers {workers}: batch {s['batch']} at short side {s['image'][0]} (long ≤ "
             f"{s['image'][1]}) of `{s['dataset']}`, {s['classes']} classes, random weights; "
             f"`{s['search_config']}` against `{s['plain_config']}`; {s['warmup']} warm-up + "
             f"{s['iterations']} timed iterations per trainer, {s['rounds']} round(s), medians (CPU: "
             "this process's threads; page faults: minor ones, per iteration):")
    table = markdown_table(["iteration", "median (s)", "vs plain", "user CPU (s)", "system CPU (s)",
                            "page faults", "timed iterations (s)"], rows)
    if len(result["round_ratios"]) > 1:  # the spread of the ratio between back-to-back pairs
        table += ("\n\nSearch / plain iteration per round (the medians of one plain and the search run "
                  "after it): " + ", ".join(f"{r:.2f}×" for r in result["round_ratios"]) + ".")
    busy = [r["busy_max"] for r in v.values() if r.get("busy_max") is not None]
    if busy and max(busy) > BUSY:
        table += (f"\n\n**Not an idle machine**: other processes took up to {100 * max(busy):.0f}% of "
                  "the CPUs during a timed iteration; these times are not what users meet.")
    return f"{title}\n\n{table}"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options this benchmark and ``search_profile`` share (threads, loaders, device, smoke
    run, output folder)."""
    parser.add_argument("--warmup", type=int, help="untimed iterations first (default 2)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the cores)")
    parser.add_argument("--workers", type=int, help="DATALOADER.NUM_WORKERS (default: the configs')")
    parser.add_argument("--device", default="cpu", help="MODEL.DEVICE (default cpu)")
    parser.add_argument("--smoke", action="store_true", help="tiny models and images (the CI test)")
    parser.add_argument("--out", help="output folder (default benchmarks/results; none with --smoke)")


def run_setting(args: argparse.Namespace, **kwargs) -> dict:
    """Apply ``--threads``; the keyword arguments of the run: ``kwargs``, then :data:`SMOKE`'s
    setting with ``--smoke`` (its ``iterations`` only where ``kwargs`` has that key), then
    ``--workers`` and ``--warmup`` where given."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    kwargs["device"] = args.device
    if args.smoke:
        kwargs.update({k: v for k, v in SMOKE.items() if k != "iterations" or "iterations" in kwargs})
    for name in ("workers", "warmup"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    return kwargs


def write_results(out: Optional[str], name: str, data: dict, table: str) -> None:
    """``out``/``name``.json and ``out``/``name``.md (nothing when ``out`` is None)."""
    if out:
        write_json(os.path.join(out, f"{name}.json"), data)
        with open(os.path.join(out, f"{name}.md"), "w") as f:
            f.write(table + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, help="timed iterations per trainer and round (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="plain, search, plain, … (default 1)")
    parser.add_argument("--unsplit", action="store_true",
                        help="also time the search with the head's batch split off (MODEL.FAD.CPU_BATCH_THREADS 1)")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    kwargs = run_setting(args, rounds=args.rounds, workers=None, iterations=5, unsplit=args.unsplit)
    if args.iterations is not None:
        kwargs["iterations"] = args.iterations
    machine = machine_info(Settings(device=args.device, threads=torch.get_num_threads()))
    start, start_cpu = time.perf_counter(), time.process_time()
    result = compare_trainers(**kwargs)
    section = {"machine": machine, "elapsed_s": time.perf_counter() - start,
               "cpu_s": time.process_time() - start_cpu, "result": result, "summary": summary(result)}
    table = format_comparison(result)
    out = args.out or (None if args.smoke else RESULTS)
    write_results(out, "search_wallclock", section, table)
    print(table)
    print(f"[bench] search / plain iteration: {section['summary']['wallclock_search_vs_plain']:.2f}× "
          f"({section['elapsed_s']:.0f} s){'; wrote ' + out if out else ''}", file=sys.stderr)


if __name__ == "__main__":
    main()
