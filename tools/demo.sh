#!/usr/bin/env bash
# The FGMoE protocol in miniature, on CPU, on SynthRoom (no downloads):
#   1. generate SynthRoom in the NYUD-v2 layout (fine-tuning data) and a second
#      SynthRoom set with another seed (encoder pre-training data);
#   2. pre-train a tiny ViT encoder on the second set (stand-in for ImageNet
#      pre-training; cached in work_dirs/demo/pretrain);
#   3. freeze it and fine-tune the FGMoE decoder with tools/train.py;
#   4. evaluate every NYUD task (mIoU, depth RMSE, normal error, odsF) with
#      tools/test.py, writing visual panels, predictions and metrics.json;
#   5. write work_dirs/demo/results.md.
# Sizes are environment variables (defaults fit ~15 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${DEMO_DIR:-work_dirs/demo}
DATA=${DEMO_DATA:-data/synth_room_demo}
HEIGHT=${DEMO_HEIGHT:-144}
WIDTH=${DEMO_WIDTH:-192}
NUM_TRAIN=${DEMO_NUM_TRAIN:-300}
NUM_VAL=${DEMO_NUM_VAL:-50}
PRETRAIN_ITERS=${DEMO_PRETRAIN_ITERS:-500}
FINETUNE_ITERS=${DEMO_FINETUNE_ITERS:-500}
EDGE_THRESHOLDS=${DEMO_EDGE_THRESHOLDS:-99}
CONFIG=configs/demo/fgmoe_vit-tiny_demo.py
step() { printf '\n\033[1m[demo %s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
# shellcheck source=tools/cache_stamp.sh
source tools/cache_stamp.sh
loader_opts() {
    local root=$1
    echo "train_dataloader.dataset.data_root=$root val_dataloader.dataset.data_root=$root" \
         "test_dataloader.dataset.data_root=$root"
}

step "1/5 SynthRoom: $NUM_TRAIN train + $NUM_VAL val images at ${HEIGHT}x${WIDTH}"
FINETUNE_DATA="--num-train $NUM_TRAIN --num-val $NUM_VAL --height $HEIGHT --width $WIDTH --seed 0"
PRETRAIN_DATA="--num-train $NUM_TRAIN --num-val 8 --height $HEIGHT --width $WIDTH --seed 1"
for split in finetune pretrain; do
    params=$([[ $split == finetune ]] && echo "$FINETUNE_DATA" || echo "$PRETRAIN_DATA")
    if ! check_stamp "$DATA/$split" demo_params "$params" 'DEMO_DATA'; then
        # shellcheck disable=SC2086  # $params is a list of flags
        "$PYTHON" tools/dataset_converters/synth_room.py "$DATA/$split" --layout nyud $params
        echo "$params" > "$DATA/$split/demo_params"
    fi
done

ENCODER="$OUT/pretrain/iter_${PRETRAIN_ITERS}.pth"
PRETRAIN_CONFIG=configs/demo/vit-tiny_synth-room-pretrain.py
# The resolved config (pipeline, model, schedule) is part of what made the
# cached encoder: a changed one is not silently reused.
pretrain_cfg=$("$PYTHON" tools/misc/print_config.py "$PRETRAIN_CONFIG" | sha256sum | cut -c1-12)
PRETRAIN_PARAMS="$PRETRAIN_DATA --iters $PRETRAIN_ITERS --config $pretrain_cfg"
step "2/5 encoder pre-training ($PRETRAIN_ITERS iterations, whole network trains)"
if check_stamp "$OUT/pretrain" demo_params "$PRETRAIN_PARAMS" 'DEMO_DIR' \
        && [[ -f "$ENCODER" ]]; then
    echo "cached: $ENCODER"
else
    "$PYTHON" tools/train.py "$PRETRAIN_CONFIG" \
        --work-dir "$OUT/pretrain" --cfg-options $(loader_opts "$DATA/pretrain/NYUDv2") \
        train_cfg.max_iters="$PRETRAIN_ITERS" \
        "param_scheduler.0.end=$PRETRAIN_ITERS" \
        default_hooks.checkpoint.interval="$PRETRAIN_ITERS"
    echo "$PRETRAIN_PARAMS" > "$OUT/pretrain/demo_params"
fi

step "3/5 FGMoE decoder fine-tuning on the frozen encoder ($FINETUNE_ITERS iterations)"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$OUT/fgmoe" --cfg-options \
    $(loader_opts "$DATA/finetune/NYUDv2") \
    model.backbone.init_cfg.checkpoint="$ENCODER" \
    train_cfg.max_iters="$FINETUNE_ITERS" train_cfg.val_interval="$((FINETUNE_ITERS + 1))" \
    "param_scheduler.0.end=$FINETUNE_ITERS" \
    default_hooks.checkpoint.interval="$FINETUNE_ITERS"

step "4/5 evaluation of every task (odsF with $EDGE_THRESHOLDS thresholds), panels and predictions"
"$PYTHON" tools/test.py "$CONFIG" "$OUT/fgmoe/iter_${FINETUNE_ITERS}.pth" \
    --work-dir "$OUT/fgmoe" --show-dir "$OUT/panels" --out "$OUT/predictions" \
    --cfg-options $(loader_opts "$DATA/finetune/NYUDv2") \
    test_evaluator.edge_thresholds="$EDGE_THRESHOLDS"

step "5/5 results table"
"$PYTHON" - "$OUT" <<'PY'
import json, sys, os.path as osp
out = sys.argv[1]
metrics = json.load(open(osp.join(out, 'fgmoe', 'metrics.json')))
rows = [('semseg', 'mIoU', '↑'), ('depth', 'rmse', '↓'), ('normals', 'mean', '↓'),
        ('edge', 'odsF', '↑')]
lines = ['| task | metric | value |', '|---|---|---|']
for task, name, arrow in rows:
    key = f'{task}.{name}'
    if key in metrics:
        lines.append(f'| {task} | {name} {arrow} | {metrics[key]:.4f} |')
table = '\n'.join(lines)
with open(osp.join(out, 'results.md'), 'w') as f:
    f.write('# SynthRoom demo (tiny ViT pre-trained on SynthRoom, frozen; FGMoE decoder)\n\n')
    f.write(table + '\n')
print(table)
print(f'\npanels: {out}/panels   predictions: {out}/predictions   metrics: {out}/fgmoe/metrics.json')
PY
