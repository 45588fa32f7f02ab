"""Mixed ops: RepShare vs unshared vs derived equivalence, representation counts, none."""
import pytest
import torch

from fad_d2.space import (
    MIXED_OP_REGISTRY,
    NONE,
    SEARCH_SPACES,
    ConvNormAct,
    RepShareMixedOp,
    SearchEdge,
    UnsharedMixedOp,
    build_mixed_op,
    build_transformation,
    num_representations,
)
from space_helpers import none_weights, one_hot, perturb_

C = 32


def x_input(seed=0, channels=C):
    return torch.randn(1, channels, 7, 7, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(SEARCH_SPACES))
@torch.no_grad()
def test_one_hot_equivalence(name):
    """One-hot weights on t: RepShare op == unshared op's t == derived transformation / edge
    built for t with the copied weights — for every transformation of every space."""
    space = SEARCH_SPACES[name]
    torch.manual_seed(0)
    op = perturb_(build_mixed_op(space, C).double())
    unshared = UnsharedMixedOp(space, C).double().load_transformations_from(op)
    edge = SearchEdge(C, C, space).double()
    edge.block = op
    perturb_(edge.reduce, 1), perturb_(edge.expand, 2)
    x = x_input()
    x_edge = x_input(1)
    for t in space.ops:
        w = one_hot(space, t)
        expected = op(x, w)
        derived = op.extract_transformation(t)
        assert torch.allclose(unshared(x, w), expected, rtol=0, atol=1e-12), t
        assert torch.allclose(derived(x), expected, rtol=0, atol=1e-12), t
        assert torch.allclose(unshared.extract_transformation(t)(x), expected, rtol=0, atol=1e-12)
        assert torch.allclose(edge.extract_edge(t)(x_edge), edge(x_edge, w), rtol=0, atol=1e-12)
        # the derived module is a standalone transformation of the same kind
        fresh = build_transformation(t, C, decouple=space.decouple)
        assert type(fresh) is type(derived)
        assert fresh.state_dict().keys() == derived.state_dict().keys()


def test_outputs_differ_between_transformations():
    """Sanity for the equivalence test: different t give different outputs."""
    space = SEARCH_SPACES["full"]
    op = perturb_(RepShareMixedOp(space, C).double())
    x = x_input()
    outs = [op(x, one_hot(space, t)) for t in space.ops]
    for a in range(len(outs)):
        for b in range(a + 1, len(outs)):
            assert not torch.allclose(outs[a], outs[b])


@pytest.mark.parametrize("name", list(SEARCH_SPACES))
@pytest.mark.parametrize("repshare", [True, False])
def test_all_weight_on_none_is_exactly_zero(name, repshare):
    space = SEARCH_SPACES[name]
    op = build_mixed_op(space, C, repshare).double()
    out = op(x_input(), none_weights(space))
    assert torch.equal(out, torch.zeros_like(out))


def test_weighted_sum_is_eq_2():
    space = SEARCH_SPACES["subset1"]
    op = RepShareMixedOp(space, C).double()
    x = x_input()
    w = torch.softmax(torch.randn(space.num_choices, dtype=torch.float64), 0)
    expected = sum(w[k] * op(x, one_hot(space, t)) for k, t in enumerate(space.ops))
    assert torch.allclose(op(x, w), expected, atol=1e-12)
    with pytest.raises(ValueError, match=r"weights of shape \[5\]"):
        op(x, w[:4])


def count_layer_calls(op, space):
    """Representations computed in one forward: ConvNormAct layers that ran."""
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1))
             for m in op.modules() if isinstance(m, ConvNormAct)]
    op(torch.randn(1, C, 9, 9), torch.softmax(torch.zeros(space.num_choices), 0))
    for h in hooks:
        h.remove()
    return len(calls)


@pytest.mark.parametrize("name", [n for n, s in SEARCH_SPACES.items() if s.supports_repshare])
def test_representations_computed(name):
    space = SEARCH_SPACES[name]
    shared, unshared = RepShareMixedOp(space, C), UnsharedMixedOp(space, C)
    assert shared.num_representations == num_representations(space, True)
    assert unshared.num_representations == num_representations(space, False)
    assert count_layer_calls(shared, space) == shared.num_representations
    assert count_layer_calls(unshared, space) == unshared.num_representations
    if name == "full":
        assert (shared.num_representations, unshared.num_representations) == (12, 26)


def test_repshare_builds_only_what_the_space_needs():
    subset1 = RepShareMixedOp("subset1", C)
    for stream in subset1.streams.values():
        assert len(stream.stem) == 2 and len(stream.dilated) == 0  # p1, p2 only
    no_dil3 = RepShareMixedOp("no_dil3", C)
    for name, stream in no_dil3.streams.items():
        assert len(stream.stem) == 3 and set(stream.dilated) == {f"{name}_3x3_dil2",
                                                                f"{name}_5x5_dil2"}
    assert list(RepShareMixedOp("std_only", C).streams) == ["std"]


def test_decoupling_h():
    full, plain = RepShareMixedOp("full", C), RepShareMixedOp("no_decouple", C)
    assert {n: set(s.decouple) for n, s in full.streams.items()} == {
        "std": {"std_3x3", "std_5x5"}, "sep": {"sep_3x3", "sep_5x5"}}
    assert all(len(s.decouple) == 0 for s in plain.streams.values())
    h = full.streams["std"].decouple["std_3x3"]
    assert [type(m).__name__ for m in h] == ["Conv2d", "ReLU"] and h[0].kernel_size == (1, 1)
    assert full.extract_transformation("std_3x3").decouple is not None
    assert plain.extract_transformation("std_3x3").decouple is None
    assert full.extract_transformation("std_7x7").decouple is None


def test_registry_and_builder():
    assert MIXED_OP_REGISTRY.get("RepShareMixedOp") is RepShareMixedOp
    assert MIXED_OP_REGISTRY.get("UnsharedMixedOp") is UnsharedMixedOp
    assert isinstance(build_mixed_op("full", C), RepShareMixedOp)
    assert isinstance(build_mixed_op("full", C, repshare=False), UnsharedMixedOp)
    assert isinstance(build_mixed_op("darts", C, repshare=True), UnsharedMixedOp)
    with pytest.raises(ValueError, match="does not support RepShare"):
        RepShareMixedOp("darts", C)
    op = build_mixed_op("full", C)
    assert op.choices == SEARCH_SPACES["full"].choices and op.choices[-1] == NONE
    with pytest.raises(ValueError, match="not an op of search space 'subset1'"):
        build_mixed_op("subset1", C).extract_transformation("std_7x7")
