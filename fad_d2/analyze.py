"""Parameters and FLOPs (fvcore) of a detector's head and of the whole model, beside the stock head.

    python -m fad_d2.analyze --config-file configs/FAD-FCOS/fad_fcos_R_50_FPN_1x_coco.yaml
    python -m fad_d2.analyze --config-file CFG --genotype G.json --json MODEL.FAD.INNER_CHANNELS "[128,128]"

FLOPs are fvcore's counts (one per multiply-add) for one image of ``--size H W`` (default the
config's test size, 800×1333 for COCO configs, which the FPN pads to 800×1344; the paper's tables
count 800×1280: ``--size 800 1280``); the mask head is counted per RoI.  A two-stage model is
counted part by part with fixed RoI numbers, so that the count does not depend on what an untrained
RPN proposes: backbone + FPN and the RPN head on the image, the box head on
``MODEL.RPN.POST_NMS_TOPK_TEST`` RoIs, the mask head (and a MaskIoU head) on
``TEST.DETECTIONS_PER_IMAGE`` RoIs (1000 and 100 for COCO, as in mmdetection's FLOPs counter).
"""
import argparse
import json
import logging
from typing import Dict

import torch
from detectron2.modeling import build_model
from detectron2.utils.analysis import FlopCountAnalysis
from fvcore.nn import FlopCountAnalysis as FvcoreFlops
from torch import nn

from .engine.setup import load_cfg, one_line_errors
from .modeling.heads import cfg_value, replaceable_head

class _MaskHeadLayers(nn.Module):
    """A mask head's ``layers`` (RoI features → mask logits) as a module, for fvcore."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x):
        return self.head.layers(x)


def count_flops(module, inputs):
    """fvcore FLOPs (one per multiply-add) of ``module(*inputs)``, without fvcore's warnings."""
    flops = FvcoreFlops(module, inputs).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return flops.total()


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


ROI_KIND = {"box_head": "box", "mask_head": "mask", "maskiou_head": "mask"}  # which RoI number a part runs on


def roi_numbers(cfg) -> Dict[str, int]:
    """The fixed RoI numbers a two-stage model is counted with: {"box", "mask"} (see ``ROI_KIND``)."""
    return {"box": cfg.MODEL.RPN.POST_NMS_TOPK_TEST, "mask": cfg.TEST.DETECTIONS_PER_IMAGE}


def two_stage_flops(model, cfg, image, mask_head_flops: float) -> Dict[str, float]:
    """GFLOPs of a two-stage model's parts for one image (Tensor[3, H, W]) with the RoI numbers of
    :func:`roi_numbers`, given the mask head's FLOPs per RoI: {"backbone", "rpn", "box_head",
    "mask_head"[, "maskiou_head"]}."""
    padded = model.preprocess_image([{"image": image}]).tensor
    features = model.backbone(padded)
    rpn = model.proposal_generator
    roi_heads = model.roi_heads
    channels = cfg.MODEL.FPN.OUT_CHANNELS
    rois = roi_numbers(cfg)
    box_res, mask_res = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION, cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION
    parts = {
        "backbone": count_flops(model.backbone, (padded,)),
        "rpn": count_flops(rpn.rpn_head, ([features[f] for f in rpn.in_features],)),
        "box_head": rois["box"] * count_flops(nn.Sequential(roi_heads.box_head, roi_heads.box_predictor),
                                           (torch.zeros(1, channels, box_res, box_res),)),
    }
    parts["mask_head"] = rois["mask"] * mask_head_flops
    if hasattr(roi_heads, "maskiou_head"):
        parts["maskiou_head"] = rois["mask"] * count_flops(
            roi_heads.maskiou_head, (torch.zeros(1, channels, mask_res, mask_res),
                                     torch.zeros(1, 1, 2 * mask_res, 2 * mask_res)))
    return {name: flops / 1e9 for name, flops in parts.items()}


@torch.no_grad()
def analyze_model(cfg, height, width):
    """{"head": {params, gflops}, "model": {params, gflops[, parts]}} of ``cfg``'s model for an
    H×W image (``parts``: :func:`two_stage_flops`, for a two-stage model)."""
    model = build_model(cfg).eval()
    image = torch.zeros(3, height, width)
    if replaceable_head(cfg).needs_mask_on:
        head = model.roi_heads.mask_head
        res = cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION
        head_flops = count_flops(_MaskHeadLayers(head), (torch.zeros(1, cfg.MODEL.FPN.OUT_CHANNELS, res, res),))
        head_note = "per RoI"
        parts = two_stage_flops(model, cfg, image, head_flops)
        whole = {"params": _num_params(model), "gflops": sum(parts.values()), "parts": parts,
                 "rois": roi_numbers(cfg)}
    else:
        images = model.preprocess_image([{"image": image}])
        features = model.backbone(images.tensor)
        head = model.head
        head_flops = count_flops(head, ([features[f] for f in model.head_in_features],))
        head_note = "all FPN levels"
        flops = FlopCountAnalysis(model, [{"image": image, "height": height, "width": width}])
        flops = flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        whole = {"params": _num_params(model), "gflops": flops.total() / 1e9}
    return {"head": {"params": _num_params(head), "gflops": head_flops / 1e9, "flops_for": head_note}, "model": whole}


def analyze(config_file, opts=(), genotype=None, size=None):
    """Analyse the config's detector and the same detector with its stock head."""
    opts = list(opts) + ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""]
    spec = replaceable_head(load_cfg(config_file, opts, check=False))
    cfg = load_cfg(config_file, opts + ([spec.genotype_key, genotype] if genotype else []))
    height, width = size or (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    stock_cfg = cfg.clone()
    stock_cfg.merge_from_list([spec.head_key, spec.stock_head])
    return {
        "config": config_file, "image_size": [height, width], "head_key": spec.head_key,
        "head_name": cfg_value(cfg, spec.head_key), "stock_head": spec.stock_head,
        "ours": analyze_model(cfg, height, width),
        "stock": analyze_model(stock_cfg, height, width),
    }


def format_table(result):
    """A plain-text table of :func:`analyze`'s result (the stock model's rows, then the
    config's; only once when the config's head is the stock head)."""
    rows = [("", "params (M)", "GFLOPs")]
    same = result["head_name"] == result["stock_head"]  # a stock config: one model, shown once
    for who in ("stock",) if same else ("stock", "ours"):
        name = result["stock_head"] if who == "stock" else result["head_name"]
        r = result[who]
        rows.append((f"{name} head ({r['head']['flops_for']})", f"{r['head']['params'] / 1e6:.2f}",
                     f"{r['head']['gflops']:.1f}"))
        rows.append((f"{name} whole model", f"{r['model']['params'] / 1e6:.2f}", f"{r['model']['gflops']:.1f}"))
        rois = r["model"].get("rois", {})
        for part, gflops in r["model"].get("parts", {}).items():
            count = rois.get(ROI_KIND.get(part))
            rows.append((f"  {part}" + (f" ({count} RoIs)" if count else ""), "", f"{gflops:.1f}"))
    width = max(len(r[0]) for r in rows)
    h, w = result["image_size"]
    lines = [f"{result['config']} at {h}x{w}"]
    lines += [f"{a:<{width}}  {b:>10}  {c:>8}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--genotype", help="genotype JSON for the FAD head (sets MODEL.FAD(_MASK).GENOTYPE)")
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="image size (default: test size)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    logging.getLogger("detectron2").setLevel(logging.ERROR)
    with one_line_errors(args.debug):
        result = analyze(args.config_file, args.opts, args.genotype, args.size)
    print(json.dumps(result, indent=2) if args.json else format_table(result))


if __name__ == "__main__":
    main()
