"""Perturbation-based selection of the derived architecture (``SEARCH.SELECTION: "perturbation"``).

Beyond the paper, whose rule keeps the largest softmax(α) (§3.2, ``fad_d2.space.derive``): after
DARTS-PT (Wang et al., ICLR 2021), the ops and edges are chosen by how much the trained
supernet's loss on the α-half rises when they are taken away, with w and α fixed:

* the op of edge e: for every op k (not ``none``), L with k removed from the edge's mixed op
  (α_{e,k} = −∞, the other choices renormalised); the op whose removal raises L most is kept;
* the edges of a node: for every incoming edge, L with the edge removed (its whole weight on
  ``none``: it contributes 0); the ``kept_edges`` ones whose removal raises L most are kept
  (:func:`fad_d2.space.assemble_cell`, as the α rule).

L is the sum of the detector's losses over a fixed list of α-half batches (``SEARCH.SELECTION_BATCHES``),
computed without gradients.  Cost per group of E edges and K choices: E·K + 1 forward passes over
those batches (the demo: 2 × 6 × 13 + 1 = 157).
"""
import math
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from detectron2.data import DatasetMapper
from detectron2.data import transforms as T
from detectron2.utils.events import EventStorage

from ..space import Genotype, assemble_cell


def select_by_perturbation(groups: Sequence, loss: Callable[[], float]) -> Tuple[Genotype, Dict[str, dict]]:
    """The genotype chosen by removing ops and edges from the search ``groups`` (each a
    ``CellGroup`` with ``alpha`` Tensor[E, K], ``space``, ``num_nodes``, ``kind``, ``name``) one
    at a time and measuring ``loss()`` (the supernet's loss with the current α).

    Returns the genotype and, per group, ``{"op_increase": [[ΔL of removing op k of edge e]],
    "edge_increase": [ΔL of removing edge e]}`` (ΔL against the loss with nothing removed).
    α is restored exactly after every measurement."""
    cells, scores = [], {}
    with torch.no_grad():
        base = loss()
        for group in groups:
            alpha, space = group.alpha, group.space
            none = space.choices.index("none")
            op_increase, edge_increase, best = [], [], []
            for e in range(alpha.shape[0]):
                saved = alpha[e].clone()
                row = []
                for k in range(len(space.ops)):
                    alpha[e, k] = -math.inf
                    row.append(loss() - base)
                    alpha[e] = saved
                alpha[e] = -math.inf
                alpha[e, none] = 0.0
                edge_increase.append(loss() - base)
                alpha[e] = saved
                k = max(range(len(row)), key=row.__getitem__)  # first maximum: earliest column
                op_increase.append(row)
                best.append((space.ops[k], edge_increase[-1]))
            cells.append((group.name, assemble_cell(best, group.num_nodes, group.kind)))
            scores[group.name] = {"op_increase": op_increase, "edge_increase": edge_increase}
    return Genotype(groups[0].space.name, tuple(cells)), {"base_loss": base, "groups": scores}


def selection_batches(cfg, dataset_dicts: List[dict]) -> List[List[dict]]:
    """``SEARCH.SELECTION_BATCHES`` batches of ``SOLVER.IMS_PER_BATCH`` images: the first images
    of ``dataset_dicts`` (the α-half, in split order), resized as at test time
    (``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``, no flip), with their annotations."""
    mapper = DatasetMapper(cfg, is_train=True,
                           augmentations=[T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)])
    size = cfg.SOLVER.IMS_PER_BATCH
    count = min(cfg.SEARCH.SELECTION_BATCHES, len(dataset_dicts) // size)
    return [[mapper(d) for d in dataset_dicts[b * size:(b + 1) * size]] for b in range(count)]


def supernet_loss(model, batches: List[List[dict]]) -> Callable[[], float]:
    """``loss()``: the sum of ``model``'s losses (training mode, no gradients) over ``batches``.
    One-stage detectors keep a running average of their positives count (Detectron2's
    ``loss_normalizer``) that every training forward updates: it is restored after each batch,
    so that every call measures the same function of α.  Scalars the model logs go to a
    throw-away ``EventStorage``."""
    inner = getattr(model, "module", model)  # the model itself, not its DDP wrapper

    def loss() -> float:
        total = 0.0
        with torch.no_grad(), EventStorage():
            for batch in batches:
                saved = vars(inner).get("loss_normalizer")
                total += float(sum(inner(batch).values()))
                if saved is None:
                    vars(inner).pop("loss_normalizer", None)
                else:
                    inner.loss_normalizer = saved
        return total

    return loss
