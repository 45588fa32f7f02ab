"""train_net.py's machinery on the small embedded dataset: loss falls, COCO metrics, CLI errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
from fad_d2.engine.box_watch import BoxRegressionWatch
from fad_d2.engine.trainer import Trainer
from tests.conftest import REPO, config_path
from tests.modeling.utils import cpu_cfg, tiny_opts

pytestmark = pytest.mark.slow  # end-to-end: trainings, searches, subprocesses

DEMO_FCOS = config_path("Demo/fcos_R_18_FPN_demo.yaml")
COCO_KEYS = {"AP", "AP50", "AP75", "APs", "APm", "APl"}


def _probe_loss(model, batch):
    """Training loss of ``batch`` without an update.  FCOS divides its losses by an EMA of the
    number of positives that starts at 100 (so the logged loss drifts while the EMA settles); the
    probe resets it, so that two probes of one batch use the same normalizer."""
    model.loss_normalizer = 100.0
    with torch.no_grad(), EventStorage():
        return sum(model(batch).values()).item()


def test_training_loss_falls_and_evaluation_gives_coco_metrics(tmp_path):
    cfg = cpu_cfg(DEMO_FCOS, *tiny_opts("SOLVER.MAX_ITER", "40", "SOLVER.WARMUP_ITERS", "5", "SOLVER.BASE_LR", "0.01",
                                        "SOLVER.CHECKPOINT_PERIOD", "1000", "OUTPUT_DIR", str(tmp_path),
                                        "MODEL.FCOS.SCORE_THRESH_TEST", "0.01", "TEST.EVAL_PERIOD", "0",
                                        "DATASETS.TEST", "()"))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    batch = next(iter(trainer.data_loader))
    before = _probe_loss(trainer.model, batch)
    trainer.train()
    assert trainer.iter == 40
    box_watch = next(h for h in trainer._hooks if isinstance(h, BoxRegressionWatch))
    assert box_watch.median is not None and not box_watch.warned  # checked at iteration 25: boxes train
    after = _probe_loss(trainer.model, batch)
    assert after < 0.8 * before, (before, after)
    cfg.defrost()
    cfg.DATASETS.TEST = ("fad_synth_val",)
    results = Trainer.test(cfg, trainer.model)  # what train_net.py --eval-only runs
    assert COCO_KEYS <= set(results["bbox"]), results
    assert all(np.isfinite(v) and v >= 0 for k, v in results["bbox"].items() if k in COCO_KEYS)
    assert (tmp_path / "model_final.pth").exists()


def _run_train_net(*args, env=None):
    env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run([sys.executable, os.path.join(REPO, "train_net.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def _error_line(proc):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def test_cli_missing_dataset_directory_is_one_line(tmp_path):
    proc = _run_train_net("--config-file", config_path("FCOS/fcos_R_50_FPN_1x_coco.yaml"), "MODEL.DEVICE", "cpu",
                          "MODEL.WEIGHTS", "", "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
                          "OUTPUT_DIR", str(tmp_path), env={"DETECTRON2_DATASETS": str(tmp_path / "nowhere")})
    line = _error_line(proc)
    assert "coco_2017_train" in line and str(tmp_path / "nowhere") in line


def test_cli_config_key_typo_is_one_line(tmp_path):
    proc = _run_train_net("--config-file", DEMO_FCOS, "MODEL.FCOS.NUM_CLASSE", "3", "OUTPUT_DIR", str(tmp_path))
    assert "MODEL.FCOS.NUM_CLASSE" in _error_line(proc)
