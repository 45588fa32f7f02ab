"""A search ends honestly: genotype_final.json only when it ends, nothing overwritten by a rerun,
and any node count searches and derives end to end."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
from fad_d2.search import DeriveArchitectureHook, SearchTrainer
from fad_d2.space import CellGroup, get_search_space
from tests.conftest import REPO
from tests.engine.test_user_errors import error_line
from tests.modeling.utils import cpu_cfg, tiny_opts
from tests.search.utils import SEARCH_CONFIG, tiny_search_cfg, tiny_search_opts


def _search_net(output_dir, *args, opts=()):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, "search_net.py"), "--config-file", SEARCH_CONFIG,
                           *args, *tiny_search_opts(output_dir, "SOLVER.MAX_ITER", "2", *opts)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _files(folder):
    """{name: (mtime, sha1)} of every file in ``folder``."""
    ret = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            ret[name] = (os.stat(path).st_mtime_ns, hashlib.sha1(f.read()).hexdigest())
    return ret


@pytest.mark.slow
def test_ended_search_is_never_restarted_nor_overwritten(tmp_path):
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.MAX_ITER", "2"))
    trainer.train()
    assert trainer.derive_hook.end == {"reason": "completed", "iteration": 2}
    final = json.loads((tmp_path / "genotype_final.json").read_text())
    assert final["meta"] == {"end": "completed", "iteration": 2}
    before = _files(tmp_path)

    resumed = _search_net(tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "already ended (completed, iteration 2): nothing to do" in resumed.stdout
    assert f"genotype: {tmp_path / 'genotype_final.json'}" in resumed.stdout

    again = error_line(_search_net(tmp_path))
    assert "holds a search that ended (completed, iteration 2)" in again and "--resume" in again
    assert "has no --eval-only" in error_line(_search_net(tmp_path, "--eval-only"))
    assert _files(tmp_path) == before, "no file changed"


@pytest.mark.slow
def test_split_made_with_another_seed_is_refused(tmp_path):
    SearchTrainer(tiny_search_cfg(tmp_path))  # writes search_split.json (seed 0), no checkpoint
    before = _files(tmp_path)
    line = error_line(_search_net(tmp_path, opts=("SEARCH.SPLIT_SEED", "7")))
    assert "search_split.json was made with SEARCH.SPLIT_RATIO 0.5 and SEARCH.SPLIT_SEED 0, not 0.5 and 7" in line
    assert _files(tmp_path)["search_split.json"] == before["search_split.json"], "the split was not overwritten"


@pytest.mark.slow
def test_sigint_leaves_no_final_genotype(tmp_path):
    # STOP_WHEN_STABLE off: two equal derivations in a row would end the search (exit 0) before
    # the signal arrives
    out = tmp_path / "search"
    env = dict(os.environ, PYTHONPATH=REPO)
    with open(tmp_path / "stdout.txt", "w") as stdout, open(tmp_path / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen([sys.executable, os.path.join(REPO, "search_net.py"), "--config-file", SEARCH_CONFIG,
                                 *tiny_search_opts(out, "SOLVER.MAX_ITER", "1000", "SEARCH.DERIVE_PERIOD", "1",
                                                      "SEARCH.STOP_WHEN_STABLE", "False")],
                                cwd=REPO, env=env, stdout=stdout, stderr=stderr,
                                # a shell's background job inherits SIGINT ignored: restore Ctrl-C
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.time() + 300
            while not (out / "genotype_iter_0000001.json").exists():
                assert proc.poll() is None, "the search exited early"
                assert time.time() < deadline, "no derivation within 5 minutes"
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        finally:
            proc.kill()
    logs = (tmp_path / "stdout.txt").read_text() + (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130 and "error: interrupted" in logs
    assert "the search was interrupted" in logs
    assert not (out / "genotype_final.json").exists()
    last = json.loads((out / "genotype_last.json").read_text())
    assert last["meta"]["interrupted"] is True


@pytest.mark.slow
@pytest.mark.parametrize("num_nodes", [2, 3, 4])
def test_any_node_count_searches_and_derives(tmp_path, num_nodes):
    n = str(num_nodes)
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SOLVER.MAX_ITER", "1", "MODEL.FAD.NUM_NODES", n))
    trainer.train()
    genotype = str(tmp_path / "genotype_final.json")
    saved = json.loads(open(genotype).read())
    assert all(len(g["nodes"]) == num_nodes for g in saved["groups"])
    cfg = cpu_cfg(os.path.join(REPO, "configs/Demo/fad_fcos_R_18_FPN_demo.yaml"),
                  *tiny_opts("MODEL.FAD.GENOTYPE", genotype, "MODEL.FAD.SEARCH_SPACE", "subset1",
                             "MODEL.FAD.NUM_NODES", n))
    model = build_model(cfg)
    assert model.head.fad.box.num_nodes == model.head.fad.cls.num_nodes == num_nodes


class _FakeTrainer:
    """The part of a trainer the derive hook uses: ``iter``, ``max_iter``, ``storage``,
    ``request_stop``."""

    def __init__(self, max_iter, storage):
        self.iter, self.max_iter, self.storage, self.stop_reason = 0, max_iter, storage, None

    def request_stop(self, reason):
        self.stop_reason, self.max_iter = reason, self.iter + 1


def _run_hook(tmp_path, max_iter, interrupt_at=None, stop_when_stable=True):
    """Drive a derive hook over frozen-α search groups (so every derivation is stable) like
    ``TrainerBase.train`` does, optionally raising KeyboardInterrupt at ``interrupt_at``."""
    groups = [CellGroup(32, 32, space=get_search_space("subset1"), name=n, num_nodes=2) for n in ("box", "cls")]
    hook = DeriveArchitectureHook(groups, 2, stop_when_stable, str(tmp_path))
    with EventStorage(0) as storage:
        hook.trainer = trainer = _FakeTrainer(max_iter, storage)
        try:
            for trainer.iter in range(max_iter):
                if trainer.iter == interrupt_at:
                    raise KeyboardInterrupt
                hook.after_step()
                if trainer.stop_reason:
                    break
            trainer.iter += 1
        except KeyboardInterrupt:
            pass
        finally:
            hook.after_train()
    return hook


@pytest.mark.slow
def test_hook_end_states_and_files(tmp_path):
    stable = _run_hook(tmp_path / "stable", 10)
    assert stable.end == {"reason": "stable", "iteration": 4}
    assert json.loads((tmp_path / "stable" / "genotype_final.json").read_text())["meta"]["end"] == "stable"
    assert stable.state_dict()["end"] == stable.end  # saved in the checkpoint with the history

    completed = _run_hook(tmp_path / "completed", 3, stop_when_stable=False)
    assert completed.end == {"reason": "completed", "iteration": 3}
    assert [h["iteration"] for h in completed.history] == [2, 3]  # the last iteration derives

    interrupted = _run_hook(tmp_path / "interrupted", 10, interrupt_at=3, stop_when_stable=False)
    assert interrupted.end is None
    assert not (tmp_path / "interrupted" / "genotype_final.json").exists()
    assert json.loads((tmp_path / "interrupted" / "genotype_last.json").read_text())["meta"] == {
        "interrupted": True, "iteration": 2}
