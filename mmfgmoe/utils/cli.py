# Copyright (c) mmfgmoe contributors. All rights reserved.
"""What ``tools/train.py`` and ``tools/test.py`` share: flags and config set-up."""
import argparse
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, DictAction

__all__ = ['add_common_args', 'load_config']


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add mmseg's common flags: ``--work-dir``, ``--cfg-options``,
    ``--launcher`` and ``--local_rank``."""
    parser.add_argument('--work-dir', help='the dir to save logs, models and metrics')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs merged into '
        'it; a list value is written key="[a,b]" or key=a,b, nested '
        'tuples/lists as key="[(a,b),(c,d)]" (quotes needed, no spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank, older tools --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the common flags.

    Besides mmseg's behaviour (``--cfg-options`` merged, ``work_dir`` from the
    flag, else the config, else ``./work_dirs/<config name>``), a distributed
    run on a machine without CUDA switches the backend to ``gloo``: NCCL needs
    GPUs, and a CPU run should not fail on that.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    work_dir: Optional[str] = args.work_dir
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    return cfg
