#!/usr/bin/env bash
# The GPU check on a lent GPU machine whose python3 holds PyTorch but not Detectron2: installs the
# wheels of .whl/ (scripts/gpu_wheels.sh downloads them where PyPI is reachable) into /tmp/site
# when detectron2 is not importable, then runs `python -m benchmarks.gpu_check --device cuda`
# under an 8-minute limit, writing gpu_check.{json,md} to $OUT (default benchmarks/results).
#
#   benchmarks/gpu_check.sh [gpu_check options]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import detectron2" 2>/dev/null; then
  if ! compgen -G ".whl/*.whl" >/dev/null; then
    echo "error: detectron2 is not importable by $PY and .whl/ holds no wheels (run scripts/gpu_wheels.sh where PyPI is reachable)" >&2
    exit 2
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('[gpu_check]', torch.__version__, torch.cuda.get_device_name(0))"
exec timeout 480 "$PY" -m benchmarks.gpu_check --device cuda --out "${OUT:-benchmarks/results}" "$@"
