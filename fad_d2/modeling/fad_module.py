"""The searchable module of FAD (paper §3.1, Fig. 1): two groups of cells over an FPN level.

Sequential layout (paper)::

    x ──► group 1 (box) ──► h1 ──────────────────────► box regression, centerness
    │                        │
    └──────── shortcut ──────┴─► (+) ──► group 2 (cls) ──► h2 ──► classification

``box_first=False`` swaps the two groups (the appendix's reversed order: classes from group 1);
the ``parallel`` layout feeds ``x`` to both groups (like the stock towers).  Architecture and
weights are shared over FPN levels.  Group names in genotypes are always ``"box"`` and ``"cls"``.

With the released code's two-input cell (``cell="released"``) the shortcut is group 2's second
input instead of a sum: group 1 computes on (x, x), group 2 on (h1, x) (``CellGroup.forward``).
"""
from typing import Optional, Sequence, Tuple

from torch import Tensor, nn

from ..space import Genotype, SearchSpace
from ..space.cell import cell_layout
from .heads import build_cell_groups, fad_head_spec

GROUP_NAMES = fad_head_spec("FADHead").groups  # ("box", "cls")
LAYOUTS = ("sequential", "parallel")


class FADModule(nn.Module):
    """Two ``CellGroup``\\ s (c channels between cells, c′ inside transformation blocks).

    Args:
        channels: c, the FPN channels (in = out).
        inner_channels: c′ per group, ``(c′_box, c′_cls)`` (paper "@128-256": ``(128, 256)``).
        num_cells: M per group, ``(M_box, M_cls)``; ignored in search mode (M = 1).
        space: the search space; a derived module's ops must belong to it.
        genotype: ``None`` builds the search supernet (α per group), else the derived module.
        cell: the cell kind, ``"paper"`` or ``"released"`` (the genotype's must be the same).
    """

    def __init__(self, *, channels: int, inner_channels: Sequence[int], num_cells: Sequence[int],
                 space: SearchSpace, repshare: bool = True, genotype: Optional[Genotype] = None,
                 num_nodes: int = 3, norm: str = "GN", layout: str = "sequential",
                 box_first: bool = True, cell: str = "paper"):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout: {layout!r} is not one of {LAYOUTS}")
        if len(inner_channels) != 2 or len(num_cells) != 2:
            raise ValueError(f"inner_channels and num_cells need one value per group {GROUP_NAMES}, "
                             f"got {list(inner_channels)} and {list(num_cells)}")
        self.layout = layout
        self.box_first = box_first
        self.box, self.cls = build_cell_groups(
            names=GROUP_NAMES, channels=channels, inner_channels=inner_channels, num_cells=num_cells,
            space=space, repshare=repshare, genotype=genotype, num_nodes=num_nodes, norm=norm,
            cell=cell,
        )

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``x``: Tensor[N, c, H, W] → (box feature, cls feature), each Tensor[N, c, H, W]
        (channels-last on the CPU, where the groups compute in that layout: ``cell_layout``)."""
        x = cell_layout(x)
        if self.layout == "parallel":
            return self.box(x), self.cls(x)
        first, second = (self.box, self.cls) if self.box_first else (self.cls, self.box)
        h1 = first(x)
        h2 = second(h1, skip=x)
        return (h1, h2) if self.box_first else (h2, h1)

