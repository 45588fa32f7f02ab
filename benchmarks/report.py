"""The Markdown benchmark table (``benchmarks/results/README_table.md``) from the sections'
results: where it ran, each section's table, and the speed and memory targets with the measured
figures."""
from typing import Dict, List

from . import derived_head, mixed_op, search_step, search_wallclock
from .common import markdown_table

TARGET_BLOCK = 0.5  # RepShare / unshared block: peak activation memory and forward+backward time
TARGET_STEP = 2.5  # search iteration / plain FCOS iteration


def machine_line(machine: dict) -> str:
    """One line naming the machine, the software, the threads and the date."""
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ""
    load = machine.get("load_average_1min")
    busy = ""
    if load is not None and load > 0.5:
        busy = f"; 1-min load average {load:.1f} at start (other work running: timings noisy)"
    capability = f" ({machine['cpu_capability']})" if machine.get("cpu_capability") else ""
    return (f"{machine['cpu']}{capability}, {machine['cores']} cores{gpu}; device `{machine['device']}`, "
            f"{machine['threads']} thread(s); torch {machine['torch']}, detectron2 "
            f"{machine['detectron2']}, Python {machine['python']}; {machine['date']}{busy}.")


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "**not met**"


def _memory_ratios(s: dict, variant: str) -> List[float]:
    """Saved-activation and (when measured) peak ratios of ``variant`` to unshared."""
    return [s[f"{kind}_{variant}_vs_unshared"] for kind in ("saved", "peak")
            if f"{kind}_{variant}_vs_unshared" in s]


def _block_rows(s: dict) -> List[List[str]]:
    def memory(variant):
        return ", ".join(f"{r:.2f}× {kind}" for r, kind in
                         zip(_memory_ratios(s, variant), ("saved activations", "peak")))

    return [
        [f"RepShare / unshared block, peak activation memory ≤ {TARGET_BLOCK}×", memory("repshare"),
         _verdict(max(_memory_ratios(s, "repshare")), TARGET_BLOCK),
         f"straightforward RepShare: {memory('naive')} (it keeps its depthwise outputs for backward)"],
        [f"RepShare / unshared block, forward+backward time ≤ {TARGET_BLOCK}×",
         f"{s['time_repshare_vs_unshared']:.2f}×", _verdict(s["time_repshare_vs_unshared"], TARGET_BLOCK),
         f"straightforward RepShare: {s['time_naive_vs_unshared']:.2f}×"],
        ["optimised RepShare block faster than the straightforward one, same function",
         f"{s['time_optimised_vs_naive']:.2f}× time, "
         f"{s['saved_optimised_vs_naive']:.2f}× saved activations",
         _verdict(s["time_optimised_vs_naive"], 1.0),
         "outputs and gradients equal: `tests/space/test_space_fast_repshare.py`"],
    ]


def targets_table(sections: Dict[str, dict]) -> str:
    """The targets with the measured figures (from the sections present) and, where one is
    missed, the reason the measurements show."""
    rows: List[List[str]] = []
    if "search_wallclock" in sections:
        s = sections["search_wallclock"]
        factor = s["summary"]["wallclock_search_vs_plain"]
        rows.append([f"search iteration ≤ {TARGET_STEP}× a plain FCOS iteration, wall clock through "
                     "the trainers", f"{factor:.2f}× ({s['result']['setting']['threads']} thread(s))",
                     _verdict(factor, TARGET_STEP), "as users meet it: `SearchTrainer` against "
                     "`DefaultTrainer`, data loaders and hooks included"])
    if "search_step" in sections:
        s = sections["search_step"]["summary"]
        rows.append([f"search step ≤ {TARGET_STEP}× a plain FCOS iteration, process CPU time on one "
                     "thread, same batch replayed", f"{s['overhead_repshare']:.2f}×",
                     _verdict(s["overhead_repshare"], TARGET_STEP), _step_note(sections["search_step"])])
    if "mixed_op" in sections:
        rows += _block_rows(sections["mixed_op"]["summary"])
    return markdown_table(["target", "measured", "", "note"], rows)


def _step_note(section: dict) -> str:
    s = section["summary"]
    if s["overhead_repshare"] <= TARGET_STEP:
        return f"unshared: {s['overhead_unshared']:.2f}×"
    v = section["result"]["variants"]
    plain = v["fcos"]["median_s"]
    parts = v["search_repshare"]["parts"]
    return (f"a search step is two passes over the supernet, each dearer than a plain iteration "
            f"(α step {parts['alpha']['median_s'] / plain:.2f}×, w step "
            f"{parts['weight']['median_s'] / plain:.2f}×: the head's 12 mixed ops outweigh the stock "
            f"towers); unshared: {s['overhead_unshared']:.2f}×")


SECTION_TABLES = (
    ("search_wallclock", "Search iteration against a plain iteration: wall clock through the trainers",
     search_wallclock.format_comparison),
    ("mixed_op", "Transformation block: RepShare against unshared", mixed_op.format_comparison),
    ("scaling", "Scaling of the transformation block (forward + backward)", mixed_op.format_scaling),
    ("search_step", "Search step against a plain FCOS iteration (one thread, CPU time)",
     search_step.format_comparison),
    ("derived_head", "Derived FAD head against the stock FCOS head", derived_head.format_comparison),
)
"""(section, heading, formatter of its result), in the file's order."""


def build(machine: dict, sections: Dict[str, dict], plan: str) -> str:
    """The whole Markdown file: machine line, how it was reduced to fit, targets, sections
    (those present in ``sections``; one measured in another run says where and when)."""
    parts = ["# Benchmarks", "", machine_line(machine), "", plan, "", "## Targets", "",
             targets_table(sections)]
    for name, heading, formatter in SECTION_TABLES:
        if name in sections:
            parts += ["", f"## {heading}", ""]
            earlier = sections[name].get("machine")
            if earlier and earlier != machine:
                parts += [f"_From an earlier run: {machine_line(earlier)}_", ""]
            parts.append(formatter(sections[name]["result"]))
    return "\n".join(parts) + "\n"
