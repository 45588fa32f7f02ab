#!/usr/bin/env python
"""The main job on the embedded dataset: search → derived genotype → train → COCO evaluation.

    python run_demo.py [--device cpu|cuda] [--output-dir output/demo]

1. ``search_net.py`` with configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml (FAD-FCOS supernet);
2. ``train_net.py`` of the stock FCOS demo and of the FAD-FCOS demo built from the searched
   genotype, same schedule, each evaluated by COCOEvaluator on fad_synth_val;
3. a table: AP, APs/APm/APl, head parameters and FLOPs (fvcore, at the demo test size), wall
   times; also written to OUTPUT_DIR/results.md and results.json.

Every step runs with ``--resume``: a killed demo continues where it stopped, a finished step is
reused (its wall time is then the one recorded by the first run).
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.abspath(__file__))
SEARCH_CONFIG = "configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml"
STOCK_CONFIG = "configs/Demo/fcos_R_18_FPN_demo.yaml"
FAD_CONFIG = "configs/Demo/fad_fcos_R_18_FPN_demo.yaml"
AP_KEYS = ("AP", "AP50", "APs", "APm", "APl")


def run_step(name, script, config, output_dir, device, *opts):
    """Run ``script`` (resumable) unless it finished before; returns its wall time in seconds."""
    stamp = os.path.join(output_dir, "wall_time.json")
    if os.path.isfile(stamp):
        print(f"[demo] {name}: done before, reusing {output_dir}", flush=True)
        with open(stamp) as f:
            return json.load(f)["seconds"]
    print(f"[demo] {name}: {script} --config-file {config}", flush=True)
    start = time.time()
    subprocess.run([sys.executable, os.path.join(REPO, script), "--config-file", config, "--resume",
                    "MODEL.DEVICE", device, "OUTPUT_DIR", output_dir, *opts], cwd=REPO, check=True)
    seconds = time.time() - start
    with open(stamp, "w") as f:
        json.dump({"seconds": seconds}, f)
    return seconds


def final_bbox_metrics(output_dir):
    """The last ``bbox/*`` metrics Detectron2 wrote to ``metrics.json``."""
    last = None
    with open(os.path.join(output_dir, "metrics.json")) as f:
        for line in f:
            record = json.loads(line)
            if "bbox/AP" in record:
                last = record
    if last is None:
        raise RuntimeError(f"{output_dir}/metrics.json has no bbox metrics")
    return {k: last[f"bbox/{k}"] for k in AP_KEYS}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--output-dir", default="output/demo")
    args = parser.parse_args()
    import torch

    from fad_d2.analyze import analyze

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = os.path.abspath(args.output_dir)
    search_dir, stock_dir, fad_dir = (os.path.join(out, d) for d in ("search", "fcos", "fad_fcos"))
    genotype = os.path.join(search_dir, "genotype_final.json")

    times = {"search": run_step("search", "search_net.py", SEARCH_CONFIG, search_dir, device)}
    times["fcos"] = run_step("stock FCOS", "train_net.py", STOCK_CONFIG, stock_dir, device)
    times["fad_fcos"] = run_step("FAD-FCOS", "train_net.py", FAD_CONFIG, fad_dir, device,
                                 "MODEL.FAD.GENOTYPE", genotype)

    cost = analyze(os.path.join(REPO, FAD_CONFIG), genotype=genotype)
    rows = {
        "stock FCOS head": (final_bbox_metrics(stock_dir), cost["stock"]["head"], times["fcos"], None),
        "FAD-FCOS head": (final_bbox_metrics(fad_dir), cost["ours"]["head"], times["fad_fcos"], times["search"]),
    }
    h, w = cost["image_size"]
    header = (f"| demo (fad_synth_val, {device}) | " + " | ".join(AP_KEYS)
              + f" | head params (M) | head GFLOPs @{h}x{w} | train time | search time |")
    lines = [header, "|" + "---|" * (len(AP_KEYS) + 5)]
    for name, (ap, head, train_s, search_s) in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{ap[k]:.1f}" for k in AP_KEYS)
                     + f" | {head['params'] / 1e6:.3f} | {head['gflops']:.2f} | {train_s / 60:.1f} min | "
                     + (f"{search_s / 60:.1f} min" if search_s is not None else "-") + " |")
    table = "\n".join(lines)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"device": device, "genotype": genotype, "rows": rows}, f, indent=2)
    print("\n" + table)
    print(f"\n[demo] genotype: {genotype} (drawing: {genotype[:-5]}.png); results: {out}/results.md")


if __name__ == "__main__":
    main()
