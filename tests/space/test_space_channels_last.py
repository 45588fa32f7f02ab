"""On the CPU, on more than one thread, the cell groups and the FAD module compute in the
channels-last layout (``cell_layout``): their outputs and the gradients of the input, every weight
and α equal those of the NCHW path (``input_layout()``, and the one-thread layout)."""
import pytest
import torch

from fad_d2.modeling.fad_module import FADModule
from fad_d2.space import CellGroup, get_search_space, sample_random_genotype
from fad_d2.space.cell import cell_layout, input_layout
from fad_d2.space.mixed_op import _phases
from space_helpers import gradients, perturb_

C = 32


@pytest.fixture(autouse=True)
def two_threads():
    """Channels-last is the layout of more than one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def nchw_and_channels_last(module, x):
    """:func:`gradients` on the NCHW path, then on the channels-last one."""
    with input_layout():
        expected = gradients(module, x)
    assert expected[0].is_contiguous()
    actual = gradients(module, x)
    assert actual[0].is_contiguous(memory_format=torch.channels_last)
    return expected, actual


def assert_same(expected, actual):
    """float64: equal to rounding (the biases before a GroupNorm of one channel per group have
    gradient 0: ~1e-12 of rounding); float32 (oneDNN's kernels): to 1e-4 of each tensor's scale."""
    assert len(expected) == len(actual)
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e.dtype == torch.float64:
            torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-10, msg=f"tensor {i}")
        else:
            torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4 * e.abs().max().item(), msg=f"tensor {i}")


SEARCH_GROUPS = [("full", True), ("full", False), ("darts", True)]


@pytest.mark.slow
@pytest.mark.parametrize("space,repshare", SEARCH_GROUPS)
def test_search_group_equals_nchw(space, repshare):
    torch.manual_seed(0)
    group = perturb_(CellGroup(C, C, num_cells=2, space=space, repshare=repshare, name="box")).double()
    x = torch.randn(2, C, 11, 13, dtype=torch.float64)
    assert_same(*nchw_and_channels_last(group, x))


@pytest.mark.parametrize("space,repshare", [g for g in SEARCH_GROUPS if g != ("full", False)])
def test_search_group_equals_nchw_float32(space, repshare):
    """float32 runs oneDNN's channels-last kernels (float64 has none).  One cell at c = 64 (two
    channels per GroupNorm group): a deeper float32 net amplifies rounding past any tolerance.
    Not the unshared ``full`` op: with its 26 representations, a pre-activation that rounding moves
    across a ReLU's kink changes gradients by up to 4 % of their scale on some CPUs (an AMD EPYC;
    outputs still equal to 3e-6), so it is checked in float64 only (above)."""
    torch.manual_seed(0)
    group = CellGroup(64, 64, num_cells=1, space=space, repshare=repshare, name="box")
    x = torch.randn(2, 64, 11, 13)
    assert_same(*nchw_and_channels_last(group, x))


def test_derived_group_equals_nchw():
    torch.manual_seed(0)
    genotype = sample_random_genotype("full", seed=3).group("box")
    group = perturb_(CellGroup(C, C, num_cells=2, space="full", genotype=genotype)).double()
    x = torch.randn(2, C, 9, 10, dtype=torch.float64)
    assert_same(*nchw_and_channels_last(group, x))


@pytest.mark.slow
def test_fad_module_equals_nchw():
    torch.manual_seed(0)
    module = perturb_(FADModule(channels=C, inner_channels=[C, C], num_cells=[1, 1],
                                space=get_search_space("full"))).double()
    x = torch.randn(2, C, 7, 12, dtype=torch.float64)
    assert_same(*nchw_and_channels_last(module, x))


def test_layout_not_under_tracing_nor_in_input_layout():
    x = torch.randn(1, 4, 3, 5)
    assert cell_layout(x).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(cell_layout(x), x)
    assert torch.jit.trace(cell_layout, (x,))(x).is_contiguous()
    with input_layout():
        assert cell_layout(x) is x
    assert cell_layout(x) is not x


def test_layout_on_one_thread_is_the_input_layout():
    x = torch.randn(1, 4, 3, 5)
    torch.set_num_threads(1)
    assert cell_layout(x) is x


@pytest.mark.parametrize("dilation", [2, 3])
def test_phases_keep_the_memory_format(dilation):
    x = torch.randn(2, 3, 7, 8)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(_phases(x_cl, dilation), _phases(x, dilation))
    assert _phases(x_cl, dilation).is_contiguous(memory_format=torch.channels_last)
    assert _phases(x, dilation).is_contiguous()
