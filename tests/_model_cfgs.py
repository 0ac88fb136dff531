# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Tiny FGMoEHead configs for tests, with the losses of our base config."""
import functools
import os.path as osp
from typing import Dict, Sequence

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_MODEL_CONFIG = osp.join(ROOT, 'configs', '_base_', 'models',
                             'fgmoe_vit.py')


@functools.lru_cache()
def _base_losses() -> Config:
    return Config.fromfile(BASE_MODEL_CONFIG).model.decode_head.losses


def task_losses() -> Dict[str, dict]:
    """A fresh copy of every task's loss config from the base model."""
    return _base_losses().to_dict()


def tiny_head_cfg(tasks: Sequence[str], in_channels: Sequence[int],
                  num_classes: Dict[str, int], **overrides) -> dict:
    """An ``FGMoEHead`` config small enough for CPU unit tests."""
    cfg = dict(type='FGMoEHead',
               in_channels=list(in_channels),
               tasks=list(tasks),
               num_classes=num_classes,
               channels=16,
               agg_channels=8,
               num_blocks=1,
               num_experts=4,
               top_k=2,
               num_shared_experts=1,
               losses=task_losses())
    cfg.update(overrides)
    return cfg
