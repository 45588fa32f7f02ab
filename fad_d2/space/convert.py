"""Genotypes of the authors' released code → this project's genotype files.

The release (MalongTech/research-fad, ``fad_core/genotypes.py``; its README, "Explored
architectures") writes an architecture as one string per group, box group first::

    Genotype(normal=[[('sinSep_conv_3x3_x3', 0), ('std_conv_3x3_x3', 1)], ...],
             normal_concat=range(2, 5))

for its two-input cell: ``normal[k]`` lists the two kept edges (op, input state) of node k + 2,
inputs 0 and 1 being the cell's inputs.  :func:`parse_released_genotype` reads such a string
without evaluating it (Python's ``ast``, literals only); :func:`convert_released` turns one
string per group into a :class:`Genotype` of the ``released`` cell kind.

Op names (:data:`RELEASED_OPS`): the release names a transformation by its layer stack, e.g.
``std_conv_3x3_x2`` = two standard 3×3 layers = ``std_5x5`` here, ``sinSep_conv_3x3`` = one
depthwise + pointwise pair = ``sep_3x3``, ``+dil_conv_3x3`` = the dilation-2 depthwise-separable
layer (``_r3``: dilation 3).
"""
from __future__ import annotations

import ast
from typing import Dict, List, Sequence, Tuple

from .genotype import CellGenotype, EdgeChoice, Genotype, GenotypeError, check_cell_genotype
from .spaces import get_search_space

__all__ = ["RELEASED_OPS", "released_op_name", "parse_released_genotype", "convert_released"]


def _released_ops() -> Dict[str, str]:
    stacks = (("conv_3x3", "3x3"), ("conv_3x3_x2", "5x5"), ("conv_3x3_x3", "7x7"),
              ("conv_3x3+dil_conv_3x3", "3x3_dil2"), ("conv_3x3_x2+dil_conv_3x3", "5x5_dil2"),
              ("conv_3x3+dil_conv_3x3_r3", "3x3_dil3"))
    return {f"{prefix}_{stack}": f"{stream}_{suffix}"
            for prefix, stream in (("std", "std"), ("sinSep", "sep"))
            for stack, suffix in stacks}


RELEASED_OPS: Dict[str, str] = _released_ops()
"""Released-code op name → this project's transformation (12 names: both streams × t1…t6)."""


def released_op_name(name: str, source: str = "<genotype>") -> str:
    """This project's name of released-code op ``name``; GenotypeError for an unknown one."""
    try:
        return RELEASED_OPS[name]
    except KeyError:
        what = "'none' is never a kept op" if name == "none" else "unknown released-code op"
        raise GenotypeError(source, "op", f"{what} {name!r} (valid: {', '.join(RELEASED_OPS)})") from None


def _literal(node: ast.AST, source: str, where: str):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GenotypeError(source, where, f"expected a literal, got {ast.unparse(node)!r}") from None


def _concat(node: ast.AST, source: str) -> List[int]:
    """``range(a, b)`` or a list of ints."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and all(isinstance(a, ast.Constant) and type(a.value) is int
                                          for a in node.args)):
        return list(range(*(a.value for a in node.args)))
    value = _literal(node, source, "normal_concat")
    if not isinstance(value, (list, tuple)) or not all(type(v) is int for v in value):
        raise GenotypeError(source, "normal_concat", f"expected range(...) or a list of ints, "
                                                     f"got {ast.unparse(node)!r}")
    return list(value)


def parse_released_genotype(text: str, source: str = "<genotype>") -> List[List[Tuple[str, int]]]:
    """``"Genotype(normal=[[(op, input), ...], ...], normal_concat=range(2, n + 2))"`` → the
    ``normal`` list, checked: every node two (str, int) pairs, every node concatenated into the
    output.  Raises GenotypeError (``"<source>: <part>: <what>"``)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise GenotypeError(source, f"column {e.offset}", f"not a Genotype(...) expression: {e.msg}") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"
            and not tree.args):
        raise GenotypeError(source, "$", "expected Genotype(normal=..., normal_concat=...)")
    keywords = {k.arg: k.value for k in tree.keywords}
    if set(keywords) != {"normal", "normal_concat"}:
        raise GenotypeError(source, "$", f"expected the keywords normal and normal_concat, got "
                                         f"{sorted(map(str, keywords))}")
    normal = _literal(keywords["normal"], source, "normal")
    if not isinstance(normal, list) or not normal:
        raise GenotypeError(source, "normal", "expected a non-empty list of nodes")
    for k, node in enumerate(normal):
        if not (isinstance(node, list) and len(node) == 2 and all(
                isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str) and type(e[1]) is int
                for e in node)):
            raise GenotypeError(source, f"normal[{k}]", f"expected two (op, input) pairs, got {node!r}")
    concat = _concat(keywords["normal_concat"], source)
    expected = list(range(2, 2 + len(normal)))
    if concat != expected:
        raise GenotypeError(source, "normal_concat", f"{concat} is not every node "
                                                     f"(range(2, {2 + len(normal)})): not this cell")
    return normal


def convert_released(texts: Sequence[str], group_names: Sequence[str] = ("box", "cls"),
                     search_space: str = "no_dil3", source: str = "<genotype>") -> Genotype:
    """One released-code ``Genotype(...)`` string per group (in ``group_names`` order, box
    first) → the :class:`Genotype` of the ``released`` cell in ``search_space`` (default
    ``no_dil3``, the release's 10 transformations).  Kept edges are listed by input state.

    Raises GenotypeError for a malformed string, an unknown op, an op outside the space or an
    input out of range."""
    if len(texts) != len(group_names):
        raise GenotypeError(source, "$", f"expected {len(group_names)} genotype strings (groups "
                                         f"{', '.join(group_names)}), got {len(texts)}")
    space = get_search_space(search_space)
    groups = []
    for g, (name, text) in enumerate(zip(group_names, texts)):
        where = f"{source}: group {g + 1} ({name})"
        nodes = tuple(
            tuple(sorted((EdgeChoice(released_op_name(op, where), i) for op, i in node),
                         key=lambda e: e.input))
            for node in parse_released_genotype(text, where)
        )
        groups.append((name, check_cell_genotype(CellGenotype(nodes, "released"), space, where)))
    return Genotype(space.name, tuple(groups))
