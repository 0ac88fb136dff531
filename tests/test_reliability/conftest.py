# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Shared runs of the reliability tests (each real run is paid once)."""
import os.path as osp

import pytest

# pytest puts this folder on sys.path (rootdir-relative "prepend" import
# mode: no __init__.py here), so the helpers import by their module name.
from _tiny import RESUME_STOP_ITER, RESUME_TOTAL_ITERS, run_tool, tiny_config


@pytest.fixture(scope='session')
def stopped_run(synth_nyud_root, tmp_path_factory) -> dict:
    """A tiny SynthRoom run stopped at ``RESUME_STOP_ITER`` by the real
    ``tools/train.py`` (same config as the uninterrupted run, only
    ``train_cfg.max_iters`` lowered on the command line).

    Returns:
        dict: ``config`` (file), ``work_dir`` and ``checkpoint`` of the
        stopped run.
    """
    base = tmp_path_factory.mktemp('resume')
    config = tiny_config(synth_nyud_root,
                         str(base / 'tiny.py'),
                         max_iters=RESUME_TOTAL_ITERS)
    work_dir = str(base / 'stopped')
    run_tool('tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
             f'train_cfg.max_iters={RESUME_STOP_ITER}')
    checkpoint = osp.join(work_dir, f'iter_{RESUME_STOP_ITER}.pth')
    assert osp.isfile(checkpoint)
    return dict(config=config, work_dir=work_dir, checkpoint=checkpoint)
