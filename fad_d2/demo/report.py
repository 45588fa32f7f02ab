"""Aggregate per-run results into per-arm statistics, a Markdown table and ``comparison.png``.

A run is a dict of metrics (``AP``, ``AP50``, ``APs``, ``APm``, ``APl`` from COCOEvaluator,
``head_params``, ``head_gflops``, ``head_latency_ms``); an arm is a list of runs (seeds or
genotypes).  Statistics are the mean and the sample standard deviation (n − 1) over the runs.
"""
import statistics
import textwrap
from typing import Dict, List, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = ("AP", "AP50", "APs", "APm", "APl", "head_params", "head_gflops", "head_latency_ms")
COLUMNS = (("AP", "AP", 1), ("AP50", "AP50", 1), ("APs", "APs", 1), ("APm", "APm", 1), ("APl", "APl", 1),
           ("head_params", "head params (M)", 1e-6), ("head_gflops", "head GFLOPs", 1),
           ("head_latency_ms", "head latency (ms)", 1))


def summarize(arms: Mapping[str, Sequence[Mapping[str, float]]]) -> Dict[str, dict]:
    """``{arm: {"n": n, metric: {"mean", "std"}}}`` for every metric present in all of an arm's runs."""
    out = {}
    for arm, runs in arms.items():
        if not runs:
            continue
        stats = {"n": len(runs)}
        for m in METRICS:
            values = [r[m] for r in runs if m in r]
            if len(values) == len(runs):
                stats[m] = {"mean": statistics.fmean(values),
                            "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        out[arm] = stats
    return out


def _cell(stat: Mapping[str, float], scale: float, n: int) -> str:
    digits = 3 if scale < 1 else (2 if abs(stat["mean"]) < 10 else 1)
    mean = f"{stat['mean'] * scale:.{digits}f}"
    return mean if n == 1 else f"{mean} ± {stat['std'] * scale:.{digits}f}"


def markdown_table(summary: Mapping[str, dict], title: str = "arm") -> str:
    """One row per arm: ``mean ± std`` of every metric (just the value when n = 1) and n."""
    present = [c for c in COLUMNS if any(c[0] in s for s in summary.values())]
    lines = [f"| {title} | n | " + " | ".join(c[1] for c in present) + " |",
             "|---|---|" + "---|" * len(present)]
    for arm, s in summary.items():
        cells = [_cell(s[key], scale, s["n"]) if key in s else "-" for key, _, scale in present]
        lines.append(f"| {arm} | {s['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_comparison(summary: Mapping[str, dict], path: str, title: str = ""):
    """AP against head GFLOPs, one point per arm, error bars (± std) where an arm has n > 1."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for i, (arm, s) in enumerate(summary.items()):
        if "AP" not in s or "head_gflops" not in s:
            continue
        x, y = s["head_gflops"], s["AP"]
        ax.errorbar(x["mean"], y["mean"], xerr=x["std"] or None, yerr=y["std"] or None, fmt="o",
                    capsize=4, color=plt.get_cmap("tab10")(i % 10), label=f"{arm} (n={s['n']})")
    ax.set_xlabel("head GFLOPs (fvcore, one image)")
    ax.set_ylabel("bbox AP (COCOEvaluator)")
    if title:
        ax.set_title(textwrap.fill(title, 64), fontsize=9)  # a long title would be cut at the edges
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def runs_table(runs: Mapping[str, Mapping[str, float]]) -> str:
    """One row per run (``name → metrics``), for the per-run appendix of a study."""
    summary = {name: {"n": 1, **{m: {"mean": r[m], "std": 0.0} for m in METRICS if m in r}}
               for name, r in runs.items()}
    return markdown_table(summary, title="run")


__all__: List[str] = ["summarize", "markdown_table", "plot_comparison", "runs_table", "METRICS"]
