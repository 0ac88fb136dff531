# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Resume exactness: stop at iteration k, ``--resume``, and end bit-identical
to the uninterrupted run (weights, optimizer state and metrics)."""
import glob
import json
import os.path as osp
import shutil

import torch

from _tiny import RESUME_STOP_ITER, RESUME_TOTAL_ITERS, run_tool


def _final_metrics(work_dir: str) -> dict:
    """The validation metrics of the last run in ``work_dir`` (mmengine's
    ``<timestamp>/vis_data/scalars.json``)."""
    runs = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert runs, f'no scalars.json under {work_dir}'
    with open(runs[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    evals = [r for r in records if 'semseg.mIoU' in r]
    assert evals, f'no validation record in {runs[-1]}'
    return {
        k: v
        for k, v in evals[-1].items()
        if k.split('.')[0] in ('semseg', 'depth', 'normals', 'edge')
    }


def _assert_same_tensors(a, b, where: str) -> int:
    """Recursively compare two checkpoint sub-trees bit for bit; returns the
    number of tensors compared."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(
            a, b), (f'{where} differs: max |diff| = '
                    f'{(a.double() - b.double()).abs().max().item()}')
        return 1
    if isinstance(a, dict):
        assert set(a) == set(b), f'{where}: keys differ'
        return sum(_assert_same_tensors(a[k], b[k], f'{where}.{k}') for k in a)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        return sum(
            _assert_same_tensors(x, y, f'{where}[{i}]')
            for i, (x, y) in enumerate(zip(a, b)))
    assert a == b, f'{where}: {a!r} != {b!r}'
    return 0


def test_resume_is_bit_identical(stopped_run, tmp_path):
    config = stopped_run['config']
    full_dir = str(tmp_path / 'full')
    run_tool('tools/train.py', config, '--work-dir', full_dir)

    resumed_dir = str(tmp_path / 'resumed')
    shutil.copytree(stopped_run['work_dir'], resumed_dir)
    proc = run_tool('tools/train.py', config, '--work-dir', resumed_dir,
                    '--resume')
    log = proc.stdout + proc.stderr
    assert f'resumed epoch: 0, iter: {RESUME_STOP_ITER}' in log, log[-3000:]
    # The loop skips the batches the stopped run already consumed.
    assert f'Advance dataloader {RESUME_STOP_ITER} steps' in log

    name = f'iter_{RESUME_TOTAL_ITERS}.pth'
    full = torch.load(osp.join(full_dir, name), weights_only=True)
    resumed = torch.load(osp.join(resumed_dir, name), weights_only=True)
    assert full['meta']['iter'] == resumed['meta']['iter'] == \
        RESUME_TOTAL_ITERS
    # Decoder weights moved away from the stopped run's (the test is not
    # comparing two copies of iteration k).
    stopped = torch.load(stopped_run['checkpoint'], weights_only=True)
    moved = [
        k for k, v in full['state_dict'].items() if k.startswith('decode_head')
        and not torch.equal(v, stopped['state_dict'][k])
    ]
    assert moved, 'training did not change the decoder after iteration k'
    assert _assert_same_tensors(full['state_dict'], resumed['state_dict'],
                                'state_dict') > 100
    assert _assert_same_tensors(full['optimizer'], resumed['optimizer'],
                                'optimizer') > 0

    metrics_full = _final_metrics(full_dir)
    metrics_resumed = _final_metrics(resumed_dir)
    assert len(metrics_full) >= 10, metrics_full
    assert metrics_full == metrics_resumed
