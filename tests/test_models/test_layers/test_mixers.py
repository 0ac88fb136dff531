# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Token mixers and the FGMoE block."""
import pytest
import torch
import torch.nn as nn

from mmseg.registry import MODELS
from mmfgmoe.models.layers import (DeformableMixer, DepthwiseConvMixer,
                                   FGMoEBlock, TorchDeformConv2dPack)


@pytest.mark.parametrize('cfg', [
    dict(type='DeformableMixer', kernel_size=3),
    dict(type='DeformableMixer', conv_cfg=dict(type='TorchDCN')),
    dict(type='DepthwiseConvMixer', kernel_size=5),
])
def test_mixers_preserve_shape_and_train(cfg):
    torch.manual_seed(0)
    mixer = MODELS.build(dict(cfg, channels=8))
    x = torch.randn(2, 8, 6, 7, requires_grad=True)
    y = mixer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    for name, param in mixer.named_parameters():
        assert param.grad is not None, name


def test_deformable_mixer_offsets_are_learned():
    torch.manual_seed(0)
    mixer = DeformableMixer(8)
    # Offsets start at zero: the layer starts as a plain convolution.
    x = torch.randn(1, 8, 5, 5)
    plain = nn.functional.conv2d(x, mixer.conv.weight, padding=1)
    torch.testing.assert_close(mixer(x), plain, atol=1e-5, rtol=1e-5)
    mixer(x).square().sum().backward()
    assert mixer.conv.conv_offset.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('groups,deform_groups,size', [(1, 1, (7, 9)),
                                                       (2, 2, (5, 6)),
                                                       (1, 4, (3, 4))])
def test_torch_deform_conv_matches_mmcv(groups, deform_groups, size):
    """Same parameters, same outputs and gradients as mmcv's kernel, with
    offsets large enough to sample outside the image."""
    from mmcv.ops import DeformConv2dPack
    torch.manual_seed(0)
    ref = DeformConv2dPack(8,
                           8,
                           3,
                           padding=1,
                           groups=groups,
                           deform_groups=deform_groups)
    nn.init.normal_(ref.conv_offset.weight, std=0.5)
    nn.init.normal_(ref.conv_offset.bias, std=2.)
    ours = TorchDeformConv2dPack(8,
                                 8,
                                 3,
                                 padding=1,
                                 groups=groups,
                                 deform_groups=deform_groups)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 8, *size, requires_grad=True)
    out_ref, out = ref(x), ours(x)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out)
    params_ref = [x, ref.weight, ref.conv_offset.weight]
    params = [x, ours.weight, ours.conv_offset.weight]
    for got, want in zip(
            torch.autograd.grad((out * weights).sum(), params),
            torch.autograd.grad((out_ref * weights).sum(), params_ref)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('groups', [1, 2])
def test_torch_deform_conv_with_bias_starts_as_plain_conv(groups):
    """mmcv's layer has no bias; ours may. With zero offsets it is the
    grouped convolution with that bias, outputs and gradients."""
    torch.manual_seed(0)
    layer = TorchDeformConv2dPack(8, 6, 3, padding=1, groups=groups,
                                  bias=True)
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 8, 4, 5, requires_grad=True)
    out = layer(x)
    plain = nn.functional.conv2d(x, layer.weight, layer.bias, padding=1,
                                 groups=groups)
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(out)
    params = [x, layer.weight, layer.bias]
    for got, want in zip(torch.autograd.grad((out * weights).sum(), params),
                         torch.autograd.grad((plain * weights).sum(), params)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_torch_deform_conv_rejects_stride():
    with pytest.raises(ValueError, match='stride'):
        TorchDeformConv2dPack(4, 4, 3, stride=2)


def test_mixer_rejects_even_kernel():
    with pytest.raises(ValueError, match='odd'):
        DepthwiseConvMixer(8, kernel_size=2)


def test_fgmoe_block_keeps_the_token_grid_row_major():
    """Tokens -> [B, D, H, W] -> tokens keeps each token at its (row, col):
    a mixer that shifts by one column moves token (i, j + 1) to (i, j) on a
    non-square grid (a swapped H/W would scramble it, same shapes)."""
    torch.manual_seed(0)
    height, width, dims = 3, 4, 8
    block = FGMoEBlock(dims, dict(type='DepthwiseConvMixer'),
                       dict(type='LN'), nn.GELU, num_experts=2, top_k=1,
                       num_shared_experts=0, renormalize=False)
    with torch.no_grad():
        block.mixer.dwconv.weight.zero_()
        block.mixer.dwconv.weight[:, 0, 1, 2] = 1.  # out[i, j] = in[i, j+1]
        block.mixer.dwconv.bias.zero_()
        block.mixer.pwconv.weight.copy_(torch.eye(dims)[:, :, None, None])
        block.mixer.pwconv.bias.zero_()
        block.moe.w2.zero_()  # the MoE adds nothing
        block.moe.b2.zero_()
    x = torch.randn(2, height * width, dims)
    y, _ = block(x, (height, width))
    mixed = (y - x).view(2, height, width, dims)
    normed = block.norm1(x).view(2, height, width, dims)
    torch.testing.assert_close(mixed[:, :, :-1], normed[:, :, 1:])
    torch.testing.assert_close(mixed[:, :, -1],
                               torch.zeros_like(mixed[:, :, -1]))


def test_fgmoe_block_tokens_roundtrip():
    torch.manual_seed(0)
    block = FGMoEBlock(16,
                       dict(type='DepthwiseConvMixer'),
                       dict(type='LN'),
                       nn.GELU,
                       num_experts=4,
                       top_k=2,
                       num_shared_experts=1)
    x = torch.randn(2, 3 * 4, 16)
    y, stats = block(x, (3, 4))
    assert y.shape == x.shape and stats.expert_fraction.shape == (4, )
    dense = FGMoEBlock(16,
                       dict(type='DepthwiseConvMixer'),
                       dict(type='LN'),
                       nn.GELU,
                       moe=False)
    y, stats = dense(x, (3, 4))
    assert y.shape == x.shape and stats is None
