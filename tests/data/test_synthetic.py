"""The embedded dataset generator: determinism, COCO validity, scales, occlusion, CLI."""
import itertools
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from fad_d2.data import synthetic
from fad_d2.data.shapes import CLASS_NAMES

TINY = synthetic.SynthConfig(num_images=4, seed=5)


@pytest.fixture(scope="module")
def sample():
    """40 images of the default train parameters, in memory."""
    config = synthetic.SPLITS["train"]
    return [synthetic.generate_image(config, index) for index in range(40)]


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tiny"))
    return synthetic.ensure_split("val", TINY, root=root, progress=False)


def _decode(segmentation, height, width):
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(segmentation, height, width)))


def _read_tree(directory):
    files = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                files[os.path.relpath(os.path.join(folder, name), directory)] = f.read()
    return files


def test_same_seed_same_image_and_annotations():
    image_a, annotations_a = synthetic.generate_image(TINY, 3)
    image_b, annotations_b = synthetic.generate_image(TINY, 3)
    assert np.array_equal(image_a, image_b)
    assert annotations_a == annotations_b
    other, _ = synthetic.generate_image(synthetic.SynthConfig(num_images=4, seed=6), 3)
    assert other.shape != image_a.shape or not np.array_equal(other, image_a)


def test_written_split_is_byte_identical(tmp_path, tiny_split):
    again = synthetic.ensure_split("val", TINY, root=str(tmp_path), progress=False)
    assert _read_tree(again.directory) == _read_tree(tiny_split.directory)
    reseeded = synthetic.SynthConfig(num_images=4, seed=6)
    other = synthetic.ensure_split("val", reseeded, root=str(tmp_path), progress=False)
    assert other.directory != again.directory
    assert open(other.json_file, "rb").read() != open(again.json_file, "rb").read()


def test_coco_valid(tiny_split):
    coco = COCO(tiny_split.json_file)
    assert len(coco.getImgIds()) == TINY.num_images
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASS_NAMES)
    for annotation in coco.loadAnns(coco.getAnnIds()):
        image = coco.imgs[annotation["image_id"]]
        assert os.path.isfile(os.path.join(tiny_split.image_root, image["file_name"]))
        x, y, w, h = annotation["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= image["width"] and y + h <= image["height"]
        assert annotation["area"] > 0 and annotation["iscrowd"] == 0
        polygons = annotation["segmentation"]
        assert polygons and all(len(p) % 2 == 0 and len(p) >= 6 for p in polygons)
        mask = _decode(polygons, image["height"], image["width"])
        assert mask.sum() == annotation["area"]
        ys, xs = np.nonzero(mask)
        assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [x, y, x + w, y + h]


def test_image_files_match_json(tiny_split):
    coco = json.load(open(tiny_split.json_file))
    for image in coco["images"]:
        pixels = cv2.imread(os.path.join(tiny_split.image_root, image["file_name"]))
        assert pixels.shape == (image["height"], image["width"], 3)


def test_scales_classes_and_crowding(sample):
    annotations = [a for _, image_annotations in sample for a in image_annotations]
    scales = [synthetic.scale_of(a["area"]) for a in annotations]
    for name, _, _ in synthetic.AREA_RANGES:
        assert scales.count(name) >= 0.1 * len(annotations), name
    assert len({a["category_id"] for a in annotations}) >= 6
    per_image = [len(image_annotations) for _, image_annotations in sample]
    assert min(per_image) >= 2 and np.mean(per_image) >= 4 and max(per_image) >= 8
    sides = [(max(a["bbox"][2:]), min(image.shape[:2])) for image, aa in sample for a in aa]
    assert min(side for side, _ in sides) <= 10
    assert any(side >= 0.6 * image_side for side, image_side in sides)


def _overlap(a, b):
    ax, ay, aw, ah = a["bbox"]
    bx, by, bw, bh = b["bbox"]
    return min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)


def test_occlusion_leaves_disjoint_visible_masks(sample):
    overlapping = 0
    for image, annotations in sample:
        height, width = image.shape[:2]
        coverage = sum(_decode(a["segmentation"], height, width).astype(int) for a in annotations)
        assert coverage.max() == 1  # every pixel belongs to at most one visible instance
        overlapping += any(_overlap(a, b) for a, b in itertools.combinations(annotations, 2))
    assert overlapping >= 0.5 * len(sample)


def test_mask_to_polygons_is_exact_with_holes_and_specks():
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = rng.random((30, 40)) < 0.55
        mask[5:25, 5:35] |= rng.random((20, 30)) < 0.9
        polygons = synthetic.mask_to_polygons(mask)
        assert np.array_equal(_decode(polygons, 30, 40).astype(bool), mask)
    ring = np.zeros((20, 20), bool)
    ring[2:18, 2:18] = True
    ring[6:14, 6:14] = False
    (polygon,) = synthetic.mask_to_polygons(ring)
    assert _decode([polygon], 20, 20).sum() == 16 * 16 - 8 * 8


def test_cli_prints_stats(tmp_path, capsys):
    assert synthetic.main(["--out", str(tmp_path), "--small", "--splits", "val", "--stats"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out
    for word in ("val: 12 images", "small", "medium", "large", *CLASS_NAMES):
        assert word in out
