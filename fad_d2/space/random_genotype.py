"""The paper's "Random" baseline (Table 2): a seeded random derived architecture.

Per intermediate node k: a uniform choice of min(2, k) distinct input nodes among 0…k−1, and a
uniform transformation (never ``none``) on each kept edge.  :func:`sample_sized_random_genotypes`
keeps only those whose size (any measure: head parameters, FLOPs) lies in a band, so that a
random baseline can be compared with searched heads at equal cost.
"""
from __future__ import annotations

import random
from typing import Callable, List, Sequence, Tuple, Union

from .genotype import CellGenotype, EdgeChoice, Genotype, kept_edges
from .spaces import SearchSpace, get_search_space

__all__ = ["sample_random_genotype", "sample_sized_random_genotypes"]


def sample_random_genotype(space: Union[str, SearchSpace],
                           group_names: Sequence[str] = ("box", "cls"), seed: int = 0,
                           num_nodes: int = 3) -> Genotype:
    """A random :class:`Genotype` over ``space`` with one cell per group; same seed, same result."""
    space = get_search_space(space)
    rng = random.Random(seed)
    groups = []
    for name in group_names:
        nodes = []
        for k in range(1, num_nodes + 1):
            inputs = sorted(rng.sample(range(k), kept_edges(k)))
            nodes.append(tuple(EdgeChoice(rng.choice(space.ops), i) for i in inputs))
        groups.append((name, CellGenotype(tuple(nodes))))
    return Genotype(space.name, tuple(groups))


def sample_sized_random_genotypes(space: Union[str, SearchSpace], count: int, size: Callable[[Genotype], float],
                                  low: float, high: float, first_seed: int = 1000,
                                  max_candidates: int = 20000) -> List[Tuple[int, Genotype]]:
    """The first ``count`` genotypes ``sample_random_genotype(space, seed=s)``, s = ``first_seed``,
    ``first_seed`` + 1, …, with ``low <= size(genotype) <= high``, as ``(s, genotype)`` pairs.

    Rejection sampling: uniform over the random genotypes of that size.  The i-th pair does not
    depend on ``count``, so a larger ``count`` extends the list.  Raises ``ValueError`` when
    ``max_candidates`` seeds give fewer than ``count`` matches (a band that is too narrow or
    outside what the space can build).
    """
    if not low <= high:
        raise ValueError(f"size band must have low <= high, got [{low}, {high}]")
    found = []
    for seed in range(first_seed, first_seed + max_candidates):
        if len(found) == count:
            break
        genotype = sample_random_genotype(space, seed=seed)
        if low <= size(genotype) <= high:
            found.append((seed, genotype))
    if len(found) < count:
        raise ValueError(f"only {len(found)} of seeds {first_seed}…{first_seed + max_candidates - 1} give a random "
                         f"genotype of size in [{low}, {high}], {count} wanted: widen the band")
    return found
