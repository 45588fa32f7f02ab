"""The params/FLOPs analysis CLI (fvcore)."""
import json
import subprocess
import sys

import pytest

import fad_d2  # noqa: F401
from fad_d2.analyze import analyze, format_table
from tests.conftest import REPO, config_path

STOCK_FCOS_HEAD_PARAMS = 4_920_661  # Detectron2's FCOSHead, 80 classes (paper Table 3: 4.9 M)


@pytest.mark.slow
def test_stock_fcos_head_parameters_match_paper():
    # parameter counts do not depend on the image size: a small one keeps the FLOP count fast
    result = analyze(config_path("FCOS/fcos_R_50_FPN_1x_coco.yaml"), size=(128, 192))
    assert result["stock"]["head"]["params"] == STOCK_FCOS_HEAD_PARAMS
    assert result["ours"] == result["stock"]  # the config's head is the stock head
    assert 0 < result["stock"]["head"]["gflops"] < result["stock"]["model"]["gflops"]


@pytest.mark.slow
def test_fad_head_against_stock_and_flops_scale_with_area():
    genotype = f"{REPO}/genotypes/random_full_seed0.json"
    small = analyze(config_path("FAD-FCOS/fad_fcos_R_50_FPN_1x_coco.yaml"), genotype=genotype, size=(128, 192))
    large = analyze(config_path("FAD-FCOS/fad_fcos_R_50_FPN_1x_coco.yaml"), genotype=genotype, size=(256, 384))
    assert small["head_name"] == "FADHead" and small["stock"]["head"]["params"] == STOCK_FCOS_HEAD_PARAMS
    assert small["ours"]["head"]["params"] == large["ours"]["head"]["params"] != STOCK_FCOS_HEAD_PARAMS
    ratio = large["ours"]["head"]["gflops"] / small["ours"]["head"]["gflops"]
    assert 3.0 < ratio < 5.0  # 4x the pixels (levels are rounded up to whole cells)


@pytest.mark.slow
def test_cli_json_on_demo_mask_config():
    proc = subprocess.run([sys.executable, "-m", "fad_d2.analyze", "--config-file",
                           config_path("Demo/mask_rcnn_R_18_FPN_demo.yaml"), "--json", "--size", "128", "128",
                           "MODEL.ROI_MASK_HEAD.NAME", "FADMaskHead", "MODEL.FAD_MASK.INNER_CHANNELS", "32"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["head_key"] == "MODEL.ROI_MASK_HEAD.NAME"
    assert result["head_name"] == "FADMaskHead" and result["ours"]["head"]["flops_for"] == "per RoI"
    assert result["ours"]["head"]["params"] != result["stock"]["head"]["params"]


@pytest.mark.slow
def test_two_stage_count_is_fixed_by_the_roi_numbers():
    """An untrained RPN proposes a random number of boxes: the count fixes the RoIs instead."""
    result = analyze(config_path("Demo/ms_rcnn_R_18_FPN_demo.yaml"), size=(128, 128))
    ours = result["ours"]["model"]
    assert ours == result["stock"]["model"]  # two builds with their own random weights count the same
    parts = ours["parts"]
    assert set(parts) == {"backbone", "rpn", "box_head", "mask_head", "maskiou_head"}
    assert ours["gflops"] == pytest.approx(sum(parts.values()))
    assert ours["rois"] == {"box": 1000, "mask": 100}
    assert parts["mask_head"] == pytest.approx(100 * result["ours"]["head"]["gflops"])  # per RoI × 100
    fewer = analyze(config_path("Demo/ms_rcnn_R_18_FPN_demo.yaml"), ["MODEL.RPN.POST_NMS_TOPK_TEST", "500",
                                                                      "TEST.DETECTIONS_PER_IMAGE", "20"], size=(128, 128))
    fewer = fewer["ours"]["model"]["parts"]
    assert fewer["box_head"] == pytest.approx(parts["box_head"] / 2)
    assert fewer["maskiou_head"] == pytest.approx(parts["maskiou_head"] / 5)
    assert fewer["backbone"] == parts["backbone"] and fewer["rpn"] == parts["rpn"]


def _result(head_name):
    model = {"head": {"params": 2e6, "gflops": 1.0, "flops_for": "all FPN levels"},
             "model": {"params": 3e7, "gflops": 200.0}}
    return {"config": "x.yaml", "image_size": [800, 1280], "head_name": head_name, "stock_head": "FCOSHead",
            "stock": model, "ours": model}


def test_table_shows_a_stock_config_once_and_a_fad_config_beside_the_stock_head():
    stock_lines = format_table(_result("FCOSHead")).splitlines()
    assert stock_lines[0] == "x.yaml at 800x1280"
    assert [line.split()[0] for line in stock_lines[2:]] == ["FCOSHead", "FCOSHead"]  # head, whole model
    fad_lines = format_table(_result("FADHead")).splitlines()
    assert [line.split()[0] for line in fad_lines[2:]] == ["FCOSHead", "FCOSHead", "FADHead", "FADHead"]
