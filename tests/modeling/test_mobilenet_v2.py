"""MobileNetV2 backbone (torchvision's layers) and the ImageNet checkpoint converter."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

import fad_d2  # noqa: F401
from fad_d2.modeling.mobilenet_v2 import MobileNetV2
from tests.conftest import CONFIGS
from tests.modeling.utils import cpu_cfg

REPO = os.path.dirname(CONFIGS)


def test_stages_strides_and_channels():
    backbone = MobileNetV2(("stem", "c2", "c3", "c4", "c5"), norm="BN").eval()
    out = backbone(torch.zeros(1, 3, 64, 96))
    shapes = backbone.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "stem": (16, 2), "c2": (24, 4), "c3": (32, 8), "c4": (96, 16), "c5": (320, 32)}
    for name, t in out.items():
        assert t.shape == (1, shapes[name].channels, 64 // shapes[name].stride, 96 // shapes[name].stride)


def test_freeze_at_freezes_the_first_stages():
    backbone = MobileNetV2(("c3", "c4", "c5"), norm="BN", freeze_at=2)
    frozen = [not any(p.requires_grad for p in layer.parameters()) for layer in backbone.features]
    assert frozen == [True] * 4 + [False] * 14  # stem = features[0:2], c2 = features[2:4]


@pytest.mark.slow
def test_converter_loads_into_the_fcos_model(tmp_path):
    torchvision_model = torchvision.models.mobilenet_v2(weights=None)
    torch.save(torchvision_model.state_dict(), tmp_path / "mnv2.pth")
    result = subprocess.run(
        [sys.executable, "scripts/convert_mobilenet_v2_to_d2.py", str(tmp_path / "mnv2.pth"),
         str(tmp_path / "mnv2.pkl")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    model = build_model(cpu_cfg(os.path.join(CONFIGS, "FCOS/fcos_MNV2_FPN_1x_coco.yaml")))
    with open(tmp_path / "mnv2.pkl", "rb") as f:
        converted = pickle.load(f)["model"]
    assert set(converted) == {k for k in model.state_dict() if k.startswith("backbone.bottom_up.")}
    DetectionCheckpointer(model).load(str(tmp_path / "mnv2.pkl"))
    features = model.backbone.bottom_up.features
    reference = torchvision_model.features
    for i in (0, 7, 17):
        conv = next(m for m in features[i].modules() if isinstance(m, torch.nn.Conv2d))
        ref = next(m for m in reference[i].modules() if isinstance(m, torch.nn.Conv2d))
        assert torch.equal(conv.weight, ref.weight)
    bn_ref = reference[17].conv[3]
    assert torch.equal(features[17].conv[3].running_var, bn_ref.running_var)
