#!/usr/bin/env python
"""Copy generated results into the Markdown pages that show them.

A page shows a generated file between two comment lines::

    <!-- include benchmarks/results/README_table.md -->
    ...the file's text, copied here...
    <!-- end include -->

    python scripts/docs_includes.py            # refresh every block of README.md and docs/*.md
    python scripts/docs_includes.py --check    # exit 1 naming each block that differs from its file

Paths are relative to the repository root.  ``make bench`` refreshes the blocks after it has
rewritten the results; ``tests/test_docs.py`` checks that none is stale.
"""
import argparse
import glob
import os
import re
import sys
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = re.compile(r"^<!-- include (\S+) -->\n(.*?)^<!-- end include -->$", re.S | re.M)


def pages(root: str = ROOT) -> List[str]:
    """README.md and every page under docs/."""
    return [os.path.join(root, "README.md"), *sorted(glob.glob(os.path.join(root, "docs", "**", "*.md"),
                                                              recursive=True))]


def _included(root: str, relative: str) -> str:
    with open(os.path.join(root, relative)) as f:
        text = f.read()
    return text if text.endswith("\n") else text + "\n"


def refreshed(text: str, root: str = ROOT) -> str:
    """``text`` with every include block's body replaced by its file's current text."""
    return BLOCK.sub(lambda m: f"<!-- include {m[1]} -->\n{_included(root, m[1])}<!-- end include -->", text)


def stale_blocks(path: str, root: str = ROOT) -> List[Tuple[str, str]]:
    """``(page, included file)`` for each block of ``path`` whose body differs from its file."""
    with open(path) as f:
        text = f.read()
    return [(path, m[1]) for m in BLOCK.finditer(text) if m[2] != _included(root, m[1])]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale blocks instead of refreshing them")
    args = parser.parse_args(argv)
    if args.check:
        stale = [s for page in pages() for s in stale_blocks(page)]
        for page, included in stale:
            print(f"{os.path.relpath(page, ROOT)}: the block of {included} differs from the file", file=sys.stderr)
        sys.exit(1 if stale else 0)
    for page in pages():
        with open(page) as f:
            text = f.read()
        new = refreshed(text)
        if new != text:
            with open(page, "w") as f:
                f.write(new)
            print(f"refreshed {os.path.relpath(page, ROOT)}")


if __name__ == "__main__":
    main()
