"""The training config a search hands on: ``train_config.yaml`` next to ``genotype_final.json``.

It is ``SEARCH.TRAIN_CONFIG`` (as ``_BASE_``) with, on top, what the search ran on: its
``DATASETS.COCO``, ``DATASETS.TRAIN`` and ``DATASETS.TEST``, the number of classes of that data,
the derived genotype with the search space and node count it was derived in, and the search's
command-line overrides except those that concern only the
search (``SEARCH.*``, ``SOLVER.*``: the training config keeps its own schedule, ``OUTPUT_DIR``:
training writes to ``<search OUTPUT_DIR>/train``).  ``python train_net.py --config-file
train_config.yaml`` trains it, and ``--eval-only`` with the trained weights evaluates it.
"""
import os

import yaml

from ..engine.datasets import NUM_CLASSES_KEYS, coco_entries
from ..engine.setup import load_cfg
from ..errors import ConfigError
from ..modeling import selected_fad_heads
from ..modeling.heads import cfg_value

TRAIN_CONFIG_FILE = "train_config.yaml"
# Command-line overrides of a search that its training config does not take.
SEARCH_ONLY_KEYS = ("SEARCH.", "SOLVER.", "OUTPUT_DIR", "DATASETS.")


class TrainConfigError(ConfigError):
    """``SEARCH.TRAIN_CONFIG`` cannot train the searched head; the message says why."""


def handed_on_overrides(opts):
    """The ``[key, value, ...]`` of the search's overrides ``opts`` that its training config
    takes (all but :data:`SEARCH_ONLY_KEYS`; the datasets are handed on from the config)."""
    pairs = list(zip(opts[0::2], opts[1::2]))
    return [x for key, value in pairs if not key.startswith(SEARCH_ONLY_KEYS) for x in (key, value)]


def train_config_overrides(cfg, opts, genotype_path=None):
    """``[key, value, ...]`` that turn ``SEARCH.TRAIN_CONFIG`` into the training config of the
    search ``cfg`` run with command-line overrides ``opts``, deriving ``genotype_path`` (``None``:
    the training config's own genotype is left)."""
    ret = handed_on_overrides(opts)
    ret += ["DATASETS.COCO", repr([list(e) for e in coco_entries(cfg)]),
            "DATASETS.TRAIN", repr(tuple(cfg.DATASETS.TRAIN)), "DATASETS.TEST", repr(tuple(cfg.DATASETS.TEST))]
    for spec in selected_fad_heads(cfg):  # what the genotype is checked against
        ret += [f"{spec.node}.SEARCH_SPACE", cfg_value(cfg, f"{spec.node}.SEARCH_SPACE"),
                f"{spec.node}.NUM_NODES", str(cfg_value(cfg, f"{spec.node}.NUM_NODES"))]
    classes_key = NUM_CLASSES_KEYS.get(cfg.MODEL.META_ARCHITECTURE)
    if classes_key:
        ret += [classes_key, str(cfg_value(cfg, classes_key))]
    if genotype_path is not None:
        for spec in selected_fad_heads(cfg):
            ret += [spec.genotype_key, os.path.abspath(genotype_path)]
    return ret + ["OUTPUT_DIR", os.path.join(cfg.OUTPUT_DIR, "train")]


def check_train_config(cfg, opts):
    """Load ``SEARCH.TRAIN_CONFIG`` with the search's datasets and overrides (the genotype does not
    exist yet), so that a training config that cannot take them stops the search before it
    starts: :class:`TrainConfigError` when none is set or it trains another head."""
    if not cfg.SEARCH.TRAIN_CONFIG:
        raise TrainConfigError("SEARCH.TRAIN_CONFIG is empty: set it to the config that trains the searched head "
                               "(e.g. configs/FAD-FCOS/fad_fcos_R_50_FPN_1x_coco.yaml)")
    overrides = train_config_overrides(cfg, opts)
    trained = load_cfg(cfg.SEARCH.TRAIN_CONFIG, overrides, check=False)
    searched = {spec.name for spec in selected_fad_heads(cfg)}
    if {spec.name for spec in selected_fad_heads(trained)} != searched:
        raise TrainConfigError(f"SEARCH.TRAIN_CONFIG {cfg.SEARCH.TRAIN_CONFIG} does not build the searched head "
                               f"({', '.join(sorted(searched))})")


def _plain(value):
    """``value`` with tuples as lists, for YAML."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def write_train_config(cfg, opts, genotype_path):
    """Write :data:`TRAIN_CONFIG_FILE` in ``cfg.OUTPUT_DIR`` for the search ``cfg`` (run with
    command-line overrides ``opts``) that derived ``genotype_path``, after loading it as
    ``train_net.py`` will (genotype, classes and datasets checked); returns its path."""
    overrides = train_config_overrides(cfg, opts, genotype_path)
    trained = load_cfg(cfg.SEARCH.TRAIN_CONFIG, overrides)
    tree = {}
    for key in overrides[0::2]:
        *parents, leaf = key.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = _plain(cfg_value(trained, key))
    path = os.path.join(cfg.OUTPUT_DIR, TRAIN_CONFIG_FILE)
    with open(path, "w") as f:
        f.write(f"# Trains the head that the search in {os.path.abspath(cfg.OUTPUT_DIR)} derived, on the data it\n"
                "# searched on: the search's SEARCH.TRAIN_CONFIG with its datasets, classes, genotype and\n"
                "# command-line overrides (but SEARCH.*, SOLVER.*, OUTPUT_DIR). Written by search_net.py.\n")
        yaml.safe_dump({"_BASE_": os.path.abspath(cfg.SEARCH.TRAIN_CONFIG), **tree}, f, sort_keys=False,
                       default_flow_style=None)
    return path
