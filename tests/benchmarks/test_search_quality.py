"""The study's parts at tiny sizes: every arm builds, trains and evaluates, results aggregate,
and a second call (a killed study continued) redoes no finished run."""
import json
import os

import pytest

from benchmarks import search_quality
from fad_d2.demo.report import markdown_table, summarize
from fad_d2.space import load_genotype

TINY_OPTS = ["MODEL.WEIGHTS", "", "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)", "SOLVER.WARMUP_ITERS", "1",
             "SOLVER.IMS_PER_BATCH", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "SEARCH.DERIVE_PERIOD", "1",
             "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "160",
             "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "160", "DATALOADER.NUM_WORKERS", "0",
             "MODEL.FCOS.SCORE_THRESH_TEST", "0.0"]  # detections after 2 iterations: AP is a number


def test_summarize_mean_std_n():
    s = summarize({"a": [{"AP": 10.0, "head_gflops": 1.0}, {"AP": 12.0, "head_gflops": 1.0}], "b": []})
    assert list(s) == ["a"]
    assert s["a"]["n"] == 2 and s["a"]["AP"]["mean"] == pytest.approx(11.0)
    assert s["a"]["AP"]["std"] == pytest.approx(2 ** 0.5)  # sample std (n - 1)
    table = markdown_table(s)
    assert "| a | 2 | 11.0 ± 1.4 |" in table


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_study_runs_aggregates_and_resumes(tmp_path):
    results = tmp_path / "results"
    argv = ["--seeds", "1", "--jobs", "2", "--work-dir", str(tmp_path / "work"), "--results-dir", str(results),
            "--latency-repeats", "1", "--arms", "stock", "random", "searched", "sized", "--sized-params", "0", "10",
            *TINY_OPTS]
    search_quality.main(argv)
    data = json.loads((results / "search_quality.json").read_text())
    assert set(data["summary"]) == {"stock", "random", "searched", "sized"}
    assert set(data["runs"]) == {"stock_0", "random_0", "searched_0", "sized_0"}
    for run in data["runs"].values():
        assert 0.0 <= run["AP"] <= 100.0
        assert run["head_params"] > 0 and run["head_gflops"] > 0 and run["head_latency_ms"] > 0
    assert data["runs"]["searched_0"]["search_iterations"] >= 1
    assert data["runs"]["random_0"]["head_params"] != data["runs"]["stock_0"]["head_params"]
    assert (results / "comparison.png").stat().st_size > 0
    assert "| stock | 1 |" in (results / "search_quality.md").read_text()

    done = {p: os.path.getmtime(p) for p in (tmp_path / "work").glob("*/run.json")}
    assert len(done) == 5  # one search + four trainings
    search_quality.main(argv)  # the same command again: nothing is re-run
    assert {p: os.path.getmtime(p) for p in (tmp_path / "work").glob("*/run.json")} == done


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
    band = (0.5, 0.8)
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
