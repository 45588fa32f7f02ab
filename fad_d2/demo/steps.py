"""Resumable runs of the project's CLIs, as the demo and the study drive them.

A run is ``train_net.py`` or ``search_net.py`` (run as their modules, ``python -m fad_d2.cli.train``
/ ``fad_d2.cli.search``, so that an installed fad_d2 needs no checkout) in its own ``OUTPUT_DIR``
with ``--resume``, in the current directory; when it ends, ``run.json`` (wall time, command) is
written there, and a later call reuses the finished run instead of starting it again.  A killed
run is continued by Detectron2's own resume.
"""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

CLI_MODULES = {"train_net.py": "fad_d2.cli.train", "search_net.py": "fad_d2.cli.search"}
DONE_FILE = "run.json"
AP_KEYS = ("AP", "AP50", "APs", "APm", "APl")


@dataclass
class Step:
    """One CLI run: ``script`` (``train_net.py`` / ``search_net.py``) on ``config`` with ``opts``
    (``KEY VALUE`` overrides), writing to ``output_dir``; ``nominal_s`` is its expected wall
    time on 2 idle CPU cores, used for the ETA before the run has timed itself."""

    name: str
    script: str
    config: str
    output_dir: str
    opts: Sequence[str] = ()
    nominal_s: float = 60.0
    env: Dict[str, str] = field(default_factory=dict)

    @property
    def done_file(self) -> str:
        return os.path.join(self.output_dir, DONE_FILE)

    def finished(self) -> bool:
        return os.path.isfile(self.done_file)

    def seconds(self) -> Optional[float]:
        """Wall time of the finished run (None while unfinished)."""
        if not self.finished():
            return None
        with open(self.done_file) as f:
            return json.load(f)["seconds"]

    def command(self, device: str) -> List[str]:
        """The command line of the run: the CLI's module in this Python."""
        return [sys.executable, "-m", CLI_MODULES[self.script], "--config-file", self.config, "--resume",
                "MODEL.DEVICE", device, "OUTPUT_DIR", self.output_dir, *map(str, self.opts)]

    def run(self, device: str, log_file: Optional[str] = None) -> float:
        """Run (or continue) the step unless it finished before; returns its wall time in s.
        ``log_file``: where the CLI's output goes (default: this process's stdout)."""
        if self.finished():
            return self.seconds()
        os.makedirs(self.output_dir, exist_ok=True)
        cmd = self.command(device)
        start = time.time()
        env = {**os.environ, **self.env}
        if log_file is None:
            proc = subprocess.run(cmd, env=env)
        else:
            with open(log_file, "a") as log:
                proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            where = f" (log: {log_file})" if log_file else ""
            raise RuntimeError(f"{self.name}: {self.script} exited with status {proc.returncode}{where}")
        seconds = time.time() - start
        with open(self.done_file, "w") as f:
            json.dump({"seconds": seconds, "command": cmd[1:]}, f)
        return seconds


class Progress:
    """Prints ``[tag] step k/n: name … ETA`` lines; the ETA of the steps left is their nominal
    times scaled by how the finished steps compared with theirs on this machine.  Steps listed
    in ``side_by_side`` run at the same time: only the longest of them counts."""

    def __init__(self, tag: str, steps: Sequence[Step], side_by_side: Sequence[Step] = ()):
        self.tag = tag
        self.steps = list(steps)
        self.side_by_side = list(side_by_side)

    def eta_s(self, jobs: int = 1) -> float:
        """Seconds left for the unfinished steps run ``jobs`` at a time."""
        done = [(s.seconds(), s.nominal_s) for s in self.steps if s.finished()]
        scale = sum(a for a, _ in done) / sum(b for _, b in done) if done else 1.0
        alone = [s.nominal_s for s in self.steps if not s.finished() and s not in self.side_by_side]
        together = [s.nominal_s for s in self.side_by_side if not s.finished()]
        return scale * (sum(alone) / jobs + max(together, default=0.0))

    def run_side_by_side(self, steps: Sequence[Step], device: str, report_every_s: float = 60.0) -> None:
        """Run ``steps`` at the same time, each logging to its ``OUTPUT_DIR/console.log``, and
        print every ``report_every_s`` seconds each one's iteration and Detectron2's ETA."""
        for step in steps:
            self.announce(step)
        with ThreadPoolExecutor(max_workers=len(steps)) as pool:
            futures = [pool.submit(step.run, device, os.path.join(step.output_dir, "console.log"))
                       for step in steps]
            while wait(futures, timeout=report_every_s).not_done:
                states = "; ".join(f"{step.name}: {latest_iteration(step.output_dir)}"
                                   for step, future in zip(steps, futures) if not future.done())
                print(f"[{self.tag}] {time.strftime('%H:%M:%S')} {states}", flush=True)
            for step, future in zip(steps, futures):
                print(f"[{self.tag}] {step.name}: done in {future.result() / 60:.1f} min", flush=True)

    def announce(self, step: Step):
        k = self.steps.index(step) + 1
        state = "done before, reused" if step.finished() else f"running, ETA of the rest {self.eta_s() / 60:.1f} min"
        print(f"[{self.tag}] step {k}/{len(self.steps)}: {step.name} ({state}) -> {step.output_dir}", flush=True)

    def run(self, step: Step, device: str, log_file: Optional[str] = None) -> float:
        self.announce(step)
        return step.run(device, log_file)


def thread_env(threads: int) -> Dict[str, str]:
    """The environment that caps a step's CPU threads (OpenMP and MKL) at ``threads``."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def threads_per_job(jobs: int) -> int:
    """The CPU threads each of ``jobs`` runs side by side gets: this machine's cores shared out,
    at least one."""
    return max(1, (os.cpu_count() or 1) // jobs)


def latest_iteration(output_dir: str) -> str:
    """``iter N, eta H:MM:SS`` from the last metrics line of ``OUTPUT_DIR/log.txt`` (Detectron2's
    ``CommonMetricPrinter``), or ``starting`` before there is one."""
    try:
        with open(os.path.join(output_dir, "log.txt")) as f:
            lines = [line for line in f if " iter: " in line]
    except OSError:
        return "starting"
    if not lines:
        return "starting"
    fields = lines[-1].split()
    value = {name: fields[i + 1] for i, name in enumerate(fields[:-1]) if name in ("iter:", "eta:")}
    return f"iter {value.get('iter:', '?')}, eta {value.get('eta:', '?')}"


def final_bbox_metrics(output_dir: str) -> Dict[str, float]:
    """The last ``bbox/*`` metrics Detectron2 wrote to ``OUTPUT_DIR/metrics.json`` (COCOEvaluator)."""
    last = None
    with open(os.path.join(output_dir, "metrics.json")) as f:
        for line in f:
            record = json.loads(line)
            if "bbox/AP" in record:
                last = record
    if last is None:
        raise RuntimeError(f"{output_dir}/metrics.json has no bbox metrics")
    return {k: last[f"bbox/{k}"] for k in AP_KEYS}
