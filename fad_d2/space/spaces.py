"""Search-space variants of paper Table 2, selectable by name (``MODEL.FAD.SEARCH_SPACE``).

=============== ===== ======================================================================
name            ops   what
=============== ===== ======================================================================
``full``         12   both streams × t1…t6, decoupling H on t1, t2 (the paper's space)
``no_decouple``  12   ``full`` without H ("w/o decouple")
``subset1``       4   RF 3, 5: ``3x3``, ``5x5`` in both streams ("Subset 1")
``subset2``       8   RF 3, 5, 7: ``3x3``, ``5x5``, ``7x7``, ``3x3_dil2`` ("Subset 2")
``std_only``      6   standard-conv stream only ("Std. only")
``sep_only``      6   separable-conv stream only ("Sep. only")
``no_dil3``      10   ``full`` without ``3x3_dil3`` (the authors' released code)
``darts``         7   DARTS' operations, no RepShare ("DARTS")
=============== ===== ======================================================================

Every space adds ``none`` as the last choice of an edge: α columns follow ``space.choices``.

Two conventions of the authors' released code are options of any space
(:meth:`SearchSpace.with_options`; the defaults are the paper's): ``dilated_bias`` (a bias on
the dilated depthwise convs) and ``unshared_decouple=False`` (the unshared supernet, Table 2's
"w/o RepShare" row, without the decoupling H, which only separates *shared* representations).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Tuple, Union

from .transformations import NONE, STREAMS, TRANSFORMATIONS

__all__ = ["SearchSpace", "SEARCH_SPACES", "get_search_space"]


@dataclass(frozen=True)
class SearchSpace:
    """A named set of candidate transformations for every edge.

    Attributes:
        name: the name used in configs and genotype files.
        ops: the transformations (never ``none``), in α column order.
        decouple: t1 / t2 carry the decoupling function H (paper §3.2).
        supports_repshare: all ops are FAD std/sep transformations, so RepShare applies.
        description: one line for tables.
        dilated_bias: the dilated depthwise convs have a bias (released code; default: none).
        unshared_decouple: the unshared mixed op also puts H after t1 / t2 when ``decouple``
            (default, so that both mixed ops compute the same function); ``False``: it has no H.
    """

    name: str
    ops: Tuple[str, ...]
    decouple: bool
    supports_repshare: bool
    description: str = ""
    dilated_bias: bool = False
    unshared_decouple: bool = True

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))
        unknown = [op for op in self.ops if op not in TRANSFORMATIONS]
        if unknown:
            raise ValueError(f"search space {self.name!r}: unknown transformations {unknown}")
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"search space {self.name!r}: duplicate transformations")
        if self.supports_repshare and any(
                TRANSFORMATIONS[op].stream not in STREAMS for op in self.ops):
            raise ValueError(f"search space {self.name!r}: RepShare needs std/sep ops only")

    @property
    def choices(self) -> Tuple[str, ...]:
        """The K choices of an edge in α column order: ``ops`` then ``"none"``."""
        return self.ops + (NONE,)

    @property
    def num_choices(self) -> int:
        """K, the number of α per edge."""
        return len(self.ops) + 1

    @property
    def streams(self) -> Tuple[str, ...]:
        """Streams present, in order of first appearance."""
        return tuple(dict.fromkeys(TRANSFORMATIONS[op].stream for op in self.ops))

    def stream_ops(self, stream: str) -> Tuple[str, ...]:
        """The ops of one stream, in α column order."""
        return tuple(op for op in self.ops if TRANSFORMATIONS[op].stream == stream)

    def with_options(self, *, dilated_bias: bool = False,
                     unshared_decouple: bool = True) -> "SearchSpace":
        """This space (same name and ops) with the released code's conventions switched on or
        off; the defaults give the paper's operators."""
        return replace(self, dilated_bias=dilated_bias, unshared_decouple=unshared_decouple)


def _fad_ops(suffixes, streams=STREAMS) -> Tuple[str, ...]:
    return tuple(f"{stream}_{suffix}" for stream in streams for suffix in suffixes)


_ALL = ("3x3", "5x5", "7x7", "3x3_dil2", "5x5_dil2", "3x3_dil3")
_DARTS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "darts_sep_3x3", "darts_sep_5x5",
          "darts_dil_3x3", "darts_dil_5x5")

SEARCH_SPACES: Dict[str, SearchSpace] = {
    space.name: space
    for space in (
        SearchSpace("full", _fad_ops(_ALL), True, True, "12 transformations, decoupled (paper)"),
        SearchSpace("no_decouple", _fad_ops(_ALL), False, True, "full without decoupling H"),
        SearchSpace("subset1", _fad_ops(_ALL[:2]), True, True, "RF 3, 5"),
        SearchSpace("subset2", _fad_ops(_ALL[:4]), True, True, "RF 3, 5, 7"),
        SearchSpace("std_only", _fad_ops(_ALL, ("std",)), True, True, "standard convs only"),
        SearchSpace("sep_only", _fad_ops(_ALL, ("sep",)), True, True, "separable convs only"),
        SearchSpace("no_dil3", _fad_ops(_ALL[:5]), True, True, "full without 3x3_dil3 "
                    "(released code)"),
        SearchSpace("darts", _DARTS, False, False, "DARTS operations, no RepShare"),
    )
}
"""Every search space by name (paper Table 2)."""


def get_search_space(name: Union[str, SearchSpace]) -> SearchSpace:
    """The search space called ``name`` (a ``SearchSpace`` is returned as is).

    Raises ValueError listing the valid names for an unknown one.
    """
    if isinstance(name, SearchSpace):
        return name
    try:
        return SEARCH_SPACES[name]
    except KeyError:
        raise ValueError(
            f"unknown search space {name!r} (valid: {', '.join(SEARCH_SPACES)})"
        ) from None
