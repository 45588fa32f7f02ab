"""Every ReLU of the FAD layers (conv → norm → ReLU, and H) runs in place on the tensor its norm
or conv just made: outputs and the gradients of the input, every weight and α are bitwise those
of out-of-place ReLUs, in the search supernet (RepShare and unshared, fused and reference mixed
ops) and in derived groups."""
import pytest
import torch
from torch import nn

from fad_d2.modeling.fad_module import FADModule
from fad_d2.space import CellGroup, get_search_space, sample_random_genotype
from fad_d2.space.mixed_op import RepShareMixedOp
from space_helpers import gradients, perturb_

C = 32


def relus(module):
    return [m for m in module.modules() if isinstance(m, nn.ReLU)]


def in_place_and_out_of_place(module, x):
    """:func:`gradients` with the module's ReLUs in place (as built), then out of place."""
    layers = relus(module)
    assert layers and all(m.inplace for m in layers)
    actual = gradients(module, x)
    for m in layers:
        m.inplace = False
    expected = gradients(module, x)
    return expected, actual


def assert_identical(expected, actual):
    assert len(expected) == len(actual)
    for i, (e, a) in enumerate(zip(expected, actual)):
        assert torch.equal(a, e), f"tensor {i} differs by {(a - e).abs().max().item():.3g}"


@pytest.mark.parametrize("space,repshare", [("full", True), ("full", False), ("darts", True)])
def test_search_group_in_place_relu_is_identical(space, repshare):
    torch.manual_seed(0)
    group = perturb_(CellGroup(C, C, num_cells=2, space=space, repshare=repshare, name="box"))
    x = torch.randn(2, C, 11, 13)
    assert_identical(*in_place_and_out_of_place(group, x))


class WeightedOp(nn.Module):
    """A mixed op with its own α: Tensor[N, c′, H, W] → op(x, softmax(α))."""

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.alpha = nn.Parameter(torch.randn(op.space.num_choices))

    def forward(self, x):
        return self.op(x, torch.softmax(self.alpha, dim=0))


def test_reference_repshare_op_in_place_relu_is_identical():
    """The straightforward RepShare block (``fused=False``, the fast path's reference)."""
    torch.manual_seed(0)
    op = perturb_(WeightedOp(RepShareMixedOp("full", C, fused=False)))
    x = torch.randn(2, C, 11, 13)
    assert_identical(*in_place_and_out_of_place(op, x))


def test_derived_module_in_place_relu_is_identical():
    torch.manual_seed(0)
    genotype = sample_random_genotype("full", seed=3)
    module = perturb_(FADModule(channels=C, inner_channels=[C, C], num_cells=[2, 2],
                                space=get_search_space("full"), genotype=genotype))
    x = torch.randn(2, C, 9, 10)
    assert_identical(*in_place_and_out_of_place(module, x))
