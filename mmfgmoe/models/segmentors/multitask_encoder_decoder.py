# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Multi-task encoder-decoder: a (frozen) backbone and one multi-task head."""
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from ...utils import NORMALS_FLIP_AXIS, TASK_SPECS


def _class_map(logits: Tensor) -> Tensor:
    """``[C, H, W]`` logits or probabilities -> ``[1, H, W]`` int64 ids."""
    return logits.argmax(dim=0, keepdim=True)


def _depth(pred: Tensor) -> Tensor:
    """``[1, H, W]`` raw depth -> non-negative metres (float32)."""
    return pred.float().clamp(min=0)


def _unit_normals(pred: Tensor) -> Tensor:
    """``[3, H, W]`` raw normals -> unit vectors (float32)."""
    return F.normalize(pred.float(), dim=0)


def _probability(logits: Tensor) -> Tensor:
    """``[1, H, W]`` logits -> probabilities in [0, 1] (float32)."""
    return logits.float().sigmoid()


#: How the upsampled logits of each task become its ``pred_*`` field.
TASK_PREDICTORS: Dict[str, Callable[[Tensor],
                                    Tensor]] = dict(semseg=_class_map,
                                                    human_parts=_class_map,
                                                    depth=_depth,
                                                    normals=_unit_normals,
                                                    edge=_probability,
                                                    saliency=_probability)


def _pretrained_cfg(init_cfg: OptMultiConfig) -> Optional[dict]:
    """The ``type='Pretrained'`` entry of an ``init_cfg`` (dict or list)."""
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    for cfg in cfgs:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            return cfg
    return None


def unflip(task: str, pred: Tensor, direction: str) -> Tensor:
    """Undo a flip on one task's ``[C, H, W]`` (or ``[B, C, H, W]``) map.

    Normals are vectors in the camera frame: a horizontal flip also negates
    their x component, a vertical one their y component.

    Args:
        task (str): Task name.
        pred (Tensor): Map to flip back.
        direction (str): ``'horizontal'`` or ``'vertical'``.

    Returns:
        Tensor: The map in the unflipped image frame.
    """
    if direction not in NORMALS_FLIP_AXIS:
        raise ValueError(f'unknown flip_direction {direction!r}; expected '
                         f'one of {list(NORMALS_FLIP_AXIS)}')
    pred = pred.flip(dims=(-1, ) if direction == 'horizontal' else (-2, ))
    if task == 'normals':
        sign = pred.new_ones(pred.shape[-3])
        sign[NORMALS_FLIP_AXIS[direction]] = -1
        pred = pred * sign.view(-1, 1, 1)
    return pred


@MODELS.register_module()
class MultiTaskEncoderDecoder(BaseSegmentor):
    """Encoder-decoder for multi-task dense prediction (FGMoE).

    Call flow::

        inputs [B, 3, H, W]
          --backbone (frozen: eval mode, no autograd)--> L feature maps
          --decode_head--> {task: logits [B, C_t, h, w]}
          loss:    head.loss_by_feat -> {loss_<task>, loss_moe_balance}
          predict: upsample to the padded input, strip ``padding_size``,
                   undo flips, resize to ``ori_shape`` -> pred_* fields

    With ``freeze_backbone=True`` (decoder-only fine-tuning, the FGMoE
    protocol) every backbone parameter has ``requires_grad=False``, the
    backbone stays in eval mode when :meth:`train` is called (mmpretrain's
    ``frozen_stages`` only freezes in ``__init__``) and runs under
    ``torch.no_grad()``; the schedule additionally gives it ``lr_mult=0``.

    Predictions written per sample (at ``ori_shape``): ``pred_sem_seg`` /
    ``pred_human_parts`` (int64 ``[1, H, W]``), ``pred_depth_map`` (float32
    ``[1, H, W]`` >= 0), ``pred_normals`` (float32 ``[3, H, W]`` unit),
    ``pred_edge`` / ``pred_saliency`` (float32 ``[1, H, W]`` probabilities),
    plus raw logits ``seg_logits`` (semseg) and ``human_parts_logits``.

    Args:
        backbone (dict): Backbone config, e.g.
            ``dict(type='mmpretrain.VisionTransformer', out_type='featmap')``.
        decode_head (dict): Multi-task head config (``FGMoEHead``).
        freeze_backbone (bool): Decoder-only fine-tuning. False needs a
            backbone with trainable parameters (an error otherwise).
            Defaults to True.
        train_cfg (dict, optional): Passed to the head's ``loss`` (mmseg's
            signature; our head uses none). Defaults to None.
        test_cfg (dict, optional): ``mode='whole'`` (the only mode).
        data_preprocessor (dict, optional): Data preprocessor config.
        pretrained (str, optional): Classifier checkpoint whose backbone
            weights start with ``backbone.`` (mmpretrain's layout); sets the
            backbone's ``init_cfg`` with that prefix. For a bare backbone
            state dict set ``backbone.init_cfg`` without ``prefix``.
            Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 freeze_backbone: bool = True,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if pretrained is not None:
            backbone = dict(backbone,
                            init_cfg=dict(type='Pretrained',
                                          checkpoint=pretrained,
                                          prefix='backbone.'))
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.tasks: List[str] = list(self.decode_head.tasks)
        self.align_corners = self.decode_head.align_corners
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg if test_cfg is not None else dict(
            mode='whole')
        if self.test_cfg.get('mode', 'whole') != 'whole':
            raise ValueError('MultiTaskEncoderDecoder.test_cfg.mode: only '
                             f"'whole' is supported, got {self.test_cfg}")
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self._freeze()
        elif not any(p.requires_grad for p in self.backbone.parameters()):
            raise ValueError(
                'MultiTaskEncoderDecoder: freeze_backbone=False, but the '
                'backbone has no trainable parameter (our configs freeze all '
                'of it with model.backbone.frozen_stages); to fine-tune it '
                'set model.backbone.frozen_stages=-1 (or fewer stages) and '
                'give it a learning rate: our schedules set optim_wrapper.'
                'paramwise_cfg.custom_keys.backbone.lr_mult=0')

    def init_weights(self) -> None:
        """Initialise; a frozen backbone must get every weight from its
        ``Pretrained`` checkpoint.

        mmengine loads a ``Pretrained`` ``init_cfg`` with ``strict=False`` and
        only logs the keys it could not match (a wrong ``prefix`` matches
        none), so a frozen backbone would silently stay random for the whole
        schedule.

        Raises:
            ValueError: naming the checkpoint and the backbone weights it
                lacks, when the backbone is frozen.
        """
        checkpoint = _pretrained_cfg(self.backbone.init_cfg)
        if not self.freeze_backbone or checkpoint is None:
            super().init_weights()
            return
        missing: List[str] = []

        def record(module, incompatible_keys) -> None:
            missing.extend(key for key in incompatible_keys.missing_keys
                           if 'num_batches_tracked' not in key)

        handle = self.backbone.register_load_state_dict_post_hook(record)
        try:
            super().init_weights()
        finally:
            handle.remove()
        if missing:
            total = len(self.backbone.state_dict())
            raise ValueError(
                f'model.backbone.init_cfg: checkpoint '
                f"{checkpoint['checkpoint']!r} (prefix="
                f"{checkpoint.get('prefix')!r}) lacks {len(missing)} of the "
                f'{total} backbone weights, e.g. {missing[:5]}; with '
                'freeze_backbone=True they would stay random for the whole '
                "training. mmpretrain classifier checkpoints keep the "
                "backbone under prefix='backbone.'; a bare backbone state "
                'dict takes no prefix.')

    def _freeze(self) -> None:
        """Freeze every backbone parameter and put it in eval mode."""
        self.backbone.eval()
        for param in self.backbone.parameters():
            param.requires_grad = False

    def train(self, mode: bool = True) -> 'MultiTaskEncoderDecoder':
        """Set train/eval mode; a frozen backbone always stays in eval mode
        (no dropout/drop-path, frozen norm statistics)."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Backbone features (no autograd when frozen).

        Args:
            inputs (Tensor): ``[B, 3, H, W]`` normalised images.

        Returns:
            list[Tensor]: Feature maps ``[B, C_l, h, w]``.
        """
        if self.freeze_backbone:
            with torch.no_grad():
                feats = self.backbone(inputs)
        else:
            feats = self.backbone(inputs)
        return list(feats)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Logits of every task at the (padded) input size.

        Args:
            inputs (Tensor): ``[B, 3, H, W]``.
            batch_img_metas (list[dict]): Image metas.

        Returns:
            dict[str, Tensor]: ``{task: [B, C_t, H, W]}``.
        """
        return self.decode_head.predict(self.extract_feat(inputs),
                                        batch_img_metas, self.test_cfg)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of a batch.

        Args:
            inputs (Tensor): ``[B, 3, H, W]``.
            data_samples (list[SegDataSample]): Samples with every task's
                ``gt_*`` field.

        Returns:
            dict[str, Tensor]: ``loss_<task>`` per task and
            ``loss_moe_balance``.
        """
        return self.decode_head.loss(self.extract_feat(inputs), data_samples,
                                     self.train_cfg)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Predict every task and write the ``pred_*`` fields.

        Args:
            inputs (Tensor): ``[B, 3, H, W]``.
            data_samples (list[SegDataSample], optional): Samples with
                metainfo (``ori_shape``, ``padding_size``, ``flip``, ...).

        Returns:
            list[SegDataSample]: The samples with predictions at
            ``ori_shape``.
        """
        if data_samples is not None:
            batch_img_metas = [sample.metainfo for sample in data_samples]
        else:
            batch_img_metas = [
                dict(ori_shape=inputs.shape[2:],
                     img_shape=inputs.shape[2:],
                     pad_shape=inputs.shape[2:],
                     padding_size=[0, 0, 0, 0])
            ] * inputs.shape[0]
        seg_logits = self.encode_decode(inputs, batch_img_metas)
        return self.postprocess_result(seg_logits, data_samples)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Dict[str, Tensor]:
        """Raw head outputs (``mode='tensor'``).

        Returns:
            dict[str, Tensor]: ``{task: [B, C_t, h, w]}`` at the head scale.
        """
        return self.decode_head.forward(self.extract_feat(inputs))

    def postprocess_result(self,
                           seg_logits: Dict[str, Tensor],
                           data_samples: OptSampleList = None) -> SampleList:
        """Turn batched logits into per-sample predictions.

        For each sample: strip ``padding_size`` (``[left, right, top,
        bottom]``), undo the flip, resize (bilinear) to ``ori_shape``, then
        apply the task's predictor (argmax / clamp / normalise / sigmoid).

        Args:
            seg_logits (dict[str, Tensor]): ``{task: [B, C_t, H, W]}``.
            data_samples (list[SegDataSample], optional): Samples to fill;
                None returns new samples at the input size.

        Returns:
            list[SegDataSample]: Samples with the ``pred_*`` fields.
        """
        batch_size = next(iter(seg_logits.values())).shape[0]
        only_prediction = data_samples is None
        if only_prediction:
            data_samples = [SegDataSample() for _ in range(batch_size)]
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            for task, logits in seg_logits.items():
                logit = logits[i:i + 1]  # [1, C, H, W]
                if not only_prediction:
                    logit = self._to_original(task, logit, meta)
                logit = logit[0]  # [C, H, W]
                fields = {
                    TASK_SPECS[task].pred_field:
                    PixelData(data=TASK_PREDICTORS[task](logit))
                }
                if TASK_SPECS[task].logits_field:
                    fields[TASK_SPECS[task].logits_field] = PixelData(
                        data=logit)
                sample.set_data(fields)
        return data_samples

    def _to_original(self, task: str, logit: Tensor, meta: dict) -> Tensor:
        """``[1, C, H, W]`` at the padded input -> ``[1, C, *ori_shape]``."""
        if 'img_padding_size' in meta:
            padding = meta['img_padding_size']
        else:
            padding = meta.get('padding_size', [0] * 4)
        left, right, top, bottom = padding
        height, width = logit.shape[2:]
        logit = logit[:, :, top:height - bottom, left:width - right]
        if meta.get('flip', False):
            try:
                logit = unflip(task, logit, meta.get('flip_direction'))
            except ValueError as err:
                raise ValueError(
                    f'data sample {meta.get("img_path")}: {err}') from err
        return resize(logit,
                      size=meta['ori_shape'][:2],
                      mode='bilinear',
                      align_corners=self.align_corners,
                      warning=False)
