"""The optimised RepShare block (``fused=True``) computes what the straightforward one computes:
outputs and gradients (input, α-weights, every parameter) for every RepShare space; under
bfloat16 autocast, what the unshared op computes too."""
import pytest
import torch

from fad_d2.space import SEARCH_SPACES, RepShareMixedOp, UnsharedMixedOp, build_mixed_op
from fad_d2.space.mixed_op import FusedSeparableLayer, _SeparableConvFunction, _WeightedSumFunction
from fad_d2.space.transformations import TRANSFORMATIONS
from space_helpers import perturb_

C = 32
REPSHARE_SPACES = [name for name, s in SEARCH_SPACES.items() if s.supports_repshare]


def twin_ops(space, dtype=torch.float64):
    """(straightforward, optimised) ops over ``space`` with the same perturbed weights."""
    torch.manual_seed(0)
    reference = perturb_(RepShareMixedOp(space, C, fused=False).to(dtype))
    optimised = RepShareMixedOp(space, C).to(dtype)
    optimised.load_state_dict(reference.state_dict())
    return reference, optimised


def forward_backward(op, x, alpha, grad, x_requires_grad=True):
    """Output and gradients (input, α, parameters in order) of one forward + backward."""
    x = x.clone().requires_grad_(x_requires_grad)
    alpha = alpha.clone().requires_grad_()
    op.zero_grad(set_to_none=True)
    out = op(x, torch.softmax(alpha, dim=0))
    out.backward(grad)
    return [out, x.grad, alpha.grad, *(p.grad for p in op.parameters())]


def random_case(space, shape, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    alpha = torch.randn(space.num_choices, generator=g, dtype=dtype)
    grad = torch.randn(*shape, generator=g, dtype=dtype)
    return x, alpha, grad


def assert_all_close(expected, actual, **tolerances):
    assert len(expected) == len(actual)
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e is None:
            assert a is None, i
        else:
            torch.testing.assert_close(a, e, msg=f"tensor {i}", **tolerances)


@pytest.mark.parametrize("name", REPSHARE_SPACES)
@pytest.mark.parametrize("shape", [(2, C, 11, 13), (1, C, 12, 6)])  # ragged / divisible by 2, 3
def test_outputs_and_gradients_match(name, shape):
    space = SEARCH_SPACES[name]
    reference, optimised = twin_ops(space)
    x, alpha, grad = random_case(space, shape)
    assert_all_close(forward_backward(reference, x, alpha, grad),
                     forward_backward(optimised, x, alpha, grad), rtol=1e-9, atol=1e-12)


def test_channels_last_input_and_no_input_gradient():
    space = SEARCH_SPACES["full"]
    reference, optimised = twin_ops(space)
    x, alpha, grad = random_case(space, (2, C, 9, 10))
    expected = forward_backward(reference, x, alpha, grad, x_requires_grad=False)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    actual = forward_backward(optimised, x_cl, alpha, grad, x_requires_grad=False)
    assert expected[1] is None and actual[1] is None
    assert_all_close(expected, actual, rtol=1e-9, atol=1e-12)


def test_no_grad_and_frozen_weights():
    space = SEARCH_SPACES["no_dil3"]
    reference, optimised = twin_ops(space)
    x, alpha, grad = random_case(space, (1, C, 7, 8))
    weights = torch.softmax(alpha, dim=0)
    with torch.no_grad():
        torch.testing.assert_close(optimised(x, weights), reference(x, weights), rtol=1e-9, atol=1e-12)
    for op in (reference, optimised):
        op.streams["sep"].requires_grad_(False)
    assert_all_close(forward_backward(reference, x, alpha, grad),
                     forward_backward(optimised, x, alpha, grad), rtol=1e-9, atol=1e-12)


def test_autocast_bfloat16_matches():
    """Under (CPU) autocast both compute in bfloat16; results agree to bfloat16 precision.  The
    gradients of the conv biases right before a GroupNorm are 0 in exact arithmetic (the norm
    removes them): in bfloat16 both ops give rounding noise there (about 5e-3, seen on an AMD
    EPYC), which is not compared; the float64 gradients say which tensors those are."""
    space = SEARCH_SPACES["full"]
    reference, optimised = twin_ops(space, torch.float32)
    x, alpha, grad = random_case(space, (2, C, 8, 9), torch.float32)
    exact = forward_backward(twin_ops(space, torch.float64)[0], x.double(), alpha.double(), grad.double())
    largest = max(g.abs().max().item() for g in exact)
    compared = [g.abs().max().item() > 1e-9 * largest for g in exact]
    assert 0 < sum(not c for c in compared) < len(compared) / 2

    def run(op):
        x_ = x.clone().requires_grad_()
        alpha_ = alpha.clone().requires_grad_()
        op.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = op(x_, torch.softmax(alpha_, dim=0))
        out.backward(grad)
        return [out.float(), x_.grad, alpha_.grad, *(p.grad for p in op.parameters())]

    for expected, actual, compare in zip(run(reference), run(optimised), compared):
        scale = expected.abs().max().item()
        assert not compare or (expected - actual).abs().max().item() <= 0.05 * scale + 1e-6


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_separable_conv_gradcheck(dilation):
    g = torch.Generator().manual_seed(dilation)
    inputs = (torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64),
              torch.randn(3, 1, 3, 3, generator=g, dtype=torch.float64),
              torch.randn(4, 3, 1, 1, generator=g, dtype=torch.float64),
              torch.randn(4, generator=g, dtype=torch.float64))
    inputs = tuple(t.requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(lambda *a: _SeparableConvFunction.apply(*a, dilation), inputs)


def test_weighted_sum_gradcheck():
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(4, generator=g, dtype=torch.float64).requires_grad_()
    outputs = [torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64).requires_grad_()
               for _ in range(3)]  # the last weight (none) has no output
    assert torch.autograd.gradcheck(_WeightedSumFunction.apply, (weights, *outputs))


def test_same_modules_and_state_dict_keys():
    reference, optimised = twin_ops("full")
    assert reference.state_dict().keys() == optimised.state_dict().keys()
    fused = [m for m in optimised.modules() if isinstance(m, FusedSeparableLayer)]
    assert len(fused) == 9  # sep stem (3) + dilated layers (3 per stream)
    assert not any(isinstance(m, FusedSeparableLayer) for m in reference.modules())
    assert build_mixed_op("full", C).fused and not reference.fused
    assert optimised.num_representations == reference.num_representations == 12


def test_tracing_sees_plain_convs():
    """Under ``torch.jit.trace`` (fvcore's FLOP count) the optimised op runs its plain layers, so
    FLOPs are counted as for the straightforward op."""
    from fvcore.nn import FlopCountAnalysis

    reference, optimised = twin_ops("full", torch.float32)
    inputs = (torch.randn(1, C, 8, 8), torch.softmax(torch.randn(SEARCH_SPACES["full"].num_choices), 0))
    flops = [FlopCountAnalysis(op, inputs).unsupported_ops_warnings(False).total()
             for op in (reference, optimised)]
    assert flops[0] == flops[1] > 0


def _shared_name(unshared_name):
    """The RepShare parameter that the unshared op's parameter copies (``load_transformations_from``):
    ``transformations.<op>.stem.…`` → ``streams.<stream>.stem.…``; the dilated layer and H →
    ``streams.<stream>.dilated|decouple.<op>.…``."""
    _, op, part, rest = unshared_name.split(".", 3)
    stream = TRANSFORMATIONS[op].stream
    return f"streams.{stream}.{part}.{rest}" if part == "stem" else f"streams.{stream}.{part}.{op}.{rest}"


@pytest.mark.parametrize("name", ["full", "no_dil3"])
def test_autocast_bfloat16_fused_repshare_matches_unshared(name):
    """Under (CPU) autocast the optimised RepShare op and the unshared op with the same weights
    agree to bfloat16 precision: output, input and α gradients, and every shared parameter's
    gradient = the sum of its copies' gradients in the unshared op."""
    space = SEARCH_SPACES[name]
    torch.manual_seed(0)
    fused = perturb_(RepShareMixedOp(space, C))
    unshared = UnsharedMixedOp(space, C).load_transformations_from(fused)
    x, alpha, grad = random_case(space, (2, C, 8, 9), torch.float32)

    def run(op, autocast=True):
        x_ = x.clone().requires_grad_()
        alpha_ = alpha.clone().requires_grad_()
        op.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = op(x_, torch.softmax(alpha_, dim=0))
        assert out.dtype == (torch.bfloat16 if autocast else torch.float32)
        out.backward(grad)
        return [out.float(), x_.grad, alpha_.grad], {n: p.grad.clone() for n, p in op.named_parameters()}

    def close(expected, actual, scale):  # bfloat16 keeps 8 bits: 5% of the magnitude
        assert actual.dtype == expected.dtype == torch.float32
        assert (expected - actual).abs().max().item() <= 0.05 * scale + 1e-6

    (f_out, f_grads), (u_out, u_grads) = run(fused), run(unshared)
    for expected, actual in zip(u_out, f_out):
        close(expected, actual, expected.abs().max().item())
    summed = {}
    for n, g in u_grads.items():
        summed[_shared_name(n)] = summed.get(_shared_name(n), 0) + g
    assert summed.keys() == f_grads.keys()
    # float32 gradients tell the conv biases right before a GroupNorm (which removes them): their
    # gradient is zero up to rounding, in bfloat16 noise on the scale of the op's gradients
    _, reference = run(fused, autocast=False)
    largest = max(g.abs().max().item() for g in reference.values())
    noise = [n for n, g in reference.items() if g.abs().max().item() < 1e-4 * largest]
    assert noise and all(n.endswith("bias") for n in noise)
    for n, g in f_grads.items():
        close(summed[n], g, 0.2 * largest if n in noise else summed[n].abs().max().item())
