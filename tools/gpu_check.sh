#!/usr/bin/env bash
# One prepared check of mmfgmoe on a CUDA machine, in an environment that has
# mmcv's CUDA ops (README "Install into an existing environment"):
#   1. environment: torch, CUDA, GPU, mmcv compiled with CUDA;
#   2. mmcv's CUDA deformable convolution against TorchDCN (agreement, speed);
#   3. benchmark_moe.py on the GPU (sparse vs masked vs dense);
#   4. benchmark_train_step.py: frozen vs full fine-tuning, ViT-B, 448x576;
#   5. SynthRoom at NYUD size, then tools/train.py configs/fgmoe_nyud.py (ViT-B,
#      random init, 448x576 crops) for $ITERS iterations and tools/test.py;
#   6. $CHECK_DIR/summary.md with every figure above.
# Sizes are environment variables; the defaults take a few minutes on one
# H100/H200-class GPU. Everything runs on CPU too (small sizes, for trying the
# script): DEVICE=cpu, CONFIG=<a tiny config>, ITERS=2 ...
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${CHECK_DIR:-work_dirs/gpu_check}
DATA=${CHECK_DATA:-data/synth_room_480}
CONFIG=${CONFIG:-configs/fgmoe_nyud.py}
DEVICE=${DEVICE:-cuda}
ITERS=${ITERS:-300}
BATCH=${BATCH:-4}
NUM_TRAIN=${NUM_TRAIN:-200}
NUM_VAL=${NUM_VAL:-20}
# The test step's odsF: 'fast' (~0.14 s per NYUD-size image) keeps the run short;
# pyEdgeEval (the reported numbers' backend) takes ~10 s per image on the CPU.
EDGE_BACKEND=${EDGE_BACKEND:-fast}
HEIGHT=${HEIGHT:-480}
WIDTH=${WIDTH:-640}
SHAPE=${SHAPE:-448 576}
DCN_SHAPE=${DCN_SHAPE:-4 256 56 72}
MOE_TOKENS=${MOE_TOKENS:-4096 16384 65536}
# mmengine's AmpOptimizerWrapper trains on CUDA/NPU only.
if [[ "$DEVICE" == cuda* ]]; then AMP=${AMP:-1}; else AMP=${AMP:-0}; fi
mkdir -p "$OUT"
# shellcheck source=tools/cache_stamp.sh
source tools/cache_stamp.sh
step() { printf '\n\033[1m[gpu_check %s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
# Each step's output goes to the terminal and to its own log.
run() { local log=$1; shift; "$@" 2>&1 | tee "$OUT/$log"; }

step "1/6 environment"
run env.log "$PYTHON" - "$DEVICE" <<'PY'
import sys
import torch
import mmcv
from mmcv.ops import get_compiler_version, get_compiling_cuda_version
device = sys.argv[1]
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}), '
      f'mmcv {mmcv.__version__} ops built with {get_compiler_version()}, '
      f'CUDA {get_compiling_cuda_version()}')
if device.startswith('cuda'):
    if not torch.cuda.is_available():
        sys.exit('DEVICE=cuda but torch sees no GPU')
    if get_compiling_cuda_version() == 'not available':
        sys.exit('mmcv was built without CUDA ops: rebuild it on this machine '
                 '(README, "Install into an existing environment")')
    print(f'GPU: {torch.cuda.get_device_name()}, '
          f'{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB')
PY

step "2/6 mmcv deformable convolution vs TorchDCN"
run dcn.log "$PYTHON" tools/analysis_tools/benchmark_dcn.py --device "$DEVICE" \
    --shape $DCN_SHAPE

step "3/6 MoE dispatch"
run moe.log "$PYTHON" tools/analysis_tools/benchmark_moe.py --device "$DEVICE" \
    --tokens $MOE_TOKENS

step "4/6 frozen vs full fine-tuning step ($CONFIG, $SHAPE, batch $BATCH)"
run train_step.log "$PYTHON" tools/analysis_tools/benchmark_train_step.py "$CONFIG" \
    --device "$DEVICE" --shape $SHAPE --batch-size "$BATCH"

step "5/6 SynthRoom ${HEIGHT}x${WIDTH} and $ITERS training iterations of $CONFIG"
data_params="--num-train $NUM_TRAIN --num-val $NUM_VAL --height $HEIGHT --width $WIDTH"
if ! check_stamp "$DATA" check_params "$data_params" CHECK_DATA; then
    # shellcheck disable=SC2086  # a list of flags
    "$PYTHON" tools/dataset_converters/synth_room.py "$DATA" --layout nyud $data_params
    echo "$data_params" > "$DATA/check_params"
fi
loader_opts=()
for split in train val test; do
    loader_opts+=("${split}_dataloader.dataset.data_root=$DATA/NYUDv2")
done
amp_flag=()
[[ "$AMP" == 1 ]] && amp_flag=(--amp)
rm -rf "$OUT/train"
run train.log "$PYTHON" tools/train.py "$CONFIG" --work-dir "$OUT/train" "${amp_flag[@]}" \
    --cfg-options "${loader_opts[@]}" model.backbone.init_cfg=None \
    train_dataloader.batch_size="$BATCH" train_cfg.max_iters="$ITERS" \
    train_cfg.val_interval="$((ITERS + 1))" default_hooks.checkpoint.interval="$ITERS" \
    default_hooks.logger.interval="$(( ITERS < 10 ? ITERS : 10 ))"
run test.log "$PYTHON" tools/test.py "$CONFIG" "$OUT/train/iter_${ITERS}.pth" \
    --work-dir "$OUT/train" --cfg-options "${loader_opts[@]}" model.backbone.init_cfg=None \
    test_evaluator.edge_backend="$EDGE_BACKEND"

step "6/6 summary"
"$PYTHON" - "$OUT" "$ITERS" <<'PY'
import glob, json, os.path as osp, statistics, sys
out, iters = sys.argv[1], int(sys.argv[2])

def lines(log, *starts):
    with open(osp.join(out, log)) as f:
        text = f.read().splitlines()
    return [t for t in text if t.lstrip().startswith(starts)]

scalars = sorted(glob.glob(osp.join(out, 'train', '*', 'vis_data', 'scalars.json')))
records = [json.loads(t) for t in open(scalars[-1])] if scalars else []
train = [r for r in records if 'loss' in r and 'time' in r]
# The first logging windows include start-up and cudnn autotuning.
steady = train[len(train) // 3:] or train
iter_time = statistics.median(r['time'] for r in steady) if steady else float('nan')
# mmengine logs memory on CUDA only.
memory = max((r['memory'] for r in train if 'memory' in r), default=None)
memory = 'n/a' if memory is None else f'{memory} MB'
with open(osp.join(out, 'train', 'metrics.json')) as f:
    metrics = json.load(f)
report = ['# mmfgmoe GPU check', '', '```'] + lines('env.log', 'torch', 'GPU')
report += lines('dcn.log', 'torchdcn_vs_mmcv_time')
report += lines('moe.log', 'gemm_only', 'sparse_vs_dense_ratio')
report += lines('train_step.log', 'frozen_vs_full_time')
report += [f'training: {iters} iterations, median {iter_time:.3f} s/iteration '
           f'after warm-up, max memory {memory} (mmengine log)',
           'test: ' + ', '.join(f'{k}={v:.4f}' for k, v in sorted(metrics.items())
                                 if isinstance(v, float)), '```']
text = '\n'.join(report) + '\n'
open(osp.join(out, 'summary.md'), 'w').write(text)
print(text)
PY
