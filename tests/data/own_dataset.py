"""A small COCO-format dataset in a real dataset's shape, written by the tests (not the embedded
generator): category ids 3, 7 and 11 listed out of order, JPEG images of different sizes and
aspect ratios, polygon masks, crowd annotations (RLE), and an image without annotations."""
import json
import os

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image, ImageDraw

# id -> (name, colour); the names sort differently from the ids
CATEGORIES = {7: ("mango", (230, 140, 20)), 3: ("kiwi", (60, 170, 40)), 11: ("plum", (120, 40, 150))}
CLASS_NAMES = [CATEGORIES[i][0] for i in sorted(CATEGORIES)]  # Detectron2's order: by id
# (width, height) of the images; the objects of image i: (category id, x, y, w, h)
TRAIN_IMAGES = [((160, 120), [(3, 10, 12, 60, 50), (7, 90, 40, 50, 60)]),
                ((96, 144), [(11, 20, 30, 50, 80)]),
                ((128, 128), [(7, 8, 8, 40, 40), (3, 70, 60, 48, 52), (11, 30, 80, 30, 30)]),
                ((200, 100), [(11, 120, 10, 60, 70)]),
                ((120, 160), []),  # no annotation
                ((144, 96), [(3, 40, 20, 70, 50)]),
                ((112, 112), [(7, 30, 30, 60, 60)]),
                ((176, 132), [(11, 10, 10, 50, 50), (3, 100, 60, 60, 60)])]
VAL_IMAGES = [((140, 110), [(3, 15, 15, 55, 45), (11, 80, 40, 50, 55)]),
              ((100, 150), [(7, 20, 40, 60, 70)]),
              ((150, 150), [(11, 30, 30, 70, 70)])]


def _polygon(x, y, w, h):
    """A diamond inside the box (a polygon mask whose box is the box)."""
    return [x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2]


def _write_split(root, split, images, first_annotation_id):
    os.makedirs(os.path.join(root, split), exist_ok=True)
    coco = {"images": [], "annotations": [],
            "categories": [{"id": i, "name": name, "supercategory": "fruit"} for i, (name, _) in CATEGORIES.items()]}
    rng = np.random.default_rng(len(split))
    annotation_id = first_annotation_id
    for index, ((width, height), objects) in enumerate(images):
        image_id = 100 + 10 * index  # not 1..N
        canvas = Image.fromarray(rng.integers(90, 140, (height, width, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(canvas)
        for category, x, y, w, h in objects:
            polygon = _polygon(x, y, w, h)
            draw.polygon(polygon, fill=CATEGORIES[category][1])
            coco["annotations"].append({"id": annotation_id, "image_id": image_id, "category_id": category,
                                        "bbox": [x, y, w, h], "area": w * h / 2, "iscrowd": 0,
                                        "segmentation": [polygon]})
            annotation_id += 1
        if objects:  # a crowd region (RLE) in the corner of every annotated image
            crowd = np.zeros((height, width), dtype=np.uint8, order="F")
            crowd[height - 12:height - 2, 2:14] = 1
            rle = mask_util.encode(crowd)
            coco["annotations"].append({"id": annotation_id, "image_id": image_id, "category_id": objects[0][0],
                                        "bbox": [2, height - 12, 12, 10], "area": 120, "iscrowd": 1,
                                        "segmentation": {"size": [height, width],
                                                         "counts": rle["counts"].decode("ascii")}})
            annotation_id += 1
        file_name = f"{split}_{image_id:06d}.jpg"
        canvas.save(os.path.join(root, split, file_name), quality=90)
        coco["images"].append({"id": image_id, "file_name": file_name, "width": width, "height": height})
    json_file = os.path.join(root, f"{split}.json")
    with open(json_file, "w") as f:
        json.dump(coco, f)
    return json_file, os.path.join(root, split)


def write_own_dataset(root):
    """Write the train and val splits under ``root``: ``{"train": (json_file, image_root), "val": ...}``."""
    return {"train": _write_split(str(root), "train", TRAIN_IMAGES, 1),
            "val": _write_split(str(root), "val", VAL_IMAGES, 1000)}


def own_dataset_opts(files, prefix):
    """Overrides naming ``files`` (:func:`write_own_dataset`) as ``<prefix>_train`` and
    ``<prefix>_val`` in ``DATASETS.COCO``, ``DATASETS.TRAIN`` and ``DATASETS.TEST``."""
    entries = [[f"{prefix}_{split}", *files[split]] for split in ("train", "val")]
    return ["DATASETS.COCO", repr(entries), "DATASETS.TRAIN", f"('{prefix}_train',)",
            "DATASETS.TEST", f"('{prefix}_val',)"]
