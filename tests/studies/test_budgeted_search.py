"""The budgeted-search study at tiny sizes: it reuses the search study's runs and resumes."""
import json
import os

import pytest

from studies import budgeted_search


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_budgeted_search_reuses_the_study_and_resumes(tmp_path):
    """``studies.budgeted_search --tiny``: the unconstrained variant and the stock head are the
    study's runs of the seed (run there when missing), a FLOPs-budgeted search and its training
    run beside; a second call redoes nothing."""
    study, out = tmp_path / "study", tmp_path / "budgeted"
    argv = ["--tiny", "--only", "unconstrained,flops_0.7", "--seed", "1", "--jobs", "2", "--repeats", "1",
            "--study-dir", str(study), "--output-dir", str(out)]
    budgeted_search.main(argv)
    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 1 and results["stock"]["run"] == str(study / "stock_1")
    assert results["variants"]["unconstrained"]["runs"] == [str(study / "search_1"), str(study / "searched_1")]
    flops = results["variants"]["flops_0.7"]
    assert flops["search_cost_report"]["metric"] == "flops"
    for r in [results["stock"], *results["variants"].values()]:
        assert 0.0 <= r["ap"]["AP"] <= 100.0
    done = {p: os.path.getmtime(p) for p in tmp_path.glob("**/run.json")}
    assert len(done) == 5  # stock + two searches + two trainings
    budgeted_search.main(argv)
    assert {p: os.path.getmtime(p) for p in tmp_path.glob("**/run.json")} == done
