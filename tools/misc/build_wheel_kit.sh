#!/usr/bin/env bash
# Wheels of mmsfc's OpenMMLab stack for an offline machine (a GPU node with no package index)
# whose Python and torch differ from this one's. Built here, where pip can reach an index; the
# node installs them with no index, next to its own torch.
#
# The kit:
#   mmengine 0.10.7, mmsegmentation 1.2.2 and their small pure-Python dependencies (downloaded);
#   mmcv 2.1.0 without compiled ops (the pure `mmcv-lite` wheel, built from the sdist, so it
#     does not depend on the node's torch), with a stand-in `mmcv._ext` whose every function
#     raises NotImplementedError naming the op: mmseg's `import mmseg.models` loads mmcv.ops,
#     but no component mmsfc builds (stages 1-4, the benchmarks) calls one;
#   pydensecrf2 1.1 compiled for TARGET_PYTHON (stage 2's CRF).
# Not in it (the node's own): torch, torchvision, numpy, opencv(-headless), scipy, matplotlib,
# pillow, pyyaml, rich, packaging; and mmpretrain (only its backbone configs need it).
#
# Usage: bash tools/misc/build_wheel_kit.sh [OUT_DIR] [TARGET_PYTHON]
#   OUT_DIR        default .whl (git-ignored with `echo /.whl/ >> .git/info/exclude`)
#   TARGET_PYTHON  an interpreter of the node's version here (e.g. python3.12), default python
# On the node, from the repository root:
#   python -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD
#   bash tools/misc/gpu_benchmarks.sh OUT 989
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.whl}
py=${2:-python}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "[kit] pure-Python wheels"
"$py" -m pip download -q --no-deps --only-binary=:all: -d "$out" \
    mmengine==0.10.7 mmsegmentation==1.2.2 addict yapf termcolor prettytable wcwidth ftfy \
    platformdirs

echo "[kit] mmcv-lite 2.1.0 with a stand-in mmcv._ext"
# mmcv 2.1.0's setup.py imports pkg_resources, which setuptools 81 removed.
echo 'setuptools<81' > "$tmp"/constraints.txt
export PIP_CONSTRAINT="$tmp"/constraints.txt
"$py" -m pip download -q --no-deps --no-binary=:all: -d "$tmp" mmcv==2.1.0
tar xzf "$tmp"/mmcv-2.1.0.tar.gz -C "$tmp"
cat > "$tmp"/mmcv-2.1.0/mmcv/_ext.py <<'EOF'
# Stand-in for mmcv's compiled ops in an mmcv-lite kit (tools/misc/build_wheel_kit.sh of mmsfc).
def __getattr__(name):

    def missing(*args, **kwargs):
        raise NotImplementedError(
            f'mmcv op {name!r} is not compiled in this mmcv-lite kit; install the full mmcv')

    return missing
EOF
MMCV_WITH_OPS=0 "$py" -m pip wheel -q --no-deps --no-cache-dir -w "$out" "$tmp"/mmcv-2.1.0
unset PIP_CONSTRAINT

echo "[kit] pydensecrf2 1.1 for $("$py" -c 'import sys; print(sys.version.split()[0])')"
"$py" -m pip wheel -q --no-deps -w "$out" pydensecrf2==1.1

ls -1 "$out"
du -sh "$out"
