#!/usr/bin/env bash
# Build (or confirm) the mmfgmoe virtual environment.
#
#   VENV=.venv bash tools/build_env.sh
#
# The environment is keyed on a hash of the requirement files, setup.py and
# this script; when the stamp in $VENV matches, nothing is rebuilt.
#
# mmcv 2.1.0 (the newest mmcv that mmseg 1.2.2 accepts) is published on PyPI
# only as an sdist, and mmseg needs its compiled ops, so we compile it once and
# keep the wheel in $MMFGMOE_WHEEL_CACHE (~/.cache/mmfgmoe/wheels), in a folder
# per Python, torch build and CUDA/CPU ops (the wheel's name says none of
# them); every later environment with the same three installs it in seconds.
#
# The one source change: mmcv's setup.py hard-codes `-std=c++17` (`c++14` for
# nvcc), while torch >= 2.13 headers refuse anything below C++20 and torch's
# cpp_extension only adds its own `-std` when the extension passes none. We raise
# the flag in an extracted copy of the sdist before building the wheel; nothing
# installed is ever edited.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Absolute paths: the mmcv build runs in another directory.
VENV=$(realpath -m "${VENV:-.venv}")
PYTHON=${PYTHON:-python3}
WHEEL_CACHE=$(realpath -m "${MMFGMOE_WHEEL_CACHE:-$HOME/.cache/mmfgmoe/wheels}")
MAX_JOBS=${MAX_JOBS:-$(nproc)}

log() { printf '\033[1m[build_env]\033[0m %s\n' "$*"; }

key=$(cat requirements/*.txt setup.py tools/build_env.sh | sha256sum | cut -c1-16)
stamp="$VENV/.mmfgmoe-env-$key"
if [[ -f "$stamp" ]]; then
    # mmcv's setup.py compiles CUDA ops only when torch sees a GPU (or
    # FORCE_CUDA=1): an environment built without one is rebuilt once torch
    # sees a GPU and mmcv has CPU ops only (never the other way round:
    # CUDA ops also run on the CPU).
    if "$VENV/bin/python" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(0)
from mmcv.ops import get_compiling_cuda_version
sys.exit(0 if get_compiling_cuda_version() != 'not available' else 1)
PY
    then
        exit 0
    fi
    log "torch sees a GPU but mmcv has CPU ops only: rebuilding mmcv with CUDA ops"
fi

mmcv_version=$(sed -n 's/^mmcv==//p' requirements/mminstall.txt)

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
        log "$PYTHON is $($PYTHON --version 2>&1); torch $(sed -n 's/^torch==//p' requirements/torch.txt) needs Python >= 3.10 (set PYTHON=python3.11, say)"
        exit 1
    }
    log "creating virtualenv $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
# The machine-wide pip config may list local indexes that lack a package; pip
# warns once per package about them, which buries the useful output.
pip() {
    "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 \
        | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}

log "build tools (setuptools<82 keeps pkg_resources for mmcv/mmengine)"
pip install -q -U pip
pip install -q -r requirements/build.txt

log "torch + torchvision (large; pip takes them from the local wheel store when it has them)"
pip install -q -r requirements/torch.txt

build_mmcv_wheel() {
    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    log "mmcv $mmcv_version: fetching the sdist"
    pip download -q --no-deps --no-binary :all: --no-build-isolation \
        "mmcv==$mmcv_version" -d "$work"
    tar -xzf "$work/mmcv-$mmcv_version.tar.gz" -C "$work"
    local src="$work/mmcv-$mmcv_version"
    if "$VENV/bin/python" - <<'PY'
import sys, torch
major, minor = (int(p) for p in torch.__version__.split('+')[0].split('.')[:2])
sys.exit(0 if (major, minor) >= (2, 13) else 1)
PY
    then
        log "torch >= 2.13 needs C++20: raising mmcv's hard-coded -std flags"
        sed -i -e 's/-std=c++17/-std=c++20/g' -e 's/-std=c++14/-std=c++20/g' "$src/setup.py"
        grep -q 'c++20' "$src/setup.py" || { log "could not find mmcv's -std flag"; exit 1; }
    fi
    log "mmcv $mmcv_version: compiling the ops with $MAX_JOBS jobs (~15 min on 2 cores with ninja, once per machine)"
    mkdir -p "$wheel_dir"
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=$MAX_JOBS \
        "$VENV/bin/python" -m pip wheel -v --no-deps --no-build-isolation . -w "$wheel_dir" \
        > "$work/build.log" 2>&1) || { tail -n 60 "$work/build.log"; exit 1; }
}

wheel_dir="$WHEEL_CACHE/$("$VENV/bin/python" - <<'PY'
import os, sys, torch
ops = 'cuda' if torch.cuda.is_available() or os.getenv('FORCE_CUDA') == '1' else 'cpu'
print(f'cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}-{ops}ops'.replace('+', '_'))
PY
)"
if ! ls "$wheel_dir"/mmcv-"$mmcv_version"-*.whl > /dev/null 2>&1; then
    build_mmcv_wheel
else
    log "mmcv $mmcv_version: reusing the wheel in $wheel_dir"
fi
# --force-reinstall: a CPU-ops mmcv of the same version may be installed
pip install -q --no-deps --force-reinstall "$wheel_dir"/mmcv-"$mmcv_version"-*.whl

log "OpenMMLab packages, pyEdgeEval, test tools and mmfgmoe (editable)"
pip install -q -e ".[tests,optional]" -r requirements/mminstall.txt

# mmengine asks for opencv-python (the GUI build, which needs libGL and Qt),
# requirements/ for opencv-python-headless; both write the same cv2/ package,
# and the last installed wins. Keep only the headless build so that `import
# cv2` works on servers without libGL.
cv_version=$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('opencv-python-headless'))")
if "$VENV/bin/python" -c "import importlib.metadata as m; m.version('opencv-python')" 2> /dev/null; then
    log "OpenCV: keeping only opencv-python-headless $cv_version"
    pip uninstall -q -y opencv-python opencv-python-headless
    pip install -q --no-deps "opencv-python-headless==$cv_version"
fi

"$VENV/bin/python" -c "import mmcv.ops, mmseg, mmpretrain, mmfgmoe; print('mmfgmoe', mmfgmoe.__version__, '| mmcv', mmcv.__version__, 'with ops')"
rm -f "$VENV"/.mmfgmoe-env-*
touch "$stamp"
log "environment ready: $VENV"
