"""What every benchmark shares: the run settings, timing, memory, the machine, Markdown.

Timing: :func:`fad_d2.timing.time_fns` (re-exported here with ``Settings`` and ``clock``) runs
warm-up calls, then rounds of single timed calls, and reports medians: process CPU time on one
CPU thread, wall time (CUDA synchronised) otherwise.

Memory, two figures:

* :func:`saved_activation_bytes`: the bytes of the distinct storages autograd saves for backward
  while a forward runs (``torch.autograd.graph.saved_tensors_hooks``; parameters excluded).
  Exact for the activation memory a training step holds between forward and backward, on any
  device.
* :func:`peak_memory_bytes`: the peak of memory allocated during a call above what was allocated
  before it (activations, gradients and temporaries): ``torch.cuda.max_memory_allocated`` on
  CUDA; on the CPU the running sum of the allocation / free events that ``torch.profiler``
  records with ``profile_memory=True``.
"""
import ctypes
import datetime
import gc
import json
import math
import os
import platform
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import detectron2
import torch
from torch.profiler import ProfilerActivity, profile

from fad_d2.timing import Settings, clock, device_name, time_fns  # noqa: F401  (re-exported)

MiB = 2 ** 20
FPN_STRIDES = (8, 16, 32, 64, 128)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def repo_path(relative: str) -> str:
    """``relative`` (e.g. ``configs/FCOS/...``) under the repository root, whatever the cwd."""
    return os.path.join(REPO, relative)


def resolve_device(name: str) -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is present, else ``"cpu"``; other names unchanged."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def image_size(short_side: int) -> Tuple[int, int]:
    """The H×W of a COCO-shaped input with short side ``short_side`` (long = short·1333/800):
    416 → 416×693, 800 → 800×1333."""
    return short_side, int(short_side * 1333 / 800)


def level_sizes(height: int, width: int, strides: Sequence[int] = FPN_STRIDES) -> List[Tuple[int, int]]:
    """The FPN level sizes ⌈H/s⌉×⌈W/s⌉ of an H×W input (416×693 → 52×87 … 4×6)."""
    return [(math.ceil(height / s), math.ceil(width / s)) for s in strides]


def saved_activation_bytes(fn: Callable[[], object], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of the distinct storages that autograd saves for backward while ``fn()`` runs,
    leaving out the storages of ``exclude`` (the parameters).  Call it on a forward pass (or a
    step whose only graph-building pass is its first one): a storage saved twice counts once."""
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(storages.values())


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated while ``fn()`` runs, above those allocated before it (see the
    module docstring for how, per device)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    running = peak = 0
    for event in events:
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def release_memory() -> None:
    """Hand memory freed by Python and torch back to the system between measurements: garbage
    collection, CUDA's cache, and glibc's ``malloc_trim`` (CPU tensors come from malloc, whose
    heap otherwise keeps the peak of every earlier measurement)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def cpu_seconds_elsewhere() -> Optional[float]:
    """CPU seconds (user + system) all processes but this one and its descendants (the data
    loader workers) have used since boot, from ``/proc`` (None without it): the difference
    between two calls is the work that shared the machine with a measurement meanwhile."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
        processes = {}  # pid → (parent pid, CPU ticks of itself and of its reaped children)
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:  # gone meanwhile
                    continue
                processes[int(entry)] = (int(fields[1]), sum(map(int, fields[11:15])))
    except OSError:
        return None
    mine, grew = {os.getpid()}, True
    while grew:
        grew = False
        for pid, (parent, _) in processes.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    own = sum(ticks for pid, (_, ticks) in processes.items() if pid in mine)
    return (user + nice + system + irq + softirq - own) / os.sysconf("SC_CLK_TCK")


def machine_info(settings: Settings) -> dict:
    """Where and when the benchmarks ran: CPU, its vector instructions as PyTorch uses them,
    cores, load, GPU, versions, threads, date.  (``cpu_capability``, e.g. AVX2 or AVX512: the
    plain detector's large convolutions gain more from wider vectors than the supernet head's
    small ops, so the search / plain ratio depends on it.)"""
    return {
        "cpu": device_name("cpu"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "device": settings.device,
        "threads": settings.threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "detectron2": detectron2.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def mib(nbytes: float) -> str:
    """``nbytes`` in MiB, one decimal."""
    return f"{nbytes / MiB:.1f}"


def ratio(a: float, b: float) -> str:
    """``a / b`` written as ``0.42×``."""
    return f"{a / b:.2f}×"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str, data: dict) -> None:
    """Write ``data`` as indented JSON, creating the folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def parameter_tensors(module: torch.nn.Module) -> List[torch.Tensor]:
    """The parameters and buffers of ``module`` (left out of activation memory)."""
    return [*module.parameters(), *module.buffers()]
