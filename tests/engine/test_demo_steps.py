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


def test_side_by_side_steps_run_at_once_and_report(tmp_path, monkeypatch, capsys):
    """Both steps start before either ends, each logs to its console.log, progress lines name
    the unfinished ones, and each step's wall time is printed."""
    import threading
    import time

    started, barrier = [], threading.Barrier(2, timeout=10)

    def fake_run(self, device, log_file=None):
        started.append((self.name, device, log_file))
        barrier.wait()  # returns only once both steps run at the same time
        time.sleep(0.3 if self.name == "search" else 0.0)
        return 60.0

    monkeypatch.setattr(Step, "run", fake_run)
    steps = [Step(name, "train_net.py", "cfg.yaml", str(tmp_path / name)) for name in ("search", "stock")]
    Progress("demo", steps, side_by_side=steps).run_side_by_side(steps, "cpu", report_every_s=0.1)
    assert sorted(started) == [(s.name, "cpu", str(tmp_path / s.name / "console.log")) for s in steps]
    out = capsys.readouterr().out
    assert "search: starting" in out and "stock: starting" not in out.split("search: starting")[-1]
    assert out.count("done in 1.0 min") == 2
