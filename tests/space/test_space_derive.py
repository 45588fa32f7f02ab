"""Derivation from α (paper §3.2) and the random baseline (Table 2's "Random")."""
from itertools import combinations

import pytest
import torch

from fad_d2.space import (
    NONE,
    CellGenotype,
    EdgeChoice,
    derive_cell,
    derive_genotype,
    genotype_from_dict,
    genotype_to_dict,
    get_search_space,
    sample_random_genotype,
)

FULL = get_search_space("full")
EDGE = {pair: e for e, pair in enumerate(((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)))}


def alpha_with(entries, space=FULL):
    """α zeros except {(input, node): {op: value}}."""
    alpha = torch.zeros(len(EDGE), space.num_choices)
    for pair, values in entries.items():
        for op, value in values.items():
            alpha[EDGE[pair], space.choices.index(op)] = value
    return alpha


def test_expected_genotype():
    alpha = alpha_with({
        (0, 1): {"sep_3x3_dil2": 2.0},
        (0, 2): {"std_5x5": 1.5}, (1, 2): {"std_3x3": 1.0},
        (0, 3): {"std_7x7": 0.2}, (1, 3): {"sep_7x7": 3.0}, (2, 3): {"std_3x3_dil3": 2.5},
    })
    assert derive_cell(alpha, FULL) == CellGenotype((
        (EdgeChoice("sep_3x3_dil2", 0),),
        (EdgeChoice("std_5x5", 0), EdgeChoice("std_3x3", 1)),
        (EdgeChoice("sep_7x7", 1), EdgeChoice("std_3x3_dil3", 2)),
    ))


def test_ties_break_to_earlier_choice_and_lower_input():
    # all-zero α: every choice ties → std_3x3 (first column); every edge ties → lowest inputs
    assert derive_cell(torch.zeros(6, 13), FULL) == CellGenotype((
        (EdgeChoice("std_3x3", 0),),
        (EdgeChoice("std_3x3", 0), EdgeChoice("std_3x3", 1)),
        (EdgeChoice("std_3x3", 0), EdgeChoice("std_3x3", 1)),
    ))
    alpha = alpha_with({
        (0, 1): {"sep_7x7": 1.0, "std_5x5_dil2": 1.0},  # tie: std_5x5_dil2 is the earlier column
        (0, 3): {"std_5x5": 1.0}, (1, 3): {"sep_5x5": 2.0}, (2, 3): {"sep_3x3": 1.0},
    })
    cell = derive_cell(alpha, FULL)
    assert cell.nodes[0] == (EdgeChoice("std_5x5_dil2", 0),)
    # node 3: (1, 3) strongest, (0, 3) and (2, 3) tie → input 0 wins; listed by input
    assert cell.nodes[2] == (EdgeChoice("std_5x5", 0), EdgeChoice("sep_5x5", 1))


def test_none_dominating_an_edge():
    alpha = alpha_with({
        (0, 1): {NONE: 8.0, "sep_5x5": 1.0},  # node 1 keeps its only edge, without none
        (0, 3): {NONE: 10.0, "std_7x7": 3.0},  # largest raw α of node 3, but none takes softmax
        (1, 3): {"sep_3x3_dil3": 1.0}, (2, 3): {"std_3x3_dil2": 1.0},
    })
    cell = derive_cell(alpha, FULL)
    assert cell.nodes[0] == (EdgeChoice("sep_5x5", 0),)
    assert cell.nodes[2] == (EdgeChoice("sep_3x3_dil3", 1), EdgeChoice("std_3x3_dil2", 2))
    assert NONE not in cell.ops


def test_derive_genotype_groups_and_shape_check():
    box = alpha_with({(0, 1): {"sep_7x7": 1.0}})
    cls = alpha_with({(0, 1): {"std_7x7": 1.0}})
    g = derive_genotype([("box", box), ("cls", cls)], "full")
    assert g.search_space == "full" and g.group_names == ("box", "cls")
    assert g.group("box").nodes[0][0].op == "sep_7x7" and g.group("cls").nodes[0][0].op == "std_7x7"
    assert derive_genotype({"box": box, "cls": cls}, FULL) == g
    assert genotype_from_dict(genotype_to_dict(g)) == g
    with pytest.raises(ValueError, match=r"shape \[6, 5\], got \[6, 13\]"):
        derive_cell(box, "subset1")


def test_random_genotype_is_seeded_and_valid():
    space = get_search_space("full")
    assert sample_random_genotype(space, seed=3) == sample_random_genotype(space, seed=3)
    samples = [sample_random_genotype(space, seed=s) for s in range(300)]
    assert len(set(samples)) == 300
    ops, node3_inputs = set(), set()
    for g in samples:
        assert g.group_names == ("box", "cls")
        assert genotype_from_dict(genotype_to_dict(g)) == g  # valid
        for _, cell in g.groups:
            ops.update(cell.ops)
            node3_inputs.add(tuple(e.input for e in cell.nodes[2]))
    assert ops == set(space.ops)  # every transformation is drawn
    assert node3_inputs == set(combinations(range(3), 2))  # every pair of inputs is drawn
    darts = sample_random_genotype("darts", group_names=("mask",), seed=1)
    assert darts.group_names == ("mask",) and set(darts.group("mask").ops) <= set(
        get_search_space("darts").ops)
