"""Helpers shared by the tests of ``fad_d2.space`` (tiny sizes: c = c′ = 32, 9×9 maps)."""
import torch

from fad_d2.space import NONE


def perturb_(module, seed=0, scale=0.1):
    """Add seeded noise to every parameter (GroupNorm's affine too), so that a missed weight
    copy changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def positive_(module, seed=0):
    """Set every parameter to a small positive value (no cancellation in receptive fields)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.05 + 0.1 * torch.rand(p.shape, generator=g, dtype=p.dtype))
    return module


def one_hot(space, name, dtype=torch.float64):
    """Mixed-op weights (Tensor[K]) with all weight on choice ``name``."""
    w = torch.zeros(space.num_choices, dtype=dtype)
    w[space.choices.index(name)] = 1.0
    return w


def none_weights(space, dtype=torch.float64):
    return one_hot(space, NONE, dtype)


def gradients(module, x, seed=1):
    """Outputs of ``module(x)`` and the gradients of x and of every parameter (α included) for
    random output gradients, as one list."""
    x = x.clone().requires_grad_()
    outs = module(x)
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]
    return [*outs, *torch.autograd.grad(outs, [x, *module.parameters()], grads)]
