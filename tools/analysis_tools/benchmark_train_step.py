# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Training-step cost of decoder-only fine-tuning vs. full fine-tuning.

Builds the same model twice — ``freeze_backbone=True`` (the FGMoE protocol:
backbone without autograd, not in the optimizer) and ``False`` (everything
trains) — and times complete training steps (data preprocessor, forward,
losses, backward, optimizer step) on random images, the two interleaved in
one process, median over repeats, at each input size. Memory: what a step
needs beyond the weights, which is what freezing changes: on CUDA the
allocator's peak above the memory allocated before the step plus the
optimizer state; on CPU the bytes autograd keeps alive for backward (the
weights left out) plus gradients plus optimizer state.

    python tools/analysis_tools/benchmark_train_step.py [CONFIG]
        [--shape 224 288 448 576] [--batch-size 2] [--repeats 5]

Also prints the FLOP bound of the time ratio: a training step costs about
one forward for a frozen part and three (forward, input and weight
gradients) for a trained one, so with forward FLOPs ``B`` (backbone) and
``D`` (decoder), frozen/full >= (B + 3D) / (3B + 3D) whatever the hardware.

``--routing-hook N`` also times :class:`RoutingStatsHook`'s extra decoder
pass (interleaved with the frozen steps) and prints its share of the step
time when it logs every ``N`` iterations.

Last line: ``frozen_vs_full_time=<x> frozen_vs_full_mem=<y>`` at the first
``--shape``.
"""
import argparse
import copy
import os.path as osp
import sys
from typing import Dict, List

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData

from mmfgmoe.engine.hooks import RoutingStatsHook
from mmfgmoe.utils import TASK_SPECS
from mmfgmoe.utils.cli import add_cfg_options, load_config_file
from mmfgmoe.utils.profiling import (autograd_saved_bytes,
                                     cuda_step_peak_bytes,
                                     interleaved_median_times)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from get_flops import complexity  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default='configs/fgmoe_nyud.py')
    parser.add_argument('--shape', type=int, nargs='+',
                        default=[224, 288, 448, 576], metavar='H W',
                        help='input sizes as height width pairs; the last '
                        'line is for the first')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--routing-hook', type=int, default=None,
                        metavar='INTERVAL',
                        help='also measure RoutingStatsHook at this interval')
    add_cfg_options(parser)
    args = parser.parse_args()
    if len(args.shape) % 2:
        parser.error(f'--shape takes height width pairs, got {args.shape}')
    args.shape = list(zip(args.shape[::2], args.shape[1::2]))
    return args


def _random_batch(tasks: List[str], num_classes: Dict[str, int], shape,
                  batch_size: int) -> dict:
    """A data batch as the dataloader yields it (uint8 images, labels)."""
    height, width = shape
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, (3, height, width),
                                    dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            pad_shape=(height, width), flip=False))
        for task in tasks:
            spec = TASK_SPECS[task]
            if spec.classes_key:
                label = torch.randint(0, num_classes[task], (1, height, width))
            elif spec.discrete:
                label = torch.randint(0, 2, (1, height, width))
            elif task == 'depth':
                label = torch.rand(1, height, width) * 5 + 0.5
            else:
                label = torch.nn.functional.normalize(
                    torch.randn(3, height, width), dim=0)
            sample.set_field(PixelData(data=label), spec.gt_field)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _build(cfg: Config, frozen: bool, device: str):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.freeze_backbone = frozen
    model_cfg.backbone.init_cfg = None
    if not frozen:
        model_cfg.backbone.frozen_stages = -1
    model = MODELS.build(model_cfg).to(device)
    model.train()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    if not frozen:  # full fine-tuning: the backbone trains at the base lr
        optim_cfg.get('paramwise_cfg', {}).get('custom_keys', {}).pop(
            'backbone', None)
    return model, build_optim_wrapper(model, optim_cfg)


def _loss(model, batch) -> torch.Tensor:
    data = model.data_preprocessor(batch, True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    return loss


def _step(model, optim_wrapper, batch) -> None:
    optim_wrapper.update_params(_loss(model, batch))


def _memory(model, optim_wrapper, batch, device: str) -> int:
    """What one training step of this variant needs beyond its weights:
    activations kept for backward, gradients and the optimizer state (on
    CUDA the step's peak above the memory allocated before it, which holds
    the other variant too, plus this variant's optimizer state)."""

    def state_bytes() -> int:
        return sum(v.numel() * v.element_size()
                   for s in optim_wrapper.optimizer.state.values()
                   for v in s.values() if torch.is_tensor(v))

    if device.startswith('cuda'):
        # (the timed steps have created the optimizer state)
        peak = cuda_step_peak_bytes(lambda: _step(model, optim_wrapper,
                                                  batch))
        return peak + state_bytes()
    optim_wrapper.zero_grad()
    saved = autograd_saved_bytes(lambda: _loss(model, batch),
                                 exclude=model.parameters())
    optim_wrapper.step()  # creates the optimizer state counted below
    grads = sum(p.grad.numel() * p.grad.element_size()
                for p in model.parameters() if p.grad is not None)
    return saved + grads + state_bytes()


def main() -> None:
    args = parse_args()
    cfg = load_config_file(args.config, args.cfg_options)
    head = cfg.model.decode_head
    variants = {name: _build(cfg, frozen, args.device)
                for name, frozen in (('frozen', True), ('full', False))}
    print(f'config={args.config} batch={args.batch_size} '
          f'device={args.device} threads={torch.get_num_threads()}')
    for name, (model, _) in variants.items():
        trainable = sum(p.numel() for p in model.parameters()
                        if p.requires_grad)
        print(f'{name:>6}: trainable {trainable:,}')
    print(f'{"shape":>9} {"variant":>7} {"step ms":>9} {"memory MiB":>11} '
          f'{"frozen/full":>11} {"FLOP bound":>10}')
    ratios = []
    for shape in args.shape:
        batch = _random_batch(head.tasks, head.num_classes, shape,
                              args.batch_size)
        steps = {name: (lambda m=model, o=optim_wrapper: _step(m, o, batch))
                 for name, (model, optim_wrapper) in variants.items()}
        if args.routing_hook:
            frozen_model = variants['frozen'][0]
            steps['routing hook'] = (lambda b=batch: RoutingStatsHook.collect(
                frozen_model, b))
        times = interleaved_median_times(steps, args.repeats, args.warmup,
                                         args.device)
        memory = {name: _memory(model, optim_wrapper, batch, args.device)
                  for name, (model, optim_wrapper) in variants.items()}
        flops = complexity(cfg, tuple(shape))
        backbone, decoder = flops['backbone_flops'], flops[
            'decode_head_flops']
        bound = (backbone + 3 * decoder) / (3 * backbone + 3 * decoder)
        ratio = (times['frozen'] / times['full'],
                 memory['frozen'] / memory['full'])
        ratios.append(ratio)
        size = f'{shape[0]}x{shape[1]}'
        for name in variants:
            extra = (f'{ratio[0]:>11.3f} {bound:>10.3f}'
                     if name == 'full' else '')
            print(f'{size:>9} {name:>7} {times[name] * 1e3:>9.1f} '
                  f'{memory[name] / 2**20:>11.1f} {extra}'.rstrip())
        print(f'{size:>9} forward GFLOPs per image: backbone '
              f'{backbone / 1e9:.1f}, decoder {decoder / 1e9:.1f}; FLOP '
              f'bound of frozen/full time: {bound:.3f}')
        if args.routing_hook:
            collect = times['routing hook']
            share = collect / (args.routing_hook * times['frozen'])
            print(f'{size:>9} RoutingStatsHook: {collect * 1e3:.1f} ms per '
                  f'logging pass, {100 * share:.2f}% of the frozen step time '
                  f'at interval {args.routing_hook}')
    time_ratio, mem_ratio = ratios[0]
    print(f'frozen_vs_full_time={time_ratio:.3f} '
          f'frozen_vs_full_mem={mem_ratio:.3f}')


if __name__ == '__main__':
    main()
