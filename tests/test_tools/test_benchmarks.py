# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The benchmark tools run and end with the lines the issues ask for."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from mmfgmoe.utils.profiling import autograd_saved_bytes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _output(*args: str) -> list:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()


def _last_line(*args: str) -> str:
    return _output(*args)[-1]


def test_autograd_saved_bytes_counts_activations():
    weight = torch.randn(8, 8, requires_grad=True)
    x = torch.randn(4, 8)
    # x @ weight saves x (4x8) for weight's gradient: 128 bytes in fp32.
    assert autograd_saved_bytes(lambda: x @ weight) == 4 * 8 * 4
    with torch.no_grad():
        frozen = torch.randn(4, 8) @ weight
    assert autograd_saved_bytes(lambda: frozen @ weight) == frozen.numel() * 4


def test_autograd_saved_bytes_counts_each_storage_once():
    weight = torch.randn(8, 8, requires_grad=True)
    x = torch.randn(4, 8, requires_grad=True)
    # Both products save x and weight; the batched one saves an expanded
    # view of weight (3x its numel, one storage).
    both = lambda: x @ weight + torch.bmm(  # noqa: E731
        x.expand(3, 4, 8), weight.expand(3, 8, 8)).sum(0)
    assert autograd_saved_bytes(both) == (4 * 8 + 8 * 8) * 4
    # Parameters are held anyway: excluded, only x counts.
    assert autograd_saved_bytes(both, exclude=[weight]) == 4 * 8 * 4
    # A slice keeps its whole storage alive.
    rows = torch.randn(100, 8)
    assert autograd_saved_bytes(lambda: rows[:2] @ weight) == 100 * 8 * 4


def test_benchmark_moe_last_line():
    lines = _output('tools/analysis_tools/benchmark_moe.py', '--tokens', '64',
                    '256', '--embed-dims', '32', '--repeats', '1', '--warmup',
                    '0')
    assert re.fullmatch(
        r'sparse_vs_dense_ratio=\d+\.\d+ sparse_vs_mask_ratio=\d+\.\d+',
        lines[-1])
    assert re.match(r'gemm_only_sparse_vs_dense=\d+\.\d+ \(.* at 256 tokens',
                    lines[-2])


def test_benchmark_train_step_last_line():
    lines = _output('tools/analysis_tools/benchmark_train_step.py',
                    'configs/demo/fgmoe_vit-tiny_demo.py', '--shape', '64',
                    '96', '32', '48', '--batch-size', '1', '--repeats', '1',
                    '--warmup', '0', '--routing-hook', '50')
    for size in ('64x96', '32x48'):  # every size gets its rows
        assert any(re.match(rf' *{size} RoutingStatsHook: \d+\.\d ms per '
                            r'logging pass, \d+\.\d+% of the frozen step '
                            r'time at interval 50', text)
                   for text in lines), lines
        assert any(re.match(rf' *{size} .*FLOP bound of frozen/full time: '
                            r'0\.\d+$', text) for text in lines), lines
        # One unwarmed repeat on a tiny image: the measured time ratio is
        # noise and may exceed 1; only the FLOP bound is fixed below 1.
        assert any(re.match(rf' *{size} +full .* \d+\.\d+ +0\.\d+$', text)
                   for text in lines), lines
    match = re.fullmatch(
        r'frozen_vs_full_time=(\d+\.\d+) frozen_vs_full_mem=(\d+\.\d+)',
        lines[-1])
    assert match
    # The frozen backbone saves no activations and has no gradients or
    # optimizer state: its memory must be below full fine-tuning's.
    assert float(match.group(2)) < 1


@pytest.mark.parametrize('edge_workers', [1, 2])
def test_benchmark_pipeline_last_line(synth_nyud_root, edge_workers):
    """With background edge workers the timed evaluation waits for them."""
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark_pipeline.py',
         'configs/demo/fgmoe_vit-tiny_demo.py', '--num-images', '2',
         '--repeats', '1', '--edge-backends', 'fast', '--cfg-options',
         f'train_dataloader.dataset.data_root={synth_nyud_root}',
         f'test_dataloader.dataset.data_root={synth_nyud_root}',
         'test_evaluator.edge_thresholds=5',
         f'test_evaluator.edge_workers={edge_workers}'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    match = re.fullmatch(
        r'train_images_per_s=(\d+\.\d+) test_images_per_s=(\d+\.\d+) '
        r'eval_ms_per_image=(\d+\.\d+)', lines[-1])
    assert match and all(float(v) > 0 for v in match.groups())
    # Every task of the split is timed, odsF included.
    for task in ('semseg', 'depth', 'normals', 'edge[fast]'):
        assert any(line.startswith(f'eval {task} ') for line in lines), task


def test_benchmark_dcn_agrees_with_mmcv():
    lines = _output('tools/analysis_tools/benchmark_dcn.py', '--shape', '2',
                    '8', '6', '7', '1', '4', '5', '5', '--repeats', '1',
                    '--warmup', '0')
    match = re.fullmatch(r'torchdcn_vs_mmcv_time=(\d+\.\d+) '
                         r'max_rel_diff=(\d\.\d+e[+-]\d+)', lines[-1])
    assert match, lines
    # Outputs and all gradients of TorchDCN equal mmcv's kernel (learned,
    # non-zero offsets) to float rounding.
    assert float(match.group(2)) < 1e-4
    assert sum(' x '.join(s) in text for text in lines
               for s in (('2', '8', '6', '7'), ('1', '4', '5', '5'))) == 2
