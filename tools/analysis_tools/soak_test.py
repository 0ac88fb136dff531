# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Soak test: a long SynthRoom training with periodic evaluation must run
with flat memory.

    python tools/analysis_tools/soak_test.py [CONFIG] [--iters 500]
        [--val-interval 100] [--crop H W] [--batch-size 2]
        [--data-root DIR | --num-train 32 --num-val 8 --height 96
         --width 128] [--warmup-iters 100] [--max-growth 0.05]
        [--work-dir DIR] [--cfg-options k=v ...]

Trains CONFIG (default: the CPU-sized SynthRoom demo config) for ``--iters``
iterations with validation every ``--val-interval`` iterations, in this
process, and records the resident set size (RSS, ``/proc/self/status``
``VmRSS``) after every ``--val-interval`` training iterations and after each
validation. The growth is measured from the first sample at or after
``--warmup-iters`` (allocator pools, lazily built data loaders and the first
validation settle during warm-up) to the last sample; the script exits with
status 1 when it exceeds ``--max-growth`` (a fraction). The figures are
printed and written to ``<work-dir>/soak.json``.

Without ``--data-root`` a SynthRoom NYUD-v2 data set of ``--num-train`` /
``--num-val`` images of ``--height`` x ``--width`` is generated in the work
directory. The config is shrunk for a CPU: training crop and ViT
``img_size`` set to ``--crop``, data loading in the main process, the exact
``'fast'`` edge metric with few thresholds, a checkpoint only at the end.
Not a unit test (minutes of CPU time); run it before releases.
"""
import argparse
import json
import os
import os.path as osp
import resource
import time
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmfgmoe  # noqa: F401  (registers mmfgmoe's modules)
from mmfgmoe.datasets.synth_room import generate_synth_room
from mmfgmoe.utils import cfg_type_name, check_config_tasks
from mmfgmoe.utils.cli import add_cfg_options

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(ROOT, 'configs', 'fgmoe_vit-tiny_synth-room-nyud.py')
#: Edge thresholds of the soak's metric (cheap; the metric still runs fully).
EDGE_THRESHOLDS = 5


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux
    ``VmRSS``; elsewhere the peak RSS from ``getrusage``)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.


class RssRecorderHook(Hook):
    """Record RSS every ``interval`` training iterations and after each
    validation.

    Args:
        interval (int): Training iterations between samples.
    """
    priority = 'LOWEST'

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.samples: List[Dict] = []
        self._start = time.time()

    def _record(self, runner, event: str) -> None:
        sample = dict(iter=runner.iter,
                      event=event,
                      rss_mib=rss_mib(),
                      seconds=round(time.time() - self._start, 1))
        self.samples.append(sample)
        runner.logger.info(f'soak: iter {sample["iter"]} {event} RSS '
                           f'{sample["rss_mib"]:.1f} MiB')

    def before_train(self, runner) -> None:
        self._record(runner, 'start')

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            # runner.iter is incremented after this hook: report the count
            # of finished iterations.
            sample = dict(iter=runner.iter + 1,
                          event='train',
                          rss_mib=rss_mib(),
                          seconds=round(time.time() - self._start, 1))
            self.samples.append(sample)
            runner.logger.info(f'soak: iter {sample["iter"]} train RSS '
                               f'{sample["rss_mib"]:.1f} MiB')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._record(runner, 'val')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Long training with evaluation; checks flat memory')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--iters', type=int, default=500)
    parser.add_argument('--val-interval', type=int, default=100)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--crop',
                        type=int,
                        nargs=2,
                        default=[64, 96],
                        metavar=('H', 'W'))
    parser.add_argument('--data-root', help='a SynthRoom/NYUDv2 folder')
    parser.add_argument('--num-train', type=int, default=32)
    parser.add_argument('--num-val', type=int, default=8)
    parser.add_argument('--height', type=int, default=96)
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--warmup-iters',
                        type=int,
                        default=None,
                        help='defaults to --val-interval')
    parser.add_argument('--max-growth', type=float, default=0.05)
    parser.add_argument('--work-dir', default='work_dirs/soak')
    add_cfg_options(parser)
    return parser.parse_args()


def soak_config(args: argparse.Namespace, data_root: str) -> Config:
    """The config shrunk for a CPU soak (see the module docstring)."""
    cfg = Config.fromfile(args.config)
    crop = tuple(args.crop)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = data_root
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.train_dataloader.batch_size = args.batch_size
    for transform in cfg.train_dataloader.dataset.pipeline:
        if cfg_type_name(transform['type']) == 'MultiTaskRandomCrop':
            transform['crop_size'] = crop
        elif cfg_type_name(transform['type']) == 'MultiTaskPad':
            transform['size'] = crop
    cfg.model.backbone.img_size = crop
    cfg.val_evaluator = dict(type='MultiTaskMetric',
                             edge_backend='fast',
                             edge_thresholds=EDGE_THRESHOLDS)
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.val_interval
    cfg.default_hooks.checkpoint.interval = args.iters
    cfg.default_hooks.logger.interval = args.val_interval
    cfg.work_dir = args.work_dir
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    check_config_tasks(cfg)
    return cfg


def growth(samples: List[Dict], warmup_iters: int) -> Optional[float]:
    """Relative RSS growth from the first sample at or after
    ``warmup_iters`` to the last sample (None without two such samples)."""
    after = [s for s in samples if s['iter'] >= warmup_iters]
    if len(after) < 2:
        return None
    return after[-1]['rss_mib'] / after[0]['rss_mib'] - 1.0


def main() -> int:
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    data_root = args.data_root or generate_synth_room(osp.join(
        args.work_dir, 'data'),
                                                      layout='nyud',
                                                      num_train=args.num_train,
                                                      num_val=args.num_val,
                                                      height=args.height,
                                                      width=args.width,
                                                      seed=0)
    cfg = soak_config(args, data_root)
    runner = Runner.from_cfg(cfg)
    recorder = RssRecorderHook(args.val_interval)
    runner.register_hook(recorder)
    runner.train()

    warmup = args.val_interval if args.warmup_iters is None \
        else args.warmup_iters
    grew = growth(recorder.samples, warmup)
    report = dict(config=args.config,
                  iters=args.iters,
                  val_interval=args.val_interval,
                  crop=list(args.crop),
                  batch_size=args.batch_size,
                  warmup_iters=warmup,
                  samples=recorder.samples,
                  growth=grew,
                  max_growth=args.max_growth)
    with open(osp.join(args.work_dir, 'soak.json'), 'w') as f:
        json.dump(report, f, indent=2)
    print(f'{"iter":>6} {"event":>6} {"RSS MiB":>9} {"s":>7}')
    for s in recorder.samples:
        print(f'{s["iter"]:>6} {s["event"]:>6} {s["rss_mib"]:>9.1f} '
              f'{s["seconds"]:>7}')
    if grew is None:
        print('soak: not enough samples after warm-up to judge')
        return 1
    ok = grew < args.max_growth
    print(f'soak: RSS growth after warm-up (iter >= {warmup}): '
          f'{grew * 100:+.2f}% (limit {args.max_growth * 100:.0f}%): '
          f'{"PASS" if ok else "FAIL"}')
    return 0 if ok else 1


if __name__ == '__main__':
    raise SystemExit(main())
