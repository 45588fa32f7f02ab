"""The paper's "Random" baseline (Table 2): a seeded random derived architecture.

Per intermediate node k: a uniform choice of min(2, k) distinct input nodes among 0…k−1, and a
uniform transformation (never ``none``) on each kept edge.
"""
from __future__ import annotations

import random
from typing import Sequence, Union

from .genotype import CellGenotype, EdgeChoice, Genotype, kept_edges
from .spaces import SearchSpace, get_search_space

__all__ = ["sample_random_genotype"]


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
