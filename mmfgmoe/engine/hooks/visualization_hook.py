# Copyright (c) mmfgmoe contributors. All rights reserved.
import os.path as osp
from typing import Sequence

import mmcv
import mmengine.fileio as fileio
from mmengine.runner import Runner

from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample


@HOOKS.register_module()
class MultiTaskVisualizationHook(SegVisualizationHook):
    """Draw multi-task panels during validation and testing.

    Same arguments as mmseg's ``SegVisualizationHook``; the drawing is done
    by the current visualizer (``MultiTaskLocalVisualizer``), one
    ``input | GT | prediction`` row per task. In validation it draws the
    samples of every ``interval``-th batch; in testing (``tools/test.py
    --show-dir`` sets ``draw=True`` and the visualizer's ``save_dir``) it
    draws every sample, named ``test_<image file name>``. The step of the
    drawing is the training iteration recorded in the message hub (0 in a
    stand-alone test): unlike mmseg's hook it does not read ``runner.iter``,
    which makes the runner build the training loop and dataset, and fails in
    ``tools/test.py`` when the training data is absent.

    Args:
        draw (bool): Whether to draw at all. Defaults to False.
        interval (int): Validation batch interval. Defaults to 50.
        show (bool): Show the panels in a window instead of storing them.
            Defaults to False.
        wait_time (float): Seconds a shown panel stays. Defaults to 0.
        backend_args (dict, optional): File backend arguments used to read
            the input image. Defaults to None.
    """

    def _after_iter(self,
                    runner: Runner,
                    batch_idx: int,
                    data_batch: dict,
                    outputs: Sequence[SegDataSample],
                    mode: str = 'val') -> None:
        """Draw the batch's samples (every batch in test mode).

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch in the loop.
            data_batch (dict): The loader batch.
            outputs (Sequence[SegDataSample]): Model outputs with ``gt_*``
                and ``pred_*`` fields.
            mode (str): 'train', 'val' or 'test'. Defaults to 'val'.
        """
        if self.draw is False or mode == 'train':
            return
        if mode != 'test' and not self.every_n_inner_iters(
                batch_idx, self.interval):
            return
        for output in outputs:
            img_path = output.img_path
            img_bytes = fileio.get(img_path, backend_args=self.backend_args)
            # As our pipelines load it: an EXIF rotation would not match the
            # labels and predictions.
            img = mmcv.imfrombytes(img_bytes,
                                   flag='color_ignore_orientation',
                                   channel_order='rgb')
            self._visualizer.add_datasample(
                f'{mode}_{osp.splitext(osp.basename(img_path))[0]}',
                img,
                data_sample=output,
                show=self.show,
                wait_time=self.wait_time,
                step=runner.message_hub.get_info('iter', 0))
