"""One-line, explicit errors for datasets that are missing, corrupted or empty.

Detectron2 registers COCO, LVIS, Pascal VOC, Cityscapes, ... with paths under
``$DETECTRON2_DATASETS`` (default ``./datasets``) and only fails deep inside loading when they are
absent; :func:`check_dataset_available` says up front which path is missing and what to set.
:func:`load_coco_json_checked` is Detectron2's ``load_coco_json`` after a validation of the file
that names the file and the first thing wrong with it, skipping boxes without area (counted);
:func:`coco_category_names` reads only a file's categories.
"""
import json
import logging
import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from ..errors import DatasetError

logger = logging.getLogger(__name__)

# Metadata keys under which Detectron2's builtin datasets (and ours) keep their files.
_PATH_KEYS = (
    "json_file",
    "image_root",
    "dirname",
    "image_dir",
    "gt_dir",
    "sem_seg_root",
    "panoptic_root",
    "panoptic_json",
)
# How to name a dataset that is not registered (in the errors that find one).
REGISTER_HINT = ("name a COCO-format dataset by its files with DATASETS.COCO "
                 "\"[['NAME', 'path/to/annotations.json', 'path/to/images']]\"")
_REQUIRED = {
    "images": ("id", "file_name", "height", "width"),
    "annotations": ("image_id", "bbox", "category_id"),
    "categories": ("id", "name"),
}


def _env_hint(env):
    value = os.environ.get(env)
    if value:
        return f"{env}={value!r}"
    return f"{env} is unset, so the default './datasets' below {os.getcwd()!r} is used"


def check_dataset_available(name: str) -> None:
    """Raise a one-line error unless the files of registered dataset ``name`` exist.

    Checks every path-valued metadata entry (``json_file``, ``image_root``, ``dirname``, ...).
    Datasets generated on demand (metadata ``generated_on_demand``, e.g. ``fad_synth_*``) pass.

    Raises:
        DatasetError: ``name`` is not registered.
        FileNotFoundError: a file or folder of ``name`` is missing; the message names the dataset,
            the path and the environment variable that relocates it.
    """
    if name not in DatasetCatalog:
        raise DatasetError(
            f"Dataset '{name}' is not registered; registered datasets include: "
            + ", ".join(sorted(DatasetCatalog.list())[:12])
            + f", ...; {REGISTER_HINT}"
        )
    metadata = MetadataCatalog.get(name)
    if metadata.get("generated_on_demand", False):
        return
    env = metadata.get("data_env", "DETECTRON2_DATASETS")
    for key in _PATH_KEYS:
        path = metadata.get(key)
        if isinstance(path, str) and not os.path.exists(path):
            raise FileNotFoundError(
                f"Dataset '{name}': {key} '{path}' does not exist; set {env} to the folder that "
                f"holds the datasets ({_env_hint(env)})"
            )


def check_images_exist(dataset_dicts, dataset_names) -> None:
    """Raise ``FileNotFoundError`` naming the first image of ``dataset_dicts`` (Detectron2 records
    with ``file_name``) that does not exist, and how many are missing: checked before training
    starts instead of when the loader reaches the image (existence only, no decoding)."""
    missing = [d["file_name"] for d in dataset_dicts if not os.path.isfile(d["file_name"])]
    if missing:
        raise FileNotFoundError(
            f"Dataset {', '.join(map(repr, dataset_names))}: image '{missing[0]}' does not exist "
            f"({len(missing)} of {len(dataset_dicts)} images are missing)"
        )


def _problem(data, keys=tuple(_REQUIRED)):
    """The first thing that keeps ``data`` from being a usable COCO instances dict, or None;
    only its ``keys`` are checked when they are not all of ``_REQUIRED``."""
    if not isinstance(data, dict):
        kind = type(data).__name__
        return f"holds a JSON {kind}, not an object with 'images', 'annotations', 'categories'"
    for key in keys:
        fields = _REQUIRED[key]
        if key not in data:
            return f"is missing key '{key}'"
        if not isinstance(data[key], list):
            return f"has '{key}' of type {type(data[key]).__name__}, expected a list"
        if not data[key]:
            return f"is empty: 0 {key}"
        for index, entry in enumerate(data[key]):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if missing:
                return f"has {key}[{index}] without key '{missing[0]}'"
    if set(keys) != set(_REQUIRED):
        return None
    image_ids = {image["id"] for image in data["images"]}
    category_ids = {category["id"] for category in data["categories"]}
    for index, annotation in enumerate(data["annotations"]):
        bbox, image_id = annotation["bbox"], annotation["image_id"]
        category_id = annotation["category_id"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            return f"has annotations[{index}] with bbox {bbox!r}, expected [x, y, width, height]"
        if image_id not in image_ids:
            return f"has annotations[{index}] with image_id {image_id!r} not in 'images'"
        if category_id not in category_ids:
            return f"has annotations[{index}] with category_id {category_id!r} not in 'categories'"
    return None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _where(json_file, dataset_name):
    where = f"annotation file '{json_file}'"
    return f"Dataset '{dataset_name}': {where}" if dataset_name else where


def _read_json(json_file, where):
    """The parsed content of ``json_file`` (``where`` names it in the errors)."""
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"{where} does not exist")
    try:
        with open(json_file, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DatasetError(f"{where} is not valid JSON: not UTF-8 text at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{where} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    return data


def coco_category_names(json_file, dataset_name=None):
    """The category names of COCO instances file ``json_file`` in the order of their ids (the
    order of Detectron2's contiguous class ids), checking only that it is a COCO object with
    categories: the rest of the file is checked when the dataset is loaded.

    Raises:
        FileNotFoundError: ``json_file`` does not exist.
        DatasetError: it is not JSON, not a JSON object, or has no (or malformed) 'categories'.
    """
    where = _where(json_file, dataset_name)
    data = _read_json(json_file, where)
    problem = _problem(data, keys=("categories",))
    if problem:
        raise DatasetError(f"{where} {problem}")
    return [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])]


def _skip_empty_boxes(dataset_dicts, where):
    """Drop the annotations whose box has a width or height of 0 or less (Detectron2 would drop
    them in the data loader without a word) and log how many, per reason."""
    skipped = {"a width or height of 0": 0, "a negative width or height": 0}
    for record in dataset_dicts:
        kept = []
        for annotation in record["annotations"]:
            _, _, width, height = annotation["bbox"]
            if min(width, height) < 0:
                skipped["a negative width or height"] += 1
            elif min(width, height) == 0:
                skipped["a width or height of 0"] += 1
            else:
                kept.append(annotation)
        record["annotations"] = kept
    counts = [f"{n} with {reason}" for reason, n in skipped.items() if n]
    if counts:
        logger.warning("%s: skipped %s annotation box(es): %s", where, sum(skipped.values()), ", ".join(counts))
    return dataset_dicts


def load_coco_json_checked(json_file, image_root, dataset_name=None, extra_annotation_keys=None):
    """Validate a COCO instances file, load it with Detectron2's ``load_coco_json`` and skip
    (with a logged count per reason) the annotations whose box has no area.

    Raises:
        FileNotFoundError: ``json_file`` or ``image_root`` does not exist.
        DatasetError: ``json_file`` is not valid JSON, lacks a key or field, has 0 images,
            annotations or categories, has a box that is not 4 numbers, or refers to unknown
            image/category ids. The one-line message names the dataset, the file and the problem.
    """
    where = _where(json_file, dataset_name)
    data = _read_json(json_file, where)
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"{where}: image folder '{image_root}' does not exist")
    problem = _problem(data)
    if problem:
        raise DatasetError(f"{where} {problem}")
    del data
    return _skip_empty_boxes(load_coco_json(json_file, image_root, dataset_name, extra_annotation_keys), where)
