"""Study: searched vs random vs stock FCOS heads on the embedded dataset (paper Table 2's claim).

    python -m studies.search_quality --arms stock searched matched noise --seeds 6 \
        --arm-seeds matched=12 --results-dir studies/results/converged        # make study

Arms, every one trained on the same schedule from the same frozen pre-trained backbone + FPN
(``configs/Demo/``, :mod:`fad_d2.demo.pretrain`):

* ``stock``: Detectron2's FCOS head, training seeds 0…n−1 (``--first-seed`` shifts every arm's seeds);
* ``random``: the paper's Random baseline — n seeded random genotypes (one transformation per
  kept edge, two edges per node), each trained once;
* ``searched``: n demo searches (search seeds 0…n−1), each derived genotype (the paper's rule,
  softmax(α): ``genotype_alpha.json`` where the search chose by perturbation) trained once;
* ``perturbed``: the same searches' genotypes chosen by perturbation of the trained supernet
  (``SEARCH.SELECTION perturbation``, the demo search's rule: ``genotype_final.json``), trained
  with the same seeds;
* ``sized`` (only when asked for, with ``--sized-params LOW HIGH``): random genotypes of the same
  form whose head has LOW…HIGH M parameters — the Random baseline at a chosen cost, for instance
  the searched heads' — the first n such genotypes of the sampler's seeds 1000, 1001, … (member k
  is always the k-th, so ``--first-seed`` extends the arm), each trained once with training seed k;
* ``matched``: random genotypes of the paper's form at the searched heads' cost — head parameters
  *and* FLOPs within ± ``--match-tolerance`` (5 %) of the searched arm's means, the first n such
  genotypes of the sampler's seeds 2000, 2001, … (member k trained with seed k); planned once
  every searched run has finished;
* ``noise``: training noise alone — the first searched genotype and the first matched one, each
  trained with training seeds 100…100+``--noise-seeds``−1;
* ``paper``: the architecture the paper reports (searched on VOC by the authors, their released
  two-input cell; ``configs/Demo/fad_fcos_R_18_FPN_demo_paper.yaml``), training seeds 0…n−1.

``--arms`` picks the arms (default: stock, searched, matched, noise); ``--arm-seeds ARM=N …`` gives
the named arms n = N runs in place of ``--seeds`` (for example ``--seeds 6 --arm-seeds matched=12``).

Per arm: mean ± sample std (and n) of AP, AP50, APs/APm/APl (COCOEvaluator on fad_synth_val),
head params and FLOPs (fvcore, one image at the test size), and the head's CPU latency (inference
on FPN features of one test image, all heads timed interleaved in one process); the differences
searched − matched, searched − stock and matched − stock with a bootstrap 95 % interval and
Welch's t; each searched genotype's AP percentile among the matched ones; how alike the searched
genotypes are (shared edges and ops) against pairs of matched ones; the searches' end states
and times.  Arms are compared within one CPU model (the one with most runs; every run records
its CPU).  Writes ``<results-dir>/search_quality.json``, ``search_quality.md`` and ``comparison.png``.

Resumable at two levels: each run lives in its own folder under ``--work-dir`` with Detectron2's
checkpoints and a ``run.json`` once finished (a killed run resumes); and each finished run writes
its record (metrics, cost, genotype, CPU, times) to ``<results-dir>/runs/<name>.json``, which the
same command reads instead of running it again, also from a fresh clone without the work folder
(commit the records to carry a long study across machines).
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

from benchmarks.common import Settings, level_sizes, machine_info, repo_path, time_fns, write_json
from benchmarks.derived_head import build_head
from fad_d2.analyze import analyze_model, count_flops
from fad_d2.data.synthetic import ensure_split
from fad_d2.demo.pretrain import ensure_pretrained_backbone
from fad_d2.demo.report import markdown_table, plot_comparison, runs_table, summarize
from fad_d2.demo.steps import Progress, Step, final_bbox_metrics, thread_env, threads_per_job
from fad_d2.engine.setup import load_cfg
from fad_d2.search import ALPHA_GENOTYPE, FINAL_GENOTYPE
from fad_d2.space import (Genotype, genotype_from_dict, genotype_to_dict, load_genotype, sample_random_genotype,
                          sample_sized_random_genotypes, save_genotype)

from .stats import mean_difference, mean_pairwise_similarity, percentile_among

STOCK_CONFIG = "configs/Demo/fcos_R_18_FPN_demo.yaml"
FAD_CONFIG = "configs/Demo/fad_fcos_R_18_FPN_demo.yaml"
SEARCH_CONFIG = "configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml"
# expected wall times on 2 idle cores with two runs side by side (the ETA before runs time themselves)
NOMINAL_S = {"stock": 600.0, "fad": 800.0, "search": 1800.0}
PAPER_CONFIG = "configs/Demo/fad_fcos_R_18_FPN_demo_paper.yaml"  # the paper's published architecture
ARMS = ("stock", "random", "searched", "perturbed", "sized", "matched", "noise", "paper")
DEFAULT_ARMS = ("stock", "searched", "perturbed", "matched", "noise", "paper")
AFTER_SEARCH_ARMS = ("perturbed", "matched", "noise")  # planned once every searched run has its record
SIZED_FIRST_CANDIDATE = 1000  # the sized arm's sampler seeds start here, apart from the random arm's 0…n−1
MATCHED_FIRST_CANDIDATE = 2000  # the matched arm's
NOISE_FIRST_SEED = 100  # the noise arm's training seeds
RECORDS = "runs"  # <results-dir>/runs/<run name>.json


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


class DemoHeadSize:
    """Genotype (or ``None``: the stock head) → ``{"head_params", "head_gflops"}`` of the demo head
    at the test size, the same numbers as :func:`fad_d2.analyze.analyze_model`'s head (fvcore on
    the head alone, one image).  Each config is loaded once (unchecked: the FAD config's own
    ``MODEL.FAD.GENOTYPE``, the demo search's output, need not exist yet)."""

    def __init__(self, opts: Sequence[str] = ()):
        self.opts = [*opts, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""]
        self.cfgs = {}
        fad = self.cfg(FAD_CONFIG)
        sizes = level_sizes(fad.INPUT.MIN_SIZE_TEST, fad.INPUT.MAX_SIZE_TEST)
        self.features = [torch.zeros(1, fad.MODEL.FPN.OUT_CHANNELS, h, w) for h, w in sizes]

    def cfg(self, config: str):
        if config not in self.cfgs:
            self.cfgs[config] = load_cfg(repo_path(config), self.opts, check=False)
        return self.cfgs[config]

    def __call__(self, genotype: Optional[Genotype], flops: bool = True, config: str = FAD_CONFIG) -> Dict[str, float]:
        """The cost of ``config``'s head with ``genotype`` (``None``: the stock head);
        ``flops=False``: its parameters alone (no fvcore trace, a tenth of the time)."""
        with tempfile.TemporaryDirectory() as tmp:
            cfg = self.cfg(STOCK_CONFIG).clone()
            if genotype is not None:
                cfg = self.cfg(config).clone()
                cfg.MODEL.FAD.GENOTYPE = os.path.join(tmp, "genotype.json")
                save_genotype(genotype, cfg.MODEL.FAD.GENOTYPE)
            head = build_head(cfg).eval()
        cost = {"head_params": sum(p.numel() for p in head.parameters())}
        if flops:
            cost["head_gflops"] = count_flops(head, (self.features,)) / 1e9
        return cost


def demo_head_params(opts: Sequence[str] = ()) -> Callable[[Genotype], float]:
    """The sized arm's size measure: genotype → parameters (millions) of the demo FAD head."""
    size = DemoHeadSize(opts)
    return lambda genotype: size(genotype, flops=False)["head_params"] / 1e6


def sampled_genotype_files(gdir: str, prefix: str, seeds: Sequence[int], size: Callable[[Genotype], float],
                           band: Tuple[float, float], first_candidate: int, meta: dict) -> Dict[int, str]:
    """``{k: path}``: member k, the k-th random genotype (sampler seeds from ``first_candidate``)
    with ``band[0] <= size(genotype) <= band[1]``, written once to ``gdir/<prefix>_<k>.json`` with
    ``meta`` (a later plan reads the files)."""
    paths = {k: os.path.join(gdir, f"{prefix}_{k}.json") for k in seeds}
    missing = [k for k, path in paths.items() if not os.path.isfile(path)]
    if missing:
        found = sample_sized_random_genotypes("full", max(missing) + 1, size, *band, first_seed=first_candidate)
        for k in missing:
            seed, genotype = found[k]
            save_genotype(genotype, paths[k], meta={"random_seed": seed, **meta})
    return paths


def sized_genotype_files(gdir: str, seeds: Sequence[int], band: Tuple[float, float],
                         opts: Sequence[str] = ()) -> Dict[int, str]:
    """Member k of the sized arm: the k-th random genotype whose demo head has ``band`` M parameters."""
    return sampled_genotype_files(gdir, "sized", seeds, demo_head_params(opts), band, SIZED_FIRST_CANDIDATE,
                                  {"head_params_band_M": list(band)})


def matched_genotype_files(gdir: str, seeds: Sequence[int], target: Dict[str, float], tolerance: float,
                           opts: Sequence[str] = ()) -> Dict[int, str]:
    """Member k of the matched arm: the k-th random genotype whose demo head's parameters and
    GFLOPs are both within ± ``tolerance`` (relative) of ``target`` (the searched heads' means)."""
    size = DemoHeadSize(opts)

    def deviation(genotype: Genotype) -> float:
        params = abs(size(genotype, flops=False)["head_params"] / target["head_params"] - 1)
        if params > tolerance:  # outside the band already: no FLOPs needed
            return params
        cost = size(genotype)
        return max(abs(cost[k] / target[k] - 1) for k in ("head_params", "head_gflops"))

    return sampled_genotype_files(gdir, "matched", seeds, deviation, (0.0, tolerance), MATCHED_FIRST_CANDIDATE,
                                  {"matched_to": dict(target), "tolerance": tolerance})


def check_arms(arms: Sequence[str], sized_band: Optional[Tuple[float, float]] = None,
               arm_seeds: Optional[Dict[str, Sequence[int]]] = None):
    """Raise ``ValueError``, naming the option to fix, for an unknown arm, seeds of an arm that is
    not run, a sized band without the sized arm (or the reverse), or an arm planned from the
    searched heads without the searched arm."""
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
    after = sorted(set(arms) & set(AFTER_SEARCH_ARMS))
    if after and "searched" not in arms:
        raise ValueError(f"arm(s) {after} are planned from the searched heads: add searched to --arms")


def seeds_by_arm(arms: Sequence[str], seeds: Sequence[int],
                 arm_seeds: Optional[Dict[str, Sequence[int]]] = None) -> Dict[str, List[int]]:
    """Each arm's seeds: ``arm_seeds[arm]`` where given, ``seeds`` otherwise."""
    return {arm: list((arm_seeds or {}).get(arm, seeds)) for arm in arms}


class Planner:
    """Builds the study's runs under ``work_dir`` (genotype files in ``work_dir/genotypes``); every
    run gets ``opts`` and the environment ``env``."""

    def __init__(self, work_dir: str, opts: Sequence[str], env: Dict[str, str]):
        self.work_dir, self.opts, self.env = work_dir, list(opts), env
        self.gdir = os.path.join(work_dir, "genotypes")
        os.makedirs(self.gdir, exist_ok=True)

    def fad_training(self, arm: str, name: str, seed: int, genotype: str, search: Step = None,
                     label: str = None) -> Run:
        """A FAD head trained with training seed ``seed`` on ``genotype`` (written by ``search``
        when there is one)."""
        train = Step(label or f"{arm} {name}", "train_net.py", FAD_CONFIG, os.path.join(self.work_dir, name),
                     ["SEED", seed, "MODEL.FAD.GENOTYPE", genotype, *self.opts], NOMINAL_S["fad"], self.env)
        return Run(arm, name, train, search, genotype)

    def search_dir(self, k: int) -> str:
        return os.path.join(self.work_dir, f"search_{k}")

    def searched(self, k: int) -> Run:
        """Search seed k, then the training of the genotype of the α rule (the paper's): the
        search's ``genotype_alpha.json`` when it chose its final genotype by perturbation."""
        search = Step(f"search seed {k}", "search_net.py", SEARCH_CONFIG, self.search_dir(k),
                      ["SEED", k, *self.opts], NOMINAL_S["search"], self.env)
        genotype = ALPHA_GENOTYPE if self.search_selection() == "perturbation" else FINAL_GENOTYPE
        return self.fad_training("searched", f"searched_{k}", k, os.path.join(search.output_dir, genotype),
                                 search, label=f"searched #{k}")

    def search_selection(self) -> str:
        """The demo search's ``SEARCH.SELECTION`` (with the study's overrides)."""
        return load_cfg(repo_path(SEARCH_CONFIG), self.opts, check=False).SEARCH.SELECTION

    def perturbed(self, k: int) -> Run:
        """The perturbation rule's genotype of search seed k (finished), trained with seed k."""
        if self.search_selection() != "perturbation":
            raise ValueError("the perturbed arm trains the perturbation rule's genotypes: the demo search must run "
                             "with SEARCH.SELECTION perturbation")
        return self.fad_training("perturbed", f"perturbed_{k}", k, os.path.join(self.search_dir(k), FINAL_GENOTYPE))

    def random(self, k: int) -> Run:
        genotype = os.path.join(self.gdir, f"random_{k}.json")
        if not os.path.isfile(genotype):
            save_genotype(sample_random_genotype("full", seed=k), genotype, meta={"random_seed": k})
        return self.fad_training("random", f"random_{k}", k, genotype)

    def paper(self, k: int) -> Run:
        genotype = load_cfg(repo_path(PAPER_CONFIG), self.opts, check=False).MODEL.FAD.GENOTYPE
        train = Step(f"paper seed {k}", "train_net.py", PAPER_CONFIG, os.path.join(self.work_dir, f"paper_{k}"),
                     ["SEED", k, *self.opts], NOMINAL_S["fad"], self.env)
        return Run("paper", f"paper_{k}", train, genotype=genotype)

    def stock(self, k: int) -> Run:
        train = Step(f"stock seed {k}", "train_net.py", STOCK_CONFIG, os.path.join(self.work_dir, f"stock_{k}"),
                     ["SEED", k, *self.opts], NOMINAL_S["stock"], self.env)
        return Run("stock", f"stock_{k}", train)

    def from_files(self, arm: str, files: Dict[int, str]) -> List[Run]:
        return [self.fad_training(arm, f"{arm}_{k}", k, path) for k, path in files.items()]

    def noise(self, genotypes: Dict[str, str], seeds: Sequence[int]) -> List[Run]:
        """``{label: genotype file}`` × training ``seeds``: runs ``noise_<label>_<seed>``."""
        return [self.fad_training("noise", f"noise_{label}_{s}", s, path)
                for label, path in genotypes.items() for s in seeds]


def plan_runs(work_dir: str, seeds: Sequence[int], opts: Sequence[str], env: Dict[str, str],
              arms: Sequence[str] = ("stock", "random", "searched"), sized_band: Optional[Tuple[float, float]] = None,
              arm_seeds: Optional[Dict[str, Sequence[int]]] = None) -> List[Run]:
    """The runs of ``arms`` that need no searched head (all but :data:`AFTER_SEARCH_ARMS`) for
    ``seeds`` (``arm_seeds``: other seeds for the arms it names), longest first (searched chains,
    random and sized FAD heads, stock heads), so that the last run to start on a free slot is a
    short one."""
    check_arms(arms, sized_band, arm_seeds)
    seeds_of = seeds_by_arm(arms, seeds, arm_seeds)
    planner = Planner(work_dir, opts, env)
    builders = {"searched": planner.searched, "random": planner.random, "paper": planner.paper, "stock": planner.stock}
    if "sized" in arms:
        sized = sized_genotype_files(planner.gdir, seeds_of["sized"], sized_band, opts)
        builders["sized"] = lambda k: planner.fad_training("sized", f"sized_{k}", k, sized[k])
    return [builders[arm](k) for arm in ("searched", "random", "sized", "paper", "stock") if arm in arms
            for k in seeds_of[arm]]


def plan_after_search(work_dir: str, opts: Sequence[str], env: Dict[str, str], searched: Sequence[dict],
                      arms: Sequence[str], seeds_of: Dict[str, Sequence[int]], tolerance: float,
                      noise_seeds: int) -> List[Run]:
    """The perturbed, matched and noise arms, from the records of the finished ``searched`` runs:
    the perturbation rule's genotypes of the same searches; matched genotypes at the searched
    heads' mean cost; noise runs on the first searched genotype and the first matched one."""
    planner = Planner(work_dir, opts, env)
    perturbed = [planner.perturbed(k) for k in seeds_of["searched"]] if "perturbed" in arms else []
    target = {k: sum(r[k] for r in searched) / len(searched) for k in ("head_params", "head_gflops")}
    matched_seeds = seeds_of.get("matched") or [0]
    matched = matched_genotype_files(planner.gdir, matched_seeds, target, tolerance, opts)
    runs = perturbed + (planner.from_files("matched", matched) if "matched" in arms else [])
    if "noise" in arms:
        first = os.path.join(planner.gdir, "noise_searched.json")
        save_genotype(genotype_from_dict(searched[0]["genotype"]), first, meta={"from_run": searched[0]["name"]})
        runs += planner.noise({"searched": first, "matched": matched[matched_seeds[0]]},
                              range(NOISE_FIRST_SEED, NOISE_FIRST_SEED + noise_seeds))
    return runs


def parse_arm_seeds(items: Sequence[str], first_seed: int) -> Dict[str, List[int]]:
    """``["sized=6"]`` → ``{"sized": [first_seed, …, first_seed + 5]}`` (``--arm-seeds``)."""
    out = {}
    for item in items:
        arm, _, n = item.partition("=")
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--arm-seeds {item!r}: expected ARM=N with N >= 1, for example sized=6")
        out[arm] = list(range(first_seed, first_seed + int(n)))
    return out


class Records:
    """The finished runs' records in ``<results-dir>/runs/<name>.json``: AP metrics, head cost,
    genotype, CPU, wall times, and a search's end state."""

    def __init__(self, results_dir: str, opts: Sequence[str]):
        self.dir = os.path.join(results_dir, RECORDS)
        self.size = DemoHeadSize(opts)

    def path(self, run: Run) -> str:
        return os.path.join(self.dir, f"{run.name}.json")

    def get(self, run: Run) -> Optional[dict]:
        if not os.path.isfile(self.path(run)):
            return None
        with open(self.path(run)) as f:
            return json.load(f)

    def write(self, run: Run) -> dict:
        """Record the finished ``run`` (its genotype read from its file, the CPU from this machine)."""
        genotype = load_genotype(run.genotype) if run.genotype else None
        record = {"name": run.name, "arm": run.arm, "config": run.train.config,
                  **final_bbox_metrics(run.train.output_dir), **self.size(genotype, config=run.train.config),
                  "genotype": genotype_to_dict(genotype) if genotype else None,
                  "train_s": run.train.seconds(), "search_s": run.search.seconds() if run.search else None,
                  "machine": machine_info(Settings(device="cpu", threads=int(run.train.env.get("OMP_NUM_THREADS", 0))
                                                   or torch.get_num_threads()))}
        if run.search is not None:
            with open(run.genotype) as f:
                meta = json.load(f).get("meta", {})
            record["search_end"] = meta.get("end")  # "stable" or "completed" (MAX_ITER)
            record["search_iterations"] = meta.get("iteration")
        os.makedirs(self.dir, exist_ok=True)
        write_json(self.path(run), record)
        return record


def execute(runs: List[Run], records: Records, device: str, jobs: int) -> Dict[str, dict]:
    """Run everything without a record, ``jobs`` runs at a time, printing progress with an ETA,
    and record each run as it finishes; returns every run's record by name."""
    todo = [r for r in runs if records.get(r) is None]
    steps = [s for r in todo for s in r.steps]
    progress = Progress("study", steps)
    lock = threading.Lock()

    def report(message):
        with lock:
            done = sum(s.finished() for s in steps)
            print(f"[study] {time.strftime('%H:%M:%S')} {message} | {done}/{len(steps)} steps done, "
                  f"ETA {progress.eta_s(jobs) / 60:.0f} min", flush=True)

    def run_and_record(run: Run):
        run.execute(device, report)
        with lock:
            records.write(run)

    report(f"plan: {len(runs) - len(todo)} of {len(runs)} runs recorded before")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(run_and_record, r) for r in todo]:
            future.result()
    return {r.name: records.get(r) for r in runs}


def head_latencies(records: Dict[str, dict], opts: Sequence[str], repeats: int) -> Dict[str, float]:
    """CPU inference latency (ms, median) of every recorded run's head at the demo test size, all
    heads timed interleaved in this process (compare them within one call only)."""
    cfgs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, record in records.items():
            extra = []
            if record["genotype"] is not None:
                path = os.path.join(tmp, f"{name}.json")
                save_genotype(genotype_from_dict(record["genotype"]), path)
                extra = ["MODEL.FAD.GENOTYPE", path]
            config = STOCK_CONFIG if record["genotype"] is None else record["config"]
            cfgs[name] = load_cfg(repo_path(config), [*opts, *extra, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
        heads = {name: build_head(cfg).eval() for name, cfg in cfgs.items()}
    any_cfg = next(iter(cfgs.values()))
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(1, any_cfg.MODEL.FPN.OUT_CHANNELS, h, w, generator=g)
                for h, w in level_sizes(any_cfg.INPUT.MIN_SIZE_TEST, any_cfg.INPUT.MAX_SIZE_TEST)]

    def inference(head):
        with torch.no_grad():
            head(features)

    times = time_fns({n: (lambda h=h: inference(h)) for n, h in heads.items()},
                     Settings(device="cpu", threads=torch.get_num_threads(), warmup=2, repeats=repeats))
    return {name: 1e3 * times[name]["median_s"] for name in heads}


def compare(records: Sequence[dict]) -> dict:
    """The study's verdict numbers over ``records`` (one CPU model): per-arm summary, differences
    of AP between arms (bootstrap 95 % interval, Welch's t), each searched genotype's AP
    percentile among the matched ones, genotype similarity within the searched and the matched
    arm, and the searches' end states."""
    arms = {arm: [r for r in records if r["arm"] == arm] for arm in ARMS}
    out = {"summary": summarize(arms), "differences": {}}
    ap = {arm: [r["AP"] for r in runs] for arm, runs in arms.items()}
    for a, b in (("searched", "matched"), ("perturbed", "matched"), ("perturbed", "searched"), ("searched", "stock"),
                 ("matched", "stock"), ("searched", "random"), ("paper", "stock"), ("searched", "paper")):
        if len(ap[a]) >= 2 and len(ap[b]) >= 2:
            out["differences"][f"{a} - {b}"] = mean_difference(ap[a], ap[b])
    if ap["matched"]:
        out["searched_percentile_among_matched"] = {r["name"]: percentile_among(r["AP"], ap["matched"])
                                                   for r in arms["searched"] + arms["perturbed"]}
    out["similarity"] = {arm: mean_pairwise_similarity(genotype_from_dict(r["genotype"]) for r in arms[arm])
                         for arm in ("searched", "perturbed", "matched", "random", "sized") if len(arms[arm]) >= 2}
    searches = arms["searched"]
    out["searches"] = {"n": len(searches), "stable": sum(r["search_end"] == "stable" for r in searches),
                       "minutes": [round(r["search_s"] / 60, 1) for r in searches],
                       "iterations": [r["search_iterations"] for r in searches]}
    return out


def cpu_model(record: dict) -> str:
    machine = record["machine"]
    return f"{machine['cpu']} ({machine['cpu_capability']})"


def verdict_markdown(comparison: dict) -> str:
    """The differences and the searches' end states as Markdown lines."""
    lines = []
    for name, d in comparison["differences"].items():
        lines.append(f"- {name}: {d['difference']:+.2f} AP, 95 % bootstrap interval [{d['ci_low']:+.2f}, "
                     f"{d['ci_high']:+.2f}], Welch's t = {d['welch_t']:.2f} (df {d['welch_df']:.1f}; "
                     f"n = {d['n_a']} and {d['n_b']})")
    s = comparison["searches"]
    if s["n"]:
        lines.append(f"- searches ended stable: {s['stable']} of {s['n']}; minutes {s['minutes']}, "
                     f"iterations {s['iterations']}")
    for arm, sim in comparison["similarity"].items():
        lines.append(f"- {arm} genotypes, mean pairwise Jaccard similarity: edges {sim['edges']:.2f}, "
                     f"edge+op {sim['ops']:.2f} ({sim['pairs']} pairs)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="runs per arm (n)")
    parser.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=ARMS, help="arms to run")
    parser.add_argument("--sized-params", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="the sized arm's band of head parameters, in millions (for example the searched heads')")
    parser.add_argument("--match-tolerance", type=float, default=0.05,
                        help="the matched arm's band: params and FLOPs within ± this share of the searched means")
    parser.add_argument("--noise-seeds", type=int, default=4, help="training seeds per genotype of the noise arm")
    parser.add_argument("--arm-seeds", nargs="+", default=[], metavar="ARM=N",
                        help="runs (n) of the named arms in place of --seeds, for example matched=12")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first…first+n−1 (a second study with new seeds beside the first)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (each gets cores/jobs threads)")
    parser.add_argument("--work-dir", default="output/study")
    parser.add_argument("--results-dir", default="studies/results/converged")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--latency-repeats", type=int, default=20)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run (tests shrink the runs)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1 or args.first_seed < 0 or args.noise_seeds < 1 or args.match_tolerance <= 0:
        sys.exit("error: --seeds, --jobs and --noise-seeds must be >= 1, --first-seed >= 0, --match-tolerance > 0")
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
    env = thread_env(threads_per_job(args.jobs))
    for split in ("train", "val"):  # generated once here, not by the parallel runs
        ensure_split(split)
    start = time.time()
    records = Records(args.results_dir, opts)
    runs = plan_runs(work_dir, seeds, opts, env, [a for a in args.arms if a not in AFTER_SEARCH_ARMS], sized_band,
                     {a: s for a, s in arm_seeds.items() if a not in AFTER_SEARCH_ARMS})
    done = execute(runs, records, args.device, args.jobs)
    seeds_of = seeds_by_arm(args.arms, seeds, arm_seeds)
    if set(args.arms) & set(AFTER_SEARCH_ARMS):
        searched = [done[f"searched_{k}"] for k in seeds_of["searched"]]
        later = plan_after_search(work_dir, opts, env, searched, args.arms, seeds_of, args.match_tolerance,
                                  args.noise_seeds)
        runs += later
        done.update(execute(later, records, args.device, args.jobs))
    print("[study] all runs finished; timing the heads", flush=True)
    latency = head_latencies(done, opts, args.latency_repeats)
    for name, ms in latency.items():
        done[name] = {**done[name], "head_latency_ms": ms}
    by_cpu = {}
    for record in done.values():
        by_cpu.setdefault(cpu_model(record), []).append(record)
    main_cpu = max(by_cpu, key=lambda c: len(by_cpu[c]))
    comparison = compare(by_cpu[main_cpu])
    os.makedirs(args.results_dir, exist_ok=True)
    table = markdown_table(comparison["summary"])
    write_json(os.path.join(args.results_dir, "search_quality.json"), {
        "machine_of_this_call": machine_info(Settings(device="cpu", threads=torch.get_num_threads())),
        "compared_on_cpu": main_cpu, "runs_by_cpu": {c: len(r) for c, r in by_cpu.items()},
        "seeds": seeds_of, "arms": args.arms, "sized_params_M": args.sized_params,
        "match_tolerance": args.match_tolerance, "noise_seeds": args.noise_seeds, "jobs": args.jobs,
        "opts": opts, "wall_s_this_call": time.time() - start, **comparison, "runs": done})
    verdict = verdict_markdown(comparison)
    with open(os.path.join(args.results_dir, "search_quality.md"), "w") as f:
        f.write(f"Compared on {main_cpu}.\n\n{table}\n\n{verdict}\n\nPer run:\n\n{runs_table(done)}\n")
    plot_comparison(comparison["summary"], os.path.join(args.results_dir, "comparison.png"),
                    title="fad_synth_val, heads on a frozen pre-trained R-18 FPN, "
                          + ", ".join(f"{arm} n={s['n']}" for arm, s in comparison["summary"].items()))
    print(f"\n{table}\n\n{verdict}", flush=True)
    print(f"\n[study] results: {args.results_dir}/search_quality.{{json,md}}, comparison.png", flush=True)


if __name__ == "__main__":
    main()
