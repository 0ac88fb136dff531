# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Malformed input matrix, part 2: config, model/data mismatch, transform,
metric and checkpoint cases, and "a corrupt sample never poisons later
samples". Every case must fail with an error naming the field or file.

Part 1 (23 dataset cases: missing/empty split file, missing files, truncated
or undecodable images and labels, out-of-range labels, NaN / wrong-shape /
wrong-dtype depth, wrong-size labels, PASCAL .mat problems, ...) is
``tests/test_datasets/test_bad_inputs.py``; unsafe and missing checkpoints
are ``tests/test_compat.py`` (``test_pickle_that_runs_code_is_refused``,
``test_http_checkpoint_is_loaded_weights_only``,
``test_missing_checkpoint_names_file``).
"""
import logging
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint
from mmengine.structures import PixelData

from _tiny import tiny_config
from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from mmseg.structures import SegDataSample
from mmfgmoe.datasets import NYUDv2MultiTaskDataset
from mmfgmoe.evaluation import MultiTaskMetric

LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadMultiTaskAnnotations')]
PACK = [dict(type='PackMultiTaskInputs')]


@pytest.fixture(autouse=True, scope='module')
def _mmseg_scope():
    """Build transforms and models in the mmseg scope, as configs do; one
    intra-op thread (tiny tensors on a shared 2-core machine)."""
    init_default_scope('mmseg')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def cfg(synth_nyud_root, tmp_path_factory) -> Config:
    path = tiny_config(synth_nyud_root,
                       str(tmp_path_factory.mktemp('bad') / 'tiny.py'))
    return Config.fromfile(path)


@pytest.fixture
def nyud_copy(synth_nyud_root, tmp_path) -> str:
    dst = str(tmp_path / 'NYUDv2')
    shutil.copytree(synth_nyud_root, dst)
    return dst


def _first_id(root: str) -> str:
    with open(osp.join(root, 'gt_sets', 'train.txt')) as f:
        return f.readline().strip()


def _raises(exc, pattern: str, fn, *args, **kwargs) -> str:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert re.search(pattern, message), message
    # the message each case produces, for the record (pytest -s shows it)
    print(f'\n[malformed] {type(info.value).__name__}: {message[:400]}')
    return message


def _train_batch(cfg: Config) -> dict:
    """Two training samples of the tiny config (real pipeline)."""
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[0], dataset[1]])


def _head_cfg(cfg: Config, **head) -> dict:
    """``cfg.model`` with ``decode_head`` options merged as
    ``--cfg-options model.decode_head.<key>=...`` would."""
    copy = Config(dict(model=cfg.model.to_dict()))
    copy.merge_from_dict({
        f'model.decode_head.{k}': v
        for k, v in head.items()
    })
    return copy.model


# ---------------------------------------------------------------- config --
def test_config_unknown_head_task(cfg):
    _raises(ValueError,
            r"`FGMoEHead.tasks` names unknown task\(s\) \['dept'\]",
            MODELS.build, _head_cfg(cfg, tasks=['semseg', 'dept']))


def test_config_unknown_metric_task():
    _raises(ValueError,
            r"`MultiTaskMetric.tasks` names unknown task\(s\) \['segm'\]",
            MultiTaskMetric,
            tasks=['segm'])


def test_config_unknown_head_switch(cfg):
    # a misspelt switch (use_global_experts) must not be silently ignored
    _raises(TypeError,
            r"FGMoEHead.*unexpected keyword argument 'use_global_experts'",
            MODELS.build, _head_cfg(cfg, use_global_experts=False))


def test_config_missing_class_count(cfg):
    _raises(
        ValueError,
        r"FGMoEHead.num_classes must give the number of classes of task "
        r"'semseg'", MODELS.build,
        _head_cfg(cfg, num_classes=dict(_delete_=True, human_parts=7)))


def test_config_head_has_fewer_classes_than_dataset(cfg):
    # NYUD has 40 classes; a head with 5 fails at the first loss with the
    # field to fix (torch alone says "Target 12 is out of bounds").
    model = MODELS.build(_head_cfg(cfg, num_classes=dict(semseg=5)))
    data = model.data_preprocessor(_train_batch(cfg), True)
    msg = _raises(
        ValueError, r"FGMoEHead: the semseg label of data sample \d .*holds "
        r"class ids .*outside \[0, 5\).*"
        r"FGMoEHead.num_classes\['semseg'\]=5 does not match", model.loss,
        data['inputs'], data['data_samples'])
    assert 'images/' in msg  # the sample's file


def test_config_head_task_missing_from_dataset(cfg):
    # the head predicts saliency, the NYUD dataset has no saliency label
    model = MODELS.build(
        _head_cfg(cfg,
                  tasks=['semseg', 'depth', 'normals', 'edge', 'saliency']))
    data = model.data_preprocessor(_train_batch(cfg), True)
    _raises(
        KeyError,
        r"data sample 0 \(.*images/.*\.png\) has no `gt_saliency` for "
        r"task 'saliency'", model.loss, data['inputs'], data['data_samples'])


def _sample(name='000001', shape=(4, 6), **fields) -> dict:
    sample = SegDataSample(metainfo=dict(img_path=f'images/{name}.png'))
    for key, value in fields.items():
        sample.set_data({key: PixelData(data=torch.as_tensor(value))})
    return sample.to_dict()


def test_config_dataset_task_not_predicted():
    # the dataset lists edge, the model does not predict it: an error, not a
    # silently missing edge score
    metric = MultiTaskMetric()
    metric.dataset_meta = dict(classes=['a', 'b'], tasks=['semseg', 'edge'])
    label = np.zeros((1, 4, 6), np.int64)
    sample = _sample(gt_sem_seg=label, pred_sem_seg=label, gt_edge=label)
    _raises(
        ValueError, r"sample '000001' has the edge label `gt_edge` but no "
        r"prediction `pred_edge`", metric.process, {}, [sample])


# ---------------------------------------------------------------- metric --
def _metric() -> MultiTaskMetric:
    metric = MultiTaskMetric(tasks=['semseg', 'depth'],
                             num_classes=dict(semseg=3))
    return metric


def test_metric_depth_prediction_wrong_shape():
    sample = _sample(gt_depth_map=np.ones((1, 4, 6), np.float32),
                     pred_depth_map=np.ones((1, 6, 4), np.float32))
    _raises(
        ValueError, r"depth of sample '000001' \(`pred_depth_map` vs "
        r"`gt_depth_map`\).*shape \(1, 6, 4\) differs.*\(1, 4, 6\)",
        _metric().process, {}, [sample])


def test_metric_semseg_logits_instead_of_ids():
    sample = _sample(gt_sem_seg=np.zeros((1, 4, 6), np.int64),
                     pred_sem_seg=np.zeros((3, 4, 6), np.float32))
    _raises(
        ValueError,
        r"semseg of sample '000001' \(`pred_sem_seg` vs `gt_sem_seg`\)"
        r".*shape",
        _metric().process, {}, [sample])


def test_metric_prediction_missing():
    sample = _sample(gt_depth_map=np.ones((1, 4, 6), np.float32))
    _raises(
        ValueError,
        r"'000001' has the depth label `gt_depth_map` but no prediction "
        r"`pred_depth_map`",
        _metric().process, {}, [sample])


def test_metric_non_finite_prediction():
    pred = np.ones((1, 4, 6), np.float32)
    pred[0, 1, 1] = np.nan
    sample = _sample(gt_depth_map=np.ones((1, 4, 6), np.float32),
                     pred_depth_map=pred)
    _raises(
        ValueError,
        r"depth prediction `pred_depth_map` of sample '000001' has "
        r"NaN/Inf",
        _metric().process, {}, [sample])


def test_metric_label_missing_in_every_sample_is_reported():
    # a configured task without any label is not silently dropped: warned
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        metric = _metric()
        label = np.zeros((1, 4, 6), np.int64)
        metric.process({}, [_sample(gt_sem_seg=label, pred_sem_seg=label)])
        result = metric.evaluate(1)
    finally:
        logger.removeHandler(handler)
    assert 'depth.rmse' not in result and 'semseg.mIoU' in result
    warnings = [
        r.getMessage() for r in records if r.levelno >= logging.WARNING
    ]
    assert any('no sample carried the depth label `gt_depth_map`' in w
               for w in warnings), warnings


# ------------------------------------------------------------ transforms --
def _shrink_depth(root: str) -> str:
    sid = _first_id(root)
    path = osp.join(root, 'depth', sid + '.npy')
    np.save(path, np.load(path)[:-2])
    return sid


@pytest.mark.parametrize('last', [
    dict(type='MultiTaskRandomCrop', crop_size=(32, 32)),
    dict(type='MultiTaskRandomResize', ratio_range=(0.5, 1.0)),
    dict(type='MultiTaskRandomFlip', prob=1.0),
    dict(type='MultiTaskPad', size=(128, 160)),
    dict(type='PackMultiTaskInputs'),
],
                         ids=lambda t: t['type'])
def test_transform_label_size_differs_from_image(nyud_copy, last):
    # labels loaded before the image: the loader cannot compare sizes, the
    # first geometric transform (or the packer) must
    sid = _shrink_depth(nyud_copy)
    dataset = NYUDv2MultiTaskDataset(nyud_copy,
                                     split='train',
                                     pipeline=LOAD[::-1] + [last])
    msg = _raises(
        ValueError,
        r"`gt_depth_map` of .* has shape \(94, 128\), the image has"
        r" \(96, 128\)|`gt_depth_map` of .*: label shape \(94, 128\)"
        r" differs from the image shape \(96, 128\)", dataset.__getitem__, 0)
    assert osp.join(nyud_copy, 'images', sid + '.png') in msg
    assert last['type'] in msg


def test_transform_nan_depth_reaches_packer():
    img = np.zeros((4, 6, 3), np.uint8)
    depth = np.ones((4, 6), np.float32)
    depth[2, 2] = np.nan
    pack = TRANSFORMS.build(dict(type='PackMultiTaskInputs'))
    _raises(
        ValueError,
        r"PackMultiTaskInputs: `gt_depth_map` of images/x.png: label has "
        r"NaN/Inf values", pack,
        dict(img=img, gt_depth_map=depth, img_path='images/x.png'))


def test_transform_normals_without_channels():
    pack = TRANSFORMS.build(dict(type='PackMultiTaskInputs'))
    _raises(
        ValueError, r"`gt_normals` of images/x.png: expected a label with 3 "
        r"channel\(s\), got shape \(1, 4, 6\)", pack,
        dict(img=np.zeros((4, 6, 3), np.uint8),
             gt_normals=np.ones((4, 6), np.float32),
             img_path='images/x.png'))


# --------------------------------------------------------------- dataset --
@pytest.mark.parametrize('folder,pattern', [
    ('images', 'failed to load image'),
    ('segmentation', 'cannot be decoded as an image.*truncated'),
])
def test_dataset_truncated_png(nyud_copy, folder, pattern):
    # the first half of a real PNG (an interrupted copy); the existing
    # cases write garbage after the PNG signature
    path = osp.join(nyud_copy, folder, _first_id(nyud_copy) + '.png')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    dataset = NYUDv2MultiTaskDataset(nyud_copy, split='train', pipeline=LOAD)
    msg = _raises(Exception, pattern, dataset.__getitem__, 0)
    assert path in msg


# ------------------------------------------------------------ checkpoint --
def _pascal_like(cfg: Config):
    """A model of another task set and class count than ``cfg.model``."""
    return MODELS.build(
        _head_cfg(
            cfg,
            tasks=['semseg', 'human_parts', 'saliency', 'normals', 'edge'],
            num_classes=dict(semseg=21, human_parts=7)))


def test_checkpoint_of_another_model(cfg, tmp_path):
    other = _pascal_like(cfg)
    path = str(tmp_path / 'pascal_model.pth')
    torch.save(dict(meta=dict(), state_dict=other.state_dict()), path)
    model = MODELS.build(cfg.model)
    # strict: refused, with every kind of mismatch named
    msg = _raises(RuntimeError,
                  'The model and loaded state dict do not match exactly',
                  load_checkpoint,
                  model,
                  path,
                  map_location='cpu',
                  strict=True)
    assert re.search(
        r'missing keys in source state_dict: .*'
        r'decode_head\.branches\.depth\.0\.moe\.w1', msg)
    assert re.search(
        r'unexpected key in source state_dict: .*'
        r'decode_head\.branches\.human_parts', msg)
    assert 'size mismatch for decode_head.pred_heads.semseg.1.weight' in msg
    # load_from (non-strict, mmengine's Runner): loads what fits and logs
    # the same lists as a warning
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        load_checkpoint(model,
                        path,
                        map_location='cpu',
                        strict=False,
                        logger='current')
    finally:
        logger.removeHandler(handler)
    text = '\n'.join(r.getMessage() for r in records
                     if r.levelno >= logging.WARNING)
    assert 'unexpected key in source state_dict: ' \
        'decode_head.branches.human_parts' in text, text
    assert 'missing keys in source state_dict: ' in text
    assert 'decode_head.branches.depth.0.moe.w1' in text
    assert 'size mismatch for decode_head.pred_heads.semseg.1.weight' in text


def test_checkpoint_truncated_names_file(tmp_path):
    path = str(tmp_path / 'truncated.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(1000))), path)
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(RuntimeError,
                       match=r"cannot read checkpoint '.*truncated\.pth' "
                       r"\(truncated or "):
        _load_checkpoint(path, map_location='cpu')


# ------------------------------------------ corrupt sample isolation --
def test_corrupt_sample_never_poisons_later_samples(nyud_copy,
                                                    synth_nyud_root):
    pipeline = LOAD + PACK
    sid = _first_id(nyud_copy)
    depth = osp.join(nyud_copy, 'depth', sid + '.npy')
    arr = np.load(depth)
    arr[5, 5] = np.nan
    np.save(depth, arr)
    bad = NYUDv2MultiTaskDataset(nyud_copy, split='train', pipeline=pipeline)
    good = NYUDv2MultiTaskDataset(synth_nyud_root,
                                  split='train',
                                  pipeline=pipeline)
    for _ in range(2):  # the failure repeats; nothing is cached or skipped
        _raises(ValueError, re.escape(depth) + '.*NaN', bad.__getitem__, 0)
        for idx in range(1, len(good)):
            got, ref = bad[idx]['data_samples'], good[idx]['data_samples']
            assert torch.equal(bad[idx]['inputs'], good[idx]['inputs'])
            for field in ('gt_sem_seg', 'gt_depth_map', 'gt_normals',
                          'gt_edge'):
                assert torch.equal(got.get(field).data, ref.get(field).data)


def test_corrupt_prediction_never_poisons_the_metric():
    label = np.zeros((1, 4, 6), np.int64)
    label[0, :, 3:] = 1
    depth = np.full((1, 4, 6), 2.0, np.float32)
    good = _sample('good',
                   gt_sem_seg=label,
                   pred_sem_seg=label,
                   gt_depth_map=depth,
                   pred_depth_map=depth * 1.1)
    bad = _sample('bad',
                  gt_sem_seg=label,
                  pred_sem_seg=label[:, :2],
                  gt_depth_map=depth,
                  pred_depth_map=depth)
    metric = _metric()
    with pytest.raises(ValueError, match="sample 'bad'"):
        metric.process({}, [bad])
    metric.process({}, [good])
    reference = _metric()
    reference.process({}, [good])
    assert metric.evaluate(1) == reference.evaluate(1)
