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

import fad_d2  # noqa: F401
from fad_d2.search import SearchTrainer
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


def test_split_made_with_another_seed_is_refused(tmp_path):
    SearchTrainer(tiny_search_cfg(tmp_path))  # writes search_split.json (seed 0), no checkpoint
    before = _files(tmp_path)
    line = error_line(_search_net(tmp_path, opts=("SEARCH.SPLIT_SEED", "7")))
    assert "search_split.json was made with SEARCH.SPLIT_RATIO 0.5 and SEARCH.SPLIT_SEED 0, not 0.5 and 7" in line
    assert _files(tmp_path)["search_split.json"] == before["search_split.json"], "the split was not overwritten"


def test_sigint_leaves_no_final_genotype(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "search_net.py"), "--config-file", SEARCH_CONFIG,
                             *tiny_search_opts(tmp_path, "SOLVER.MAX_ITER", "1000", "SEARCH.DERIVE_PERIOD", "1")],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not (tmp_path / "genotype_iter_0000001.json").exists():
            assert proc.poll() is None, "the search exited early"
            assert time.time() < deadline, "no derivation within 5 minutes"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "error: interrupted" in stderr
    assert "the search was interrupted" in stderr
    assert not (tmp_path / "genotype_final.json").exists()
    last = json.loads((tmp_path / "genotype_last.json").read_text())
    assert last["meta"]["interrupted"] is True


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
