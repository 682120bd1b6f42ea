#!/usr/bin/env bash
# Install mmsfc and its pinned stack into the current Python environment.
#
# Idempotent: when the stack already imports, only the (seconds-long) editable
# install of mmsfc runs. From scratch it takes ~15 min on 2 cores, nearly all of
# it compiling mmcv 2.1.0 (no wheel exists); pip caches the built wheel, so a
# second machine-local install takes seconds.
#
# Usage: bash tools/install.sh            (from the repository root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

stack_ready() {
  "$PYTHON" - <<'PY' 2>/dev/null
import torch, torchvision
assert torch.__version__.split('+')[0] == '2.5.1', torch.__version__
import mmcv.ops, mmseg.models, mmpretrain.models, pydensecrf.densecrf  # noqa
PY
}

if stack_ready; then
  echo "[install] torch/mmcv/mmseg/mmpretrain/pydensecrf already import: skipping the stack"
else
  echo "[install] installing torch 2.5.1 + torchvision 0.20.1 and build tools"
  # torch first: mmcv's setup.py imports it, hence --no-build-isolation below.
  "$PYTHON" -m pip install torch==2.5.1 torchvision==0.20.1 \
    setuptools==80.10.2 wheel==0.48.0 ninja==1.13.2
  echo "[install] installing the pinned stack (compiles mmcv 2.1.0 unless cached)"
  MAX_JOBS=${MAX_JOBS:-2} "$PYTHON" -m pip install --no-build-isolation -r requirements.txt
  stack_ready || { echo "[install] the stack does not import after installing" >&2; exit 1; }
fi

"$PYTHON" -m pip install --no-build-isolation --no-deps -e '.'
"$PYTHON" -m pip install pytest==9.0.3 ruff==0.17.6
echo "[install] done"
