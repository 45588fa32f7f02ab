"""Edges, cells and groups of the FAD searchable module (paper §3.1, Fig. 1, eq. 1).

* Edge i → j: f^{c,c′} (1×1 conv + norm + ReLU) → transformation block Tᵢⱼ at c′ →
  f^{c′,c} (1×1 conv + norm + ReLU).  Search edge: Tᵢⱼ is a mixed op weighted by softmax(αᵢⱼ);
  derived edge: Tᵢⱼ is one transformation.  (As in eq. 1, the outer 1×1 convs also run on a
  ``none`` block, so a search edge whose weight is all on ``none`` still outputs f^{c′,c}(0).)
* Cell: input node x₀ and intermediate nodes x₁…xₙ (n = 3), xⱼ = Σᵢ edgeᵢⱼ(xᵢ); the output is
  a 1×1 conv (+ norm + ReLU) of concat(x₁…xₙ), 3c → c.  Search cells have all 6 edges,
  derived cells the min(2, j) kept ones per node.
* Group: M cells in sequence sharing one architecture; in search mode it owns the α
  (Tensor[E, K], attribute ``alpha``) that its cells share.

The released code's cell (``cell="released"``, DARTS-style; ``augment_cells.py`` and
``augment_rcnn.py`` of the authors' release) differs in its wiring only; edges, mixed ops and
transformations are the same modules:

* two inputs (states 0, 1) and nodes 2…n+1, xⱼ = Σᵢ<ⱼ edgeᵢⱼ(xᵢ): 2 + 3 + 4 = 9 search edges;
* edge 1×1 convs c → c′ and c′ → c without norm and ReLU;
* an input of width ≠ c first goes through a "preprocess" 1×1 conv + norm + ReLU to c;
* the cell's output is concat(x₂…xₙ₊₁), 3c wide, with no conv of its own;
* group: cell m takes the two previous states (s₀, s₁) ← (s₁, cell(s₀, s₁)), starting from
  the group's two inputs; a 1×1 "reduce" conv 3c → c (no norm, no ReLU) ends the group.

Shapes: cell and group inputs and outputs are Tensor[N, c, H, W] (a released cell takes a pair
of them, Tensor[N, c or 3c, H, W], and returns Tensor[N, 3c, H, W]).  On the CPU, on more than one
thread, a group computes in the channels-last memory layout (:func:`cell_layout`); its output is
channels-last there.
"""
from __future__ import annotations

import contextlib
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .derive import derive_cell, derive_released_cell
from .genotype import CellGenotype, CellKind, cell_edges, check_cell_genotype, get_cell_kind
from .mixed_op import build_mixed_op
from .spaces import SearchSpace, get_search_space
from .transformations import build_transformation, conv_norm_act, copy_module_weights

__all__ = ["SearchEdge", "DerivedEdge", "SearchCell", "DerivedCell", "CellGroup", "cell_layout",
           "input_layout"]

_cpu_channels_last = True  # False inside ``input_layout()``


def cell_layout(x: Tensor) -> Tensor:
    """``x`` (Tensor[N, c, H, W]) in the memory layout the cells compute in: channels-last on the
    CPU when the calling thread runs its ops on more than one intra-op thread, where it is
    oneDNN's own layout for the cells' 1×1 and depthwise convs (from NCHW, oneDNN reorders every
    conv's input and output once it runs on more than one thread, which about doubles the work
    of the c′-channel convs); unchanged on one thread (a worker of the batch split,
    ``fad_d2.modeling.batch_threads``, or a one-thread run: no reorder there, and NCHW was the
    faster layout, ``benchmarks/search_head.py``), on other devices, under tracing and inside
    :func:`input_layout`.  Values are the same in either layout."""
    if (_cpu_channels_last and x.device.type == "cpu" and x.dim() == 4 and not torch.jit.is_tracing()
            and torch.get_num_threads() > 1):
        return x.contiguous(memory_format=torch.channels_last)
    return x


@contextlib.contextmanager
def input_layout():
    """Within this context the cell groups compute in their input's layout (NCHW for the
    detectors' features) instead of channels-last on the CPU: the reference the tests and
    ``benchmarks/search_head.py`` compare the channels-last path with."""
    global _cpu_channels_last
    previous, _cpu_channels_last = _cpu_channels_last, False
    try:
        yield
    finally:
        _cpu_channels_last = previous


class _Edge(nn.Module):
    """The two 1×1 convs of an edge: ``reduce`` (c → c′) and ``expand`` (c′ → c), each with
    norm + ReLU (paper), or plain convs with a bias when ``released``."""

    def __init__(self, channels: int, inner_channels: int, norm: str, released: bool = False):
        super().__init__()
        self.released = released
        edge_norm = "" if released else norm
        self.reduce = conv_norm_act(channels, inner_channels, 1, norm=edge_norm,
                                    activation=not released)
        self.expand = conv_norm_act(inner_channels, channels, 1, norm=edge_norm,
                                    activation=not released)


class DerivedEdge(_Edge):
    """A derived edge running transformation ``op``: Tensor[N, c, H, W] → Tensor[N, c, H, W].

    ``decouple=True`` keeps the search-time H after t1 / t2 (see ``transformations.py``);
    ``dilated_bias=True`` gives its dilated depthwise conv a bias (released code);
    ``released=True``: the released cell's plain 1×1 convs.
    """

    def __init__(self, channels: int, inner_channels: int, op: str, norm: str = "GN",
                 decouple: bool = False, dilated_bias: bool = False, released: bool = False):
        super().__init__(channels, inner_channels, norm, released)
        self.op = op
        self.block = build_transformation(op, inner_channels, norm, decouple, dilated_bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.expand(self.block(self.reduce(x)))


class SearchEdge(_Edge):
    """A search edge: (Tensor[N, c, H, W], weights Tensor[K]) → Tensor[N, c, H, W], where
    ``weights`` = softmax(αᵢⱼ) over ``space.choices``."""

    def __init__(self, channels: int, inner_channels: int, space: Union[str, SearchSpace],
                 repshare: bool = True, norm: str = "GN", released: bool = False):
        super().__init__(channels, inner_channels, norm, released)
        self.channels = channels
        self.inner_channels = inner_channels
        self.norm = norm
        self.block = build_mixed_op(space, inner_channels, repshare, norm)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return self.expand(self.block(self.reduce(x), weights))

    def extract_edge(self, op: str) -> DerivedEdge:
        """The derived edge for ``op`` with this edge's weights (H kept when the space
        decouples): equal to this edge with one-hot weights on ``op``."""
        edge = DerivedEdge(self.channels, self.inner_channels, op, self.norm,
                           decouple=self.block.decouple,
                           dilated_bias=self.block.space.dilated_bias, released=self.released)
        copy_module_weights(edge.reduce, self.reduce)
        copy_module_weights(edge.expand, self.expand)
        copy_module_weights(edge.block, self.block.extract_transformation(op))
        return edge


class _Cell(nn.Module):
    """What surrounds a cell's nodes.  Paper cell: the output 1×1 conv (+ norm + ReLU) of the
    concatenated intermediate nodes, 3c → c.  Released cell: a ``preprocess`` 1×1 conv + norm +
    ReLU (→ c) on each input whose width in ``input_channels`` is not c (``nn.Identity``
    otherwise), and the concatenation (3c) as output."""

    def __init__(self, channels: int, num_nodes: int, norm: str, kind: CellKind,
                 input_channels: Optional[Sequence[int]]):
        super().__init__()
        self.channels = channels
        self.num_nodes = num_nodes
        self.kind = kind
        widths = tuple(input_channels or (channels,) * kind.num_inputs)
        if len(widths) != kind.num_inputs:
            raise ValueError(f"the {kind.name} cell has {kind.num_inputs} input(s), got widths "
                             f"{list(widths)}")
        self.input_channels = widths
        if kind.released:
            self.preprocess = nn.ModuleList(
                nn.Identity() if w == channels else conv_norm_act(w, channels, 1, norm=norm)
                for w in widths)
            self.output = None
        else:
            if widths != (channels,):
                raise ValueError(f"the paper cell's input must have c = {channels} channels, "
                                 f"got {widths[0]}")
            self.preprocess = None
            self.output = conv_norm_act(num_nodes * channels, channels, 1, norm=norm)

    @property
    def output_channels(self) -> int:
        """c (paper cell) or n·c (released cell: the concatenated nodes)."""
        return self.channels if self.output is not None else self.num_nodes * self.channels

    def _inputs(self, x) -> List[Tensor]:
        """The input states: ``[x]`` (paper), or the preprocessed pair ``x`` (released)."""
        if self.preprocess is None:
            return [x]
        if isinstance(x, Tensor) or len(x) != len(self.preprocess):
            raise ValueError(f"the released cell takes {len(self.preprocess)} input tensors")
        return [pre(s) for pre, s in zip(self.preprocess, x)]

    def _combine(self, states: List[Tensor]) -> Tensor:
        nodes = torch.cat(states[self.kind.num_inputs:], dim=1)
        return nodes if self.output is None else self.output(nodes)

    def _copy_surroundings(self, dst: "_Cell"):
        """Copy the output conv or the preprocess convs into ``dst`` (same kind and widths)."""
        for name in ("output", "preprocess"):
            if getattr(self, name) is not None:
                copy_module_weights(getattr(dst, name), getattr(self, name))


class SearchCell(_Cell):
    """A search cell: every earlier state feeds every intermediate node (6 edges for 3 nodes
    of the paper cell, 9 for the released cell).

    ``forward(x, alpha: Tensor[E, K])``: paper cell ``x`` Tensor[N, c, H, W] → Tensor[N, c, H, W];
    released cell ``x`` a pair (Tensor[N, cᵢ, H, W] with cᵢ = ``input_channels[i]``) →
    Tensor[N, 3c, H, W].  Row e of α belongs to edge ``edge_pairs[e]`` (= ``cell_edges(num_nodes,
    cell)``), softmax over the last dim is taken here.
    """

    def __init__(self, channels: int, inner_channels: int, space: Union[str, SearchSpace],
                 repshare: bool = True, num_nodes: int = 3, norm: str = "GN",
                 cell: Union[str, CellKind] = "paper",
                 input_channels: Optional[Sequence[int]] = None):
        kind = get_cell_kind(cell)
        super().__init__(channels, num_nodes, norm, kind, input_channels)
        self.space = get_search_space(space)
        self.edge_pairs = cell_edges(num_nodes, kind)
        self.edges = nn.ModuleList(
            SearchEdge(channels, inner_channels, self.space, repshare, norm, kind.released)
            for _ in self.edge_pairs
        )

    @property
    def num_edges(self) -> int:
        return len(self.edge_pairs)

    def forward(self, x: Tensor, alpha: Tensor) -> Tensor:
        if tuple(alpha.shape) != (self.num_edges, self.space.num_choices):
            raise ValueError(f"α must have shape [{self.num_edges}, {self.space.num_choices}], "
                             f"got {list(alpha.shape)}")
        weights = torch.softmax(alpha, dim=-1)
        states = self._inputs(x)
        for j in range(len(states), len(states) + self.num_nodes):
            terms = [edge(states[i], weights[e])
                     for e, (edge, (i, target)) in enumerate(zip(self.edges, self.edge_pairs))
                     if target == j]
            states.append(sum(terms[1:], terms[0]))
        return self._combine(states)

    def extract_cell(self, cell_genotype: CellGenotype) -> "DerivedCell":
        """The derived cell for ``cell_genotype`` with this cell's weights (kept edges and the
        output conv or preprocess convs copied; H kept when the space decouples)."""
        check_cell_genotype(cell_genotype, self.space)
        if cell_genotype.cell != self.kind.name:
            raise ValueError(f"a {cell_genotype.cell} cell genotype cannot be extracted from a "
                             f"{self.kind.name} search cell")
        derived = DerivedCell(self.channels, self.edges[0].inner_channels, cell_genotype,
                              self.edges[0].norm, decouple=self.edges[0].block.decouple,
                              dilated_bias=self.space.dilated_bias,
                              input_channels=self.input_channels)
        self._copy_surroundings(derived)
        for j, (node, kept) in enumerate(zip(cell_genotype.nodes, derived.nodes),
                                         start=self.kind.first_node()):
            for choice, edge in zip(node, kept):
                source = self.edges[self.edge_pairs.index((choice.input, j))]
                copy_module_weights(edge, source.extract_edge(choice.op))
        return derived


class DerivedCell(_Cell):
    """A derived cell built from a :class:`CellGenotype`, of its kind: paper cell
    Tensor[N, c, H, W] → same shape; released cell a pair of Tensor[N, cᵢ, H, W]
    (cᵢ = ``input_channels[i]``) → Tensor[N, 3c, H, W].

    ``nodes[k-1]`` holds the kept edges of intermediate node k (paper: one for node 1, two
    after; released: two each).
    """

    def __init__(self, channels: int, inner_channels: int, cell_genotype: CellGenotype,
                 norm: str = "GN", decouple: bool = False, dilated_bias: bool = False,
                 input_channels: Optional[Sequence[int]] = None):
        super().__init__(channels, cell_genotype.num_nodes, norm, cell_genotype.kind,
                         input_channels)
        self.genotype = check_cell_genotype(cell_genotype)
        self.nodes = nn.ModuleList(
            nn.ModuleList(DerivedEdge(channels, inner_channels, c.op, norm, decouple, dilated_bias,
                                      self.kind.released)
                          for c in node)
            for node in cell_genotype.nodes
        )

    def forward(self, x) -> Tensor:
        states = self._inputs(x)
        for edges, node in zip(self.nodes, self.genotype.nodes):
            terms = [edge(states[choice.input]) for edge, choice in zip(edges, node)]
            states.append(sum(terms[1:], terms[0]))
        return self._combine(states)


class CellGroup(nn.Module):
    """M cells in sequence with one architecture: Tensor[N, c, H, W] → Tensor[N, c, H, W].

    Search mode (``genotype=None``): M :class:`SearchCell` s sharing the architecture
    parameter ``alpha`` (nn.Parameter Tensor[E, K], initialised 1e-3·N(0, 1) as in DARTS).
    Derived mode: M :class:`DerivedCell` s built from ``genotype``; no α.  When ``space`` is
    given in derived mode, the genotype's ops must belong to it and its ``dilated_bias`` applies.

    ``forward(x, skip=None)``: the paper cell computes on ``x + skip`` (the module's shortcut
    into group 2); the released cell takes the pair (x, skip), or (x, x) without ``skip``,
    passes the two previous states from cell to cell and ends with ``reduce``, a 1×1 conv
    3c → c (with bias, no norm, no ReLU).

    Args:
        channels: c; inner_channels: c′; num_cells: M.
        space: search space (name or object); required in search mode.
        repshare: RepShare mixed ops (search mode; ignored by spaces without RepShare).
        genotype: the group's :class:`CellGenotype` for a derived group.
        decouple: derived mode: keep H after t1 / t2 (to inherit decoupled search weights).
        name: the group's name in genotypes (e.g. ``"box"``, ``"cls"``).
        cell: the cell kind (``"paper"`` | ``"released"``); a derived group's genotype must
            be of this kind.
    """

    def __init__(self, channels: int, inner_channels: int, num_cells: int = 1,
                 space: Union[str, SearchSpace, None] = None, repshare: bool = True,
                 genotype: Optional[CellGenotype] = None, norm: str = "GN", name: str = "",
                 num_nodes: int = 3, decouple: bool = False,
                 cell: Union[str, CellKind] = "paper"):
        super().__init__()
        self.name = name
        self.kind = get_cell_kind(cell)
        self.space = get_search_space(space) if space is not None else None
        if genotype is not None:
            check_cell_genotype(genotype, self.space, source=f"cell group {name!r}")
            if genotype.cell != self.kind.name:
                raise ValueError(f"cell group {name!r}: the genotype is for the {genotype.cell} "
                                 f"cell, the group is a {self.kind.name} cell group")
            num_nodes = genotype.num_nodes
        elif self.space is None:
            raise ValueError(f"cell group {name!r}: a search group needs a search space")
        self.num_nodes = num_nodes
        dilated_bias = self.space is not None and self.space.dilated_bias
        widths = (channels,) * self.kind.num_inputs
        cells = []
        for _ in range(num_cells):
            if genotype is None:
                cells.append(SearchCell(channels, inner_channels, self.space, repshare, num_nodes,
                                        norm, self.kind, widths))
            else:
                cells.append(DerivedCell(channels, inner_channels, genotype, norm, decouple,
                                         dilated_bias, widths))
            widths = (widths[-1], cells[-1].output_channels)[-self.kind.num_inputs:]
        self.cells = nn.ModuleList(cells)
        self.reduce = (conv_norm_act(widths[-1], channels, 1, norm="", activation=False)
                       if self.kind.released else None)
        self.alpha = (nn.Parameter(1e-3 * torch.randn(len(cell_edges(num_nodes, self.kind)),
                                                      self.space.num_choices))
                      if genotype is None else None)
        self.genotype = genotype

    @property
    def is_search(self) -> bool:
        return self.genotype is None

    def forward(self, x: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        """``x``, ``skip``: Tensor[N, c, H, W] → Tensor[N, c, H, W]."""
        x = cell_layout(x)
        skip = None if skip is None else cell_layout(skip)
        run = ((lambda cell, inputs: cell(inputs, self.alpha)) if self.is_search
               else (lambda cell, inputs: cell(inputs)))
        if not self.kind.released:
            x = x if skip is None else x + skip
            for cell in self.cells:
                x = run(cell, x)
            return x
        s0, s1 = x, (x if skip is None else skip)
        for cell in self.cells:
            s0, s1 = s1, run(cell, (s0, s1))
        return self.reduce(s1)

    def derive(self) -> CellGenotype:
        """The cell genotype derived from the current α (search mode only)."""
        if not self.is_search:
            raise RuntimeError(f"cell group {self.name!r} is derived: it has no α")
        derive = derive_released_cell if self.kind.released else derive_cell
        return derive(self.alpha, self.space, self.num_nodes)
