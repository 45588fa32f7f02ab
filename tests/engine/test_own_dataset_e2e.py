"""Search → train (2 DDP processes, gloo) → evaluate → export on your own COCO-format dataset, run
as docs/own_dataset.md runs them: the search's printed command trains on the searched dataset with
its classes, and the evaluation table names them."""
import os
import shlex
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, config_path
from tests.data.own_dataset import own_dataset_opts, write_own_dataset
from tests.export.test_export import NO_TIE_BREAKING
from tests.search.utils import SEARCH_CONFIG, tiny_search_opts

# c′ = 32 in GroupNorm(16) keeps two channels per group: at batch 1 (test time) a one-pixel P7
# would leave two values per group, so the test images are resized to 160-256 px.
# A score threshold that a head trained for a few iterations passes, so that there is an AP table.
TEST_SIZE = ("INPUT.MIN_SIZE_TEST", "160", "INPUT.MAX_SIZE_TEST", "256", "MODEL.FCOS.SCORE_THRESH_TEST", "0.01")
SCHEDULE = ("SOLVER.MAX_ITER", "6", "SOLVER.WARMUP_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "1000")


def _run(args):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _search(search_dir, files, prefix, *opts, config=SEARCH_CONFIG):
    """Run search_net.py on the dataset ``files`` as ``<prefix>_train`` / ``<prefix>_val``; returns
    the command it printed (checked to name its train_config.yaml) and that config, as YAML."""
    out = _run(["search_net.py", "--config-file", config, *own_dataset_opts(files, prefix),
                *tiny_search_opts(search_dir, "SOLVER.MAX_ITER", "2", *opts)])
    printed = next(line for line in out.splitlines() if " | train it: " in line)
    command = shlex.split(printed.split(" | train it: ", 1)[1])
    train_config = search_dir / "train_config.yaml"
    assert command == ["fad-train", "--config-file", str(train_config)]
    return command, yaml.safe_load(train_config.read_text())


@pytest.mark.slow
def test_search_train_evaluate_export_on_own_dataset(tmp_path):
    files = write_own_dataset(tmp_path / "data")
    search_dir = tmp_path / "search"
    command, written = _search(search_dir, files, "fruit", *TEST_SIZE)
    train_config = search_dir / "train_config.yaml"
    assert written["_BASE_"] == os.path.join(REPO, "configs/Demo/fad_fcos_R_18_FPN_demo.yaml")
    assert written["DATASETS"] == {"COCO": [["fruit_train", *files["train"]], ["fruit_val", *files["val"]]],
                                   "TRAIN": ["fruit_train"], "TEST": ["fruit_val"]}
    assert written["MODEL"]["FCOS"]["NUM_CLASSES"] == 3
    assert written["MODEL"]["FAD"]["GENOTYPE"] == str(search_dir / "genotype_final.json")
    assert written["INPUT"]["MIN_SIZE_TEST"] == 160 and "SOLVER" not in written and "SEARCH" not in written

    # the printed command, on two processes (gloo): each spawned worker registers the dataset itself
    train_log = _run(["-m", "fad_d2.cli.train", *command[1:], "--num-gpus", "2", *SCHEDULE, "SOLVER.IMS_PER_BATCH", "4"])
    train_dir = search_dir / "train"
    assert (train_dir / "model_final.pth").is_file()
    saved = yaml.safe_load((train_dir / "config.yaml").read_text())
    assert saved["DATASETS"]["TRAIN"] == ["fruit_train"] and saved["MODEL"]["FCOS"]["NUM_CLASSES"] == 3
    assert "Distribution of instances among all 3 categories" in train_log
    assert "Evaluation results for fruit_val in csv format" in train_log  # after training

    evaluation = _run(["train_net.py", "--config-file", str(train_config), "--eval-only", "--resume"])
    table = evaluation.split("Per-category bbox AP", 1)[1]
    assert all(f"| {name} " in table for name in ("kiwi", "mango", "plum"))

    report = _run(["-m", "fad_d2.export", "--config-file", str(train_config), "--output", str(tmp_path / "export"),
                   "--formats", "onnx", "--num-images", "2", "--repeats", "1", "MODEL.WEIGHTS",
                   str(train_dir / "model_final.pth"), *NO_TIE_BREAKING])
    assert "matches PyTorch" in report and "onnx" in report


@pytest.mark.slow
def test_retinanet_search_hands_on_its_head_and_classes(tmp_path):
    files = write_own_dataset(tmp_path / "data")
    retinanet = config_path("Demo/retinanet_R_18_FPN_demo.yaml")
    command, written = _search(tmp_path / "search", files, "berry", "MODEL.RETINANET.HEAD_NAME", "FADRetinaNetHead",
                               "MODEL.FAD.GENOTYPE", "", "MODEL.FAD.NUM_CELLS", "[1, 1]",
                               "SEARCH.TRAIN_CONFIG", retinanet, config=retinanet)
    assert written["_BASE_"] == retinanet
    assert written["MODEL"]["RETINANET"] == {"HEAD_NAME": "FADRetinaNetHead", "NUM_CLASSES": 3}
    assert written["DATASETS"]["TRAIN"] == ["berry_train"]
    train_log = _run(["-m", "fad_d2.cli.train", *command[1:], *SCHEDULE, "DATASETS.TEST", "()"])
    assert "Distribution of instances among all 3 categories" in train_log
    assert (tmp_path / "search" / "train" / "model_final.pth").is_file()
