"""Study: searched vs random vs stock FCOS heads on the embedded dataset (paper Table 2's claim).

    python -m benchmarks.search_quality [--seeds 3] [--jobs 2]        # make study

Arms, every one trained on the same schedule from the same frozen pre-trained backbone + FPN
(``configs/Demo/``, :mod:`fad_d2.demo.pretrain`):

* ``stock``: Detectron2's FCOS head, training seeds 0…n−1 (``--first-seed`` shifts every arm's seeds);
* ``random``: the paper's Random baseline — n seeded random genotypes (one transformation per
  kept edge, two edges per node), each trained once;
* ``searched``: n demo searches (search seeds 0…n−1), each derived genotype trained once;
* ``sized`` (only when asked for, with ``--sized-params LOW HIGH``): random genotypes of the same
  form whose head has LOW…HIGH M parameters — the Random baseline at a chosen cost, for instance
  the searched heads' — the first n such genotypes of the sampler's seeds 1000, 1001, … (member k
  is always the k-th, so ``--first-seed`` extends the arm), each trained once with training seed k.

``--arms`` picks the arms (default: stock, random, searched); ``--arm-seeds ARM=N …`` gives the
named arms n = N runs in place of ``--seeds`` (for example ``--seeds 3 --arm-seeds sized=6``).

Per arm: mean ± sample std (and n) of AP, AP50, APs/APm/APl (COCOEvaluator on fad_synth_val),
head params and FLOPs (fvcore, one image at the test size), and the head's CPU latency (inference
on FPN features of one test image, all heads timed interleaved in one process).  Writes
``<results-dir>/search_quality.json``, ``search_quality.md`` and ``comparison.png``.

Resumable: each run lives in its own folder under ``--work-dir`` with Detectron2's checkpoints and
a ``run.json`` once finished; the same command skips finished runs and resumes the others.
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from fad_d2.analyze import analyze_model
from fad_d2.demo.pretrain import ensure_pretrained_backbone
from fad_d2.demo.report import markdown_table, plot_comparison, runs_table, summarize
from fad_d2.data.synthetic import ensure_split
from fad_d2.demo.steps import Progress, Step, final_bbox_metrics, thread_env, threads_per_job
from fad_d2.engine.setup import load_cfg
from fad_d2.space import Genotype, sample_random_genotype, sample_sized_random_genotypes, save_genotype

from .common import Settings, level_sizes, machine_info, repo_path, time_fns, write_json
from .derived_head import build_head

STOCK_CONFIG = "configs/Demo/fcos_R_18_FPN_demo.yaml"
FAD_CONFIG = "configs/Demo/fad_fcos_R_18_FPN_demo.yaml"
SEARCH_CONFIG = "configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml"
# expected wall times on 2 idle cores with two runs side by side (the ETA before runs time themselves)
NOMINAL_S = {"stock": 600.0, "fad": 950.0, "search": 700.0}
ARMS = ("stock", "random", "searched", "sized")
DEFAULT_ARMS = ("stock", "random", "searched")
SIZED_FIRST_CANDIDATE = 1000  # the sized arm's sampler seeds start here, apart from the random arm's 0…n−1


class Run:
    """One arm member: an optional search, then a training; ``name`` keys the results."""

    def __init__(self, arm: str, name: str, train: Step, search: Step = None, genotype: str = None):
        self.arm, self.name, self.train, self.search, self.genotype = arm, name, train, search, genotype

    @property
    def steps(self) -> List[Step]:
        return [s for s in (self.search, self.train) if s is not None]

    def execute(self, device: str, report):
        for step in self.steps:
            if step.finished():
                continue
            report(f"start {step.name}")
            seconds = step.run(device, log_file=os.path.join(step.output_dir, "console.log"))
            report(f"done {step.name} in {seconds / 60:.1f} min")


def demo_head_params(opts: Sequence[str] = ()) -> Callable[[Genotype], float]:
    """The sized arm's size measure: genotype → parameters (millions) of the demo FAD head
    (``FAD_CONFIG`` + ``opts``) with that genotype.  The config is loaded once, not per candidate
    (unchecked: its own ``MODEL.FAD.GENOTYPE``, the demo search's output, need not exist yet)."""
    base = load_cfg(repo_path(FAD_CONFIG), [*opts, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""], check=False)

    def params(genotype: Genotype) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "genotype.json")
            save_genotype(genotype, path)
            cfg = base.clone()
            cfg.MODEL.FAD.GENOTYPE = path
            return sum(p.numel() for p in build_head(cfg).parameters()) / 1e6

    return params


def sized_genotype_files(gdir: str, seeds: Sequence[int], band: Tuple[float, float],
                         opts: Sequence[str] = ()) -> Dict[int, str]:
    """``{k: path}``: member k of the sized arm, the k-th random genotype (sampler seeds from
    ``SIZED_FIRST_CANDIDATE``) whose demo head has ``band`` M parameters, written once to ``gdir``."""
    paths = {k: os.path.join(gdir, f"sized_{k}.json") for k in seeds}
    missing = [k for k, path in paths.items() if not os.path.isfile(path)]
    if missing:
        found = sample_sized_random_genotypes("full", max(missing) + 1, demo_head_params(opts), *band,
                                              first_seed=SIZED_FIRST_CANDIDATE)
        for k in missing:
            seed, genotype = found[k]
            save_genotype(genotype, paths[k], meta={"random_seed": seed, "head_params_band_M": list(band)})
    return paths


def check_arms(arms: Sequence[str], sized_band: Optional[Tuple[float, float]] = None,
               arm_seeds: Optional[Dict[str, Sequence[int]]] = None):
    """Raise ``ValueError``, naming the option to fix, for an unknown arm, seeds of an arm that is
    not run, or a sized band without the sized arm (or the reverse)."""
    named = set(arm_seeds or {})
    unknown = (set(arms) | named) - set(ARMS)
    if unknown:
        raise ValueError(f"unknown arm(s) {sorted(unknown)}; the arms are {list(ARMS)}")
    if named - set(arms):
        raise ValueError(f"--arm-seeds names arm(s) {sorted(named - set(arms))} that --arms does not run")
    if "sized" in arms and sized_band is None:
        raise ValueError("the sized arm needs a head-parameter band (--sized-params LOW HIGH, in millions)")
    if "sized" not in arms and sized_band is not None:
        raise ValueError("--sized-params is the sized arm's band: add sized to --arms")


def seeds_by_arm(arms: Sequence[str], seeds: Sequence[int],
                 arm_seeds: Optional[Dict[str, Sequence[int]]] = None) -> Dict[str, List[int]]:
    """Each arm's seeds: ``arm_seeds[arm]`` where given, ``seeds`` otherwise."""
    return {arm: list((arm_seeds or {}).get(arm, seeds)) for arm in arms}


def plan_runs(work_dir: str, seeds: Sequence[int], opts: Sequence[str], env: Dict[str, str],
              arms: Sequence[str] = DEFAULT_ARMS, sized_band: Optional[Tuple[float, float]] = None,
              arm_seeds: Optional[Dict[str, Sequence[int]]] = None) -> List[Run]:
    """The study's runs of ``arms`` for ``seeds`` (``arm_seeds``: other seeds for the arms it names),
    longest first (searched chains, random and sized FAD heads, stock heads), so that the last run
    to start on a free slot is a short one."""
    check_arms(arms, sized_band, arm_seeds)
    seeds_of = seeds_by_arm(arms, seeds, arm_seeds)
    gdir = os.path.join(work_dir, "genotypes")
    os.makedirs(gdir, exist_ok=True)

    def fad_training(arm: str, k: int, genotype: str, search: Step = None, label: str = None) -> Run:
        """Training k of a FAD arm on ``genotype`` (written by ``search`` when there is one)."""
        train = Step(label or f"{arm} genotype {k}", "train_net.py", FAD_CONFIG, os.path.join(work_dir, f"{arm}_{k}"),
                     ["SEED", k, "MODEL.FAD.GENOTYPE", genotype, *opts], NOMINAL_S["fad"], env)
        return Run(arm, f"{arm}_{k}", train, search, genotype)

    def searched(k: int) -> Run:
        search = Step(f"search seed {k}", "search_net.py", SEARCH_CONFIG, os.path.join(work_dir, f"search_{k}"),
                      ["SEED", k, *opts], NOMINAL_S["search"], env)
        return fad_training("searched", k, os.path.join(search.output_dir, "genotype_final.json"), search,
                            label=f"searched #{k}")

    def random(k: int) -> Run:
        genotype = os.path.join(gdir, f"random_{k}.json")
        if not os.path.isfile(genotype):
            save_genotype(sample_random_genotype("full", seed=k), genotype, meta={"random_seed": k})
        return fad_training("random", k, genotype)

    def stock(k: int) -> Run:
        train = Step(f"stock seed {k}", "train_net.py", STOCK_CONFIG, os.path.join(work_dir, f"stock_{k}"),
                     ["SEED", k, *opts], NOMINAL_S["stock"], env)
        return Run("stock", f"stock_{k}", train)

    builders = {"searched": searched, "random": random, "stock": stock}
    if "sized" in arms:
        sized = sized_genotype_files(gdir, seeds_of["sized"], sized_band, opts)
        builders["sized"] = lambda k: fad_training("sized", k, sized[k])
    return [builders[arm](k) for arm in ("searched", "random", "sized", "stock") if arm in arms
            for k in seeds_of[arm]]


def parse_arm_seeds(items: Sequence[str], first_seed: int) -> Dict[str, List[int]]:
    """``["sized=6"]`` → ``{"sized": [first_seed, …, first_seed + 5]}`` (``--arm-seeds``)."""
    out = {}
    for item in items:
        arm, _, n = item.partition("=")
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--arm-seeds {item!r}: expected ARM=N with N >= 1, for example sized=6")
        out[arm] = list(range(first_seed, first_seed + int(n)))
    return out


def execute(runs: List[Run], device: str, jobs: int):
    """Run everything not finished, ``jobs`` runs at a time, printing progress with an ETA."""
    steps = [s for r in runs for s in r.steps]
    progress = Progress("study", steps)
    lock = threading.Lock()

    def report(message):
        with lock:
            done = sum(s.finished() for s in steps)
            print(f"[study] {time.strftime('%H:%M:%S')} {message} | {done}/{len(steps)} steps done, "
                  f"ETA {progress.eta_s(jobs) / 60:.0f} min", flush=True)

    report("plan")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(r.execute, device, report) for r in runs]:
            future.result()


def head_costs(runs: List[Run], opts: Sequence[str], repeats: int) -> Dict[str, dict]:
    """Head params, GFLOPs (fvcore) and CPU inference latency (ms, median, all heads timed
    interleaved in this process) of every run's head at the demo test size."""
    cfgs = {}
    for r in runs:
        config, extra = (STOCK_CONFIG, []) if r.arm == "stock" else (FAD_CONFIG, ["MODEL.FAD.GENOTYPE", r.genotype])
        cfgs[r.name] = load_cfg(repo_path(config), [*opts, *extra, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    any_cfg = next(iter(cfgs.values()))
    height, width = any_cfg.INPUT.MIN_SIZE_TEST, any_cfg.INPUT.MAX_SIZE_TEST
    costs = {}
    for name, cfg in cfgs.items():
        head = analyze_model(cfg, height, width)["head"]
        costs[name] = {"head_params": head["params"], "head_gflops": head["gflops"]}
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(1, any_cfg.MODEL.FPN.OUT_CHANNELS, h, w, generator=g) for h, w in level_sizes(height, width)]
    heads = {name: build_head(cfg).eval() for name, cfg in cfgs.items()}

    def inference(head):
        with torch.no_grad():
            head(features)

    times = time_fns({n: (lambda h=h: inference(h)) for n, h in heads.items()},
                     Settings(device="cpu", threads=torch.get_num_threads(), warmup=2, repeats=repeats))
    for name in costs:
        costs[name]["head_latency_ms"] = 1e3 * times[name]["median_s"]
    return costs, [height, width]


def collect(runs: List[Run], costs: Dict[str, dict]) -> Dict[str, dict]:
    results = {}
    for r in runs:
        results[r.name] = {"arm": r.arm, **final_bbox_metrics(r.train.output_dir), **costs[r.name],
                           "train_s": r.train.seconds(), "search_s": r.search.seconds() if r.search else None,
                           "genotype": r.genotype}
        if r.search is not None:
            with open(r.genotype) as f:
                meta = json.load(f).get("meta", {})
            results[r.name]["search_end"] = meta.get("end")  # "stable" or "completed" (MAX_ITER)
            results[r.name]["search_iterations"] = meta.get("iteration")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="runs per arm (n)")
    parser.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=ARMS, help="arms to run")
    parser.add_argument("--sized-params", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="the sized arm's band of head parameters, in millions (for example the searched heads')")
    parser.add_argument("--arm-seeds", nargs="+", default=[], metavar="ARM=N",
                        help="runs (n) of the named arms in place of --seeds, for example sized=6")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first…first+n−1 (a second study with new seeds beside the first)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (each gets cores/jobs threads)")
    parser.add_argument("--work-dir", default="output/study")
    parser.add_argument("--results-dir", default="benchmarks/results")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--latency-repeats", type=int, default=20)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run (tests shrink the runs)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1 or args.first_seed < 0:
        sys.exit("error: --seeds and --jobs must be >= 1, --first-seed >= 0")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    sized_band = tuple(args.sized_params) if args.sized_params else None
    try:  # before the pre-training and data steps below, which take minutes on a fresh clone
        arm_seeds = parse_arm_seeds(args.arm_seeds, args.first_seed)
        check_arms(args.arms, sized_band, arm_seeds)
    except ValueError as e:
        sys.exit(f"error: {e}")
    work_dir = os.path.abspath(args.work_dir)
    opts = list(args.opts)
    if "MODEL.WEIGHTS" not in opts[::2]:
        ensure_pretrained_backbone(os.path.join(work_dir, "pretrain"), args.device)
    threads = threads_per_job(args.jobs)
    env = thread_env(threads)
    for split in ("train", "val"):  # generated once here, not by the parallel runs
        ensure_split(split)
    runs = plan_runs(work_dir, seeds, opts, env, args.arms, sized_band, arm_seeds)
    start = time.time()
    execute(runs, args.device, args.jobs)
    print(f"[study] all runs finished; measuring head costs", flush=True)
    costs, size = head_costs(runs, opts, args.latency_repeats)
    results = collect(runs, costs)
    arms = {arm: [r for r in results.values() if r["arm"] == arm] for arm in ARMS}
    summary = summarize(arms)
    os.makedirs(args.results_dir, exist_ok=True)
    table = markdown_table(summary)
    write_json(os.path.join(args.results_dir, "search_quality.json"), {
        "machine": machine_info(Settings(device="cpu", threads=torch.get_num_threads())),
        "seeds": seeds_by_arm(args.arms, seeds, arm_seeds),
        "arms": args.arms, "sized_params_M": args.sized_params, "jobs": args.jobs, "test_size": size,
        "opts": opts, "wall_s_this_call": time.time() - start, "summary": summary, "runs": results})
    with open(os.path.join(args.results_dir, "search_quality.md"), "w") as f:
        f.write(f"{table}\n\nPer run:\n\n{runs_table(results)}\n")
    plot_comparison(summary, os.path.join(args.results_dir, "comparison.png"),
                    title="fad_synth_val, heads on a frozen pre-trained R-18 FPN, "
                          + ", ".join(f"{arm} n={s['n']}" for arm, s in summary.items()))
    print("\n" + table, flush=True)
    print(f"\n[study] results: {args.results_dir}/search_quality.{{json,md}}, comparison.png", flush=True)


if __name__ == "__main__":
    main()
