# Copyright (c) mmfgmoe contributors. All rights reserved.
"""A CPU-sized child of the SynthRoom demo config for the reliability tests.

The demo config (``configs/fgmoe_vit-tiny_synth-room-nyud.py``) is read with
mmengine and rewritten for tiny inputs: crops of ``CROP`` pixels, the ViT's
``img_size`` to match, single-process data loading, the exact ``'fast'`` edge
backend and deterministic seeding. The result is dumped as a real config file
that ``tools/train.py`` / ``tools/test.py`` / the dist scripts read.
"""
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'configs', 'fgmoe_vit-tiny_synth-room-nyud.py')
#: Training crop (h, w): a multiple of the ViT patch (16) that fits the
#: 96x128 SynthRoom images of ``tests/conftest.py``.
CROP = (64, 96)
#: Edge thresholds of the metric (few: fast, and still a real odsF/oisF/AP).
EDGE_THRESHOLDS = 5
#: Length of the reference run of the resume test and the iteration the
#: interrupted run stops at (the resumed run then finishes it).
RESUME_TOTAL_ITERS, RESUME_STOP_ITER = 4, 2


def _shrink_pipeline(pipeline: List[dict], crop: Sequence[int]) -> None:
    for transform in pipeline:
        if transform['type'] == 'MultiTaskRandomCrop':
            transform['crop_size'] = tuple(crop)


def tiny_config(data_root: str,
                out_path: str,
                max_iters: int = 4,
                val_interval: Optional[int] = None,
                batch_size: int = 2,
                crop: Sequence[int] = CROP,
                extra: Optional[Dict] = None) -> str:
    """Write a tiny, deterministic SynthRoom config file.

    Args:
        data_root (str): A SynthRoom ``NYUDv2/`` folder.
        out_path (str): Where to write the ``.py`` config.
        max_iters (int): ``train_cfg.max_iters``. Defaults to 4.
        val_interval (int, optional): Defaults to ``max_iters`` (validate
            once, at the end).
        batch_size (int): Training batch size. Defaults to 2.
        crop (Sequence[int]): Training crop (h, w). Defaults to ``CROP``.
        extra (dict, optional): Merged last (``Config.merge_from_dict``).

    Returns:
        str: ``out_path``.
    """
    cfg = Config.fromfile(TINY_CONFIG)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = data_root
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.train_dataloader.batch_size = batch_size
    _shrink_pipeline(cfg.train_dataloader.dataset.pipeline, crop)
    cfg.model.backbone.img_size = tuple(crop)
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key] = dict(type='MultiTaskMetric',
                        edge_max_dist=0.011,
                        edge_backend='fast',
                        edge_thresholds=EDGE_THRESHOLDS)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = val_interval or max_iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.env_cfg.cudnn_benchmark = False
    if extra:
        cfg.merge_from_dict(extra)
    cfg.dump(out_path)
    return out_path


def check_returncode(proc: subprocess.CompletedProcess) -> None:
    """Fail with the error lines and the tail of the output when the tool
    run by :func:`run_tool` failed."""
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    # every rank's error lines first (torchrun interleaves the ranks), then
    # the tail of the output
    errors = [
        line for line in output.splitlines()
        if re.search(r'Error|error:|Traceback|terminate', line)
    ]
    raise AssertionError(f'{proc.args} failed (rc {proc.returncode}):\n' +
                         '\n'.join(errors[-40:]) + '\n---\n' +
                         output[-4000:])


def run_tool(*args: str,
             timeout: int = 300,
             env: Optional[dict] = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run ``args`` (a tool and its flags) with the venv's python from the
    repository root; with ``check``, fail with the tail of the output when
    the tool fails."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    full_env.update(env or {})
    cmd = list(args)
    if cmd[0].endswith('.py'):
        cmd = [sys.executable] + cmd
    proc = subprocess.run(cmd,
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=timeout,
                          env=full_env)
    if check:
        check_returncode(proc)
    return proc
