# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Geometric transforms that keep every task's label aligned with the image.

The training protocol of the InvPT / MLoRE line: random scale,
random crop with ``cat_max_ratio``, horizontal flip, photometric distortion
(image only: mmseg's ``PhotoMetricDistortion`` serves as is), padding with
per-task ignore values. What differs from mmseg's single-task transforms:

* labels are all ``gt_*`` fields of :data:`mmfgmoe.utils.TASK_SPECS` present
  in ``results`` (one per task), not only ``gt_seg_map``;
* resizing divides depth by the scale (a scene enlarged ``s`` times looks
  ``s`` times closer) and resamples every label with nearest neighbour, so
  invalid depth (0), zero normals and ignore values stay exact;
* flipping negates the normals' x (horizontal) or y (vertical) component;
* padding uses each task's own ``pad_value`` (255 / depth 0 / normals 0).

``IgnoreEmptyLabels`` is InvPT's ``AddIgnoreRegions`` rule for part maps: a
map (or crop) without any part pixel becomes all-ignore.
"""
from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmseg.registry import TRANSFORMS
from ...utils import NORMALS_FLIP_AXIS, TASK_SPECS, check_tasks

__all__ = ['MultiTaskRandomResize', 'MultiTaskRandomCrop',
           'MultiTaskRandomFlip', 'MultiTaskPad', 'IgnoreEmptyLabels']


def _label_fields(results: dict) -> Iterator[str]:
    """The ``gt_*`` keys of :data:`TASK_SPECS` present in ``results``."""
    for spec in TASK_SPECS.values():
        if spec.gt_field in results:
            yield spec.gt_field


def _check_image(results: dict, name: str) -> np.ndarray:
    """The image of ``results``, after checking that every ``gt_*`` label
    has its height and width (a label of another size would be cropped,
    flipped or padded out of alignment without any error)."""
    if 'img' not in results:
        raise KeyError(f'{name} needs `img` in the results; put it after '
                       'LoadImageFromFile')
    img = results['img']
    for key in _label_fields(results):
        shape = tuple(results[key].shape[:2])
        if shape != tuple(img.shape[:2]):
            raise ValueError(
                f'{name}: label `{key}` of {results.get("img_path")} has '
                f'shape {shape}, the image has {tuple(img.shape[:2])}; '
                'labels must match the image (check the label files and '
                'that LoadImageFromFile runs before LoadMultiTaskAnnotations)')
    return img


@TRANSFORMS.register_module()
class MultiTaskRandomResize(BaseTransform):
    """Rescale the image and all labels by a random ratio.

    The image is resized bilinearly, every label with nearest neighbour, and
    depth is divided by the drawn ratio. Labels use OpenCV's pixel-centre
    aligned ``INTER_NEAREST_EXACT`` (the same sampling grid as the bilinear
    image resize; plain ``INTER_NEAREST``, used by mmcv, is shifted by up to
    half a source pixel against the image).

    Required keys: ``img``, ``gt_*``. Modified keys: ``img``, ``img_shape``,
    ``gt_*``. Added keys: ``scale``, ``scale_factor``, ``resize_ratio``.

    Args:
        ratio_range (tuple[float, float]): Range the ratio is drawn from
            uniformly. Defaults to (0.5, 2.0).
        interpolation (str): Image interpolation of ``mmcv.imresize``.
            Defaults to 'bilinear'.
    """

    def __init__(self,
                 ratio_range: Tuple[float, float] = (0.5, 2.0),
                 interpolation: str = 'bilinear') -> None:
        lo, hi = ratio_range
        if not 0 < lo <= hi:
            raise ValueError(f'{type(self).__name__}.ratio_range must '
                             f'satisfy 0 < lo <= hi, got {ratio_range}')
        self.ratio_range = (float(lo), float(hi))
        self.interpolation = interpolation

    @cache_randomness
    def _random_ratio(self) -> float:
        return float(np.random.uniform(*self.ratio_range))

    def transform(self, results: dict) -> dict:
        """Resize ``img`` and every ``gt_*`` field.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: The resized results.
        """
        img = _check_image(results, type(self).__name__)
        ratio = self._random_ratio()
        h, w = img.shape[:2]
        new_w, new_h = max(int(w * ratio + 0.5), 1), max(int(h * ratio + 0.5),
                                                        1)
        results['img'] = mmcv.imresize(
            img, (new_w, new_h), interpolation=self.interpolation)
        for key in _label_fields(results):
            label = cv2.resize(results[key], (new_w, new_h),
                               interpolation=cv2.INTER_NEAREST_EXACT)
            if key == TASK_SPECS['depth'].gt_field:
                label = (label / ratio).astype(np.float32)
            results[key] = label
        results['img_shape'] = (new_h, new_w)
        results['scale'] = (new_w, new_h)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['resize_ratio'] = ratio
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ratio_range={self.ratio_range}, '
                f'interpolation={self.interpolation})')


@TRANSFORMS.register_module()
class MultiTaskRandomCrop(BaseTransform):
    """Crop the image and all labels at one random position.

    Like mmseg's ``RandomCrop``: an image smaller than the crop is cropped
    to its own size (pad afterwards); with ``cat_max_ratio < 1`` up to
    ``max_tries`` positions are drawn until no single semseg class covers
    more than that fraction of the non-ignored crop pixels. That rule needs
    the semseg map, also when semseg is not trained: the dataset's
    ``guide_tasks=['semseg']`` loads it for the crop only.

    Required keys: ``img``, ``gt_*``. Modified keys: ``img``, ``img_shape``,
    ``gt_*``.

    Args:
        crop_size (int | tuple[int, int]): (h, w) of the crop.
        cat_max_ratio (float): Largest share of one semseg class.
            Defaults to 1.0 (no constraint).
        ignore_index (int): Semseg value not counted. Defaults to 255.
        max_tries (int): Positions tried for ``cat_max_ratio``.
            Defaults to 10 (as mmseg).
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 cat_max_ratio: float = 1.0,
                 ignore_index: int = 255,
                 max_tries: int = 10) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        crop_size = tuple(crop_size)
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f'{type(self).__name__}.crop_size must be two '
                             f'positive ints (h, w), got {crop_size}')
        if not 0 < cat_max_ratio <= 1:
            raise ValueError(f'{type(self).__name__}.cat_max_ratio must be '
                             f'in (0, 1], got {cat_max_ratio}')
        self.crop_size = crop_size
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index
        self.max_tries = max_tries

    def _random_bbox(self, shape: Tuple[int, int]) -> Tuple[int, int, int,
                                                            int]:
        margin_h = max(shape[0] - self.crop_size[0], 0)
        margin_w = max(shape[1] - self.crop_size[1], 0)
        y0 = np.random.randint(0, margin_h + 1)
        x0 = np.random.randint(0, margin_w + 1)
        return (y0, min(y0 + self.crop_size[0], shape[0]), x0,
                min(x0 + self.crop_size[1], shape[1]))

    # The whole retry loop is one random draw: mmcv's shared-randomness mode
    # (``cache_random_params``) caches this result, not each try.
    @cache_randomness
    def _choose_bbox(self, results: dict) -> Tuple[int, int, int, int]:
        shape = results['img'].shape[:2]
        bbox = self._random_bbox(shape)
        seg = results.get(TASK_SPECS['semseg'].gt_field)
        if self.cat_max_ratio < 1.0:
            if seg is None:
                raise KeyError(
                    f'{type(self).__name__}(cat_max_ratio='
                    f'{self.cat_max_ratio}) needs the semseg map, which '
                    f'{results.get("img_path")} does not carry (tasks '
                    f'{results.get("tasks")}); load it with the dataset\'s '
                    "guide_tasks=['semseg'] (read for the crop, not trained)"
                    ', or set cat_max_ratio=1.0')
            for _ in range(self.max_tries):
                y0, y1, x0, x1 = bbox
                labels, counts = np.unique(seg[y0:y1, x0:x1],
                                           return_counts=True)
                counts = counts[labels != self.ignore_index]
                if len(counts) > 1 and \
                        counts.max() / counts.sum() < self.cat_max_ratio:
                    break
                bbox = self._random_bbox(shape)
        return bbox

    def transform(self, results: dict) -> dict:
        """Crop ``img`` and every ``gt_*`` field.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: The cropped results.
        """
        _check_image(results, type(self).__name__)
        y0, y1, x0, x1 = self._choose_bbox(results)
        results['img'] = results['img'][y0:y1, x0:x1, ...]
        for key in _label_fields(results):
            results[key] = results[key][y0:y1, x0:x1, ...]
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'cat_max_ratio={self.cat_max_ratio}, '
                f'ignore_index={self.ignore_index})')


@TRANSFORMS.register_module()
class MultiTaskRandomFlip(BaseTransform):
    """Flip the image and all labels; mirror the surface normals.

    A horizontal flip negates the normals' x component, a vertical flip
    their y component (camera frame: x right, y down), so the flipped normals
    are the normals of the flipped scene.

    Required keys: ``img``, ``gt_*``. Modified keys: ``img``, ``gt_*``.
    Added keys: ``flip``, ``flip_direction``.

    Args:
        prob (float): Flip probability. Defaults to 0.5.
        direction (str): 'horizontal' or 'vertical'. Defaults to
            'horizontal'.
    """

    def __init__(self, prob: float = 0.5,
                 direction: str = 'horizontal') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'{type(self).__name__}.prob must be in '
                             f'[0, 1], got {prob}')
        if direction not in NORMALS_FLIP_AXIS:
            raise ValueError(f'{type(self).__name__}.direction must be one '
                             f'of {list(NORMALS_FLIP_AXIS)}, got '
                             f'{direction!r}')
        self.prob = prob
        self.direction = direction

    @cache_randomness
    def _do_flip(self) -> bool:
        return bool(np.random.rand() < self.prob)

    def transform(self, results: dict) -> dict:
        """Flip ``img`` and every ``gt_*`` field with probability ``prob``.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: The (possibly) flipped results.
        """
        _check_image(results, type(self).__name__)
        flip = self._do_flip()
        results['flip'] = flip
        results['flip_direction'] = self.direction if flip else None
        if not flip:
            return results
        axis = 1 if self.direction == 'horizontal' else 0
        results['img'] = np.ascontiguousarray(np.flip(results['img'], axis))
        for key in _label_fields(results):
            label = np.ascontiguousarray(np.flip(results[key], axis))
            if key == TASK_SPECS['normals'].gt_field:
                label[..., NORMALS_FLIP_AXIS[self.direction]] *= -1
                # -0.0 stays an invalid (all-zero) vector
                label += 0.0
            results[key] = label
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'direction={self.direction!r})')


@TRANSFORMS.register_module()
class MultiTaskPad(BaseTransform):
    """Pad the image and every label at the bottom/right.

    Each label is padded with its task's ``pad_value`` from
    :data:`TASK_SPECS` (255 ignore, depth 0 = invalid, normals 0 = invalid),
    unless ``label_pad_values`` overrides it.

    Our configs do not use it for training: ``MultiTaskDataPreProcessor``
    pads each batch after normalisation, with the mean colour as at test
    time, and records the padding for the balance loss. A pipeline pad puts
    raw ``pad_val`` pixels (black by default) into the crops instead.
    Test-mode datasets reject it: predictions are resized to ``ori_shape``
    after only the pre-processor's padding is stripped.

    Required keys: ``img``, ``gt_*``. Modified keys: ``img``, ``img_shape``,
    ``gt_*``. Added keys: ``pad_shape``, ``pad_fixed_size``,
    ``pad_size_divisor``.

    Args:
        size (tuple[int, int], optional): Fixed (h, w) to pad to.
        size_divisor (int, optional): Pad (h, w) up to multiples of this.
            Exactly one of ``size`` and ``size_divisor`` must be given.
        pad_val (float): Image padding value. Defaults to 0.
        label_pad_values (dict, optional): Task name -> pad value overrides.
    """

    def __init__(self,
                 size: Optional[Tuple[int, int]] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: float = 0,
                 label_pad_values: Optional[Dict[str, float]] = None) -> None:
        if (size is None) == (size_divisor is None):
            raise ValueError(f'{type(self).__name__}: give exactly one of '
                             '`size` and `size_divisor`')
        if label_pad_values:
            unknown = [t for t in label_pad_values if t not in TASK_SPECS]
            if unknown:
                raise ValueError(
                    f'{type(self).__name__}.label_pad_values names unknown '
                    f'tasks {unknown}; choose from {list(TASK_SPECS)}')
        self.size = None if size is None else tuple(size)
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        self.label_pad_values = dict(label_pad_values or {})

    def _target_shape(self, shape: Sequence[int]) -> Tuple[int, int]:
        h, w = shape[:2]
        if self.size is not None:
            return max(self.size[0], h), max(self.size[1], w)
        d = self.size_divisor
        return -(-h // d) * d, -(-w // d) * d

    def transform(self, results: dict) -> dict:
        """Pad ``img`` and every ``gt_*`` field.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: The padded results.
        """
        img = _check_image(results, type(self).__name__)
        th, tw = self._target_shape(img.shape)
        pad = (th - img.shape[0], tw - img.shape[1])

        def _pad(arr: np.ndarray, value: float) -> np.ndarray:
            widths = [(0, pad[0]), (0, pad[1])] + [(0, 0)] * (arr.ndim - 2)
            return np.pad(arr, widths, constant_values=value)

        results['img'] = _pad(img, self.pad_val)
        by_field = {s.gt_field: s for s in TASK_SPECS.values()}
        for key in _label_fields(results):
            spec = by_field[key]
            value = self.label_pad_values.get(spec.name, spec.pad_value)
            results[key] = _pad(results[key], value)
        results['img_shape'] = (th, tw)
        results['pad_shape'] = (th, tw)
        results['pad_fixed_size'] = self.size
        results['pad_size_divisor'] = self.size_divisor
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'size_divisor={self.size_divisor}, pad_val={self.pad_val}, '
                f'label_pad_values={self.label_pad_values})')


@TRANSFORMS.register_module()
class IgnoreEmptyLabels(BaseTransform):
    """Turn a class map without any foreground pixel into all-ignore.

    InvPT's ``AddIgnoreRegions`` for human parts: a part map that holds only
    background and ignore says nothing about parts (no person in the image,
    or a crop that misses the person), so it is not trained or evaluated as
    "all background". In training put it after the crop, which is where the
    reference pipelines apply it; in testing after the loader.

    A task of ``tasks`` that the sample does not carry (a task subset) is
    left alone.

    Required keys: ``gt_*`` of ``tasks`` (optional). Modified keys: those.

    Args:
        tasks (Sequence[str]): Class-map tasks to check. Defaults to
            ``('human_parts',)``.
        background (int): The class id that is not foreground. Defaults
            to 0.
    """

    def __init__(self,
                 tasks: Sequence[str] = ('human_parts', ),
                 background: int = 0) -> None:
        class_maps = [t for t, spec in TASK_SPECS.items() if spec.discrete]
        self.tasks = tuple(
            check_tasks(tasks,
                        allowed=class_maps,
                        field='IgnoreEmptyLabels.tasks (class-map tasks)'))
        self.background = background

    def transform(self, results: dict) -> dict:
        """Replace each empty map of ``tasks`` by its ignore value.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: ``results``, maps without foreground set to ignore.
        """
        for task in self.tasks:
            spec = TASK_SPECS[task]
            label = results.get(spec.gt_field)
            if label is None:
                continue
            ignore = spec.pad_value
            if np.isin(label, (self.background, ignore)).all():
                results[spec.gt_field] = np.full_like(label, ignore)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(tasks={self.tasks}, '
                f'background={self.background})')
