# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Numerics: no NaN/Inf on legal edge cases, and a non-finite loss stops
training with a message naming the loss key and the iteration."""
import os
import os.path as osp
import shutil
from typing import Dict, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from _tiny import CROP, RESUME_STOP_ITER, run_tool, tiny_config
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmfgmoe.models.layers.moe import GateOutput, TopKGate
from mmfgmoe.utils import TASK_SPECS

PASCAL_TASKS = ['semseg', 'human_parts', 'saliency', 'normals', 'edge']
NYUD_TASKS = ['semseg', 'depth', 'normals', 'edge']
ALL_TASKS = ['semseg', 'human_parts', 'saliency', 'depth', 'normals', 'edge']
NUM_CLASSES = dict(semseg=40, human_parts=7)
BATCH = 2


def _build_model(config_path: str, mixer: Optional[dict] = None):
    """The tiny SynthRoom model with a head predicting all six tasks
    (``mixer``: the head's ``mixer_cfg``; default: the config's)."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(config_path).model
    cfg.decode_head.tasks = ALL_TASKS
    cfg.decode_head.num_classes = NUM_CLASSES
    if mixer is not None:
        cfg.decode_head.mixer_cfg = mixer
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def config_path(synth_nyud_root, tmp_path_factory) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_config(synth_nyud_root,
                      str(tmp_path_factory.mktemp('num') / 'tiny.py'))
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def model(config_path):
    return _build_model(config_path)


def _labels(kind: str, gen: torch.Generator) -> Dict[str, torch.Tensor]:
    """One sample's labels ``{task: [c, H, W]}`` of a legal edge case."""
    h, w = CROP
    full = dict(
        semseg=torch.randint(0,
                             NUM_CLASSES['semseg'], (1, h, w),
                             generator=gen),
        human_parts=torch.randint(0,
                                  NUM_CLASSES['human_parts'], (1, h, w),
                                  generator=gen),
        saliency=torch.randint(0, 2, (1, h, w), generator=gen),
        edge=(torch.rand(1, h, w, generator=gen) < 0.1).long(),
        depth=torch.rand(1, h, w, generator=gen) * 5 + 0.5,
        normals=torch.nn.functional.normalize(torch.randn(3,
                                                          h,
                                                          w,
                                                          generator=gen),
                                              dim=0))
    if kind == 'all_ignore':  # a crop made only of padding / unlabeled
        return {
            t: torch.full_like(v, TASK_SPECS[t].pad_value)
            for t, v in full.items()
        }
    if kind == 'no_person':  # human parts: background everywhere
        full['human_parts'] = torch.zeros_like(full['human_parts'])
    elif kind == 'no_valid_depth':
        full['depth'] = torch.zeros_like(full['depth'])
    elif kind == 'one_class':  # every other class absent from the batch
        full['semseg'] = torch.full_like(full['semseg'], 3)
    elif kind == 'no_edge':  # no positive edge / salient pixel at all
        full['edge'] = torch.zeros_like(full['edge'])
        full['saliency'] = torch.zeros_like(full['saliency'])
    return full


def _batch(kind: str, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    h, w = CROP
    inputs, samples = [], []
    for i in range(BATCH):
        inputs.append(
            torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen))
        sample = SegDataSample(metainfo=dict(img_path=f'{kind}_{i}.png',
                                             ori_shape=(h, w),
                                             img_shape=(h, w),
                                             pad_shape=(h, w),
                                             tasks=ALL_TASKS))
        for task, label in _labels(kind, gen).items():
            sample.set_data({TASK_SPECS[task].gt_field: PixelData(data=label)})
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _losses_and_grads(model,
                      batch: dict,
                      autocast: Optional[torch.dtype] = None) -> dict:
    model.train()
    model.zero_grad(set_to_none=True)
    data = model.data_preprocessor(batch, True)
    with torch.autocast('cpu',
                        dtype=autocast or torch.bfloat16,
                        enabled=autocast is not None):
        losses = model.loss(data['inputs'], data['data_samples'])
    for key, value in losses.items():
        assert torch.isfinite(value).all(), f'{key} = {value}'
    sum(losses.values()).backward()
    grads = [(n, p.grad) for n, p in model.named_parameters()
             if p.requires_grad]
    assert grads
    for name, grad in grads:
        # Every trainable parameter is reached (DDP needs no unused ones).
        assert grad is not None, f'no gradient reaches {name}'
        assert torch.isfinite(grad).all(), f'non-finite gradient of {name}'
    return losses


@pytest.mark.parametrize(
    'kind',
    ['all_ignore', 'no_person', 'no_valid_depth', 'one_class', 'no_edge'])
def test_legal_edge_cases_give_finite_losses(model, kind):
    losses = _losses_and_grads(model, _batch(kind))
    assert set(losses) == {f'loss_{t}' for t in ALL_TASKS} | \
        {'loss_moe_balance'}
    if kind == 'all_ignore':
        # nothing to learn from: exactly zero, not NaN
        assert all(losses[f'loss_{t}'].item() == 0 for t in ALL_TASKS)
    if kind == 'no_valid_depth':
        assert losses['loss_depth'].item() == 0
        assert losses['loss_semseg'].item() > 0
    if kind in ('no_person', 'one_class', 'no_edge'):
        # HED balancing (saliency, pos_weight=None) weights negatives by the
        # fraction of positives: an all-negative saliency map gives 0.
        zero = {'saliency'} if kind == 'no_edge' else set()
        for task in ALL_TASKS:
            value = losses[f'loss_{task}'].item()
            assert value == 0 if task in zero else value > 0, (task, value)


def test_predictions_finite_on_all_ignore_batch(model):
    model.eval()
    batch = _batch('all_ignore')
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        out = model.predict(data['inputs'], data['data_samples'])
    for sample in out:
        for task in ALL_TASKS:
            pred = sample.get(TASK_SPECS[task].pred_field).data
            assert pred.shape[-2:] == CROP
            assert torch.isfinite(pred.float()).all(), task


def test_every_token_routed_to_one_expert(model):
    """All ``top_k`` slots of every token go to expert 0 (forced with a
    forward hook on each router): the 15 other experts are empty."""
    calls = []

    def force(gate, args, output):
        # N * P_0: this router's balance loss when f_0 = 1
        calls.append(gate.num_experts * output.probs[:, 0].mean().item())
        return GateOutput(output.weights, torch.zeros_like(output.indices),
                          output.probs)

    gates = [m for m in model.modules() if isinstance(m, TopKGate)]
    handles = [g.register_forward_hook(force) for g in gates]
    try:
        losses = _losses_and_grads(model, _batch('no_person'))
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == len(gates) > 0
    # Collapsed routing: f = (1, 0, ..., 0), so each router's balance loss
    # is N * P_0 (finite; averaged over the routers).
    weight = model.decode_head.balance_loss_weight
    assert losses['loss_moe_balance'].item() == pytest.approx(
        weight * sum(calls) / len(calls), rel=1e-5)
    # The unused experts got a zero (not missing, not NaN) gradient.
    moe = model.decode_head.branches['semseg'][0].moe
    assert moe.w1.grad is not None and torch.count_nonzero(
        moe.w1.grad[1:]) == 0
    assert torch.count_nonzero(moe.w1.grad[0]) > 0


DWCONV = dict(type='DepthwiseConvMixer', kernel_size=3)
DEFORM = dict(type='DeformableMixer', kernel_size=3)  # mmcv's op (default)
DEFORM_TORCH = dict(type='DeformableMixer',
                    kernel_size=3,
                    conv_cfg=dict(type='TorchDCN'))


@pytest.mark.parametrize('mixer,dtype', [
    (DWCONV, torch.bfloat16),
    (DWCONV, torch.float16),
    (DEFORM, torch.bfloat16),  # mmcv's CPU op runs in fp32 under autocast
    (DEFORM, torch.float16),
    (DEFORM_TORCH, torch.bfloat16),
],
                         ids=[
                             'dwconv-bf16', 'dwconv-fp16', 'deform-bf16',
                             'deform-fp16', 'torch-deform-bf16'
                         ])
def test_cpu_autocast(config_path, mixer, dtype):
    if not torch.amp.autocast_mode.is_autocast_available('cpu'):
        pytest.skip('no CPU autocast in this torch')
    model = _build_model(config_path, mixer)
    losses = _losses_and_grads(model, _batch('one_class'), autocast=dtype)
    assert all(v.dtype == torch.float32 for v in losses.values())
    model.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=dtype):
        data = model.data_preprocessor(_batch('no_edge'), False)
        out = model.predict(data['inputs'], data['data_samples'])
    for task in ALL_TASKS:
        pred = out[0].get(TASK_SPECS[task].pred_field).data
        assert torch.isfinite(pred.float()).all(), task
    normals = out[0].pred_normals.data
    assert normals.dtype == torch.float32
    assert torch.allclose(normals.norm(dim=0), torch.ones(CROP), atol=1e-3)


def test_non_finite_loss_stops_training(stopped_run, tmp_path):
    """A NaN loss at iteration k+1 (the depth loss weight set to NaN when
    resuming the run stopped at k) stops training with the loss key and the
    iteration in the message, and no checkpoint of that iteration although
    the checkpoint hook saves every iteration."""
    work_dir = str(tmp_path / 'nan')
    shutil.copytree(stopped_run['work_dir'], work_dir)
    last_good = RESUME_STOP_ITER
    iteration = RESUME_STOP_ITER + 1
    good_ckpt = osp.join(work_dir, f'iter_{last_good}.pth')
    nan_ckpt = osp.join(work_dir, f'iter_{iteration}.pth')
    # resume from the copy (``last_checkpoint`` holds an absolute path)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(good_ckpt)
    with open(good_ckpt, 'rb') as f:
        good_bytes = f.read()
    proc = run_tool('tools/train.py',
                    stopped_run['config'],
                    '--work-dir',
                    work_dir,
                    '--resume',
                    '--cfg-options',
                    'model.decode_head.losses.depth.loss_weight=nan',
                    # a checkpoint after every iteration: the NaN iteration
                    # would get one if the check ran after the checkpoint
                    # hook
                    'default_hooks.checkpoint.interval=1',
                    check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert f'Load checkpoint from {good_ckpt}' in log, log[-3000:]
    assert 'FloatingPointError' in log, log[-3000:]
    assert (f'non-finite loss at iteration {iteration}: loss_depth=nan '
            '(total loss=nan)') in log, log[-3000:]
    # the last good iteration's checkpoint is intact, the NaN one not saved
    assert osp.isfile(good_ckpt)
    with open(good_ckpt, 'rb') as f:
        assert f.read() == good_bytes
    assert not osp.exists(nan_ckpt), sorted(os.listdir(work_dir))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == good_ckpt
