"""``python -m fad_d2.space --search-space full [--json]``: print the counts of a search space."""
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
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    names = list(SEARCH_SPACES) if args.search_space == "all" else [args.search_space]
    if any(name not in SEARCH_SPACES for name in names):
        parser.error(f"unknown search space {args.search_space!r} "
                     f"(valid: {', '.join(SEARCH_SPACES)}, all)")
    summaries = [summarize_space(name, args.num_groups, args.num_nodes) for name in names]
    if args.json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    else:
        print("\n\n".join(format_summary(s) for s in summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
