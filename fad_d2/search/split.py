"""The two disjoint halves of the training data: w-half and α-half (paper appendix 6.2).

The split is a seeded random permutation of the training images; it is saved as JSON in the
output directory (``search_split.json``) and reused as is by a resumed run.
"""
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from ..errors import ConfigError

SPLIT_FILE = "search_split.json"


@dataclass(frozen=True)
class SearchSplit:
    """Image keys (``"<dataset index>:<image_id>"``) of the w-half and the α-half."""

    w_keys: tuple
    alpha_keys: tuple

    def to_dict(self):
        return {"w": list(self.w_keys), "alpha": list(self.alpha_keys)}

    @classmethod
    def from_dict(cls, d):
        return cls(tuple(d["w"]), tuple(d["alpha"]))


def image_key(record: Dict, position: int) -> str:
    """A key unique within the concatenated training sets: list position + image id."""
    return f"{position}:{record.get('image_id', record.get('file_name'))}"


def make_split(dataset_dicts: Sequence[Dict], ratio: float, seed: int, min_images: int) -> SearchSplit:
    """Split ``dataset_dicts`` at random (seeded) into a w-half (``ratio``) and an α-half.

    Raises :class:`ConfigError` when either half would hold fewer than ``min_images`` images
    (at least one batch).
    """
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"SEARCH.SPLIT_RATIO must be in (0, 1), got {ratio}")
    n = len(dataset_dicts)
    n_w = int(round(n * ratio))
    if min(n_w, n - n_w) < min_images:
        raise ConfigError(
            f"the search training set has {n} images: too small to split with SEARCH.SPLIT_RATIO "
            f"{ratio} into two halves of at least {min_images} images (one batch) each"
        )
    order = np.random.default_rng(seed).permutation(n)
    keys = [image_key(dataset_dicts[i], int(i)) for i in order]
    return SearchSplit(tuple(keys[:n_w]), tuple(keys[n_w:]))


def select(dataset_dicts: Sequence[Dict], keys: Sequence[str]) -> List[Dict]:
    """The records of ``dataset_dicts`` whose :func:`image_key` is in ``keys``."""
    wanted = set(keys)
    return [r for i, r in enumerate(dataset_dicts) if image_key(r, i) in wanted]


def load_or_make_split(output_dir: str, dataset_dicts, ratio, seed, min_images, write=True) -> SearchSplit:
    """Reuse ``output_dir/search_split.json`` when present (it must have been made with ``ratio``
    and ``seed``), else make the split (the same on every worker: it is seeded) and, with
    ``write`` (the main process), save it."""
    path = os.path.join(output_dir, SPLIT_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            saved = json.load(f)
        if (saved.get("ratio"), saved.get("seed")) != (ratio, seed):
            raise ConfigError(
                f"{path} was made with SEARCH.SPLIT_RATIO {saved.get('ratio')} and SEARCH.SPLIT_SEED "
                f"{saved.get('seed')}, not {ratio} and {seed}: use another OUTPUT_DIR for a new split "
                "(or the split's values to go on with this search)"
            )
        split = SearchSplit.from_dict(saved)
        known = {image_key(r, i) for i, r in enumerate(dataset_dicts)}
        missing = [k for k in split.w_keys + split.alpha_keys if k not in known]
        if missing:
            raise ConfigError(f"{path}: {len(missing)} images of the saved split (e.g. {missing[0]}) "
                             "are not in the training set; use a new OUTPUT_DIR for a new dataset")
        return split
    split = make_split(dataset_dicts, ratio, seed, min_images)
    if not write:
        return split
    os.makedirs(output_dir, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"ratio": ratio, "seed": seed, **split.to_dict()}, f)
    os.replace(tmp, path)
    return split
