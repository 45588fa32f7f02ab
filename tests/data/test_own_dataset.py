"""Your own COCO-format dataset from the config: DATASETS.COCO registration, NUM_CLASSES from the
data, and a one-line error for each kind of bad input, found before a model is built."""
import json
import os
import re

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

import fad_d2  # noqa: F401
from fad_d2.errors import DatasetError
from fad_d2.engine.setup import one_line_errors
from fad_d2.engine.trainer import check_test_datasets, training_dataset_dicts
from fad_d2.export import main as export_main
from fad_d2.modeling.heads import cfg_value
from fad_d2.search.train_config import check_train_config
from tests.conftest import CONFIGS, config_path
from tests.data.own_dataset import CLASS_NAMES, TRAIN_IMAGES, own_dataset_opts, write_own_dataset
from tests.engine.test_user_errors import _run, error_line
from tests.modeling.utils import cpu_cfg
from tests.search.test_search import _logs_of

DEMO_FCOS = config_path("Demo/fcos_R_18_FPN_demo.yaml")


@pytest.fixture
def own(tmp_path):
    """``(files, prefix)``: the dataset written under ``tmp_path``, registered per test as
    ``<prefix>_train`` / ``<prefix>_val`` (names in Detectron2's catalogs are process-wide)."""
    return write_own_dataset(tmp_path / "data"), f"own_{tmp_path.name}"


def _load_as_the_trainer_does(*opts, config=DEMO_FCOS):
    """Load the config and check its data as ``Trainer`` does before it builds the model; a user
    error comes back as the one line that train_net.py prints."""
    with pytest.raises(SystemExit) as exit_:
        with one_line_errors():
            cfg = cpu_cfg(config, *opts)
            training_dataset_dicts(cfg)
            check_test_datasets(cfg)
            raise SystemExit("no error")
    message = str(exit_.value.code)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("config, key", [("Demo/fcos_R_18_FPN_demo.yaml", "MODEL.FCOS.NUM_CLASSES"),
                                         ("Demo/retinanet_R_18_FPN_demo.yaml", "MODEL.RETINANET.NUM_CLASSES"),
                                         ("Demo/mask_rcnn_R_18_FPN_demo.yaml", "MODEL.ROI_HEADS.NUM_CLASSES")])
def test_config_registers_the_dataset_and_the_classes_follow_it(own, config, key):
    files, prefix = own
    cfg = cpu_cfg(config_path(config), *own_dataset_opts(files, prefix))
    assert cfg_value(cfg, key) == 3
    dicts = DatasetCatalog.get(f"{prefix}_train")
    metadata = MetadataCatalog.get(f"{prefix}_train")
    assert metadata.thing_classes == CLASS_NAMES == ["kiwi", "mango", "plum"]
    assert metadata.thing_dataset_id_to_contiguous_id == {3: 0, 7: 1, 11: 2}
    assert len(dicts) == len(TRAIN_IMAGES) == 8
    annotations = [a for d in dicts for a in d["annotations"]]
    assert sum(a["iscrowd"] for a in annotations) == 7  # one crowd region per annotated image
    assert len(annotations) == 7 + 11
    assert sum(not d["annotations"] for d in dicts) == 1
    assert len({(d["width"], d["height"]) for d in dicts}) == 8


def test_the_demo_keeps_its_eight_classes():
    assert cpu_cfg(DEMO_FCOS).MODEL.FCOS.NUM_CLASSES == 8


def test_explicit_num_classes_that_differ_from_the_data_are_refused(own):
    files, prefix = own
    assert cpu_cfg(DEMO_FCOS, *own_dataset_opts(files, prefix), "MODEL.FCOS.NUM_CLASSES", "3").MODEL.FCOS.NUM_CLASSES == 3
    message = _load_as_the_trainer_does(*own_dataset_opts(files, prefix), "MODEL.FCOS.NUM_CLASSES", "8")
    assert message == (f"error: MODEL.FCOS.NUM_CLASSES is 8 but dataset '{prefix}_train' has 3 classes "
                       "[kiwi, mango, plum]: set MODEL.FCOS.NUM_CLASSES to 3, or to -1 to follow the data")


def test_train_and_test_datasets_with_other_classes_are_refused(own):
    files, prefix = own
    message = _load_as_the_trainer_does(*own_dataset_opts(files, prefix), "DATASETS.TEST", "('fad_synth_val',)")
    assert f"'{prefix}_train' has the 3 classes [kiwi, mango, plum] but 'fad_synth_val' has the 8 classes" in message


def test_unregistered_name_is_refused_with_a_hint_before_the_model_is_built(tmp_path):
    proc = _run("train_net.py", "--config-file", DEMO_FCOS, "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path),
                "DATASETS.TRAIN", "('my_train',)")
    line = error_line(proc)
    assert line.startswith("error: DATASETS.TRAIN: dataset 'my_train' is not registered; name a COCO-format "
                           "dataset by its files with DATASETS.COCO")
    assert "FCOS(" not in proc.stdout + proc.stderr, "the model was not built"
    assert not os.listdir(tmp_path)


def test_a_name_registered_again_with_other_files_is_refused(own):
    files, prefix = own
    cpu_cfg(DEMO_FCOS, *own_dataset_opts(files, prefix))
    cpu_cfg(DEMO_FCOS, *own_dataset_opts(files, prefix))  # the same files again: nothing to do
    swapped = {"train": files["val"], "val": files["train"]}
    registered = f"dataset '{prefix}_train' is registered already, with json_file '{files['train'][0]}'"
    with pytest.raises(DatasetError, match=re.escape(registered)):
        cpu_cfg(DEMO_FCOS, *own_dataset_opts(swapped, prefix))
    with pytest.raises(DatasetError, match="dataset 'coco_2017_val' is registered already"):
        cpu_cfg(DEMO_FCOS, "DATASETS.COCO", repr([["coco_2017_val", *files["val"]]]))


def test_a_malformed_entry_is_named(own):
    with pytest.raises(DatasetError, match=r"DATASETS.COCO\[0\]: \['x', 'y'\] is not allowed: "
                                           r"\[name, json_file, image_root\]"):
        cpu_cfg(DEMO_FCOS, "DATASETS.COCO", "[['x', 'y']]")


def _edit(json_file, change):
    with open(json_file) as f:
        data = json.load(f)
    data = change(data)
    with open(json_file, "w") as f:
        json.dump(data, f)


@pytest.mark.parametrize("case, expected", [
    ("missing file", "annotation file '{train}' does not exist"),
    ("not COCO", "annotation file '{train}' holds a JSON list, not an object with 'images', 'annotations', "
                 "'categories'"),
    ("no categories", "annotation file '{train}' is empty: 0 categories"),
    ("no annotations", "annotation file '{train}' is empty: 0 annotations"),
    # of the 7 images with annotations (DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    ("missing image", "image '{image}' does not exist (1 of 7 images are missing)"),
])
def test_bad_input_is_one_line_naming_the_file(own, case, expected):
    files, prefix = own
    train_json, train_root = files["train"]
    image = os.path.join(train_root, "train_000120.jpg")
    if case == "missing file":
        os.remove(train_json)
    elif case == "not COCO":
        _edit(train_json, lambda d: [d])
    elif case == "no categories":
        _edit(train_json, lambda d: {**d, "categories": []})
    elif case == "no annotations":
        _edit(train_json, lambda d: {**d, "annotations": []})
    else:
        os.remove(image)
    message = _load_as_the_trainer_does(*own_dataset_opts(files, prefix))
    assert message.startswith(f"error: Dataset '{prefix}_train': ")
    assert expected.format(train=train_json, image=image) in message


def test_boxes_without_area_are_skipped_and_counted(own, caplog):
    files, prefix = own
    train_json = files["train"][0]

    def degenerate(data):
        data["annotations"][0]["bbox"][2] = 0  # width 0
        data["annotations"][1]["bbox"][3] = 0  # height 0
        data["annotations"][2]["bbox"][3] = -4  # negative height
        return data

    _edit(train_json, degenerate)
    cfg = cpu_cfg(DEMO_FCOS, *own_dataset_opts(files, prefix))
    with _logs_of("fad_d2", handler=caplog.handler):
        dicts = training_dataset_dicts(cfg)
    assert sum(len(d["annotations"]) for d in dicts) == 18 - 3
    assert (f"Dataset '{prefix}_train': annotation file '{train_json}': skipped 3 annotation box(es): "
            "2 with a width or height of 0, 1 with a negative width or height") in caplog.text


@pytest.mark.parametrize("relpath", sorted(p for p in os.listdir(os.path.join(CONFIGS, "Search"))) +
                         ["Demo/search_fad_fcos_R_18_FPN_demo.yaml"])
def test_every_search_config_names_a_training_config_of_its_head(relpath):
    relpath = relpath if "/" in relpath else f"Search/{relpath}"
    check_train_config(cpu_cfg(config_path(relpath)), [])


def test_export_help_names_the_dataset_it_checks_on(capsys):
    with pytest.raises(SystemExit):
        export_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "images of the config's first test dataset (``DATASETS.TEST[0]``, or ``--dataset``" in text
    assert "embedded" not in text
