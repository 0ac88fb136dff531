# Copyright (c) mmfgmoe contributors. All rights reserved.
import logging
import uuid

import torch.nn as nn
from mmengine.logging import MMLogger

from mmfgmoe.engine.optimizers import FrozenAwareOptimWrapperConstructor


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.decode_head = nn.Linear(4, 2)
        for p in self.backbone.parameters():
            p.requires_grad = False


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_same_optimizer_one_log_line():
    # a new instance is the current one, which the constructor logs to
    logger = MMLogger.get_instance(f'test_frozen_aware_{uuid.uuid4().hex}')
    assert MMLogger.get_current_instance() is logger
    records = _Records()
    logger.addHandler(records)
    cfg = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-6))
    paramwise = dict(custom_keys=dict(backbone=dict(lr_mult=0., decay_mult=0.)))
    model = _Net()
    wrapper = FrozenAwareOptimWrapperConstructor(cfg, paramwise)(model)
    logger.removeHandler(records)

    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups
                    for p in g['params']}
    assert in_optimizer == {id(p) for p in model.decode_head.parameters()}
    # the decoder's group(s) have the configured hyper-parameters
    for group in wrapper.optimizer.param_groups:
        assert group['lr'] == 1e-3 and group['weight_decay'] == 1e-6
    assert not any('requires_grad=False' in m for m in records.messages)
    assert sum('4 frozen parameter tensors' in m
               for m in records.messages) == 1
