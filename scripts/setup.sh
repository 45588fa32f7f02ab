#!/usr/bin/env bash
# One-command set-up of fad_d2 on a fresh machine (idempotent).
#
#   scripts/setup.sh            creates .venv/ in the repository and installs into it:
#                               torch/torchvision, the dependencies, Detectron2, fad_d2 (editable)
#
# Environment:
#   FAD_D2_TORCH   pip requirement(s) for torch + torchvision
#                  (default "torch==2.14.1 torchvision==0.29.1"; e.g. set a CUDA/CPU build here)
#   FAD_D2_VENV    where the virtual environment lives (default <repo>/.venv)
#   FAD_D2_DETECTRON2_ROUTE  force a Detectron2 route (see scripts/install_detectron2.py)
#
# A second run compares a stamp of the inputs (this script, pyproject.toml, FAD_D2_TORCH) and
# returns at once when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FAD_D2_VENV:-$ROOT/.venv}"
TORCH_SPEC="${FAD_D2_TORCH:-torch==2.14.1 torchvision==0.29.1}"
PY="$VENV/bin/python"
STAMP="$VENV/.fad_d2_setup_stamp"

want_stamp="$(cat "$ROOT/scripts/setup.sh" "$ROOT/scripts/install_detectron2.py" "$ROOT/pyproject.toml" \
  | sha256sum | cut -d' ' -f1) $TORCH_SPEC"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] \
   && "$PY" -c "import torch, detectron2, fad_d2" 2>/dev/null; then
  echo "[fad_d2] setup: $VENV is up to date"
  exit 0
fi

echo "[fad_d2] setup: creating/updating $VENV"
[[ -x "$PY" ]] || python3 -m venv "$VENV"
"$PY" -m pip install --quiet --upgrade "pip>=23" wheel "setuptools>=64,<81"
echo "[fad_d2] setup: installing $TORCH_SPEC"
# shellcheck disable=SC2086
"$PY" -m pip install --quiet $TORCH_SPEC
echo "[fad_d2] setup: installing Detectron2's dependencies"
"$PY" -m pip install --quiet fvcore iopath pycocotools omegaconf hydra-core yacs termcolor tabulate \
  cloudpickle tqdm tensorboard matplotlib "Pillow" "opencv-python-headless" "setuptools>=64,<81"
"$PY" "$ROOT/scripts/install_detectron2.py"
echo "[fad_d2] setup: installing fad_d2 (editable, with the dev extra)"
"$PY" -m pip install --quiet --no-build-isolation -e "$ROOT[dev]"
"$PY" -c "import fad_d2, detectron2, torch; print('[fad_d2] setup: ok: torch', torch.__version__, '| detectron2', detectron2.__version__)"
echo "$want_stamp" > "$STAMP"
