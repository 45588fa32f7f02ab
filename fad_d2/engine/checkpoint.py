"""Checkpoints that carry their architecture: the genotype travels with the weights.

:class:`FADCheckpointer` is Detectron2's ``DetectionCheckpointer`` that saves the configured
genotypes (``MODEL.FAD_GENOTYPE_RECORD``) next to ``"model"`` and, when it loads weights, refuses
(one line naming both files) weights recorded with another genotype: two genotypes can have the
same tensor shapes (a dilation-2 op swapped for the dilation-3 op), so shape checks alone would
let a model that was never trained be evaluated.  A file that cannot be read (truncated, not a
checkpoint) is named too.
"""
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..errors import FADError
from ..modeling.heads import parse_genotype_record

GENOTYPES_KEY = "fad_genotypes"


class CheckpointError(FADError):
    """A checkpoint that cannot be used with this config; the message names the file."""


def genotype_record(cfg) -> dict:
    """The genotypes of ``cfg``'s FAD heads ``{genotype key: {"file", "genotype"}}`` (filled
    by ``load_cfg``; empty for a config without FAD heads)."""
    return parse_genotype_record(cfg.MODEL.FAD_GENOTYPE_RECORD)


def _describe(entry):
    return entry["file"] if entry["genotype"] is not None else "none (the search supernet)"


def check_genotypes_match(recorded: dict, configured: dict, filename: str):
    """Raise :class:`CheckpointError` when a genotype recorded in checkpoint ``filename`` differs
    from the configured one of the same key."""
    for key, want in configured.items():
        have = recorded.get(key)
        if have is not None and have["genotype"] != want["genotype"]:
            raise CheckpointError(
                f"{filename} holds weights of another architecture: trained with {key} "
                f"{_describe(have)}, but the config's {key} is {_describe(want)} and the two differ; "
                f"set {key} to the genotype the weights were trained with, or load weights trained "
                f"with {_describe(want)}"
            )


class FADCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` + the genotype record (saved next to ``"model"``, checked on load).

    Args:
        model, save_dir, checkpointables: as ``DetectionCheckpointer``.
        genotypes: :func:`genotype_record` of the config that built ``model``.
        require_all_weights: refuse a file that lacks weights of ``model`` or has them with
            other shapes (evaluation: a model must not run with random layers).
    """

    def __init__(self, model, save_dir="", *, genotypes: dict, require_all_weights: bool = False,
                 **checkpointables):
        super().__init__(model, save_dir, **checkpointables)
        self.genotypes = genotypes
        self.require_all_weights = require_all_weights
        self._loading = None

    def save(self, name, **kwargs):
        super().save(name, **{GENOTYPES_KEY: self.genotypes}, **kwargs)

    def _load_file(self, filename):
        self._loading = filename
        loaded = read_checkpoint(filename, super()._load_file)
        if not isinstance(loaded.get("model"), dict):
            raise CheckpointError(f"{filename} is not a checkpoint: it holds no model weights")
        check_genotypes_match(loaded.get(GENOTYPES_KEY, {}), self.genotypes, filename)
        return loaded

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        if self.require_all_weights and (incompatible.missing_keys or incompatible.incorrect_shapes):
            missing = incompatible.missing_keys + [k for k, *_ in incompatible.incorrect_shapes]
            raise CheckpointError(
                f"{self._loading} lacks {len(missing)} weights of this model (e.g. {missing[0]!r}): it "
                "was not trained for this config, and evaluating would run layers with random weights"
            )
        return incompatible


def _torch_load(filename):
    return torch.load(filename, map_location="cpu", weights_only=False)


def read_checkpoint(filename, load=_torch_load):
    """Load checkpoint file ``filename`` with ``load``, raising a :class:`CheckpointError`
    naming it when it is missing, truncated or unreadable."""
    if not os.path.isfile(filename):
        raise CheckpointError(f"checkpoint {filename} does not exist")
    try:
        loaded = load(filename)
    except Exception as e:  # torch/pickle raise many types for a damaged file
        raise CheckpointError(f"checkpoint {filename} cannot be read (truncated, or not a PyTorch/"
                              f"Detectron2 checkpoint): {type(e).__name__}: {e}") from None
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{filename} is not a checkpoint: it holds a {type(loaded).__name__}")
    return loaded
