"""Deriving a discrete architecture from α (paper §3.2, DARTS convention).

Per edge (i, j): softmax over its K choices, then the strongest choice that is not ``none``;
its weight is the edge's strength.  Per intermediate node j: keep the min(2, j) incoming edges
with the largest strength (node 1 keeps its single edge even when ``none`` dominates it).
:func:`derive_cell` derives the paper's cell (6 edges), :func:`derive_released_cell` the
released code's two-input cell (9 edges: node j ∈ {2, 3, 4} keeps 2 of its j candidates).
The released code ranks a node's edges by raw α; here both cells rank by softmax(α), as DARTS.
With RepShare the α columns are the representations H(p1), H(p2), p3, dil2(p1), dil2(p2),
dil3(p1) of each stream; each maps back to its transformation t1…t6 (column k ↔
``space.ops[k]``), so the derived op is a fresh, unshared transformation.

Tie-breaking (deterministic):
  * between choices of one edge: the earlier column of ``space.choices`` wins (std before sep,
    t1 before t6);
  * between incoming edges of a node: the edge from the lower-numbered input node wins
    (strengths use an exactly rounded softmax sum, so equal α rows up to order tie exactly).
Kept edges are listed by increasing input node.
"""
from __future__ import annotations

import math
from typing import Iterable, List, Mapping, Tuple, Union

import torch
from torch import Tensor

from .genotype import CELL_KINDS, CellGenotype, CellKind, EdgeChoice, Genotype, cell_edges, kept_edges
from .spaces import SearchSpace, get_search_space

__all__ = ["derive_cell", "derive_released_cell", "derive_genotype"]


def _softmax(row: List[float]) -> List[float]:
    """softmax with an exactly rounded sum (``math.fsum``): rows that are permutations of each
    other give bit-identical strengths, so ties between edges are real ties."""
    top = max(row)
    exps = [math.exp(a - top) for a in row]
    total = math.fsum(exps)
    return [v / total for v in exps]


def _derive(alpha: Tensor, space: Union[str, SearchSpace], num_nodes: int,
            kind: CellKind) -> CellGenotype:
    space = get_search_space(space)
    edges = cell_edges(num_nodes, kind)
    where = " of the released cell" if kind.released else ""
    if tuple(alpha.shape) != (len(edges), space.num_choices):
        raise ValueError(
            f"α for {num_nodes} nodes{where} over search space {space.name!r} "
            f"must have shape [{len(edges)}, {space.num_choices}], got {list(alpha.shape)}"
        )
    best = []  # per edge: (op, strength)
    for row in map(_softmax, alpha.detach().to("cpu", torch.float64).tolist()):
        k = max(range(len(space.ops)), key=row.__getitem__)  # first maximum: earliest column
        best.append((space.ops[k], row[k]))
    nodes = []
    for j in range(kind.first_node(), kind.first_node() + num_nodes):
        incoming = [(e, i) for e, (i, target) in enumerate(edges) if target == j]
        ranked = sorted(incoming, key=lambda edge: (-best[edge[0]][1], edge[1]))
        kept = sorted(ranked[: kept_edges(j)], key=lambda edge: edge[1])
        nodes.append(tuple(EdgeChoice(best[e][0], i) for e, i in kept))
    return CellGenotype(tuple(nodes), kind.name)


def derive_cell(alpha: Tensor, space: Union[str, SearchSpace], num_nodes: int = 3) -> CellGenotype:
    """α: Tensor[E, K] (rows in ``cell_edges(num_nodes)`` order, columns in ``space.choices``
    order) → the derived :class:`CellGenotype` of the paper's cell (E = 6 for 3 nodes)."""
    return _derive(alpha, space, num_nodes, CELL_KINDS["paper"])


def derive_released_cell(alpha: Tensor, space: Union[str, SearchSpace],
                         num_nodes: int = 3) -> CellGenotype:
    """α: Tensor[E, K] (rows in ``cell_edges(num_nodes, "released")`` order: E = 9 for 3
    nodes) → the derived :class:`CellGenotype` of the released two-input cell: per node the top
    non-``none`` op of each of its 2 + k candidate edges, and the two strongest of them."""
    return _derive(alpha, space, num_nodes, CELL_KINDS["released"])


def derive_genotype(named_alphas: Union[Mapping[str, Tensor], Iterable[Tuple[str, Tensor]]],
                    space: Union[str, SearchSpace], num_nodes: int = 3) -> Genotype:
    """[(group name, α Tensor[E, K]), …] (or a mapping) → :class:`Genotype`, groups in order."""
    space = get_search_space(space)
    pairs = named_alphas.items() if isinstance(named_alphas, Mapping) else named_alphas
    return Genotype(space.name, tuple(
        (name, derive_cell(alpha, space, num_nodes)) for name, alpha in pairs
    ))
