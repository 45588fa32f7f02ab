"""fad_synth_train / fad_synth_val in Detectron2's catalogs, and COCOEvaluator on them."""
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import COCOEvaluator
from detectron2.structures import Boxes, BoxMode, Instances

import fad_d2.data  # noqa: F401  (registration)
from fad_d2.data import CLASS_NAMES, check_dataset_available, synthetic


@pytest.fixture
def small_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FAD_D2_DATA", str(tmp_path))
    monkeypatch.setenv("FAD_D2_SYNTH_SMALL", "1")
    return tmp_path


def test_registered_on_import():
    for name in ("fad_synth_train", "fad_synth_val"):
        assert name in DatasetCatalog.list()
        metadata = MetadataCatalog.get(name)
        assert metadata.thing_classes == list(CLASS_NAMES)
        assert metadata.evaluator_type == "coco"
        check_dataset_available(name)  # generated on demand: never missing


def test_get_generates_in_data_root(small_data):
    dicts = DatasetCatalog.get("fad_synth_val")
    assert len(dicts) == synthetic.SMALL_SPLITS["val"].num_images
    metadata = MetadataCatalog.get("fad_synth_val")
    assert metadata.json_file.startswith(str(small_data)) and os.path.isfile(metadata.json_file)
    assert metadata.image_root.startswith(str(small_data))
    record = dicts[0]
    assert os.path.isfile(record["file_name"]) and record["annotations"]
    annotation = record["annotations"][0]
    assert annotation["bbox_mode"] == BoxMode.XYWH_ABS
    assert 0 <= annotation["category_id"] < len(CLASS_NAMES)
    assert isinstance(annotation["segmentation"], list)


def _ground_truth_as_predictions(record):
    height, width = record["height"], record["width"]
    annotations = record["annotations"]
    boxes = [BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in annotations]
    masks = [
        mask_util.decode(mask_util.merge(mask_util.frPyObjects(a["segmentation"], height, width)))
        for a in annotations
    ]
    instances = Instances((height, width))
    instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    instances.scores = torch.ones(len(annotations))
    instances.pred_classes = torch.tensor([a["category_id"] for a in annotations])
    instances.pred_masks = torch.from_numpy(np.stack(masks)).bool()
    return {"instances": instances}


def test_coco_evaluator_scores_ground_truth_perfectly(small_data, tmp_path):
    dicts = DatasetCatalog.get("fad_synth_val")
    output_dir = str(tmp_path / "eval")
    evaluator = COCOEvaluator("fad_synth_val", tasks=("bbox", "segm"), output_dir=output_dir)
    evaluator.reset()
    for record in dicts:
        prediction = _ground_truth_as_predictions(record)
        evaluator.process([{"image_id": record["image_id"]}], [prediction])
    results = evaluator.evaluate()
    assert results["bbox"]["AP"] == pytest.approx(100.0)
    assert results["segm"]["AP"] == pytest.approx(100.0)
