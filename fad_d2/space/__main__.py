"""``python -m fad_d2.space --search-space full [--inner-channels 96] [--dilated-bias] [--json]``:
print the counts of a search space, with the parameters of each transformation at c′."""
from __future__ import annotations

import argparse
import json
import sys

from .counting import format_summary, summarize_space
from .spaces import SEARCH_SPACES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fad_d2.space", description=__doc__)
    parser.add_argument("--search-space", default="full",
                        help=f"one of {', '.join(SEARCH_SPACES)}, or 'all' (default: full)")
    parser.add_argument("--num-groups", type=int, default=2, help="groups in the module")
    parser.add_argument("--num-nodes", type=int, default=3, help="intermediate nodes per cell")
    parser.add_argument("--inner-channels", type=int, default=96,
                        help="c' at which transformations' parameters are counted (default: 96)")
    parser.add_argument("--dilated-bias", action="store_true",
                        help="dilated depthwise convs with a bias (the authors' released code)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    names = list(SEARCH_SPACES) if args.search_space == "all" else [args.search_space]
    if any(name not in SEARCH_SPACES for name in names):
        parser.error(f"unknown search space {args.search_space!r} "
                     f"(valid: {', '.join(SEARCH_SPACES)}, all)")
    summaries = [summarize_space(SEARCH_SPACES[name].with_options(dilated_bias=args.dilated_bias),
                                 args.num_groups, args.num_nodes, args.inner_channels)
                 for name in names]
    if args.json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    else:
        print("\n\n".join(format_summary(s) for s in summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
