#!/usr/bin/env python
"""``fad-train`` in a checkout: train and evaluate a detector (see ``fad_d2/cli/train.py``)."""
from fad_d2.cli.train import cli

if __name__ == "__main__":
    cli()
