#!/usr/bin/env bash
# Every GPU figure of docs/performance.md in one run, on random weights and
# generated data (nothing downloaded), each benchmark's output also written to OUT_DIR:
#   sfc_step.log         stage 1 at the reference batch (16 + 4 IBR at 512^2): fast / plain /
#                        bfloat16 step time, peak memory, FLOP, the fraction of the floor, and
#                        the bfloat16 loss curve against float32
#   deeplabv2_step.log   stage 4 (DeepLabV2 ResNet-101, batch 10 at 321^2): the same figures
#   pseudo_labels.log    stage 2: CAM inference images/s (fast / plain), the CRF pool at 1, 2
#                        and all cores, and the whole stage with inference overlapping the CRF
#   loader.log           stage 1's training loader alone (decode, crop, IBR re-decodes) with
#                        the config's workers: images/s, against the step's in sfc_step.log
#
# Usage: bash tools/misc/gpu_benchmarks.sh [OUT_DIR] [BF16_PEAK_TFLOPS]
#   BF16_PEAK_TFLOPS: the GPU's dense bfloat16 peak from its data sheet (989 for the H100 SXM and
#   the H200). SFC_ITERS / DEEPLAB_ITERS / PSEUDO_IMAGES set the lengths (300 / 50 / 64).
# A node without the OpenMMLab stack or a package index: see tools/misc/build_wheel_kit.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-work_dirs/gpu_benchmarks}
peak=${2:-989}
mkdir -p "$out"
python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else
"gpu_benchmarks.sh: no CUDA device visible to torch")'

failed=()
bench() {  # LOG COMMAND...: one benchmark; a failure is reported at the end, not fatal
  local log=$1
  shift
  "$@" 2>&1 | tee "$out/$log" || failed+=("$log")
}
SFC_CONFIG=configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py
bench sfc_step.log python tools/benchmark.py "$SFC_CONFIG" --batch-size 20 \
    --crop 512 --variants fast plain amp --channels-last --iters "${SFC_ITERS:-300}" \
    --peak-tflops "bfloat16=$peak"
bench deeplabv2_step.log python tools/benchmark.py \
    configs/deeplabv2/deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo.py \
    --batch-size 10 --crop 321 --variants fast plain amp --channels-last \
    --iters "${DEEPLAB_ITERS:-50}" --peak-tflops "bfloat16=$peak"
bench loader.log python tools/benchmark_loader.py "$SFC_CONFIG" --batches 50
bench pseudo_labels.log python tools/benchmark_pseudo_labels.py "$SFC_CONFIG" \
    --images "${PSEUDO_IMAGES:-64}" --channels-last
if ((${#failed[@]})); then
  echo "gpu_benchmarks.sh: failed: ${failed[*]} (logs in $out)" >&2
  exit 1
fi
