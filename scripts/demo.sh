#!/usr/bin/env bash
# The main job on the embedded dataset: demo search, then the stock and the FAD-FCOS demo trained
# and evaluated (see run_demo.py).
# Runs on the GPU when one is visible, else on the CPU. Outputs go to output/demo/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
$PY -m fad_d2.demo "$@"
