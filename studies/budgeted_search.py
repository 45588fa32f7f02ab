"""Evidence for the cost-aware search (``SEARCH.COST``): on the embedded demo, budgeted searches
against the unconstrained one (the paper's), each derived head trained and evaluated like the
demo's, with its measured CPU latency and FLOPs beside the stock head's.

    python -m studies.budgeted_search                   # the three searches below, CPU
    python -m studies.budgeted_search --study-dir output/study --only latency_1.0,flops_0.7 --jobs 2
    python -m studies.budgeted_search --tiny            # a smoke run (a few iterations each)

Variants: ``unconstrained`` (SEARCH.COST.WEIGHT 0), ``latency_1.0`` (latency budget = the stock
head's CPU latency), ``flops_0.7`` (FLOPs budget = 0.7× the stock head's).  For each: the demo
search (``configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml``) → ``genotype_final.json`` → the
FAD-FCOS demo trained on it (``configs/Demo/fad_fcos_R_18_FPN_demo.yaml``) → COCO AP on
fad_synth_val; the stock FCOS demo is trained once.  Every run has ``SEED --seed``; with
``--study-dir`` the stock head and the unconstrained search are the study's runs of that seed
(``benchmarks.search_quality``: the same configs), reused when finished.  Every step resumes
where it stopped (``fad_d2.demo.steps``).  Head cost (``benchmarks/derived_head.py``): fvcore
FLOPs and CPU latency of the head alone on FPN features of one image at the FAD config's test
size, derived and stock heads timed interleaved in one process (1 thread, process CPU time).
Writes ``<output>/results.json`` and ``<output>/results.md``.
"""
import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Tuple

from fad_d2.demo.steps import AP_KEYS, Step, final_bbox_metrics, thread_env, threads_per_job
from fad_d2.engine.setup import load_cfg
from fad_d2.demo.run import FAD_CONFIG, SEARCH_CONFIG, STOCK_CONFIG

from benchmarks import derived_head
from benchmarks.common import Settings, machine_info, markdown_table, repo_path, write_json

VARIANTS = {
    "unconstrained": (),
    "latency_1.0": ("SEARCH.COST.WEIGHT", "1.0", "SEARCH.COST.METRIC", "latency", "SEARCH.COST.TARGET", "1.0"),
    "flops_0.7": ("SEARCH.COST.WEIGHT", "1.0", "SEARCH.COST.METRIC", "flops", "SEARCH.COST.TARGET", "0.7"),
}
# a smoke run: a few iterations of everything, evaluation included
TINY = ("SOLVER.MAX_ITER", "4", "SOLVER.STEPS", "(3,)", "SOLVER.WARMUP_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "1000",
        "SEARCH.DERIVE_PERIOD", "2", "SEARCH.COST.REPEATS", "1", "SOLVER.IMS_PER_BATCH", "2",
        "SEARCH.ALPHA_WARMUP_ITERS", "0", "SEARCH.STABLE_PERIODS", "1", "SEARCH.SELECTION", "alpha",
        "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "192", "INPUT.MIN_SIZE_TEST", "128",
        "INPUT.MAX_SIZE_TEST", "192", "MODEL.FCOS.SCORE_THRESH_TEST", "0.0")  # detections after 4 iterations


def variant_steps(name: str, output_dir: str, seed: int, extra_opts, env: Dict[str, str],
                  study_dir: str = None) -> Tuple[Step, Step]:
    """The search and the training of the derived head of variant ``name``.  With ``study_dir``,
    the unconstrained variant is the study's run of the same seed (``search_<seed>``,
    ``searched_<seed>``: the same configs), reused when it has finished."""
    if name == "unconstrained" and study_dir:
        search_dir, train_dir = os.path.join(study_dir, f"search_{seed}"), os.path.join(study_dir, f"searched_{seed}")
    else:
        search_dir, train_dir = os.path.join(output_dir, name, "search"), os.path.join(output_dir, name, "fad_fcos")
    genotype = os.path.join(search_dir, "genotype_final.json")
    search = Step(f"{name} search", "search_net.py", SEARCH_CONFIG, search_dir,
                  ["SEED", seed, *VARIANTS[name], *extra_opts], env=env)
    train = Step(f"{name} FAD-FCOS", "train_net.py", FAD_CONFIG, train_dir,
                 ["SEED", seed, "MODEL.FAD.GENOTYPE", genotype, *extra_opts], env=env)
    return search, train


def run_variant(steps: Tuple[Step, Step], device: str) -> dict:
    """Search, train the derived head, evaluate; returns AP, wall times and the cost report."""
    search, train = steps
    times = {"search": search.run(device, os.path.join(search.output_dir, "console.log"))}
    times["train"] = train.run(device, os.path.join(train.output_dir, "console.log"))
    report_path = os.path.join(search.output_dir, "cost_report.json")
    budget = None
    if os.path.isfile(report_path):
        with open(report_path) as f:
            budget = json.load(f)
    genotype = os.path.join(search.output_dir, "genotype_final.json")
    return {"genotype": genotype, "ap": final_bbox_metrics(train.output_dir), "wall_s": times,
            "search_cost_report": budget, "runs": [search.output_dir, train.output_dir]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="output/budgeted_search")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated of {', '.join(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=0, help="SEED of every search and training")
    parser.add_argument("--study-dir", default=None,
                        help="reuse the study's stock and searched runs of --seed (python -m benchmarks.search_quality)")
    parser.add_argument("--jobs", type=int, default=1, help="variants side by side (each gets cores/jobs threads)")
    parser.add_argument("--tiny", action="store_true", help="a smoke run: a few iterations, small images")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per head (median)")
    args = parser.parse_args(argv)
    names = args.only.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or args.jobs < 1:
        sys.exit(f"error: --only takes names of {list(VARIANTS)} (got {unknown}); --jobs >= 1")
    out = os.path.abspath(args.output_dir)
    study = os.path.abspath(args.study_dir) if args.study_dir else None
    extra = TINY if args.tiny else ()
    env = thread_env(threads_per_job(args.jobs))
    stock_dir = os.path.join(study, f"stock_{args.seed}") if study else os.path.join(out, "fcos")
    stock = Step("stock FCOS", "train_net.py", STOCK_CONFIG, stock_dir, ["SEED", args.seed, *extra], env=env)
    steps = {name: variant_steps(name, out, args.seed, extra, env, study) for name in names}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        stock_future = pool.submit(stock.run, args.device, os.path.join(stock_dir, "console.log"))
        futures = {name: pool.submit(run_variant, steps[name], args.device) for name in names}
        stock_wall = stock_future.result()
        variants = {name: f.result() for name, f in futures.items()}
    stock_ap = final_bbox_metrics(stock_dir)
    settings = Settings(device="cpu", threads=1, warmup=2, repeats=args.repeats)
    test_cfg = load_cfg(repo_path(FAD_CONFIG), [*extra, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""], check=False)
    size = (test_cfg.INPUT.MIN_SIZE_TEST, test_cfg.INPUT.MAX_SIZE_TEST)  # the trained heads' test size
    results = {"machine": machine_info(settings), "tiny": args.tiny, "seed": args.seed, "image": list(size),
               "stock": {"ap": stock_ap, "wall_s": stock_wall, "run": stock_dir}, "variants": {}}
    rows = []
    for name, r in variants.items():
        heads = derived_head.compare_heads(settings, FAD_CONFIG, r["genotype"], *size, extra_opts=extra)
        r["heads"] = heads
        results["variants"][name] = r
        fad, stock_head = heads["variants"]["fad"], heads["variants"]["stock"]
        rows.append([name, *(f"{r['ap'][k]:.1f}" for k in AP_KEYS),
                     f"{fad['head']['gflops']:.3f} ({fad['head']['gflops'] / stock_head['head']['gflops']:.2f}×)",
                     f"{1e3 * fad['time']['median_s']:.1f} ({fad['time']['median_s'] / stock_head['time']['median_s']:.2f}×)",
                     "-" if r["search_cost_report"] is None else
                     f"{r['search_cost_report']['budget_vs_stock']:.2f}× {r['search_cost_report']['metric']}"])
    write_json(os.path.join(out, "results.json"), results)
    table = markdown_table(["search", *AP_KEYS, "head GFLOPs (vs stock)", "head CPU ms (vs stock)", "budget"],
                           [["stock FCOS head", *(f"{stock_ap[k]:.1f}" for k in AP_KEYS), "-", "-", "-"], *rows])
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
