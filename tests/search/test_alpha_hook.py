"""The α step as a hook: the same α gradient as the plain computation with less autograd record,
parameters' ``requires_grad`` restored, the global clip of w, old checkpoints' α optimizer."""
import copy

import pytest
import torch
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
import fad_d2.modeling.fad_head as fad_head
from fad_d2.modeling.batch_threads import run_batch_threads
from fad_d2.search import SearchTrainer
from fad_d2.search.alpha_hook import requires_grad_only
from fad_d2.search.trainer import with_global_grad_clip
from fad_d2.space import architecture_parameters, weight_parameters
from fad_d2.space.cell import input_layout
from tests.search.test_search import _assert_state_equal
from tests.search.utils import tiny_search_cfg


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    return SearchTrainer(tiny_search_cfg(tmp_path_factory.mktemp("alpha_hook")))


def _saved_bytes(fn):
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs (parameters too)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


@pytest.mark.slow
def test_alpha_step_gradient_equals_the_plain_computation(trainer):
    model, hook = trainer.model, trainer.alpha_hook
    alphas, weights = architecture_parameters(model), weight_parameters(model)
    flags = [p.requires_grad for p in weights]
    assert not all(flags), "the frozen backbone stages do not require gradients"
    assert not any(a.requires_grad for a in alphas), "α is frozen outside the α step"
    batch = next(iter(hook.data_loader))
    for a in alphas:  # the plain computation below: α and the trainable weights record their graph
        a.requires_grad_(True)
    with EventStorage(0):
        # a fresh model's first pass can differ from the next ones in the last bits (CPU kernels)
        sum(model(batch).values()).backward(inputs=alphas)
        # plain: every parameter records its graph, the backward goes to α only
        model.loss_normalizer = 100.0  # FCOS's running normaliser, the same for both passes
        for a in alphas:
            a.grad = None
        plain = {}
        plain_saved = _saved_bytes(lambda: plain.update(model(batch)))
        sum(plain.values()).backward(inputs=alphas)
        plain_grads = [a.grad.clone() for a in alphas]

        model.loss_normalizer = 100.0
        for a in alphas:
            a.requires_grad_(False)
        hook_losses = {}
        hook_saved = _saved_bytes(lambda: hook_losses.update(hook.step(model, batch)))
    assert hook_losses.keys() == plain.keys()
    for k in plain:
        assert torch.equal(hook_losses[k], plain[k].detach()), k
    for a, g in zip(alphas, plain_grads):
        assert torch.equal(a.grad, g)
    assert all(p.grad is None for p in weights), "no weight gradient"
    assert [p.requires_grad for p in weights] == flags, "requires_grad restored"
    assert not any(a.requires_grad for a in alphas), "α frozen again after its step"
    assert hook_saved < 0.9 * plain_saved, (hook_saved, plain_saved)  # FPN, first cell edges: nothing


def test_requires_grad_restored_after_an_exception(trainer):
    model = trainer.model
    before = [p.requires_grad for p in model.parameters()]
    with pytest.raises(KeyError):
        with EventStorage(0):
            trainer.alpha_hook.step(model, [{"no image": None}])
    assert [p.requires_grad for p in model.parameters()] == before
    with pytest.raises(RuntimeError, match="inside"):
        with requires_grad_only(model, architecture_parameters(model)):
            assert sum(p.requires_grad for p in model.parameters()) == len(architecture_parameters(model))
            raise RuntimeError("inside")
    assert [p.requires_grad for p in model.parameters()] == before


def test_w_optimizer_clips_the_global_gradient_norm(trainer):
    assert type(trainer.optimizer).__name__ == "SGDWithGlobalGradClip"
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(4))
    optimizer = with_global_grad_clip(torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=1.0), 20.0)
    a.grad, b.grad = torch.tensor([30.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.0, 40.0])  # global norm 50
    optimizer.step()
    # one norm over both groups: both scaled by 20 / 50 (per parameter: 30 → 20, 40 → 20)
    torch.testing.assert_close(a.detach(), torch.tensor([-12.0, 0.0, 0.0]))
    torch.testing.assert_close(b.detach(), torch.tensor([0.0, 0.0, 0.0, -16.0]))
    cfg = trainer.cfg.clone()
    cfg.defrost()
    cfg.SEARCH.GRAD_CLIP_NORM = 0.0
    assert type(SearchTrainer.build_optimizer(cfg, trainer.model)) is torch.optim.SGD


def test_checkpoint_of_the_former_trainer_restores_the_alpha_optimizer(trainer, tmp_path):
    with EventStorage(0):
        trainer.alpha_hook.before_step()
    state = copy.deepcopy(trainer.state_dict())
    alpha_state = state["hooks"].pop("AlphaUpdateHook")["optimizer"]
    assert alpha_state["state"], "Adam moments"
    state["_trainer"]["alpha_optimizer"] = alpha_state  # where the α step's trainer kept it
    fresh = SearchTrainer(tiny_search_cfg(tmp_path))
    assert not fresh.alpha_hook.optimizer.state_dict()["state"]
    fresh.load_state_dict(state)
    _assert_state_equal(fresh.alpha_hook.optimizer.state_dict(), alpha_state)


@pytest.mark.slow
def test_w_gradients_the_same_with_alpha_frozen(trainer):
    """The w step runs with α frozen (SearchTrainer.build_model): the weights' gradients equal
    those of a pass in which α requires a gradient too, and α gets none."""
    model = trainer.model
    alphas, weights = architecture_parameters(model), weight_parameters(model)
    batch = next(iter(trainer.alpha_hook.data_loader))
    grads = {}
    with EventStorage(0):
        sum(model(batch).values()).backward()  # a fresh model's first pass can differ in the last bits
        for alpha_grad in (True, False):
            for a in alphas:
                a.requires_grad_(alpha_grad)
                a.grad = None
            model.zero_grad(set_to_none=True)
            model.loss_normalizer = 100.0
            sum(model(batch).values()).backward()
            grads[alpha_grad] = [None if p.grad is None else p.grad.clone() for p in weights]
            assert all((a.grad is not None) == alpha_grad for a in alphas)
    for with_alpha, without in zip(grads[True], grads[False]):
        assert (with_alpha is None) == (without is None)
        if with_alpha is not None:
            assert torch.equal(with_alpha, without)


@pytest.mark.slow
def test_head_batch_split_gives_the_same_alpha_step_and_w_gradients(tmp_path, monkeypatch):
    """``MODEL.FAD.CPU_BATCH_THREADS``: the α step (``AlphaUpdateHook.step``: α's gradient and
    update) and the w step's gradients on a batch of 4 cut into two threads' chunks equal those of
    one call, to float64 rounding.  Both compute the cells in NCHW (``input_layout``; the
    workers' one thread would otherwise differ from the one call's two threads in layout too,
    compared in ``tests/space/test_space_channels_last.py``).

    Two things of this tiny setting would make the w gradients differ by far more than rounding,
    split or not: c′ = 32 in 32 GroupNorm groups on the 1×1 level P7 gives one-value groups, whose
    output is the GroupNorm bias plus rounding noise; with the biases at their initial 0 the
    ReLU behind them sits on its kink, so a last-bit change anywhere before (such as the α step's
    rounding) switches whole gradient paths on or off.  The test moves the head's GroupNorm biases
    off the kink and takes both w passes from the same α (the one call's step)."""
    calls = []

    def counted(fn, inputs, module, chunks):
        calls.append(chunks)
        return run_batch_threads(fn, inputs, module, chunks)

    monkeypatch.setattr(fad_head, "run_batch_threads", counted)
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.IMS_PER_BATCH", "4"))
    model, hook = trainer.model.to(torch.float64), trainer.alpha_hook
    alphas, weights = architecture_parameters(model), weight_parameters(model)
    batch = next(iter(hook.data_loader))
    assert len(batch) == 4
    with torch.no_grad():
        for norm in (m for m in model.head.modules() if isinstance(m, torch.nn.GroupNorm)):
            norm.bias.fill_(0.05)
    model.head.batch_threads = 1
    with EventStorage(0):  # a fresh model's first pass can differ from the next ones in the last bits
        model(batch)
    alpha_start = [a.detach().clone() for a in alphas]
    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(hook.optimizer.state_dict())
    results = {}
    for threads in (1, 2):
        model.load_state_dict(model_state)
        hook.optimizer.load_state_dict(optimizer_state)
        model.head.batch_threads = threads
        with EventStorage(0), input_layout():
            model.loss_normalizer = 100.0  # FCOS's running normaliser, the same for every pass
            hook.step(model, batch)
            alpha_grads = [a.grad.clone() for a in alphas]
            alpha_after = [a.detach().clone() for a in alphas]
            if threads == 2:  # the w pass from the one call's α
                with torch.no_grad():
                    for a, stepped in zip(alphas, results[1][0]):
                        a.copy_(stepped)
            model.zero_grad(set_to_none=True)
            model.loss_normalizer = 100.0
            sum(model(batch).values()).backward()
        results[threads] = (alpha_after, alpha_grads, [p.grad for p in weights])
    assert calls == [2, 2], "the split ran in both passes of the second round only"
    (alpha_one, alpha_grad_one, grads_one), (alpha_split, alpha_grad_split, grads_split) = results[1], results[2]
    assert not any(torch.equal(a, b) for a, b in zip(alpha_one, alpha_start)), "the α step moved α"
    for a, b in zip(alpha_grad_one + alpha_one, alpha_grad_split + alpha_split):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13 * float(a.abs().max()))
    scale = max(float(g.abs().max()) for g in grads_one if g is not None)
    assert sum(g is not None for g in grads_one) > len(grads_one) // 2
    for a, b in zip(grads_one, grads_split):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12 * scale)
