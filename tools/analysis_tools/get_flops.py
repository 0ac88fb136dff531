# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Trainable vs. total parameters and FLOPs of a multi-task config.

    python tools/analysis_tools/get_flops.py configs/fgmoe_nyud.py \
        [--shape H W] [--cfg-options ...]

FLOPs come from mmengine's jit-based analysis (``mmengine.analysis``, the
same counter as ``get_model_complexity_info``; one fused multiply-add counts
as one FLOP) on one image of the given shape; the MoE layers are traced with
their real (sparse) routing of that input, so only the experts that receive
tokens are counted. mmcv's deformable convolution is a custom autograd
function that the analysis cannot see into: it is counted here like a
convolution of the same shape (offset sampling not included), and fused
attention (``scaled_dot_product_attention``) by its two matrix products.
Element-wise ops (activations, softmax, additions) are not counted, as in
mmengine.
"""
import argparse
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmfgmoe.utils.cli import add_cfg_options, load_config_file

#: Op name of mmcv's deformable convolution in a traced graph.
DEFORM_CONV_OP = 'prim::PythonOp.DeformConv2dFunction'
#: Op of torch's fused attention (mmpretrain's attention uses it).
SDPA_OP = 'aten::scaled_dot_product_attention'
#: Input size used when neither ``--shape`` nor the backbone's ``img_size``
#: gives one.
FALLBACK_SHAPE = (512, 512)


def deform_conv_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``DeformConv2dFunction``: like a conv with its weight.

    Args:
        inputs (list): Traced inputs (input, offset, weight, ...).
        outputs (list): Traced outputs (``[N, C_out, H, W]``).

    Returns:
        int: ``N * C_out * H * W * C_in/groups * k_h * k_w``.
    """
    out_shape = get_shape(outputs[0])
    weight_shape = get_shape(inputs[2])  # [C_out, C_in/groups, k_h, k_w]
    flops = 1
    for size in out_shape + weight_shape[1:]:
        flops *= size
    return flops


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``scaled_dot_product_attention``: ``Q K^T`` and ``A V``.

    Args:
        inputs (list): Traced inputs (query ``[..., L, d]``, key
            ``[..., S, d]``, value ``[..., S, d_v]``, ...).
        outputs (list): Traced outputs.

    Returns:
        int: ``prod(batch dims) * L * S * (d + d_v)``.
    """
    query, key, value = (get_shape(v) for v in inputs[:3])
    batch = 1
    for size in query[:-2]:
        batch *= size
    return batch * query[-2] * key[-2] * (query[-1] + value[-1])


def parameter_counts(model: torch.nn.Module) -> Dict[str, int]:
    """Trainable and total parameters, overall and of backbone / decoder.

    Args:
        model (nn.Module): A segmentor with ``backbone`` and
            ``decode_head``.

    Returns:
        dict[str, int]: ``total``, ``trainable``, ``backbone``,
        ``backbone_trainable``, ``decode_head``, ``decode_head_trainable``.
    """
    counts = {}
    for name, module in (('total', model), ('backbone', model.backbone),
                         ('decode_head', model.decode_head)):
        params = list(module.parameters())
        key = '' if name == 'total' else f'{name}_'
        counts['total' if name == 'total' else name] = sum(p.numel()
                                                           for p in params)
        counts[f'{key}trainable'] = sum(p.numel() for p in params
                                        if p.requires_grad)
    return counts


def complexity(cfg: Config, shape: Tuple[int, int]) -> Dict[str, Any]:
    """Build ``cfg.model`` and measure parameters and FLOPs.

    Args:
        cfg (Config): A full config (model with data preprocessor).
        shape (tuple[int, int]): Input ``(H, W)`` before padding.

    Returns:
        dict: Parameter counts (see :func:`parameter_counts`) plus
        ``flops``, ``backbone_flops``, ``decode_head_flops``, ``pad_shape``
        and ``unsupported_ops`` (op name -> count).
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.eval()
    height, width = shape
    sample = SegDataSample(metainfo=dict(ori_shape=shape, img_shape=shape))
    data = model.data_preprocessor(dict(
        inputs=[torch.rand(3, height, width) * 255], data_samples=[sample]),
                                   training=False)
    analyzer = FlopAnalyzer(model, inputs=(data['inputs'], ))
    analyzer.set_op_handle(DEFORM_CONV_OP, deform_conv_flop_jit)
    analyzer.set_op_handle(SDPA_OP, sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    by_module = analyzer.by_module()
    result = parameter_counts(model)
    result.update(flops=analyzer.total(),
                  backbone_flops=by_module.get('backbone', 0),
                  decode_head_flops=by_module.get('decode_head', 0),
                  pad_shape=tuple(data['inputs'].shape[-2:]),
                  unsupported_ops=dict(analyzer.unsupported_ops()))
    return result


def _default_shape(cfg: Config) -> Tuple[int, int]:
    img_size = cfg.model.get('backbone', {}).get('img_size', None)
    if img_size is None:
        return FALLBACK_SHAPE
    if isinstance(img_size, int):
        return img_size, img_size
    return tuple(img_size)


def _fmt(value: int) -> str:
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if value >= scale:
            return f'{value / scale:.2f}{unit}'
    return str(value)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Trainable/total parameters and FLOPs of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        default=None,
        help='input size (default: the backbone img_size of the config)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    cfg = load_config_file(args.config, args.cfg_options)
    shape = tuple(args.shape) if args.shape else _default_shape(cfg)
    result = complexity(cfg, shape)
    line = '=' * 60
    print(line)
    print(f'Config: {args.config}')
    print(f'Input shape: {shape} (padded to {result["pad_shape"]})')
    print(f'Parameters: trainable {_fmt(result["trainable"])} '
          f'({result["trainable"]:,}) / total {_fmt(result["total"])} '
          f'({result["total"]:,}) = '
          f'{100. * result["trainable"] / max(result["total"], 1):.2f}%')
    print(f'  backbone:    {result["backbone_trainable"]:,} trainable / '
          f'{result["backbone"]:,}')
    print(f'  decode_head: {result["decode_head_trainable"]:,} trainable / '
          f'{result["decode_head"]:,}')
    print(f'FLOPs: {_fmt(result["flops"])} (backbone '
          f'{_fmt(result["backbone_flops"])}, decode_head '
          f'{_fmt(result["decode_head_flops"])})')
    if result['unsupported_ops']:
        print(f'Not counted (no FLOP handle): {result["unsupported_ops"]}')
    print(line)
    return result


if __name__ == '__main__':
    main()
