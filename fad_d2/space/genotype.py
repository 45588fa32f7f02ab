"""Genotypes: derived architectures, and their JSON files (format ``fad-genotype/1``).

Two kinds of cell (:data:`CELL_KINDS`), numbering their states (inputs, then intermediate
nodes) from 0:

* ``paper`` (paper §3.1, Fig. 1): one input, state 0; intermediate nodes 1…n (n = 3);
* ``released`` (the authors' released code, DARTS-style): two inputs, states 0 and 1;
  intermediate nodes 2…n+1.

The node at state s has s candidate inputs (every earlier state) and keeps min(2, s) of them:
the paper cell keeps 1, 2, 2 of its 1 + 2 + 3 = 6 edges, the released cell 2, 2, 2 of its
2 + 3 + 4 = 9.  Each kept edge is an :class:`EdgeChoice` (transformation, input state).
A :class:`Genotype` names one :class:`CellGenotype` per group of a searchable module.

File format (one file per searchable module; human-readable, one edge list per line)::

    {
      "format": "fad-genotype/1",
      "search_space": "full",
      "cell": "paper",                    (optional when reading: files without it are "paper")
      "groups": [
        {
          "name": "box",
          "nodes": [
            [{"op": "sep_3x3_dil2", "input": 0}],
            [{"op": "std_5x5", "input": 0}, {"op": "std_3x3", "input": 1}],
            [{"op": "sep_7x7", "input": 1}, {"op": "std_3x3_dil3", "input": 2}]
          ]
        },
        {"name": "cls", "nodes": [...]}
      ],
      "meta": {...}                       (optional, free-form, not part of the genotype)
    }

Loading validates everything and raises :class:`GenotypeError` naming the JSON path of the
first error in document order, e.g.
``genotype.json: $.groups[1].nodes[2][0].op: 'std_11x11' is not a transformation of search
space 'full' (valid: ...)``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple, Union

from ..errors import FADError
from .spaces import SEARCH_SPACES, SearchSpace
from .transformations import TRANSFORMATIONS

__all__ = [
    "FORMAT",
    "CellKind",
    "CELL_KINDS",
    "get_cell_kind",
    "EdgeChoice",
    "CellGenotype",
    "Genotype",
    "GenotypeError",
    "cell_edges",
    "genotype_to_dict",
    "genotype_from_dict",
    "genotype_to_json",
    "save_genotype",
    "load_genotype",
]

FORMAT = "fad-genotype/1"


@dataclass(frozen=True)
class CellKind:
    """How a cell is wired around its intermediate nodes (``MODEL.FAD.CELL``).

    Attributes:
        name: ``"paper"`` or ``"released"``.
        num_inputs: input states (1 or 2); the intermediate nodes follow them.
        released: the released code's wiring: plain 1×1 edge convs (no norm, no ReLU), a
            1×1 conv + norm + ReLU "preprocess" on an input whose width is not c, the cell's
            output the 3c concatenation of its nodes; else the paper's (edge convs and a 3c → c
            output conv with norm and ReLU).
        description: one line for tables.
    """

    name: str
    num_inputs: int
    released: bool
    description: str

    def first_node(self) -> int:
        """The state index of intermediate node 1 (paper 1, released 2)."""
        return self.num_inputs


CELL_KINDS = {
    kind.name: kind
    for kind in (
        CellKind("paper", 1, False, "one input, 1+2+3 = 6 edges (paper Fig. 1)"),
        CellKind("released", 2, True, "two inputs, 2+3+4 = 9 edges (the authors' released code)"),
    )
}
"""The cell kinds by name; ``paper`` is the default everywhere."""


def get_cell_kind(name: Union[str, CellKind]) -> CellKind:
    """The cell kind called ``name`` (a ``CellKind`` is returned as is); ValueError listing the
    valid names otherwise."""
    if isinstance(name, CellKind):
        return name
    try:
        return CELL_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown cell kind {name!r} (valid: {', '.join(CELL_KINDS)})") from None


def cell_edges(num_nodes: int = 3, cell: Union[str, CellKind] = "paper") -> Tuple[Tuple[int, int], ...]:
    """The edges (i, j) of a search cell in α row order: for each node state j, for i = 0…j−1.

    paper, ``num_nodes=3`` → (0,1), (0,2), (1,2), (0,3), (1,3), (2,3): 6 edges;
    released → (0,2), (1,2), (0,3), (1,3), (2,3), (0,4), (1,4), (2,4), (3,4): 9 edges.
    """
    first = get_cell_kind(cell).first_node()
    return tuple((i, j) for j in range(first, first + num_nodes) for i in range(j))


def kept_edges(node: int) -> int:
    """How many incoming edges the node at state index ``node`` keeps: min(2, node) (paper
    node 1 keeps its only edge; every other node of either cell kind keeps 2)."""
    return min(2, node)


@dataclass(frozen=True)
class EdgeChoice:
    """One kept edge: transformation ``op`` applied to node ``input`` (0 = cell input)."""

    op: str
    input: int


@dataclass(frozen=True)
class CellGenotype:
    """A derived cell of kind ``cell``: ``nodes[k-1]`` are the kept incoming edges of
    intermediate node k (state index k for the paper cell, k + 1 for the released one)."""

    nodes: Tuple[Tuple[EdgeChoice, ...], ...]
    cell: str = "paper"

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(tuple(node) for node in self.nodes))
        get_cell_kind(self.cell)

    @property
    def kind(self) -> CellKind:
        return CELL_KINDS[self.cell]

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def ops(self) -> Tuple[str, ...]:
        """All kept transformations, node by node."""
        return tuple(edge.op for node in self.nodes for edge in node)


@dataclass(frozen=True)
class Genotype:
    """A derived searchable module: one cell genotype per named group, in module order."""

    search_space: str
    groups: Tuple[Tuple[str, CellGenotype], ...]

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple((name, cell) for name, cell in self.groups))
        kinds = {cell.cell for _, cell in self.groups}
        if len(kinds) > 1:
            raise ValueError(f"the groups of one genotype must have one cell kind, got {sorted(kinds)}")

    @property
    def cell(self) -> str:
        """The cell kind of every group (``"paper"`` for a genotype without groups)."""
        return self.groups[0][1].cell if self.groups else "paper"

    @property
    def group_names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self.groups)

    def group(self, name: str) -> CellGenotype:
        """The cell genotype of group ``name`` (KeyError listing the groups otherwise)."""
        for group_name, cell in self.groups:
            if group_name == name:
                return cell
        raise KeyError(f"genotype has no group {name!r} (groups: {list(self.group_names)})")


class GenotypeError(FADError):
    """A malformed genotype; the message is ``"<source>: <JSON path>: <what is wrong>"``."""

    def __init__(self, source: str, path: str, detail: str):
        super().__init__(f"{source}: {path}: {detail}")
        self.source = source
        self.path = path
        self.detail = detail


# --------------------------------------------------------------------------- to JSON

def _cell_to_list(cell: CellGenotype):
    return [[{"op": e.op, "input": e.input} for e in node] for node in cell.nodes]


def genotype_to_dict(genotype: Genotype, meta: Optional[Mapping[str, Any]] = None) -> dict:
    """The JSON-ready dict of the file format (``meta`` is stored as is when given)."""
    d = {
        "format": FORMAT,
        "search_space": genotype.search_space,
        "cell": genotype.cell,
        "groups": [{"name": name, "nodes": _cell_to_list(cell)} for name, cell in genotype.groups],
    }
    if meta is not None:
        d["meta"] = dict(meta)
    return d


def genotype_to_json(genotype: Genotype, meta: Optional[Mapping[str, Any]] = None) -> str:
    """The file text: indented, one node (its list of edges) per line."""
    d = genotype_to_dict(genotype, meta)
    lines = ["{", f'  "format": {json.dumps(d["format"])},',
             f'  "search_space": {json.dumps(d["search_space"])},',
             f'  "cell": {json.dumps(d["cell"])},', '  "groups": [']
    for g, group in enumerate(d["groups"]):
        nodes = ",\n".join(f"        {json.dumps(node)}" for node in group["nodes"])
        lines += ["    {", f'      "name": {json.dumps(group["name"])},', '      "nodes": [',
                  nodes, "      ]", "    }" + ("," if g < len(d["groups"]) - 1 else "")]
    lines.append("  ]" + ("," if "meta" in d else ""))
    if "meta" in d:
        lines.append(f'  "meta": {json.dumps(d["meta"], sort_keys=True)}')
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- from JSON

class _Checker:
    """Walks a parsed JSON document, raising GenotypeError at the first problem."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, detail: str):
        raise GenotypeError(self.source, path, detail)

    def typed(self, value, kind, path: str):
        names = {dict: "an object", list: "a list", str: "a string", int: "an integer"}
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(path, f"expected {names[kind]}, got {type(value).__name__} {value!r}")
        return value

    def keys(self, obj: dict, path: str, required, optional=()):
        self.typed(obj, dict, path)
        for key in required:
            if key not in obj:
                self.fail(path, f"missing key {key!r}")
        for key in obj:
            if key not in required and key not in optional:
                valid = ", ".join(required + optional)
                self.fail(f"{path}.{key}", f"unknown key (valid: {valid})")

    def cell(self, nodes, space: SearchSpace, num_nodes: int, path: str,
             kind: CellKind) -> CellGenotype:
        self.typed(nodes, list, path)
        if len(nodes) != num_nodes:
            self.fail(path, f"expected {num_nodes} nodes, got {len(nodes)}")
        parsed = []
        for k, node in enumerate(nodes, start=kind.first_node()):  # k: the node's state index
            node_path = f"{path}[{k - kind.first_node()}]"
            self.typed(node, list, node_path)
            if len(node) != kept_edges(k):
                self.fail(node_path, f"node {k} must keep exactly {kept_edges(k)} incoming "
                                     f"edge(s), got {len(node)}")
            edges = []
            for e, edge in enumerate(node):
                edge_path = f"{node_path}[{e}]"
                self.keys(edge, edge_path, ("op", "input"))
                op = self.typed(edge["op"], str, f"{edge_path}.op")
                if op not in space.ops:
                    self.fail(f"{edge_path}.op", f"{op!r} is not a transformation of search "
                                                 f"space {space.name!r} (valid: "
                                                 f"{', '.join(space.ops)})")
                source = self.typed(edge["input"], int, f"{edge_path}.input")
                if not 0 <= source < k:
                    self.fail(f"{edge_path}.input", f"input {source} is out of range for node "
                                                    f"{k} (valid: 0..{k - 1})")
                if any(prev.input == source for prev in edges):
                    self.fail(f"{edge_path}.input", f"duplicate input {source}: node {k} "
                                                    f"already has an edge from it")
                edges.append(EdgeChoice(op, source))
            parsed.append(tuple(edges))
        return CellGenotype(tuple(parsed), kind.name)

    def genotype(self, d, num_nodes: Optional[int]) -> Genotype:
        self.typed(d, dict, "$")
        if "format" not in d:  # the tag first, so a file of another format says so
            self.fail("$", "missing key 'format'")
        if d["format"] != FORMAT:
            self.fail("$.format", f"unsupported format {d['format']!r} (expected {FORMAT!r})")
        self.keys(d, "$", ("format", "search_space", "groups"), ("cell", "meta"))
        name = self.typed(d["search_space"], str, "$.search_space")
        if name not in SEARCH_SPACES:
            self.fail("$.search_space", f"unknown search space {name!r} "
                                        f"(valid: {', '.join(SEARCH_SPACES)})")
        space = SEARCH_SPACES[name]
        cell = self.typed(d.get("cell", "paper"), str, "$.cell")
        if cell not in CELL_KINDS:
            self.fail("$.cell", f"unknown cell kind {cell!r} (valid: {', '.join(CELL_KINDS)})")
        groups = self.typed(d["groups"], list, "$.groups")
        if not groups:
            self.fail("$.groups", "expected at least one group")
        parsed = []
        for g, group in enumerate(groups):
            path = f"$.groups[{g}]"
            self.keys(group, path, ("name", "nodes"))
            group_name = self.typed(group["name"], str, f"{path}.name")
            if not group_name:
                self.fail(f"{path}.name", "empty group name")
            if any(group_name == seen for seen, _ in parsed):
                self.fail(f"{path}.name", f"duplicate group name {group_name!r}")
            if num_nodes is None:  # the file states its node count: the first group's
                num_nodes = len(self.typed(group["nodes"], list, f"{path}.nodes"))
                if num_nodes == 0:
                    self.fail(f"{path}.nodes", "expected at least one node")
            parsed.append((group_name, self.cell(group["nodes"], space, num_nodes,
                                                 f"{path}.nodes", CELL_KINDS[cell])))
        if "meta" in d:
            self.typed(d["meta"], dict, "$.meta")
        return Genotype(name, tuple(parsed))


def genotype_from_dict(d: Any, source: str = "<dict>", num_nodes: Optional[int] = None) -> Genotype:
    """Validate a parsed genotype file and build the :class:`Genotype`.

    Raises GenotypeError("<source>: <JSON path>: <detail>") at the first error: format tag,
    keys (missing / unknown), types, known search space and cell kind, node count (``num_nodes``; ``None``:
    the first group's, the same for every group), edges
    per node, op names in the space, input indices in range, duplicate inputs, group names.
    """
    return _Checker(source).genotype(d, num_nodes)


def check_cell_genotype(cell: CellGenotype, space: Optional[SearchSpace] = None,
                        source: str = "<cell>") -> CellGenotype:
    """Validate a cell genotype built in code (same rules as the file, ops in ``space`` when
    given, any transformation otherwise); returns it.  Raises GenotypeError."""
    if space is None:
        space = SearchSpace("<any>", tuple(TRANSFORMATIONS), False, False)
    return _Checker(source).cell(_cell_to_list(cell), space, cell.num_nodes, "$.nodes", cell.kind)


def save_genotype(genotype: Genotype, path: str, meta: Optional[Mapping[str, Any]] = None):
    """Validate and write ``genotype`` to ``path`` (format ``fad-genotype/1``)."""
    text = genotype_to_json(genotype, meta)
    genotype_from_dict(json.loads(text), source=str(path))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def load_genotype(path: str, num_nodes: Optional[int] = None) -> Genotype:
    """Read and validate a genotype file (``num_nodes``: the node count it must have; ``None``:
    the one the file states).

    Raises FileNotFoundError when ``path`` does not exist, GenotypeError for invalid JSON
    (``"<path>: line L column C: invalid JSON: ..."``) or an invalid genotype.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"genotype file not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise GenotypeError(str(path), f"line {e.lineno} column {e.colno}",
                            f"invalid JSON: {e.msg}") from None
    return genotype_from_dict(d, source=str(path), num_nodes=num_nodes)
