# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The CLI tools end to end: train, resume, test (checkpoint round trip)."""
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'configs', 'demo', 'fgmoe_vit-tiny_demo.py')


def _run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize('tool,flags', [
    ('train.py', ['--work-dir', '--cfg-options', '--resume', '--amp',
                  '--launcher', '--local_rank']),
    ('test.py', ['--work-dir', '--cfg-options', '--out', '--show',
                 '--show-dir', '--wait-time', '--tta', '--launcher',
                 '--local_rank']),
])
def test_help_lists_mmseg_flags(tool, flags):
    out = _run(osp.join('tools', tool), '--help').stdout
    for flag in flags:
        assert flag in out, f'{tool} --help lacks {flag}'


def _data_options(data_root: str) -> list:
    return [f'{split}_dataloader.dataset.data_root={data_root}'
            for split in ('train', 'val', 'test')]


#: ``metrics.json`` keys of the demo config's MultiTaskMetric (NYUD tasks).
EXPECTED_METRICS = {
    'semseg.mIoU', 'semseg.mAcc', 'semseg.aAcc', 'depth.rmse',
    'depth.abs_rel', 'depth.log_rmse', 'depth.delta1', 'depth.delta2',
    'depth.delta3', 'normals.mean', 'normals.median', 'normals.rmse',
    'normals.within_11.25', 'normals.within_22.5', 'normals.within_30',
    'edge.odsF', 'edge.oisF', 'edge.AP'
}


def _check_predictions(data_root: str, out_dir: str, metrics: dict) -> None:
    """``--out``: one file per task and val image, in the formats of
    ``MultiTaskMetric`` (``<out>/<task>/<image stem>.<png|npy>``): uint8
    label-map PNG (semseg), float32 metres ``.npy`` (depth), RGB normals PNG
    ``round((n + 1) / 2 * 255)``, uint8 edge-probability PNG; the written
    depth gives back the reported RMSE."""
    import cv2
    import numpy as np

    from mmfgmoe.datasets.transforms.loading import (decode_normals_png,
                                                     read_depth_npy)
    with open(osp.join(data_root, 'gt_sets', 'val.txt')) as f:
        names = [line.strip() for line in f if line.strip()]
    assert len(names) == 3
    exts = dict(semseg='png', depth='npy', normals='png', edge='png')
    assert sorted(os.listdir(out_dir)) == sorted(exts)
    sq_err, valid = 0.0, 0
    for task, ext in exts.items():
        assert sorted(os.listdir(osp.join(out_dir, task))) == sorted(
            f'{n}.{ext}' for n in names), task
    for name in names:
        image = cv2.imread(osp.join(data_root, 'images', f'{name}.png'))
        shape = image.shape[:2]  # ori_shape: predictions are not resized
        semseg = cv2.imread(osp.join(out_dir, 'semseg', f'{name}.png'),
                            cv2.IMREAD_UNCHANGED)
        assert semseg.dtype == np.uint8 and semseg.shape == shape
        assert semseg.max() < 40  # class ids of the 40 NYUD classes
        edge = cv2.imread(osp.join(out_dir, 'edge', f'{name}.png'),
                          cv2.IMREAD_UNCHANGED)
        assert edge.dtype == np.uint8 and edge.shape == shape
        normals_bgr = cv2.imread(osp.join(out_dir, 'normals', f'{name}.png'),
                                 cv2.IMREAD_UNCHANGED)
        assert normals_bgr.dtype == np.uint8
        assert normals_bgr.shape == (*shape, 3)
        normals = decode_normals_png(normals_bgr[..., ::-1])
        # unit vectors up to the 8-bit quantisation
        np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1,
                                   atol=0.02)
        depth = np.load(osp.join(out_dir, 'depth', f'{name}.npy'))
        assert depth.dtype == np.float32 and depth.shape == shape
        assert (depth >= 0).all()
        gt = read_depth_npy(osp.join(data_root, 'depth', f'{name}.npy'))
        mask = gt > 0
        sq_err += float(((depth[mask].astype(np.float64) - gt[mask])**2).sum())
        valid += int(mask.sum())
    assert valid > 0
    assert metrics['depth.rmse'] == pytest.approx(math.sqrt(sq_err / valid),
                                                  rel=1e-5)


def test_train_resume_then_test(synth_nyud_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    common = _data_options(synth_nyud_root) + [
        'model.backbone.init_cfg=None',  # no demo encoder here: random
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'train_cfg.val_interval=1000',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        'test_evaluator.edge_thresholds=5',
    ]
    _run('tools/train.py', TINY_CONFIG, '--work-dir', work_dir,
         '--cfg-options', 'train_cfg.max_iters=2', *common)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    first = str(tmp_path / 'first.pth')  # the config keeps one checkpoint
    shutil.copy(osp.join(work_dir, 'iter_2.pth'), first)

    # --resume picks up iter_2.pth from the work dir (weights-only load of a
    # real mmengine checkpoint: message hub, optimizer and scheduler state).
    proc = _run('tools/train.py', TINY_CONFIG, '--work-dir', work_dir,
                '--resume', '--cfg-options', 'train_cfg.max_iters=4', *common)
    assert 'resumed' in (proc.stdout + proc.stderr).lower()
    ckpt = torch.load(osp.join(work_dir, 'iter_4.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 4

    out_dir = str(tmp_path / 'preds')
    _run('tools/test.py', TINY_CONFIG, osp.join(work_dir, 'iter_4.pth'),
         '--work-dir', work_dir, '--out', out_dir, '--cfg-options', *common)
    with open(osp.join(work_dir, 'metrics.json')) as f:
        metrics = json.load(f)
    # Every score of the four NYUD tasks (MultiTaskMetric), nothing else
    # (no baselines: no Δm).
    assert set(metrics) == EXPECTED_METRICS, sorted(metrics)
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    _check_predictions(synth_nyud_root, out_dir, metrics)

    # --tta: the config's tta_pipeline (flip views, labels loaded after the
    # flip) through MultiTaskTTAModel; every score, other than without it.
    tta_dir = osp.join(work_dir, 'tta')
    _run('tools/test.py', TINY_CONFIG, osp.join(work_dir, 'iter_4.pth'),
         '--tta', '--work-dir', tta_dir, '--cfg-options', *common)
    with open(osp.join(tta_dir, 'metrics.json')) as f:
        tta_metrics = json.load(f)
    assert set(tta_metrics) == EXPECTED_METRICS, sorted(tta_metrics)
    assert all(math.isfinite(v) for v in tta_metrics.values())
    assert tta_metrics != metrics

    # The named checkpoint is the one evaluated, even with resume=True from
    # a training config (the Runner would resume the work dir's latest).
    proc = _run('tools/test.py', TINY_CONFIG, first, '--work-dir', work_dir,
                '--cfg-options', 'resume=True', *common)
    assert 'resumed' not in (proc.stdout + proc.stderr).lower()
    with open(osp.join(work_dir, 'metrics.json')) as f:
        assert json.load(f) != metrics

    missing = osp.join(work_dir, 'iter_99.pth')
    proc = subprocess.run([sys.executable, 'tools/test.py', TINY_CONFIG,
                           missing, '--work-dir', str(tmp_path / 'none')],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and f"checkpoint '{missing}' does not " \
        'exist' in proc.stderr
    assert not osp.exists(tmp_path / 'none')  # stopped before the Runner


def test_out_reaches_every_multitask_metric_of_an_evaluator_list():
    from _tool_loader import load_tool
    from mmengine.config import Config
    tool = load_tool('test.py')
    cfg = Config(dict(test_evaluator=[
        dict(type='MultiTaskMetric'), dict(type='IoUMetric'),
        dict(type='mmseg.MultiTaskMetric', tasks=['edge'])]))
    tool.set_output_dir(cfg, 'preds')
    assert [e.get('output_dir') for e in cfg.test_evaluator] == [
        'preds', None, 'preds']
    cfg = Config(dict(test_evaluator=dict(type='MultiTaskMetric')))
    tool.set_output_dir(cfg, 'preds')
    assert cfg.test_evaluator.output_dir == 'preds'
    with pytest.raises(ValueError, match='--out needs a MultiTaskMetric'):
        tool.set_output_dir(Config(dict(test_evaluator=dict(
            type='IoUMetric'))), 'preds')
