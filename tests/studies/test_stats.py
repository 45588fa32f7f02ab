"""The study's statistics: difference of means (bootstrap interval, Welch's t), percentile, similarity."""
import math

import pytest

from fad_d2.space import CellGenotype, EdgeChoice, Genotype
from studies.stats import mean_difference, mean_pairwise_similarity, percentile_among, similarity


def test_mean_difference_welch_and_bootstrap():
    a, b = [1.0, 2.0, 3.0], [0.0, 0.0, 1.0]
    d = mean_difference(a, b, resamples=2000, seed=1)
    assert d["difference"] == pytest.approx(2 - 1 / 3)
    # Welch: variances of the means 1/3 and 1/9, t = (5/3) / sqrt(4/9) = 2.5,
    # df = (4/9)^2 / ((1/3)^2 / 2 + (1/9)^2 / 2) = 3.2
    assert d["welch_t"] == pytest.approx(2.5) and d["welch_df"] == pytest.approx(3.2)
    assert d["ci_low"] < d["difference"] < d["ci_high"] and d["ci_level"] == 0.95
    assert -1 / 3 <= d["ci_low"] and d["ci_high"] <= 3.0  # bootstrap means stay inside the data's range
    assert mean_difference(a, b, resamples=2000, seed=1) == d  # seeded: the same numbers again
    assert mean_difference(b, a, resamples=2000, seed=1)["welch_t"] == pytest.approx(-2.5)


def test_mean_difference_without_spread_and_too_few():
    d = mean_difference([2.0, 2.0], [1.0, 1.0], resamples=100)
    assert d["difference"] == 1.0 and d["welch_t"] == math.inf and d["ci_low"] == d["ci_high"] == 1.0
    assert mean_difference([1.0, 1.0], [1.0, 1.0], resamples=10)["welch_t"] == 0.0
    with pytest.raises(ValueError, match="n >= 2 per arm, got 1 and 3"):
        mean_difference([1.0], [1.0, 2.0, 3.0])


def test_percentile_counts_ties_half():
    assert percentile_among(3.0, [1.0, 2.0, 3.0, 4.0]) == 62.5
    assert percentile_among(5.0, [1.0, 2.0]) == 100.0 and percentile_among(0.0, [1.0, 2.0]) == 0.0


def _genotype(box_ops, cls_ops):
    """Two cells of three nodes: node 1 ← 0, node 2 ← 0, 1, node 3 ← 1, 2 with the given ops."""
    def cell(ops):
        return CellGenotype(((EdgeChoice(ops[0], 0),), (EdgeChoice(ops[1], 0), EdgeChoice(ops[2], 1)),
                             (EdgeChoice(ops[3], 1), EdgeChoice(ops[4], 2))))
    return Genotype("full", (("box", cell(box_ops)), ("cls", cell(cls_ops))))


def test_similarity_of_edges_and_ops():
    ops = ["std_3x3"] * 5
    a = _genotype(ops, ops)
    b = _genotype(["sep_3x3"] + ops[1:], ops)  # one of ten edges with another op
    assert similarity(a, a) == {"edges": 1.0, "ops": 1.0}
    assert similarity(a, b) == {"edges": 1.0, "ops": pytest.approx(9 / 11)}  # 9 shared of 11 distinct
    assert mean_pairwise_similarity([a, a, b]) == {"edges": 1.0, "ops": pytest.approx((1 + 2 * 9 / 11) / 3),
                                                   "pairs": 3}
    assert mean_pairwise_similarity([a])["pairs"] == 0
