"""Run the benchmarks and write ``benchmarks/results/<section>.json`` and
``benchmarks/results/README_table.md`` (``make bench``)::

    python -m benchmarks.run_all                      # everything (~12 min on 2 cores)
    python -m benchmarks.run_all --only mixed_op,scaling --threads 2
    python -m benchmarks.run_all --device cuda --repeats 20 --step-repeats 5

Sections: ``search_wallclock`` (a search iteration vs a plain one, wall clock through the
trainers at the default thread count: the figure users meet), ``mixed_op`` (RepShare vs
unshared block), ``scaling`` (the block over batch size and input size), ``search_step`` (α step
+ w step vs a plain FCOS iteration on one thread, CPU time), ``derived_head`` (FAD head vs stock
head).  ``--threads`` applies to every section but ``search_wallclock``, which runs on torch's
default thread count (``--wallclock-threads`` to change it).  The Markdown file is rebuilt from every section's JSON in the output
folder, so a partial run keeps the other sections' last results.
"""
import argparse
import dataclasses
import json
import logging
import os
import sys
import time
import warnings

import torch

from . import derived_head, mixed_op, report, search_step, search_wallclock
from torch.utils.benchmark.utils.common import set_torch_threads

from .common import Settings, clock, machine_info, release_memory, resolve_device, write_json

SECTIONS = ("search_wallclock", "mixed_op", "scaling", "search_step", "derived_head")
RUN_ORDER = ("search_wallclock", "search_step", "mixed_op", "scaling", "derived_head")  # the biggest first, on a fresh heap
DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice (the cores), before --threads
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def plan(args, device: str) -> str:
    """How the sizes, repetitions and clock were chosen (shown under the machine line)."""
    clock_name = clock(Settings(device=device, threads=args.threads))[0]
    return (f"Through the trainers: wall clock on {args.wallclock_threads} thread(s), medians of "
            f"{args.wallclock_iterations} timed iterations after 2 warm-up iterations per trainer. "
            f"Elsewhere times are {clock_name} (see `docs/benchmarks.md`): "
            f"medians of {args.repeats} measured calls after 2 warm-up calls for the block and "
            f"the head; scaling points: {args.sweep_repeats} measured call(s) after 1 warm-up, the "
            f"input-size sweep at batch 1; whole steps: {args.step_repeats} measured step(s) after "
            "1 warm-up step per model. Reduced so that `make bench` fits in about 12 minutes on a "
            "2-core CPU; ratios within one run are the headline, absolute times vary between "
            "machines. See `docs/benchmarks.md` for what is measured and how.")


def run_section(name: str, args, device: str, previous: dict):
    """Run one section; returns ``(result, summary or None)``."""
    settings = Settings(device=device, threads=args.threads, warmup=2, repeats=args.repeats)
    if name == "search_wallclock":
        with set_torch_threads(args.wallclock_threads):
            result = search_wallclock.compare_trainers(device=device, iterations=args.wallclock_iterations)
        return result, search_wallclock.summary(result)
    if name == "mixed_op":
        result = mixed_op.compare_blocks(settings)
        return result, mixed_op.summary(result)
    if name == "scaling":
        base = previous.get("mixed_op", {}).get("result")
        sweep = dataclasses.replace(settings, warmup=1, repeats=args.sweep_repeats)
        return mixed_op.scaling(sweep, base=base), None
    if name == "search_step":
        result = search_step.compare_steps(dataclasses.replace(settings, repeats=args.step_repeats))
        return result, search_step.summary(result)
    result = derived_head.compare_heads(settings)
    return result, derived_head.summary(result)


def load_sections(folder: str) -> dict:
    """The section JSONs already in ``folder``."""
    sections = {}
    for name in SECTIONS:
        path = os.path.join(folder, f"{name}.json")
        if os.path.isfile(path):
            with open(path) as f:
                sections[name] = json.load(f)
    return sections


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: stable on a busy machine)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default: all of {','.join(SECTIONS)})")
    parser.add_argument("--repeats", type=int, default=5,
                        help="measured calls of the block and the head (default 5)")
    parser.add_argument("--sweep-repeats", type=int, default=1,
                        help="measured calls per scaling point (default 1)")
    parser.add_argument("--step-repeats", type=int, default=1,
                        help="measured whole steps per model (default 1)")
    parser.add_argument("--wallclock-iterations", type=int, default=5,
                        help="timed iterations per trainer in search_wallclock (default 5, after 2 warm-up)")
    parser.add_argument("--wallclock-threads", type=int, default=DEFAULT_THREADS,
                        help=f"threads of search_wallclock (default {DEFAULT_THREADS}: torch's default here)")
    parser.add_argument("--out", default=RESULTS, help="output folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown} (valid: {', '.join(SECTIONS)})")

    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    logging.getLogger("detectron2").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    machine = machine_info(Settings(device=device, threads=args.threads))
    sections = load_sections(args.out)
    start, start_cpu = time.perf_counter(), time.process_time()
    for name in sorted(only, key=RUN_ORDER.index):
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        began, began_cpu = time.perf_counter(), time.process_time()
        result, summary = run_section(name, args, device, sections)
        release_memory()
        sections[name] = {"machine": machine, "elapsed_s": time.perf_counter() - began,
                          "cpu_s": time.process_time() - began_cpu, "result": result,
                          "summary": summary}
        write_json(os.path.join(args.out, f"{name}.json"), sections[name])
        print(f"[bench] {name}: {sections[name]['elapsed_s']:.0f} s "
              f"(process CPU time {sections[name]['cpu_s']:.0f} s)", file=sys.stderr, flush=True)
    table = report.build(machine, sections, plan(args, device))
    with open(os.path.join(args.out, "README_table.md"), "w") as f:
        f.write(table)
    print(table)
    print(f"[bench] total {time.perf_counter() - start:.0f} s (process CPU time "
          f"{time.process_time() - start_cpu:.0f} s); wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
