"""Edges, cells and groups: shapes, α, gradients, parameter split, derived cells."""
import pytest
import torch
from torch import nn

from fad_d2.space import (
    NONE,
    CellGenotype,
    CellGroup,
    DerivedCell,
    EdgeChoice,
    GenotypeError,
    SearchCell,
    architecture_parameters,
    cell_edges,
    derive_cell,
    get_search_space,
    named_architecture_parameters,
    sample_random_genotype,
    weight_parameters,
)
from space_helpers import perturb_

CELL = CellGenotype((
    (EdgeChoice("sep_3x3_dil2", 0),),
    (EdgeChoice("std_5x5", 0), EdgeChoice("std_3x3", 1)),
    (EdgeChoice("sep_7x7", 1), EdgeChoice("std_3x3_dil3", 2)),
))


def test_cell_edges_order():
    assert cell_edges(3) == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def test_search_cell_shapes_and_alpha_check():
    cell = SearchCell(32, 32, "full")
    assert cell.num_edges == 6 and len(cell.edges) == 6
    x = torch.randn(2, 32, 9, 9)
    assert cell(x, torch.zeros(6, 13)).shape == x.shape
    with pytest.raises(ValueError, match=r"α must have shape \[6, 13\]"):
        cell(x, torch.zeros(6, 12))


def test_edge_structure():
    edge = SearchCell(64, 32, "full").edges[0]
    assert edge.reduce[0].in_channels == 64 and edge.reduce[0].out_channels == 32
    assert edge.expand[0].in_channels == 32 and edge.expand[0].out_channels == 64
    assert [type(m).__name__ for m in edge.reduce] == ["Conv2d", "GroupNorm", "ReLU"]
    assert [type(m).__name__ for m in edge.expand] == ["Conv2d", "GroupNorm", "ReLU"]


@pytest.mark.parametrize("space,repshare", [("full", True), ("full", False), ("darts", True)])
def test_gradients_reach_alpha_and_every_weight(space, repshare):
    torch.manual_seed(0)
    group = CellGroup(64, 64, num_cells=1, space=space, repshare=repshare, name="box")
    x = torch.randn(2, 64, 9, 9)
    (group(x) * torch.randn(2, 64, 9, 9)).sum().backward()
    assert group.alpha.grad is not None and (group.alpha.grad != 0).all()
    for name, p in group.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_group_alpha_shared_by_its_cells():
    group = CellGroup(32, 32, num_cells=2, space="full", name="box")
    assert isinstance(group.alpha, nn.Parameter) and group.alpha.shape == (6, 13)
    assert group.alpha.abs().max() < 1e-2  # 1e-3·N(0, 1)
    assert len(group.cells) == 2 and all(isinstance(c, SearchCell) for c in group.cells)
    assert [n for n, _ in group.named_parameters() if "alpha" in n] == ["alpha"]
    x = torch.randn(1, 32, 9, 9).contiguous(memory_format=torch.channels_last)  # the group's CPU layout
    expected = group.cells[1](group.cells[0](x, group.alpha), group.alpha)
    assert torch.equal(group(x), expected)
    assert isinstance(group.derive(), CellGenotype)
    assert group.derive() == derive_cell(group.alpha, "full")


def test_parameter_split():
    class Module(nn.Module):
        def __init__(self):
            super().__init__()
            self.box = CellGroup(32, 32, 1, space="subset1", name="box")
            self.cls = CellGroup(32, 32, 1, space="subset1", name="cls")
            self.again = self.box  # the same group twice: its α counts once
            self.head = nn.Conv2d(32, 4, 1)

    model = Module()
    alphas = architecture_parameters(model)
    assert [id(a) for a in alphas] == [id(model.box.alpha), id(model.cls.alpha)]
    assert [n for n, _ in named_architecture_parameters(model)] == ["box", "cls"]
    weights = weight_parameters(model)
    assert {id(p) for p in weights}.isdisjoint({id(a) for a in alphas})
    assert len(weights) + len(alphas) == len(list(model.parameters()))
    derived = CellGroup(32, 32, 2, genotype=sample_random_genotype("subset1").group("box"))
    assert architecture_parameters(derived) == [] and derived.alpha is None


def test_derived_group():
    group = CellGroup(32, 32, num_cells=2, space="full", genotype=CELL, name="box")
    assert all(isinstance(c, DerivedCell) for c in group.cells)
    assert sum(1 for _ in group.modules() if type(_).__name__ == "DerivedEdge") == 2 * 5
    ops = [edge.op for node in group.cells[0].nodes for edge in node]
    assert ops == ["sep_3x3_dil2", "std_5x5", "std_3x3", "sep_7x7", "std_3x3_dil3"]
    x = torch.randn(2, 32, 9, 9)
    assert group(x).shape == x.shape
    with pytest.raises(RuntimeError, match="no α"):
        group.derive()
    with pytest.raises(GenotypeError, match=r"\$\.nodes\[0\]\[0\]\.op: 'sep_3x3_dil2' is not a "
                                            r"transformation of search space 'subset1'"):
        CellGroup(32, 32, 1, space="subset1", genotype=CELL)
    with pytest.raises(ValueError, match="needs a search space"):
        CellGroup(32, 32, 1)


FULL = get_search_space("full")


@pytest.mark.parametrize("space_name, repshare", [
    (FULL, True), (FULL.with_options(dilated_bias=True), True),
    (FULL.with_options(dilated_bias=True, unshared_decouple=False), False),
], ids=["paper", "dilated_bias", "unshared_without_H"])
@torch.no_grad()
def test_extracted_cell_equals_search_cell_on_its_genotype(space_name, repshare):
    """Search cell with one-hot α on the genotype's edges (dropped edges silenced: their
    output conv's GroupNorm scale and shift set to 0) == the extracted derived cell, with the
    paper's operators and with the released code's conventions."""
    torch.manual_seed(0)
    cell = perturb_(SearchCell(32, 32, space_name, repshare).double())
    space = cell.space
    alpha = torch.full((6, space.num_choices), float("-inf"), dtype=torch.float64)
    kept = {}
    for j, node in enumerate(CELL.nodes, start=1):
        for choice in node:
            kept[cell.edge_pairs.index((choice.input, j))] = choice.op
    for e, edge in enumerate(cell.edges):
        if e in kept:
            alpha[e, space.choices.index(kept[e])] = 0.0
        else:
            alpha[e, space.choices.index(NONE)] = 0.0
            edge.expand[1].weight.zero_()
            edge.expand[1].bias.zero_()
    derived = cell.extract_cell(CELL)
    x = torch.randn(1, 32, 9, 9, dtype=torch.float64)
    assert torch.allclose(cell(x, alpha), derived(x), rtol=0, atol=1e-12)
