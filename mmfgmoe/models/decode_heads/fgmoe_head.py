# Copyright (c) mmfgmoe contributors. All rights reserved.
"""FGMoE multi-task decode head.

Reference: "Multi-Task Dense Prediction Fine-Tuning with Mixture of
Fine-Grained Experts" (Xu, Ye, Su; https://arxiv.org/abs/2507.19077). What the
abstract fixes and what is our choice is listed in the
README, "Differences from the paper".
"""
import copy
import functools
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from ...utils import TASK_SPECS, check_tasks
from ..layers import FGMoEBlock, GlobalExpert, RouterStats, switch_balance_loss

#: Output channels of the tasks without classes: one per label channel (a
#: depth, a normal vector, an edge or saliency logit). Class-map tasks
#: (``TaskSpec.classes_key``) take theirs from ``num_classes``.
DEFAULT_OUT_CHANNELS: Dict[str, int] = {
    name: spec.label_channels
    for name, spec in TASK_SPECS.items() if not spec.classes_key
}


class HeadRouting(NamedTuple):
    """What the routers and the global expert of an :class:`FGMoEHead`
    decided in one forward pass (:meth:`FGMoEHead.forward_routing`).

    Attributes:
        router_stats (dict[str, list[RouterStats]]): Per task, one entry per
            MoE layer in block order, with ``entropy`` and ``indices``
            (``[B, L, k]``, ``L = H * W`` tokens in row-major order) filled.
            Empty lists for a dense decoder (``moe=False``).
        global_gate (Tensor, optional): ``[T, B, H, W]`` gate scale of the
            global expert per task (order of ``FGMoEHead.tasks``), in
            ``[0, 1]``; None without a global expert.
        hw_shape (tuple[int, int]): ``(H, W)`` of the token grid (the
            aggregator scale).
        valid (Tensor, optional): ``[B, H, W]`` bool, the tokens whose centre
            lies inside the image (False on padding); None when the forward
            pass had no image metas. The load statistics of
            ``router_stats`` count these tokens only.
    """
    router_stats: Dict[str, List[RouterStats]]
    global_gate: Optional[Tensor]
    hw_shape: Tuple[int, int]
    valid: Optional[Tensor] = None


def token_centres(input_shape: Sequence[int],
                  hw_shape: Sequence[int],
                  device: Optional[torch.device] = None
                  ) -> Tuple[Tensor, Tensor]:
    """Pixel coordinates ``rows [H]``, ``cols [W]`` of the token centres of
    an ``(H, W)`` token grid over a (padded) input of ``input_shape``.

    Args:
        input_shape (Sequence[int]): ``(H_in, W_in)`` pixel size of the
            (padded) input; further entries are ignored.
        hw_shape (Sequence[int]): ``(H, W)`` size of the token grid.
        device (torch.device, optional): Device of the returned tensors.
            Defaults to None (the default device).

    Returns:
        tuple[Tensor, Tensor]: Float ``rows [H]`` and ``cols [W]``, the
        centre of token ``i`` along an axis being
        ``(i + 0.5) * size_in / size``.
    """
    rows = (torch.arange(hw_shape[0], device=device) +
            .5) * input_shape[0] / hw_shape[0]
    cols = (torch.arange(hw_shape[1], device=device) +
            .5) * input_shape[1] / hw_shape[1]
    return rows, cols


def valid_tokens(batch_img_metas: Sequence[dict],
                 hw_shape: Sequence[int],
                 device: Optional[torch.device] = None) -> Tensor:
    """``[B, H, W]`` bool: the token's centre lies inside the unpadded
    image (``img_shape``) of the padded batch input (``pad_shape``).

    Built on ``device`` directly: a mask built on the CPU and copied to a
    GPU would wait for every kernel queued before it (the backbone).

    Args:
        batch_img_metas (Sequence[dict]): One meta dict per image, with
            ``img_shape`` and optionally ``pad_shape`` (defaults to
            ``img_shape``, i.e. no padding).
        hw_shape (Sequence[int]): ``(H, W)`` size of the token grid.
        device (torch.device, optional): Device of the mask. Defaults to
            None (the default device).

    Returns:
        Tensor: ``[B, H, W]`` bool, True on tokens whose centre (see
        :func:`token_centres`) lies inside ``img_shape``.
    """
    masks = []
    for meta in batch_img_metas:
        height, width = meta['img_shape'][:2]
        rows, cols = token_centres(meta.get('pad_shape', (height, width)),
                                   hw_shape, device)
        masks.append((rows < height)[:, None] & (cols < width)[None, :])
    return torch.stack(masks)


def _stack_gt(batch_data_samples: SampleList, task: str) -> Tensor:
    """Stack one task's labels to ``[B, c, H, W]``; clear error if missing."""
    field = TASK_SPECS[task].gt_field
    labels = []
    for i, sample in enumerate(batch_data_samples):
        if field not in sample:
            path = sample.metainfo.get('img_path')
            raise KeyError(
                f'FGMoEHead: data sample {i} ({path}) has no `{field}` for '
                f'task {task!r}; the dataset pipeline must load every '
                'configured task')
        labels.append(sample.get(field).data)
    return torch.stack(labels, dim=0)


def _check_class_ids(targets: Dict[str, Tensor],
                     limits: Dict[str, Tuple[int, int]],
                     batch_data_samples: SampleList) -> None:
    """Raise a ``ValueError`` naming ``FGMoEHead.num_classes`` and the sample
    when a ``[B, 1, H, W]`` label holds an id outside ``[0, num_classes)``
    other than ``ignore_index`` (torch's own cross-entropy error names
    neither; a head with fewer classes than the dataset ends there).

    It runs at every step, so all tasks share one host sync.

    Args:
        targets (dict[str, Tensor]): ``{task: [B, 1, H, W]}`` class-id
            labels.
        limits (dict[str, tuple[int, int]]): ``{task: (num_classes,
            ignore_index)}``.
        batch_data_samples (list[SegDataSample]): The samples (their
            ``img_path`` goes into the message).
    """
    bad = {
        task: (target != limits[task][1]) & ((target < 0) |
                                             (target >= limits[task][0]))
        for task, target in targets.items()
    }
    if not bad or not bool(torch.stack([b.any() for b in bad.values()]).any()):
        return
    task = next(task for task, mask in bad.items() if mask.any())
    num_classes, ignore_index = limits[task]
    mask, target = bad[task], targets[task]
    index = int(mask.flatten(1).any(dim=1).nonzero()[0])
    values = torch.unique(target[index][mask[index]]).tolist()[:5]
    path = batch_data_samples[index].metainfo.get('img_path')
    raise ValueError(
        f'FGMoEHead: the {task} label of data sample {index} ({path}) holds '
        f'class ids {values}, outside [0, {num_classes}) and not the ignore '
        f'index {ignore_index}: FGMoEHead.num_classes[{task!r}]='
        f'{num_classes} does not match the dataset')


@MODELS.register_module()
class FGMoEHead(BaseModule):
    """Multi-task FGMoE decoder (fine-grained task MoE, shared experts, global
    expert).

    Call flow::

        features (L levels, [B, C_l, h, w]) --ConvModule 3x3 per level-->
        resize x agg_scale_factor, concat --ConvModule 3x3--> x [B, D, H, W]
          |--> GlobalExpert(Norm x) --> g_t(x) * E_g(x) for every task t
          '--> per task t: num_blocks x (x + Mixer_t(Norm x),
                                         x + TaskMoE_t(Norm x))
               + global output of t --> ConvModule 3x3 + 1x1 --> logits_t

    One head covers FGMoE, its ablations (``use_shared_experts``,
    ``use_global_expert``, fine vs coarse experts via ``num_experts``/
    ``top_k``/``expert_ratio``) and the baselines (single task: one entry in
    ``tasks``; dense multi-task: ``moe=False``).

    Args:
        in_channels (Sequence[int]): Channels of each backbone level.
        tasks (Sequence[str]): Tasks to predict (keys of ``TASK_SPECS``).
        num_classes (dict[str, int], optional): Output channels per task;
            required for ``semseg`` and ``human_parts``, others default to
            :data:`DEFAULT_OUT_CHANNELS`.
        channels (int): Decoder width ``D``. Defaults to 256.
        agg_channels (int): Per-level width in the aggregator. Defaults to 128.
        agg_scale_factor (float): Upsampling of the backbone features in the
            aggregator (2 puts ViT/16 features at 1/8). Defaults to 2.
        in_index (Sequence[int], optional): Backbone levels used. Defaults to
            all.
        num_blocks (int): Blocks per task branch. Defaults to 2.
        mixer_cfg (dict): Spatial mixer config. Defaults to
            ``dict(type='DeformableMixer', kernel_size=3)``.
        moe (bool): Task MoE (True) or dense FFN of the same activated width.
            Defaults to True.
        num_experts (int): Routed experts per task MoE. Defaults to 16.
        top_k (int): Routed experts per token. Defaults to 4.
        num_shared_experts (int): Always-on expert slices. Defaults to 2.
        use_shared_experts (bool): False sets ``num_shared_experts`` to 0.
            Defaults to True.
        mlp_ratio (float): Hidden/width ratio of the dense reference FFN.
            Defaults to 4.
        expert_ratio (float): Scales the expert width. Defaults to 1.
        renormalize (bool): Renormalise the top-k gate weights (must be
            False for ``top_k=1``, see :class:`TopKGate`). Defaults to True.
        use_global_expert (bool): Add the global expert. Defaults to True.
        num_global_experts (int): Global experts. Defaults to 1.
        global_hidden_channels (int, optional): Hidden width of a global
            expert. Defaults to ``channels``.
        global_task_embed_dims (int, optional): Size of the task embedding
            in the global expert's gate. Defaults to ``channels``.
        balance_loss_weight (float): Weight of ``loss_moe_balance``. Defaults
            to 0.01.
        losses (dict[str, dict]): Loss config (type, weight, ...) of each
            task (required); entries of tasks the head does not predict are ignored, so
            one dict can serve every task set. Our configs give all six in
            ``configs/_base_/models/fgmoe_vit.py`` (the InvPT / MLoRE
            protocol).
        norm_cfg (dict): Norm of the ConvModules. Defaults to BN.
        act_cfg (dict): Activation of the ConvModules. Defaults to ReLU.
        token_norm_cfg (dict): Norm of the token blocks and the global expert
            input. Defaults to ``dict(type='LN', eps=1e-6)``.
        ffn_act_cfg (dict): Activation inside the experts. Defaults to GELU.
        align_corners (bool): ``align_corners`` of every resize. Defaults to
            False.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 tasks: Sequence[str],
                 num_classes: Optional[Dict[str, int]] = None,
                 channels: int = 256,
                 agg_channels: int = 128,
                 agg_scale_factor: float = 2.,
                 in_index: Optional[Sequence[int]] = None,
                 num_blocks: int = 2,
                 mixer_cfg: ConfigType = dict(type='DeformableMixer',
                                              kernel_size=3),
                 moe: bool = True,
                 num_experts: int = 16,
                 top_k: int = 4,
                 num_shared_experts: int = 2,
                 use_shared_experts: bool = True,
                 mlp_ratio: float = 4.,
                 expert_ratio: float = 1.,
                 renormalize: bool = True,
                 use_global_expert: bool = True,
                 num_global_experts: int = 1,
                 global_hidden_channels: Optional[int] = None,
                 global_task_embed_dims: Optional[int] = None,
                 balance_loss_weight: float = 0.01,
                 losses: Optional[Dict[str, dict]] = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 token_norm_cfg: ConfigType = dict(type='LN', eps=1e-6),
                 ffn_act_cfg: ConfigType = dict(type='GELU'),
                 align_corners: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.tasks = check_tasks(tasks, field='FGMoEHead.tasks')
        self.out_channels = self._resolve_out_channels(num_classes or {})
        in_channels = list(in_channels)
        self.in_index = list(range(len(in_channels))) if in_index is None \
            else list(in_index)
        self.channels = channels
        self.agg_scale_factor = agg_scale_factor
        self.align_corners = align_corners
        self.balance_loss_weight = balance_loss_weight
        self.moe = moe

        # Feature aggregator.
        self.agg_convs = nn.ModuleList(
            ConvModule(in_channels[i],
                       agg_channels,
                       3,
                       padding=1,
                       norm_cfg=norm_cfg,
                       act_cfg=act_cfg) for i in self.in_index)
        self.agg_fuse = ConvModule(agg_channels * len(self.in_index),
                                   channels,
                                   3,
                                   padding=1,
                                   norm_cfg=norm_cfg,
                                   act_cfg=act_cfg)

        # Task branches.
        act_layer = functools.partial(build_activation_layer, ffn_act_cfg)
        moe_kwargs = dict(
            moe=moe,
            num_experts=num_experts,
            top_k=top_k,
            num_shared_experts=num_shared_experts if use_shared_experts else 0,
            mlp_ratio=mlp_ratio,
            expert_ratio=expert_ratio,
            renormalize=renormalize)
        self.branches = nn.ModuleDict({
            task:
            nn.ModuleList(
                FGMoEBlock(channels, mixer_cfg, token_norm_cfg, act_layer, **
                           moe_kwargs) for _ in range(num_blocks))
            for task in self.tasks
        })

        # Global expert shared by the tasks.
        if use_global_expert:
            self.global_norm = build_norm_layer(token_norm_cfg, channels)[1]
            self.global_expert = GlobalExpert(
                channels,
                self.tasks,
                global_hidden_channels or channels,
                num_experts=num_global_experts,
                task_embed_dims=global_task_embed_dims,
                act_layer=act_layer)
        else:
            self.global_norm = None
            self.global_expert = None

        # Prediction heads and losses.
        self.pred_heads = nn.ModuleDict({
            task:
            nn.Sequential(
                ConvModule(channels,
                           channels,
                           3,
                           padding=1,
                           norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
                nn.Conv2d(channels, self.out_channels[task], 1))
            for task in self.tasks
        })
        self.losses = nn.ModuleDict({
            task:
            MODELS.build(self._loss_cfg(task, losses or {}))
            for task in self.tasks
        })

    def _resolve_out_channels(self, num_classes: Dict[str,
                                                      int]) -> Dict[str, int]:
        out = {}
        for task in self.tasks:
            if task in num_classes:
                out[task] = int(num_classes[task])
            elif task in DEFAULT_OUT_CHANNELS:
                out[task] = DEFAULT_OUT_CHANNELS[task]
            else:
                raise ValueError(
                    f'FGMoEHead.num_classes must give the number of classes '
                    f'of task {task!r} (got num_classes={num_classes})')
        return out

    @staticmethod
    def _loss_cfg(task: str, losses: Dict[str, dict]) -> dict:
        if task not in losses:
            raise ValueError(
                f'FGMoEHead.losses has no loss for task {task!r} (it has '
                f'{sorted(losses)}); every predicted task needs one, e.g. '
                'from configs/_base_/models/fgmoe_vit.py')
        return copy.deepcopy(losses[task])

    def aggregate(self, inputs: Sequence[Tensor]) -> Tensor:
        """Feature aggregator.

        Args:
            inputs (Sequence[Tensor]): Backbone levels ``[B, C_l, h, w]``.

        Returns:
            Tensor: ``[B, D, H, W]`` with ``(H, W) = agg_scale_factor *
            (h, w)`` of the first used level.
        """
        first = inputs[self.in_index[0]]
        size = (int(first.shape[2] * self.agg_scale_factor),
                int(first.shape[3] * self.agg_scale_factor))
        levels = [
            resize(conv(inputs[i]),
                   size=size,
                   mode='bilinear',
                   align_corners=self.align_corners)
            for conv, i in zip(self.agg_convs, self.in_index)
        ]  # L x [B, agg, H, W]
        return self.agg_fuse(torch.cat(levels, dim=1))  # [B, D, H, W]

    def forward_with_stats(
        self,
        inputs: Sequence[Tensor],
        batch_img_metas: Optional[Sequence[dict]] = None
    ) -> Tuple[Dict[str, Tensor], List[RouterStats]]:
        """Forward pass that also returns the routers' statistics.

        Args:
            inputs (Sequence[Tensor]): Backbone levels ``[B, C_l, h, w]``.
            batch_img_metas (Sequence[dict], optional): Image metas
                (``img_shape``, ``pad_shape``); when given, the statistics
                leave out the tokens on padding.

        Returns:
            tuple[dict[str, Tensor], list[RouterStats]]: Logits per task
            ``[B, C_t, H, W]`` (at the aggregator scale) and one
            :class:`RouterStats` per task MoE layer, task-major (empty when
            ``moe=False``).
        """
        logits, stats, _, _ = self._forward(inputs, False, batch_img_metas)
        return logits, [s for task in self.tasks for s in stats[task]]

    def forward_routing(
        self,
        inputs: Sequence[Tensor],
        batch_img_metas: Optional[Sequence[dict]] = None
    ) -> Tuple[Dict[str, Tensor], HeadRouting]:
        """Forward pass that also returns what every router and the global
        expert decided, token by token (for analysis; costs a little more
        than :meth:`forward_with_stats`).

        Args:
            inputs (Sequence[Tensor]): Backbone levels ``[B, C_l, h, w]``.
            batch_img_metas (Sequence[dict], optional): Image metas; when
                given, ``HeadRouting.valid`` marks the tokens on the image
                and the load statistics count only those.

        Returns:
            tuple[dict[str, Tensor], HeadRouting]: Logits per task and the
            routing record.
        """
        logits, stats, gate, valid = self._forward(inputs, True,
                                                   batch_img_metas)
        first = next(iter(logits.values()))
        hw_shape = tuple(first.shape[2:])
        global_gate = None if gate is None else gate.reshape(
            len(self.tasks), first.shape[0], *hw_shape)  # [T, B, H, W]
        return logits, HeadRouting(stats, global_gate, hw_shape, valid)

    def _forward(
        self,
        inputs: Sequence[Tensor],
        return_routing: bool,
        batch_img_metas: Optional[Sequence[dict]] = None
    ) -> Tuple[Dict[str, Tensor], Dict[str, List[RouterStats]],
               Optional[Tensor], Optional[Tensor]]:
        """Logits per task, router statistics per task (block order), the
        global gate ``[T, B, L, 1]`` (None without a global expert) and the
        valid-token mask ``[B, H, W]`` (None without metas)."""
        x = self.aggregate(inputs)  # [B, D, H, W]
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # [B, L, D]
        valid = token_valid = None
        if batch_img_metas is not None:
            valid = valid_tokens(batch_img_metas, (height, width),
                                 x.device)  # [B, H, W]
            token_valid = valid.flatten(1)  # [B, L]
        global_out = global_gate = None
        if self.global_expert is not None:
            global_out, global_gate = self.global_expert(
                self.global_norm(tokens))  # [T, B, L, D], [T, B, L, 1]
        logits, stats = {}, {}
        for index, task in enumerate(self.tasks):
            y, stats[task] = tokens, []
            for block in self.branches[task]:
                y, block_stats = block(y, (height, width), return_routing,
                                       token_valid)  # [B, L, D]
                if block_stats is not None:
                    stats[task].append(block_stats)
            if global_out is not None:
                y = y + global_out[index]
            y = y.transpose(1, 2).reshape(batch, channels, height,
                                          width)  # [B, D, H, W]
            logits[task] = self.pred_heads[task](y)  # [B, C_t, H, W]
        return logits, stats, global_gate, valid

    def forward(self, inputs: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Args:
            inputs (Sequence[Tensor]): Backbone levels ``[B, C_l, h, w]``.

        Returns:
            dict[str, Tensor]: Raw logits per task ``[B, C_t, H, W]`` at the
            aggregator scale.
        """
        return self.forward_with_stats(inputs)[0]

    def loss(self,
             inputs: Sequence[Tensor],
             batch_data_samples: SampleList,
             train_cfg: OptConfigType = None) -> Dict[str, Tensor]:
        """Forward and compute the losses.

        Args:
            inputs (Sequence[Tensor]): Backbone levels.
            batch_data_samples (list[SegDataSample]): Samples carrying the
                ``gt_*`` field of every task.
            train_cfg (dict, optional): Unused; mmseg head signature.

        Returns:
            dict[str, Tensor]: See :meth:`loss_by_feat`.
        """
        # The balance loss balances the experts' load on the image, not on
        # the padding that fills the batch.
        logits, stats = self.forward_with_stats(
            inputs, [sample.metainfo for sample in batch_data_samples])
        return self.loss_by_feat(logits, batch_data_samples, stats)

    def loss_by_feat(
        self,
        seg_logits: Dict[str, Tensor],
        batch_data_samples: SampleList,
        router_stats: Sequence[RouterStats] = ()
    ) -> Dict[str, Tensor]:
        """Per-task losses and the MoE balance loss.

        Logits are upsampled (bilinear) to the label size first.

        Args:
            seg_logits (dict[str, Tensor]): ``{task: [B, C_t, H, W]}``.
            batch_data_samples (list[SegDataSample]): Samples with labels.
            router_stats (Sequence[RouterStats]): From
                :meth:`forward_with_stats`.

        Returns:
            dict[str, Tensor]: ``loss_<task>`` for every task (weighted) and
            ``loss_moe_balance`` when there are routers.
        """
        targets = {
            task: _stack_gt(batch_data_samples, task)  # [B, c, H, W]
            for task in self.tasks
        }
        limits = {  # class-id tasks: (num_classes, ignore_index)
            task: (self.out_channels[task],
                   getattr(self.losses[task], 'ignore_index',
                           TASK_SPECS[task].pad_value))
            for task in self.tasks if task not in DEFAULT_OUT_CHANNELS
        }
        _check_class_ids({task: targets[task]
                          for task in limits}, limits, batch_data_samples)
        losses = {}
        for task in self.tasks:
            target = targets[task]
            pred = resize(seg_logits[task],
                          size=target.shape[2:],
                          mode='bilinear',
                          align_corners=self.align_corners)
            try:
                losses[f'loss_{task}'] = self.losses[task](pred, target)
            except ValueError as err:  # e.g. shapes: name the task too
                raise ValueError(f'FGMoEHead, task {task!r}: {err}') from err
        if router_stats:
            losses['loss_moe_balance'] = (self.balance_loss_weight *
                                          switch_balance_loss(router_stats))
        return losses

    def predict(self,
                inputs: Sequence[Tensor],
                batch_img_metas: List[dict],
                test_cfg: OptConfigType = None) -> Dict[str, Tensor]:
        """Forward and upsample the logits to the (padded) input size.

        Args:
            inputs (Sequence[Tensor]): Backbone levels.
            batch_img_metas (list[dict]): Image metas (``pad_shape`` or
                ``img_shape``).
            test_cfg (dict, optional): Unused; mmseg head signature.

        Returns:
            dict[str, Tensor]: ``{task: [B, C_t, H_in, W_in]}`` logits.
        """
        return self.predict_by_feat(self.forward(inputs), batch_img_metas)

    def predict_by_feat(self, seg_logits: Dict[str, Tensor],
                        batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Upsample every task's logits to the batch input size.

        Args:
            seg_logits (dict[str, Tensor]): ``{task: [B, C_t, H, W]}``.
            batch_img_metas (list[dict]): Image metas.

        Returns:
            dict[str, Tensor]: ``{task: [B, C_t, H_in, W_in]}``.
        """
        meta = batch_img_metas[0]
        size = meta.get('pad_shape', meta['img_shape'])[:2]
        return {
            task:
            resize(logit,
                   size=size,
                   mode='bilinear',
                   align_corners=self.align_corners)
            for task, logit in seg_logits.items()
        }
