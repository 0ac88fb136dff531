# Copyright (c) mmfgmoe contributors. All rights reserved.
"""mmcv's deformable convolution (``type='DCN'``) vs. our plain-PyTorch one
(``type='TorchDCN'``) with the same weights: agreement and speed.

For each input size the two layers get the same weights and learned (non-zero)
offsets; the script prints the largest relative difference (max |a - b| over
max |a|, per tensor) of outputs and of every gradient, and forward+backward
times (median over repeats, interleaved in one
process). On CUDA this checks the compiled mmcv kernel against an independent
implementation; on CPU it shows why the CPU configs use ``TorchDCN``.

    python tools/analysis_tools/benchmark_dcn.py [--device cuda]
        [--shape 4 256 56 72 ...] [--repeats 10]

Last line: ``torchdcn_vs_mmcv_time=<x> max_rel_diff=<y>`` (time at the first
shape; the difference is the largest over all shapes, outputs and
gradients).
"""
import argparse
from typing import Dict

import torch
from mmcv.ops import DeformConv2dPack

from mmfgmoe.models.layers.mixers import TorchDeformConv2dPack
from mmfgmoe.utils.profiling import interleaved_median_times


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, nargs='+',
                        default=[4, 256, 56, 72, 4, 256, 28, 36],
                        metavar='B C H W',
                        help='input sizes as batch channels height width; '
                        'default: the NYUD decoder at 448x576 (1/8 and 1/16)')
    parser.add_argument('--kernel-size', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if len(args.shape) % 4:
        parser.error(f'--shape takes B C H W groups, got {args.shape}')
    args.shape = [tuple(args.shape[i:i + 4])
                  for i in range(0, len(args.shape), 4)]
    return args


def _pair(channels: int, kernel_size: int,
          device: str) -> Dict[str, torch.nn.Module]:
    """The two layers with identical weights and random offset predictors
    (the zero initialisation would make both plain convolutions)."""
    mmcv_dcn = DeformConv2dPack(channels, channels, kernel_size,
                                padding=kernel_size // 2).to(device)
    torch.nn.init.normal_(mmcv_dcn.conv_offset.weight, std=0.02)
    torch.nn.init.normal_(mmcv_dcn.conv_offset.bias, std=0.5)
    torch_dcn = TorchDeformConv2dPack(channels, channels, kernel_size,
                                      padding=kernel_size // 2).to(device)
    torch_dcn.load_state_dict(mmcv_dcn.state_dict())  # same keys
    return dict(mmcv=mmcv_dcn, torch=torch_dcn)


def _max_rel_diff(layers: Dict[str, torch.nn.Module],
                  x: torch.Tensor) -> float:
    results = []
    for layer in layers.values():
        layer.zero_grad()
        inp = x.detach().clone().requires_grad_()
        out = layer(inp)
        out.backward(torch.linspace(-1, 1, out.numel(),
                                    device=out.device).view_as(out))
        results.append([out.detach(), inp.grad] +
                       [p.grad for p in layer.parameters()])
    return max(
        float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
        for a, b in zip(*results))


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    print(f'device={args.device} kernel={args.kernel_size} '
          f'threads={torch.get_num_threads()}')
    print(f'{"B x C x H x W":>18} {"mmcv ms":>9} {"torch ms":>9} '
          f'{"torch/mmcv":>10} {"max rel diff":>12}')
    ratios, diffs = [], []
    for shape in args.shape:
        layers = _pair(shape[1], args.kernel_size, args.device)
        x = torch.randn(*shape, device=args.device, requires_grad=True)
        diffs.append(_max_rel_diff(layers, x))
        steps = {name: (lambda m=layer: m(x).sum().backward())
                 for name, layer in layers.items()}
        times = interleaved_median_times(steps, args.repeats, args.warmup,
                                         args.device)
        ratios.append(times['torch'] / times['mmcv'])
        size = ' x '.join(str(s) for s in shape)
        print(f'{size:>18} {times["mmcv"] * 1e3:>9.2f} '
              f'{times["torch"] * 1e3:>9.2f} {ratios[-1]:>10.3f} '
              f'{diffs[-1]:>12.2e}')
    print(f'torchdcn_vs_mmcv_time={ratios[0]:.3f} '
          f'max_rel_diff={max(diffs):.2e}')


if __name__ == '__main__':
    main()
