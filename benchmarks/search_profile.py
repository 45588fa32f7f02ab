"""Profile of one search iteration by module, beside one plain iteration: where the search's extra
time goes (backbone, FPN, each FAD group, predictors, losses; α step against w step).

The trainers and the setting are those of :mod:`benchmarks.search_wallclock` (``SearchTrainer``
on the paper's FCOS R-50 search config, ``Trainer`` on plain FCOS R-50, batch 4 at 416 / 693 of
the embedded dataset, random weights, the default threads), driven by their public API.  After
``--warmup`` iterations, one iteration runs under ``torch.profiler`` (CPU, wall time):

* **forward**, by module: ``record_function`` ranges opened by forward pre-hooks and closed by
  forward hooks on the backbone's bottom-up network (ResNet), the backbone (its own time: the FPN),
  the head's box and cls parts (the FAD module's ``box`` / ``cls`` cell groups, or the stock
  head's ``bbox_subnet`` / ``cls_subnet`` towers), the head (its own time: the predictors) and
  the detector's ``forward_training`` (target assignment and losses); "other" is the rest of the
  model's forward (image normalisation and padding);
* **backward**, by module: every ``autograd::engine::evaluate_function`` event is charged to the
  module whose forward created its autograd node (the profiler's sequence numbers link the two);
* **passes**: every forward of the model starts one; a pass in which a weight's gradient is
  accumulated is the w step (the plain iteration's only pass), one in which only α's is, the
  α step (post-accumulate-grad hooks mark them in the profile);
* outside the passes: loading the batches and the optimizers' ``step`` / ``zero_grad`` (ranges
  ``torch.profiler`` records itself), and the rest of the iteration (gradient clipping, the
  trainers' hooks and logging, the profiler's own work).

The profiler adds a few microseconds per op (the supernet runs ~10⁴ ops a pass).  The search
runs with the head's batch split off (``MODEL.FAD.CPU_BATCH_THREADS 1``): the ranges above are
per thread, and the split's worker threads would run the cell groups side by side, so that wall
time could no longer be charged to one module at a time; ``search_wallclock --unsplit`` measures
what the split saves.

    python -m benchmarks.search_profile                    # writes benchmarks/results/search_profile.{json,md}
    python -m benchmarks.search_profile --threads 1 --warmup 1
    python -m benchmarks.search_profile --smoke            # tiny models and images (seconds)
"""
import argparse
import bisect
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import torch
from detectron2.engine import HookBase
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

from fad_d2.search import search_groups

from .common import Settings, machine_info, markdown_table
from .search_wallclock import (PLAIN_CONFIG, RESULTS, SEARCH_CONFIG, UNSPLIT_OPTS, add_run_arguments, run_setting,
                               run_trainer, trainer_config, write_results)

PARTS = {"backbone": "backbone (ResNet bottom-up)", "fpn": "FPN (lateral, output, P6/P7 convs)",
         "head_box": "head: box group (FAD) / box tower (stock)",
         "head_cls": "head: cls group (FAD) / cls tower (stock)",
         "head_rest": "head: predictors (and the FAD shortcut)",
         "losses": "losses (target assignment + loss)", "other": "other (image normalisation, padding)"}
"""The rows of the profile, in order: part key → label."""
PREFIX = "fad_profile::"
MODEL_RANGE = PREFIX + "model"
GRAD_MARKS = {"alpha": PREFIX + "alpha grad", "weight": PREFIX + "weight grad"}
OUTSIDE = {"data": ("enumerate(DataLoader)",), "optimizer": ("Optimizer.step#", "Optimizer.zero_grad#")}
"""The iteration's time outside the forward and backward passes that ``torch.profiler`` labels
itself: the data loaders' ``__next__`` and the optimizers' ``step`` / ``zero_grad``."""
OUTSIDE_LABELS = {"data": "loading the batches (data loader `__next__`)",
                  "optimizer": "optimizer steps and `zero_grad` (w: SGD, α: Adam)",
                  "rest": "the rest (gradient clipping, hooks, logging, profiler)"}
COLUMNS = {"plain": ("w",), "search": ("alpha", "w")}
STEP_LABELS = {"alpha": "α step", "w": "w step"}


def labelled_modules(model: torch.nn.Module) -> Dict[str, torch.nn.Module]:
    """Part key → the module whose forward is charged to it (FAD head or stock FCOS head)."""
    head = model.head
    fad = getattr(head, "fad", None)
    return {"backbone": model.backbone.bottom_up, "fpn": model.backbone,
            "head_box": fad.box if fad is not None else head.bbox_subnet,
            "head_cls": fad.cls if fad is not None else head.cls_subnet,
            "head_rest": head, "other": model}


class _Range:
    """Forward pre-hook / forward hook pair keeping a ``record_function`` range open around a
    module's forward."""

    def __init__(self, name: str):
        self.name = name
        self.open: List[record_function] = []

    def enter(self, *_):
        self.open.append(record_function(self.name))
        self.open[-1].__enter__()

    def exit(self, *_):
        self.open.pop().__exit__(None, None, None)


def _mark(name: str) -> None:
    """An empty ``record_function`` range: a point in time in the profile."""
    with record_function(name):
        pass


class ProfileIteration(HookBase):
    """Labels the model's parts (module hooks, a wrapped ``forward_training``, gradient marks)
    and profiles iteration ``iteration``; :meth:`after_train` takes the labels off again."""

    def __init__(self, model: torch.nn.Module, iteration: int):
        if iteration < 1:
            raise ValueError(f"the profiled iteration must follow at least one warm-up iteration, got {iteration}")
        self.model = model
        self.iteration = iteration
        self.handles = []
        for part, module in labelled_modules(model).items():
            rng = _Range(MODEL_RANGE if part == "other" else PREFIX + part)
            self.handles += [module.register_forward_pre_hook(rng.enter),
                             module.register_forward_hook(rng.exit)]
        forward_training = model.forward_training

        def losses(*args, **kwargs):
            with record_function(PREFIX + "losses"):
                return forward_training(*args, **kwargs)

        model.forward_training = losses  # an instance attribute, shadowing the method
        marked = {"alpha": [group.alpha for group in search_groups(model)],
                  "weight": [model.head.cls_score.weight]}  # the predictor: trained in every config
        for kind, params in marked.items():
            for p in params:
                # α requires a gradient only inside the α step; a hook is registered on a
                # parameter while it requires one, and fires whenever it gets one
                requires_grad = p.requires_grad
                p.requires_grad_(True)
                self.handles.append(p.register_post_accumulate_grad_hook(
                    lambda _, mark=GRAD_MARKS[kind]: _mark(mark)))
                p.requires_grad_(requires_grad)
        self.profiler: Optional[profile] = None
        self.wall_s = None

    def after_step(self):
        # Registered last, this hook opens the profile at the very end of the previous
        # iteration, so that the profiled one holds every hook's before_step (the α step runs
        # in AlphaUpdateHook.before_step), its run_step and every after_step before this one.
        if self.trainer.iter == self.iteration - 1:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.__enter__()
            self.start = time.perf_counter()
        elif self.trainer.iter == self.iteration:
            self.wall_s = time.perf_counter() - self.start
            self.profiler.__exit__(None, None, None)

    def after_train(self):
        for handle in self.handles:
            handle.remove()
        del self.model.forward_training


def _own_times(ranges: List[tuple]) -> List[float]:
    """Each range's duration less that of the ranges directly nested in it (``ranges``:
    ``(start, end, name)`` sorted by start, then longest first; properly nested)."""
    own = [end - start for start, end, _ in ranges]
    open_ranges = []
    for i, (start, end, _) in enumerate(ranges):
        while open_ranges and ranges[open_ranges[-1]][1] <= start:
            open_ranges.pop()
        if open_ranges:
            own[open_ranges[-1]] -= end - start
        open_ranges.append(i)
    return own


def _innermost(ranges: List[tuple], t: float) -> Optional[str]:
    """The name of the innermost range of ``ranges`` (as for :func:`_own_times`) holding ``t``."""
    holding = [r for r in ranges if r[0] <= t < r[1]]
    return holding[-1][2] if holding else None


def attribute(events, wall_s: float) -> dict:
    """Seconds per step (``"alpha"`` / ``"w"``), direction (``"forward"`` / ``"backward"``) and part
    (:data:`PARTS`) from the profiler's events of one iteration (see the module docstring), the
    iteration's wall time and the time outside every forward and backward."""
    ranges = sorted(((e.time_range.start, e.time_range.end, e.name[len(PREFIX):]) for e in events
                     if e.name.startswith(PREFIX) and e.name not in GRAD_MARKS.values()),
                    key=lambda r: (r[0], -r[1]))
    pass_starts = [start for start, _, name in ranges if name == "model"]
    marks = [(e.time_range.start, e.name) for e in events if e.name in GRAD_MARKS.values()]
    steps = []
    for i, start in enumerate(pass_starts):
        end = pass_starts[i + 1] if i + 1 < len(pass_starts) else float("inf")
        kinds = {name for t, name in marks if start <= t < end}
        steps.append("w" if GRAD_MARKS["weight"] in kinds else "alpha")

    def step_at(t: float) -> str:
        return steps[max(bisect.bisect_right(pass_starts, t) - 1, 0)]

    def part(name: str) -> str:
        return "other" if name == "model" else name

    seconds = defaultdict(float)
    for (start, _, name), own in zip(ranges, _own_times(ranges)):
        seconds[(step_at(start), "forward", part(name))] += own / 1e6
    created = {}  # sequence number of an autograd node → the part whose forward made it
    for e in events:
        name = _innermost(ranges, e.time_range.start) if e.sequence_nr >= 0 else None
        if name is not None:
            created[e.sequence_nr] = part(name)
    for e in events:
        if e.name.startswith("autograd::engine::evaluate_function"):
            key = (step_at(e.time_range.start), "backward", created.get(e.sequence_nr, "other"))
            seconds[key] += (e.time_range.end - e.time_range.start) / 1e6
    outside = {kind: sum(e.time_range.end - e.time_range.start for e in _outermost(events, prefixes)) / 1e6
               for kind, prefixes in OUTSIDE.items()}
    outside["rest"] = wall_s - sum(seconds.values()) - sum(outside.values())
    return {"steps": steps, "wall_s": wall_s, "outside_s": outside,
            "seconds": {f"{s}/{d}/{p}": v for (s, d, p), v in seconds.items()}}


def _outermost(events, prefixes: Sequence[str]) -> list:
    """The events whose name starts with one of ``prefixes`` and that no other such event holds."""
    chosen = sorted((e for e in events if e.name.startswith(tuple(prefixes))),
                    key=lambda e: (e.time_range.start, -e.time_range.end))
    outermost, end = [], float("-inf")
    for e in chosen:
        if e.time_range.start >= end:
            outermost.append(e)
            end = e.time_range.end
    return outermost


def profile_trainer(variant: str, cfg, warmup: int) -> dict:
    """Run ``warmup`` iterations of the trainer of ``variant``, then profile one (not the last,
    which ends in writing the final checkpoint)."""
    holder = {}

    def hooks(trainer):
        holder["hook"] = ProfileIteration(trainer.model, warmup)
        return [holder["hook"]]

    run_trainer(variant, cfg, hooks)
    hook = holder.pop("hook")
    return attribute(hook.profiler.events(), hook.wall_s)


def profile_iterations(search_config: str = SEARCH_CONFIG, plain_config: str = PLAIN_CONFIG, *,
                       batch: int = 4, short_side: int = 416, max_size: int = 693, warmup: int = 2,
                       num_classes: int = 20, device: str = "cpu", workers: Optional[int] = None,
                       extra_opts: Sequence[str] = ()) -> dict:
    """:func:`profile_trainer` for the plain and the search trainer."""
    configs = {"plain": plain_config, "search": search_config}
    variants = {}
    for variant, config in configs.items():
        output_dir = tempfile.mkdtemp(prefix=f"fad_profile_{variant}_")
        try:
            cfg = trainer_config(config, output_dir=output_dir, batch=batch, short_side=short_side,
                                 max_size=max_size, max_iter=warmup + 2, num_classes=num_classes,
                                 device=device, workers=workers,
                                 extra_opts=(*extra_opts, *(UNSPLIT_OPTS if variant == "search" else ())))
            variants[variant] = profile_trainer(variant, cfg, warmup)
        finally:
            shutil.rmtree(output_dir, ignore_errors=True)
    setting = {"batch": batch, "image": [short_side, max_size], "classes": num_classes,
               "search_config": search_config, "plain_config": plain_config,
               "threads": torch.get_num_threads(), "warmup": warmup, "search_opts": list(UNSPLIT_OPTS)}
    return {"setting": setting, "variants": variants}


def format_profile(result: dict) -> str:
    """The Markdown table: ms per part and pass direction, totals, search / plain per part."""
    s, v = result["setting"], result["variants"]
    columns = [(variant, step, direction) for variant in ("plain", "search")
               for step in COLUMNS[variant] for direction in ("forward", "backward")]

    def get(variant, step, direction, part):
        return v[variant]["seconds"].get(f"{step}/{direction}/{part}", 0.0)

    def total(variant, part):
        return sum(get(variant, st, d, part) for st in COLUMNS[variant] for d in ("forward", "backward"))

    def ms(x):
        return f"{1e3 * x:.0f}"

    def versus(a, b):
        return f"{a / b:.2f}×" if b > 0 else "–"

    rows = []
    for part, label in PARTS.items():
        rows.append([label, *(ms(get(*c, part)) for c in columns), ms(total("plain", part)),
                     ms(total("search", part)), versus(total("search", part), total("plain", part))])
    for kind, label in OUTSIDE_LABELS.items():
        plain, search = (v[name]["outside_s"][kind] for name in ("plain", "search"))
        rows.append([f"outside the passes: {label}", *([""] * len(columns)), ms(plain), ms(search),
                     versus(search, plain)])
    walls = {name: v[name]["wall_s"] for name in v}
    rows.append(["**iteration (wall)**", *([""] * len(columns)), f"**{ms(walls['plain'])}**",
                 f"**{ms(walls['search'])}**", f"**{versus(walls['search'], walls['plain'])}**"])
    headers = ["part", *(f"{'plain' if va == 'plain' else STEP_LABELS[st]} {d[:3]}" for va, st, d in columns),
               "plain total", "search total", "search / plain"]
    title = (f"One iteration under `torch.profiler` (ms, wall time, {s['threads']} thread(s), after "
             f"{s['warmup']} warm-up iterations): batch {s['batch']} at short side {s['image'][0]} "
             f"(long ≤ {s['image'][1]}), {s['classes']} classes; `{s['search_config']}` (with "
             f"`{' '.join(s['search_opts'])}`) against `{s['plain_config']}`:")
    return f"{title}\n\n{markdown_table(headers, rows)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    result = profile_iterations(**run_setting(args, workers=None))
    machine = machine_info(Settings(device=args.device, threads=torch.get_num_threads()))
    table = format_profile(result)
    out = args.out or (None if args.smoke else RESULTS)
    write_results(out, "search_profile", {"machine": machine, "result": result}, table)
    print(table)
    if out:
        print(f"[bench] wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
