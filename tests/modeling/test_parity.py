"""Our YAML FCOS / SelectableHeadRetinaNet are Detectron2's own models: same weights → same
losses and same detections."""
import pytest
import torch
from detectron2.config import get_cfg, instantiate
from detectron2.model_zoo import get_config, get_config_file
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
from tests.conftest import config_path
from tests.modeling.utils import cpu_cfg, detection_batch


def _assert_same_outputs(ours, reference, batch):
    """Same losses and detections (counts, classes) up to float32 rounding: the two models run the
    same operations and were bitwise equal on the Intel CPUs this was first run on, but on an AMD
    EPYC their detections differ in the last bits (each model on its own is deterministic)."""
    reference.load_state_dict(ours.state_dict())  # strict: identical parameter and buffer names
    for model in (ours, reference):
        model.train()
    with EventStorage():
        torch.manual_seed(0)
        losses_ours = ours(batch)
        torch.manual_seed(0)
        losses_ref = reference(batch)
    assert sorted(losses_ours) == sorted(losses_ref)
    for k in losses_ours:
        torch.testing.assert_close(losses_ours[k], losses_ref[k], rtol=1e-5, atol=1e-6, msg=k)
    ours.eval()
    reference.eval()
    with torch.no_grad():
        det_ours = ours(batch)
        det_ref = reference(batch)
    total = 0
    for a, b in zip(det_ours, det_ref):
        a, b = a["instances"], b["instances"]
        total += len(a)
        assert torch.equal(a.pred_classes, b.pred_classes)
        torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor, rtol=1e-5, atol=1e-3)  # pixels
        torch.testing.assert_close(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    assert total > 0, "the comparison must cover some detections"


@pytest.mark.slow
def test_yaml_fcos_equals_detectron2_lazy_fcos():
    torch.manual_seed(0)  # untrained weights whose scores pass the threshold, whatever ran before
    cfg = cpu_cfg(config_path("FCOS/fcos_R_50_FPN_1x_coco.yaml"), "MODEL.FCOS.SCORE_THRESH_TEST", "0.05")
    ours = build_model(cfg)
    lazy = get_config("common/models/fcos.py").model
    lazy.test_score_thresh = 0.05
    reference = instantiate(lazy)
    assert type(reference).__module__ == "detectron2.modeling.meta_arch.fcos"
    _assert_same_outputs(ours, reference, detection_batch())


@pytest.mark.slow
@pytest.mark.parametrize("head_name", ["RetinaNetHead"])
def test_selectable_head_retinanet_equals_detectron2_retinanet(head_name):
    torch.manual_seed(0)
    cfg = cpu_cfg(config_path("RetinaNet/retinanet_R_50_FPN_1x_coco.yaml"),
                  "MODEL.RETINANET.HEAD_NAME", head_name)
    ours = build_model(cfg)
    assert type(ours).__name__ == "SelectableHeadRetinaNet"
    ref_cfg = get_cfg()
    ref_cfg.merge_from_file(get_config_file("COCO-Detection/retinanet_R_50_FPN_1x.yaml"))
    ref_cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    reference = build_model(ref_cfg)
    assert type(reference).__name__ == "RetinaNet"
    _assert_same_outputs(ours, reference, detection_batch())
