# Copyright (c) mmfgmoe contributors. All rights reserved.
import colorsys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.structures import BaseDataElement
from mmengine.visualization import LocalVisBackend

from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer
from ..datasets.transforms.loading import encode_normals_png
from ..utils.tasks import TASK_SPECS

#: Column titles of a panel row.
_COLUMNS = ('input', 'GT', 'prediction')


def _numpy(value) -> Optional[np.ndarray]:
    """PixelData / tensor / array -> numpy (None stays None)."""
    if value is None:
        return None
    if isinstance(value, BaseDataElement):
        value = value.data
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _default_palette(num: int) -> List[Tuple[int, int, int]]:
    """``num`` distinct colours (evenly spaced hues, full saturation)."""
    out = []
    for i in range(num):
        r, g, b = colorsys.hsv_to_rgb(i / max(num, 1), 0.85, 0.95)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


def _resize(arr: np.ndarray, shape: Tuple[int, int],
            nearest: bool) -> np.ndarray:
    if arr.shape[:2] == tuple(shape):
        return arr
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.resize(arr, (shape[1], shape[0]), interpolation=interp)


@VISUALIZERS.register_module()
class MultiTaskLocalVisualizer(SegLocalVisualizer):
    """Draw every task of a multi-task data sample as one panel.

    One row per task, three columns: ``input | GT | prediction``. Label maps
    (semseg, human_parts) are palette overlays on the input (ignored pixels
    show the input), depth is a colour map shared by GT and prediction
    (range of the valid GT depth; invalid GT pixels black), human-part
    background (0) is left uncoloured, normals are shown
    as RGB ``(n + 1) / 2`` (invalid black), edges and saliency as grey-level
    probabilities (GT: white = 1, grey = ignored). The panel goes to every
    vis backend (``LocalVisBackend`` writes ``save_dir/vis_data/vis_image/
    <name>_<step>.png``, ``TensorboardVisBackend`` logs it), or to
    ``out_file``.

    Args:
        name (str): Instance name. Defaults to 'visualizer'.
        image (np.ndarray, optional): Initial image. Defaults to None.
        vis_backends (list[dict], optional): Visual backends. Defaults to
            None.
        save_dir (str, optional): Save folder of the backends. Defaults to
            None.
        classes (list, optional): Semseg class names. Defaults to None
            (taken from the dataset meta the runner sets).
        palette (list, optional): Semseg palette. Defaults to None.
        dataset_name (str, optional): Unused; kept for
            ``SegLocalVisualizer`` compatibility. Defaults to None.
        alpha (float): Opacity of label-map overlays. Defaults to 0.6.
        tasks (Sequence[str], optional): Rows to draw, in order. None: the
            dataset meta ``tasks``, else every task present in the sample.
        depth_colormap (int): OpenCV colour map of depth. Defaults to
            ``cv2.COLORMAP_VIRIDIS``.
        title_height (int): Height in pixels of the title strip above each
            row; 0 disables titles. Defaults to 16.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[Dict]] = None,
                 save_dir: Optional[str] = None,
                 classes: Optional[List] = None,
                 palette: Optional[List] = None,
                 dataset_name: Optional[str] = None,
                 alpha: float = 0.6,
                 tasks: Optional[Sequence[str]] = None,
                 depth_colormap: int = cv2.COLORMAP_VIRIDIS,
                 title_height: int = 16,
                 **kwargs) -> None:
        super().__init__(name, image, vis_backends, save_dir, classes,
                         palette, dataset_name, alpha, **kwargs)
        # mmseg 1.2.2's __init__ passes (palette, classes) in swapped order.
        self.set_dataset_meta(classes, palette, dataset_name)
        self.tasks = list(tasks) if tasks is not None else None
        self.depth_colormap = depth_colormap
        self.title_height = int(title_height)

    def set_dataset_meta(self,
                         classes: Optional[List] = None,
                         palette: Optional[List] = None,
                         dataset_name: Optional[str] = None) -> None:
        """Keep the given semseg classes / palette; unlike mmseg, no
        Cityscapes default (the runner sets the dataset's metainfo, which
        also carries ``human_parts_classes`` / ``human_parts_palette``)."""
        meta = {}
        if classes:
            meta['classes'] = list(classes)
        if palette:
            meta['palette'] = [tuple(c) for c in palette]
        self.dataset_meta = meta

    # ------------------------------------------------------------------ #
    # one task map -> RGB uint8 [H, W, 3]
    # ------------------------------------------------------------------ #
    def _palette(self, task: str, num: int) -> np.ndarray:
        meta = self.dataset_meta or {}
        spec = TASK_SPECS[task]
        palette = meta.get(spec.palette_key)
        num = max(num, len(meta.get(spec.classes_key) or []))
        if not palette or len(palette) < num:
            palette = _default_palette(num)
        return np.asarray(palette, dtype=np.uint8).reshape(-1, 3)

    def _render_labels(self, task: str, image: np.ndarray,
                       label: np.ndarray) -> np.ndarray:
        label = label.reshape(label.shape[-2:]).astype(np.int64)
        ignore = TASK_SPECS[task].pad_value
        valid = label != ignore
        if task == 'human_parts':
            valid &= label != 0  # background: show the input
        num = int(label[valid].max()) + 1 if valid.any() else 1
        palette = self._palette(task, num)
        colour = palette[np.where(valid, label, 0) % len(palette)]
        out = image.astype(np.float32)
        out[valid] = (1 - self.alpha) * out[valid] + self.alpha * colour[valid]
        return out.astype(np.uint8)

    def _render_depth(self, depth: np.ndarray,
                      value_range: Tuple[float, float],
                      mask_invalid: bool) -> np.ndarray:
        depth = depth.reshape(depth.shape[-2:]).astype(np.float32)
        lo, hi = value_range
        norm = np.clip((depth - lo) / max(hi - lo, 1e-12), 0, 1)
        coloured = cv2.applyColorMap(
            np.rint(norm * 255).astype(np.uint8), self.depth_colormap)
        coloured = coloured[..., ::-1].copy()  # BGR -> RGB
        if mask_invalid:
            coloured[~(np.isfinite(depth) & (depth > 0))] = 0
        return coloured

    @staticmethod
    def _render_normals(normals: np.ndarray) -> np.ndarray:
        normals = normals.astype(np.float32)
        length = np.linalg.norm(normals, axis=0)
        unit = normals / np.maximum(length, 1e-12)
        rgb = encode_normals_png(unit.transpose(1, 2, 0))
        rgb[length == 0] = 0
        return rgb

    @staticmethod
    def _render_gray(values: np.ndarray, task: str,
                     is_label: bool) -> np.ndarray:
        values = values.reshape(values.shape[-2:]).astype(np.float32)
        if is_label:
            ignore = values == TASK_SPECS[task].pad_value
            gray = np.where(values > 0, 255, 0).astype(np.uint8)
            gray[ignore] = 128
        else:
            gray = np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)

    def render_task(self, task: str, image: np.ndarray,
                    data: Optional[np.ndarray], is_label: bool,
                    depth_range: Tuple[float, float] = (0.0, 1.0)
                    ) -> np.ndarray:
        """Render one label or prediction map of ``task`` as RGB.

        Args:
            task (str): Task name.
            image (np.ndarray): RGB input [H, W, 3] (used by overlays).
            data (np.ndarray, optional): The map ([C, H, W] or [H, W]);
                None renders an empty (dark) cell.
            is_label (bool): Whether ``data`` is a label (ignored values
                shown neutrally) or a prediction.
            depth_range (tuple[float, float]): Colour-map range of depth.

        Returns:
            np.ndarray: uint8 [H, W, 3] RGB.
        """
        shape = image.shape[:2]
        if data is None:
            return np.full_like(image, 32)
        if TASK_SPECS[task].classes_key:
            data = _resize(data.reshape(data.shape[-2:]), shape, True)
            return self._render_labels(task, image, data)
        if task == 'depth':
            out = self._render_depth(data, depth_range, is_label)
        elif task == 'normals':
            out = self._render_normals(data)
        else:
            out = self._render_gray(data, task, is_label)
        return _resize(out, shape, nearest=is_label)

    def _title_strip(self, titles: Sequence[str], width: int) -> np.ndarray:
        """White strips with the column titles, one font size per row (the
        largest at which every title fits its ``width``-pixel cell)."""
        font = cv2.FONT_HERSHEY_SIMPLEX
        margin = 2
        scale = float('inf')
        for text in titles:
            (text_w, text_h), _ = cv2.getTextSize(text, font, 1.0, 1)
            scale = min(scale, (self.title_height - 2 * margin) / text_h,
                        (width - 2 * margin) / text_w)
        strips = []
        for text in titles:
            strip = np.full((self.title_height, width, 3), 255, np.uint8)
            cv2.putText(strip, text, (margin, self.title_height - margin - 1),
                        font, scale, (0, 0, 0), 1, cv2.LINE_AA)
            strips.append(strip)
        return np.concatenate(strips, axis=1)

    def _tasks_of(self, sample: SegDataSample) -> List[str]:
        if self.tasks is not None:
            return self.tasks
        meta_tasks = (self.dataset_meta or {}).get('tasks')
        if meta_tasks:
            return list(meta_tasks)
        return [
            t for t, s in TASK_SPECS.items()
            if s.gt_field in sample or s.pred_field in sample
        ]

    def draw_panel(self,
                   image: np.ndarray,
                   data_sample: SegDataSample,
                   draw_gt: bool = True,
                   draw_pred: bool = True) -> np.ndarray:
        """Build the ``input | GT | prediction`` grid of every task.

        Args:
            image (np.ndarray): RGB input image [H, W, 3] uint8.
            data_sample (SegDataSample): Sample with ``gt_*`` / ``pred_*``.
            draw_gt (bool): Draw the GT column. Defaults to True.
            draw_pred (bool): Draw the prediction column. Defaults to True.

        Returns:
            np.ndarray: uint8 RGB panel ``[rows * (title + H), cols * W, 3]``.
        """
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        rows = []
        for task in self._tasks_of(data_sample):
            spec = TASK_SPECS[task]
            gt = _numpy(data_sample.get(spec.gt_field))
            pred = _numpy(data_sample.get(spec.pred_field))
            depth_range = (0.0, 1.0)
            if task == 'depth':
                ref = gt if gt is not None else pred
                valid = ref[np.isfinite(ref) & (ref > 0)] if ref is not None \
                    else np.zeros(0)
                if valid.size:
                    depth_range = (float(valid.min()), float(valid.max()))
            cells, titles = [image], [f'{task}: input']
            if draw_gt:
                cells.append(
                    self.render_task(task, image, gt, True, depth_range))
                titles.append(_COLUMNS[1])
            if draw_pred:
                cells.append(
                    self.render_task(task, image, pred, False, depth_range))
                titles.append(_COLUMNS[2])
            row = np.concatenate(cells, axis=1)
            if self.title_height > 0:
                row = np.concatenate(
                    [self._title_strip(titles, image.shape[1]), row], axis=0)
            rows.append(row)
        if not rows:
            return image
        return np.concatenate(rows, axis=0)

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> np.ndarray:
        """Draw a multi-task panel and send it to the backends.

        Same arguments as :meth:`SegLocalVisualizer.add_datasample`
        (``with_labels`` is accepted for compatibility; class names are not
        written on the overlays).

        Unlike mmseg's (rank 0 only), it draws on every rank, so that a
        distributed test writes the panels of all images: ranks other than
        0 send them to the local (file) backends only; logging backends
        (TensorBoard, W&B) and ``show`` stay rank 0's.

        Returns:
            np.ndarray: The drawn RGB panel.
        """
        if data_sample is None:
            drawn = np.ascontiguousarray(image[..., :3])
        else:
            drawn = self.draw_panel(image, data_sample, draw_gt, draw_pred)
        self.set_image(drawn)
        main = is_main_process()
        if show and main:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        elif main:
            self.add_image(name, drawn, step)
        else:
            # Files are named by image: the ranks' samples do not collide
            # (the sampler's padding repeats a sample with the same panel).
            for backend in self._vis_backends.values():
                if isinstance(backend, LocalVisBackend):
                    backend.add_image(name, drawn, step)
        return drawn
