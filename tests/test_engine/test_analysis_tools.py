# Copyright (c) mmfgmoe contributors. All rights reserved.
"""tools/analysis_tools/{analyze_logs,benchmark}.py end to end (CLI)."""
import glob
import json
import os.path as osp
import subprocess
import sys

import cv2
import pytest
import torch
from _tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')
TINY_CONFIG = osp.join(ROOT, 'configs', 'fgmoe_vit-tiny_synth-room-nyud.py')


def _run(*args, timeout=180) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, timeout=timeout,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _write_log(path: str) -> None:
    lines = []
    for it in range(10, 110, 10):
        lines.append(dict(lr=1e-3, data_time=0.01, loss=1.0 / it,
                          loss_semseg=0.5 / it, time=0.1, iter=it, memory=1,
                          step=it))
        if it % 50 == 0:
            lines.append({'semseg.mIoU': float(it), 'depth.rmse': 1.0 / it,
                          'data_time': 0.0, 'time': 0.0, 'step': it})
    with open(path, 'w') as f:
        f.write('\n'.join(json.dumps(line) for line in lines) + '\n')


def _load_tool(name: str):
    return load_tool(f'analysis_tools/{name}.py')


def test_analyze_logs_reads_curves(tmp_path):
    tool = _load_tool('analyze_logs')
    log = tmp_path / 'scalars.json'
    _write_log(str(log))
    curves = tool.load_scalars(str(log))
    assert curves['loss'][0] == (10, 0.1)
    assert curves['semseg.mIoU'] == [(50, 50.0), (100, 100.0)]
    assert curves['lr'][-1] == (100, 1e-3)  # plotted on request only
    assert 'iter' not in curves and 'step' not in curves
    assert tool.default_keys([curves]) == [
        'loss', 'loss_semseg', 'semseg.mIoU', 'depth.rmse'
    ]
    assert tool.lower_is_better('depth.rmse')
    assert not tool.lower_is_better('semseg.mIoU')


def test_analyze_logs_cli_writes_png(tmp_path):
    run_dir = tmp_path / 'work' / '20260101_000000' / 'vis_data'
    run_dir.mkdir(parents=True)
    _write_log(str(run_dir / 'scalars.json'))
    out = str(tmp_path / 'curves.png')
    proc = _run(osp.join(TOOLS, 'analyze_logs.py'), str(tmp_path / 'work'),
                '--keys', 'loss', 'semseg.mIoU', 'lr', '--out', out)
    assert 'semseg.mIoU: last 100.0000 (iter 100), best 100.0000' in \
        proc.stdout
    img = cv2.imread(out)
    assert img is not None and img.shape[1] > img.shape[0] > 100
    proc = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'analyze_logs.py'),
         str(run_dir / 'scalars.json'), '--keys', 'normals.mean'],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and 'normals.mean' in proc.stderr


@pytest.mark.timeout(240)
def test_benchmark_random_images_with_checkpoint(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmseg.registry import MODELS
    import mmfgmoe  # noqa: F401
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(TINY_CONFIG).model)
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    proc = _run(osp.join(TOOLS, 'benchmark.py'), TINY_CONFIG, ckpt,
                '--shape', '32', '48', '--num-iters', '2', '--num-warmup',
                '1', '--device', 'cpu', '--work-dir', str(tmp_path))
    assert 'img/s' in proc.stdout
    (result_file, ) = glob.glob(str(tmp_path / 'fps_*.json'))
    with open(result_file) as f:
        result = json.load(f)
    assert result['images'] == 2 and result['fps'] > 0
    assert result['checkpoint'] == ckpt
