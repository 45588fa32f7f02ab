"""The study's parts at tiny sizes: every arm builds, trains and evaluates, results aggregate,
and a second call (a killed study continued, or the same study on a fresh clone with the run
records alone) redoes no finished run."""
import json
import os
import shutil

import pytest

from fad_d2.analyze import analyze_model
from fad_d2.demo.report import markdown_table, summarize
from fad_d2.engine.setup import load_cfg
from fad_d2.space import genotype_to_dict, load_genotype, sample_random_genotype, save_genotype
from studies import search_quality
from tests.conftest import REPO

TINY_OPTS = ["MODEL.WEIGHTS", "", "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)", "SOLVER.WARMUP_ITERS", "1",
             "SOLVER.IMS_PER_BATCH", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "SEARCH.DERIVE_PERIOD", "1",
             "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "160",
             "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "160", "DATALOADER.NUM_WORKERS", "0",
             "MODEL.FCOS.SCORE_THRESH_TEST", "0.0",  # detections after 2 iterations: AP is a number
             "SEARCH.ALPHA_WARMUP_ITERS", "0", "SEARCH.STABLE_PERIODS", "1", "SEARCH.SELECTION_BATCHES", "1"]


def test_summarize_mean_std_n():
    s = summarize({"a": [{"AP": 10.0, "head_gflops": 1.0}, {"AP": 12.0, "head_gflops": 1.0}], "b": []})
    assert list(s) == ["a"]
    assert s["a"]["n"] == 2 and s["a"]["AP"]["mean"] == pytest.approx(11.0)
    assert s["a"]["AP"]["std"] == pytest.approx(2 ** 0.5)  # sample std (n - 1)
    table = markdown_table(s)
    assert "| a | 2 | 11.0 ± 1.4 |" in table


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_study_runs_aggregates_and_resumes(tmp_path):
    results = tmp_path / "results"
    argv = ["--seeds", "2", "--jobs", "2", "--work-dir", str(tmp_path / "work"), "--results-dir", str(results),
            "--latency-repeats", "1", "--arms", "stock", "searched", "perturbed", "matched", "noise", "paper",
            "--noise-seeds", "1",
            "--arm-seeds", "stock=1", "matched=2", "paper=1", "--match-tolerance", "0.5", *TINY_OPTS]
    search_quality.main(argv)
    data = json.loads((results / "search_quality.json").read_text())
    names = {"stock_0", "searched_0", "searched_1", "perturbed_0", "perturbed_1", "matched_0", "matched_1",
             "noise_searched_100", "noise_matched_100", "paper_0"}
    assert set(data["runs"]) == names
    assert sorted(p.name for p in (results / "runs").iterdir()) == sorted(f"{n}.json" for n in names)
    assert set(data["summary"]) == {"stock", "searched", "perturbed", "matched", "noise", "paper"}
    assert data["runs"]["paper_0"]["genotype"]["cell"] == "released"
    for run in data["runs"].values():
        assert 0.0 <= run["AP"] <= 100.0
        assert run["head_params"] > 0 and run["head_gflops"] > 0 and run["head_latency_ms"] > 0
        assert run["machine"]["cpu"] and run["machine"]["cpu_capability"]
    searched = [data["runs"][f"searched_{k}"] for k in (0, 1)]
    assert all(r["search_iterations"] >= 1 and r["search_end"] in ("stable", "completed") for r in searched)
    mean = {k: sum(r[k] for r in searched) / 2 for k in ("head_params", "head_gflops")}
    for k in (0, 1):  # matched at the searched heads' mean cost, within the tolerance
        run = data["runs"][f"matched_{k}"]
        assert all(abs(run[c] / mean[c] - 1) <= 0.5 for c in mean)
    assert data["runs"]["noise_searched_100"]["genotype"] == searched[0]["genotype"]
    for k in (0, 1):  # the α rule's and the perturbation rule's genotypes of one search
        final = json.loads((tmp_path / "work" / f"search_{k}" / "genotype_final.json").read_text())
        assert final["meta"]["selection"] == "perturbation"
        assert data["runs"][f"searched_{k}"]["genotype"] == final["meta"]["alpha_genotype"]
        assert data["runs"][f"perturbed_{k}"]["genotype"]["groups"] == final["groups"]
    assert data["runs"]["noise_matched_100"]["genotype"] == data["runs"]["matched_0"]["genotype"]
    diff = data["differences"]["searched - matched"]
    assert diff["ci_low"] <= diff["difference"] <= diff["ci_high"] and diff["n_a"] == diff["n_b"] == 2
    assert set(data["searched_percentile_among_matched"]) == {"searched_0", "searched_1",
                                                              "perturbed_0", "perturbed_1"}
    assert data["searches"]["n"] == 2 and len(data["searches"]["minutes"]) == 2
    assert (results / "comparison.png").stat().st_size > 0
    assert "searched - matched: " in (results / "search_quality.md").read_text()

    done = {p: os.path.getmtime(p) for p in (tmp_path / "work").glob("*/run.json")}
    assert len(done) == 12  # two searches + ten trainings
    search_quality.main(argv)  # the same command again: nothing is re-run
    assert {p: os.path.getmtime(p) for p in (tmp_path / "work").glob("*/run.json")} == done
    shutil.rmtree(tmp_path / "work")  # a fresh clone with the committed records: nothing is re-run either
    search_quality.main(argv)
    assert not list((tmp_path / "work").glob("*/run.json"))
    assert set(json.loads((results / "search_quality.json").read_text())["runs"]) == names


def test_demo_head_size_is_what_analyze_reports(tmp_path):
    """The study's quick cost (the head alone) equals ``python -m fad_d2.analyze``'s head numbers,
    for a FAD head, the stock head and the paper arm's head (its own config)."""
    genotype = sample_random_genotype("full", seed=3)
    path = str(tmp_path / "g.json")
    save_genotype(genotype, path)
    size = search_quality.DemoHeadSize()
    paper = search_quality.Planner(str(tmp_path), [], {}).paper(0)
    assert paper.name == "paper_0" and paper.train.config == search_quality.PAPER_CONFIG
    for config, opts, g in ((search_quality.FAD_CONFIG, ["MODEL.FAD.GENOTYPE", path], genotype),
                            (search_quality.STOCK_CONFIG, [], None),
                            (search_quality.PAPER_CONFIG, [], load_genotype(paper.genotype))):  # the released cell
        cfg = load_cfg(os.path.join(REPO, config), [*opts, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
        head = analyze_model(cfg, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)["head"]
        assert size(g, config=config) == {"head_params": head["params"],
                                          "head_gflops": pytest.approx(head["gflops"], rel=1e-12)}


def test_matched_members_cost_what_the_searched_heads_cost(tmp_path):
    """Member k of the matched arm is the k-th sampled genotype whose params and FLOPs are both
    within the tolerance of the target, written once; noise runs train two genotypes with seeds 100…"""
    size = search_quality.DemoHeadSize()
    target_genotype = sample_random_genotype("full", seed=5)
    target = size(target_genotype)
    searched = [{"name": "searched_0", "genotype": genotype_to_dict(target_genotype), **target}]
    runs = search_quality.plan_after_search(str(tmp_path), [], {}, searched, ["matched", "noise"],
                                            {"matched": [0, 1]}, tolerance=0.05, noise_seeds=2)
    assert [r.name for r in runs] == ["matched_0", "matched_1", "noise_searched_100", "noise_searched_101",
                                      "noise_matched_100", "noise_matched_101"]
    seeds = []
    for run in runs[:2]:
        meta = json.loads(open(run.genotype).read())["meta"]
        seeds.append(meta["random_seed"])
        cost = size(load_genotype(run.genotype))
        assert all(abs(cost[k] / target[k] - 1) <= 0.05 for k in target)
    assert search_quality.MATCHED_FIRST_CANDIDATE <= seeds[0] < seeds[1]
    assert load_genotype(runs[2].genotype) == target_genotype and runs[4].genotype == runs[0].genotype
    assert [tuple(r.train.opts[:2]) for r in runs[2:]] == [("SEED", 100), ("SEED", 101)] * 2


def test_compare_reports_differences_percentiles_and_similarity():
    def record(name, arm, ap, seed):
        genotype = genotype_to_dict(sample_random_genotype("full", seed=seed))
        return {"name": name, "arm": arm, "AP": ap, "head_params": 1.0, "head_gflops": 1.0, "genotype": genotype,
                "search_end": "stable", "search_s": 600.0, "search_iterations": 300}
    records = [record("searched_0", "searched", 31.0, 1), record("searched_1", "searched", 30.0, 1),
               record("matched_0", "matched", 29.0, 2), record("matched_1", "matched", 30.0, 3),
               record("matched_2", "matched", 28.0, 4)]
    out = search_quality.compare(records)
    assert list(out["differences"]) == ["searched - matched"]
    assert out["differences"]["searched - matched"]["difference"] == pytest.approx(30.5 - 29.0)
    assert out["searched_percentile_among_matched"] == {"searched_0": 100.0, "searched_1": pytest.approx(250 / 3)}
    assert out["similarity"]["searched"] == {"edges": 1.0, "ops": 1.0, "pairs": 1}  # the same genotype twice
    assert out["similarity"]["matched"]["pairs"] == 3 and out["similarity"]["matched"]["ops"] < 1.0
    assert out["searches"] == {"n": 2, "stable": 2, "minutes": [10.0, 10.0], "iterations": [300, 300]}


def test_plan_is_longest_first_over_the_given_seeds(tmp_path):
    """Searched chains (search + training) first, then random FAD heads, then stock heads, so that
    the study's tail is a short run; ``--first-seed`` names the runs and seeds them."""
    runs = search_quality.plan_runs(str(tmp_path), [3, 4], [], {})
    assert [r.name for r in runs] == ["searched_3", "searched_4", "random_3", "random_4", "stock_3", "stock_4"]
    assert [len(r.steps) for r in runs] == [2, 2, 1, 1, 1, 1]
    assert all(("SEED", 3) == tuple(s.opts[:2]) for s in runs[0].steps)
    assert os.path.isfile(tmp_path / "genotypes" / "random_4.json")


def test_sized_arm_members_are_random_genotypes_in_the_band(tmp_path):
    """Member k of the sized arm is the k-th sampled genotype whose demo head is in the band,
    written once (a second plan reads the files), trained with seed k."""
    band = (0.15, 0.25)
    runs = search_quality.plan_runs(str(tmp_path), [0, 1], [], {}, arms=["sized"], sized_band=band)
    assert [r.name for r in runs] == ["sized_0", "sized_1"]
    seeds = []
    for k, run in enumerate(runs):
        meta = json.loads(open(run.genotype).read())["meta"]
        seeds.append(meta["random_seed"])
        assert meta["head_params_band_M"] == list(band)
        assert band[0] <= search_quality.demo_head_params()(load_genotype(run.genotype)) <= band[1]
        assert ("SEED", k) == tuple(run.train.opts[:2])
    assert search_quality.SIZED_FIRST_CANDIDATE <= seeds[0] < seeds[1]
    mtimes = [os.path.getmtime(r.genotype) for r in runs]
    again = search_quality.plan_runs(str(tmp_path), [1, 2], [], {}, arms=["sized"], sized_band=band)
    assert again[0].genotype == runs[1].genotype and os.path.getmtime(again[0].genotype) == mtimes[1]
    assert json.loads(open(again[1].genotype).read())["meta"]["random_seed"] > seeds[1]


def test_arm_seeds_give_an_arm_its_own_n(tmp_path):
    """``--arm-seeds searched=1`` runs one searched chain beside two runs of the other arms."""
    arm_seeds = search_quality.parse_arm_seeds(["searched=1"], first_seed=2)
    assert arm_seeds == {"searched": [2]}
    runs = search_quality.plan_runs(str(tmp_path), [2, 3], [], {}, arms=["stock", "searched"], arm_seeds=arm_seeds)
    assert [r.name for r in runs] == ["searched_2", "stock_2", "stock_3"]


def test_arm_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="--sized-params"):
        search_quality.plan_runs(str(tmp_path), [0], [], {}, arms=["sized"])
    with pytest.raises(ValueError, match="add sized to --arms"):
        search_quality.plan_runs(str(tmp_path), [0], [], {}, arms=["stock"], sized_band=(0.5, 0.8))
    with pytest.raises(ValueError, match="unknown arm"):
        search_quality.plan_runs(str(tmp_path), [0], [], {}, arms=["stock", "lucky"])
    with pytest.raises(ValueError, match="add searched to --arms"):
        search_quality.check_arms(["stock", "matched"])
    with pytest.raises(ValueError, match="--arm-seeds names arm.*random"):
        search_quality.plan_runs(str(tmp_path), [0], [], {}, arms=["stock"], arm_seeds={"random": [0]})
    for bad in ("sized", "sized=0", "sized=x"):
        with pytest.raises(ValueError, match="ARM=N"):
            search_quality.parse_arm_seeds([bad], first_seed=0)


def test_cli_rejects_bad_arms_before_any_work(tmp_path):
    """A wrong arm option stops the command at once, before the pre-training and data steps."""
    with pytest.raises(SystemExit, match="--sized-params is the sized arm's band"):
        search_quality.main(["--arms", "stock", "--sized-params", "0.5", "0.8", "--work-dir", str(tmp_path)])
    assert not os.listdir(tmp_path)
