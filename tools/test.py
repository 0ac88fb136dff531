# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Test (and evaluate) a multi-task segmentor.

    python tools/test.py CONFIG CHECKPOINT [--out DIR] [--show-dir DIR] [--tta]

Metrics are logged as a table per task and written to
``<work_dir>/metrics.json``.
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import Runner, load_checkpoint

import mmfgmoe  # noqa: F401  (registers every mmfgmoe module in mmseg's registries)
from mmfgmoe.compat import check_local_checkpoint
from mmfgmoe.utils import cfg_type_name
from mmfgmoe.utils.cli import (add_common_args, destroy_process_group,
                               load_config, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a multi-task segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        help='directory to write every task\'s predictions to, in the formats '
        'other tools read (PNG label maps, depth .npy, normals PNG, edge '
        'uint8 PNG for the MATLAB SEISM tools)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction panels')
    parser.add_argument(
        '--show-dir',
        help='directory where multi-task panels (input | GT | prediction for '
        'every task) are written')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta', action='store_true', help='flip test-time augmentation')
    add_common_args(parser)
    return parser.parse_args()


def trigger_visualization_hook(cfg: Config,
                               args: argparse.Namespace) -> Config:
    """Turn on drawing in the config's visualization hook (mmseg behaviour).

    Args:
        cfg (Config): The test config; changed in place.
        args (argparse.Namespace): ``show``, ``wait_time`` and ``show_dir``.

    Returns:
        Config: ``cfg``.
    """
    if 'visualization' not in cfg.default_hooks:
        raise RuntimeError(
            '--show/--show-dir need default_hooks.visualization, e.g. '
            "visualization=dict(type='MultiTaskVisualizationHook')")
    hook = cfg.default_hooks.visualization
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def set_output_dir(cfg: Config, out: str) -> None:
    """Make the config's ``MultiTaskMetric`` test evaluator(s) write their
    predictions to ``out`` (``test_evaluator`` may be one dict or a list).

    Raises:
        ValueError: When ``test_evaluator`` has no ``MultiTaskMetric``.
    """
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    metrics = [
        e for e in evaluators
        if cfg_type_name(e.get('type')) == 'MultiTaskMetric'
    ]
    if not metrics:
        raise ValueError(
            '--out needs a MultiTaskMetric in test_evaluator (it writes the '
            f'predictions), got {[e.get("type") for e in evaluators]}')
    for metric in metrics:
        metric['output_dir'] = out


def main() -> None:
    args = parse_args()
    if '://' not in args.checkpoint:
        # Before the Runner creates a log dir and builds the model.
        check_local_checkpoint(args.checkpoint)
    cfg = load_config(args)
    # Loaded strictly below, not through load_from: mmengine's load_from
    # only warns about missing/unexpected keys, so a checkpoint of another
    # model would be evaluated with a partly random decoder. With resume=True
    # (in a training config or --cfg-options) Runner.test() would then
    # replace it with the latest checkpoint of the work dir.
    cfg.load_from = None
    cfg.resume = False

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs `tta_model` and `tta_pipeline` in '
                             f'the config {args.config}')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        set_output_dir(cfg, args.out)

    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True,
                    logger=runner.logger)
    metrics = runner.test()

    if runner.rank == 0:
        os.makedirs(cfg.work_dir, exist_ok=True)
        path = osp.join(cfg.work_dir, 'metrics.json')
        with open(path, 'w', encoding='utf-8') as f:
            json.dump({k: float(v) if hasattr(v, '__float__') else v
                       for k, v in metrics.items()}, f, indent=2)
        runner.logger.info(f'metrics written to {path}')
    destroy_process_group()


if __name__ == '__main__':
    main()
