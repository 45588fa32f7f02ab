"""The search with mixed precision (``SOLVER.AMP.ENABLED``): both steps under autocast, each with
its own GradScaler, w clipped on unscaled gradients, checkpoints and resume (CPU: bfloat16)."""
import json

import pytest
import torch
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
from fad_d2.engine.amp import AMPTrainer
from fad_d2.search import AlphaUpdateHook, SearchTrainer, build_alpha_optimizer
from fad_d2.search.trainer import with_global_grad_clip
from tests.engine.test_amp import conv_output_dtypes
from tests.search.test_search import _assert_state_equal, _param_name
from tests.search.utils import tiny_search_cfg

AMP = ("SOLVER.AMP.ENABLED", "True")


def test_w_clip_sees_unscaled_gradients():
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(4))
    optimizer = with_global_grad_clip(torch.optim.SGD([a, b], lr=1.0), 20.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # float16-style loss scaling
    loss = (a * torch.tensor([30.0, 0.0, 0.0])).sum() + (b * torch.tensor([0.0, 0.0, 0.0, 40.0])).sum()
    scaler.scale(loss).backward()
    assert a.grad[0] == 30.0 * 1024
    scaler.step(optimizer)
    # the true gradient (norm 50) clipped to norm 20; clipping the scaled one would move ~1/1024 as far
    torch.testing.assert_close(a.detach(), torch.tensor([-12.0, 0.0, 0.0]))
    torch.testing.assert_close(b.detach(), torch.tensor([0.0, 0.0, 0.0, -16.0]))


def _finite_losses(output_dir):
    records = [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]
    losses = [r[k] for r in records for k in ("total_loss", "alpha_total_loss") if k in r]
    assert len(losses) >= 2 and all(torch.isfinite(torch.tensor(v)) for v in losses), losses


@pytest.mark.slow
def test_search_with_amp_checkpoints_and_resumes(tmp_path):
    opts = (*AMP, "SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2", "SEARCH.STOP_WHEN_STABLE", "False")
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, *opts))
    assert isinstance(trainer._trainer, AMPTrainer) and trainer._trainer.precision == torch.bfloat16
    assert trainer.alpha_hook.precision == torch.bfloat16
    assert trainer.alpha_hook.grad_scaler is not trainer._trainer.grad_scaler
    alpha0 = [g.alpha.detach().clone() for g in trainer.groups]
    seen, handles = conv_output_dtypes(trainer.model.head)
    trainer.train()
    for h in handles:
        h.remove()
    assert seen == {torch.bfloat16}, "the α and w steps run under autocast"
    assert all(not torch.equal(g.alpha, a0) for g, a0 in zip(trainer.groups, alpha0)), "α moves"
    _finite_losses(tmp_path)
    assert trainer.derive_hook.end == {"reason": "completed", "iteration": 4}

    # resume from the iteration-1 checkpoint: every state is back, the search ends as before
    saved = torch.load(tmp_path / "model_0000001.pth", map_location="cpu", weights_only=False)
    alpha_state = saved["trainer"]["hooks"]["AlphaUpdateHook"]
    assert alpha_state["optimizer"]["state"] and alpha_state["grad_scaler"] == {}  # bfloat16: no scaling
    assert saved["trainer"]["_trainer"]["grad_scaler"] == {}
    (tmp_path / "last_checkpoint").write_text("model_0000001.pth")
    resumed = SearchTrainer(tiny_search_cfg(tmp_path, *opts))
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    for g in resumed.groups:
        assert torch.equal(g.alpha.detach(), saved["model"][_param_name(resumed.model, g.alpha)])
    _assert_state_equal(resumed.alpha_hook.optimizer.state_dict(), alpha_state["optimizer"])
    resumed.train()
    assert resumed.iter == 4 and resumed.derive_hook.end == {"reason": "completed", "iteration": 4}
    _finite_losses(tmp_path)


def test_alpha_step_with_float16_loss_scaling(tmp_path):
    """float16 autocast (here on the CPU): the α step's own GradScaler scales the loss, skips a
    step that overflowed (halving its scale), steps α and is checkpointed."""
    trainer = SearchTrainer(tiny_search_cfg(tmp_path))
    alphas = [g.alpha for g in trainer.groups]
    hook = AlphaUpdateHook(trainer.alpha_hook.data_loader, build_alpha_optimizer(trainer.cfg, alphas),
                           precision=torch.float16)
    assert hook.grad_scaler.is_enabled()
    before = [a.detach().clone() for a in alphas]
    seen, handles = conv_output_dtypes(trainer.model.head)
    hook.trainer = trainer
    with EventStorage(0):
        for steps in range(1, 9):  # a step whose scaled gradients overflow is skipped
            hook.before_step()
            if any(not torch.equal(a, b) for a, b in zip(alphas, before)):
                break
    for h in handles:
        h.remove()
    assert seen == {torch.float16}
    assert any(not torch.equal(a, b) for a, b in zip(alphas, before)), "α moves"
    state = hook.state_dict()
    assert state["grad_scaler"]["scale"] == 65536.0 / 2 ** (steps - 1)  # halved at each skipped step
    fresh = AlphaUpdateHook(None, build_alpha_optimizer(trainer.cfg, alphas), precision=torch.float16)
    fresh.load_state_dict(state)
    assert fresh.grad_scaler.state_dict() == state["grad_scaler"]
    _assert_state_equal(fresh.optimizer.state_dict(), state["optimizer"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_search_with_amp_on_cuda(tmp_path):
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, *AMP, "MODEL.DEVICE", "cuda", "SOLVER.MAX_ITER", "2"))
    assert trainer._trainer.precision == torch.float16
    trainer.train()
    _finite_losses(tmp_path)
    saved = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert saved["trainer"]["_trainer"]["grad_scaler"]["scale"] > 0
    assert saved["trainer"]["hooks"]["AlphaUpdateHook"]["grad_scaler"]["scale"] > 0
