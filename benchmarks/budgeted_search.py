"""Evidence for the cost-aware search (``SEARCH.COST``): on the embedded demo, budgeted searches
against the unconstrained one (the paper's), each derived head trained and evaluated like the
demo's, with its measured CPU latency and FLOPs beside the stock head's.

    python -m benchmarks.budgeted_search                   # the three searches below, CPU
    python -m benchmarks.budgeted_search --tiny            # a smoke run (a few iterations each)
    python -m benchmarks.budgeted_search --only latency_1.0

Variants: ``unconstrained`` (SEARCH.COST.WEIGHT 0), ``latency_1.0`` (latency budget = the stock
head's CPU latency), ``flops_0.7`` (FLOPs budget = 0.7× the stock head's).  For each: the demo
search (``configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml``) → ``genotype_final.json`` → the
FAD-FCOS demo trained on it (``configs/Demo/fad_fcos_R_18_FPN_demo.yaml``) → COCO AP on
fad_synth_val; the stock FCOS demo is trained once.  Every step resumes where it stopped
(``fad_d2.demo.steps``).  Head cost (``benchmarks/derived_head.py``): fvcore FLOPs and CPU
latency of the head alone on FPN features of one image at the demo test size, derived and stock
heads timed interleaved in one process (1 thread, process CPU time).  Writes
``<output>/results.json`` and ``<output>/results.md``.
"""
import argparse
import json
import os

from fad_d2.demo.steps import AP_KEYS, Step, final_bbox_metrics
from run_demo import FAD_CONFIG, SEARCH_CONFIG, STOCK_CONFIG

from . import derived_head
from .common import Settings, machine_info, markdown_table, write_json

VARIANTS = {
    "unconstrained": (),
    "latency_1.0": ("SEARCH.COST.WEIGHT", "1.0", "SEARCH.COST.METRIC", "latency", "SEARCH.COST.TARGET", "1.0"),
    "flops_0.7": ("SEARCH.COST.WEIGHT", "1.0", "SEARCH.COST.METRIC", "flops", "SEARCH.COST.TARGET", "0.7"),
}
# a smoke run: a few iterations of everything, evaluation included
TINY = ("SOLVER.MAX_ITER", "4", "SOLVER.STEPS", "(3,)", "SOLVER.WARMUP_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "1000",
        "SEARCH.DERIVE_PERIOD", "2", "SEARCH.COST.REPEATS", "1", "SOLVER.IMS_PER_BATCH", "2",
        "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "192", "INPUT.MIN_SIZE_TEST", "128",
        "INPUT.MAX_SIZE_TEST", "192")


def run_variant(name: str, output_dir: str, device: str, extra_opts) -> dict:
    """Search, train the derived head, evaluate; returns AP, wall times and the cost report."""
    search_dir, train_dir = os.path.join(output_dir, name, "search"), os.path.join(output_dir, name, "fad_fcos")
    times = {"search": Step(f"{name} search", "search_net.py", SEARCH_CONFIG, search_dir,
                            [*VARIANTS[name], *extra_opts]).run(device)}
    genotype = os.path.join(search_dir, "genotype_final.json")
    times["train"] = Step(f"{name} FAD-FCOS", "train_net.py", FAD_CONFIG, train_dir,
                          ["MODEL.FAD.GENOTYPE", genotype, *extra_opts]).run(device)
    report_path = os.path.join(search_dir, "cost_report.json")
    budget = None
    if os.path.isfile(report_path):
        with open(report_path) as f:
            budget = json.load(f)
    return {"genotype": genotype, "ap": final_bbox_metrics(train_dir), "wall_s": times, "search_cost_report": budget}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="output/budgeted_search")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated of {', '.join(VARIANTS)}")
    parser.add_argument("--tiny", action="store_true", help="a smoke run: a few iterations, small images")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per head (median)")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    extra = TINY if args.tiny else ()
    stock_dir = os.path.join(out, "fcos")
    stock_wall = Step("stock FCOS", "train_net.py", STOCK_CONFIG, stock_dir, extra).run(args.device)
    stock_ap = final_bbox_metrics(stock_dir)
    settings = Settings(device="cpu", threads=1, warmup=2, repeats=args.repeats)
    size = (128, 192) if args.tiny else (224, 320)  # the demo test size
    results = {"machine": machine_info(settings), "tiny": args.tiny, "image": list(size),
               "stock": {"ap": stock_ap, "wall_s": stock_wall}, "variants": {}}
    rows = []
    for name in args.only.split(","):
        r = run_variant(name, out, args.device, extra)
        heads = derived_head.compare_heads(settings, FAD_CONFIG, r["genotype"], *size, extra_opts=extra)
        r["heads"] = heads
        results["variants"][name] = r
        fad, stock = heads["variants"]["fad"], heads["variants"]["stock"]
        rows.append([name, *(f"{r['ap'][k]:.1f}" for k in AP_KEYS),
                     f"{fad['head']['gflops']:.3f} ({fad['head']['gflops'] / stock['head']['gflops']:.2f}×)",
                     f"{1e3 * fad['time']['median_s']:.1f} ({fad['time']['median_s'] / stock['time']['median_s']:.2f}×)",
                     "-" if r["search_cost_report"] is None else
                     f"{r['search_cost_report']['budget_vs_stock']:.2f}× {r['search_cost_report']['metric']}"])
        write_json(os.path.join(out, "results.json"), results)  # after every variant: a kill loses little
    table = markdown_table(["search", *AP_KEYS, "head GFLOPs (vs stock)", "head CPU ms (vs stock)", "budget"],
                           [["stock FCOS head", *(f"{stock_ap[k]:.1f}" for k in AP_KEYS), "-", "-", "-"], *rows])
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
