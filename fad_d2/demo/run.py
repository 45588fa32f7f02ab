"""The main job on the embedded dataset: search → derived genotype → train → COCO evaluation.

    python -m fad_d2.demo [--device cpu|cuda] [--output-dir output/demo]

(``fad-demo``; ``make demo`` runs it in the checkout.)  Paths are relative to the current
directory: the embedded dataset is generated under ``datasets/`` there, the outputs go to
``output/demo``.

0. the pre-trained demo backbone (``pretrained/fad_synth_R_18_FPN_demo.pth``, shipped; re-created
   by ``python -m fad_d2.demo.pretrain`` when missing) — every step below starts from it, frozen;
1. ``search_net.py`` (``fad-search``) with configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml (FAD-FCOS supernet);
2. ``train_net.py`` of the stock FCOS demo and of the FAD-FCOS demo built from the searched
   genotype, same schedule, each evaluated by COCOEvaluator on fad_synth_val (on a CPU of two
   or more cores the stock training runs beside the search, one thread each, with their output
   in OUTPUT_DIR/search/console.log and OUTPUT_DIR/fcos/console.log and a progress line a minute);
3. a table (AP, APs/APm/APl, head parameters and FLOPs by fvcore at the test size, wall times),
   written to OUTPUT_DIR/results.md and results.json, and OUTPUT_DIR/comparison.png.

Every step runs with ``--resume``: the same command continues a killed demo, and a finished step
is reused (its wall time is then the one recorded by the first run).
"""
import argparse
import json
import os

import torch

from ..analyze import analyze_model
from ..engine.setup import load_cfg
from .pretrain import ensure_pretrained_backbone
from .report import markdown_table, plot_comparison, summarize
from .steps import Progress, Step, final_bbox_metrics, thread_env

SEARCH_CONFIG = "configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml"
STOCK_CONFIG = "configs/Demo/fcos_R_18_FPN_demo.yaml"
FAD_CONFIG = "configs/Demo/fad_fcos_R_18_FPN_demo.yaml"


def head_cost(config, opts=()):
    """Head params and GFLOPs (fvcore) of ``config`` at its test size."""
    cfg = load_cfg(config, [*opts, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    head = analyze_model(cfg, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)["head"]
    return {"head_params": head["params"], "head_gflops": head["gflops"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--output-dir", default="output/demo")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = os.path.abspath(args.output_dir)
    weights = ["MODEL.WEIGHTS", ensure_pretrained_backbone(os.path.join(out, "pretrain"), device)]

    # On a multi-core CPU the search and the stock training (which does not need the search) run
    # side by side on one thread each: the supernet's many small ops gain little from a second
    # thread (the search takes as long on two), the big convs of the FAD training do.
    side_by_side = device == "cpu" and (os.cpu_count() or 1) >= 2
    one_thread = thread_env(1) if side_by_side else {}
    search = Step("FAD-FCOS search", "search_net.py", SEARCH_CONFIG, os.path.join(out, "search"), weights,
                  nominal_s=1800, env=one_thread)
    genotype = os.path.join(search.output_dir, "genotype_final.json")
    stock = Step("stock FCOS training + evaluation", "train_net.py", STOCK_CONFIG, os.path.join(out, "fcos"),
                 weights, nominal_s=660, env=one_thread)
    fad = Step("FAD-FCOS training + evaluation", "train_net.py", FAD_CONFIG, os.path.join(out, "fad_fcos"),
               [*weights, "MODEL.FAD.GENOTYPE", genotype], nominal_s=680)
    progress = Progress("demo", [search, stock, fad], side_by_side=[search, stock] if side_by_side else ())
    if side_by_side:
        progress.run_side_by_side([search, stock], device)
    else:
        for step in (search, stock):
            progress.run(step, device)
    progress.run(fad, device)

    rows = {"stock FCOS head": {**final_bbox_metrics(stock.output_dir), **head_cost(STOCK_CONFIG)},
            "FAD-FCOS head (searched)": {**final_bbox_metrics(fad.output_dir),
                                         **head_cost(FAD_CONFIG, ["MODEL.FAD.GENOTYPE", genotype])}}
    summary = summarize({name: [r] for name, r in rows.items()})
    table = markdown_table(summary, title=f"demo (fad_synth_val, {device})")
    times = {s.name: s.seconds() for s in (search, stock, fad)}
    timing = "\n".join(f"- {name}: {sec / 60:.1f} min" for name, sec in times.items())
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(f"{table}\n\nWall times:\n\n{timing}\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"device": device, "genotype": genotype, "rows": rows, "wall_s": times}, f, indent=2)
    plot_comparison(summary, os.path.join(out, "comparison.png"), title="make demo: fad_synth_val")
    print("\n" + table + "\n\nWall times:\n" + timing)
    print(f"\n[demo] genotype: {genotype} (drawing: {genotype[:-5]}.png); results: {out}/results.md, comparison.png")


if __name__ == "__main__":
    main()
