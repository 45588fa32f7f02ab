"""The searchable module of FAD (paper §3.1, Fig. 1): two groups of cells over an FPN level.

Sequential layout (paper)::

    x ──► group 1 (box) ──► h1 ──────────────────────► box regression, centerness
    │                        │
    └──────── shortcut ──────┴─► (+) ──► group 2 (cls) ──► h2 ──► classification

``box_first=False`` swaps the two groups (the appendix's reversed order: classes from group 1);
the ``parallel`` layout feeds ``x`` to both groups (like the stock towers).  Architecture and
weights are shared over FPN levels.  Group names in genotypes are always ``"box"`` and ``"cls"``.
"""
from typing import Optional, Sequence, Tuple

from torch import Tensor, nn

from ..space import CellGroup, Genotype, SearchSpace, check_cell_genotype, load_genotype

GROUP_NAMES = ("box", "cls")
LAYOUTS = ("sequential", "parallel")


class FADModule(nn.Module):
    """Two ``CellGroup``\\ s (c channels between cells, c′ inside transformation blocks).

    Args:
        channels: c, the FPN channels (in = out).
        inner_channels: c′ per group, ``(c′_box, c′_cls)`` (paper "@128-256": ``(128, 256)``).
        num_cells: M per group, ``(M_box, M_cls)``; ignored in search mode (M = 1).
        space: the search space; a derived module's ops must belong to it.
        genotype: ``None`` builds the search supernet (α per group), else the derived module.
    """

    def __init__(self, *, channels: int, inner_channels: Sequence[int], num_cells: Sequence[int],
                 space: SearchSpace, repshare: bool = True, genotype: Optional[Genotype] = None,
                 num_nodes: int = 3, norm: str = "GN", layout: str = "sequential",
                 box_first: bool = True):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"MODEL.FAD.LAYOUT: {layout!r} is not one of {LAYOUTS}")
        if len(inner_channels) != 2 or len(num_cells) != 2:
            raise ValueError(
                f"MODEL.FAD.INNER_CHANNELS and MODEL.FAD.NUM_CELLS need one value per group "
                f"{GROUP_NAMES}, got {list(inner_channels)} and {list(num_cells)}"
            )
        if genotype is not None:
            check_genotype_groups(genotype, GROUP_NAMES, "MODEL.FAD.GENOTYPE")
        self.layout = layout
        self.box_first = box_first
        groups = {}
        for name, c_inner, m in zip(GROUP_NAMES, inner_channels, num_cells):
            groups[name] = CellGroup(
                channels, c_inner, 1 if genotype is None else m, space=space, repshare=repshare,
                genotype=None if genotype is None else genotype.group(name), num_nodes=num_nodes,
                norm=norm, name=name,
            )
        self.box = groups["box"]
        self.cls = groups["cls"]

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``x``: Tensor[N, c, H, W] → (box feature, cls feature), each Tensor[N, c, H, W]."""
        if self.layout == "parallel":
            return self.box(x), self.cls(x)
        first, second = (self.box, self.cls) if self.box_first else (self.cls, self.box)
        h1 = first(x)
        h2 = second(h1 + x)
        return (h1, h2) if self.box_first else (h2, h1)


def load_head_genotype(path: str, space: SearchSpace, expected_groups: Sequence[str], key: str):
    """Load the genotype file of config key ``key`` (empty path: ``None``, the search supernet)
    and check it fits the head: its groups are ``expected_groups`` and every op is in ``space``."""
    if not path:
        return None
    genotype = load_genotype(path)
    check_genotype_groups(genotype, expected_groups, f"{key} ({path})")
    for name, cell in genotype.groups:
        check_cell_genotype(cell, space, source=f"{key} ({path}), group {name!r}")
    return genotype


def check_genotype_groups(genotype: Genotype, expected: Sequence[str], key: str):
    """Raise a ``ValueError`` naming ``key`` when the genotype's groups are not ``expected``."""
    if tuple(genotype.group_names) != tuple(expected):
        raise ValueError(
            f"{key}: the genotype has groups {list(genotype.group_names)} but this head needs "
            f"{list(expected)} (a genotype searched for another head?)"
        )
