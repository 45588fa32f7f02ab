"""The embedded dataset: seeded scenes of shapes at many scales, written once as COCO JSON + JPEGs.

Every image is drawn from its own generator ``np.random.default_rng([seed, index])``, so a split is
the same on every run (given the NumPy and OpenCV versions) and a smaller split is a prefix of a
larger one with the same seed.
A scene is a textured background (gradient, coarse colour noise, stripes, soft blobs, thin lines)
with 3-10 shapes of :data:`fad_d2.data.shapes.SHAPE_CLASSES` drawn one over the other. Sizes are
drawn by wanted mask area so that COCO's small (< 32^2), medium and large (> 96^2) ranges all hold
many instances. Each annotation describes the *visible* part of its shape: mask, polygons, box
and area are those of the pixels still showing after later shapes covered it; a shape that is
almost hidden gets no annotation.

Polygons trace pixel corners, so COCO's rasterisation of an annotation's ``segmentation``
gives back exactly its visible mask (holes included, joined to the outline by a zero-width cut)
and ``area`` equals the decoded mask's area.

Cache: a split lives in ``<root>/<split>-v<version>-<hash of its parameters>/`` with
``annotations.json``, ``images/`` and ``meta.json``; ``root`` is ``$FAD_D2_DATA``, else
``$DETECTRON2_DATASETS/fad_synth`` (default ``datasets/fad_synth``). A split is generated into a
hidden temporary folder and renamed into place when complete, so an interrupted run leaves nothing
that looks finished. ``FAD_D2_SYNTH_SMALL=1`` selects :data:`SMALL_SPLITS` (for tests).

    python -m fad_d2.data.synthetic [--out DIR] [--small] [--stats]
"""
import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .shapes import CLASS_NAMES, SHAPE_CLASSES, place, polygons_extent, rasterize

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump whenever a change alters the generated files
DATA_ENV = "FAD_D2_DATA"
SMALL_ENV = "FAD_D2_SYNTH_SMALL"

# COCO's area ranges; a wanted area is drawn inside one of them, away from its borders.
AREA_RANGES = (("small", 0.0, 32.0**2), ("medium", 32.0**2, 96.0**2), ("large", 96.0**2, math.inf))
_WANTED_AREA = ((0.0, 0.85 * 32**2), (1.15 * 32**2, 0.85 * 96**2), (1.5 * 96**2, math.inf))
MAX_LARGE_PER_IMAGE = 3
MIN_PART_PIXELS = 5  # visible fragments smaller than this are dropped from a mask
MIN_VISIBLE_PIXELS = 12  # an instance with fewer visible pixels ...
MIN_VISIBLE_FRACTION = 0.2  # ... or this fraction of its drawn pixels still showing is dropped


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of one split; all of them (and GENERATOR_VERSION) key the cache."""

    num_images: int
    seed: int
    image_size: Tuple[int, int] = (224, 320)  # width and height each drawn from [min, max]
    objects_per_image: Tuple[int, int] = (3, 10)  # [min, max]
    min_object_side: float = 8.0  # px, longer side of the smallest shapes
    max_object_side: float = 0.9  # longest shape side, as a fraction of the shorter image side
    scale_mix: Tuple[float, float, float] = (0.38, 0.27, 0.35)  # P(wanted area small/medium/large)
    jpeg_quality: int = 90


SPLITS: Dict[str, SynthConfig] = {
    "train": SynthConfig(num_images=600, seed=1),
    "val": SynthConfig(num_images=150, seed=2),
}
SMALL_SPLITS: Dict[str, SynthConfig] = {
    "train": SynthConfig(num_images=24, seed=1),
    "val": SynthConfig(num_images=12, seed=2),
}


@dataclass(frozen=True)
class SplitFiles:
    directory: str
    json_file: str
    image_root: str


def split_config(split: str) -> SynthConfig:
    """Configuration of ``split`` ("train" / "val"), the small one if $FAD_D2_SYNTH_SMALL is set."""
    small = os.environ.get(SMALL_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return (SMALL_SPLITS if small else SPLITS)[split]


def data_root() -> str:
    """``$FAD_D2_DATA``, else ``$DETECTRON2_DATASETS/fad_synth`` (``datasets/fad_synth``)."""
    if os.environ.get(DATA_ENV):
        return os.environ[DATA_ENV]
    return os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "fad_synth")


def split_files(split: str, config: SynthConfig, root: str) -> SplitFiles:
    key = json.dumps({"version": GENERATOR_VERSION, **dataclasses.asdict(config)}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    directory = os.path.join(root, f"{split}-v{GENERATOR_VERSION}-{digest}")
    return SplitFiles(
        directory, os.path.join(directory, "annotations.json"), os.path.join(directory, "images")
    )


def ensure_split(
    split: str,
    config: Optional[SynthConfig] = None,
    root: Optional[str] = None,
    progress: bool = True,
) -> SplitFiles:
    """Files of ``split``, generating them first unless a complete copy is cached under ``root``."""
    config = config or split_config(split)
    files = split_files(split, config, os.path.abspath(root or data_root()))
    if not os.path.isfile(files.json_file):
        write_split(files.directory, split, config, progress=progress)
    return files


# ---------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------


def _random_colors(rng, count):
    """``count`` BGR colours of random hue, fairly saturated and bright."""
    hsv = np.stack(
        [rng.uniform(0, 180, count), rng.uniform(90, 255, count), rng.uniform(90, 255, count)], 1
    )
    return cv2.cvtColor(hsv[None].astype(np.uint8), cv2.COLOR_HSV2BGR)[0].astype(np.float32)


def _background(rng, height, width):
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(angle) + ys * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    start, end = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    image = start + ramp[..., None] * (end - start)
    coarse_size = tuple(int(v) for v in rng.integers(3, 9, size=2))
    coarse = rng.normal(0, rng.uniform(8, 30), size=coarse_size + (3,)).astype(np.float32)
    image += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.35:  # stripes
        period, direction = rng.uniform(6, 40), rng.uniform(0, np.pi)
        phase = (xs * np.cos(direction) + ys * np.sin(direction)) * (2 * np.pi / period)
        image += (rng.uniform(5, 25) * np.sin(phase))[..., None]
    for _ in range(int(rng.integers(0, 6))):  # soft blobs
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sx, sy = rng.uniform(6, 0.25 * min(height, width), size=2)
        distance = ((xs - cx) / sx) ** 2 + ((ys - cy) / sy) ** 2
        alpha = rng.uniform(0.3, 0.7) * np.exp(-0.5 * distance)
        image += alpha[..., None] * (rng.uniform(0, 255, 3).astype(np.float32) - image)
    for _ in range(int(rng.integers(0, 9))):  # thin lines
        p0, p1 = (tuple(int(v) for v in rng.uniform(0, (width, height))) for _ in range(2))
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cv2.line(image, p0, p1, color, int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
    return image


def _position(rng, lo, hi, limit):
    """Offset along one axis that keeps the span [lo, hi] inside [0, limit] when it fits."""
    if hi - lo >= limit:
        return limit / 2.0 - (lo + hi) / 2.0
    return rng.uniform(-lo, limit - hi)


def _sample_object(rng, config, height, width, scale_bucket):
    """Image-frame polygons of one random shape whose wanted area lies in ``scale_bucket``."""
    class_index = int(rng.integers(len(SHAPE_CLASSES)))
    shape = SHAPE_CLASSES[class_index]
    min_side = config.min_object_side
    max_side = config.max_object_side * min(height, width)
    lo, hi = _WANTED_AREA[scale_bucket]
    lo = max(lo, shape.fill_ratio * min_side**2)
    hi = max(lo, min(hi, shape.fill_ratio * max_side**2))
    area = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    side = float(np.clip(math.sqrt(area / shape.fill_ratio), min_side, max_side))
    local = place(shape.build(rng, side), rng.uniform(-shape.max_tilt, shape.max_tilt), (0, 0))
    (x0, y0), (x1, y1) = polygons_extent(local)
    offset = (_position(rng, x0, x1, width), _position(rng, y0, y1, height))
    return class_index, side, place(local, 0.0, offset)


def _paint(rng, image, mask):
    """Fill ``mask`` with a colour that stands out from what lies below, shaded and grainy."""
    ys, xs = np.nonzero(mask)
    below = image[ys, xs].mean(axis=0)
    candidates = _random_colors(rng, 6)
    contrast = np.abs(candidates - below).sum(axis=1)
    good = np.flatnonzero(contrast > 120)
    color = candidates[good[0] if len(good) else int(contrast.argmax())]
    direction = rng.normal(size=2)
    along = xs * direction[0] + ys * direction[1]
    along = (along - along.min()) / max(float(np.ptp(along)), 1.0) - 0.5
    shade = 1.0 + rng.uniform(0.0, 0.5) * along
    grain = rng.normal(0.0, rng.uniform(0.0, 10.0), size=(len(xs), 3))
    image[ys, xs] = color * shade[:, None] + grain


def _box_of(mask):
    """(x0, y0, x1, y1) inclusive pixel bounds of a non-empty mask."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _drop_fragments(mask):
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= MIN_PART_PIXELS
    keep[0] = False  # background
    return keep[labels]


def _corners(contour):
    """Map a contour of the 2x upsampled mask to the pixel corners of the original mask.

    Pixel x of the mask is columns 2x and 2x+1 after upsampling; a contour on its left side runs
    through 2x (left corner x), on its right side through 2x+1 (right corner x+1).
    """
    points = (contour.reshape(-1, 2) + 1) // 2
    moved = np.any(points != np.roll(points, 1, axis=0), axis=1)
    return points[moved] if moved.any() else points[:1]


def _bridge(outline, hole):
    """One polygon for ``outline`` minus ``hole``: go in along a cut to the hole, round it, back."""
    gaps = ((outline[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(gaps.argmin()), gaps.shape)
    hole = np.roll(hole, -j, axis=0)
    return np.concatenate([outline[: i + 1], hole, hole[:1], outline[i:]])


def mask_to_polygons(mask: np.ndarray) -> List[List[int]]:
    """COCO polygons (flat ``[x0, y0, x1, y1, ...]``, pixel corners) whose union is ``mask``.

    Each 8-connected part gives one polygon; its holes are joined to it by zero-width cuts, which
    COCO's even-odd rasterisation (``pycocotools.mask.frPyObjects``) leaves out of the mask.
    """
    upsampled = np.repeat(np.repeat(mask.astype(np.uint8), 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(upsampled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    links = hierarchy[0]  # per contour: next sibling, previous sibling, first child, parent
    polygons = []
    for index, (_, _, child, parent) in enumerate(links):
        if parent != -1:
            continue
        outline = _corners(contours[index])
        while child != -1:
            outline = _bridge(outline, _corners(contours[child]))
            child = links[child][0]
        if len(outline) >= 3:
            polygons.append([int(v) for v in outline.reshape(-1)])
    return polygons


def _annotate(visible, drawn_pixels):
    """COCO fields of one instance from its visible mask, or None when it is almost hidden."""
    if not visible.any():
        return None
    x0, y0, x1, y1 = _box_of(visible)
    crop = _drop_fragments(visible[y0 : y1 + 1, x0 : x1 + 1])
    area = int(crop.sum())
    if area < max(MIN_VISIBLE_PIXELS, MIN_VISIBLE_FRACTION * drawn_pixels):
        return None
    cx0, cy0, cx1, cy1 = _box_of(crop)
    crop = crop[cy0 : cy1 + 1, cx0 : cx1 + 1]
    x0, y0 = x0 + cx0, y0 + cy0
    polygons = [
        [v + (y0 if k % 2 else x0) for k, v in enumerate(polygon)]
        for polygon in mask_to_polygons(crop)
    ]
    return {
        "bbox": [x0, y0, int(crop.shape[1]), int(crop.shape[0])],
        "area": area,
        "segmentation": polygons,
        "iscrowd": 0,
    }


def generate_image(config: SynthConfig, index: int) -> Tuple[np.ndarray, List[dict]]:
    """Image ``index`` of a split: (H x W x 3 uint8 BGR image, COCO annotations without ids)."""
    rng = np.random.default_rng([config.seed, index])
    low, high = config.image_size
    width, height = (int(v) for v in rng.integers(low, high + 1, size=2))
    image = _background(rng, height, width)

    objects, large = [], 0
    for _ in range(int(rng.integers(config.objects_per_image[0], config.objects_per_image[1] + 1))):
        bucket = int(rng.choice(3, p=config.scale_mix))
        if bucket == 2:
            large += 1
            bucket = 2 if large <= MAX_LARGE_PER_IMAGE else 1
        objects.append(_sample_object(rng, config, height, width, bucket))
    # Mostly big shapes first, small ones on top; the noise lets some big ones cover small ones.
    depth = [math.log(side) + rng.normal(0.0, 0.6) for _, side, _ in objects]

    owner = np.full((height, width), -1, dtype=np.int16)  # index into `drawn` of the top shape
    drawn = []  # (class index, pixels drawn)
    for k in np.argsort(depth)[::-1]:
        class_index, _, polygons = objects[k]
        mask = rasterize(polygons, height, width)
        if not mask.any():
            continue
        _paint(rng, image, mask)
        owner[mask] = len(drawn)
        drawn.append((class_index, int(mask.sum())))

    image += rng.normal(0.0, rng.uniform(2.0, 10.0), size=image.shape).astype(np.float32)
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.0))
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)

    annotations = []
    for k, (class_index, pixels) in enumerate(drawn):
        annotation = _annotate(owner == k, pixels)
        if annotation is not None:
            annotation["category_id"] = class_index + 1
            annotations.append(annotation)
    return image, annotations


# ---------------------------------------------------------------------------------------------
# Writing and statistics
# ---------------------------------------------------------------------------------------------


def _remove_abandoned(parent, name):
    """Delete temporary folders of ``name`` left by generations whose process is gone."""
    prefix = f".{name}.tmp-"
    for entry in os.listdir(parent):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix) :].split("-")[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
        except (ValueError, PermissionError):
            pass


def _write_files(folder, split, config, progress):
    """Write the images, ``annotations.json`` and ``meta.json`` of a split into ``folder``."""
    os.makedirs(os.path.join(folder, "images"))
    images, annotations = [], []
    indices = tqdm(range(config.num_images), f"fad_synth {split}", unit="img", disable=not progress)
    for index in indices:
        image, objects = generate_image(config, index)
        file_name = f"{index:06d}.jpg"
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode image {index} of {split} as JPEG")
        encoded.tofile(os.path.join(folder, "images", file_name))
        height, width = image.shape[:2]
        images.append({"id": index + 1, "file_name": file_name, "height": height, "width": width})
        for annotation in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, **annotation})
    coco = {
        "info": {"description": f"fad_d2 synthetic shapes, {split}", "version": GENERATOR_VERSION},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": name, "supercategory": "shape"}
            for k, name in enumerate(CLASS_NAMES)
        ],
    }
    with open(os.path.join(folder, "annotations.json"), "w") as f:
        json.dump(coco, f, separators=(",", ":"))
    with open(os.path.join(folder, "meta.json"), "w") as f:
        meta = {"generator_version": GENERATOR_VERSION, "split": split}
        json.dump({**meta, "config": dataclasses.asdict(config)}, f, indent=2)


def write_split(directory: str, split: str, config: SynthConfig, progress: bool = True) -> None:
    """Generate a split into a temporary folder beside ``directory``, then rename it into place."""
    parent, name = os.path.split(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    _remove_abandoned(parent, name)
    logger.info("Generating fad_synth %s (%d images) in %s", split, config.num_images, directory)
    tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=parent)
    try:
        _write_files(tmp, split, config, progress)
        os.chmod(tmp, 0o755)  # mkdtemp made it private
        try:
            os.rename(tmp, directory)
        except OSError:
            if not os.path.isfile(os.path.join(directory, "annotations.json")):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same split first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def scale_of(area: float) -> str:
    """COCO's name ("small" / "medium" / "large") for an instance of mask area ``area``."""
    return next(name for name, lo, hi in AREA_RANGES if lo <= area < hi)


def split_stats(coco: dict) -> dict:
    """Counts of a COCO dict: images, instances, instances per class and per COCO scale."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    per_image = Counter(a["image_id"] for a in coco["annotations"])
    return {
        "images": len(coco["images"]),
        "instances": len(coco["annotations"]),
        "max_per_image": max(per_image.values(), default=0),
        "per_class": Counter(names[a["category_id"]] for a in coco["annotations"]),
        "per_scale": Counter(scale_of(a["area"]) for a in coco["annotations"]),
    }


def format_stats(split: str, stats: dict) -> str:
    """Three lines of text for the :func:`split_stats` of ``split``."""
    instances = max(stats["instances"], 1)
    per_image = stats["instances"] / max(stats["images"], 1)
    lines = [
        f"{split}: {stats['images']} images, {stats['instances']} instances "
        f"({per_image:.1f} per image, at most {stats['max_per_image']})",
        "  scale:  "
        + "  ".join(
            f"{n} {stats['per_scale'][n]} ({100 * stats['per_scale'][n] / instances:.0f}%)"
            for n, _, _ in AREA_RANGES
        ),
        "  class:  " + "  ".join(f"{n} {stats['per_class'][n]}" for n in CLASS_NAMES),
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fad_d2.data.synthetic",
        description="Generate (once; cached) the embedded fad_synth dataset and print where it is.",
    )
    parser.add_argument(
        "--out", help=f"data root (default: ${DATA_ENV}, else $DETECTRON2_DATASETS/fad_synth)"
    )
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--small", action="store_true", help=f"small test splits ({SMALL_ENV}=1)")
    parser.add_argument("--stats", action="store_true", help="print counts per class and scale")
    args = parser.parse_args(argv)
    for split in args.splits:
        config = SMALL_SPLITS[split] if args.small else split_config(split)
        files = ensure_split(split, config, root=args.out)
        print(f"{split}: {files.json_file}")
        if args.stats:
            with open(files.json_file) as f:
                print(format_stats(split, split_stats(json.load(f))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
