"""Benchmark 3: the derived FAD head against Detectron2's stock FCOS head at 800×1333.

FAD head: ``configs/FAD-FCOS/fad_fcos_R_50_FPN_1x_coco.yaml`` (c′ = 96, M = 2, c = 256, 80
classes) with the shipped genotype (the first file of :data:`GENOTYPES` that exists); stock head:
the same config with ``MODEL.FCOS.HEAD_NAME FCOSHead``.

* Parameters and FLOPs: :func:`fad_d2.analyze.analyze` (fvcore, one FLOP per multiply-add; the
  head over all five FPN levels of one image, and the whole detector).
* Latency: the head alone (built by ``build_fcos_head``) in eval mode under ``torch.no_grad``
  on random FPN features of one 800×1333 image (256 channels, levels 100×167 … 7×11).
"""
import os
from typing import Dict, Sequence

import torch
from detectron2.layers import ShapeSpec

from fad_d2.analyze import analyze
from fad_d2.engine.setup import load_cfg
from fad_d2.modeling import build_fcos_head

from .common import (
    FPN_STRIDES,
    Settings,
    level_sizes,
    markdown_table,
    ratio,
    repo_path,
    time_fns,
)

FAD_CONFIG = "configs/FAD-FCOS/fad_fcos_R_50_FPN_1x_coco.yaml"
GENOTYPES = ("genotypes/fad_fcos_demo.json", "genotypes/random_full_seed0.json")
LABELS = {"stock": "stock FCOS head (4 convs per tower, 256 channels)",
          "fad": "FAD head"}


def find_genotype(candidates: Sequence[str] = GENOTYPES) -> str:
    """The first genotype file of ``candidates`` that exists."""
    for path in candidates:
        if os.path.isfile(repo_path(path)):
            return path
    raise FileNotFoundError(f"none of the genotype files {list(candidates)} exists")


def build_head(cfg) -> torch.nn.Module:
    """The FCOS head of ``cfg`` alone, for FPN levels P3…P7 of ``MODEL.FPN.OUT_CHANNELS``."""
    shapes = [ShapeSpec(channels=cfg.MODEL.FPN.OUT_CHANNELS, stride=s) for s in FPN_STRIDES]
    return build_fcos_head(cfg, shapes)


def compare_heads(settings: Settings, config_file: str = FAD_CONFIG, genotype: str = None,
                  height: int = 800, width: int = 1333, batch: int = 1,
                  extra_opts: Sequence[str] = ()) -> dict:
    """Parameters, FLOPs and inference latency of the FAD head and the stock head (see the
    module docstring).  ``extra_opts`` go to the config (the smoke test shrinks the model)."""
    genotype = genotype or find_genotype()
    analysis = analyze(repo_path(config_file), extra_opts, repo_path(genotype), (height, width))
    cfg = load_cfg(repo_path(config_file), [*extra_opts, "MODEL.FAD.GENOTYPE", repo_path(genotype),
                                 "MODEL.DEVICE", settings.device, "MODEL.WEIGHTS", ""])
    stock_cfg = cfg.clone()
    stock_cfg.merge_from_list(["MODEL.FCOS.HEAD_NAME", "FCOSHead"])
    torch.manual_seed(0)
    heads = {"stock": build_head(stock_cfg), "fad": build_head(cfg)}
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(batch, cfg.MODEL.FPN.OUT_CHANNELS, h, w, generator=g).to(settings.device)
                for h, w in level_sizes(height, width)]

    def inference(head):
        with torch.no_grad():
            head(features)

    times = time_fns({name: (lambda h=head.to(settings.device).eval(): inference(h))
                      for name, head in heads.items()}, settings)
    results = {}
    for name, key in (("stock", "stock"), ("fad", "ours")):
        results[name] = {**analysis[key], "time": times[name]}
    setting = {"config": config_file, "genotype": genotype, "image": [height, width],
               "batch": batch, "inner_channels": list(cfg.MODEL.FAD.INNER_CHANNELS),
               "num_cells": list(cfg.MODEL.FAD.NUM_CELLS)}
    return {"setting": setting, "variants": results}


def summary(result: dict) -> Dict[str, float]:
    """FAD head / stock head ratios of parameters, FLOPs and latency."""
    fad, stock = result["variants"]["fad"], result["variants"]["stock"]
    return {
        "params_fad_vs_stock": fad["head"]["params"] / stock["head"]["params"],
        "gflops_fad_vs_stock": fad["head"]["gflops"] / stock["head"]["gflops"],
        "latency_fad_vs_stock": fad["time"]["median_s"] / stock["time"]["median_s"],
    }


def format_comparison(result: dict) -> str:
    """The Markdown table of :func:`compare_heads`."""
    s, v = result["setting"], result["variants"]
    stock = v["stock"]
    rows = []
    for name, r in v.items():
        ms, stock_ms = 1e3 * r["time"]["median_s"], 1e3 * stock["time"]["median_s"]
        rows.append([LABELS[name], f"{r['head']['params'] / 1e6:.2f}", f"{r['head']['gflops']:.1f}",
                     f"{ms:.0f}", ratio(ms, stock_ms), f"{r['model']['params'] / 1e6:.2f}",
                     f"{r['model']['gflops']:.1f}"])
    title = (f"Derived head at {s['image'][0]}×{s['image'][1]} (FAD: c′ = {s['inner_channels']}, "
             f"M = {s['num_cells']}, genotype `{s['genotype']}`); head latency: batch {s['batch']}, "
             "inference, on FPN features:")
    table = markdown_table(["head", "head params (M)", "head GFLOPs", "head latency (ms)",
                            "vs stock", "detector params (M)", "detector GFLOPs"], rows)
    return f"{title}\n\n{table}"
