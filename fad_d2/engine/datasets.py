"""Datasets named in the config: ``DATASETS.COCO`` registered in every process, and the number of
classes taken from the data.

:func:`prepare_datasets` runs inside :func:`fad_d2.engine.setup.load_cfg`, so that every process
that loads a config (``train_net.py``, ``search_net.py``, each DDP worker that ``launch`` spawns,
``python -m fad_d2.analyze``, ``python -m fad_d2.export``, the benchmarks) registers the same
datasets and builds its head for the same classes, and a dataset name that is not registered
stops the program before a model is built.
"""
import functools
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..config import NUM_CLASSES_FROM_DATA
from ..data import REGISTER_HINT, coco_category_names, load_coco_json_checked
from ..modeling.heads import cfg_value
from ..errors import DatasetError

# The NUM_CLASSES key that each meta-architecture builds its classifier from.
NUM_CLASSES_KEYS = {
    "FCOS": "MODEL.FCOS.NUM_CLASSES",
    "RetinaNet": "MODEL.RETINANET.NUM_CLASSES",
    "SelectableHeadRetinaNet": "MODEL.RETINANET.NUM_CLASSES",
    "GeneralizedRCNN": "MODEL.ROI_HEADS.NUM_CLASSES",
}


def coco_entries(cfg):
    """``[(name, absolute json_file, absolute image_root), ...]`` of ``DATASETS.COCO``."""
    ret = []
    for index, entry in enumerate(cfg.DATASETS.COCO):
        if not (isinstance(entry, (list, tuple)) and len(entry) == 3
                and all(isinstance(v, str) and v for v in entry)):
            raise DatasetError(f"DATASETS.COCO[{index}]: {entry!r} is not allowed: "
                               "[name, json_file, image_root], three non-empty strings")
        name, json_file, image_root = entry
        ret.append((name, os.path.abspath(json_file), os.path.abspath(image_root)))
    return ret


def _abspath(path):
    return os.path.abspath(path) if isinstance(path, str) else path


def register_coco_dataset(name, json_file, image_root):
    """Register the COCO instances file ``json_file`` (images under ``image_root``) as dataset
    ``name``, as Detectron2's ``register_coco_instances`` does (metadata ``json_file``,
    ``image_root``, ``evaluator_type`` ``"coco"``), loaded by
    :func:`fad_d2.data.load_coco_json_checked`.  A name registered already with the same two
    paths is left as it is (a config loaded again in one process); with other files, or by
    another loader, it is a :class:`DatasetError`."""
    if name in DatasetCatalog:
        metadata = MetadataCatalog.get(name)
        registered = (_abspath(metadata.get("json_file")), _abspath(metadata.get("image_root")))
        if registered == (json_file, image_root):
            return
        raise DatasetError(f"DATASETS.COCO: dataset '{name}' is registered already, with json_file {registered[0]!r} "
                           f"and image_root {registered[1]!r}, not {json_file!r} and {image_root!r}: "
                           "give this one another name")
    DatasetCatalog.register(name, functools.partial(load_coco_json_checked, json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco")


def dataset_classes(name):
    """The class names of registered dataset ``name``: its metadata's ``thing_classes``, else the
    categories of its metadata's ``json_file`` (then kept as its ``thing_classes``, which
    Detectron2's COCO loader sets to the same list); ``None`` when neither is there."""
    metadata = MetadataCatalog.get(name)
    classes = metadata.get("thing_classes")
    if classes is None and isinstance(metadata.get("json_file"), str):
        classes = coco_category_names(metadata.json_file, name)
        metadata.thing_classes = classes
    return classes


def _check_registered(cfg):
    for key in ("TRAIN", "TEST"):
        for name in cfg.DATASETS[key]:
            if name not in DatasetCatalog:
                raise DatasetError(f"DATASETS.{key}: dataset '{name}' is not registered; {REGISTER_HINT}")


def _shown(classes):
    return ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")


def data_classes(cfg):
    """``(dataset name, class names)`` of the first dataset of ``DATASETS.TRAIN`` then
    ``DATASETS.TEST`` whose classes are known (``(None, None)`` if none), after checking that every
    dataset with known classes has the same ones (a detector is trained and evaluated on one list
    of classes, in one order)."""
    known = [(name, dataset_classes(name)) for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST)]
    known = [(name, classes) for name, classes in known if classes is not None]
    if not known:
        return None, None
    first, classes = known[0]
    for name, other in known[1:]:
        if list(other) != list(classes):
            raise DatasetError(f"DATASETS: '{first}' has the {len(classes)} classes [{_shown(classes)}] but '{name}' "
                               f"has the {len(other)} classes [{_shown(other)}]: train and test datasets need the "
                               "same classes in the same order")
    return first, list(classes)


def set_num_classes(cfg):
    """Set every ``NUM_CLASSES`` of :data:`NUM_CLASSES_KEYS` that is
    :data:`fad_d2.config.NUM_CLASSES_FROM_DATA` to the number of classes of the data
    (:func:`data_classes`); the key that the meta-architecture reads, if set to another number,
    must equal it (:class:`DatasetError` naming both numbers)."""
    name, classes = data_classes(cfg)
    read_key = NUM_CLASSES_KEYS.get(cfg.MODEL.META_ARCHITECTURE)
    for key in sorted(set(NUM_CLASSES_KEYS.values())):
        node_key, leaf = key.rsplit(".", 1)
        value = cfg_value(cfg, key)
        if value == NUM_CLASSES_FROM_DATA and classes is not None:
            setattr(cfg_value(cfg, node_key), leaf, len(classes))
        elif key == read_key and classes is not None and value != len(classes):
            raise DatasetError(f"{key} is {value} but dataset '{name}' has {len(classes)} classes "
                               f"[{_shown(classes)}]: set {key} to {len(classes)}, or to "
                               f"{NUM_CLASSES_FROM_DATA} to follow the data")
    if read_key is not None and cfg_value(cfg, read_key) == NUM_CLASSES_FROM_DATA:
        raise DatasetError(f"{read_key} is {NUM_CLASSES_FROM_DATA} (the number of classes of the data), but no dataset "
                           "of DATASETS.TRAIN or DATASETS.TEST says how many classes it has: set it")


def prepare_datasets(cfg):
    """Register ``DATASETS.COCO`` (:func:`register_coco_dataset`), check that every dataset of
    ``DATASETS.TRAIN`` and ``DATASETS.TEST`` is registered, and set the number of classes
    (:func:`set_num_classes`); ``cfg`` must not be frozen."""
    for entry in coco_entries(cfg):
        register_coco_dataset(*entry)
    _check_registered(cfg)
    set_num_classes(cfg)
