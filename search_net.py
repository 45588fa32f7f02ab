#!/usr/bin/env python
"""``fad-search`` in a checkout: search a FAD architecture (see ``fad_d2/cli/search.py``)."""
from fad_d2.cli.search import cli

if __name__ == "__main__":
    cli()
