"""The GPU check: the paper's search setting on one GPU, in fp32 and mixed precision (a few minutes).

    python -m benchmarks.gpu_check                 # make bench-gpu: CUDA (the CPU without one), the paper's sizes
    python -m benchmarks.gpu_check --smoke         # tiny sizes on the CPU in seconds (the CI test)
    benchmarks/gpu_check.sh                        # on a bare GPU machine with PyTorch (see docs/benchmarks.md)

Two sections, written as ``gpu_check.json`` and ``gpu_check.md`` in ``--out`` (default
``benchmarks/results``; none with ``--smoke`` unless ``--out`` is given):

* ``block``: one transformation block (c′ = 96, the ``full`` space: 12 transformations + none,
  weights softmax(α)) on the five FPN levels of a batch of 4 images at 416×693, the paper's search
  setting (§4.1, Table 2), RepShare (12 representations, paper §3.3) against unshared (26):
  forward + backward, peak memory above the inputs (``torch.cuda.max_memory_allocated``; the
  profiler's allocation events on the CPU) and median time, in fp32 and under autocast (float16
  on CUDA, bfloat16 on the CPU);
* ``step``: iterations of ``search_net.py``'s trainer (``SearchTrainer``: an α step and a w step)
  on the paper's FCOS R-50 search config (M = 1, c′ = 96, batch 4) against ``train_net.py``'s
  (``Trainer``) on plain FCOS R-50, both on the embedded dataset at 416 / 693 with 20 classes,
  wall clock per iteration after warm-up through the trainers and their loaders
  (:mod:`benchmarks.search_wallclock`), fp32 and mixed precision (``SOLVER.AMP.ENABLED``), peak
  memory on CUDA.  The search's median iteration gives the projected time of the paper's VOC
  search (12.5k iterations, §4.1) in GPU-days, and its peak memory per image.

The Markdown ends with the targets (RepShare ≤ 0.45× the unshared peak memory and ≤ 0.4× its
time, a search iteration ≤ 2.5× a plain one, the VOC search ≤ 0.15 GPU-days) and whether each is met.
"""
import argparse
import sys
import time
from typing import Dict, List, Optional

import torch

from fad_d2.engine.amp import default_precision

from . import search_wallclock
from .common import (Settings, image_size, level_sizes, machine_info, markdown_table, mib, peak_memory_bytes,
                     ratio, release_memory, resolve_device, time_fns)
from .mixed_op import BlockWorkload, build_block

PAPER_VOC_SEARCH_ITERATIONS = 12_500
"""The paper's search length on VOC (§4.1: 12.5k iterations at batch 4 on one GPU)."""
SECONDS_PER_DAY = 86_400.0
BLOCK_VARIANTS = ("unshared", "repshare")
PRECISIONS = ("fp32", "amp")
TARGETS = {"block_memory": 0.45, "block_time": 0.40, "search_vs_plain": 2.5, "voc_search_gpu_days": 0.15}
"""Upper bounds: RepShare / unshared peak memory and time (AMP on CUDA), search / plain
iteration, projected VOC search in GPU-days."""
PAPER = {"block": {"batch": 4, "short_side": 416, "channels": 96},
         "step": {"warmup": 3, "iterations": 10}}
SMOKE = {"block": {"batch": 1, "short_side": 128, "channels": 32},
         "step": dict(search_wallclock.SMOKE)}
"""The sizes of the check (the paper's) and of ``--smoke`` (seconds on a CPU)."""
RESULTS = search_wallclock.RESULTS


def block_step(workload: BlockWorkload, precision: str):
    """A forward + backward of ``workload`` in ``precision`` (``"fp32"`` or ``"amp"``)."""
    if precision == "fp32":
        return workload.step
    device = workload.inputs[0].device

    def step():
        workload.zero_grad()
        with torch.autocast(device.type, dtype=default_precision(device.type)):
            outputs = workload.forward()
        torch.autograd.backward(outputs, [g.to(o.dtype) for o, g in zip(outputs, workload.output_grads)])

    return step


def block_section(settings: Settings, batch: int, short_side: int, channels: int) -> dict:
    """Peak memory and median fwd+bwd time of the unshared and RepShare blocks, fp32 and AMP."""
    device = settings.torch_device
    levels = level_sizes(*image_size(short_side))
    rows = {}
    for variant in BLOCK_VARIANTS:
        torch.manual_seed(0)
        workload = BlockWorkload(build_block(variant, "full", channels), batch, levels, device)
        steps = {precision: block_step(workload, precision) for precision in PRECISIONS}
        times = time_fns(steps, settings)
        for precision, step in steps.items():
            workload.zero_grad()
            rows[f"{variant}_{precision}"] = {"time_s": times[precision]["median_s"],
                                              "peak_bytes": peak_memory_bytes(step, device)}
        del workload, steps
        release_memory()
    return {"setting": {"batch": batch, "image": list(image_size(short_side)), "levels": levels,
                        "channels": channels, "space": "full", "amp_dtype": str(default_precision(device.type))},
            "rows": rows}


def step_section(device: str, step: dict) -> dict:
    """:func:`benchmarks.search_wallclock.compare_trainers` in fp32 and with ``SOLVER.AMP.ENABLED``."""
    step = dict(step)
    extra = tuple(step.pop("extra_opts", ()))
    results = {}
    for precision in PRECISIONS:
        amp = ("SOLVER.AMP.ENABLED", str(precision == "amp"))
        results[precision] = search_wallclock.compare_trainers(device=device, extra_opts=extra + amp, **step)
    return results


def summary(block: dict, step: dict) -> Dict[str, Optional[float]]:
    """The figures the targets bound (AMP, the paper's search precision on a GPU here) and the fp32 ones."""
    rows = block["rows"]
    out = {}
    for precision in PRECISIONS:
        shared, unshared = rows[f"repshare_{precision}"], rows[f"unshared_{precision}"]
        v = step[precision]["variants"]
        search = v["search"]
        batch = step[precision]["setting"]["batch"]
        out.update({
            f"block_memory_{precision}": shared["peak_bytes"] / unshared["peak_bytes"],
            f"block_time_{precision}": shared["time_s"] / unshared["time_s"],
            f"search_vs_plain_{precision}": search["median_s"] / v["plain"]["median_s"],
            f"voc_search_gpu_days_{precision}": PAPER_VOC_SEARCH_ITERATIONS * search["median_s"] / SECONDS_PER_DAY,
            f"search_peak_bytes_per_image_{precision}":
                None if search["peak_bytes"] is None else search["peak_bytes"] / batch,
        })
    return out


def _gib(nbytes: Optional[float]) -> str:
    return "–" if nbytes is None else f"{nbytes / 2 ** 30:.2f}"


def format_report(report: dict) -> str:
    """The Markdown: machine, block table, step table, targets."""
    machine, block, step, figures = report["machine"], report["block"], report["step"], report["summary"]
    b = block["setting"]
    lines = [f"GPU check on **{machine['gpu'] if machine['device'] == 'cuda' else machine['cpu'] + ' (CPU)'}** "
             f"(torch {machine.get('torch')}, {machine.get('date', '')}), "
             f"`python -m benchmarks.gpu_check{' --smoke' if report['smoke'] else ''}`, "
             f"{report['elapsed_s']:.0f} s.", "",
             f"Transformation block, c′ = {b['channels']}, `{b['space']}` space, batch {b['batch']} at "
             f"{b['image'][0]}×{b['image'][1]} (FPN levels {b['levels'][0][0]}×{b['levels'][0][1]} … "
             f"{b['levels'][-1][0]}×{b['levels'][-1][1]}), forward + backward; AMP = autocast to {b['amp_dtype']}:", ""]
    rows = block["rows"]
    lines.append(markdown_table(
        ["precision", "unshared peak (MiB)", "RepShare peak (MiB)", "memory ratio", "unshared (ms)",
         "RepShare (ms)", "time ratio"],
        [[p, mib(rows[f"unshared_{p}"]["peak_bytes"]), mib(rows[f"repshare_{p}"]["peak_bytes"]),
          ratio(rows[f"repshare_{p}"]["peak_bytes"], rows[f"unshared_{p}"]["peak_bytes"]),
          f"{1e3 * rows[f'unshared_{p}']['time_s']:.1f}", f"{1e3 * rows[f'repshare_{p}']['time_s']:.1f}",
          ratio(rows[f"repshare_{p}"]["time_s"], rows[f"unshared_{p}"]["time_s"])] for p in PRECISIONS]))
    s = step["fp32"]["setting"]
    lines += ["", f"Iterations through the trainers: `{s['search_config']}` (search: α step + w step) against "
              f"`{s['plain_config']}`, batch {s['batch']} at short side {s['image'][0]} (long ≤ {s['image'][1]}), "
              f"{s['classes']} classes, random weights, {s['warmup']} warm-up + {s['iterations']} timed "
              "iterations each, medians; the VOC search projected at 12.5k iterations:", ""]
    step_rows = []
    for p in PRECISIONS:
        v = step[p]["variants"]
        step_rows.append([p, f"{v['plain']['median_s']:.3f}", f"{v['search']['median_s']:.3f}",
                          f"{figures[f'search_vs_plain_{p}']:.2f}×", _gib(v["plain"]["peak_bytes"]),
                          _gib(v["search"]["peak_bytes"]), _gib(figures[f"search_peak_bytes_per_image_{p}"]),
                          f"{figures[f'voc_search_gpu_days_{p}']:.3f}"])
    lines.append(markdown_table(["precision", "plain (s/it)", "search (s/it)", "search / plain",
                                 "plain peak (GiB)", "search peak (GiB)", "search peak / image (GiB)",
                                 "VOC search (GPU-days)"], step_rows))
    lines += ["", "Targets (mixed precision):", ""]
    lines.append(markdown_table(["figure", "target", "measured", "met"], [
        [name, f"≤ {bound}", f"{figures[f'{name}_amp']:.3f}", "yes" if figures[f"{name}_amp"] <= bound else "**no**"]
        for name, bound in TARGETS.items()]))
    return "\n".join(lines)


def run(device: str, smoke: bool, iterations: Optional[int] = None) -> dict:
    """Both sections at the paper's sizes (or ``smoke``'s) on ``device``; the report's dict."""
    sizes = SMOKE if smoke else PAPER
    step = dict(sizes["step"])
    if not smoke:
        step["workers"] = None  # the configs' loaders
    if iterations:
        step["iterations"] = iterations
    settings = Settings(device=device, threads=torch.get_num_threads(), **({} if smoke else {"warmup": 3, "repeats": 10}))
    start = time.perf_counter()
    print(f"[gpu_check] block section on {device} …", file=sys.stderr, flush=True)
    block = block_section(settings, **sizes["block"])
    print(f"[gpu_check] step section ({step.get('iterations')} iterations per trainer and precision) …",
          file=sys.stderr, flush=True)
    steps = step_section(device, step)
    return {"machine": machine_info(settings), "smoke": smoke, "block": block, "step": steps,
            "summary": summary(block, steps), "elapsed_s": time.perf_counter() - start}


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (cuda when present; default)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds on a CPU; the CI test)")
    parser.add_argument("--iterations", type=int, help="timed iterations per trainer (default 10)")
    parser.add_argument("--out", help="output folder (default benchmarks/results; none with --smoke)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here (use --device cpu or --smoke)")
    report = run(device, args.smoke, args.iterations)
    table = format_report(report)
    out = args.out or (None if args.smoke else RESULTS)
    search_wallclock.write_results(out, "gpu_check", report, table)
    print(table)
    if out:
        print(f"[gpu_check] wrote {out}/gpu_check.{{json,md}}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
