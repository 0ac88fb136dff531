# Copyright (c) mmfgmoe contributors. All rights reserved.
"""tools/demo.sh refuses a cache made with other settings (the demo itself
is `make demo`, too long for the suite)."""
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_refuses_data_generated_with_other_sizes(tmp_path):
    data = tmp_path / 'data'
    (data / 'finetune' / 'NYUDv2' / 'gt_sets').mkdir(parents=True)
    stamp = '--num-train 300 --num-val 50 --height 96 --width 128 --seed 0'
    (data / 'finetune' / 'demo_params').write_text(stamp + '\n')
    env = dict(os.environ, PYTHON=sys.executable, DEMO_DATA=str(data),
               DEMO_DIR=str(tmp_path / 'out'))
    proc = subprocess.run(['bash', 'tools/demo.sh'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f'{data}/finetune was made with other settings ({stamp})' in \
        proc.stderr
    assert '--height 144 --width 192' in proc.stderr  # what was asked for
    assert not (tmp_path / 'out').exists()  # stopped before any training


def test_demo_refuses_an_encoder_from_another_pretrain_config(tmp_path):
    data, out = tmp_path / 'data', tmp_path / 'out'
    sizes = '--height 144 --width 192'
    stamps = dict(finetune=f'--num-train 300 --num-val 50 {sizes} --seed 0',
                  pretrain=f'--num-train 300 --num-val 8 {sizes} --seed 1')
    for split, stamp in stamps.items():
        (data / split).mkdir(parents=True)
        (data / split / 'demo_params').write_text(stamp + '\n')
    (out / 'pretrain').mkdir(parents=True)
    (out / 'pretrain' / 'iter_500.pth').write_bytes(b'')
    old = f'{stamps["pretrain"]} --iters 500'  # same sizes, no config hash
    (out / 'pretrain' / 'demo_params').write_text(old + '\n')
    env = dict(os.environ, PYTHON=sys.executable, DEMO_DATA=str(data),
               DEMO_DIR=str(out))
    proc = subprocess.run(['bash', 'tools/demo.sh'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f'{out}/pretrain was made with other settings ({old})' in \
        proc.stderr
    assert f'not: {old} --config ' in proc.stderr  # the config's hash
    assert not (out / 'fgmoe').exists()  # stopped before fine-tuning
