"""Counting a search space (paper §3.1–3.2): choices, representations, edges, paths, and the
parameters of each transformation at a given c′."""
from __future__ import annotations

from math import comb
from typing import Dict, Union

from .genotype import CellKind, cell_edges, get_cell_kind, kept_edges
from .mixed_op import stem_depth
from .spaces import SearchSpace, get_search_space
from .transformations import TRANSFORMATIONS, build_transformation

__all__ = [
    "num_representations",
    "num_edges",
    "num_unique_paths",
    "num_derived_architectures",
    "transformation_params",
    "summarize_space",
    "format_summary",
]


def num_representations(space: Union[str, SearchSpace], repshare: bool = True) -> int:
    """Representations computed per mixed op (``full``: 12 with RepShare, 26 without).

    With RepShare, per stream: the stem outputs p1…p_d plus one per dilated transformation.
    Spaces without RepShare (``darts``) always count the unshared way.
    """
    space = get_search_space(space)
    if repshare and space.supports_repshare:
        return sum(
            stem_depth(ops) + sum(1 for op in ops if TRANSFORMATIONS[op].dilation)
            for ops in map(space.stream_ops, space.streams)
        )
    return sum(TRANSFORMATIONS[op].num_layers for op in space.ops)


def num_edges(num_nodes: int = 3, cell: Union[str, CellKind] = "paper") -> int:
    """Edges of a search cell: 1 + 2 + … + n for the paper cell (6 for 3 nodes), 2 + 3 + … +
    (n + 1) for the released cell (9 for 3 nodes)."""
    return len(cell_edges(num_nodes, cell))


def num_unique_paths(space: Union[str, SearchSpace], num_groups: int = 2,
                     num_nodes: int = 3, cell: Union[str, CellKind] = "paper") -> int:
    """Unique paths of the supernet with one cell per group: K^(edges · groups).

    ``full``, 2 groups, 3 nodes: 13¹² = 23,298,085,122,481 ≈ 2.3·10¹³ (paper §3.1); the released
    cell over ``no_dil3``: 11¹⁸.  The cells of one group share α, so M does not change this number.
    """
    space = get_search_space(space)
    return space.num_choices ** (num_edges(num_nodes, cell) * num_groups)


def num_derived_architectures(space: Union[str, SearchSpace], num_groups: int = 2,
                              num_nodes: int = 3, cell: Union[str, CellKind] = "paper") -> int:
    """Distinct derived architectures: per node at state index s, C(s, min(2, s)) input sets ×
    (K−1) ops per kept edge, over all nodes and groups."""
    space = get_search_space(space)
    first = get_cell_kind(cell).first_node()
    per_cell = 1
    for s in range(first, first + num_nodes):
        per_cell *= comb(s, kept_edges(s)) * len(space.ops) ** kept_edges(s)
    return per_cell ** num_groups


def transformation_params(space: Union[str, SearchSpace], inner_channels: int = 96,
                          norm: str = "GN") -> Dict[str, int]:
    """{op: parameters} of every op of ``space`` as a standalone (derived) transformation at
    c′ = ``inner_channels``, without H; ``space.dilated_bias`` decides the dilated depthwise
    bias (with it, ``full`` at c′ = 96 gives the released code's counts, e.g. 93,696 for
    ``std_3x3_dil2`` and 31,200 for ``sep_5x5_dil2``)."""
    space = get_search_space(space)
    return {
        op: sum(p.numel() for p in build_transformation(
            op, inner_channels, norm, dilated_bias=space.dilated_bias).parameters())
        for op in space.ops
    }


def summarize_space(space: Union[str, SearchSpace], num_groups: int = 2,
                    num_nodes: int = 3, inner_channels: int = 96,
                    cell: Union[str, CellKind] = "paper") -> dict:
    """Every count of a search space as a JSON-ready dict (parameters at c′ =
    ``inner_channels``), for search cells of kind ``cell``."""
    space = get_search_space(space)
    kind = get_cell_kind(cell)
    params = transformation_params(space, inner_channels)
    return {
        "search_space": space.name,
        "description": space.description,
        "decouple": space.decouple,
        "supports_repshare": space.supports_repshare,
        "transformations": [
            {"name": op, "stream": TRANSFORMATIONS[op].stream,
             "layers": TRANSFORMATIONS[op].description,
             "receptive_field": TRANSFORMATIONS[op].receptive_field, "params": params[op]}
            for op in space.ops
        ],
        "inner_channels": inner_channels,
        "dilated_bias": space.dilated_bias,
        "choices": list(space.choices),
        "alpha_per_edge": space.num_choices,
        "representations_repshare": (num_representations(space, True)
                                     if space.supports_repshare else None),
        "representations_unshared": num_representations(space, False),
        "cell": kind.name,
        "cell_inputs": kind.num_inputs,
        "num_nodes": num_nodes,
        "edges_per_cell": num_edges(num_nodes, kind),
        "num_groups": num_groups,
        "unique_paths": num_unique_paths(space, num_groups, num_nodes, kind),
        "derived_architectures": num_derived_architectures(space, num_groups, num_nodes, kind),
    }


def format_summary(summary: dict) -> str:
    """The text report of :func:`summarize_space`."""
    s = summary
    lines = [f"search space {s['search_space']!r}: {s['description']}",
             f"  {'transformation':<16}{'stream':<8}{'layers':<30}{'RF':<4}"
             f"params @ c'={s['inner_channels']}"
             + (" (dilated depthwise bias)" if s["dilated_bias"] else "")]
    lines += [f"  {t['name']:<16}{t['stream']:<8}{t['layers']:<30}{t['receptive_field']:<4}"
              f"{t['params']:>10,}" for t in s["transformations"]]
    shared = s["representations_repshare"]
    lines += [
        f"choices per edge (α per edge): {s['alpha_per_edge']} "
        f"({len(s['transformations'])} transformations + none)",
        "representations per mixed op: "
        + (f"{shared} with RepShare, " if shared is not None else "RepShare not applicable, ")
        + f"{s['representations_unshared']} without",
        f"decoupling H on t1, t2: {'yes' if s['decouple'] else 'no'}",
        f"edges per search cell: {s['edges_per_cell']} ({s['cell']} cell: {s['cell_inputs']} "
        f"input(s), {s['num_nodes']} intermediate nodes)",
        f"unique paths ({s['num_groups']} groups x {s['edges_per_cell']} edges, 1 cell per "
        f"group): {s['alpha_per_edge']}^{s['num_groups'] * s['edges_per_cell']} = "
        f"{s['unique_paths']:,} ~ {s['unique_paths']:.2e}",
        f"derived architectures (2 kept edges per node): {s['derived_architectures']:,}",
    ]
    return "\n".join(lines)
