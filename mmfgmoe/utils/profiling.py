# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Timing and memory measurement shared by the benchmark tools."""
import statistics
import time
from typing import Callable, Dict, Iterable, List

import torch

__all__ = [
    'autograd_saved_bytes', 'cuda_step_peak_bytes', 'interleaved_median_times'
]


def interleaved_median_times(steps: Dict[str, Callable[[], object]],
                             repeats: int, warmup: int,
                             device: str) -> Dict[str, float]:
    """Median seconds per call of each step, the steps run in turn.

    Interleaving makes machine noise (other processes, frequency changes)
    hit every variant alike, so their ratios mean something on a noisy
    machine. CUDA work is synchronised before and after each call.

    Args:
        steps (dict[str, Callable[[], object]]): Named callables without
            arguments, each one step of a variant; what they return is
            ignored.
        repeats (int): Timed rounds, each calling every step once (at
            least 1).
        warmup (int): Untimed rounds run first.
        device (str): Device the steps run on; CUDA is synchronised when it
            starts with ``'cuda'``.

    Returns:
        dict[str, float]: Median wall-clock seconds per call of each step,
        keyed like ``steps``.
    """
    cuda = device.startswith('cuda')
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for i in range(warmup + repeats):
        for name, step in steps.items():
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def cuda_step_peak_bytes(step: Callable[[], object]) -> int:
    """Peak CUDA memory that ``step`` adds to what was allocated before it.

    Relative, not absolute: the other variants of a benchmark (their
    weights, optimizer states) stay on the device and must not count.

    Resets the peak memory statistics of the current CUDA device; needs
    CUDA.

    Args:
        step (Callable[[], object]): Called once, without arguments; what
            it returns is ignored.

    Returns:
        int: Peak bytes allocated while ``step`` ran minus the bytes
        allocated before it.
    """
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def autograd_saved_bytes(step: Callable[[], torch.Tensor],
                         exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of memory that autograd keeps alive for backward while ``step``
    runs.

    On CPU there is no allocator peak to read; what a sparse MoE or a frozen
    backbone changes is exactly this activation memory. It is counted per
    storage, not per saved tensor: a tensor that several operations save, or
    views of one (an expanded weight, a slice), is memory once, and a small
    view keeps its whole storage alive.

    Args:
        step (Callable[[], Tensor]): Runs the forward pass and returns the
            tensor to backpropagate (a loss or an output, summed here).
        exclude (Iterable[Tensor]): Tensors whose storages do not count
            although autograd saves them, such as the model's parameters
            (held whether or not a step runs). Defaults to none.

    Returns:
        int: Bytes of the distinct storages saved for backward.
    """
    seen = {tensor.untyped_storage().data_ptr() for tensor in exclude}
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = tensor.untyped_storage()
        # Saved tensors stay alive until backward, so an address seen here
        # cannot be reused by a later allocation of the same step.
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    out.sum().backward()
    return total
