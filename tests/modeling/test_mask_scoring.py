"""Mask Scoring R-CNN: MaskIoU targets, the loss falling on the embedded dataset, rescoring at
inference, segm evaluation by mask score, and Table 5's parameter count."""
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances, PolygonMasks
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
from fad_d2.engine.trainer import Trainer
from fad_d2.modeling.mask_scoring import maskiou_targets
from tests.conftest import config_path
from tests.modeling.utils import cpu_cfg, detection_batch, tiny_opts

DEMO_MS = config_path("Demo/ms_rcnn_R_18_FPN_demo.yaml")


def _square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_maskiou_target_uses_the_whole_object_area():
    """A proposal covering the left half of a 28×8 object: a mask filling the proposal overlaps
    all of the object inside it but only half of the object, so its IoU is 0.5, not 1."""
    inst = Instances((64, 64))
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 14.0, 8.0], [0.0, 0.0, 28.0, 8.0]]))
    inst.gt_masks = PolygonMasks([_square(0, 0, 28, 8), _square(0, 0, 28, 8)])
    full = torch.ones(2, 28, 28)
    left = full.clone()
    left[:, :, 14:] = 0
    targets = maskiou_targets(torch.stack([full[0], left[1]]), [inst])
    assert torch.allclose(targets, torch.tensor([0.5, 0.5]), atol=0.02)
    assert torch.allclose(maskiou_targets(full, [inst]), torch.tensor([0.5, 1.0]), atol=0.02)


def _probe_maskiou_loss(model, batch):
    torch.manual_seed(0)  # same proposal sampling for both probes
    with torch.no_grad(), EventStorage():
        return model(batch)["loss_maskiou"].item()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The demo MS R-CNN trained a few dozen iterations on the small embedded dataset (seeded:
    the weights' initialisation and the sampler's order are the same in every run)."""
    seed_all_rng(0)
    out = tmp_path_factory.mktemp("ms_rcnn")
    cfg = cpu_cfg(DEMO_MS, *tiny_opts("SOLVER.MAX_ITER", "40", "SOLVER.WARMUP_ITERS", "5",
                                      "SOLVER.CHECKPOINT_PERIOD", "1000", "OUTPUT_DIR", str(out),
                                      "DATASETS.TEST", "()", "MODEL.RPN.POST_NMS_TOPK_TRAIN", "200",
                                      "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32"))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    batch = next(iter(trainer.data_loader))
    before = _probe_maskiou_loss(trainer.model, batch)
    trainer.train()
    return cfg, trainer.model, before, _probe_maskiou_loss(trainer.model, batch)


@pytest.mark.slow
def test_maskiou_loss_falls(trained):
    _, _, before, after = trained
    assert after < 0.5 * before, (before, after)


@pytest.mark.slow
def test_segm_evaluated_with_mask_scores(trained):
    cfg, model, _, _ = trained
    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATASETS.TEST = ("fad_synth_val",)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.01
    results = Trainer.test(cfg, model)
    assert {"bbox", "segm"} <= set(results)
    assert all(np.isfinite(v) for v in results["segm"].values())


@torch.no_grad()
def test_mask_scores_rescore_detections():
    cfg = cpu_cfg(DEMO_MS, *tiny_opts("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"))
    model = build_model(cfg).eval()
    for p in model.roi_heads.maskiou_head.predictor.parameters():  # IoU predictions away from 0
        torch.nn.init.constant_(p, 0.01)
    outputs = model([{"image": d["image"]} for d in detection_batch(1, 64, 96, num_classes=8)])
    inst = outputs[0]["instances"]
    assert len(inst) > 0 and inst.mask_scores.shape == inst.scores.shape
    assert not torch.allclose(inst.mask_scores, inst.scores)


def test_ms_rcnn_r50_parameters_match_table5():
    model = build_model(cpu_cfg(config_path("MS-RCNN/ms_rcnn_R_50_FPN_1x_coco.yaml")))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params - 60.7) / 60.7 < 0.01, params  # paper Table 5: 60.7 M
