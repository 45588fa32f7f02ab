"""Transformations: the table of receptive fields (measured), shapes, norms, names."""
import pytest
import torch

from fad_d2.space import (
    NONE,
    TRANSFORMATIONS,
    ConvNormAct,
    build_transformation,
    conv_norm_act,
    get_norm,
)
from space_helpers import positive_

FAD_TABLE = {  # suffix: (layers, receptive field) — paper Fig. 2
    "3x3": (1, 3), "5x5": (2, 5), "7x7": (3, 7),
    "3x3_dil2": (2, 7), "5x5_dil2": (3, 9), "3x3_dil3": (2, 9),
}
DARTS_RF = {"max_pool_3x3": 3, "avg_pool_3x3": 3, "skip_connect": 1, "darts_sep_3x3": 5,
            "darts_sep_5x5": 9, "darts_dil_3x3": 5, "darts_dil_5x5": 9}


def test_fad_names_and_table():
    fad = {n: s for n, s in TRANSFORMATIONS.items() if s.stream in ("std", "sep")}
    assert sorted(fad) == sorted(f"{st}_{suf}" for st in ("std", "sep") for suf in FAD_TABLE)
    for name, spec in fad.items():
        layers, rf = FAD_TABLE[name.split("_", 1)[1]]
        assert (spec.num_layers, spec.receptive_field) == (layers, rf), name
        assert spec.output_is_shared == (name.split("_", 1)[1] in ("3x3", "5x5"))
    assert NONE not in TRANSFORMATIONS


def measured_receptive_field(name, decouple=False, size=17):
    """Extent of the nonzero gradient of one output pixel w.r.t. the input (no norm: GN is
    global; positive weights and inputs: no cancellation; a batch covers max-pool argmaxes)."""
    op = positive_(build_transformation(name, 4, norm="", decouple=decouple).double())
    batch = 32 if name == "max_pool_3x3" else 2  # gradients follow the argmax of each sample
    x = torch.rand(batch, 4, size, size, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    y = op(x)
    assert y.shape == x.shape
    y[:, :, size // 2, size // 2].sum().backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = support.any(dim=1).nonzero().flatten()
    cols = support.any(dim=0).nonzero().flatten()
    dense = bool(support[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all())
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1), dense


@pytest.mark.parametrize("name", list(TRANSFORMATIONS))
def test_receptive_field_measured_equals_table(name):
    spec = TRANSFORMATIONS[name]
    rf = spec.receptive_field
    # FAD stacks have no holes (the base conv fills the dilated grid); a lone dilated conv has
    dense = spec.base_layers > 0 or spec.dilation is None
    assert measured_receptive_field(name) == (rf, rf, dense)
    if spec.stream == "darts":
        assert rf == DARTS_RF[name]


@pytest.mark.parametrize("name", ["std_3x3", "sep_5x5"])
def test_decoupling_keeps_receptive_field(name):
    rf = TRANSFORMATIONS[name].receptive_field
    assert measured_receptive_field(name, decouple=True) == (rf, rf, True)


@pytest.mark.parametrize("name", list(TRANSFORMATIONS))
def test_shape_preserved_with_group_norm(name):
    op = build_transformation(name, 32)
    x = torch.randn(2, 32, 9, 11)
    assert op(x).shape == x.shape


def test_layers_are_conv_norm_relu():
    layer = conv_norm_act(32, 64, 3, dilation=2, separable=True)
    kinds = [type(m).__name__ for m in layer]
    assert isinstance(layer, ConvNormAct)
    assert kinds == ["Conv2d", "Conv2d", "GroupNorm", "ReLU"]
    assert layer[0].groups == 32 and layer[0].dilation == (2, 2) and layer[1].kernel_size == (1, 1)
    std = build_transformation("std_7x7", 32)
    assert all(block[0].bias is not None and block[0].kernel_size == (3, 3) for block in std.stem)
    assert [type(m).__name__ for m in conv_norm_act(32, 32, norm="")] == ["Conv2d", "ReLU"]


def test_group_norm_channel_error():
    with pytest.raises(ValueError, match=r"32 groups.*got 48 channels"):
        get_norm("GN", 48)
    with pytest.raises(ValueError, match="48 channels"):
        build_transformation("std_3x3", 48)
    assert get_norm("", 48) is None
    assert type(get_norm("BN", 48)).__name__ == "BatchNorm2d"
    with pytest.raises(ValueError, match="unknown norm 'LN'"):
        get_norm("LN", 32)


def test_group_norm_with_its_own_group_count():
    norm = get_norm("GN16", 32)  # two channels per group at c′ = 32
    assert isinstance(norm, torch.nn.GroupNorm) and (norm.num_groups, norm.num_channels) == (16, 32)
    assert get_norm("GN", 64).num_groups == 32
    with pytest.raises(ValueError, match=r"16 groups.*got 24 channels"):
        get_norm("GN16", 24)
    for bad in ("GN0", "GN016", "GNx", "GN-4", "GN 16"):
        with pytest.raises(ValueError, match=f"unknown norm '{bad}'"):
            get_norm(bad, 32)


@pytest.mark.parametrize("name", ["std_11x11", NONE])
def test_unknown_transformation(name):
    with pytest.raises(ValueError, match=r"unknown transformation .*valid: std_3x3, std_5x5"):
        build_transformation(name, 32)


def test_decoupling_only_on_t1_t2():
    with_h = {n for n in TRANSFORMATIONS if TRANSFORMATIONS[n].stream != "darts"
              and build_transformation(n, 32, decouple=True).decouple is not None}
    assert with_h == {"std_3x3", "std_5x5", "sep_3x3", "sep_5x5"}
    assert build_transformation("std_3x3", 32).decouple is None  # derived default: no H
