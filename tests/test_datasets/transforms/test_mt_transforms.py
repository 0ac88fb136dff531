# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Property tests of the multi-task geometric transforms.

Every label is a function of one class map ``cls`` (depth, normals, parts,
saliency by class; the image is the class colour), so after any geometric
transform the labels must still be that function of the transformed class
map: that is alignment. Depth must additionally be divided by the scale and
normals mirrored by a flip.
"""
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg.registry import TRANSFORMS
from mmfgmoe.utils import TASK_SPECS

NUM_CLASSES = 6
COLOURS = np.array([[10, 200, 30], [250, 20, 90], [40, 40, 240],
                    [128, 128, 0], [0, 255, 255], [200, 200, 200]], np.uint8)
DEPTH = np.array([0.0, 1.5, 2.0, 3.25, 4.0, 7.5], np.float32)  # 0 = invalid
_n = np.random.default_rng(0).normal(size=(NUM_CLASSES, 3))
NORMALS = (_n / np.linalg.norm(_n, axis=1, keepdims=True)).astype(np.float32)
NORMALS[5] = 0  # an invalid-normal class

SETTINGS = settings(max_examples=25, deadline=None)


def _results(cls: np.ndarray) -> dict:
    edge = np.zeros(cls.shape, np.uint8)
    edge[:, :-1] |= (cls[:, :-1] != cls[:, 1:]).astype(np.uint8)
    return dict(
        img=COLOURS[cls].copy(),
        img_shape=cls.shape,
        ori_shape=cls.shape,
        gt_sem_seg=cls.astype(np.uint8),
        gt_human_parts=(cls % 3).astype(np.uint8),
        gt_saliency=(cls % 2).astype(np.uint8),
        gt_edge=edge,
        gt_depth_map=DEPTH[cls].copy(),
        gt_normals=NORMALS[cls].copy(),
    )


def _check_aligned(res, depth_scale=1.0, flip_x=False, padded=None):
    """Labels are the class functions of gt_sem_seg (outside padding)."""
    seg = res['gt_sem_seg'].astype(np.int64)
    inside = np.ones(seg.shape, bool) if padded is None else ~padded
    cls = seg[inside]
    assert (res['gt_human_parts'][inside] == cls % 3).all()
    assert (res['gt_saliency'][inside] == cls % 2).all()
    np.testing.assert_allclose(res['gt_depth_map'][inside],
                               DEPTH[cls] / depth_scale, rtol=1e-6)
    normals = NORMALS[cls].copy()
    if flip_x:
        normals[:, 0] *= -1
    np.testing.assert_array_equal(res['gt_normals'][inside], normals)
    norm = np.linalg.norm(res['gt_normals'][inside], axis=-1)
    assert np.all((np.abs(norm - 1) < 1e-5) | (norm == 0))
    # no ignore value inside the image: ignore comes only from padding
    for key in ('gt_sem_seg', 'gt_human_parts', 'gt_saliency', 'gt_edge'):
        assert not (res[key][inside] == 255).any()


def _build(cfg):
    return TRANSFORMS.build(cfg)


class_maps = st.builds(
    lambda h, w, seed, blocks: _block_map(h, w, seed, blocks),
    st.integers(8, 40), st.integers(8, 40), st.integers(0, 10**6),
    st.integers(1, 6))


def _block_map(h, w, seed, blocks):
    """Piecewise-constant class map (rectangles), like a segmentation."""
    rng = np.random.default_rng(seed)
    cls = np.full((h, w), rng.integers(NUM_CLASSES), np.int64)
    for _ in range(blocks):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        cls[y0:y0 + rng.integers(2, h + 1), x0:x0 + rng.integers(2, w + 1)] = \
            rng.integers(NUM_CLASSES)
    return cls


@SETTINGS
@given(cls=class_maps, seed=st.integers(0, 2**31 - 1))
def test_resize_keeps_alignment_and_scales_depth(cls, seed):
    np.random.seed(seed)
    t = _build(dict(type='MultiTaskRandomResize', ratio_range=(0.5, 2.0)))
    res = t(_results(cls))
    ratio = res['resize_ratio']
    assert 0.5 <= ratio <= 2.0
    h, w = cls.shape
    assert res['img'].shape[:2] == (max(int(h * ratio + 0.5), 1),
                                    max(int(w * ratio + 0.5), 1))
    assert res['img_shape'] == res['img'].shape[:2]
    for key in ('gt_sem_seg', 'gt_depth_map', 'gt_normals', 'gt_edge'):
        assert res[key].shape[:2] == res['img'].shape[:2]
    _check_aligned(res, depth_scale=ratio)
    # the bilinear image agrees with the nearest labels inside flat regions
    seg = res['gt_sem_seg'].astype(np.int64)
    # (a 5x5 neighbourhood covers the 2x2 source pixels of a bilinear
    # sample for ratios up to 2)
    flat = np.ones(seg.shape, bool)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            flat &= np.roll(seg, (dy, dx), (0, 1)) == seg
    flat[[0, 1, -2, -1], :] = False
    flat[:, [0, 1, -2, -1]] = False
    # ... and flat in the source too: nearest resampling can drop a structure
    # thinner than 1/ratio pixels from the labels while the bilinear image
    # still shows it, blurred.
    out_h, out_w = seg.shape
    for y, x in zip(*np.nonzero(flat)):
        cy, cx = (y + .5) * h / out_h - .5, (x + .5) * w / out_w - .5
        window = cls[max(int(np.floor(cy - 1)), 0):int(np.ceil(cy + 1)) + 1,
                     max(int(np.floor(cx - 1)), 0):int(np.ceil(cx + 1)) + 1]
        flat[y, x] = (window == seg[y, x]).all()
    diff = np.abs(res['img'].astype(int) - COLOURS[seg].astype(int))
    assert (diff[flat] <= 1).all()


@SETTINGS
@given(cls=class_maps, ch=st.integers(4, 48), cw=st.integers(4, 48),
       seed=st.integers(0, 2**31 - 1))
def test_crop_keeps_alignment(cls, ch, cw, seed):
    np.random.seed(seed)
    t = _build(dict(type='MultiTaskRandomCrop', crop_size=(ch, cw)))
    orig = _results(cls)
    res = t(copy.deepcopy(orig))
    h, w = res['img'].shape[:2]
    assert (h, w) == (min(ch, cls.shape[0]), min(cw, cls.shape[1]))
    np.testing.assert_array_equal(res['img'], COLOURS[res['gt_sem_seg']])
    _check_aligned(res)
    # every map (edges included) is the same window of the original
    maps = [key for key in orig if key == 'img' or key.startswith('gt_')]
    found = any(
        all(np.array_equal(orig[key][y:y + h, x:x + w], res[key])
            for key in maps)
        for y in range(cls.shape[0] - h + 1)
        for x in range(cls.shape[1] - w + 1))
    assert found


@SETTINGS
@given(cls=class_maps, direction=st.sampled_from(['horizontal', 'vertical']))
def test_flip_twice_is_identity_and_mirrors_normals(cls, direction):
    t = _build(dict(type='MultiTaskRandomFlip', prob=1.0,
                    direction=direction))
    orig = _results(cls)
    once = t(copy.deepcopy(orig))
    assert once['flip'] and once['flip_direction'] == direction
    axis = 1 if direction == 'horizontal' else 0
    comp = 0 if direction == 'horizontal' else 1
    # every map is mirrored (edges included), normals also negated
    for key in [k for k in orig if k == 'img' or k.startswith('gt_')]:
        expected = np.flip(orig[key], axis).copy()
        if key == 'gt_normals':
            expected[..., comp] *= -1
        np.testing.assert_array_equal(once[key], expected, err_msg=key)
    twice = t(copy.deepcopy(once))
    for key, value in orig.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(twice[key], value, err_msg=key)


def test_flip_prob_zero_and_bad_args():
    cls = _block_map(10, 12, 0, 3)
    res = _build(dict(type='MultiTaskRandomFlip', prob=0.0))(_results(cls))
    assert res['flip'] is False and res['flip_direction'] is None
    np.testing.assert_array_equal(res['gt_sem_seg'], cls)
    with pytest.raises(ValueError,
                       match=r'^MultiTaskRandomFlip\.direction must'):
        _build(dict(type='MultiTaskRandomFlip', direction='diagonal'))
    with pytest.raises(ValueError, match=r'^MultiTaskRandomFlip\.prob must'):
        _build(dict(type='MultiTaskRandomFlip', prob=2))


@SETTINGS
@given(cls=class_maps, ph=st.integers(0, 20), pw=st.integers(0, 20),
       divisor=st.sampled_from([None, 8, 16]))
def test_pad_uses_task_values_only_outside(cls, ph, pw, divisor):
    h, w = cls.shape
    if divisor is None:
        cfg = dict(type='MultiTaskPad', size=(h + ph, w + pw))
        th, tw = h + ph, w + pw
    else:
        cfg = dict(type='MultiTaskPad', size_divisor=divisor)
        th, tw = -(-h // divisor) * divisor, -(-w // divisor) * divisor
    res = _build(cfg)(_results(cls))
    assert res['img'].shape[:2] == (th, tw) == res['pad_shape']
    padded = np.ones((th, tw), bool)
    padded[:h, :w] = False
    for name, spec in TASK_SPECS.items():
        label = res[spec.gt_field]
        assert label.shape[:2] == (th, tw)
        assert (label[padded] == spec.pad_value).all(), name
    assert (res['img'][padded] == 0).all()
    _check_aligned(res, padded=padded)


def test_pad_overrides_and_errors():
    res = _build(dict(type='MultiTaskPad', size=(12, 12), pad_val=7,
                      label_pad_values=dict(depth=-1)))(
                          _results(_block_map(10, 10, 1, 2)))
    assert res['gt_depth_map'][11, 11] == -1 and res['img'][11, 11, 0] == 7
    with pytest.raises(ValueError, match='^MultiTaskPad: give exactly one'):
        _build(dict(type='MultiTaskPad'))
    with pytest.raises(ValueError,
                       match=r'^MultiTaskPad\.label_pad_values names unknown'):
        _build(dict(type='MultiTaskPad', size=(4, 4),
                    label_pad_values=dict(height=0)))


def test_cat_max_ratio():
    # class 1 fills the top-left quarter; a 20x20 crop has the share of
    # class 0 below 0.75 only if it holds >= 100 class-1 pixels
    cls = np.zeros((40, 40), np.int64)
    cls[:20, :20] = 1
    t = _build(dict(type='MultiTaskRandomCrop', crop_size=(20, 20),
                    cat_max_ratio=0.75))
    t_free = _build(dict(type='MultiTaskRandomCrop', crop_size=(20, 20)))
    ok = ok_free = 0
    for seed in range(30):
        np.random.seed(seed)
        seg = t(_results(cls))['gt_sem_seg']
        ok += np.bincount(seg.ravel(), minlength=2).max() / seg.size < 0.75
        np.random.seed(seed)
        seg = t_free(_results(cls))['gt_sem_seg']
        ok_free += np.bincount(seg.ravel(),
                               minlength=2).max() / seg.size < 0.75
    assert ok >= 28 and ok_free < 20
    with pytest.raises(ValueError,
                       match=r'^MultiTaskRandomCrop\.cat_max_ratio must'):
        _build(dict(type='MultiTaskRandomCrop', crop_size=8,
                    cat_max_ratio=0))


def test_crop_retries_under_shared_randomness():
    # mmcv's cache_random_params (TransformBroadcaster's shared random
    # parameters) caches one random draw per call: the crop's retries for
    # cat_max_ratio must be inside it, and every view gets the same crop.
    from mmcv.transforms.utils import cache_random_params
    cls = np.zeros((40, 40), np.int64)  # one class: every try fails
    t = _build(dict(type='MultiTaskRandomCrop', crop_size=(20, 20),
                    cat_max_ratio=0.75))
    def results():
        out = _results(cls)
        out['img'] = np.arange(40 * 40 * 3, dtype=np.float32).reshape(
            40, 40, 3)  # every pixel different: the crop is identifiable
        return out

    with cache_random_params(t):
        first = t(results())['img']
        second = t(results())['img']
    assert first.shape[:2] == (20, 20)
    assert np.array_equal(first, second)


@SETTINGS
@given(cls=class_maps, seed=st.integers(0, 2**31 - 1))
def test_full_training_pipeline(cls, seed):
    """resize -> crop -> flip -> photometric -> pad, then pack."""
    np.random.seed(seed)
    crop = (16, 24)
    pipeline = [
        _build(dict(type='MultiTaskRandomResize', ratio_range=(0.5, 2.0))),
        _build(dict(type='MultiTaskRandomCrop', crop_size=crop,
                    cat_max_ratio=0.75)),
        _build(dict(type='MultiTaskRandomFlip', prob=0.5)),
        _build(dict(type='PhotoMetricDistortion')),
        _build(dict(type='MultiTaskPad', size=crop)),
        _build(dict(type='PackMultiTaskInputs')),
    ]
    res = _results(cls)
    res['tasks'] = list(TASK_SPECS)
    for t in pipeline[:-1]:
        res = t(res)
    h, w = res['img'].shape[:2]
    assert (h, w) == crop
    seg = res['gt_sem_seg']
    padded = seg == 255
    # padding is a bottom/right band only
    rows, cols = np.where(~padded)
    inside = np.zeros_like(padded)
    inside[:rows.max() + 1, :cols.max() + 1] = True
    np.testing.assert_array_equal(~padded, inside)
    _check_aligned(res, depth_scale=res['resize_ratio'], flip_x=res['flip'],
                   padded=padded)
    packed = pipeline[-1](res)
    sample = packed['data_samples']
    assert packed['inputs'].shape == (3, h, w)
    for spec in TASK_SPECS.values():
        assert sample.get(spec.gt_field).data.shape == \
            (spec.label_channels, h, w)
    assert sample.metainfo['flip'] == res['flip']
    assert sample.metainfo['tasks'] == list(TASK_SPECS)


def test_resize_and_crop_bad_args():
    with pytest.raises(ValueError,
                       match=r'^MultiTaskRandomResize\.ratio_range must'):
        _build(dict(type='MultiTaskRandomResize', ratio_range=(2.0, 0.5)))
    with pytest.raises(ValueError,
                       match=r'^MultiTaskRandomCrop\.crop_size must'):
        _build(dict(type='MultiTaskRandomCrop', crop_size=(0, 8)))
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        _build(dict(type='MultiTaskRandomFlip', prob=1.0))(dict())


def test_crop_ratio_rule_needs_the_semseg_map():
    # Without the map the rule cannot run: an error naming the fix, not a
    # silently uniform crop.
    res = _results(np.zeros((40, 40), np.int64))
    del res['gt_sem_seg']
    res.update(img_path='room.png', tasks=['depth'])
    t = _build(dict(type='MultiTaskRandomCrop', crop_size=(20, 20),
                    cat_max_ratio=0.75))
    with pytest.raises(KeyError, match=r"room\.png.*guide_tasks=\['semseg'\]"):
        t(res)
    free = _build(dict(type='MultiTaskRandomCrop', crop_size=(20, 20)))
    assert free(res)['gt_depth_map'].shape == (20, 20)


def test_ignore_empty_labels():
    t = _build(dict(type='IgnoreEmptyLabels', tasks=['human_parts']))
    parts = np.zeros((6, 8), np.uint8)
    parts[:, 6:] = 255  # padding
    res = t(dict(gt_human_parts=parts.copy(), gt_sem_seg=np.zeros_like(parts)))
    assert (res['gt_human_parts'] == 255).all()
    assert (res['gt_sem_seg'] == 0).all()  # other tasks untouched
    parts[2, 3] = 4  # one part pixel: the map is kept as it is
    res = t(dict(gt_human_parts=parts.copy()))
    np.testing.assert_array_equal(res['gt_human_parts'], parts)
    assert t(dict(gt_depth_map=np.ones((2, 2), np.float32))).keys() == \
        {'gt_depth_map'}  # a task subset without parts
    for bad in (['depth'], ['height'], []):
        with pytest.raises(ValueError, match='class-map tasks'):
            _build(dict(type='IgnoreEmptyLabels', tasks=bad))


def test_crop_then_ignore_empty_parts_as_invpt():
    # A crop that misses the person: InvPT's AddIgnoreRegions (after its
    # crop) makes the whole part map ignore; one that holds it keeps it.
    cls = np.zeros((40, 40), np.int64)
    res = _results(cls)
    res['gt_human_parts'][:10, :10] = 3
    crop = _build(dict(type='MultiTaskRandomCrop', crop_size=(20, 20)))
    ignore = _build(dict(type='IgnoreEmptyLabels'))
    seen = set()
    for seed in range(40):
        np.random.seed(seed)
        out = ignore(crop(copy.deepcopy(res)))
        parts = out['gt_human_parts']
        has_person = bool((parts == 3).any())
        seen.add(has_person)
        if not has_person:
            assert (parts == 255).all()
        else:
            assert not (parts == 255).any()
    assert seen == {True, False}
