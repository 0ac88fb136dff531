# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Benchmark one FineGrainedMoE layer: sparse dispatch vs. "run every expert,
then mask" vs. the dense FFN of the same activated width.

Forward + backward time (median over repeats, the three variants interleaved
in one process so machine noise hits them alike) and peak memory (CUDA: the
allocator's peak above what was allocated before the step; CPU: the bytes
autograd keeps alive for backward beyond the weights, which is what differs
between the variants) at several token counts.

    python tools/analysis_tools/benchmark_moe.py [--tokens 1024 4096 16384]
        [--embed-dims 256] [--num-experts 16] [--top-k 4] [--num-shared 2]

``--profile`` first prints torch profiler tables (self time per operator) of
the sparse and dense variants at the token count closest to 4096.

Before the last line, ``gemm_only_sparse_vs_dense=<r>`` is the same ratio for
the matrix products alone (forward and backward, 6 per layer): the routed
experts' products on perfectly balanced ``T*k/E``-row slices plus the shared
experts' vs. the dense FFN's, timed side by side. Both sides do the same
FLOPs, so ``r`` is what the narrow (``h``-wide) expert products cost on this
machine's BLAS over the wide dense ones: the lower bound of
``sparse_vs_dense_ratio`` for any dispatch that calls one product per expert.

The last line reads ``sparse_vs_dense_ratio=<x> sparse_vs_mask_ratio=<y>``
(time ratios at 4096 tokens, or the token count closest to it).
"""
import argparse
from typing import Callable, Dict, List

import torch
import torch.nn as nn

from mmfgmoe.models.layers import FineGrainedMoE
from mmfgmoe.utils.profiling import (autograd_saved_bytes,
                                     cuda_step_peak_bytes,
                                     interleaved_median_times)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tokens', type=int, nargs='+',
                        default=[1024, 4096, 16384])
    parser.add_argument('--embed-dims', type=int, default=256)
    parser.add_argument('--mlp-ratio', type=float, default=4.)
    parser.add_argument('--num-experts', type=int, default=16)
    parser.add_argument('--top-k', type=int, default=4)
    parser.add_argument('--num-shared', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch\'s)')
    parser.add_argument('--profile', action='store_true',
                        help='print operator profiles of sparse and dense')
    return parser.parse_args()


def profile(variants: Dict[str, Callable[[], torch.Tensor]],
            repeats: int) -> None:
    """Print the operators that take the time, per variant."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    for name, step in variants.items():
        step().sum().backward()  # warm-up
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                step().sum().backward()
        print(f'--- {name}: {repeats} x fwd+bwd, top operators by self time')
        print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=14, max_name_column_width=40))


def _ffn_gemms(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
               grad: torch.Tensor, hidden: torch.Tensor) -> None:
    """The 6 products of an FFN's forward and backward, without the rest:
    ``x [n, D] @ w1 [D, h]``, ``hidden [n, h] @ w2 [h, D]``, then the
    gradients of the hidden activations, ``w2``, ``x`` and ``w1``."""
    x @ w1
    hidden @ w2
    grad_hidden = grad @ w2.t()
    hidden.t() @ grad
    grad_hidden @ w1.t()
    x.t() @ grad_hidden


def gemm_bound(num_tokens: int, layer: FineGrainedMoE, device: str,
               repeats: int, warmup: int) -> float:
    """Time of the sparse layer's products over the dense FFN's (medians,
    interleaved), with the routed tokens split evenly over the experts."""
    dims, h = layer.embed_dims, layer.expert_hidden
    slots = num_tokens * layer.top_k

    def tensors(rows: int, width: int) -> tuple:
        return (torch.randn(rows, dims, device=device),
                torch.randn(dims, width, device=device),
                torch.randn(width, dims, device=device),
                torch.randn(rows, dims, device=device),
                torch.randn(rows, width, device=device))

    dense = tensors(num_tokens, layer.activated_hidden)
    shared = tensors(num_tokens, layer.num_shared_experts * h)
    routed = tensors(slots, h)
    sizes = [slots // layer.num_experts + (i < slots % layer.num_experts)
             for i in range(layer.num_experts)]
    per_expert = list(zip(*(t.split(sizes) for t in (routed[0], routed[3],
                                                     routed[4]))))

    def sparse_gemms() -> None:
        if layer.num_shared_experts:
            _ffn_gemms(*shared)
        for x, grad, hidden in per_expert:
            _ffn_gemms(x, routed[1], routed[2], grad, hidden)

    steps = dict(sparse=sparse_gemms, dense=lambda: _ffn_gemms(*dense))
    times = interleaved_median_times(steps, repeats, warmup, device)
    return times['sparse'] / times['dense']


def _peak_memory(step: Callable[[], torch.Tensor], device: str,
                 weights: List[torch.Tensor]) -> int:
    if device.startswith('cuda'):
        return cuda_step_peak_bytes(lambda: step().sum().backward())
    return autograd_saved_bytes(step, exclude=weights)


def benchmark(variants: Dict[str, Callable[[], torch.Tensor]], device: str,
              repeats: int, warmup: int,
              weights: List[torch.Tensor]) -> Dict[str, Dict[str, float]]:
    """Median fwd+bwd seconds and peak memory per variant, interleaved;
    ``weights`` (held anyway) do not count as memory on CPU."""
    times = interleaved_median_times(
        {name: (lambda step=step: step().sum().backward())
         for name, step in variants.items()}, repeats, warmup, device)
    return {
        name: dict(time=times[name],
                   memory=_peak_memory(step, device, weights))
        for name, step in variants.items()
    }


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    make = dict(embed_dims=args.embed_dims, mlp_ratio=args.mlp_ratio,
                num_experts=args.num_experts, top_k=args.top_k,
                num_shared_experts=args.num_shared)
    sparse = FineGrainedMoE(**make, dispatch='sorted').to(args.device)
    masked = FineGrainedMoE(**make, dispatch='masked').to(args.device)
    masked.load_state_dict(sparse.state_dict())
    dense = FineGrainedMoE(**make, moe=False).to(args.device)
    print(f'device={args.device} D={args.embed_dims} E={args.num_experts} '
          f'k={args.top_k} shared={args.num_shared} '
          f'h={sparse.expert_hidden} activated={sparse.activated_hidden} '
          f'threads={torch.get_num_threads()}')
    print(f'{"tokens":>7} {"variant":>7} {"fwd+bwd ms":>11} {"peak MiB":>9} '
          f'{"time/sparse":>12}')
    if args.profile:
        num_tokens = min(args.tokens, key=lambda n: abs(n - 4096))
        x = torch.randn(num_tokens, args.embed_dims, device=args.device,
                        requires_grad=True)
        profile({name: (lambda layer=layer: layer(x)[0])
                 for name, layer in (('sparse', sparse), ('dense', dense))},
                args.repeats)
    layers: Dict[str, nn.Module] = dict(sparse=sparse, masked=masked,
                                        dense=dense)
    weights = [p for layer in layers.values() for p in layer.parameters()]
    ratios = {}
    for num_tokens in args.tokens:
        x = torch.randn(num_tokens, args.embed_dims, device=args.device,
                        requires_grad=True)
        variants = {name: (lambda layer=layer: layer(x)[0])
                    for name, layer in layers.items()}
        result = benchmark(variants, args.device, args.repeats, args.warmup,
                           weights)
        base = result['sparse']['time']
        for name, r in result.items():
            print(f'{num_tokens:>7} {name:>7} {r["time"] * 1e3:>11.2f} '
                  f'{r["memory"] / 2**20:>9.1f} {r["time"] / base:>12.2f}')
        ratios[num_tokens] = (base / result['dense']['time'],
                              base / result['masked']['time'])
    at = min(ratios, key=lambda n: abs(n - 4096))
    bound = gemm_bound(at, sparse, args.device, args.repeats, args.warmup)
    print(f'gemm_only_sparse_vs_dense={bound:.3f} (the products alone at {at}'
          ' tokens, same FLOPs: the bound of sparse_vs_dense_ratio for one '
          'product per expert)')
    print(f'sparse_vs_dense_ratio={ratios[at][0]:.3f} '
          f'sparse_vs_mask_ratio={ratios[at][1]:.3f}')


if __name__ == '__main__':
    main()
