#!/usr/bin/env bash
# Download, on a machine that reaches PyPI, the wheels that a bare GPU machine with PyTorch
# (Python 3.12, x86-64) lacks to run fad_d2 there: Detectron2 (the repacked pure-Python build of
# scripts/install_detectron2.py, made with the project's .venv)
# and its pure dependencies, without their own dependencies (the GPU image has numpy, matplotlib,
# tqdm, tensorboard, …).  benchmarks/gpu_check.sh installs them from .whl/ into /tmp/site.
#
#   scripts/gpu_wheels.sh [PYTHON_VERSION]     # default 3.12; writes .whl/ (git-ignored)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYVER="${1:-3.12}"
PIP="${PIP:-$ROOT/.venv/bin/python -m pip}"
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)
mkdir -p "$ROOT/.whl"
# pure-Python packages (some publish only sources), at the versions of the project's .venv:
# wheels built here, py3-none-any
PURE="fvcore|iopath|yacs|omegaconf|hydra-core|termcolor|portalocker"
mapfile -t PINS < <($PIP freeze 2>/dev/null | grep -iE "^($PURE)==")
COCO="$($PIP freeze 2>/dev/null | grep -i "^pycocotools==" || true)"
if [[ ${#PINS[@]} -ne 7 || -z "$COCO" ]]; then
  echo "error: the .venv lacks one of ${PURE//|/, }, pycocotools (run make install first)" >&2
  exit 2
fi
$PIP wheel --quiet --no-deps -w "$ROOT/.whl" "${PINS[@]}" antlr4-python3-runtime==4.9.3 "setuptools>=64,<81"
# compiled: the build for the GPU machine's Python
# shellcheck disable=SC2046
$PIP download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  $(printf -- '--platform %s ' "${PLATFORMS[@]}") -d "$ROOT/.whl" "$COCO"
"${FAD_D2_PY:-$ROOT/.venv/bin/python}" "$ROOT/scripts/install_detectron2.py" --wheel-dir "$ROOT/.whl"
ls "$ROOT/.whl"
