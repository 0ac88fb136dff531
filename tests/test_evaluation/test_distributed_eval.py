# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Distributed evaluation (2 CPU processes, gloo) equals one process."""
import math
import os
import pickle
import sys

import numpy as np
import pytest
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from _reference import make_sample, random_case

NUM_SAMPLES = 5  # odd: the sampler pads rank 1 with a duplicate of sample 0
WORLD_SIZE = 2
META = dict(classes=[f'c{i}' for i in range(5)],
            human_parts_classes=[f'p{i}' for i in range(7)])
EDGE_KW = dict(edge_thresholds=3, edge_max_dist=0.0075, edge_nms=True)


def _dataset():
    rng = np.random.default_rng(7)
    samples = []
    for i in range(NUM_SAMPLES):
        gt, pred = random_case(rng, 20 + i, 24)
        edge = (rng.random(gt['semseg'].shape) > 0.85).astype(np.int64)
        gt['edge'] = edge
        pred['edge'] = np.clip(0.6 * edge + 0.5 * rng.random(edge.shape),
                               0, 1).astype(np.float32)
        samples.append(make_sample(gt, pred, f'im{i}'))
    return samples


def _metrics():
    from mmfgmoe.evaluation import MultiTaskMetric
    # the exact, deterministic BSDS backend: pyEdgeEval's matching is
    # randomised (see test_edge_eval.py), so it could not be compared exactly
    metrics = dict(
        bsds=MultiTaskMetric(**dict(EDGE_KW, edge_backend='fast')),
        loss=MultiTaskMetric(edge_backend='loss'))
    for m in metrics.values():
        m.dataset_meta = META
    return metrics


def _evaluate(indices):
    samples = _dataset()
    out = {}
    for name, metric in _metrics().items():
        for i in indices:
            metric.process({}, [samples[i].to_dict()])
        out[name] = metric.evaluate(NUM_SAMPLES)
    return out


def _write_unnamed(indices, out_dir: str) -> None:
    """``--out`` of samples without ``img_path`` (numbered per process)."""
    from mmfgmoe.evaluation import MultiTaskMetric
    metric = MultiTaskMetric(tasks=['semseg'], output_dir=out_dir,
                             format_only=True)
    metric.dataset_meta = META
    samples = _dataset()
    for i in indices:
        sample = samples[i].to_dict()
        del sample['img_path']
        metric.process({}, [sample])


def _worker(rank: int, rendezvous: str, out_file: str) -> None:
    torch_dist.init_process_group(
        'gloo', init_method=f'file://{rendezvous}', rank=rank,
        world_size=WORLD_SIZE)
    try:
        # mmengine's DefaultSampler(shuffle=False): pad to a multiple of the
        # world size by repeating the head, then take every WORLD_SIZE-th.
        total = math.ceil(NUM_SAMPLES / WORLD_SIZE) * WORLD_SIZE
        indices = list(range(NUM_SAMPLES))
        indices += indices[:total - NUM_SAMPLES]
        res = _evaluate(indices[rank:total:WORLD_SIZE])
        _write_unnamed(indices[rank:total:WORLD_SIZE], f'{out_file}.preds')
        with open(f'{out_file}.{rank}', 'wb') as f:
            pickle.dump(res, f)
        # No rank closes its gloo connections while the other still receives
        # the results broadcast.
        torch_dist.barrier()
    finally:
        torch_dist.destroy_process_group()
    # Skip interpreter teardown: in ~1 run of 8 a C++ thread still joinable
    # there (no Python frame left) calls std::terminate, an abort after all
    # the work is done and written. The results file is the test's output.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@pytest.mark.timeout(240)
def test_two_process_gloo_equals_one_process(tmp_path):
    out_file = str(tmp_path / 'res')
    # A rendezvous file, not a TCP port: a port found free here could be
    # taken by another process before the workers bind it.
    rendezvous = str(tmp_path / 'rendezvous')
    mp.spawn(_worker, args=(rendezvous, out_file), nprocs=WORLD_SIZE,
             join=True)
    single = _evaluate(range(NUM_SAMPLES))
    for rank in range(WORLD_SIZE):
        with open(f'{out_file}.{rank}', 'rb') as f:
            dist = pickle.load(f)
        for name in single:
            assert dist[name].keys() == single[name].keys()
            for key, value in single[name].items():
                # the same sums in the same order: bit-identical
                assert dist[name][key] == value, (name, key)
    # Without img_path each process numbers its samples; the rank keeps the
    # two processes' files apart (3 samples each, none overwritten).
    per_rank = math.ceil(NUM_SAMPLES / WORLD_SIZE)
    assert sorted(os.listdir(f'{out_file}.preds/semseg')) == [
        f'rank{r}_{i:06d}.png' for r in range(WORLD_SIZE)
        for i in range(per_rank)]
