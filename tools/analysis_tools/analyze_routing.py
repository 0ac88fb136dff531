# Copyright (c) mmfgmoe contributors. All rights reserved.
"""See what the experts of a trained FGMoE decoder do.

Runs the model over a split and writes into ``--out``:

* ``routing_summary.json``: per task and MoE layer the expert counts and
  load shares, load statistics, router entropy and expert x class
  co-occurrence counts; per task the global-gate distribution (overall and
  per semantic class);
* ``expert_usage.png``: task x expert share of the assignments, per layer;
* ``cooccurrence_<task>.png``: which semantic classes each expert serves;
* ``global_gate.png``: gate histogram per task and mean gate per class;
* ``maps/<image>.png`` (first ``--num-maps`` images): top-1 expert per token
  for every task and layer, and the global gate per task, over the input.

    python tools/analysis_tools/analyze_routing.py \\
        configs/demo/fgmoe_vit-tiny_demo.py work_dirs/demo/fgmoe/iter_500.pth \\
        --out work_dirs/demo/routing --num-images 50
"""
import argparse
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.runner import Runner, load_checkpoint
from torch.utils.data import DataLoader

from mmfgmoe.evaluation import RoutingAccumulator
from mmfgmoe.models.decode_heads import HeadRouting, token_centres
from mmfgmoe.utils.cli import add_cfg_options, load_config_file
from mmfgmoe.visualization.routing_figures import (plot_class_cooccurrence,
                                                   plot_expert_usage,
                                                   plot_global_gate,
                                                   plot_routing_maps)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--split', default='test',
                        choices=['test', 'val', 'train'],
                        help='whose dataloader config gives the images '
                        '(default: test)')
    parser.add_argument('--num-images', type=int, default=None,
                        help='analyse the first N images (default: all)')
    parser.add_argument('--num-maps', type=int, default=4,
                        help='per-image routing maps for the first N images')
    parser.add_argument('--gate-bins', type=int, default=20,
                        help='histogram bins of the global gate values')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu',
                        help='where the model runs (default: cuda if '
                        'available); the statistics are kept on the CPU')
    add_cfg_options(parser)
    return parser.parse_args()


def routing_to_cpu(routing: HeadRouting) -> HeadRouting:
    """A :class:`HeadRouting` with every tensor moved to the CPU."""
    def cpu(stats):
        return stats._replace(**{
            field: value.cpu()
            for field, value in stats._asdict().items()
            if torch.is_tensor(value)
        })

    return routing._replace(
        router_stats={
            task: [cpu(stats) for stats in layers]
            for task, layers in routing.router_stats.items()
        },
        global_gate=None if routing.global_gate is None else
        routing.global_gate.cpu(),
        valid=None if routing.valid is None else routing.valid.cpu())


def semantic_at_tokens(data_samples: Sequence[SegDataSample],
                       rows: torch.Tensor, cols: torch.Tensor,
                       ignore_index: int,
                       padded_labels: bool = False) -> torch.Tensor:
    """``[B, h, w]`` class id of the label pixel under each token centre
    (``ignore_index`` outside the label).

    Args:
        data_samples (Sequence[SegDataSample]): The batch's samples, with
            ``gt_sem_seg``.
        rows (Tensor): ``[h]`` token centre rows in input pixels.
        cols (Tensor): ``[w]`` token centre columns in input pixels.
        ignore_index (int): Class id of tokens off the label.
        padded_labels (bool): The labels were padded with the inputs (the
            pre-processor's training mode), so they share the input's pixel
            grid. Otherwise (test mode) a label covers the unpadded image
            (``img_shape``) at its own resolution, e.g. the original one.

    Returns:
        Tensor: ``[B, h, w]`` int64 class ids.
    """
    out = torch.full((len(data_samples), len(rows), len(cols)),
                     ignore_index,
                     dtype=torch.long)
    for b, sample in enumerate(data_samples):
        label = sample.gt_sem_seg.data[0].long().cpu()  # [H_l, W_l]
        if padded_labels:
            r, c = rows.long(), cols.long()
        else:
            height, width = sample.metainfo['img_shape'][:2]
            r = (rows * label.shape[0] / height).long()
            c = (cols * label.shape[1] / width).long()
        inside_r, inside_c = r < label.shape[0], c < label.shape[1]
        out[b][inside_r[:, None] & inside_c[None, :]] = label[
            r[inside_r]][:, c[inside_c]].flatten()
    return out


def input_image(inputs: torch.Tensor, preprocessor: nn.Module,
                sample: SegDataSample) -> np.ndarray:
    """The unpadded model input of one sample as ``[H, W, 3]`` uint8 RGB."""
    image = inputs * preprocessor.std + preprocessor.mean  # [3, H, W]
    height, width = sample.metainfo['img_shape'][:2]
    image = image[:, :height, :width].permute(1, 2, 0).clamp(0, 255)
    image = image.byte().cpu().numpy()
    # The preprocessor feeds the model RGB when it converts from BGR.
    return image if preprocessor.channel_conversion else image[..., ::-1]


def analyze(model: nn.Module,
            dataloader: DataLoader,
            out_dir: str,
            num_images: Optional[int],
            num_maps: int,
            class_names: Optional[List[str]],
            ignore_index: int = 255,
            training_batches: bool = False,
            gate_bins: int = 20) -> Dict:
    """Run ``model`` over ``dataloader`` and write the figures and summary.

    Args:
        model (nn.Module): A segmentor with an :class:`FGMoEHead`, in eval
            mode.
        dataloader (DataLoader): The images, read once in order.
        out_dir (str): Where the summary and figures go.
        num_images (int, optional): Analyse the first N images (None: all).
        num_maps (int): Write routing maps of the first N images.
        class_names (list[str], optional): Semantic classes (None: no
            expert x class co-occurrence).
        ignore_index (int): Unlabelled class id. Defaults to 255.
        training_batches (bool): The batches come from a training
            pipeline, whose random crops differ in size; the
            preprocessor's training mode pads them (its test mode requires
            one size per batch). Defaults to False.
        gate_bins (int): Histogram bins of the global gate. Defaults to 20.

    Returns:
        dict: The JSON summary (also written to
        ``<out_dir>/routing_summary.json``).
    """
    head = model.decode_head
    if not head.moe and head.global_expert is None:
        raise ValueError('analyze_routing: this decoder has neither MoE '
                         'layers (moe=False) nor a global expert: there is '
                         'no routing to analyse')
    moe_layers = [block.moe for block in head.branches[head.tasks[0]]]
    num_experts = moe_layers[0].num_experts if head.moe else 0
    if 'semseg' not in head.tasks:
        class_names = None  # no semantic labels loaded: no co-occurrence
    accumulator = RoutingAccumulator(head.tasks,
                                     num_experts,
                                     len(moe_layers) if head.moe else 0,
                                     class_names=class_names,
                                     ignore_index=ignore_index,
                                     gate_bins=gate_bins)
    os.makedirs(osp.join(out_dir, 'maps'), exist_ok=True)
    seen = 0
    with torch.no_grad():
        for batch in dataloader:
            data = model.data_preprocessor(batch, training_batches)
            samples = data['data_samples']
            if num_images is not None:
                samples = samples[:num_images - seen]
                data['inputs'] = data['inputs'][:len(samples)]
            _, routing = head.forward_routing(
                model.extract_feat(data['inputs']),
                [sample.metainfo for sample in samples])
            routing = routing_to_cpu(routing)
            rows, cols = token_centres(data['inputs'].shape[2:],
                                       routing.hw_shape)
            valid = routing.valid  # [B, H, W], False on padding
            semantic = semantic_at_tokens(
                samples, rows, cols, ignore_index,
                padded_labels=training_batches
            ) if class_names is not None else None
            accumulator.update(routing, valid, semantic)
            for b, sample in enumerate(samples):
                if seen + b >= num_maps:
                    break
                _write_map(data['inputs'][b], model.data_preprocessor,
                           sample, routing, b, valid[b], num_experts,
                           out_dir)
            seen += len(samples)
            if num_images is not None and seen >= num_images:
                break
    summary = accumulator.summary()
    summary['num_images'] = seen
    with open(osp.join(out_dir, 'routing_summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    if head.moe:
        plot_expert_usage(summary, osp.join(out_dir, 'expert_usage.png'))
        if class_names is not None:
            for task in head.tasks:
                plot_class_cooccurrence(
                    summary, task, osp.join(out_dir,
                                            f'cooccurrence_{task}.png'))
    if head.global_expert is not None:
        plot_global_gate(summary, osp.join(out_dir, 'global_gate.png'))
    return summary


def _write_map(inputs, preprocessor, sample, routing, b, valid, num_experts,
               out_dir) -> None:
    rows = int(valid.any(1).sum())
    cols = int(valid.any(0).sum())
    grid = valid.shape
    top1 = {
        task: [
            stats.indices[b, :, 0].view(grid)[:rows, :cols].numpy()
            for stats in layers
        ]
        for task, layers in routing.router_stats.items()
    }
    gates = None
    if routing.global_gate is not None:
        gates = {
            task: routing.global_gate[t, b, :rows, :cols].numpy()
            for t, task in enumerate(routing.router_stats)
        }
    name = osp.splitext(osp.basename(sample.metainfo['img_path']))[0]
    plot_routing_maps(input_image(inputs, preprocessor, sample), top1, gates,
                      num_experts, osp.join(out_dir, 'maps', f'{name}.png'),
                      title=name)


def main() -> None:
    args = parse_args()
    cfg = load_config_file(args.config, args.cfg_options)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.to(args.device).eval()
    dataloader_cfg = copy.deepcopy(cfg[f'{args.split}_dataloader'])
    # One pass in order: a training loader's InfiniteSampler never ends.
    dataloader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    dataloader = Runner.build_dataloader(dataloader_cfg)
    class_names = dataloader.dataset.metainfo.get('classes')
    summary = analyze(model, dataloader, args.out, args.num_images,
                      args.num_maps,
                      list(class_names) if class_names else None,
                      training_batches=args.split == 'train',
                      gate_bins=args.gate_bins)
    for task, record in summary['tasks'].items():
        loads = ', '.join(
            f'layer{i}: max/mean {layer["max_over_mean"]:.2f} empty '
            f'{layer["empty"]:.0f}' for i, layer in enumerate(record['layers']))
        gate = record['global_gate']
        print(f'{task}: {loads}' +
              (f', global gate {gate["mean"]:.3f} ± {gate["std"]:.3f}'
               if gate else ''))
    print(f'wrote {args.out}/routing_summary.json and figures '
          f'({summary["num_images"]} images)')


if __name__ == '__main__':
    main()
