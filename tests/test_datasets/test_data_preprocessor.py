# Copyright (c) mmfgmoe contributors. All rights reserved.
"""MultiTaskDataPreProcessor: per-task padding in training, mmseg at test."""
import torch
from mmengine.structures import PixelData

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmfgmoe.utils import TASK_SPECS

CFG = dict(type='MultiTaskDataPreProcessor', mean=[123.675, 116.28, 103.53],
           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
           seg_pad_val=255, size_divisor=16, test_cfg=dict(size_divisor=16))


def _sample(h, w, tasks=tuple(TASK_SPECS)):
    s = SegDataSample()
    for task in tasks:
        spec = TASK_SPECS[task]
        if spec.discrete:
            data = torch.ones(1, h, w, dtype=torch.int64)
        elif task == 'depth':
            data = torch.full((1, h, w), 2.5)
        else:
            data = torch.zeros(3, h, w)
            data[2] = -1
        s.set_field(PixelData(data=data), spec.gt_field)
    s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                        tasks=list(tasks)))
    return s


def test_training_pads_every_task_with_its_value():
    pre = MODELS.build(CFG)
    assert isinstance(pre, SegDataPreProcessor)
    inputs = [torch.randint(0, 255, (3, 20, 30), dtype=torch.uint8),
              torch.randint(0, 255, (3, 33, 17), dtype=torch.uint8)]
    data = dict(inputs=inputs, data_samples=[_sample(20, 30), _sample(33, 17)])
    out = pre(data, training=True)
    assert out['inputs'].shape == (2, 3, 48, 32)
    # normalised, RGB order, image padding = pad_val after normalisation
    mean = torch.tensor(CFG['mean']).view(3, 1, 1)
    std = torch.tensor(CFG['std']).view(3, 1, 1)
    ref = (inputs[0][[2, 1, 0]].float() - mean) / std
    torch.testing.assert_close(out['inputs'][0, :, :20, :30], ref)
    assert (out['inputs'][0, :, 20:, :] == 0).all()
    for sample, (h, w) in zip(out['data_samples'], [(20, 30), (33, 17)]):
        assert sample.metainfo['img_shape'] == (h, w)
        assert sample.metainfo['pad_shape'] == (48, 32)
        assert sample.metainfo['padding_size'] == [0, 32 - w, 0, 48 - h]
        for task, spec in TASK_SPECS.items():
            label = sample.get(spec.gt_field).data
            assert label.shape[-2:] == (48, 32)
            pad = torch.ones(48, 32, dtype=torch.bool)
            pad[:h, :w] = False
            assert (label[:, pad] == spec.pad_value).all(), task
            assert (label[:, ~pad] != spec.pad_value).any(), task
    # depth padding is 0 (invalid), never 255 metres as in mmseg
    assert out['data_samples'][0].gt_depth_map.data.max() == 2.5


def test_training_with_task_subset_and_fixed_size():
    pre = MODELS.build(dict(CFG, size=(40, 40), size_divisor=None))
    data = dict(inputs=[torch.zeros(3, 20, 30, dtype=torch.uint8)],
                data_samples=[_sample(20, 30, ('depth', 'saliency'))])
    out = pre(data, training=True)
    s = out['data_samples'][0]
    assert out['inputs'].shape == (1, 3, 40, 40)
    assert s.gt_depth_map.shape == (40, 40) and 'gt_sem_seg' not in s
    assert (s.gt_saliency.data[0, 20:] == 255).all()


def test_test_time_like_mmseg():
    pre = MODELS.build(CFG)
    ref = SegDataPreProcessor(**{k: v for k, v in CFG.items()
                                 if k != 'type'})
    img = torch.randint(0, 255, (3, 20, 30), dtype=torch.uint8)
    out = pre(dict(inputs=[img], data_samples=[_sample(20, 30)]),
              training=False)
    expected = ref(dict(inputs=[img.clone()],
                        data_samples=[_sample(20, 30)]), training=False)
    torch.testing.assert_close(out['inputs'], expected['inputs'])
    s = out['data_samples'][0]
    assert tuple(s.metainfo['img_padding_size']) == (0, 2, 0, 12)
    # labels are left at the original size for evaluation
    assert s.gt_sem_seg.shape == (20, 30)
    assert s.gt_normals.data.shape == (3, 20, 30)


def test_protocol_configs_pad_test_images_to_the_training_size():
    # InvPT / MLoRE pad NYUD test images (425x560) to TEST.SCALE 448x576:
    # the ViT then sees the patch grid of training, not 27x35.
    import os.path as osp

    from mmengine.config import Config
    root = osp.join(osp.dirname(__file__), '..', '..', 'configs')
    cfg = Config.fromfile(osp.join(root, 'fgmoe_nyud.py'))
    pre = MODELS.build(cfg.model.data_preprocessor)
    img = torch.randint(0, 255, (3, 425, 560), dtype=torch.uint8)
    out = pre(dict(inputs=[img], data_samples=[_sample(425, 560)]),
              training=False)
    assert out['inputs'].shape == (1, 3, 448, 576)
    s = out['data_samples'][0]
    assert tuple(s.metainfo['img_padding_size']) == (0, 16, 0, 23)
    assert s.gt_sem_seg.shape == (425, 560)  # labels stay for evaluation
    # a larger image (inference on one's own photos) is not cropped
    big = torch.randint(0, 255, (3, 480, 650), dtype=torch.uint8)
    out = pre(dict(inputs=[big], data_samples=[_sample(480, 650)]),
              training=False)
    assert out['inputs'].shape == (1, 3, 480, 650)
