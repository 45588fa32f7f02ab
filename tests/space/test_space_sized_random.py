"""The Random baseline at a chosen size: rejection sampling over seeded random genotypes."""
import pytest

from fad_d2.space import sample_random_genotype, sample_sized_random_genotypes


def separable_edges(genotype) -> int:
    """A cheap size measure for the tests: kept edges whose transformation is depthwise-separable."""
    return sum(op.startswith("sep") for _, cell in genotype.groups for op in cell.ops)


def test_every_sampled_genotype_lies_in_the_band_and_is_its_seed_s():
    found = sample_sized_random_genotypes("full", 4, separable_edges, 5, 6, first_seed=100)
    seeds = [s for s, _ in found]
    assert seeds == sorted(seeds) and len(set(seeds)) == 4 and seeds[0] >= 100
    for seed, genotype in found:
        assert 5 <= separable_edges(genotype) <= 6
        assert genotype == sample_random_genotype("full", seed=seed)
    skipped = [s for s in range(100, seeds[-1]) if s not in seeds]
    assert skipped, "a band that every genotype meets tests nothing"
    for s in skipped:  # rejection: every seed passed over is outside the band
        assert not 5 <= separable_edges(sample_random_genotype("full", seed=s)) <= 6


def test_a_larger_count_extends_the_list():
    short = sample_sized_random_genotypes("full", 2, separable_edges, 5, 6, first_seed=100)
    long = sample_sized_random_genotypes("full", 4, separable_edges, 5, 6, first_seed=100)
    assert long[:2] == short


def test_an_unreachable_band_is_a_clear_error():
    with pytest.raises(ValueError, match="widen the band"):
        sample_sized_random_genotypes("full", 1, separable_edges, 50, 60, max_candidates=30)
    with pytest.raises(ValueError, match="low <= high"):
        sample_sized_random_genotypes("full", 1, separable_edges, 3, 2)
