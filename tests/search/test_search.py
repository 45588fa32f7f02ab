"""The bilevel search: alternating α/w steps, split, derivation schedule, stop rule, resume, DDP."""
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from detectron2.engine import launch
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
from fad_d2.search import DeriveArchitectureHook, SearchTrainer
from fad_d2.space import architecture_parameters, weight_parameters
from tests.conftest import REPO
from tests.search.dist_worker import search_and_save_alpha
from tests.search.utils import SEARCH_CONFIG, tiny_search_cfg, tiny_search_opts


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _changed(before, params):
    return [not torch.equal(b, p) for b, p in zip(before, params)]


@pytest.mark.slow
def test_alpha_only_in_alpha_steps_and_w_only_in_w_steps(tmp_path):
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.WARMUP_ITERS", "0", "SOLVER.BASE_LR", "0.1"))
    model = trainer.model
    alphas, weights = architecture_parameters(model), weight_parameters(model)
    w_opt_ids = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    a_opt_ids = {id(p) for g in trainer.alpha_hook.optimizer.param_groups for p in g["params"]}
    assert a_opt_ids == {id(a) for a in alphas} and not (w_opt_ids & a_opt_ids)
    with EventStorage(0) as storage:
        a0, w0 = _snapshot(alphas), _snapshot(weights)
        trainer.alpha_hook.before_step()
        assert all(_changed(a0, alphas)), "every α moves in an α step"
        assert not any(_changed(w0, weights)), "no weight moves in an α step"
        assert all(p.grad is None for p in weights), "the α step computes no weight gradient"
        assert {"alpha_total_loss", "alpha_loss_fcos_cls", "alpha_lr", "alpha_data_time"} <= set(storage.latest())
        a1, w1 = _snapshot(alphas), _snapshot(weights)
        for a in alphas:
            a.grad = None
        trainer.run_step()  # DefaultTrainer's w step
        assert not any(_changed(a1, alphas)), "α does not move in a w step"
        assert all(a.grad is None and not a.requires_grad for a in alphas), "the w step computes no α gradient"
        # every weight with a real gradient moves (biases right before a 1-channel GroupNorm get
        # only rounding noise, ~1e-15)
        with_grad = [p.grad is not None and bool(p.grad.abs().max() > 1e-4) for p in weights]
        changed = _changed(w1, weights)
        assert sum(with_grad) > len(weights) // 2
        assert all(c for c, g in zip(changed, with_grad) if g), "the weights move in a w step"


def test_two_loaders_never_share_an_image(tmp_path):
    trainer = SearchTrainer(tiny_search_cfg(tmp_path))
    split = trainer.split
    assert split.w_keys and split.alpha_keys and not set(split.w_keys) & set(split.alpha_keys)
    assert len(split.w_keys) + len(split.alpha_keys) == 24  # FAD_D2_SYNTH_SMALL train split
    seen = {}
    for name, loader in (("w", trainer.data_loader), ("alpha", trainer.alpha_hook.data_loader)):
        it = iter(loader)
        seen[name] = {d["file_name"] for _ in range(12) for d in next(it)}
    assert seen["w"] and seen["alpha"] and not seen["w"] & seen["alpha"]
    saved = json.loads((tmp_path / "search_split.json").read_text())
    assert saved["w"] == list(split.w_keys) and saved["alpha"] == list(split.alpha_keys)
    # a rerun in the same OUTPUT_DIR reuses the saved split; another seed is refused
    assert SearchTrainer(tiny_search_cfg(tmp_path)).split == split
    with pytest.raises(ValueError, match=r"search_split.json was made with SEARCH.SPLIT_RATIO 0.5 and "
                                         r"SEARCH.SPLIT_SEED 0, not 0.5 and 123"):
        SearchTrainer(tiny_search_cfg(tmp_path, "SEARCH.SPLIT_SEED", "123"))


@pytest.mark.slow
def test_derivation_period_and_stop_when_stable(tmp_path, caplog):
    # α frozen (lr 0): the second derivation equals the first, so the search stops there
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.MAX_ITER", "10", "SEARCH.ALPHA_LR", "0.0"))
    with _logs_of("detectron2", "fad_d2", handler=caplog.handler):
        trainer.train()
    files = sorted(f for f in os.listdir(tmp_path) if f.startswith("genotype_iter_"))
    assert files == ["genotype_iter_0000002.json", "genotype_iter_0000004.json"]
    assert trainer.iter == 4 and trainer.stop_reason
    assert "stopped the search at iteration 4" in caplog.text
    assert "Exception" not in caplog.text, "a stop is no failure"
    history = json.loads((tmp_path / "alpha_history.json").read_text())["history"]
    assert [h["iteration"] for h in history] == [2, 4] and [h["stable"] for h in history] == [False, True]
    for name in ("genotype_final.json", "genotype_final.png", "alpha_evolution.png", "model_final.pth"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_alpha_warmup_then_derivations_counted_in_periods(tmp_path):
    # α frozen (lr 0) after a 3-iteration warm-up: derivations at 3 + 2k; with STABLE_PERIODS 2
    # the architecture is stable only at the third equal derivation
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.MAX_ITER", "20", "SEARCH.ALPHA_LR", "0.0",
                                            "SEARCH.ALPHA_WARMUP_ITERS", "3", "SEARCH.STABLE_PERIODS", "2"))
    trainer.train()
    history = json.loads((tmp_path / "alpha_history.json").read_text())["history"]
    assert [h["iteration"] for h in history] == [5, 7, 9]
    assert [h["unchanged_periods"] for h in history] == [0, 1, 2]
    assert [h["stable"] for h in history] == [False, False, True]
    assert trainer.iter == 9 and "since iteration 5" in trainer.stop_reason
    assert json.loads((tmp_path / "genotype_final.json").read_text())["meta"] == {"iteration": 9, "end": "stable"}


def test_no_alpha_step_during_the_warmup(tmp_path):
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SEARCH.ALPHA_WARMUP_ITERS", "2", "SEARCH.ALPHA_LR", "0.1"))
    alphas = architecture_parameters(trainer.model)
    with EventStorage(0) as storage:
        a0 = _snapshot(alphas)
        trainer.iter = 1  # the last warm-up iteration: w alone, no α-half batch drawn
        trainer.alpha_hook.before_step()
        assert not any(_changed(a0, alphas)) and trainer.alpha_hook._data_iter is None
        assert "alpha_total_loss" not in storage.latest()
        trainer.iter = 2
        trainer.alpha_hook.before_step()
        assert all(_changed(a0, alphas))


@contextlib.contextmanager
def _logs_of(*names, handler):
    """INFO records of loggers ``names`` go to ``handler`` too (Detectron2's ``setup_logger``
    stops propagation to the root logger, where pytest's ``caplog`` listens)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)


@pytest.mark.slow
def test_no_stop_when_disabled(tmp_path):
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.MAX_ITER", "6", "SEARCH.ALPHA_LR", "0.0",
                                            "SEARCH.STOP_WHEN_STABLE", "False"))
    trainer.train()
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith("genotype_iter_")) == [
        "genotype_iter_0000002.json", "genotype_iter_0000004.json", "genotype_iter_0000006.json"]
    assert trainer.iter == 6 and not trainer.stop_reason


def test_config_without_fad_search_module_fails_at_once(tmp_path):
    with pytest.raises(ValueError, match="without any FAD search module"):
        SearchTrainer(tiny_search_cfg(tmp_path, "MODEL.FCOS.HEAD_NAME", "FCOSHead"))


def test_dataset_too_small_to_split(tmp_path):
    with pytest.raises(ValueError, match="too small to split"):
        SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.IMS_PER_BATCH", "16"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_search_keeps_alpha_identical(tmp_path):
    launch(search_and_save_alpha, 2, dist_url=f"tcp://127.0.0.1:{_free_port()}", args=(str(tmp_path), 3))
    a0, a1 = (torch.load(tmp_path / f"alpha_rank{r}.pt") for r in (0, 1))
    assert a0.keys() == a1.keys() == {"box", "cls"}
    for k in a0:
        assert torch.equal(a0[k], a1[k])
        assert not torch.allclose(a0[k], torch.zeros_like(a0[k]))


@pytest.mark.slow
def test_kill_and_resume_restores_everything(tmp_path):
    """Kill a running search_net.py with SIGKILL after a checkpoint, resume, compare state."""
    opts = tiny_search_opts(tmp_path, "SOLVER.MAX_ITER", "1000", "SOLVER.CHECKPOINT_PERIOD", "2")
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "search_net.py"), "--config-file", SEARCH_CONFIG,
                             *opts], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (tmp_path / "model_0000003.pth").exists():
            assert proc.poll() is None, "the search exited early"
            assert time.time() < deadline, "no checkpoint within 5 minutes"
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = (tmp_path / "last_checkpoint").read_text().strip()
    saved = torch.load(tmp_path / last, map_location="cpu", weights_only=False)

    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.MAX_ITER", "1000", "SOLVER.CHECKPOINT_PERIOD", "2"))
    trainer.resume_or_load(resume=True)
    assert trainer.start_iter == saved["iteration"] + 1
    for g in trainer.groups:
        assert torch.equal(g.alpha.detach(), saved["model"][_param_name(trainer.model, g.alpha)])
    alpha_state = saved["trainer"]["hooks"]["AlphaUpdateHook"]["optimizer"]
    assert alpha_state["state"], "Adam moments were saved"
    _assert_state_equal(trainer.alpha_hook.optimizer.state_dict(), alpha_state)
    _assert_state_equal(trainer.optimizer.state_dict(), saved["trainer"]["_trainer"]["optimizer"])
    assert trainer.scheduler.state_dict() == saved["trainer"]["hooks"]["LRScheduler"]
    assert saved["trainer"]["search_split"] == trainer.split.to_dict()
    hooks_state = saved["trainer"]["hooks"]["DeriveArchitectureHook"]["history"]
    derived_at = [h["iteration"] for h in hooks_state]
    assert derived_at == list(range(2, saved["iteration"] + 2, 2))  # every DERIVE_PERIOD = 2 so far
    assert _derive_hook(trainer).history == hooks_state


def _derive_hook(trainer):
    return next(h for h in trainer._hooks if isinstance(h, DeriveArchitectureHook))


def _param_name(model, param):
    return next(n for n, p in model.named_parameters() if p is param)


def _assert_state_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_state_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_state_equal(x, y)
    else:
        assert a == b

