# Copyright (c) mmfgmoe contributors. All rights reserved.
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmfgmoe.engine.hooks import RoutingStatsHook
from mmfgmoe.evaluation import routing_summary

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'demo',
                  'fgmoe_vit-tiny_demo.py')


def test_routing_summary_extremes():
    uniform = routing_summary(torch.full((8, ), 1 / 8))
    assert uniform == pytest.approx(dict(max_over_mean=1., entropy=1.,
                                         empty=0.))
    collapsed = routing_summary(torch.eye(8)[3])
    assert collapsed == pytest.approx(dict(max_over_mean=8., entropy=0.,
                                           empty=7.))
    half = routing_summary(torch.tensor([.5, .5, 0., 0.]))
    assert half['entropy'] == pytest.approx(math.log(2) / math.log(4))


def test_hook_logs_every_task_and_layer(synth_nyud_root, tmp_path):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.img_size = (64, 96)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = synth_nyud_root
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'MultiTaskRandomCrop':
            transform['crop_size'] = (64, 96)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2,
                         val_interval=100)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.custom_hooks = [dict(type='RoutingStatsHook', interval=1)]
    runner = Runner.from_cfg(cfg)
    runner.train()

    scalars = runner.message_hub.log_scalars
    head = cfg.model.decode_head
    for task in head.tasks:
        for layer in range(head.num_blocks):
            prefix = f'train/routing/{task}/layer{layer}/'
            empty = scalars[prefix + 'empty'].current()
            assert 0 <= empty < head.num_experts
            assert 1 <= scalars[prefix + 'max_over_mean'].current() \
                <= head.num_experts
            assert 0 < scalars[prefix + 'entropy'].current() <= 1
            assert 0 < scalars[prefix + 'router_entropy'].current() <= \
                math.log(head.num_experts)
        gate = scalars[f'train/routing/{task}/global_gate'].current()
        assert 0 < gate < 1

    # The logged load statistics equal a recount from the routing indices
    # every router returned (captured with forward hooks on the gates).
    model = runner.model
    recorded = []
    handles = [
        block.moe.gate.register_forward_hook(
            lambda m, i, out: recorded.append(out.indices))
        for task in head.tasks for block in model.decode_head.branches[task]
    ]
    collected = RoutingStatsHook.collect(model,
                                         next(iter(runner.train_dataloader)))
    for handle in handles:
        handle.remove()
    assert len(recorded) == len(head.tasks) * head.num_blocks
    for n, indices in enumerate(recorded):
        task, layer = head.tasks[n // head.num_blocks], n % head.num_blocks
        counts = torch.bincount(indices.flatten(), minlength=head.num_experts)
        fraction = counts / counts.sum()
        assert float(fraction.sum()) == pytest.approx(1.)
        for name, value in routing_summary(fraction).items():
            assert collected[f'routing/{task}/layer{layer}/{name}'] == \
                pytest.approx(value, abs=1e-6), (task, layer, name)
