# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Tiny model configs and hand-built multi-task samples for model tests."""
import copy
from typing import Dict, List, Sequence

import pytest
import torch
from mmengine.structures import PixelData

from _model_cfgs import tiny_head_cfg
from mmseg.structures import SegDataSample

#: Output channels of the classification tasks in these tests.
NUM_CLASSES = dict(semseg=5, human_parts=7)


def tiny_model_cfg(tasks: Sequence[str], **head_overrides) -> dict:
    """A MultiTaskEncoderDecoder small enough for CPU unit tests."""
    head = tiny_head_cfg(tasks, [32, 32], NUM_CLASSES, **head_overrides)
    return dict(
        type='MultiTaskEncoderDecoder',
        data_preprocessor=dict(type='MultiTaskDataPreProcessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375],
                               bgr_to_rgb=True,
                               size_divisor=16,
                               test_cfg=dict(size_divisor=16)),
        backbone=dict(
            type='mmpretrain.VisionTransformer',
            arch=dict(embed_dims=32,
                      num_layers=2,
                      num_heads=2,
                      feedforward_channels=64),
            img_size=(32, 48),
            patch_size=16,
            out_indices=(0, 1),
            out_type='featmap',
            drop_path_rate=0.1),  # a train-mode backbone would be random
        decode_head=head)


def make_sample(tasks: Sequence[str],
                height: int,
                width: int,
                seed: int = 0,
                **metainfo) -> SegDataSample:
    """A sample with a random, legal label for each task."""
    gen = torch.Generator().manual_seed(seed)
    sample = SegDataSample(metainfo=dict(
        dict(ori_shape=(height, width),
             img_shape=(height, width),
             tasks=list(tasks),
             img_path=f'sample_{seed}.png'), **metainfo))
    labels = dict(
        semseg=lambda: torch.randint(
            0, NUM_CLASSES['semseg'], (1, height, width), generator=gen),
        human_parts=lambda: torch.randint(
            0, NUM_CLASSES['human_parts'], (1, height, width), generator=gen),
        saliency=lambda: torch.randint(0, 2,
                                       (1, height, width), generator=gen),
        edge=lambda: torch.randint(0, 2, (1, height, width), generator=gen),
        depth=lambda: torch.rand(1, height, width, generator=gen) * 5,
        normals=lambda: torch.nn.functional.normalize(
            torch.randn(3, height, width, generator=gen), dim=0),
    )
    from mmfgmoe.utils import TASK_SPECS
    for task in tasks:
        sample.set_data(
            {TASK_SPECS[task].gt_field: PixelData(data=labels[task]())})
    return sample


def make_batch(tasks: Sequence[str],
               batch: int = 2,
               height: int = 32,
               width: int = 48,
               seed: int = 0) -> Dict[str, List]:
    """A dataloader-style batch: uint8 images and samples."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0,
                      256, (3, height, width),
                      dtype=torch.uint8,
                      generator=gen) for _ in range(batch)
    ]
    samples = [
        make_sample(tasks, height, width, seed + i) for i in range(batch)
    ]
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture
def model_cfg():
    """Factory fixture: ``model_cfg(tasks, **head_overrides)``."""

    def factory(tasks, **overrides):
        return copy.deepcopy(tiny_model_cfg(tasks, **overrides))

    return factory


@pytest.fixture
def batch_factory():
    """Factory fixture: ``batch_factory(tasks, batch, height, width, seed)``
    -> dataloader-style dict."""
    return make_batch


@pytest.fixture
def sample_factory():
    """Factory fixture: ``sample_factory(tasks, height, width, seed,
    **metainfo)`` -> SegDataSample."""
    return make_sample


@pytest.fixture(autouse=True, scope='session')
def _mmseg_scope():
    """Build models in the mmseg scope, as configs do (``default_scope``)."""
    import mmfgmoe  # noqa: F401  (registers everything)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')


@pytest.fixture(autouse=True, scope='module')
def _single_intra_op_thread():
    """Run these tiny-tensor tests with one intra-op thread.

    On a loaded 2-core machine torch's worker threads spin and contend: the
    same tests run 2-3x faster single-threaded. Restored after each module.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
