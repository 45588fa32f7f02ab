"""Datasets: the embedded multi-scale shapes dataset and checks for dataset files.

Importing this package registers ``fad_synth_train`` and ``fad_synth_val`` (generated on first
use, see :mod:`fad_d2.data.builtin`). The generator itself is :mod:`fad_d2.data.synthetic`, which
is not imported here so that ``python -m fad_d2.data.synthetic`` runs it cleanly.
"""
from . import builtin  # noqa: F401  (registration only)
from .builtin import FAD_SYNTH_DATASETS, load_fad_synth, register_fad_synth
from .checks import (REGISTER_HINT, check_dataset_available, check_images_exist, coco_category_names,
                     load_coco_json_checked)
from .shapes import CLASS_NAMES

__all__ = [
    "CLASS_NAMES",
    "FAD_SYNTH_DATASETS",
    "REGISTER_HINT",
    "check_dataset_available",
    "check_images_exist",
    "coco_category_names",
    "load_coco_json_checked",
    "load_fad_synth",
    "register_fad_synth",
]
