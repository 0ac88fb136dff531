# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Load a trained multi-task model and run it on images (mmseg's
``mmseg.apis.init_model`` / ``inference_model`` for the multi-task
segmentor: the test pipeline without the label loader, every task's
prediction at the image's own size)."""
import copy
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample
from ..utils import cfg_type_name
from ..utils.cli import revert_sync_bn_cfg

__all__ = ['init_model', 'inference_model']

ImageType = Union[str, np.ndarray]


def _config_dataset_meta(cfg: Config) -> dict:
    """Class names and palettes of the config's test dataset class (its
    ``METAINFO``; the data set itself is not read)."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    dataset_type = dataset.get('type')
    dataset_cls = DATASETS.get(dataset_type) if isinstance(
        dataset_type, str) else dataset_type
    return copy.deepcopy(dict(getattr(dataset_cls, 'METAINFO', {})))


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cuda:0',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a segmentor from a config and load its trained weights.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Trained checkpoint (a path or URL, loaded
            with weights-only unpickling). Every weight must match the
            model. None keeps the initial weights (without loading the
            backbone's pre-trained checkpoint). Defaults to None.
        device (str): Where the model runs. Defaults to ``'cuda:0'``.
        cfg_options (dict, optional): Overrides merged into the config,
            as ``--cfg-options`` does. Defaults to None.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` (the config) and
        ``dataset_meta`` (the checkpoint's, else the config's test dataset
        class names and palettes; ``tasks`` the decoder's).
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError('init_model: config must be a file path or a Config, '
                        f'got {type(config).__name__}')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    init_default_scope(config.get('default_scope', 'mmseg'))
    model_cfg = copy.deepcopy(config.model)
    revert_sync_bn_cfg(model_cfg)  # one process: plain BN
    model = MODELS.build(model_cfg)
    dataset_meta = _config_dataset_meta(config)
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint, map_location='cpu',
                                 strict=True)
        dataset_meta.update(loaded.get('meta', {}).get('dataset_meta') or {})
    dataset_meta['tasks'] = list(model.decode_head.tasks)
    model.cfg = config
    model.dataset_meta = dataset_meta
    return model.to(device).eval()


def _inference_pipeline(cfg: Config, from_array: bool) -> Compose:
    """The config's test pipeline without the label loader; an array input
    replaces the file loader by ``LoadImageFromNDArray``."""
    pipeline = []
    for transform in copy.deepcopy(cfg.test_dataloader.dataset.pipeline):
        name = cfg_type_name(transform.get('type'))
        if name == 'LoadMultiTaskAnnotations':
            continue
        if name == 'LoadImageFromFile' and from_array:
            transform = dict(type='LoadImageFromNDArray')
        pipeline.append(transform)
    return Compose(pipeline)


@torch.no_grad()
def inference_model(
        model: nn.Module, img: Union[ImageType, Sequence[ImageType]]
) -> Union[SegDataSample, List[SegDataSample]]:
    """Predict every task of the model on one image or a batch.

    Args:
        model (nn.Module): From :func:`init_model`.
        img (str | np.ndarray | Sequence): Image file(s), or BGR
            ``[H, W, 3]`` uint8 array(s) as ``mmcv.imread`` returns.

    Returns:
        SegDataSample | list[SegDataSample]: Per image, the ``pred_*``
        field of every task (``pred_sem_seg``, ``pred_depth_map``,
        ``pred_normals``, ``pred_edge`` ...) at the image's size, with the
        logits of the class tasks (``seg_logits`` ...).
    """
    images = list(img) if isinstance(img, (list, tuple)) else [img]
    if not images:
        raise ValueError('inference_model: no image given')
    from_array = isinstance(images[0], np.ndarray)
    if any(isinstance(i, np.ndarray) != from_array for i in images):
        raise TypeError('inference_model: give all images as paths or all '
                        'as arrays')
    pipeline = _inference_pipeline(model.cfg, from_array)
    results = []
    for image in images:  # one by one: test batches need one image size
        data = pipeline(
            dict(img=image) if from_array else dict(img_path=str(image)))
        results += model.test_step(pseudo_collate([data]))
    return results if isinstance(img, (list, tuple)) else results[0]
