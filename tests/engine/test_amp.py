"""Mixed precision (``SOLVER.AMP.ENABLED``) for train_net.py's trainer on the CPU (bfloat16
autocast; float16 with a real GradScaler at unit size) and the precision rule."""
import itertools
import json

import pytest
import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils.events import EventStorage
from torch import nn

import fad_d2  # noqa: F401
from fad_d2.engine.amp import AMPTrainer, amp_precision
from fad_d2.engine.trainer import Trainer
from tests.conftest import REPO, config_path
from tests.modeling.utils import cpu_cfg, tiny_opts

DEMO_FAD = config_path("Demo/fad_fcos_R_18_FPN_demo.yaml")


def conv_output_dtypes(module):
    """A set filled with the dtype of every ``Conv2d`` output of ``module`` while it runs; and
    the hook handles (``.remove()`` them)."""
    seen = set()
    handles = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
               for m in module.modules() if isinstance(m, nn.Conv2d)]
    return seen, handles


class _Regression(nn.Module):
    """A model as trainers call it: ``model(batch) → {name: loss}``."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 1)

    def forward(self, batch):
        x, y = batch
        return {"loss_l2": ((self.linear(x).float() - y) ** 2).mean()}


@pytest.mark.parametrize("precision", [torch.float16, torch.bfloat16])
def test_amp_trainer_steps_on_the_cpu(precision):
    torch.manual_seed(0)
    model = _Regression()
    batch = (torch.randn(16, 8), torch.randn(16, 1))
    trainer = AMPTrainer(model, itertools.repeat(batch), torch.optim.SGD(model.parameters(), lr=0.1),
                         device_type="cpu", precision=precision)
    before = model.linear.weight.detach().clone()
    seen, handles = set(), [model.linear.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))]
    with EventStorage(0) as storage:
        for trainer.iter in range(3):
            trainer.run_step()
    for h in handles:
        h.remove()
    assert seen == {precision}, "the forward runs under autocast"
    assert torch.isfinite(torch.tensor(storage.latest()["total_loss"][0]))
    assert not torch.equal(model.linear.weight, before)
    state = trainer.state_dict()["grad_scaler"]
    if precision == torch.float16:  # loss-scaled: the scale is checkpointed
        assert trainer.grad_scaler.is_enabled() and state["scale"] > 0
    else:  # bfloat16 needs no scaling: a disabled scaler, empty state
        assert not trainer.grad_scaler.is_enabled() and state == {}


def test_inner_trainer_for_a_cpu_model():
    """The trainer's constructor picks the step for the model's device (Detectron2's own
    AMPTrainer asserts CUDA), and one process keeps the model unwrapped."""
    model, loader = _Regression(), itertools.repeat((torch.randn(2, 8), torch.randn(2, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cfg = cpu_cfg(DEMO_FAD, check=False)
    assert type(Trainer.build_inner_trainer(cfg, model, loader, optimizer)) is SimpleTrainer
    cfg.SOLVER.AMP.ENABLED = True
    amp = Trainer.build_inner_trainer(cfg, model, loader, optimizer)
    assert isinstance(amp, AMPTrainer) and amp.device_type == "cpu" and amp.precision == torch.bfloat16
    assert Trainer.build_ddp_model(model) is model


def test_precision_rule():
    cfg = cpu_cfg(DEMO_FAD, check=False)
    assert "PRECISION" not in cfg.SOLVER.AMP  # this Detectron2 has no such key: the device decides
    assert amp_precision(cfg, "cuda") == torch.float16 and amp_precision(cfg, "cpu") == torch.bfloat16
    cfg.SOLVER.AMP.PRECISION = "float16"  # a Detectron2 that has the key
    assert amp_precision(cfg, "cpu") == torch.float16
    cfg.SOLVER.AMP.PRECISION = "float64"
    with pytest.raises(ValueError, match="SOLVER.AMP.PRECISION"):
        amp_precision(cfg, "cpu")


@pytest.mark.slow
def test_training_a_fad_head_with_amp_on_the_cpu(tmp_path):
    cfg = cpu_cfg(DEMO_FAD, *tiny_opts("MODEL.FAD.GENOTYPE", f"{REPO}/genotypes/fad_fcos_demo.json",
                                       "SOLVER.AMP.ENABLED", "True", "SOLVER.MAX_ITER", "3",
                                       "SOLVER.CHECKPOINT_PERIOD", "1000", "OUTPUT_DIR", str(tmp_path),
                                       "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"))
    trainer = Trainer(cfg)
    assert isinstance(trainer._trainer, AMPTrainer) and trainer._trainer.precision == torch.bfloat16
    trainer.resume_or_load(resume=False)
    seen, handles = conv_output_dtypes(trainer.model.head)
    trainer.train()
    for h in handles:
        h.remove()
    assert seen == {torch.bfloat16}
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    losses = [r["total_loss"] for r in records if "total_loss" in r]
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses)
    saved = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert saved["trainer"]["_trainer"]["grad_scaler"] == {}  # bfloat16: nothing to scale
