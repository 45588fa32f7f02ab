"""The GPU check: the paper's search setting on one GPU, in fp32 and mixed precision (≤ 8 min).

    python -m benchmarks.gpu_check                 # make bench-gpu: CUDA, the paper's sizes
    python -m benchmarks.gpu_check --smoke         # any machine: tiny sizes on the CPU (CI)

Sections (JSON + Markdown in ``--out``, default ``benchmarks/results/gpu_check.{json,md}``):

* ``block``: one transformation block at c′ = 96 over the ``full`` space (paper §3.2, Table 2's
  search setting: batch 4, the five FPN levels of 416×693), RepShare against unshared, forward +
  backward: peak memory above the inputs (``torch.cuda.max_memory_allocated``) and median time,
  in fp32 and under autocast (float16 on CUDA, bfloat16 on the CPU);
* ``step``: iterations of ``search_net.py``'s trainer on the FCOS R-50 search config (M = 1,
  c′ = 96, batch 4) against ``train_net.py``'s on the plain FCOS R-50 config, both on the embedded
  dataset at 416×693, wall clock per iteration after warm-up (:mod:`benchmarks.search_wallclock`),
  fp32 and AMP (``SOLVER.AMP.ENABLED``); the search's iterations per second give the projected
  time of the paper's VOC search (12.5k iterations) in GPU-days, and its peak memory per image.
"""
import argparse
import os
import time
from typing import Dict, List

import torch

from .common import (Settings, image_size, level_sizes, machine_info, markdown_table, mib, peak_memory_bytes,
                     ratio, release_memory, time_fns, write_json)
from .mixed_op import BlockWorkload, build_block

PAPER_VOC_SEARCH_ITERATIONS = 12_500  # paper §4.1: 12.5k iterations, batch 4, one GPU
SECONDS_PER_DAY = 86_400.0
BLOCK_VARIANTS = ("unshared", "repshare")
PRECISIONS = ("fp32", "amp")


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The mixed-precision type: float16 on CUDA (with gradient scaling in training), bfloat16 on
    the CPU (no scaling needed)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def block_step(workload: BlockWorkload, precision: str):
    """A forward + backward of ``workload`` in ``precision`` ("fp32" / "amp")."""
    if precision == "fp32":
        return workload.step
    device = workload.inputs[0].device

    def step():
        workload.zero_grad()
        with torch.autocast(device.type, dtype=autocast_dtype(device)):
            outputs = workload.forward()
        torch.autograd.backward(outputs, [g.to(o.dtype) for o, g in zip(outputs, workload.output_grads)])

    return step


def block_section(settings: Settings, batch: int, short_side: int, channels: int) -> dict:
    """Peak memory and time of the RepShare and unshared blocks in fp32 and AMP."""
    device = settings.torch_device
    levels = level_sizes(*image_size(short_side))
    torch.manual_seed(0)
    rows = {}
    for variant in BLOCK_VARIANTS:
        workload = BlockWorkload(build_block(variant, "full", channels), batch, levels, device)
        steps = {p: block_step(workload, p) for p in PRECISIONS}
        times = time_fns(steps, settings)
        for precision, step in steps.items():
            workload.zero_grad()
            rows[f"{variant}_{precision}"] = {"variant": variant, "precision": precision,
                                              "time_s": times[precision]["median_s"],
                                              "peak_bytes": peak_memory_bytes(step, device)}
        del workload, steps
        release_memory()
    return {"setting": {"batch": batch, "image": list(image_size(short_side)), "levels": levels,
                        "channels": channels, "space": "full"}, "rows": rows}


def block_table(section: dict) -> str:
    rows = section["rows"]
    lines = []
    for precision in PRECISIONS:
        shared, unshared = rows[f"repshare_{precision}"], rows[f"unshared_{precision}"]
        lines.append([precision, mib(unshared["peak_bytes"]), mib(shared["peak_bytes"]),
                      ratio(shared["peak_bytes"], unshared["peak_bytes"]),
                      f"{1e3 * unshared['time_s']:.1f}", f"{1e3 * shared['time_s']:.1f}",
                      ratio(shared["time_s"], unshared["time_s"])])
    return markdown_table(["precision", "unshared peak (MiB)", "RepShare peak (MiB)", "memory ratio",
                           "unshared fwd+bwd (ms)", "RepShare fwd+bwd (ms)", "time ratio"], lines)
