"""Splitting a model's parameters into architecture parameters α and weights w (bilevel
search, paper §3.2): α of every search :class:`CellGroup` (its ``alpha``), and the rest."""
from __future__ import annotations

from typing import List, Tuple

from torch import nn

from .cell import CellGroup

__all__ = ["named_architecture_parameters", "architecture_parameters", "weight_parameters"]


def named_architecture_parameters(module: nn.Module) -> List[Tuple[str, nn.Parameter]]:
    """[(group name, α)] for every search ``CellGroup`` in ``module``, each α once, in module
    order (a group without a name is named by its module path)."""
    found, seen = [], set()
    for path, sub in module.named_modules():
        if isinstance(sub, CellGroup) and sub.alpha is not None and id(sub.alpha) not in seen:
            seen.add(id(sub.alpha))
            found.append((sub.name or path, sub.alpha))
    return found


def architecture_parameters(module: nn.Module) -> List[nn.Parameter]:
    """Every α of every search ``CellGroup`` in ``module`` (unique)."""
    return [alpha for _, alpha in named_architecture_parameters(module)]


def weight_parameters(module: nn.Module) -> List[nn.Parameter]:
    """Every parameter of ``module`` that is not an α (unique)."""
    alphas = {id(a) for a in architecture_parameters(module)}
    return [p for p in module.parameters() if id(p) not in alphas]
