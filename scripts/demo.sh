#!/usr/bin/env bash
# The main job on the embedded dataset: train the demo FCOS and evaluate it with COCOEvaluator.
# Runs on the GPU when one is visible, else on the CPU. Outputs go to output/demo/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
DEVICE=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
$PY train_net.py --config-file configs/Demo/fcos_R_18_FPN_demo.yaml MODEL.DEVICE "$DEVICE" \
  OUTPUT_DIR output/demo/fcos "$@"
