# Copyright (c) mmfgmoe contributors. All rights reserved.
"""MultiTaskEncoderDecoder: frozen backbone, losses, predictions."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mmseg.registry import MODELS
from mmfgmoe.models.layers import FineGrainedMoE
from mmfgmoe.models.segmentors.multitask_encoder_decoder import unflip

ALL_NYUD = ['semseg', 'depth', 'normals', 'edge']
ALL_PASCAL = ['semseg', 'human_parts', 'saliency', 'normals', 'edge']

# The schedule's optimizer (configs/_base_/schedules/schedule_40k.py) with a
# larger learning rate so a few steps move every parameter visibly.
OPTIM_WRAPPER = dict(type='OptimWrapper',
                     optimizer=dict(type='Adam',
                                    lr=1e-3,
                                    betas=(0.9, 0.999),
                                    weight_decay=1e-6),
                     paramwise_cfg=dict(custom_keys=dict(
                         backbone=dict(lr_mult=0.0, decay_mult=0.0))))


def _build(cfg):
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _record_expert_usage(model):
    """Count, per MoE module, the tokens each expert received."""
    usage = {}

    def hook(module, inputs, output):
        stats = output[1]
        if stats is not None:
            used = usage.setdefault(
                module,
                torch.zeros_like(stats.expert_fraction, dtype=torch.bool))
            used |= stats.expert_fraction > 0

    for module in model.modules():
        if isinstance(module, FineGrainedMoE):
            module.register_forward_hook(hook)
    return usage


def test_frozen_backbone_training(model_cfg, batch_factory):
    model = _build(model_cfg(ALL_NYUD))
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(OPTIM_WRAPPER))
    backbone_before = {
        k: v.clone()
        for k, v in model.backbone.state_dict().items()
    }
    decoder_before = {
        n: p.detach().clone()
        for n, p in model.decode_head.named_parameters()
    }
    usage = _record_expert_usage(model)
    model.train()
    assert not model.backbone.training and model.decode_head.training
    assert not any(m.training for m in model.backbone.modules())
    for step in range(3):
        log_vars = model.train_step(batch_factory(ALL_NYUD, seed=step),
                                    optim_wrapper)
        assert set(log_vars) >= {f'loss_{t}' for t in ALL_NYUD}
        assert all(
            torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())

    # Backbone: bit-identical, no grads, no optimizer state.
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    backbone_params = set(model.backbone.parameters())
    for param in backbone_params:
        assert param.grad is None and not param.requires_grad
    state = optim_wrapper.optimizer.state
    assert not any(p in state for p in backbone_params)
    assert all(p in state for p in model.decode_head.parameters())

    # Decoder: every parameter that received tokens changed.
    moe_names = {id(m): n for n, m in model.decode_head.named_modules()}
    for name, param in model.decode_head.named_parameters():
        assert not torch.equal(param, decoder_before[name]), name
    for module, used in usage.items():
        prefix = moe_names[id(module)]
        for pname in ('w1', 'b1', 'w2'):
            before = decoder_before[f'{prefix}.{pname}']
            after = getattr(module, pname).detach()
            for expert in torch.nonzero(used).flatten().tolist():
                assert not torch.equal(before[expert], after[expert]), \
                    f'{prefix}.{pname}[{expert}]'


def test_backbone_runs_without_autograd(model_cfg):
    model = _build(model_cfg(['semseg']))
    feats = model.extract_feat(torch.randn(1, 3, 32, 48))
    assert all(not f.requires_grad for f in feats)


def test_full_finetuning_trains_backbone(model_cfg, batch_factory):
    cfg = model_cfg(['semseg', 'depth'])
    cfg['freeze_backbone'] = False
    model = _build(cfg)
    optim_wrapper = build_optim_wrapper(
        model, dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)))
    before = model.backbone.patch_embed.projection.weight.detach().clone()
    model.train()
    assert model.backbone.training
    model.train_step(batch_factory(['semseg', 'depth']), optim_wrapper)
    assert not torch.equal(before,
                           model.backbone.patch_embed.projection.weight)


def test_unfreezing_a_backbone_frozen_by_its_config_is_refused(model_cfg):
    # mmpretrain's frozen_stages freezes the ViT itself; freeze_backbone=False
    # alone would silently train nothing in it.
    cfg = model_cfg(['semseg'])
    cfg['freeze_backbone'] = False
    cfg['backbone']['frozen_stages'] = cfg['backbone']['arch']['num_layers']
    with pytest.raises(ValueError, match='frozen_stages=-1'):
        _build(cfg)


def _classifier_checkpoint(model_cfg, path, drop=()):
    """An mmpretrain-style classifier checkpoint (``backbone.*`` and
    ``head.*`` keys) of the tiny backbone, with recognisable values."""
    backbone = _build(model_cfg(['semseg'])).backbone
    state = {f'backbone.{k}': torch.full_like(v, 0.5)
             for k, v in backbone.state_dict().items() if k not in drop}
    state['head.fc.weight'] = torch.zeros(10, 32)
    torch.save(dict(state_dict=state, meta=dict()), str(path))
    return str(path)


def test_pretrained_loads_the_backbone_of_a_classifier_checkpoint(
        model_cfg, tmp_path):
    cfg = model_cfg(['semseg'])
    cfg['pretrained'] = _classifier_checkpoint(model_cfg, tmp_path / 'c.pth')
    model = _build(cfg)
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        assert torch.all(value == 0.5), key


def test_frozen_backbone_refuses_a_checkpoint_that_misses_weights(
        model_cfg, tmp_path):
    # No prefix: mmengine matches none of the backbone.* keys (strict=False)
    # and would only log them.
    cfg = model_cfg(['semseg'])
    cfg['backbone']['init_cfg'] = dict(
        type='Pretrained',
        checkpoint=_classifier_checkpoint(model_cfg, tmp_path / 'c.pth'))
    with pytest.raises(ValueError, match=r"c\.pth.*prefix=None.*lacks"):
        _build(cfg).init_weights()
    # One weight missing: named.
    cfg['backbone']['init_cfg'] = dict(
        type='Pretrained',
        prefix='backbone.',
        checkpoint=_classifier_checkpoint(model_cfg, tmp_path / 'd.pth',
                                          drop=('ln1.weight', )))
    with pytest.raises(ValueError, match=r"lacks 1 of .*'ln1\.weight'"):
        _build(cfg).init_weights()
    # A backbone that trains anyway only gets mmengine's warning.
    cfg['freeze_backbone'] = False
    _build(cfg).init_weights()


@pytest.mark.parametrize('tasks',
                         [['semseg', 'normals'], ['depth'], ALL_PASCAL])
def test_any_task_subset_trains(model_cfg, batch_factory, tasks):
    model = _build(model_cfg(tasks))
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(OPTIM_WRAPPER))
    model.train()
    log_vars = model.train_step(batch_factory(tasks), optim_wrapper)
    assert {k for k in log_vars if k.startswith('loss_')} == \
        {f'loss_{t}' for t in tasks} | {'loss_moe_balance'}


def test_every_trainable_parameter_gets_a_finite_gradient(
        model_cfg, batch_factory):
    model = _build(model_cfg(ALL_PASCAL, num_global_experts=2))
    model.train()
    data = model.data_preprocessor(batch_factory(ALL_PASCAL), training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name


def test_all_ignore_labels_give_finite_losses(model_cfg, batch_factory):
    tasks = ['semseg', 'human_parts', 'edge', 'depth', 'normals']
    model = _build(model_cfg(tasks))
    batch = batch_factory(tasks)
    for sample in batch['data_samples']:
        sample.gt_sem_seg.data[:] = 255
        sample.gt_human_parts.data[:] = 255
        sample.gt_edge.data[:] = 255
        sample.gt_depth_map.data[:] = 0
        sample.gt_normals.data[:] = 0
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    for task in tasks:
        assert losses[f'loss_{task}'].item() == 0.
    sum(losses.values()).backward()


def test_missing_label_is_a_clear_error(model_cfg, batch_factory):
    model = _build(model_cfg(['semseg', 'depth']))
    data = model.data_preprocessor(batch_factory(['semseg']), training=True)
    with pytest.raises(KeyError, match='gt_depth_map'):
        model(**data, mode='loss')


def test_predict_writes_every_field_at_ori_shape(model_cfg, sample_factory):
    tasks = ['semseg', 'human_parts', 'saliency', 'depth', 'normals', 'edge']
    model = _build(model_cfg(tasks)).eval()
    samples = [
        sample_factory(tasks, 30, 45, seed=0),
        sample_factory(tasks,
                       30,
                       45,
                       seed=1,
                       flip=True,
                       flip_direction='horizontal')
    ]
    inputs = [torch.randint(0, 256, (3, 30, 45), dtype=torch.uint8)] * 2
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   training=False)
    assert data['inputs'].shape[-2:] == (32, 48)
    with torch.no_grad():
        out = model(**data, mode='predict')
    for sample in out:
        assert sample.pred_sem_seg.data.shape == (1, 30, 45)
        assert sample.pred_sem_seg.data.dtype == torch.int64
        assert sample.pred_human_parts.data.max() < 7
        assert sample.seg_logits.data.shape == (5, 30, 45)
        depth = sample.pred_depth_map.data
        assert depth.dtype == torch.float32 and (depth >= 0).all()
        normals = sample.pred_normals.data
        assert normals.shape == (3, 30, 45)
        torch.testing.assert_close(normals.norm(dim=0), torch.ones(30, 45))
        for field in ('pred_edge', 'pred_saliency'):
            prob = sample.get(field).data
            assert prob.shape == (1, 30, 45)
            assert ((prob >= 0) & (prob <= 1)).all()
    # Without samples: predictions at the input size.
    with torch.no_grad():
        bare = model.predict(data['inputs'])
    assert bare[0].pred_depth_map.shape == (32, 48)


def test_predict_values_follow_the_tensor_logits(model_cfg, sample_factory):
    """Each prediction is the head's raw (``mode='tensor'``) logits upsampled
    to the padded batch (bilinear, the head's ``align_corners``), the
    padding cropped away, a flipped sample flipped back (normals' x
    negated), then the task's predictor (clamp / normalise / sigmoid)."""
    import torch.nn.functional as F
    tasks = ['semseg', 'depth', 'normals', 'edge']
    model = _build(model_cfg(tasks)).eval()
    height, width = 30, 45
    samples = [
        sample_factory(tasks, height, width, seed=0),
        sample_factory(tasks,
                       height,
                       width,
                       seed=1,
                       flip=True,
                       flip_direction='horizontal')
    ]
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                      generator=gen) for _ in range(2)
    ]
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   training=False)
    padded = data['inputs'].shape[-2:]
    assert padded == (32, 48)
    with torch.no_grad():
        raw = model(data['inputs'], mode='tensor')
        out = model(**data, mode='predict')
    assert raw['depth'].shape[-2:] == (4, 6)  # the head's 1/8 scale
    align_corners = model.decode_head.align_corners
    for i, sample in enumerate(out):
        # left, right, top, bottom
        assert tuple(sample.img_padding_size) == (0, 3, 0, 2)
        expected = {}
        for task, logits in raw.items():
            up = F.interpolate(logits[i:i + 1],
                               size=padded,
                               mode='bilinear',
                               align_corners=align_corners)[0]
            up = up[:, :height, :width]  # padding: bottom and right
            if i == 1:  # flipped horizontally: flip back
                up = up.flip(-1)
                if task == 'normals':
                    up = up * torch.tensor([-1., 1., 1.]).view(3, 1, 1)
            expected[task] = up
        assert (expected['depth'] > 0).any()  # the clamp keeps some values
        torch.testing.assert_close(sample.pred_depth_map.data,
                                   expected['depth'].clamp(min=0))
        torch.testing.assert_close(
            sample.pred_normals.data,
            expected['normals'] / expected['normals'].norm(dim=0).clamp(
                min=1e-12))
        torch.testing.assert_close(sample.seg_logits.data, expected['semseg'])
        assert torch.equal(sample.pred_sem_seg.data,
                           expected['semseg'].argmax(0, keepdim=True))
        torch.testing.assert_close(sample.pred_edge.data,
                                   expected['edge'].sigmoid())


@pytest.mark.parametrize('ori_shape', [(4, 6), (8, 12)])
def test_postprocess_strips_padding_undoes_flip_and_resizes(
        model_cfg, ori_shape):
    """Padding cut, flip undone (normals' x negated), then a bilinear resize
    to ``ori_shape`` (an image the test pipeline resized: (8, 12))."""
    import torch.nn.functional as F

    from mmseg.structures import SegDataSample
    model = _build(model_cfg(['depth', 'normals']))
    height, width = 6, 8
    depth = torch.arange(width, dtype=torch.float32).expand(
        height, width).clone()[None, None]  # [1, 1, 6, 8]
    normals = torch.zeros(1, 3, height, width)
    normals[:, 0] = 1.  # +x everywhere
    meta = dict(ori_shape=ori_shape,
                img_shape=(4, 6),
                pad_shape=(6, 8),
                padding_size=[0, 2, 0, 2],
                flip=True,
                flip_direction='horizontal')
    out = model.postprocess_result(dict(depth=depth, normals=normals),
                                   [SegDataSample(metainfo=meta)])[0]
    # Padding (last 2 columns/rows) removed, then flipped back.
    unflipped = torch.tensor([5., 4., 3., 2., 1., 0.]).expand(4, 6)
    expected = F.interpolate(unflipped[None, None], size=ori_shape,
                             mode='bilinear', align_corners=False)[0]
    torch.testing.assert_close(out.pred_depth_map.data, expected)
    # Flipping back negates the normals' x component.
    assert out.pred_normals.data.shape == (3, *ori_shape)
    assert (out.pred_normals.data[0] == -1).all()
    # A bad flip direction names the sample.
    meta.update(flip_direction=None, img_path='/data/room_7.jpg')
    with pytest.raises(ValueError,
                       match=r'room_7\.jpg: unknown flip_direction None'):
        model.postprocess_result(dict(depth=depth),
                                 [SegDataSample(metainfo=meta)])


def test_unflip_vertical_negates_y():
    normals = torch.tensor([0., 1., 0.]).view(3, 1, 1).expand(3, 2, 2)
    assert (unflip('normals', normals, 'vertical')[1] == -1).all()
    assert torch.equal(unflip('depth', normals[:1], 'vertical'), normals[:1])
    with pytest.raises(ValueError, match='flip_direction'):
        unflip('depth', normals, 'diagonal')


def test_tensor_mode_returns_raw_logits(model_cfg):
    model = _build(model_cfg(['semseg', 'normals']))
    out = model(torch.randn(2, 3, 32, 48), mode='tensor')
    assert set(out) == {'semseg', 'normals'}
    assert out['semseg'].shape == (2, 5, 4, 6)
    assert out['normals'].shape == (2, 3, 4, 6)


def test_only_whole_inference(model_cfg):
    cfg = model_cfg(['depth'])
    cfg['test_cfg'] = dict(mode='slide', crop_size=(32, 32), stride=(16, 16))
    with pytest.raises(ValueError, match='whole'):
        MODELS.build(cfg)
