"""Export: TorchScript and ONNX (ONNX Runtime, CPU) outputs equal PyTorch's for FAD-FCOS and the
stock FCOS, on images of the embedded dataset at other sizes than the traced one."""
import json

import pytest
import torch

from fad_d2.export import FORMATS, build_export_model, export_and_check, format_report, main, sample_images
from fad_d2.timing import Settings
from tests.conftest import REPO, config_path
from tests.modeling.utils import cpu_cfg

pytestmark = pytest.mark.slow  # traces, exports and runs whole detectors

GENOTYPE = f"{REPO}/genotypes/fad_fcos_demo.json"
# 128-192 px inputs (P7 at least 1×2: GroupNorm needs more than one value per group at batch 1)
# and the FAD cells at c′ = 64, as in the demo: at c′ = 32 each of GroupNorm's 32 groups is one
# channel, which on P7's 1×2 pixels it normalises to ±1, and which of two near-equal untrained
# values is the larger is rounding noise that differs between runtimes (a P7 detection then
# appears in one runtime only).
SMALL = ("INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "192")
# Untrained heads give neighbouring locations near-equal scores (1e-6 apart), and which of two
# such candidates survives a per-level top-k cut or NMS depends on rounding that differs between
# runtimes. The check keeps every candidate above the score threshold (no top-k cut, no
# suppression), so that it compares decoding, thresholding and scores, not tie-breaking.
NO_TIE_BREAKING = ("MODEL.FCOS.TOPK_CANDIDATES_TEST", "100000", "MODEL.FCOS.NMS_THRESH_TEST", "1.0",
                   "MODEL.FCOS.DETECTIONS_PER_IMAGE", "100000")
DETECTORS = {
    "fad_fcos": ("Demo/fad_fcos_R_18_FPN_demo.yaml", ("MODEL.FAD.GENOTYPE", GENOTYPE, "MODEL.FAD.NUM_CELLS", "[1, 1]",
                                                     "MODEL.FAD.INNER_CHANNELS", "[64, 64]")),
    "fcos": ("Demo/fcos_R_18_FPN_demo.yaml", ()),
}


def untrained_model(cfg):
    """An untrained detector whose class scores and boxes are spread out: with the prior-probability
    init every score is ≈ the same, and which of a thousand near-equal scores survives top-k is
    rounding noise; with the box-bias init every box is ≈ two strides wide, so that its edges sit on
    the stride grid, on the image border for image sizes that are multiples of a stride, and
    whether the clipped box is empty (and dropped) is rounding noise too."""
    torch.manual_seed(0)
    model = build_export_model(cfg)
    torch.nn.init.normal_(model.head.cls_score.weight, std=0.3)
    torch.nn.init.normal_(model.head.bbox_pred.weight, std=0.3)
    return model


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_exports_match_pytorch(name, tmp_path):
    config, opts = DETECTORS[name]
    cfg = cpu_cfg(config_path(config), *SMALL, "MODEL.FCOS.SCORE_THRESH_TEST", "0.3", *NO_TIE_BREAKING, *opts)
    images = sample_images(cfg, 3)
    assert len({tuple(i.shape) for i in images}) > 1, "the check must cover other sizes than the traced one"
    report = export_and_check(untrained_model(cfg), images, str(tmp_path), settings=Settings(warmup=0, repeats=1))
    for fmt in FORMATS:
        r = report["formats"][fmt]
        assert r["ok"], (fmt, r["checks"])
        assert r["latency_ms"] > 0
    assert sum(report["formats"]["onnx"]["detections"]) > 0, "compare real detections, not empty outputs"
    assert {"model.ts", "model.onnx", "export_report.json"} <= {p.name for p in tmp_path.iterdir()}
    assert "onnx" in format_report(report)


def test_cli_writes_the_report(tmp_path, capsys):
    main(["--config-file", config_path("Demo/fcos_R_18_FPN_demo.yaml"), "--output", str(tmp_path), "--formats",
          "onnx", "--num-images", "1", "--repeats", "1", "MODEL.DEVICE", "cpu", *SMALL])
    assert "matches PyTorch" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "export_report.json").read_text())["formats"]) == {"pytorch", "onnx"}
