"""Resumable runs of the project's CLIs, as the demo and the study drive them.

A run is ``train_net.py`` or ``search_net.py`` in its own ``OUTPUT_DIR`` with ``--resume``; when it
ends, ``run.json`` (wall time, command) is written there, and a later call reuses the finished
run instead of starting it again.  A killed run is continued by Detectron2's own resume.
"""
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
        return [sys.executable, os.path.join(REPO, self.script), "--config-file", self.config, "--resume",
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
            proc = subprocess.run(cmd, cwd=REPO, env=env)
        else:
            with open(log_file, "a") as log:
                proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            where = f" (log: {log_file})" if log_file else ""
            raise RuntimeError(f"{self.name}: {self.script} exited with status {proc.returncode}{where}")
        seconds = time.time() - start
        with open(self.done_file, "w") as f:
            json.dump({"seconds": seconds, "command": cmd[1:]}, f)
        return seconds


class Progress:
    """Prints ``[tag] step k/n: name … ETA`` lines; the ETA of the steps left is their nominal
    times scaled by how the finished steps compared with theirs on this machine."""

    def __init__(self, tag: str, steps: Sequence[Step]):
        self.tag = tag
        self.steps = list(steps)

    def eta_s(self, jobs: int = 1) -> float:
        """Seconds left for the unfinished steps run ``jobs`` at a time."""
        done = [(s.seconds(), s.nominal_s) for s in self.steps if s.finished()]
        scale = sum(a for a, _ in done) / sum(b for _, b in done) if done else 1.0
        return scale * sum(s.nominal_s for s in self.steps if not s.finished()) / jobs

    def announce(self, step: Step):
        k = self.steps.index(step) + 1
        state = "done before, reused" if step.finished() else f"running, ETA of the rest {self.eta_s() / 60:.1f} min"
        print(f"[{self.tag}] step {k}/{len(self.steps)}: {step.name} ({state}) -> {step.output_dir}", flush=True)

    def run(self, step: Step, device: str, log_file: Optional[str] = None) -> float:
        self.announce(step)
        return step.run(device, log_file)


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
