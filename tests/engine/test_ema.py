"""MODEL_EMA: the average's arithmetic, the trainer evaluating and checkpointing it, a resumed run
continuing it, and ``train_net.py --eval-only`` loading it."""
import pytest
import torch
from detectron2.config import CfgNode as CN

import fad_d2  # noqa: F401
from fad_d2.cli import train as train_net
from fad_d2.engine.checkpoint import CheckpointError
from fad_d2.engine.ema import EMA_KEY, build_model_ema, update_model_ema
from fad_d2.engine.setup import ConfigError
from fad_d2.engine.trainer import Trainer
from tests.conftest import config_path
from tests.modeling.utils import cpu_cfg, tiny_opts

DEMO_FCOS = config_path("Demo/fcos_R_18_FPN_demo.yaml")


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.register_buffer("stat", torch.zeros(1))


def _ema_cfg(decay):
    cfg = CN()
    cfg.MODEL_EMA = CN({"ENABLED": True, "DECAY": decay})
    return cfg


def test_average_moves_by_the_decay_and_copies_buffers():
    model = _Toy()
    ema = build_model_ema(_ema_cfg(0.75), model)
    with torch.no_grad():
        model.linear.weight.fill_(4.0)
    update_model_ema(ema, model)  # the first update copies
    with torch.no_grad():
        model.linear.weight.fill_(8.0)
        model.stat.fill_(3.0)
    update_model_ema(ema, model)
    assert torch.allclose(ema.module.linear.weight, torch.full((1, 2), 0.75 * 4.0 + 0.25 * 8.0))
    assert ema.module.stat.item() == 3.0  # buffers follow the model
    assert int(ema.n_averaged) == 2


def _tiny_cfg(tmp_path, max_iter, *opts):
    return cpu_cfg(DEMO_FCOS, *tiny_opts("SOLVER.MAX_ITER", str(max_iter), "SOLVER.WARMUP_ITERS", "1",
                                         "SOLVER.CHECKPOINT_PERIOD", "2", "OUTPUT_DIR", str(tmp_path),
                                         "TEST.EVAL_PERIOD", "0", "MODEL_EMA.ENABLED", "True",
                                         "MODEL_EMA.DECAY", "0.5", *opts))


def _train(cfg, resume, evaluated):
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    assert evaluated[-1] is trainer.ema.module  # the final evaluation ran on the average
    return trainer


@pytest.mark.slow
def test_trainer_evaluates_saves_and_resumes_the_average(tmp_path, monkeypatch):
    evaluated = []
    monkeypatch.setattr(Trainer, "test", classmethod(lambda cls, cfg, model: evaluated.append(model) or {}))
    trainer = _train(_tiny_cfg(tmp_path, 3), False, evaluated)
    head = "head.cls_score.weight"
    trained, averaged = trainer.model.state_dict()[head], trainer.ema.module.state_dict()[head]
    assert not torch.equal(trained, averaged)  # the head moved: the average lags behind it
    saved = torch.load(tmp_path / "model_final.pth", weights_only=False)[EMA_KEY]
    assert int(saved["n_averaged"]) == 3 and torch.equal(saved[f"module.{head}"], averaged)

    resumed = _train(_tiny_cfg(tmp_path, 5), True, evaluated)  # continues from model_final (iteration 3)
    assert int(resumed.ema.n_averaged) == 5


@pytest.mark.slow
def test_eval_only_loads_the_average(tmp_path, monkeypatch):
    evaluated = []
    monkeypatch.setattr(Trainer, "test", classmethod(lambda cls, cfg, model: evaluated.append(model) or {}))
    trainer = _train(_tiny_cfg(tmp_path, 2), False, evaluated)
    weights = str(tmp_path / "model_final.pth")
    train_net.evaluate(_tiny_cfg(tmp_path, 2, "MODEL.WEIGHTS", weights), resume=False)
    expected = trainer.ema.module.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in evaluated[-1].state_dict().items())

    checkpoint = torch.load(weights, weights_only=False)
    del checkpoint[EMA_KEY]
    torch.save(checkpoint, tmp_path / "no_ema.pth")
    with pytest.raises(CheckpointError, match=r"no_ema.pth holds no 'model_ema'.*MODEL_EMA.ENABLED False"):
        train_net.evaluate(_tiny_cfg(tmp_path, 2, "MODEL.WEIGHTS", str(tmp_path / "no_ema.pth")), resume=False)


def test_decay_outside_zero_one_is_refused():
    with pytest.raises(ConfigError, match=r"MODEL_EMA.DECAY: 1.0 is not allowed: a number in \(0, 1\)"):
        cpu_cfg(DEMO_FCOS, "MODEL_EMA.DECAY", "1.0")
