"""The study's comparisons: a difference of means with a bootstrap interval and Welch's t, the rank
of a value among a reference arm, and how alike two genotypes are.

Everything here is plain Python on lists of floats (AP values) and :class:`fad_d2.space.Genotype`\\ s,
seeded where random, so that a study's JSON is reproduced by the same inputs on any machine.
"""
import itertools
import math
import random
import statistics
from typing import Dict, Iterable, Sequence, Set, Tuple

from fad_d2.space import Genotype


def mean_difference(a: Sequence[float], b: Sequence[float], resamples: int = 10000, seed: int = 0,
                    level: float = 0.95) -> Dict[str, float]:
    """mean(a) − mean(b) with a percentile bootstrap interval (``level``; each arm resampled with
    replacement on its own, ``resamples`` times, seeded) and Welch's t with its Welch–Satterthwaite
    degrees of freedom.  Needs two or more values per arm."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a difference of means needs n >= 2 per arm, got {len(a)} and {len(b)}")
    rng = random.Random(seed)
    diffs = sorted(statistics.fmean(rng.choices(a, k=len(a))) - statistics.fmean(rng.choices(b, k=len(b)))
                   for _ in range(resamples))
    tail = (1 - level) / 2
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    diff = statistics.fmean(a) - statistics.fmean(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else float("inf")
    return {"difference": diff, "ci_low": diffs[int(tail * resamples)],
            "ci_high": diffs[min(resamples - 1, int((1 - tail) * resamples))], "ci_level": level,
            "welch_t": diff / se if se > 0 else (math.copysign(math.inf, diff) if diff else 0.0),
            "welch_df": df, "n_a": len(a), "n_b": len(b)}


def percentile_among(value: float, reference: Sequence[float]) -> float:
    """The share (in %) of ``reference`` below ``value``, ties counted half."""
    below = sum(r < value for r in reference) + 0.5 * sum(r == value for r in reference)
    return 100.0 * below / len(reference)


def genotype_parts(genotype: Genotype) -> Tuple[Set[tuple], Set[tuple]]:
    """``(edges, ops)`` of a derived genotype: the kept edges as ``(group, node, input)`` and the
    same with their transformation, ``(group, node, input, op)``."""
    edges, ops = set(), set()
    for name, cell in genotype.groups:
        for node, choices in enumerate(cell.nodes, start=1):
            for choice in choices:
                edges.add((name, node, choice.input))
                ops.add((name, node, choice.input, choice.op))
    return edges, ops


def jaccard(a: Set, b: Set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def similarity(a: Genotype, b: Genotype) -> Dict[str, float]:
    """Jaccard similarity of two genotypes' kept edges and of their (edge, op) pairs."""
    (ea, oa), (eb, ob) = genotype_parts(a), genotype_parts(b)
    return {"edges": jaccard(ea, eb), "ops": jaccard(oa, ob)}


def mean_pairwise_similarity(genotypes: Iterable[Genotype]) -> Dict[str, float]:
    """The mean of :func:`similarity` over all pairs (and the number of pairs)."""
    pairs = [similarity(a, b) for a, b in itertools.combinations(list(genotypes), 2)]
    if not pairs:
        return {"edges": float("nan"), "ops": float("nan"), "pairs": 0}
    return {"edges": statistics.fmean(p["edges"] for p in pairs), "ops": statistics.fmean(p["ops"] for p in pairs),
            "pairs": len(pairs)}
