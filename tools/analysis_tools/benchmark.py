# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Inference speed (images/s) of a multi-task segmentor.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT]
        [--num-iters 200] [--num-warmup 5] [--shape H W] [--batch-size 1]
        [--device cpu|cuda] [--work-dir DIR] [--cfg-options k=v ...]

Without CHECKPOINT the model keeps its random initialisation (speed does not
depend on the weights). By default images come from the config's
``test_dataloader`` (data loading excluded from the timing, like mmseg's
benchmark); ``--shape H W`` feeds random uint8 images of that size instead,
so no dataset is needed. Only the forward pass (``mode='predict'``, i.e.
including the upsampling of every task's prediction to the input size) is
timed, after the data preprocessor. Results go to stdout and, with
``--work-dir``, to ``fps_<timestamp>.json``.
"""
import argparse
import itertools
import os.path as osp
import time
from typing import Dict, Iterator, List

import torch
from mmengine.config import Config
from mmengine.fileio import dump
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import mkdir_or_exist

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmfgmoe.utils.cli import add_cfg_options, load_config_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark the inference speed of a multi-task model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint', nargs='?', default=None,
        help='checkpoint file (optional: random weights time the same)')
    parser.add_argument(
        '--num-iters', type=int, default=200,
        help='timed iterations (batches) after the warm-up')
    parser.add_argument(
        '--num-warmup', type=int, default=5,
        help='untimed warm-up iterations')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='feed random images of this size instead of the test set')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run on (default: cuda if available, else cpu)')
    parser.add_argument(
        '--log-interval', type=int, default=50,
        help='print the running speed every N timed iterations')
    parser.add_argument(
        '--work-dir', help='write the results to WORK_DIR/fps_<time>.json')
    add_cfg_options(parser)
    args = parser.parse_args()
    if (args.num_iters < 1 or args.num_warmup < 0 or args.batch_size < 1
            or args.log_interval < 1):
        parser.error('--num-iters, --batch-size and --log-interval must be '
                     '>= 1, --num-warmup >= 0')
    return args


def random_batches(shape: List[int], batch_size: int,
                   tasks: List[str]) -> Iterator[Dict]:
    """Endless loader-like batches of random uint8 images."""
    height, width = shape
    generator = torch.Generator().manual_seed(0)
    while True:
        inputs, samples = [], []
        for _ in range(batch_size):
            inputs.append(
                torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                              generator=generator))
            sample = SegDataSample()
            sample.set_metainfo(
                dict(img_path=None, ori_shape=(height, width),
                     img_shape=(height, width), pad_shape=(height, width),
                     scale_factor=(1.0, 1.0), flip=False,
                     flip_direction=None, reduce_zero_label=False,
                     tasks=list(tasks)))
            samples.append(sample)
        yield dict(inputs=inputs, data_samples=samples)


def loader_batches(cfg: Config, batch_size: int) -> Iterator[Dict]:
    """Endless batches from the config's test loader."""
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg['batch_size'] = batch_size
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    loader = Runner.build_dataloader(loader_cfg)
    if len(loader) == 0:
        raise RuntimeError(f'the test set of {cfg.filename} is empty')
    return itertools.cycle(loader)


def main() -> None:
    args = parse_args()
    cfg = load_config_file(args.config, args.cfg_options)
    torch.backends.cudnn.benchmark = False

    cfg.model.train_cfg = None
    model = MODELS.build(cfg.model)
    if args.checkpoint is not None:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model = model.to(args.device).eval()

    tasks = list(cfg.get('tasks', []) or getattr(model, 'tasks', []) or [])
    if args.shape:
        batches = random_batches(args.shape, args.batch_size, tasks)
        source = f'random {args.shape[0]}x{args.shape[1]} images'
    else:
        batches = loader_batches(cfg, args.batch_size)
        source = 'the test set'
    sync = torch.cuda.synchronize if args.device.startswith('cuda') \
        else (lambda: None)

    elapsed, timed_images = 0.0, 0
    total = args.num_warmup + args.num_iters
    with torch.no_grad():
        for i in range(total):
            data = model.data_preprocessor(next(batches), False)
            sync()
            start = time.perf_counter()
            model(data['inputs'], data['data_samples'], mode='predict')
            sync()
            if i < args.num_warmup:
                continue
            elapsed += time.perf_counter() - start
            timed_images += len(data['data_samples'])
            done = i + 1 - args.num_warmup
            if done % args.log_interval == 0:
                print(f'[{done}/{args.num_iters}] '
                      f'{timed_images / elapsed:.2f} img/s')

    fps = timed_images / elapsed
    result = dict(
        config=args.config, checkpoint=args.checkpoint, device=args.device,
        source=source, batch_size=args.batch_size, num_iters=args.num_iters,
        num_warmup=args.num_warmup, images=timed_images,
        seconds=round(elapsed, 4), fps=round(fps, 3),
        ms_per_image=round(1000 * elapsed / timed_images, 3),
        unit='img / s')
    print(f'Overall: {fps:.2f} img/s ({result["ms_per_image"]:.1f} ms/image, '
          f'{args.device}, {source}, batch {args.batch_size})')
    if args.work_dir:
        mkdir_or_exist(osp.abspath(args.work_dir))
        stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
        out = osp.join(args.work_dir, f'fps_{stamp}.json')
        dump(result, out, indent=4)
        print(f'written to {out}')


if __name__ == '__main__':
    main()
