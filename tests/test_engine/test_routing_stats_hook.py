# Copyright (c) mmfgmoe contributors. All rights reserved.
import glob
import json
import math
import os.path as osp
import re

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
    # A visualizer of its own: one named 'visualizer' may exist already
    # (from an earlier Runner in this process), writing to its work dir.
    cfg.visualizer.name = f'routing_stats_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    runner.train()

    # Every routing scalar reached the visualiser once per iteration, fresh
    # (not via the message hub, whose log processor would smooth it over
    # intervals and send it a second time).
    records = []
    for path in glob.glob(osp.join(str(tmp_path), '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    head = cfg.model.decode_head
    keys = {f'routing/{task}/layer{layer}/{name}'
            for task in head.tasks for layer in range(head.num_blocks)
            for name in ('empty', 'max_over_mean', 'entropy',
                         'router_entropy')}
    keys |= {f'routing/{task}/global_gate' for task in head.tasks}
    for key in keys:
        assert [r['step'] for r in records if key in r] == [1, 2], key
    assert not any(k.startswith('train/routing')
                   for k in runner.message_hub.log_scalars)
    last = next(r for r in reversed(records) if keys <= set(r))
    for task in head.tasks:
        for layer in range(head.num_blocks):
            prefix = f'routing/{task}/layer{layer}/'
            assert 0 <= last[prefix + 'empty'] < head.num_experts
            assert 1 <= last[prefix + 'max_over_mean'] <= head.num_experts
            assert 0 < last[prefix + 'entropy'] <= 1
            assert 0 < last[prefix + 'router_entropy'] <= \
                math.log(head.num_experts)
        assert 0 < last[f'routing/{task}/global_gate'] < 1
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    for task in head.tasks:
        assert re.search(rf'Iter\(train\) \[2\] routing/{task}/layer0/'
                         r'max_over_mean: \d', log), task

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


def test_collect_runs_the_model_in_eval_mode_and_restores_it(
        synth_nyud_root):
    """A trained backbone with drop-path: the extra pass must draw no random
    numbers from training's stream and leave every module's mode as it was.
    """
    from mmengine.registry import init_default_scope

    from mmseg.registry import MODELS
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.drop_path_rate = 0.5
    cfg.model.freeze_backbone = False
    cfg.model.backbone.frozen_stages = -1
    cfg.train_dataloader.dataset.data_root = synth_nyud_root
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.train()
    model.decode_head.global_expert.eval()  # a mode of its own, kept
    modes = {name: m.training for name, m in model.named_modules()}
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    rng = torch.get_rng_state()
    scalars = RoutingStatsHook.collect(model, batch)
    assert torch.equal(torch.get_rng_state(), rng)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert scalars and all(math.isfinite(v) for v in scalars.values())
