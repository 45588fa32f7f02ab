"""Search-space variants (paper Table 2) and their counts (paper §3.1–3.2)."""
import pytest

from fad_d2.space import (
    NONE,
    SEARCH_SPACES,
    TRANSFORMATIONS,
    SearchCell,
    get_search_space,
    num_derived_architectures,
    num_edges,
    num_representations,
    num_unique_paths,
)

EXPECTED = {  # name: (ops, representations with RepShare, without, decouple)
    "full": (12, 12, 26, True),
    "no_decouple": (12, 12, 26, False),
    "subset1": (4, 4, 6, True),
    "subset2": (8, 8, 16, True),
    "std_only": (6, 6, 13, True),
    "sep_only": (6, 6, 13, True),
    "no_dil3": (10, 10, 22, True),
    "darts": (7, None, 8, False),
}


def test_all_variants_present():
    assert set(SEARCH_SPACES) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_space_counts(name):
    space = get_search_space(name)
    ops, shared, unshared, decouple = EXPECTED[name]
    assert len(space.ops) == ops and space.num_choices == ops + 1
    assert space.choices[-1] == NONE and NONE not in space.ops
    assert space.decouple == decouple
    assert num_representations(space, repshare=False) == unshared
    if shared is None:
        assert not space.supports_repshare
        assert num_representations(space, repshare=True) == unshared
    else:
        assert space.supports_repshare
        assert num_representations(space, repshare=True) == shared


def test_full_space_numbers():
    full = get_search_space("full")
    assert full.num_choices == 13
    assert num_representations(full, True) == 12 and num_representations(full, False) == 26
    assert num_edges(3) == 6
    assert SearchCell(32, 32, full).num_edges == 6
    paths = num_unique_paths(full, num_groups=2, num_nodes=3)
    assert paths == 13 ** 12 == 23298085122481
    assert f"{paths:.2e}" == "2.33e+13"  # the paper's ≈ 2.3·10¹³
    assert num_derived_architectures(full) == (12 * (3 * 12 ** 2) * 12 ** 2) ** 2


def test_subsets_match_table_2():
    def rfs(name):
        return sorted({TRANSFORMATIONS[op].receptive_field for op in SEARCH_SPACES[name].ops})
    assert rfs("subset1") == [3, 5]
    assert rfs("subset2") == [3, 5, 7]
    assert rfs("full") == [3, 5, 7, 9]
    assert {TRANSFORMATIONS[op].stream for op in SEARCH_SPACES["std_only"].ops} == {"std"}
    assert {TRANSFORMATIONS[op].stream for op in SEARCH_SPACES["sep_only"].ops} == {"sep"}
    assert "std_3x3_dil3" not in SEARCH_SPACES["no_dil3"].ops
    assert SEARCH_SPACES["darts"].ops == ("max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                          "darts_sep_3x3", "darts_sep_5x5", "darts_dil_3x3",
                                          "darts_dil_5x5")


def test_unknown_space_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown search space 'fulll' \(valid: full, "
                                         r"no_decouple, subset1, subset2, std_only, sep_only, "
                                         r"no_dil3, darts\)"):
        get_search_space("fulll")
    assert get_search_space(SEARCH_SPACES["full"]) is SEARCH_SPACES["full"]
