# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Reading the per-task label files of NYUD-v2 and PASCAL-Context.

A dataset's ``load_data_list`` describes, for every sample, where each task's
label lives and how to read it (``results['ann_info'][task] = dict(path=...,
reader=..., **options)``); :class:`LoadMultiTaskAnnotations` reads them with
the readers below. Every reader checks what it read and raises an error
naming the file and the problem (wrong shape, dtype, range, NaN, ...).
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import scipy.io as sio
from mmcv.transforms import BaseTransform
from PIL import Image
from skimage.morphology import thin

from mmseg.registry import TRANSFORMS
from ...utils import TASK_SPECS, check_tasks

__all__ = ['LoadMultiTaskAnnotations', 'LABEL_READERS', 'decode_normals_png',
           'encode_normals_png', 'labelmap_edges']

IGNORE_INDEX = int(TASK_SPECS['semseg'].pad_value)


class _LabelFileError(ValueError):
    """A label file exists but its content is not what the layout says."""


def _fail(path: str, problem: str) -> None:
    raise _LabelFileError(f'{path}: {problem}')


def _check_exists(path: str) -> None:
    if not osp.isfile(path):
        raise FileNotFoundError(f'label file not found: {path}')


def _read_png(path: str, channels: int) -> np.ndarray:
    """Read an 8-bit PNG/JPEG as [H, W] (channels=1) or RGB [H, W, 3].

    PIL is used (as the reference loaders do) so that palette ("P" mode)
    label PNGs such as VOC's ``SegmentationClass`` give their indices, not
    colours (OpenCV would expand the palette).
    """
    _check_exists(path)
    try:
        with Image.open(path) as im:
            im.load()
            img = np.array(im)
    except (OSError, SyntaxError, ValueError) as e:
        raise _LabelFileError(f'{path}: cannot be decoded as an image '
                              f'(corrupt or not an image file: {e})') from e
    if img.dtype != np.uint8:
        _fail(path, f'expected an 8-bit image, got dtype {img.dtype}')
    if channels == 1:
        if img.ndim != 2:
            _fail(path, f'expected a single-channel image, got shape '
                  f'{img.shape}')
        return img
    if img.ndim != 3 or img.shape[2] < 3:
        _fail(path, f'expected a 3-channel RGB image, got shape {img.shape}')
    return np.ascontiguousarray(img[..., :3])


def _read_npy(path: str) -> np.ndarray:
    _check_exists(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 (numpy raises several types)
        raise _LabelFileError(f'{path}: cannot be read as a .npy array '
                              f'({e})') from e
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in 'fiub':
        what = getattr(arr, 'dtype', type(arr).__name__)
        _fail(path, f'expected a numeric array, got {what}')
    return arr


def _read_mat(path: str, key: str):
    _check_exists(path)
    try:
        mat = sio.loadmat(path)
    except Exception as e:  # noqa: BLE001 (scipy raises several types)
        raise _LabelFileError(f'{path}: cannot be read as a MATLAB .mat file '
                              f'({e})') from e
    if key not in mat:
        _fail(path, f'has no key {key!r} (keys: '
              f'{sorted(k for k in mat if not k.startswith("__"))})')
    return mat[key]


def _as_2d(path: str, arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        _fail(path, f'expected a 2-D {what} map [H, W], got shape {arr.shape}')
    return arr


def _check_range(path: str, label: np.ndarray, num_classes: int,
                 allowed_extra: Sequence[int] = ()) -> None:
    values = np.unique(label)
    bad = values[(values >= num_classes) & ~np.isin(values, allowed_extra)]
    if bad.size:
        _fail(path, f'label values {bad.tolist()[:10]} out of range: '
              f'expected 0..{num_classes - 1}'
              + (f' or {list(allowed_extra)}' if allowed_extra else ''))


# --------------------------------------------------------------------------
# Readers: (path, **options) -> label array in the pipeline's convention
# --------------------------------------------------------------------------
def read_nyu_semseg(path: str, num_classes: int) -> np.ndarray:
    """NYUD ``segmentation/*.png``: 0 = unlabeled (-> 255), else label + 1.

    Args:
        path (str): The single-channel 8-bit PNG.
        num_classes (int): Number of classes ``C``; the stored values must
            lie in ``0..C``.

    Returns:
        np.ndarray: uint8 [H, W] with 0..num_classes-1 and 255.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file cannot be decoded as an image, is not a
            single-channel 8-bit image, or holds a value above
            ``num_classes``.
    """
    raw = _read_png(path, 1)
    _check_range(path, raw, num_classes + 1)
    label = raw.astype(np.int16) - 1
    label[raw == 0] = IGNORE_INDEX
    return label.astype(np.uint8)


def read_voc_semseg(path: str, num_classes: int) -> np.ndarray:
    """PASCAL ``semseg/{VOC12,pascal-context}/*.png``: ids, 255 = ignore.

    Args:
        path (str): The single-channel 8-bit PNG (a palette PNG gives its
            indices, not colours).
        num_classes (int): Number of classes ``C``.

    Returns:
        np.ndarray: uint8 [H, W] as stored: 0..num_classes-1 and 255
        (ignore).

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file cannot be decoded as an image, is not a
            single-channel 8-bit image, or holds a value ``>= num_classes``
            other than 255.
    """
    raw = _read_png(path, 1)
    _check_range(path, raw, num_classes, (IGNORE_INDEX, ))
    return raw


def read_depth_npy(path: str) -> np.ndarray:
    """``depth/*.npy``: float metres [H, W], 0 = invalid, no NaN/inf.

    Args:
        path (str): The ``.npy`` file: a float [H, W] or [H, W, 1] array.

    Returns:
        np.ndarray: float32 [H, W] depth in metres, >= 0 (0 = invalid).

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file is not a numeric ``.npy`` array, is not
            2-D (after dropping a trailing axis of size 1), is not
            floating point, or holds NaN, inf or negative values.
    """
    arr = _as_2d(path, _read_npy(path), 'depth')
    if arr.dtype.kind != 'f':
        _fail(path, f'expected float depth in metres, got dtype {arr.dtype}')
    if not np.all(np.isfinite(arr)):
        _fail(path, 'depth contains NaN or inf values')
    if arr.min(initial=0) < 0:
        _fail(path, f'depth contains negative values (min {arr.min()})')
    return arr.astype(np.float32)


def _normalise_normals(normals: np.ndarray, min_norm: float) -> np.ndarray:
    """Unit-normalise [H, W, 3]; vectors shorter than ``min_norm`` -> 0."""
    norm = np.linalg.norm(normals, axis=-1, keepdims=True)
    valid = norm > min_norm
    out = np.where(valid, normals / np.maximum(norm, 1e-12), 0)
    return out.astype(np.float32)


def decode_normals_png(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float [H, W, 3] with n = 2 v / 255 - 1.

    Args:
        rgb (np.ndarray): uint8 RGB [H, W, 3], values 0..255.

    Returns:
        np.ndarray: float32 [H, W, 3] in [-1, 1] (not unit-normalised).
    """
    return rgb.astype(np.float32) * (2.0 / 255.0) - 1.0


def encode_normals_png(normals: np.ndarray) -> np.ndarray:
    """float [H, W, 3] -> uint8 RGB [H, W, 3] with v = round((n + 1) / 2
    * 255), components clipped to [-1, 1]: the inverse of
    :func:`decode_normals_png` up to quantisation.

    Args:
        normals (np.ndarray): float [H, W, 3] normals; components outside
            [-1, 1] are clipped.

    Returns:
        np.ndarray: uint8 RGB [H, W, 3], values 0..255.
    """
    return np.rint(np.clip((normals + 1) / 2, 0, 1) * 255).astype(np.uint8)


def read_normals_png(path: str, min_norm: float = 0.5,
                     labelmap_path: Optional[str] = None,
                     valid_labels: Optional[Sequence[int]] = None
                     ) -> np.ndarray:
    """``normals/*.png`` or ``normals_distill/*.png`` (RGB, n = 2v/255 - 1).

    Args:
        path (str): The PNG file.
        min_norm (float): Decoded vectors shorter than this are invalid
            (all-zero output). Defaults to 0.5.
        labelmap_path (str, optional): PASCAL-Context ``LabelMap`` file; with
            ``valid_labels`` only pixels of those labels keep their normal.
        valid_labels (Sequence[int], optional): Context ids with valid normals.

    Returns:
        np.ndarray: float32 [H, W, 3], unit vectors or all-zero (invalid).
    """
    normals = _normalise_normals(decode_normals_png(_read_png(path, 3)),
                                 min_norm)
    if labelmap_path is not None:
        if valid_labels is None:
            _fail(labelmap_path, 'a LabelMap for the normals of '
                  f'{path} needs valid_labels (the context ids with valid '
                  'normals); without them every pixel would be invalid')
        labels = read_labelmap(labelmap_path)
        if labels.shape != normals.shape[:2]:
            _fail(labelmap_path, f'LabelMap shape {labels.shape} differs from '
                  f'the normals {path} shape {normals.shape[:2]}')
        normals[~np.isin(labels, np.asarray(valid_labels))] = 0
    return normals


def read_normals_npy(path: str, min_norm: float = 0.5) -> np.ndarray:
    """``normals/*.npy`` (NYUD_MT): float [H, W, 3] in [-1, 1].

    Args:
        path (str): The ``.npy`` file: a float [H, W, 3] array.
        min_norm (float): Vectors whose norm is not above this are invalid
            (all-zero output). Defaults to 0.5.

    Returns:
        np.ndarray: float32 [H, W, 3], unit vectors or all-zero (invalid).

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file is not a numeric ``.npy`` array, is not
            [H, W, 3], is not floating point, holds NaN or inf values, or
            has a component of magnitude above 1.01 (e.g. 0..255 values).
    """
    arr = _read_npy(path)
    if arr.ndim != 3 or arr.shape[2] != 3:
        _fail(path, f'expected normals of shape [H, W, 3], got {arr.shape}')
    if arr.dtype.kind != 'f':
        _fail(path, f'expected float normals, got dtype {arr.dtype}')
    if not np.all(np.isfinite(arr)):
        _fail(path, 'normals contain NaN or inf values')
    # Components of (at most unit) normals cannot exceed 1; 0..255 values
    # (PNG-style) would otherwise normalise into wrong, all-positive vectors.
    if arr.size and np.abs(arr).max() > 1.01:
        _fail(path, f'normal components must lie in [-1, 1], got '
              f'{arr.min()}..{arr.max()}')
    return _normalise_normals(arr, min_norm)


def read_edge_png(path: str) -> np.ndarray:
    """``edge/*.png`` (NYUDv2): 0/255, read as ``v >= 128`` -> 0/1 uint8.

    Args:
        path (str): The single-channel 8-bit PNG, 0/255.

    Returns:
        np.ndarray: uint8 [H, W], 1 where ``v >= 128``, else 0.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file cannot be decoded as an image, is not a
            single-channel 8-bit image, or has non-zero values but none
            ``>= 128`` (e.g. 0/1-encoded edges).
    """
    raw = _read_png(path, 1)
    edges = raw >= 128
    if raw.any() and not edges.any():
        # e.g. 0/1-encoded edges: thresholding would erase every one of them.
        _fail(path, f'edge PNG values must be 0/255, got values up to '
              f'{raw.max()} and none >= 128')
    return edges.astype(np.uint8)


def read_edge_npy(path: str) -> np.ndarray:
    """``edge/*.npy`` (NYUD_MT): values in [0, 1], ``> 0.5`` -> 1.

    Args:
        path (str): The ``.npy`` file: a numeric [H, W] or [H, W, 1] array.

    Returns:
        np.ndarray: uint8 [H, W], 1 where the value is ``> 0.5``, else 0.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file is not a numeric ``.npy`` array, is not
            2-D (after dropping a trailing axis of size 1), or holds NaN,
            inf or values outside [0, 1].
    """
    arr = _as_2d(path, _read_npy(path), 'edge')
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        _fail(path, 'edge values must lie in [0, 1] (got '
              f'{np.nanmin(arr)}..{np.nanmax(arr)})')
    return (arr > 0.5).astype(np.uint8)


def read_labelmap(path: str) -> np.ndarray:
    """``pascal-context/trainval/*.mat`` key ``LabelMap``: [H, W] ints.

    Args:
        path (str): The MATLAB ``.mat`` file holding ``LabelMap``.

    Returns:
        np.ndarray: [H, W] Context class ids with the stored dtype
        (integer, or float holding integer values; not converted).

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file cannot be read as a ``.mat`` file, has
            no ``LabelMap``, or ``LabelMap`` is not a 2-D integer or float
            array or holds non-integer values.
    """
    labels = _read_mat(path, 'LabelMap')
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or \
            labels.dtype.kind not in 'iuf':
        got = (f'shape {labels.shape}, dtype {labels.dtype}' if isinstance(
            labels, np.ndarray) else type(labels).__name__)
        _fail(path, f'LabelMap must be a 2-D array of class ids (integers, '
              f'or floats holding integers), got {got}')
    if labels.dtype.kind == 'f' and not np.array_equal(labels,
                                                       np.round(labels)):
        _fail(path, 'LabelMap holds non-integer values (class ids '
              'expected)')
    return labels


def labelmap_edges(labels: np.ndarray) -> np.ndarray:
    """Label boundaries of a LabelMap: |Laplacian| > 0, thinned to 1 pixel.

    This is the rule of the PASCAL-Context multi-task loaders (ASTMT,
    MTL-PyTorch, ATRC).

    Returns:
        np.ndarray: uint8 [H, W] 0/1.
    """
    lap = cv2.Laplacian(labels.astype(np.float64), cv2.CV_64F)
    return thin(np.abs(lap) > 0).astype(np.uint8)


def read_edge_labelmap(path: str) -> np.ndarray:
    """PASCAL-Context edges from the LabelMap (:func:`labelmap_edges`).

    Args:
        path (str): The MATLAB ``.mat`` file holding ``LabelMap`` (see
            :func:`read_labelmap`).

    Returns:
        np.ndarray: uint8 [H, W] 0/1, label boundaries one pixel wide.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: As :func:`read_labelmap`.
    """
    return labelmap_edges(read_labelmap(path))


def read_saliency_png(path: str, threshold: float = 0.5) -> np.ndarray:
    """``sal_distill/*.png``: ``v / 255 > threshold`` -> 0/1 uint8.

    Args:
        path (str): The single-channel 8-bit PNG.
        threshold (float): Threshold on ``v / 255`` (a value in [0, 1]).
            Defaults to 0.5.

    Returns:
        np.ndarray: uint8 [H, W], 1 where ``v / 255 > threshold``, else 0.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file cannot be decoded as an image or is not
            a single-channel 8-bit image.
    """
    raw = _read_png(path, 1)
    return (raw.astype(np.float32) / 255.0 > threshold).astype(np.uint8)


def _field(record, name: str, index: int):
    """Field of a loadmat struct record, by name if it has names."""
    if record.dtype.names is not None:
        return record[name]
    return record[index]


def read_pascal_parts(path: str, part_map: Dict[str, int],
                      person_class_ind: int = 15) -> Optional[np.ndarray]:
    """PASCAL-Part ``human_parts/*.mat``: person part masks -> part ids.

    The file holds ``anno`` = struct(imname, objects); ``objects`` is a
    struct array with ``class``, ``class_ind``, ``mask`` and ``parts``
    (struct array of ``part_name`` and ``mask``). Parts of objects whose
    ``class_ind`` is the person class are painted with ``part_map[name]``;
    everything else is background 0.

    Args:
        path (str): The MATLAB ``.mat`` file holding ``anno``.
        part_map (Dict[str, int]): Part name -> id painted into the uint8
            map (0 is the background). Where part masks overlap, the later
            part wins.
        person_class_ind (int): ``class_ind`` of the person class. Defaults
            to 15.

    Returns:
        np.ndarray or None: uint8 [H, W]; None when the image has no person
        part at all (the loader then fills the map with ``fill_if_empty``,
        255 = ignore, as the reference loaders do).

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the file cannot be read as a ``.mat`` file, has
            no ``anno`` PASCAL-Part struct with ``objects``, an object or
            part lacks one of its fields, a part name is not in
            ``part_map``, or an object mask differs in shape from the first
            object's or a part mask from its object's.
    """
    anno = _read_mat(path, 'anno')
    try:
        objects = _field(anno[0, 0], 'objects', 1)
        objects = objects.reshape(-1) if objects.size else []
    except (IndexError, ValueError, TypeError) as e:
        raise _LabelFileError(f'{path}: `anno` is not a PASCAL-Part struct '
                              f'with an `objects` field ({e})') from e
    target = None
    shape = None
    for k, obj in enumerate(objects):
        try:
            class_ind = int(np.asarray(_field(obj, 'class_ind', 1)).ravel()[0])
            mask = np.asarray(_field(obj, 'mask', 2))
            parts = np.asarray(_field(obj, 'parts', 3))
        except (IndexError, ValueError, TypeError) as e:
            raise _LabelFileError(f'{path}: object {k} lacks class_ind/mask/'
                                  f'parts ({e})') from e
        if shape is None:
            shape = mask.shape
        elif mask.shape != shape:
            _fail(path, f'object {k} mask shape {mask.shape} differs from '
                  f'the first object mask shape {shape}')
        if class_ind != person_class_ind or parts.size == 0:
            continue
        if target is None:
            target = np.zeros(shape, np.uint8)
        for part in parts.reshape(-1):
            try:
                name = str(
                    np.asarray(_field(part, 'part_name', 0)).ravel()[0])
                pmask = np.asarray(_field(part, 'mask', 1)).astype(bool)
            except (IndexError, ValueError, TypeError) as e:
                raise _LabelFileError(f'{path}: object {k} has a part '
                                      f'without part_name/mask ({e})') from e
            if name not in part_map:
                _fail(path, f'object {k} has unknown part name {name!r}; '
                      f'known: {sorted(part_map)}')
            if pmask.shape != shape:
                _fail(path, f'part {name!r} mask shape {pmask.shape} differs '
                      f'from its object mask shape {shape}')
            target[pmask] = part_map[name]
    if target is None:
        return None  # no person parts: the loader fills `fill_if_empty`
    return target


LABEL_READERS: Dict[str, Callable[..., Optional[np.ndarray]]] = {
    'nyu_semseg_png': read_nyu_semseg,
    'voc_semseg_png': read_voc_semseg,
    'depth_npy': read_depth_npy,
    'normals_png': read_normals_png,
    'normals_npy': read_normals_npy,
    'edge_png': read_edge_png,
    'edge_npy': read_edge_npy,
    'edge_labelmap': read_edge_labelmap,
    'saliency_png': read_saliency_png,
    'pascal_parts_mat': read_pascal_parts,
}


@TRANSFORMS.register_module()
class LoadMultiTaskAnnotations(BaseTransform):
    """Load the label of every task of a sample.

    Reads ``results['ann_info'][task]`` (``path``, ``reader`` and reader
    options, written by the dataset's ``load_data_list``) for each task in
    ``results['tasks']`` (or ``tasks`` when given) and stores the label under
    the task's ``gt_field`` of :data:`mmfgmoe.utils.TASK_SPECS`, then the
    labels of ``results['guide_tasks']`` (read for the transforms, e.g. the
    crop's class-ratio rule, and dropped by ``PackMultiTaskInputs``;
    ``results['tasks']`` keeps naming the trained tasks only):

    - discrete tasks: uint8 [H, W] (255 = ignore);
    - ``gt_depth_map``: float32 [H, W] metres, 0 = invalid;
    - ``gt_normals``: float32 [H, W, 3], unit or all-zero (invalid).

    When the image is already loaded, every label must have its size.

    Required keys: ``ann_info``, ``tasks``. Added keys: one ``gt_*`` per task,
    ``seg_fields`` (the discrete ``gt_*`` keys), ``seg_map_path``,
    ``reduce_zero_label``.

    Args:
        tasks (Sequence[str], optional): Load only these tasks (a subset of
            the sample's). Defaults to None (all of the sample's tasks).
    """

    def __init__(self, tasks: Optional[Sequence[str]] = None) -> None:
        self.tasks = None if tasks is None else check_tasks(tasks)

    def transform(self, results: dict) -> dict:
        """Read the label files.

        Args:
            results (dict): Needs ``ann_info`` and ``tasks``.

        Returns:
            dict: ``results`` with the ``gt_*`` arrays added.
        """
        if 'ann_info' not in results:
            raise KeyError('LoadMultiTaskAnnotations needs `ann_info` in the '
                           'results (written by a multi-task dataset)')
        tasks: List[str] = list(results.get('tasks', results['ann_info']))
        if self.tasks is not None:
            missing = [t for t in self.tasks if t not in tasks]
            if missing:
                raise KeyError(f'tasks {missing} are not provided by the '
                               f'dataset sample {results.get("img_path")}; '
                               f'it has {tasks}')
            tasks = list(self.tasks)
        guides = [t for t in results.get('guide_tasks', ()) if t not in tasks]
        img_shape = results['img'].shape[:2] if 'img' in results else None
        seg_fields = []
        for task in tasks + guides:
            spec = TASK_SPECS[task]
            info = dict(results['ann_info'][task])
            path = info.pop('path')
            reader = info.pop('reader')
            if reader not in LABEL_READERS:
                raise KeyError(f'unknown label reader {reader!r} for task '
                               f'{task} ({path}); known: '
                               f'{sorted(LABEL_READERS)}')
            fill = info.pop('fill_if_empty', None)
            label = LABEL_READERS[reader](path, **info)
            if label is None:
                if fill is None:
                    raise ValueError(
                        f'{path}: the {task} reader {reader!r} found no '
                        'label and the annotation has no `fill_if_empty` '
                        'value to stand in for it')
                if img_shape is None:
                    raise ValueError(f'{path}: has no {task} label and the '
                                     'image is not loaded to size the '
                                     'ignore map')
                label = np.full(img_shape, fill, np.uint8)
            if img_shape is not None and label.shape[:2] != tuple(img_shape):
                raise ValueError(
                    f'{path}: {task} label shape {label.shape[:2]} differs '
                    f'from the image {results.get("img_path")} shape '
                    f'{tuple(img_shape)}')
            if task == 'semseg' and results.get('label_map'):
                # mmseg's class-subset mapping (metainfo `classes`)
                mapped = label.copy()
                for old_id, new_id in results['label_map'].items():
                    mapped[label == old_id] = new_id
                label = mapped
            results[spec.gt_field] = label
            if spec.discrete:
                seg_fields.append(spec.gt_field)
        results['tasks'] = tasks
        results['seg_fields'] = seg_fields
        results.setdefault('seg_map_path', None)
        results['reduce_zero_label'] = False
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(tasks={self.tasks})'
