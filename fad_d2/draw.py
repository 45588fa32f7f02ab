"""Drawing derived cells like the paper's Fig. 3.

``python -m fad_d2.draw GENOTYPE.json -o cell.png`` (or ``cell.svg``).

One panel per group: the input node(s), the intermediate nodes and the output node (concat
+ 1×1 conv) on a line, numbered as the genotype's cell kind numbers its states (paper cell: input
0, nodes 1…n; released cell: inputs 0 and 1, nodes 2…n+1, output the 3c concat); each kept edge is an arrow labelled with its transformation and
receptive field, coloured by stream (std / sep / darts).  The file type follows the suffix of
the output path (``.png``, ``.svg``, ``.pdf``).  Uses matplotlib's Agg canvas, no pyplot.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch
from matplotlib.path import Path

from .space.genotype import CellGenotype, Genotype, GenotypeError, load_genotype
from .space.transformations import TRANSFORMATIONS

__all__ = ["STREAM_COLORS", "draw_genotype", "main"]

STREAM_COLORS = {"std": "#1f77b4", "sep": "#ff7f0e", "darts": "#2ca02c"}
NODE_RADIUS = 0.22
SPACING = 2.4  # distance between consecutive nodes
BEND = 1.5  # control-point height per skipped node of an edge arc


def _bezier(start, control, end, t: float):
    return tuple((1 - t) ** 2 * s + 2 * (1 - t) * t * c + t ** 2 * e
                 for s, c, e in zip(start, control, end))


def _leave_node(curve, node, ts):
    """The first point of the curve, over parameters ``ts``, outside the circle of ``node``."""
    for t in ts:
        point = _bezier(*curve, t)
        if math.dist(point, node) >= NODE_RADIUS:
            return point
    return node


def _arrow(ax, start, end, bend: float, color: str, style: str = "-", width: float = 1.8):
    """A quadratic curve from node ``start`` to node ``end`` bent ``bend`` upward; returns the
    curve's midpoint (for the label)."""
    curve = (start, ((start[0] + end[0]) / 2, start[1] + bend), end)
    steps = [0.02 * k for k in range(1, 50)]
    tail = _leave_node(curve, start, steps)
    head = _leave_node(curve, end, [1 - t for t in steps])
    path = Path([tail, curve[1], head], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
    ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=14, color=color,
                                 linewidth=width, linestyle=style))
    return _bezier(*curve, 0.5)


def _draw_cell(ax, cell: CellGenotype, title: str):
    first = cell.kind.first_node()
    last = first + cell.num_nodes  # the output node's position
    positions = {k: (k * SPACING, 0.0) for k in range(last + 1)}
    labels = {last: "out", **({0: "in"} if first == 1 else {k: f"in{k}" for k in range(first)})}
    for k, (x, y) in positions.items():
        ax.add_patch(Circle((x, y), NODE_RADIUS, facecolor="#f0f0f0", edgecolor="black",
                            zorder=3))
        ax.text(x, y, labels.get(k, str(k)), ha="center", va="center", fontsize=10, zorder=4)
    for k in range(first, last):  # concatenation into the output node
        _arrow(ax, positions[k], positions[last], -0.5 * (last - 1 - k), "#999999",
               style="--", width=1.0)
    top = 0.0
    for k, node in enumerate(cell.nodes, start=first):
        for choice in node:
            spec = TRANSFORMATIONS[choice.op]
            bend = BEND * (k - choice.input - 1)
            top = max(top, bend / 2)
            color = STREAM_COLORS[spec.stream]
            mid = _arrow(ax, positions[choice.input], positions[k], bend, color)
            # straight edges: label above the line; arcs: label on the arc's apex
            ax.text(mid[0], mid[1] + (0.12 if bend == 0 else 0.0),
                    f"{choice.op}\nRF {spec.receptive_field}", ha="center",
                    va="bottom" if bend == 0 else "center", fontsize=8, color=color,
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none",
                              alpha=0.85), zorder=5)
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.6, last * SPACING + 0.6)
    ax.set_ylim(-0.25 * (cell.num_nodes - 1) - 0.5, top + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_genotype(genotype: Genotype, path: str, title: Optional[str] = None) -> str:
    """Draw every group's cell of ``genotype`` (one panel per group) into ``path``; the file
    type follows its suffix.  Returns ``path``."""
    groups = genotype.groups
    fig = Figure(figsize=(9, 3.2 * len(groups)))
    FigureCanvasAgg(fig)
    for g, (name, cell) in enumerate(groups):
        ax = fig.add_subplot(len(groups), 1, g + 1)
        _draw_cell(ax, cell, f"group {g + 1}: {name}")
    streams = sorted({TRANSFORMATIONS[op].stream for _, cell in groups for op in cell.ops})
    handles = [Line2D([], [], color=STREAM_COLORS[s], linewidth=2, label=s) for s in streams]
    concat = "concat (3c) + next cell's preprocess or reduce" if genotype.cell == "released" else "concat + 1x1 conv"
    handles.append(Line2D([], [], color="#999999", linestyle="--", label=concat))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(title or f"FAD genotype (search space '{genotype.search_space}')")
    fig.savefig(path, bbox_inches="tight")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fad_d2.draw",
                                     description="Draw the cells of a FAD genotype file.")
    parser.add_argument("genotype", help="genotype JSON file (format fad-genotype/1)")
    parser.add_argument("-o", "--output", required=True, help="image path: .png, .svg or .pdf")
    parser.add_argument("--title", default=None, help="figure title")
    args = parser.parse_args(argv)
    try:
        genotype = load_genotype(args.genotype)
    except (GenotypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    draw_genotype(genotype, args.output, args.title)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
