"""Cost-aware search: the expected cost of the derived head under softmax(α), and a penalty that
pulls it under a budget (``SEARCH.COST``; beyond the paper, whose α step minimises the detection
loss only, §3.2).

Cost model of a derived head (additive; the numbers come from a cost table, ``fad_d2/cost.py``)::

    cost = fixed + Σ_g M_g · (cell_g + Σ_{kept edges e of the cell} edge_g[op_e])

``fixed``: the predictors; ``cell_g``: a cell's output 1×1 conv (3c → c); ``edge_g[op]``: one
derived edge (1×1 c → c′_g, transformation ``op``, 1×1 c′_g → c); each summed over the FPN
levels.  fvcore's FLOPs of a derived head follow it exactly (fvcore counts neither ReLU nor the
additions of node sums); a latency is only approximately additive.

Expected cost under α, with the derivation (paper §3.2, ``space/derive.py``) in mind: it never
picks ``none`` and keeps min(2, j) of the j incoming edges of node j.  So edge e = (i, j) counts
with weight min(2, j) / j, and its op is drawn from softmax over its non-``none`` columns::

    E[cost] = fixed + Σ_g M_g · (cell_g + Σ_e min(2, j)/j · Σ_{k ≠ none} softmax(α_e[:-1])_k · edge_g[k])

(which of node 3's edges survive is not modelled; the ``none`` column gets no gradient, so the
penalty cannot be met by weights that derivation ignores).  Penalty (a hinge, zero under the
budget)::

    loss_cost = weight · max(0, E[cost] / budget − 1),    budget = target · stock head's cost

``weight = 0`` is never built (the trainer then runs the paper's α step unchanged).

Floor: the cheapest head derivation can give (every kept edge the cheapest op of the table),
``fixed + Σ_g M_g · (cell_g + Σ_j min(2, j) · min_k edge_g[k])``.  A budget below it cannot be
met by any α; the search says so when it starts (a warning: the penalty still pulls toward the
floor) and reports it beside the derived head's cost.
"""
import json
import logging
import os
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage

from ..cost import cost_table_from_config
from ..engine.setup import load_cfg
from ..space import get_search_space
from ..space.genotype import CellGenotype, cell_edges, kept_edges

logger = logging.getLogger(__name__)

COST_REPORT = "cost_report.json"


@dataclass(frozen=True)
class GroupCost:
    """The cost table entries of one group of the derived head.

    Attributes:
        op_costs: ``edge_g[k]`` per op of the search space (α columns without ``none``).
        cell_cost: ``cell_g``, a cell's output conv.
        num_cells: M_g of the derived head (the search itself runs M = 1).
    """

    op_costs: Tuple[float, ...]
    cell_cost: float
    num_cells: int


class CostPenalty:
    """E[cost] of the derived head under the groups' α and the penalty toward the budget.

    Args:
        groups: the search ``CellGroup``\\ s (``alpha`` Tensor[E, K], ``num_nodes``, ``derive()``).
        costs: one :class:`GroupCost` per group, same order.
        ops: the search space's ops (α columns 0…K−2; column K−1 is ``none``).
        fixed_cost: ``fixed``; stock_cost: the stock head's cost (same metric and sizes).
        target: budget as a fraction of ``stock_cost``; weight: the penalty's weight (> 0).
        metric: ``"flops"`` or ``"latency"`` (for logs and the report).
    """

    def __init__(self, groups, costs: Sequence[GroupCost], ops: Sequence[str], *, fixed_cost: float,
                 stock_cost: float, target: float, weight: float, metric: str):
        if len(groups) != len(costs):
            raise ValueError(f"one GroupCost per group needed, got {len(costs)} for {len(groups)} groups")
        if target <= 0 or weight <= 0:
            raise ValueError(f"the cost target and weight must be > 0, got {target} and {weight}")
        self.groups = list(groups)
        self.costs = list(costs)
        self.ops = tuple(ops)
        self.fixed_cost = fixed_cost
        self.stock_cost = stock_cost
        self.budget = target * stock_cost
        self.weight = weight
        self.metric = metric

    def expected_cost(self) -> torch.Tensor:
        """E[cost] (a 0-dim Tensor, differentiable in every group's α, in α only)."""
        cells = []
        for group, cost in zip(self.groups, self.costs):
            alpha = group.alpha
            kept = torch.tensor([kept_edges(j) / j for _, j in cell_edges(group.num_nodes)],
                                dtype=alpha.dtype, device=alpha.device)  # Tensor[E]
            op_costs = torch.tensor(cost.op_costs, dtype=alpha.dtype, device=alpha.device)  # Tensor[K-1]
            probs = torch.softmax(alpha[:, :-1], dim=-1)  # Tensor[E, K-1], without `none`
            cells.append(cost.num_cells * (cost.cell_cost + (kept * (probs @ op_costs)).sum()))
        return self.fixed_cost + sum(cells)

    def __call__(self) -> Dict[str, torch.Tensor]:
        """``{"loss_cost": weight · max(0, E[cost] / budget − 1)}``, to add to the α step's losses;
        also puts ``cost/expected_vs_stock`` and ``cost/budget_vs_stock`` in the EventStorage."""
        expected = self.expected_cost()
        storage = get_event_storage()
        storage.put_scalar("cost/expected_vs_stock", expected.item() / self.stock_cost)
        storage.put_scalar("cost/budget_vs_stock", self.budget / self.stock_cost, smoothing_hint=False)
        return {"loss_cost": self.weight * torch.relu(expected / self.budget - 1.0)}

    def derived_cost(self, cells: Sequence[CellGenotype]) -> float:
        """The cost of the derived head whose groups have ``cells`` (one per group)."""
        total = self.fixed_cost
        for cell, cost in zip(cells, self.costs):
            edges = sum(cost.op_costs[self.ops.index(op)] for op in cell.ops)
            total += cost.num_cells * (cost.cell_cost + edges)
        return total

    def floor(self) -> Tuple[float, Tuple[str, ...]]:
        """``(cost, ops)``: the cost of the cheapest head derivation can give and, per group, the
        op of its edges (every kept edge the group's cheapest op; see the module docstring)."""
        total, ops = self.fixed_cost, []
        for group, cost in zip(self.groups, self.costs):
            cheapest = min(range(len(self.ops)), key=lambda k: cost.op_costs[k])
            num_kept = sum(kept_edges(j) for j in range(1, group.num_nodes + 1))
            total += cost.num_cells * (cost.cell_cost + num_kept * cost.op_costs[cheapest])
            ops.append(self.ops[cheapest])
        return total, tuple(ops)

    def report(self) -> dict:
        """The derived head's cost (from the current α) beside the budget, the floor (the
        cheapest derivable head) and the stock head."""
        derived = self.derived_cost([g.derive() for g in self.groups])
        floor, _ = self.floor()
        return {"metric": self.metric, "derived": derived, "budget": self.budget,
                "stock": self.stock_cost, "floor": floor, "derived_vs_stock": derived / self.stock_cost,
                "budget_vs_stock": self.budget / self.stock_cost, "floor_vs_stock": floor / self.stock_cost,
                "within_budget": derived <= self.budget}

    def warn_if_unreachable(self) -> bool:
        """Log a warning when the budget is below :meth:`floor`; returns whether it is."""
        floor, ops = self.floor()
        if floor <= self.budget:
            return False
        logger.warning("SEARCH.COST.TARGET %.3g is out of reach: the cheapest head this search can derive (every "
                       "kept edge %s) costs %.3f× the stock head's %s; the penalty pulls toward it, the budget "
                       "stays unmet", self.budget / self.stock_cost, " / ".join(dict.fromkeys(ops)),
                       floor / self.stock_cost, self.metric)
        return True


class CostReportHook(HookBase):
    """In the search's last iteration (also one a stop request made the last): the derived head's
    cost beside the budget, logged, put in the EventStorage as ``cost/derived_vs_stock`` (before
    the writers' last write) and written to ``OUTPUT_DIR/cost_report.json``."""

    def __init__(self, penalty: CostPenalty, output_dir: str):
        self.penalty = penalty
        self.output_dir = output_dir

    def after_step(self):
        if self.trainer.iter + 1 < self.trainer.max_iter:
            return
        report = self.penalty.report()
        self.trainer.storage.put_scalar("cost/derived_vs_stock", report["derived_vs_stock"], smoothing_hint=False)
        logger.info("derived head's %s: %.4g = %.3f× the stock head's, budget %.3f× (%s); cheapest derivable "
                    "head %.3f×", report["metric"], report["derived"], report["derived_vs_stock"],
                    report["budget_vs_stock"], "within" if report["within_budget"] else "over",
                    report["floor_vs_stock"])
        if comm.is_main_process():
            with open(os.path.join(self.output_dir, COST_REPORT), "w") as f:
                json.dump(report, f, indent=2)


def warn_if_not_the_trained_head(cfg) -> bool:
    """Log a warning when ``SEARCH.TRAIN_CONFIG`` (the config that trains the derived head) has
    another M or c′ (``MODEL.FAD.NUM_CELLS`` / ``INNER_CHANNELS``) than this search config, whose
    values the cost model prices, or when that file is not there (relative paths are read from the
    working directory, like every path in a Detectron2 config); returns whether it warned."""
    path = cfg.SEARCH.TRAIN_CONFIG
    if not path:
        return False
    if not os.path.isfile(path):
        logger.warning("SEARCH.TRAIN_CONFIG %s: no such file (from the working directory %s), so the head the cost "
                       "model prices (MODEL.FAD.NUM_CELLS %s, INNER_CHANNELS %s) is not checked against the trained one",
                       path, os.getcwd(), list(cfg.MODEL.FAD.NUM_CELLS), list(cfg.MODEL.FAD.INNER_CHANNELS))
        return True
    trained = load_cfg(path, check=False).MODEL.FAD
    here = cfg.MODEL.FAD
    differ = [key for key in ("NUM_CELLS", "INNER_CHANNELS") if list(trained[key]) != list(here[key])]
    for key in differ:
        logger.warning("the cost model prices MODEL.FAD.%s %s (this config), but SEARCH.TRAIN_CONFIG %s trains %s: "
                       "set MODEL.FAD.%s to the trained head's for a budget that holds for it",
                       key, list(here[key]), path, list(trained[key]), key)
    return bool(differ)


def cost_penalty_from_config(cfg, groups) -> Optional[CostPenalty]:
    """The :class:`CostPenalty` of ``SEARCH.COST`` for the search ``groups`` of a FAD head (module
    order: box, cls, as ``MODEL.FAD.NUM_CELLS``); ``None`` when ``SEARCH.COST.WEIGHT`` is 0."""
    cost = cfg.SEARCH.COST
    if cost.WEIGHT == 0:
        return None
    table, path = cost_table_from_config(cfg)
    logger.info("cost table (%s): %s", cost.METRIC, path)
    values = table[cost.METRIC]
    space = get_search_space(cfg.MODEL.FAD.SEARCH_SPACE)
    costs = []
    for group, num_cells in zip(groups, cfg.MODEL.FAD.NUM_CELLS):
        edges = values["edges"][str(group.cells[0].edges[0].inner_channels)]  # this group's c′
        costs.append(GroupCost(tuple(edges[op] for op in space.ops), values["cell"], num_cells))
    warn_if_not_the_trained_head(cfg)
    penalty = CostPenalty(groups, costs, space.ops, fixed_cost=values["predictors"], stock_cost=values["stock_head"],
                          target=cost.TARGET, weight=cost.WEIGHT, metric=cost.METRIC)
    penalty.warn_if_unreachable()
    return penalty
