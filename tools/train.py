# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Train a multi-task segmentor: ``python tools/train.py CONFIG [flags]``."""
import argparse
import logging

from mmengine.logging import print_log
from mmengine.runner import Runner

import mmfgmoe  # noqa: F401  (registers every mmfgmoe module in mmseg's registries)
from mmfgmoe.utils.cli import (add_common_args, destroy_process_group,
                               load_config, setup_cpu_distributed)
from mmseg.registry import RUNNERS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a multi-task segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        elif optim_wrapper != 'OptimWrapper':
            raise ValueError('--amp needs optim_wrapper.type="OptimWrapper", '
                             f'got {optim_wrapper!r}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    cfg.resume = args.resume
    setup_cpu_distributed(cfg)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()
    destroy_process_group()


if __name__ == '__main__':
    main()
