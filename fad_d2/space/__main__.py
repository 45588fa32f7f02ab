"""``python -m fad_d2.space [--search-space full] [--cell paper] [--inner-channels 96]
[--dilated-bias] [--json]``: print the counts of a search space for a cell kind, with the
parameters of each transformation at c′.

``python -m fad_d2.space convert RELEASED.txt -o genotype.json``: convert the authors' released
genotype strings (one ``Genotype(normal=[...], normal_concat=range(2, 5))`` line per group, box
first; blank lines and ``#`` comments skipped; ``-`` reads stdin) to a genotype file of the
released cell (``fad_d2/space/convert.py``)."""
from __future__ import annotations

import argparse
import json
import sys

from .convert import convert_released
from .counting import format_summary, summarize_space
from .genotype import CELL_KINDS, GenotypeError, save_genotype
from .spaces import SEARCH_SPACES

# The search space of each cell kind when --search-space is not given: the released code's
# search space has its 10 transformations (no t6)
DEFAULT_SPACE = {"paper": "full", "released": "no_dil3"}


def counts_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fad_d2.space", description=__doc__)
    parser.add_argument("--search-space", default=None,
                        help=f"one of {', '.join(SEARCH_SPACES)}, or 'all' (default: full for the "
                             f"paper cell, no_dil3 for the released cell)")
    parser.add_argument("--cell", default="paper", choices=list(CELL_KINDS),
                        help="cell kind: paper (6 edges) or released (the authors' code, 9 edges)")
    parser.add_argument("--num-groups", type=int, default=2, help="groups in the module")
    parser.add_argument("--num-nodes", type=int, default=3, help="intermediate nodes per cell")
    parser.add_argument("--inner-channels", type=int, default=96,
                        help="c' at which transformations' parameters are counted (default: 96)")
    parser.add_argument("--dilated-bias", action="store_true",
                        help="dilated depthwise convs with a bias (the authors' released code)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    requested = args.search_space or DEFAULT_SPACE[args.cell]
    names = list(SEARCH_SPACES) if requested == "all" else [requested]
    if any(name not in SEARCH_SPACES for name in names):
        parser.error(f"unknown search space {requested!r} "
                     f"(valid: {', '.join(SEARCH_SPACES)}, all)")
    summaries = [summarize_space(SEARCH_SPACES[name].with_options(dilated_bias=args.dilated_bias),
                                 args.num_groups, args.num_nodes, args.inner_channels, args.cell)
                 for name in names]
    if args.json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    else:
        print("\n\n".join(format_summary(s) for s in summaries))
    return 0


def convert_main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fad_d2.space convert",
        description="Convert the authors' released genotype strings (one line per group, box "
                    "first) to a genotype file of the released cell.")
    parser.add_argument("input", help="text file of Genotype(...) lines, or - for stdin")
    parser.add_argument("-o", "--output", required=True, help="genotype JSON file to write")
    parser.add_argument("--groups", default="box,cls",
                        help="group names in line order, comma-separated (default: box,cls; "
                             "a mask head: mask)")
    parser.add_argument("--search-space", default="no_dil3",
                        help="search space of the genotype (default: no_dil3, the released ops)")
    parser.add_argument("--note", default=None, help="stored in the file's meta as 'source'")
    args = parser.parse_args(argv)
    try:
        if args.input == "-":
            text = sys.stdin.read()
        else:
            with open(args.input, encoding="utf-8") as f:
                text = f.read()
        lines = [line.strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        genotype = convert_released(lines, tuple(args.groups.split(",")), args.search_space,
                                    source=args.input)
        save_genotype(genotype, args.output,
                      meta={"converted_from": "released-code Genotype strings",
                            **({"source": args.note} if args.note else {})})
    except (GenotypeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["convert"]:
        return convert_main(argv[1:])
    return counts_main(argv)


if __name__ == "__main__":
    sys.exit(main())
