# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Training-step cost of decoder-only fine-tuning vs. full fine-tuning.

Builds the same model twice — ``freeze_backbone=True`` (the FGMoE protocol:
backbone without autograd, not in the optimizer) and ``False`` (everything
trains) — and times complete training steps (data preprocessor, forward,
losses, backward, optimizer step) on random images, the two interleaved in
one process, median over repeats. Memory: peak allocator memory on CUDA; on
CPU the bytes autograd saves for backward plus gradients plus optimizer
state, which is what freezing changes.

    python tools/analysis_tools/benchmark_train_step.py [CONFIG]
        [--shape 224 288] [--batch-size 2] [--repeats 5]

Also prints the FLOP bound of the time ratio: a training step costs about
one forward for a frozen part and three (forward, input and weight
gradients) for a trained one, so with forward FLOPs ``B`` (backbone) and
``D`` (decoder), frozen/full >= (B + 3D) / (3B + 3D) whatever the hardware.

``--routing-hook N`` also times :class:`RoutingStatsHook`'s extra decoder
pass (interleaved with the frozen steps) and prints its share of the step
time when it logs every ``N`` iterations.

Last line: ``frozen_vs_full_time=<x> frozen_vs_full_mem=<y>``.
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

import mmfgmoe  # noqa: F401
from mmfgmoe.engine.hooks import RoutingStatsHook
from mmfgmoe.utils import TASK_SPECS
from mmfgmoe.utils.profiling import autograd_saved_bytes
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from get_flops import complexity  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default='configs/fgmoe_nyud.py')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 288])
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--routing-hook', type=int, default=None,
                        metavar='INTERVAL',
                        help='also measure RoutingStatsHook at this interval')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


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
            if task in ('semseg', 'human_parts'):
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
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        _step(model, optim_wrapper, batch)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    optim_wrapper.zero_grad()
    saved = autograd_saved_bytes(lambda: _loss(model, batch))
    optim_wrapper.step()  # creates the optimizer state counted below
    grads = sum(p.grad.numel() * p.grad.element_size()
                for p in model.parameters() if p.grad is not None)
    state = sum(v.numel() * v.element_size()
                for s in optim_wrapper.optimizer.state.values()
                for v in s.values() if torch.is_tensor(v))
    return saved + grads + state


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    head = cfg.model.decode_head
    batch = _random_batch(head.tasks, head.num_classes, args.shape,
                          args.batch_size)
    variants = {name: _build(cfg, frozen, args.device)
                for name, frozen in (('frozen', True), ('full', False))}
    steps = {name: (lambda m=model, o=optim_wrapper: _step(m, o, batch))
             for name, (model, optim_wrapper) in variants.items()}
    if args.routing_hook:
        frozen_model = variants['frozen'][0]
        steps['routing hook'] = lambda: RoutingStatsHook.collect(
            frozen_model, batch)
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for i in range(args.warmup + args.repeats):
        for name, step in steps.items():
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    print(f'config={args.config} shape={tuple(args.shape)} '
          f'batch={args.batch_size} device={args.device} '
          f'threads={torch.get_num_threads()}')
    result = {}
    for name, (model, optim_wrapper) in variants.items():
        trainable = sum(p.numel() for p in model.parameters()
                        if p.requires_grad)
        memory = _memory(model, optim_wrapper, batch, args.device)
        result[name] = (statistics.median(times[name]), memory)
        print(f'{name:>6}: step {result[name][0] * 1e3:9.1f} ms  '
              f'memory {memory / 2**20:9.1f} MiB  trainable {trainable:,}')
    if args.routing_hook:
        collect = statistics.median(times['routing hook'])
        share = collect / (args.routing_hook * result['frozen'][0])
        print(f'RoutingStatsHook: {collect * 1e3:.1f} ms per logging pass, '
              f'{100 * share:.2f}% of the frozen step time at interval '
              f'{args.routing_hook}')
    flops = complexity(cfg, tuple(args.shape))
    backbone, decoder = flops['backbone_flops'], flops['decode_head_flops']
    print(f'FLOP bound of frozen/full time: '
          f'{(backbone + 3 * decoder) / (3 * backbone + 3 * decoder):.3f} '
          f'(forward GFLOPs per image: backbone {backbone / 1e9:.1f}, '
          f'decoder {decoder / 1e9:.1f})')
    print(f'frozen_vs_full_time={result["frozen"][0] / result["full"][0]:.3f} '
          f'frozen_vs_full_mem={result["frozen"][1] / result["full"][1]:.3f}')


if __name__ == '__main__':
    main()
