# Copyright (c) mmfgmoe contributors. All rights reserved.
"""FGMoEHead: ablation switches, loss keys, output shapes, errors."""
import pytest
import torch

from mmseg.registry import MODELS
from mmfgmoe.models.layers import FineGrainedMoE

TASKS = ['semseg', 'depth', 'normals', 'edge']


def _head(**overrides):
    cfg = dict(type='FGMoEHead',
               in_channels=[8, 8],
               tasks=TASKS,
               num_classes=dict(semseg=5),
               channels=16,
               agg_channels=8,
               num_blocks=2,
               num_experts=4,
               top_k=2,
               num_shared_experts=1)
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _feats():
    return [torch.randn(2, 8, 3, 4), torch.randn(2, 8, 3, 4)]


def test_forward_shapes_and_router_stats():
    head = _head()
    logits, stats = head.forward_with_stats(_feats())
    assert {
        k: tuple(v.shape)
        for k, v in logits.items()
    } == dict(semseg=(2, 5, 6, 8),
              depth=(2, 1, 6, 8),
              normals=(2, 3, 6, 8),
              edge=(2, 1, 6, 8))
    assert len(stats) == len(TASKS) * 2  # one per task MoE layer


def test_ablation_switches():
    head = _head(use_shared_experts=False, use_global_expert=False)
    moes = [m for m in head.modules() if isinstance(m, FineGrainedMoE)]
    assert all(m.shared is None for m in moes)
    assert head.global_expert is None
    dense = _head(moe=False)
    assert all(not m.moe for m in dense.modules()
               if isinstance(m, FineGrainedMoE))
    _, stats = dense.forward_with_stats(_feats())
    assert stats == []
    coarse = _head(num_experts=2, top_k=1, expert_ratio=2.)
    moe = coarse.branches['semseg'][0].moe
    assert moe.expert_hidden == 4 * 16
    dw = _head(mixer_cfg=dict(type='DepthwiseConvMixer', kernel_size=3))
    assert type(dw.branches['depth'][0].mixer).__name__ == \
        'DepthwiseConvMixer'


def test_dense_baseline_has_no_balance_loss(sample_factory):
    head = _head(moe=False)
    samples = [sample_factory(TASKS, 6, 8, seed=i) for i in range(2)]
    losses = head.loss(_feats(), samples)
    assert set(losses) == {f'loss_{t}' for t in TASKS}


def test_loss_keys_weights_and_balance(sample_factory):
    head = _head(balance_loss_weight=0.5,
                 losses=dict(depth=dict(loss_weight=3.)))
    assert head.losses['depth'].loss_weight == 3.
    assert head.losses['edge'].loss_weight == 50.
    assert head.losses['edge'].pos_weight == 0.95
    samples = [sample_factory(TASKS, 12, 16, seed=i) for i in range(2)]
    losses = head.loss(_feats(), samples)
    assert set(losses) == {f'loss_{t}' for t in TASKS} | {'loss_moe_balance'}
    # Switch loss >= 1 (equality only for perfectly balanced routing).
    assert losses['loss_moe_balance'].item() >= 0.5 - 1e-6


def test_predict_upsamples_to_padded_input():
    head = _head()
    out = head.predict(_feats(),
                       [dict(img_shape=(45, 60), pad_shape=(48, 64))])
    assert all(v.shape[-2:] == (48, 64) for v in out.values())


def test_configuration_errors():
    with pytest.raises(ValueError, match='num_classes'):
        _head(tasks=['human_parts'])
    with pytest.raises(ValueError, match='unknown task'):
        _head(tasks=['semseg', 'optical_flow'])
    with pytest.raises(ValueError, match='at least one task'):
        _head(tasks=[])
