# Copyright (c) mmfgmoe contributors. All rights reserved.
"""tools/analysis_tools/get_flops.py: parameter split and FLOP handles."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from _tool_loader import load_tool
from mmengine.config import Config

from mmfgmoe.models.layers import DeformableMixer

ROOT = osp.join(osp.dirname(__file__), '..', '..')


@pytest.fixture(scope='module')
def get_flops():
    return load_tool('analysis_tools/get_flops.py')


def test_deform_conv_counted_like_a_convolution(get_flops):
    mixer = DeformableMixer(8).eval()
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False).eval()
    x = torch.randn(1, 8, 6, 7)
    analyzer = FlopAnalyzer(mixer, (x, ))
    analyzer.set_op_handle(get_flops.DEFORM_CONV_OP,
                           get_flops.deform_conv_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    want = FlopAnalyzer(conv, (x, )).total()
    # The offset-predicting conv (8 -> 18 channels) is counted as well.
    offsets = FlopAnalyzer(mixer.conv.conv_offset, (x, )).total()
    assert analyzer.total() == want + offsets


def test_sdpa_handle_counts_both_products(get_flops):

    class Attention(nn.Module):

        def forward(self, q, k, v):
            return nn.functional.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7,
                                                   4), torch.randn(2, 3, 7, 6)
    analyzer = FlopAnalyzer(Attention(), (q, k, v))
    analyzer.set_op_handle(get_flops.SDPA_OP, get_flops.sdpa_flop_jit)
    assert analyzer.total() == 2 * 3 * 5 * 7 * (4 + 6)


def test_complexity_of_the_cpu_config(get_flops):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'fgmoe_vit-tiny_synth-room-nyud.py'))
    result = get_flops.complexity(cfg, (64, 96))
    assert result['backbone_trainable'] == 0
    assert result['trainable'] == result['decode_head'] == \
        result['decode_head_trainable']
    assert result['total'] == result['backbone'] + result['decode_head']
    assert 0 < result['backbone_flops'] < result['flops']
    parts = result['backbone_flops'] + result['decode_head_flops']
    assert parts <= result['flops'] <= 1.01 * parts
    assert get_flops.DEFORM_CONV_OP not in result['unsupported_ops']
    assert get_flops.SDPA_OP not in result['unsupported_ops']
