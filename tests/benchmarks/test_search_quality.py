"""The study's parts at tiny sizes: every arm builds, trains and evaluates, results aggregate,
and a second call (a killed study continued) redoes no finished run."""
import json
import os

import pytest

from benchmarks import search_quality
from fad_d2.demo.report import markdown_table, summarize

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


@pytest.mark.timeout(1200)
def test_study_runs_aggregates_and_resumes(tmp_path):
    results = tmp_path / "results"
    argv = ["--seeds", "1", "--jobs", "2", "--work-dir", str(tmp_path / "work"), "--results-dir", str(results),
            "--latency-repeats", "1", *TINY_OPTS]
    search_quality.main(argv)
    data = json.loads((results / "search_quality.json").read_text())
    assert set(data["summary"]) == {"stock", "random", "searched"}
    assert set(data["runs"]) == {"stock_0", "random_0", "searched_0"}
    for run in data["runs"].values():
        assert 0.0 <= run["AP"] <= 100.0
        assert run["head_params"] > 0 and run["head_gflops"] > 0 and run["head_latency_ms"] > 0
    assert data["runs"]["searched_0"]["search_iterations"] >= 1
    assert data["runs"]["random_0"]["head_params"] != data["runs"]["stock_0"]["head_params"]
    assert (results / "comparison.png").stat().st_size > 0
    assert "| stock | 1 |" in (results / "search_quality.md").read_text()

    done = {p: os.path.getmtime(p) for p in (tmp_path / "work").glob("*/run.json")}
    assert len(done) == 4  # one search + three trainings
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
