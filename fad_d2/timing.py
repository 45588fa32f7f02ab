"""Latency measurement shared by the cost tables (``fad_d2.cost``), the export check and the
benchmarks.

:func:`time_fns` runs warm-up calls, then rounds of single timed calls, and reports medians:
process CPU time on one CPU thread, wall time (CUDA synchronised, the clock of
``torch.utils.benchmark``) otherwise (:func:`clock`).
"""
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
from torch.utils.benchmark.utils.common import set_torch_threads
from torch.utils.benchmark.utils.timer import timer as benchmark_timer


@dataclass(frozen=True)
class Settings:
    """How a measurement runs: ``device`` (``"cpu"`` / ``"cuda"``), ``threads`` (CPU threads),
    ``warmup`` calls and ``repeats`` measured calls (medians are reported)."""

    device: str = "cpu"
    threads: int = 1
    warmup: int = 1
    repeats: int = 3

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)


def clock(settings: Settings) -> Tuple[str, Callable[[], float]]:
    """The clock timing uses, with its name: the process's CPU time on the CPU with one thread
    (what the measurement itself computed, blind to other processes' load, and equal to wall
    time on an idle machine); wall time otherwise (``torch.utils.benchmark``'s timer, which
    synchronises CUDA)."""
    if settings.device == "cpu" and settings.threads == 1:
        return "process CPU time", time.process_time
    return "wall time", benchmark_timer


def time_fns(fns: Dict[str, Callable[[], object]], settings: Settings) -> Dict[str, dict]:
    """Median time (seconds, :func:`clock`) of each ``fns[name]()`` on ``settings.threads``
    threads: ``settings.warmup`` calls each, then ``settings.repeats`` rounds calling each once
    in turn (so that a machine's load drifts alike over all of them).  Returns ``{name:
    {"median_s", "times_s", "warmup", "repeats", "clock"}}``.

    (``torch.utils.benchmark.Timer.timeit`` is not used: it runs two more warm-up calls before
    every measurement, which triples the cost of the multi-second steps.)"""
    clock_name, now = clock(settings)
    times = {name: [] for name in fns}
    with set_torch_threads(settings.threads):
        for fn in fns.values():
            for _ in range(settings.warmup):
                fn()
        for _ in range(settings.repeats):
            for name, fn in fns.items():
                start = now()
                fn()
                times[name].append(now() - start)
    return {name: {"median_s": statistics.median(t), "times_s": t, "warmup": settings.warmup,
                   "repeats": settings.repeats, "clock": clock_name} for name, t in times.items()}


def device_name(device: str) -> str:
    """What a latency was measured on: the GPU's name for ``cuda``, the CPU's model otherwise
    (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"
