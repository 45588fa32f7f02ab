"""One-line errors for missing, corrupted and empty datasets."""
import json

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

import fad_d2.data  # noqa: F401  (registration)
from fad_d2.data import check_dataset_available, load_coco_json_checked
from fad_d2.errors import DatasetError


def _one_line(error):
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture
def coco_file(tmp_path):
    """A minimal valid COCO file; returns (path, its dict, image folder)."""
    (tmp_path / "images").mkdir()
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [1, 1, 4, 4], "category_id": 1, "area": 16}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data, indent=1))
    return path, data, str(tmp_path / "images")


@pytest.fixture
def missing_dataset(tmp_path):
    name = "fad_test_missing_coco"
    register_coco_instances(name, {}, str(tmp_path / "nowhere" / "a.json"), str(tmp_path / "img"))
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_valid_file_loads(coco_file):
    path, _, images = coco_file
    (record,) = load_coco_json_checked(str(path), images)
    assert len(record["annotations"]) == 1


def test_missing_registered_dataset(missing_dataset, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        check_dataset_available(missing_dataset)
    message = _one_line(error)
    assert missing_dataset in message and "DETECTRON2_DATASETS" in message
    assert str(tmp_path / "nowhere" / "a.json") in message


@pytest.mark.parametrize("name", ["coco_2017_val", "voc_2007_test"])
def test_missing_builtin_dataset(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Detectron2's default root "datasets" is relative
    with pytest.raises(FileNotFoundError) as error:
        check_dataset_available(name)
    message = _one_line(error)
    assert name in message and "DETECTRON2_DATASETS" in message


def test_unregistered_dataset():
    with pytest.raises(DatasetError, match="fad_no_such_dataset"):
        check_dataset_available("fad_no_such_dataset")


def test_corrupted_json(coco_file):
    path, _, images = coco_file
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(DatasetError) as error:
        load_coco_json_checked(str(path), images, "fad_test")
    message = _one_line(error)
    assert str(path) in message and "not valid JSON" in message and "line" in message
    assert "fad_test" in message


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.pop("annotations"), "missing key 'annotations'"),
        (lambda d: d.update(images=[]), "0 images"),
        (lambda d: d.update(annotations=[]), "0 annotations"),
        (lambda d: d["annotations"][0].pop("bbox"), "annotations[0] without key 'bbox'"),
        (lambda d: d["annotations"][0].update(category_id=9), "category_id 9"),
    ],
)
def test_broken_or_empty_content(coco_file, change, expected):
    path, data, images = coco_file
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as error:
        load_coco_json_checked(str(path), images)
    message = _one_line(error)
    assert str(path) in message and expected in message


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_coco_json_checked(str(tmp_path / "none.json"), str(tmp_path), "fad_test")
    assert "none.json" in _one_line(error)


def test_corrupted_synthetic_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FAD_D2_DATA", str(tmp_path))
    monkeypatch.setenv("FAD_D2_SYNTH_SMALL", "1")
    DatasetCatalog.get("fad_synth_val")
    json_file = MetadataCatalog.get("fad_synth_val").json_file
    with open(json_file, "r+") as f:
        f.truncate(100)
    with pytest.raises(ValueError) as error:
        DatasetCatalog.get("fad_synth_val")
    message = _one_line(error)
    assert "fad_synth_val" in message and json_file in message
