# Copyright (c) mmfgmoe contributors. All rights reserved.
"""tools/gpu_check.sh runs end to end (on CPU, with small sizes) and writes
its summary; on a GPU the same script runs at full size."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_gpu_check_script_on_cpu(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, DEVICE='cpu',
               CONFIG='configs/fgmoe_vit-tiny_synth-room-nyud.py', ITERS='2',
               BATCH='2', NUM_TRAIN='4', NUM_VAL='2', HEIGHT='144',
               WIDTH='192', SHAPE='64 96', DCN_SHAPE='1 8 6 7',
               MOE_TOKENS='64 256', CHECK_DIR=str(tmp_path / 'out'),
               CHECK_DATA=str(tmp_path / 'data'))
    proc = subprocess.run(['bash', 'tools/gpu_check.sh'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (tmp_path / 'out' / 'summary.md').read_text()
    for pattern in (r'torch \S+ \(CUDA .*\), mmcv 2\.1\.0 ops built with',
                    r'torchdcn_vs_mmcv_time=\d+\.\d+ max_rel_diff=',
                    r'gemm_only_sparse_vs_dense=\d+\.\d+',
                    r'sparse_vs_dense_ratio=\d+\.\d+ sparse_vs_mask_ratio=',
                    r'frozen_vs_full_time=\d+\.\d+ frozen_vs_full_mem=',
                    r'training: 2 iterations, median \d+\.\d+ s/iteration',
                    r'test: .*edge\.odsF=\d+\.\d+.*semseg\.mIoU=\d+\.\d+'):
        assert re.search(pattern, summary), (pattern, summary)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs no GPU')
def test_gpu_check_refuses_cuda_without_gpu(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, DEVICE='cuda',
               CHECK_DIR=str(tmp_path))
    proc = subprocess.run(['bash', 'tools/gpu_check.sh'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'torch sees no GPU' in proc.stdout + proc.stderr
