# Copyright (c) mmfgmoe contributors. All rights reserved.
"""FGMoEHead: ablation switches, loss keys, output shapes, errors."""
import pytest
import torch
from torch.overrides import TorchFunctionMode

from _model_cfgs import task_losses, tiny_head_cfg
from mmseg.registry import MODELS
from mmfgmoe.models.decode_heads import valid_tokens
from mmfgmoe.models.layers import FineGrainedMoE, switch_balance_loss

TASKS = ['semseg', 'depth', 'normals', 'edge']


def _head(**overrides):
    overrides = dict(dict(tasks=TASKS, num_blocks=2), **overrides)
    cfg = tiny_head_cfg(overrides.pop('tasks'), [8, 8],
                        overrides.pop('num_classes', dict(semseg=5)),
                        **overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _feats(seed: int = 0):
    """Two backbone levels [2, 8, 3, 4], the same on every call whatever
    ran before (a local generator, not the global RNG)."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 8, 3, 4, generator=gen) for _ in range(2)]


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


def test_router_stats_leave_out_padding_tokens():
    head = _head().eval()
    feats = _feats()  # 3x4 ViT-like grid -> 6x8 tokens over a 48x64 input
    metas = [dict(img_shape=(48, 64), pad_shape=(48, 64)),
             dict(img_shape=(24, 40), pad_shape=(48, 64))]
    valid = valid_tokens(metas, (6, 8))
    assert valid[0].all()
    assert valid[1].sum() == 3 * 5 and valid[1, :3, :5].all()
    with torch.no_grad():
        _, stats = head.forward_with_stats(feats, metas)
        _, routing = head.forward_routing(feats, metas)
        _, everything = head.forward_with_stats(feats)
    assert torch.equal(routing.valid, valid)
    for masked, full in zip(stats, everything):
        assert int(masked.counts.sum()) == int(valid.sum()) * 2  # top_k=2
        assert int(full.counts.sum()) == valid.numel() * 2
    for task in TASKS:
        for record in routing.router_stats[task]:
            assert int(record.counts.sum()) == int(valid.sum()) * 2


def test_loss_balances_the_image_tokens(sample_factory):
    head = _head(balance_loss_weight=1.)
    feats = _feats()
    samples = [sample_factory(TASKS, 48, 64, seed=i) for i in range(2)]
    samples[1].set_metainfo(dict(img_shape=(24, 40), pad_shape=(48, 64)))
    metas = [sample.metainfo for sample in samples]
    loss = head.loss(feats, samples)['loss_moe_balance']
    # Train-mode BN normalises with the batch statistics: same features.
    _, image_only = head.forward_with_stats(feats, metas)
    _, with_padding = head.forward_with_stats(feats)
    torch.testing.assert_close(loss, switch_balance_loss(image_only))
    assert not torch.allclose(loss, switch_balance_loss(with_padding))


def test_a_loss_error_names_the_task(sample_factory):
    head = _head(tasks=['semseg', 'normals'])
    samples = [sample_factory(['semseg', 'normals'], 48, 64, seed=i)
               for i in range(2)]
    for sample in samples:  # 2 channels, not 3
        sample.gt_normals.data = sample.gt_normals.data[:2]
    with pytest.raises(ValueError, match="task 'normals'.*target shape"):
        head.loss(_feats(), samples)


class _HostReads(TorchFunctionMode):
    """Records the tensor methods that copy values to the host (a device
    sync on GPU)."""
    READS = ('__bool__', '__int__', '__float__', 'item', 'tolist')

    def __init__(self) -> None:
        super().__init__()
        self.names = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, '__name__', '') in self.READS:
            self.names.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_class_ids_are_checked_for_every_class_task(sample_factory):
    """semseg's labels fit, human_parts' do not: the error names the task
    whose label is out of range and the sample."""
    tasks = ['semseg', 'human_parts', 'depth']
    # The sample factory's label ranges (conftest.NUM_CLASSES).
    head = _head(tasks=tasks, num_classes=dict(semseg=5, human_parts=7))
    samples = [sample_factory(tasks, 48, 64, seed=i) for i in range(2)]
    with _HostReads() as reads:
        head.loss(_feats(), samples)  # legal labels
    # The check runs every step: one read for both class tasks (plus the
    # MoE dispatch's expert sizes, one per task MoE layer).
    assert reads.names.count('__bool__') == 1, reads.names
    samples[1].gt_human_parts.data[0, 3, 4] = 7
    with pytest.raises(ValueError, match=r"human_parts label of data sample "
                       r"1 \(sample_1\.png\).*num_classes\['human_parts'\]"):
        head.loss(_feats(), samples)


def test_checkpoint_loads_into_another_task_order():
    # Every per-task weight is keyed by task name: a strict load into a
    # config listing the tasks in another order predicts the same.
    head = _head(tasks=['semseg', 'depth']).eval()
    reordered = _head(tasks=['depth', 'semseg']).eval()
    reordered.load_state_dict(head.state_dict())
    feats = _feats()
    with torch.no_grad():
        want, got = head(feats), reordered(feats)
    for task in ('semseg', 'depth'):
        torch.testing.assert_close(got[task], want[task])


def test_forward_routing_records_every_router_and_gate():
    head = _head().eval()
    feats = _feats()
    recorded = []  # what each TopKGate returned, in call order
    gates = [
        block.moe.gate for task in TASKS for block in head.branches[task]
    ]
    handles = [
        gate.register_forward_hook(lambda m, i, out: recorded.append(out))
        for gate in gates
    ]
    with torch.no_grad():
        logits, routing = head.forward_routing(feats)
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        plain = head(feats)
    for task in TASKS:
        torch.testing.assert_close(logits[task], plain[task])
    assert routing.hw_shape == (6, 8)
    assert list(routing.router_stats) == TASKS
    stats = [s for task in TASKS for s in routing.router_stats[task]]
    assert len(stats) == len(recorded) == len(TASKS) * 2
    for layer, gate_out in zip(stats, recorded):
        assert layer.indices.shape == (2, 48, 2)
        assert torch.equal(layer.indices.reshape(-1, 2), gate_out.indices)
        assert torch.equal(
            layer.counts, torch.bincount(gate_out.indices.flatten(),
                                         minlength=4))
        assert float(layer.expert_fraction.sum()) == pytest.approx(1.)
        assert layer.entropy is not None
    gate = routing.global_gate
    assert gate.shape == (len(TASKS), 2, 6, 8)
    assert float(gate.min()) >= 0 and float(gate.max()) <= 1
    # Different tasks open the gate differently (task embedding).
    assert not torch.allclose(gate[0], gate[1])
    _, no_global = _head(use_global_expert=False).forward_routing(feats)
    assert no_global.global_gate is None


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
    coarse = _head(num_experts=2, top_k=1, renormalize=False,
                   expert_ratio=2.)
    moe = coarse.branches['semseg'][0].moe
    assert moe.expert_hidden == 4 * 16
    sized = _head(num_global_experts=2, global_hidden_channels=24,
                  global_task_embed_dims=5)
    assert sized.global_expert.task_embed['edge'].shape == (5, )
    assert len(sized.global_expert.experts) == 2
    assert sized.global_expert.experts[0].fc1.out_features == 24
    dw = _head(mixer_cfg=dict(type='DepthwiseConvMixer', kernel_size=3))
    assert type(dw.branches['depth'][0].mixer).__name__ == \
        'DepthwiseConvMixer'


def test_dense_baseline_has_no_balance_loss(sample_factory):
    head = _head(moe=False)
    samples = [sample_factory(TASKS, 6, 8, seed=i) for i in range(2)]
    losses = head.loss(_feats(), samples)
    assert set(losses) == {f'loss_{t}' for t in TASKS}


def test_loss_keys_weights_and_balance(sample_factory):
    samples = [sample_factory(TASKS, 12, 16, seed=i) for i in range(2)]
    feats = _feats()
    metas = [sample.metainfo for sample in samples]
    reference = _head().loss(feats, samples)  # same seed: same weights
    losses = task_losses()
    losses['depth']['loss_weight'] = 3.
    head = _head(balance_loss_weight=0.5, losses=losses)
    assert head.losses['edge'].loss_weight == 50.
    assert head.losses['edge'].pos_weight == 0.95
    out = head.loss(feats, samples)
    assert set(out) == {f'loss_{t}' for t in TASKS} | {'loss_moe_balance'}
    torch.testing.assert_close(out['loss_depth'], 3 * reference['loss_depth'])
    for task in ('semseg', 'normals', 'edge'):
        torch.testing.assert_close(out[f'loss_{task}'],
                                   reference[f'loss_{task}'])
    _, stats = head.forward_with_stats(feats, metas)
    torch.testing.assert_close(out['loss_moe_balance'],
                               0.5 * switch_balance_loss(stats))


def test_every_task_needs_a_loss():
    losses = task_losses()
    del losses['edge']
    with pytest.raises(ValueError,
                       match="FGMoEHead.losses has no loss for task 'edge'"):
        _head(losses=losses)


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
