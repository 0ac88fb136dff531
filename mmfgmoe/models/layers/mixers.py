# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Spatial token mixers for the FGMoE task branches (``[B, C, H, W]`` in and
out, shape preserving).

The task branch of FGMoE mixes tokens with a deformable convolution before
its task MoE (public figure caption of arXiv 2507.19077); a depth-wise
convolution mixer is our cheaper alternative. Both are registered in mmseg's
``MODELS`` so a config selects one with ``mixer_cfg=dict(type=...)``; the
deformable convolution itself is a config too (``conv_cfg``): mmcv's
``DeformConv2dPack`` (``'DCN'``, CUDA kernels) or
:class:`TorchDeformConv2dPack` (``'TorchDCN'``, the same operator in plain
PyTorch, several times faster than mmcv's CPU kernel).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import ConfigType

__all__ = [
    'deform_conv2d_grid_sample', 'TorchDeformConv2dPack', 'DeformableMixer',
    'DepthwiseConvMixer'
]


def deform_conv2d_grid_sample(x: Tensor,
                              offset: Tensor,
                              weight: Tensor,
                              bias: Optional[Tensor] = None,
                              padding: int = 0,
                              groups: int = 1,
                              deform_groups: int = 1) -> Tensor:
    """Deformable convolution (DCNv1, stride 1, dilation 1) with
    ``F.grid_sample``.

    Same operator and offset layout as ``mmcv.ops.deform_conv2d``: kernel
    tap ``n = i * k_w + j`` of deformable group ``g`` samples the input
    bilinearly (zero outside) at ``(y - padding + i + dy, x - padding + j +
    dx)`` with ``(dy, dx) = offset[:, 2 * (g * k_h * k_w + n) + (0, 1)]``;
    the samples are then contracted with ``weight`` like a convolution.

    Args:
        x (Tensor): ``[B, C, H, W]`` input.
        offset (Tensor): ``[B, deform_groups * 2 * k_h * k_w, H, W]``.
        weight (Tensor): ``[C_out, C / groups, k_h, k_w]``.
        bias (Tensor, optional): ``[C_out]``.
        padding (int): Zero padding (output keeps ``H x W`` when
            ``padding = k // 2``). Defaults to 0.
        groups (int): Convolution groups. Defaults to 1.
        deform_groups (int): Channel groups with their own offsets.
            Defaults to 1.

    Returns:
        Tensor: ``[B, C_out, H_out, W_out]``, ``H_out = H + 2 * padding -
        k_h + 1``.
    """
    batch, channels, height, width = x.shape
    # Python ints (static under jit tracing, e.g. the FLOP counter).
    out_channels, _, k_h, k_w = (int(size) for size in weight.shape)
    out_h = height + 2 * padding - k_h + 1
    out_w = width + 2 * padding - k_w + 1
    taps = k_h * k_w
    # Each deformable group samples its own channels: fold it into the batch.
    x_g = x.reshape(batch * deform_groups, channels // deform_groups, height,
                    width)  # [B*dg, C/dg, H, W]
    offset = offset.reshape(batch * deform_groups, taps, 2, out_h,
                            out_w)  # [B*dg, k*k, (dy, dx), Ho, Wo]
    tap_y, tap_x = torch.meshgrid(
        torch.arange(k_h, dtype=x.dtype, device=x.device),
        torch.arange(k_w, dtype=x.dtype, device=x.device),
        indexing='ij')  # [k_h, k_w] each
    pos_y = (torch.arange(out_h, dtype=x.dtype, device=x.device).view(
        1, 1, out_h, 1) - padding + tap_y.reshape(1, taps, 1, 1) +
             offset[:, :, 0])  # [B*dg, k*k, Ho, Wo] pixels
    pos_x = (torch.arange(out_w, dtype=x.dtype, device=x.device).view(
        1, 1, 1, out_w) - padding + tap_x.reshape(1, taps, 1, 1) +
             offset[:, :, 1])
    # Pixel index -> grid_sample's [-1, 1] (align_corners=False).
    grid = torch.stack(((2 * pos_x + 1) / width - 1,
                        (2 * pos_y + 1) / height - 1),
                       dim=-1)  # [B*dg, k*k, Ho, Wo, 2]
    # One sampling call for every tap (a call per tap costs ~3x the time,
    # mostly in backward).
    cols = F.grid_sample(
        x_g,
        grid.view(batch * deform_groups, taps * out_h, out_w, 2),
        mode='bilinear',
        padding_mode='zeros',
        align_corners=False)  # [B*dg, C/dg, k*k*Ho, Wo]
    # Channel-major (c, tap) columns, the order of weight.flatten(1); each
    # convolution group's columns are contiguous.
    group_in, group_out = (channels // groups) * taps, out_channels // groups
    cols = cols.view(batch * groups, group_in,
                     out_h * out_w)  # [B*g, C/g*k*k, Ho*Wo]
    # A batched product, not a 1x1 F.conv2d: oneDNN's backward of that
    # convolution on these NCHW columns is slow; the layer runs 8-16% faster
    # at the decoder's sizes on 2 CPU threads (timed against the convolution
    # side by side).
    kernel = weight.reshape(1, groups, group_out, group_in).expand(
        batch, -1, -1, -1).reshape(batch * groups, group_out,
                                   group_in)  # [B*g, O/g, C/g*k*k]
    out = torch.bmm(kernel, cols).view(batch, out_channels, out_h,
                                       out_w)  # [B, O, Ho, Wo]
    return out if bias is None else out + bias.view(1, -1, 1, 1)


@MODELS.register_module('TorchDCN')
class TorchDeformConv2dPack(nn.Module):
    """mmcv's ``DeformConv2dPack`` (stride 1, dilation 1) in plain PyTorch.

    Same arguments, parameters (``weight``, ``conv_offset.weight/bias``,
    optional ``bias``), zero-initialised offsets and results (to float
    rounding) as ``mmcv.ops.DeformConv2dPack``, so checkpoints move between
    the two. Built on ``F.grid_sample`` (see
    :func:`deform_conv2d_grid_sample`); on CPU it is several times faster
    than mmcv's kernel, on GPU prefer mmcv's (``type='DCN'``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Square kernel size.
        stride (int): Must be 1. Defaults to 1.
        padding (int): Zero padding. Defaults to 0.
        dilation (int): Must be 1. Defaults to 1.
        groups (int): Convolution groups. Defaults to 1.
        deform_groups (int): Offset groups. Defaults to 1.
        bias (bool): Add a bias. Defaults to False (like mmcv).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 padding: int = 0,
                 dilation: int = 1,
                 groups: int = 1,
                 deform_groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__()
        if stride != 1 or dilation != 1:
            raise ValueError('TorchDeformConv2dPack supports stride=1 and '
                             f'dilation=1 only, got {stride}, {dilation}')
        if in_channels % groups or out_channels % groups or \
                in_channels % deform_groups:
            raise ValueError(
                f'in_channels={in_channels}/out_channels={out_channels} must '
                f'be divisible by groups={groups} and in_channels by '
                f'deform_groups={deform_groups}')
        self.padding = padding
        self.groups = groups
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, kernel_size,
                        kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.conv_offset = nn.Conv2d(in_channels,
                                     deform_groups * 2 * kernel_size *
                                     kernel_size,
                                     kernel_size,
                                     padding=padding,
                                     bias=True)
        # mmcv's initialisation: uniform weight, zero offsets.
        fan_in = in_channels * kernel_size * kernel_size
        bound = 1. / fan_in**0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): ``[B, C_in, H, W]``.

        Returns:
            Tensor: ``[B, C_out, H_out, W_out]``.
        """
        return deform_conv2d_grid_sample(x, self.conv_offset(x), self.weight,
                                         self.bias, self.padding, self.groups,
                                         self.deform_groups)


@MODELS.register_module()
class DeformableMixer(nn.Module):
    """``k x k`` deformable convolution whose offsets are predicted from the
    input (offsets start at zero, so the layer starts as a plain
    convolution).

    Args:
        channels (int): Input and output channels.
        kernel_size (int): Kernel size (odd). Defaults to 3.
        groups (int): Convolution groups. Defaults to 1.
        deform_groups (int): Offset groups. Defaults to 1.
        conv_cfg (dict): The deformable convolution: ``dict(type='DCN')``
            (``mmcv.ops.DeformConv2dPack``, the default) or
            ``dict(type='TorchDCN')`` (:class:`TorchDeformConv2dPack`, the
            same operator in plain PyTorch; faster on CPU).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        groups: int = 1,
        deform_groups: int = 1,
        conv_cfg: ConfigType = dict(type='DCN')) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.conv = MODELS.build(
            dict(conv_cfg,
                 in_channels=channels,
                 out_channels=channels,
                 kernel_size=kernel_size,
                 padding=kernel_size // 2,
                 groups=groups,
                 deform_groups=deform_groups))

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): ``[B, C, H, W]``.

        Returns:
            Tensor: ``[B, C, H, W]``.
        """
        x = x.contiguous()  # the mmcv op needs contiguous input
        device = x.device.type
        if torch.is_autocast_enabled(device) and not isinstance(
                self.conv, TorchDeformConv2dPack):
            # mmcv's kernels take no bf16, and in fp16 they compute the
            # sampling positions and sum the offset gradients (already
            # multiplied by the loss scale) in half precision: positions snap
            # to 1/32 px and the sums overflow. fp32 costs little here.
            with torch.autocast(device, enabled=False):
                return self.conv(x.float())
        return self.conv(x)


@MODELS.register_module()
class DepthwiseConvMixer(nn.Module):
    """Depth-wise ``k x k`` convolution followed by a point-wise ``1 x 1``
    convolution.

    Args:
        channels (int): Input and output channels.
        kernel_size (int): Depth-wise kernel size (odd). Defaults to 3.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.dwconv = nn.Conv2d(channels,
                                channels,
                                kernel_size,
                                padding=kernel_size // 2,
                                groups=channels)
        self.pwconv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): ``[B, C, H, W]``.

        Returns:
            Tensor: ``[B, C, H, W]``.
        """
        return self.pwconv(self.dwconv(x))
