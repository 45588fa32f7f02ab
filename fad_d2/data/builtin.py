"""Registration of the embedded dataset as ``fad_synth_train`` and ``fad_synth_val``.

Nothing is generated on import: the split is generated (or found in its cache) the first time
``DatasetCatalog.get(name)`` runs, under the data root of that moment (``$FAD_D2_DATA``, else
``$DETECTRON2_DATASETS/fad_synth``; ``$FAD_D2_SYNTH_SMALL=1`` picks the small test splits). Loading
then sets ``json_file`` and ``image_root`` in the metadata, which ``COCOEvaluator`` reads; build the
evaluator after the data loader (as ``DefaultTrainer`` does), or it converts the dicts itself.

COCO, LVIS, Pascal VOC, ... are registered by Detectron2 itself on import of ``detectron2.data``;
see :func:`fad_d2.data.checks.check_dataset_available` for a clear error when their files are
absent.
"""
import functools

from detectron2.data import DatasetCatalog, MetadataCatalog

from .checks import load_coco_json_checked
from .shapes import CLASS_NAMES

FAD_SYNTH_DATASETS = {"fad_synth_train": "train", "fad_synth_val": "val"}  # name -> split


def _set_paths(name, json_file, image_root):
    """Point the metadata of ``name`` at the files just loaded (they move with $FAD_D2_DATA)."""
    metadata = MetadataCatalog.get(name)
    if metadata.get("json_file") == json_file and metadata.get("image_root") == image_root:
        return
    values = metadata.as_dict()
    values.pop("name")
    values.update(json_file=json_file, image_root=image_root)
    MetadataCatalog.remove(name)  # Metadata refuses to change a value in place
    MetadataCatalog.get(name).set(**values)


def load_fad_synth(name, split):
    """Dataset dicts of ``split``, generating the split first if it is not cached yet."""
    # Imported here, not at module level: `python -m fad_d2.data.synthetic` must find the module
    # not yet imported by the package.
    from .synthetic import ensure_split

    files = ensure_split(split)
    _set_paths(name, files.json_file, files.image_root)
    return load_coco_json_checked(files.json_file, files.image_root, name)


def register_fad_synth():
    """Register the train and val splits (a no-op for names already registered)."""
    for name, split in FAD_SYNTH_DATASETS.items():
        if name in DatasetCatalog:
            continue
        DatasetCatalog.register(name, functools.partial(load_fad_synth, name, split))
        MetadataCatalog.get(name).set(
            thing_classes=list(CLASS_NAMES),
            evaluator_type="coco",
            generated_on_demand=True,  # check_dataset_available skips it
            data_env="FAD_D2_DATA",
        )


register_fad_synth()
