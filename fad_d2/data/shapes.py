"""The object classes of the synthetic dataset and how one instance of each is drawn.

A shape is a list of polygons in a local frame centred on the origin. Each polygon either adds to
the mask (``True``) or cuts a hole out of what came before (``False``, for outlined shapes). The
shapes differ in outline, fill and aspect ratio, so a detector has to tell them apart by more than
the size of their box.
"""
from dataclasses import dataclass
from typing import Callable, List, Tuple

import cv2
import numpy as np

Polygons = List[Tuple[np.ndarray, bool]]  # (N x 2 float vertices, fill=True / cut=False)

_SHIFT = 4  # fixed-point bits given to cv2.fillPoly: vertices are placed to 1/16 px


def _box(width, height):
    w, h = width / 2.0, height / 2.0
    return np.array([[-w, -h], [w, -h], [w, h], [-w, h]])


def _oval(width, height, num_points=72):
    t = np.linspace(0.0, 2.0 * np.pi, num_points, endpoint=False)
    return np.stack([width / 2.0 * np.cos(t), height / 2.0 * np.sin(t)], axis=1)


def _fit(points, side):
    """Scale ``points`` so that the longer side of their box is ``side``, and centre the box."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - (lo + hi) / 2.0) * (side / (hi - lo).max())


def _outline_width(rng, side):
    return max(2.0, side * rng.uniform(0.10, 0.18))


def _rectangle(rng, side):
    return [(_box(side, side / rng.uniform(1.8, 3.0)), True)]


def _bar(rng, side):
    return [(_box(side / rng.uniform(2.5, 4.0), side), True)]


def _ellipse(rng, side):
    return [(_oval(side, side / rng.uniform(1.0, 1.8)), True)]


def _ring(rng, side):
    height, width = side / rng.uniform(1.0, 1.3), _outline_width(rng, side)
    return [(_oval(side, height), True), (_oval(side - 2 * width, height - 2 * width), False)]


def _frame(rng, side):
    height, width = side / rng.uniform(1.0, 1.4), _outline_width(rng, side)
    return [(_box(side, height), True), (_box(side - 2 * width, height - 2 * width), False)]


def _triangle(rng, side):
    angles = np.deg2rad(np.array([-90.0, 30.0, 150.0]) + rng.uniform(-15.0, 15.0, size=3))
    return [(_fit(np.stack([np.cos(angles), np.sin(angles)], axis=1), side), True)]


def _cross(rng, side):
    arm = side * rng.uniform(0.22, 0.34)
    return [(_box(side, arm), True), (_box(arm, side * rng.uniform(0.8, 1.0)), True)]


def _star(rng, side):
    radius = np.tile([1.0, rng.uniform(0.38, 0.5)], 5)
    angles = np.deg2rad(-90.0 + 36.0 * np.arange(10))
    points = radius[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return [(_fit(points, side), True)]


@dataclass(frozen=True)
class ShapeClass:
    name: str
    build: Callable[[np.random.Generator, float], Polygons]  # (rng, longer side in px) -> polygons
    fill_ratio: float  # typical mask area / side**2, used to turn a wanted area into a side
    max_tilt: float  # rotation is drawn from [-max_tilt, max_tilt] degrees


SHAPE_CLASSES = (
    ShapeClass("rectangle", _rectangle, 0.42, 12.0),  # filled, wide
    ShapeClass("bar", _bar, 0.31, 12.0),  # filled, tall
    ShapeClass("ellipse", _ellipse, 0.56, 180.0),  # filled
    ShapeClass("ring", _ring, 0.35, 180.0),  # outlined ellipse
    ShapeClass("frame", _frame, 0.43, 15.0),  # outlined rectangle
    ShapeClass("triangle", _triangle, 0.43, 180.0),
    ShapeClass("cross", _cross, 0.45, 20.0),
    ShapeClass("star", _star, 0.36, 180.0),
)
CLASS_NAMES = tuple(c.name for c in SHAPE_CLASSES)


def place(polygons, angle_deg, center):
    """Rotate the local-frame ``polygons`` by ``angle_deg`` and move their origin to ``center``."""
    a = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    shift = np.asarray(center, dtype=float)
    return [(points @ rotation + shift, fill) for points, fill in polygons]


def polygons_extent(polygons):
    """(min_xy, max_xy) over the vertices of ``polygons``."""
    points = np.concatenate([p for p, _ in polygons])
    return points.min(axis=0), points.max(axis=0)


def rasterize(polygons, height, width):
    """Boolean ``height x width`` mask of image-frame ``polygons`` (fills and cuts in order)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for points, fill in polygons:
        fixed = np.round(points * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(mask, [fixed], 1 if fill else 0, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)
