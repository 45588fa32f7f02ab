"""Every bad input ends in one line naming what is wrong, before anything is built or overwritten."""
import json
import os
import re
import subprocess
import sys

import pytest
import torch

import fad_d2  # noqa: F401
from fad_d2.data import check_images_exist
from fad_d2.engine.checkpoint import CheckpointError, FADCheckpointer, genotype_record
from fad_d2.engine.setup import ConfigError, load_cfg, one_line_errors, record_genotypes
from fad_d2.engine.validate import check_fad_config
from fad_d2.errors import DatasetError, FADError
from fad_d2.space import GenotypeError
from fad_d2.engine.trainer import Trainer
from fad_d2.modeling import FADModule
from fad_d2.space import CellGenotype, EdgeChoice, Genotype, get_search_space, save_genotype
from tests.conftest import REPO, config_path
from tests.modeling.utils import cpu_cfg

DEMO_FCOS = config_path("Demo/fcos_R_18_FPN_demo.yaml")
DEMO_FAD = config_path("Demo/fad_fcos_R_18_FPN_demo.yaml")
DEMO_RETINANET = config_path("Demo/retinanet_R_18_FPN_demo.yaml")


def _genotype(dilated_op, num_nodes=3):
    """A two-group genotype whose first edge is ``dilated_op`` (the rest: std_3x3)."""
    nodes = [[EdgeChoice(dilated_op, 0)]] + [
        [EdgeChoice("std_3x3", 0), EdgeChoice("std_3x3", k - 1)] for k in range(2, num_nodes + 1)]
    cell = CellGenotype(nodes)
    return Genotype("full", (("box", cell), ("cls", cell)))


def _write_genotype(tmp_path, name, dilated_op="std_3x3_dil2", num_nodes=3):
    path = tmp_path / name
    save_genotype(_genotype(dilated_op, num_nodes), str(path))
    return str(path)


def _fad_cfg(genotype_path, *opts):
    return cpu_cfg(DEMO_FAD, "MODEL.FAD.GENOTYPE", genotype_path, *opts)


def _module(genotype):
    return FADModule(channels=32, inner_channels=[32, 32], num_cells=[1, 1], space=get_search_space("full"),
                     genotype=genotype)


# ------------------------------------------------------------------ config values

BAD_VALUES = {
    "MODEL.FAD.NUM_CELLS": ("[0, 0]", ">= 1"),
    "MODEL.FAD.NUM_NODES": ("0", ">= 1"),
    "MODEL.FAD.INNER_CHANNELS": ("[-32, 32]", ">= 1"),
    "MODEL.FAD.SEARCH_SPACE": ("'fulll'", "one of"),
    "MODEL.FAD.LAYOUT": ("'diagonal'", "one of"),
    "MODEL.FAD.NORM": ("'LN'", "one of"),
    "MODEL.FAD.CPU_BATCH_THREADS": ("-1", ">= 0"),
    "MODEL.FAD_MASK.NUM_CELLS": ("0", ">= 1"),
    "MODEL.FAD_MASK.CPU_BATCH_THREADS": ("-2", ">= 0"),
    "MODEL.FAD_MASK.INNER_CHANNELS": ("48", "multiple of 32"),
    "SEARCH.ALPHA_BETAS": ("(0.5,)", "two numbers"),
    "SEARCH.GRAD_CLIP_NORM": ("-5.0", ">= 0"),
    "SEARCH.SPLIT_RATIO": ("1.5", "(0, 1)"),
    "SEARCH.DERIVE_PERIOD": ("0", ">= 1"),
    "SEARCH.ALPHA_LR": ("-0.1", ">= 0"),
    "SEARCH.ALPHA_WARMUP_ITERS": ("-1", ">= 0"),
    "SEARCH.STABLE_PERIODS": ("0", ">= 1"),
    "SEARCH.COST.WEIGHT": ("-1.0", ">= 0"),
    "SEARCH.COST.METRIC": ("'energy'", "one of"),
    "SEARCH.COST.TARGET": ("0.0", "> 0"),
    "SEARCH.COST.DEVICE": ("'tpu'", "one of"),
    "SEARCH.COST.REPEATS": ("0", ">= 1"),
}


def test_group_norm_group_count_checked_against_inner_channels():
    assert cpu_cfg(DEMO_FCOS, "MODEL.FAD.NORM", "GN16", "MODEL.FAD.INNER_CHANNELS", "[32, 48]").MODEL.FAD.NORM == "GN16"
    with pytest.raises(ConfigError) as info:
        cpu_cfg(DEMO_FCOS, "MODEL.FAD.NORM", "GN16", "MODEL.FAD.INNER_CHANNELS", "[32, 24]")
    assert str(info.value) == ("MODEL.FAD.INNER_CHANNELS: [32, 24] is not allowed: with MODEL.FAD.NORM 'GN16' "
                               "(GroupNorm of 16 groups) a multiple of 16")
    with pytest.raises(ConfigError, match=r"MODEL.FAD.NORM: 'GN0' is not allowed: one of \['GN', 'BN', ''\] or "
                                          r"'GN<groups>'"):
        cpu_cfg(DEMO_FCOS, "MODEL.FAD.NORM", "GN0")


@pytest.mark.parametrize("key", list(BAD_VALUES))
def test_bad_config_value_names_key_value_and_allowed(key):
    value, allowed = BAD_VALUES[key]
    with pytest.raises(ConfigError) as info:
        cpu_cfg(DEMO_FCOS, key, value)
    message = str(info.value)
    assert message.startswith(f"{key}: ") and "is not allowed" in message and allowed in message
    assert "\n" not in message


@pytest.mark.parametrize("node", ["MODEL.FAD", "MODEL.FAD_MASK"])
def test_batch_split_refused_with_batchnorm(node):
    with pytest.raises(ConfigError) as info:
        cpu_cfg(DEMO_FCOS, f"{node}.NORM", "BN", f"{node}.CPU_BATCH_THREADS", "2")
    assert str(info.value) == (f"{node}.CPU_BATCH_THREADS: 2 is not allowed: 0 or 1 with {node}.NORM 'BN' "
                               "(BatchNorm normalises over the whole batch, which a split would cut)")
    assert cpu_cfg(DEMO_FCOS, f"{node}.NORM", "BN")[node.split(".")[0]][node.split(".")[1]].CPU_BATCH_THREADS == 0


def test_head_name_ignored_by_meta_architecture():
    with pytest.raises(ConfigError, match=r"MODEL.RETINANET.HEAD_NAME: 'FADRetinaNetHead' is ignored by "
                                          r"MODEL.META_ARCHITECTURE 'RetinaNet'; only \['SelectableHeadRetinaNet'\]"):
        cpu_cfg(DEMO_RETINANET, "MODEL.META_ARCHITECTURE", "RetinaNet", "MODEL.RETINANET.HEAD_NAME", "FADRetinaNetHead")


def test_genotype_node_count_and_space_checked_against_config(tmp_path):
    two_nodes = _write_genotype(tmp_path, "g2.json", num_nodes=2)
    with pytest.raises(ValueError, match=r"g2.json\): the genotype's cells have 2 nodes but MODEL.FAD.NUM_NODES is 3"):
        _fad_cfg(two_nodes)
    assert genotype_record(_fad_cfg(two_nodes, "MODEL.FAD.NUM_NODES", "2"))
    with pytest.raises(ValueError, match=r"searched in space 'full' but MODEL.FAD.SEARCH_SPACE is 'subset1'"):
        _fad_cfg(_write_genotype(tmp_path, "g.json"), "MODEL.FAD.SEARCH_SPACE", "subset1")


def test_check_leaves_the_config_unchanged(tmp_path):
    """Checking a config changes none of its values; recording the genotypes is load_cfg's own step."""
    path = _write_genotype(tmp_path, "g.json")
    cfg = load_cfg(DEMO_FAD, ["MODEL.DEVICE", "cpu", "MODEL.FAD.GENOTYPE", path], check=False)
    before = cfg.dump()
    check_fad_config(cfg)
    assert cfg.dump() == before and cfg.MODEL.FAD_GENOTYPE_RECORD == ""
    record_genotypes(cfg)
    assert genotype_record(cfg)["MODEL.FAD.GENOTYPE"]["file"] == path


@pytest.mark.parametrize("error", [ConfigError("bad value"), FileNotFoundError("gone.json")])
def test_user_errors_end_in_one_line(error):
    def fail():
        with one_line_errors():
            raise error
    with pytest.raises(SystemExit) as info:
        fail()
    assert info.value.code == f"error: {error}"


def test_other_errors_keep_their_traceback():
    """A ValueError or KeyError that is no FADError is a bug, not a user error: it propagates."""
    for error in (ValueError("a bug"), KeyError("a bug")):
        with pytest.raises(type(error)), one_line_errors():
            raise error


def test_user_error_classes_share_one_base():
    assert all(issubclass(c, FADError) and issubclass(c, ValueError)
               for c in (ConfigError, CheckpointError, GenotypeError, DatasetError))


def test_saved_config_records_the_genotype(tmp_path):
    path = _write_genotype(tmp_path, "g.json")
    record = genotype_record(_fad_cfg(path))
    assert record["MODEL.FAD.GENOTYPE"]["file"] == path
    assert record["MODEL.FAD.GENOTYPE"]["genotype"]["groups"][0]["nodes"][0][0]["op"] == "std_3x3_dil2"


@pytest.mark.parametrize("genotype", [None, "g.json"])
def test_saved_config_yaml_loads_again(tmp_path, genotype):
    """A run's config.yaml (``cfg.dump()``, as Detectron2's ``default_setup`` writes it) is a
    config file again, for a stock head (empty record) and a FAD head (the record's JSON)."""
    cfg = cpu_cfg(DEMO_FCOS) if genotype is None else _fad_cfg(_write_genotype(tmp_path, genotype))
    saved = tmp_path / "config.yaml"
    saved.write_text(cfg.dump())
    again = load_cfg(str(saved))
    assert genotype_record(again) == genotype_record(cfg)
    assert again.MODEL.FAD_GENOTYPE_RECORD == cfg.MODEL.FAD_GENOTYPE_RECORD
    assert bool(genotype_record(cfg)) == (genotype is not None)


# ------------------------------------------------------------------ checkpoints

def test_weights_of_another_genotype_with_the_same_shapes_are_refused(tmp_path):
    dil2, dil3 = _write_genotype(tmp_path, "dil2.json"), _write_genotype(tmp_path, "dil3.json", "std_3x3_dil3")
    trained = _module(_genotype("std_3x3_dil2"))
    FADCheckpointer(trained, str(tmp_path), genotypes=genotype_record(_fad_cfg(dil2))).save("trained")
    other = _module(_genotype("std_3x3_dil3"))
    assert {k: v.shape for k, v in trained.state_dict().items()} == {k: v.shape for k, v in other.state_dict().items()}
    before = {k: v.clone() for k, v in other.state_dict().items()}
    checkpointer = FADCheckpointer(other, genotypes=genotype_record(_fad_cfg(dil3)))
    with pytest.raises(CheckpointError) as info:
        checkpointer.load(str(tmp_path / "trained.pth"))
    message = str(info.value)
    assert "trained.pth" in message and dil2 in message and dil3 in message
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items()), "no weight was loaded"
    # the same genotype loads
    FADCheckpointer(_module(_genotype("std_3x3_dil2")), genotypes=genotype_record(_fad_cfg(dil2))).load(
        str(tmp_path / "trained.pth"))


@pytest.mark.parametrize("content", ["truncated", "foreign"])
def test_unreadable_checkpoint_names_the_file(tmp_path, content):
    model = _module(None)
    FADCheckpointer(model, str(tmp_path), genotypes={}).save("good")
    path = tmp_path / "bad.pth"
    data = (tmp_path / "good.pth").read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else b'{"not": "a checkpoint"}')
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {path} cannot be read")):
        FADCheckpointer(model, genotypes={}).load(str(path))


def test_evaluation_refuses_a_checkpoint_without_the_model_weights(tmp_path):
    torch.save({"model": {"unrelated.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"other.pth lacks \d+ weights of this model"):
        FADCheckpointer(_module(None), genotypes={}, require_all_weights=True).load(str(tmp_path / "other.pth"))


# ------------------------------------------------------------------ data

def test_missing_image_is_found_before_training(tmp_path):
    present = tmp_path / "a.png"
    present.write_bytes(b"x")
    dicts = [{"file_name": str(present)}, {"file_name": str(tmp_path / "gone.png")}]
    with pytest.raises(FileNotFoundError, match=r"Dataset 'd': image '.*gone.png' does not exist \(1 of 2"):
        check_images_exist(dicts, ["d"])


def test_missing_test_image_stops_the_trainer_before_training(tmp_path):
    from detectron2.data.datasets import register_coco_instances

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "here.png").write_bytes(b"x")
    coco = {"images": [{"id": i, "file_name": f, "height": 8, "width": 8} for i, f in ((1, "here.png"), (2, "gone.png"))],
            "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "val.json").write_text(json.dumps(coco))
    name = f"fad_test_missing_val_{tmp_path.name}"
    register_coco_instances(name, {}, str(tmp_path / "val.json"), str(tmp_path / "images"))
    cfg = cpu_cfg(DEMO_FCOS, "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", f"('{name}',)",  # the same classes
                  "OUTPUT_DIR", str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match=rf"Dataset '{name}': image '.*gone.png' does not exist \(1 of 2"):
        Trainer(cfg)
    assert not (tmp_path / "out").exists()  # nothing was built or written


# ------------------------------------------------------------------ command lines

def _run(script, *args, env=None):
    env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run([sys.executable, os.path.join(REPO, script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def error_line(proc):
    """The one ``error: ...`` line of a failed command (and no traceback)."""
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


@pytest.mark.slow
def test_cli_bad_value_is_one_line_and_debug_shows_the_traceback(tmp_path):
    args = ("--config-file", DEMO_FCOS, "OUTPUT_DIR", str(tmp_path), "MODEL.FAD.NUM_CELLS", "[0, 0]")
    assert error_line(_run("train_net.py", *args)).startswith("error: MODEL.FAD.NUM_CELLS: [0, 0] is not allowed")
    debug = _run("train_net.py", "--debug", *args)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert not os.listdir(tmp_path), "nothing was written"


@pytest.mark.slow
def test_cli_eval_only_without_weights_is_refused(tmp_path):
    proc = _run("train_net.py", "--config-file", DEMO_FCOS, "--eval-only", "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu",
                "OUTPUT_DIR", str(tmp_path))
    assert "--eval-only needs trained weights" in error_line(proc)


@pytest.mark.slow
def test_cli_analyze_bad_genotype_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fad_d2.analyze", "--config-file", DEMO_FAD, "--genotype",
                           str(tmp_path / "nope.json")], cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True, text=True, timeout=600)
    assert "genotype file not found" in error_line(proc)
