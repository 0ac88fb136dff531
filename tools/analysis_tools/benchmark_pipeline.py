# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Data pipeline throughput and evaluation time per image, per task.

    python tools/analysis_tools/benchmark_pipeline.py CONFIG \\
        [--num-images 20] [--repeats 3] [--edge-backends fast pyedgeeval] \\
        [--cfg-options key=value ...]

In one process, interleaved over ``--repeats`` rounds (medians reported):

* **pipeline**: images/s of the config's train and test pipelines
  (``dataset[i]``: file reading, decoding, augmentation, packing; one
  process, as one dataloader worker runs it);
* **evaluation**: ms per image of ``MultiTaskMetric.process`` for each task
  of the test split, with predictions made from the labels (class ids with
  10% of pixels changed, depth and normals with noise, blurred edges), and
  the edge task (odsF counts at the evaluator's thresholds) once per
  ``--edge-backends`` entry.

The last line is ``train_images_per_s=<x> test_images_per_s=<y>
eval_ms_per_image=<z>`` where ``z`` sums every task with the config's own
edge backend.
"""
import argparse
import copy
import statistics
import time
from typing import Callable, Dict, List

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from scipy import ndimage as ndi

from mmfgmoe.utils import TASK_SPECS
from mmfgmoe.utils.cli import add_cfg_options, load_config_file
from mmseg.registry import DATASETS, METRICS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--num-images', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--edge-backends', nargs='+',
                        default=['fast', 'pyedgeeval'],
                        choices=['fast', 'pyedgeeval', 'loss'])
    parser.add_argument('--seed', type=int, default=0)
    add_cfg_options(parser)
    return parser.parse_args()


def fake_prediction(task: str, gt: torch.Tensor,
                    rng: np.random.Generator) -> torch.Tensor:
    """A plausible imperfect prediction made from the label ``gt``."""
    label = gt.numpy()
    if TASK_SPECS[task].classes_key:  # class ids
        pred = label.copy()
        pred[pred == TASK_SPECS[task].pad_value] = 0
        flip = rng.random(pred.shape) < 0.1
        pred[flip] = rng.integers(0, max(int(pred.max()), 1) + 1,
                                  int(flip.sum()))
        return torch.from_numpy(pred.astype(np.int64))
    if task in ('edge', 'saliency'):
        soft = ndi.gaussian_filter((label == 1).astype(np.float32),
                                   sigma=(0, 1.5, 1.5))
        return torch.from_numpy(soft / max(float(soft.max()), 1e-6))
    noisy = label + rng.normal(0, 0.05, label.shape).astype(np.float32)
    if task == 'normals':
        noisy /= np.linalg.norm(noisy, axis=0, keepdims=True) + 1e-6
    return torch.from_numpy(noisy.astype(np.float32))


def _time(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    cfg = load_config_file(args.config, args.cfg_options)
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    test_set = DATASETS.build(cfg.test_dataloader.dataset)
    count = args.num_images

    def run_pipeline(dataset) -> None:
        for i in range(count):
            dataset[i % len(dataset)]

    # Labels and predictions for the evaluation timing, built once.
    rng = np.random.default_rng(args.seed)
    samples: List[dict] = []
    for i in range(min(count, len(test_set))):
        sample = test_set[i]['data_samples'].to_dict()
        for task in test_set.tasks:
            spec = TASK_SPECS[task]
            gt = sample[spec.gt_field]['data']
            sample[spec.pred_field] = dict(data=fake_prediction(task, gt, rng))
        samples.append(sample)

    evaluator = cfg.test_evaluator
    default_backend = evaluator.get('edge_backend', 'pyedgeeval')
    metrics: Dict[str, object] = {}
    for task in test_set.tasks:
        # The config's own backend first (it counts in the last line).
        backends = list(dict.fromkeys([default_backend] +
                                      args.edge_backends)) if task == 'edge' \
            else [None]
        for backend in backends:
            metric_cfg = copy.deepcopy(evaluator)
            metric_cfg['tasks'] = [task]
            if backend is not None:
                metric_cfg['edge_backend'] = backend
            metric = METRICS.build(metric_cfg)
            metric.dataset_meta = test_set.metainfo
            metrics[task if backend is None else f'edge[{backend}]'] = metric

    def run_metric(metric: BaseMetric) -> None:
        for sample in samples:
            metric.process(None, [sample])
        # Also waits for background edge jobs (edge_workers > 1) and clears
        # the results.
        metric.evaluate(len(samples))

    timings: Dict[str, List[float]] = {
        name: []
        for name in ['train pipeline', 'test pipeline', *metrics]
    }
    run_pipeline(train_set)  # warm-up: file cache, lazy imports
    for _ in range(args.repeats):
        timings['train pipeline'].append(_time(lambda: run_pipeline(train_set)))
        timings['test pipeline'].append(_time(lambda: run_pipeline(test_set)))
        for name, metric in metrics.items():
            timings[name].append(_time(lambda: run_metric(metric)))

    median = {name: statistics.median(t) for name, t in timings.items()}
    shape = tuple(samples[0]['img_shape'][:2]) if samples else ()
    print(f'{count} images per round, {args.repeats} rounds, test images '
          f'{shape}; torch threads {torch.get_num_threads()}')
    train_rate = count / median['train pipeline']
    test_rate = count / median['test pipeline']
    print(f'{"train pipeline":24s} {train_rate:8.1f} images/s')
    print(f'{"test pipeline":24s} {test_rate:8.1f} images/s')
    total = 0.
    for name in metrics:
        per_image = median[name] / max(len(samples), 1) * 1e3
        print(f'{"eval " + name:24s} {per_image:8.2f} ms/image')
        if name in test_set.tasks or name == f'edge[{default_backend}]':
            total += per_image
    if {'edge[fast]', 'edge[pyedgeeval]'} <= set(metrics):
        print(f'edge pyedgeeval/fast time ratio '
              f'{median["edge[pyedgeeval]"] / median["edge[fast]"]:.1f}')
    print(f'train_images_per_s={train_rate:.1f} '
          f'test_images_per_s={test_rate:.1f} eval_ms_per_image={total:.1f}')


if __name__ == '__main__':
    main()
