"""The authors' released conventions as options: per-transformation parameter counts and the
unshared supernet without H (paper Table 2, "w/o RepShare")."""
from torch import nn

from fad_d2.space import SearchCell, build_mixed_op, get_search_space, transformation_params

# Parameters per transformation at c' = 96 with the released operators (their dilated depthwise
# convs carry a bias), counted from the authors' code.
RELEASED_AT_96 = {
    "std_3x3": 83_232, "std_5x5": 166_464, "std_7x7": 249_696,
    "std_3x3_dil2": 93_696, "std_5x5_dil2": 176_928, "std_3x3_dil3": 93_696,
    "sep_3x3": 10_368, "sep_5x5": 20_736, "sep_7x7": 31_104,
    "sep_3x3_dil2": 20_832, "sep_5x5_dil2": 31_200, "sep_3x3_dil3": 20_832,
}


def test_released_counts_with_dilated_bias():
    full = get_search_space("full")
    assert transformation_params(full.with_options(dilated_bias=True), 96) == RELEASED_AT_96
    paper = transformation_params(full, 96)
    for op, n in RELEASED_AT_96.items():  # the paper's ops: c' fewer per dilated layer
        assert paper[op] == n - (96 if "dil" in op else 0), op


def _has_decoupling(module):
    return any(type(m).__name__ == "Transformation" and m.decouple is not None for m in module.modules())


def test_unshared_supernet_without_decoupling():
    full = get_search_space("full")
    assert _has_decoupling(build_mixed_op(full, 32, repshare=False))  # default: as RepShare
    op = build_mixed_op(full.with_options(unshared_decouple=False), 32, repshare=False)
    assert not _has_decoupling(op) and op.decouple is False
    # RepShare keeps H whatever the option: it decouples shared representations
    shared = build_mixed_op(full.with_options(unshared_decouple=False), 32, repshare=True)
    assert shared.decouple and len(shared.streams["std"].decouple) == 2


def test_dilated_bias_reaches_search_and_derived_cells():
    space = get_search_space("full").with_options(dilated_bias=True)
    cell = SearchCell(32, 32, space)
    depthwise = [m for m in cell.modules()
                 if isinstance(m, nn.Conv2d) and m.groups > 1 and m.dilation[0] > 1]
    assert depthwise and all(m.bias is not None for m in depthwise)
