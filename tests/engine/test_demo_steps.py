"""The demo's step runner: the ETA of side-by-side steps and the progress line read from a run's log."""
import json

from fad_d2.demo.steps import DONE_FILE, Progress, Step, latest_iteration


def test_eta_counts_the_longest_of_the_side_by_side_steps(tmp_path):
    search, stock, fad = (Step(name, "train_net.py", "cfg.yaml", str(tmp_path / name), nominal_s=s)
                          for name, s in (("search", 900.0), ("stock", 720.0), ("fad", 780.0)))
    assert Progress("demo", [search, stock, fad]).eta_s() == 2400.0
    progress = Progress("demo", [search, stock, fad], side_by_side=[search, stock])
    assert progress.eta_s() == 900.0 + 780.0
    # the search finished in half its nominal time: the rest scales by 0.5, the stock run now
    # the longest unfinished side-by-side step
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / DONE_FILE).write_text(json.dumps({"seconds": 450.0, "command": []}))
    assert progress.eta_s() == 0.5 * (780.0 + 720.0)


def test_latest_iteration_reads_the_last_metrics_line(tmp_path):
    assert latest_iteration(str(tmp_path)) == "starting"
    log = tmp_path / "log.txt"
    log.write_text("[11/30 10:24:08] d2.engine.train_loop INFO: Starting training from iteration 0\n")
    assert latest_iteration(str(tmp_path)) == "starting"
    with open(log, "a") as f:
        f.write("[11/30 10:28:49] d2.utils.events INFO:  eta: 0:10:22  iter: 59  total_loss: 1.568  lr: 0.01\n")
        f.write("[11/30 10:30:17] d2.utils.events INFO:  eta: 0:09:01  iter: 79  total_loss: 1.402  lr: 0.01\n")
    assert latest_iteration(str(tmp_path)) == "iter 79, eta 0:09:01"
