"""The released code's two-input cell, its derivation, and the converter of its genotype strings."""
import os

import pytest
import torch

from fad_d2.draw import draw_genotype
from fad_d2.modeling import FADModule
from fad_d2.space import (
    NONE,
    CellGenotype,
    CellGroup,
    EdgeChoice,
    GenotypeError,
    SearchCell,
    cell_edges,
    derive_released_cell,
    get_search_space,
    load_genotype,
    num_derived_architectures,
    num_edges,
    num_unique_paths,
)
from fad_d2.space import __main__ as space_cli
from fad_d2.space.convert import RELEASED_OPS, convert_released, parse_released_genotype, released_op_name
from space_helpers import perturb_

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAPER_FILE = os.path.join(REPO, "genotypes", "fad_fcos_paper.json")
SHIPPED = ("fad_fcos_paper", "fad_fcos_other")

# The box group of the paper's architecture, as the authors' README publishes it.
PAPER_BOX = ("Genotype(normal=[[('sinSep_conv_3x3_x3', 0), ('std_conv_3x3_x3', 1)], [('std_conv_3x3', 2), "
             "('sinSep_conv_3x3+dil_conv_3x3', 1)], [('sinSep_conv_3x3_x2', 2), ('std_conv_3x3_x2', 3)]], "
             "normal_concat=range(2, 5))")
RELEASED = CellGenotype((
    (EdgeChoice("sep_7x7", 0), EdgeChoice("std_7x7", 1)),
    (EdgeChoice("sep_3x3_dil2", 1), EdgeChoice("std_3x3", 2)),
    (EdgeChoice("sep_5x5", 2), EdgeChoice("std_5x5", 3)),
), "released")


@pytest.mark.parametrize("released,ours", [
    ("std_conv_3x3", "std_3x3"),
    ("std_conv_3x3_x2", "std_5x5"),
    ("std_conv_3x3_x3", "std_7x7"),
    ("std_conv_3x3+dil_conv_3x3", "std_3x3_dil2"),
    ("std_conv_3x3_x2+dil_conv_3x3", "std_5x5_dil2"),
    ("std_conv_3x3+dil_conv_3x3_r3", "std_3x3_dil3"),
    ("sinSep_conv_3x3", "sep_3x3"),
    ("sinSep_conv_3x3_x2", "sep_5x5"),
    ("sinSep_conv_3x3_x3", "sep_7x7"),
    ("sinSep_conv_3x3+dil_conv_3x3", "sep_3x3_dil2"),
    ("sinSep_conv_3x3_x2+dil_conv_3x3", "sep_5x5_dil2"),
    ("sinSep_conv_3x3+dil_conv_3x3_r3", "sep_3x3_dil3"),
])
def test_released_op_names(released, ours):
    assert released_op_name(released) == ours


def test_released_op_table_is_complete_and_unknown_names_fail():
    assert sorted(RELEASED_OPS.values()) == sorted(get_search_space("full").ops)
    with pytest.raises(GenotypeError, match=r"unknown released-code op 'sep_conv_3x3_x2' \(valid: std_conv_3x3, "):
        released_op_name("sep_conv_3x3_x2")
    with pytest.raises(GenotypeError, match="'none' is never a kept op"):
        released_op_name("none")


def test_parse_is_safe_and_checks_the_cell():
    assert parse_released_genotype(PAPER_BOX)[1] == [("std_conv_3x3", 2), ("sinSep_conv_3x3+dil_conv_3x3", 1)]
    with pytest.raises(GenotypeError, match=r"normal: expected a literal, got \"__import__\('os'\)"):
        parse_released_genotype("Genotype(normal=__import__('os'), normal_concat=range(2, 5))")
    with pytest.raises(GenotypeError, match=r"normal_concat: \[2, 3\] is not every node \(range\(2, 5\)\)"):
        parse_released_genotype(PAPER_BOX.replace("range(2, 5)", "range(2, 4)"))
    with pytest.raises(GenotypeError, match=r"expected Genotype\(normal=..., normal_concat=...\)"):
        parse_released_genotype("[('std_conv_3x3', 0)]")
    with pytest.raises(GenotypeError, match=r"normal\[0\]: expected two \(op, input\) pairs"):
        parse_released_genotype("Genotype(normal=[[('std_conv_3x3', 0)]], normal_concat=range(2, 3))")
    with pytest.raises(GenotypeError, match=r"group 1 \(box\).*input 3 is out of range for node 2 \(valid: 0..1\)"):
        convert_released([PAPER_BOX.replace("('sinSep_conv_3x3_x3', 0)", "('sinSep_conv_3x3_x3', 3)"), PAPER_BOX])


def test_convert_matches_the_shipped_file():
    with open(os.path.join(REPO, "genotypes", "released", "fad_fcos_paper.txt")) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert lines[0] == PAPER_BOX
    genotype = convert_released(lines)
    assert genotype == load_genotype(PAPER_FILE)
    assert genotype.cell == "released" and genotype.search_space == "no_dil3"
    assert genotype.group("box") == RELEASED
    assert genotype.group("cls").ops == ("std_7x7", "sep_5x5_dil2", "sep_5x5_dil2", "sep_3x3", "sep_5x5", "std_3x3")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_genotypes_build_run_and_draw(name, tmp_path):
    genotype = load_genotype(os.path.join(REPO, "genotypes", f"{name}.json"))
    module = FADModule(channels=64, inner_channels=(32, 32), num_cells=(2, 2),
                       space=get_search_space("no_dil3").with_options(dilated_bias=True),
                       genotype=genotype, cell="released")
    box, cls = module(torch.randn(1, 64, 12, 10))
    assert box.shape == cls.shape == (1, 64, 12, 10)
    png = draw_genotype(genotype, str(tmp_path / f"{name}.png"))
    assert os.path.getsize(png) > 10_000


def test_counts_of_the_released_cell(capsys):
    assert cell_edges(3, "released") == ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4))
    assert num_edges(3, "released") == 9 and num_edges(3) == 6
    assert num_unique_paths("no_dil3", cell="released") == 11 ** 18
    assert num_derived_architectures("no_dil3", cell="released") == (1 * 3 * 6 * 10 ** 6) ** 2
    assert space_cli.main(["--cell", "released"]) == 0
    out = capsys.readouterr().out
    assert "search space 'no_dil3'" in out
    assert "choices per edge (α per edge): 11 (10 transformations + none)" in out
    assert "edges per search cell: 9 (released cell: 2 input(s), 3 intermediate nodes)" in out


def test_released_search_cell_structure():
    cell = SearchCell(64, 32, "no_dil3", cell="released", input_channels=(64, 192))
    assert cell.num_edges == 9 and cell.output_channels == 192
    assert type(cell.preprocess[0]).__name__ == "Identity"
    assert [type(m).__name__ for m in cell.preprocess[1]] == ["Conv2d", "GroupNorm", "ReLU"]
    assert cell.preprocess[1][0].in_channels == 192 and cell.output is None
    edge = cell.edges[0]
    assert [type(m).__name__ for m in edge.reduce] == ["Conv2d"] and edge.reduce[0].bias is not None
    assert [type(m).__name__ for m in edge.expand] == ["Conv2d"] and edge.expand[0].out_channels == 64
    y = cell((torch.randn(2, 64, 7, 7), torch.randn(2, 192, 7, 7)), torch.zeros(9, 11))
    assert y.shape == (2, 192, 7, 7)
    with pytest.raises(ValueError, match="the released cell takes 2 input tensors"):
        cell(torch.randn(2, 64, 7, 7), torch.zeros(9, 11))


def test_released_group_wiring():
    group = CellGroup(64, 32, num_cells=3, space="no_dil3", genotype=RELEASED, name="cls", cell="released")
    widths = [cell.input_channels for cell in group.cells]
    assert widths == [(64, 64), (64, 192), (192, 192)]  # the two previous states
    assert (group.reduce[0].in_channels, group.reduce[0].out_channels) == (192, 64)
    assert [type(m).__name__ for m in group.reduce] == ["Conv2d"]
    x, skip = torch.randn(1, 64, 8, 8), torch.randn(1, 64, 8, 8)
    assert group(x, skip).shape == (1, 64, 8, 8)
    assert not torch.allclose(group(x, skip), group(x))  # group 2's second input is the shortcut
    with pytest.raises(ValueError, match="the genotype is for the released cell, the group is a paper cell group"):
        CellGroup(64, 32, genotype=RELEASED, name="box")


def test_derive_released_cell_top2_of_each_node():
    space = get_search_space("no_dil3")
    alpha = torch.zeros(9, space.num_choices)
    strong = {(1, 2): "std_3x3", (0, 2): "sep_7x7", (2, 3): "std_5x5_dil2", (0, 3): "sep_3x3",
              (3, 4): "std_7x7", (1, 4): "sep_3x3_dil2"}
    edges = cell_edges(3, "released")
    for (i, j), op in strong.items():
        alpha[edges.index((i, j)), space.choices.index(op)] = 2.0
    alpha[edges.index((2, 4)), space.choices.index(NONE)] = 9.0  # none never counts
    alpha[edges.index((2, 4)), space.choices.index("std_3x3")] = 1.0
    derived = derive_released_cell(alpha, space)
    assert derived == CellGenotype((
        (EdgeChoice("sep_7x7", 0), EdgeChoice("std_3x3", 1)),
        (EdgeChoice("sep_3x3", 0), EdgeChoice("std_5x5_dil2", 2)),
        (EdgeChoice("sep_3x3_dil2", 1), EdgeChoice("std_7x7", 3)),
    ), "released")
    with pytest.raises(ValueError, match=r"of the released cell over search space 'no_dil3' must have shape \[9, 11\]"):
        derive_released_cell(torch.zeros(6, 11), space)


@torch.no_grad()
def test_extracted_released_cell_computes_what_the_search_cell_did():
    torch.manual_seed(0)
    cell = perturb_(SearchCell(32, 32, "no_dil3", cell="released", input_channels=(32, 96)).double())
    space = cell.space
    alpha = torch.full((9, space.num_choices), float("-inf"), dtype=torch.float64)
    kept = {cell.edge_pairs.index((c.input, j)): c.op
            for j, node in enumerate(RELEASED.nodes, start=2) for c in node}
    for e, edge in enumerate(cell.edges):
        if e in kept:
            alpha[e, space.choices.index(kept[e])] = 0.0
        else:  # a none edge outputs expand(0) = its bias: zero it
            alpha[e, space.choices.index(NONE)] = 0.0
            edge.expand[0].bias.zero_()
    derived = cell.extract_cell(RELEASED)
    x = (torch.randn(1, 32, 9, 9, dtype=torch.float64), torch.randn(1, 96, 9, 9, dtype=torch.float64))
    assert torch.allclose(cell(x, alpha), derived(x), rtol=0, atol=1e-12)
