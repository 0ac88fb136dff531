# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Memory measurement shared by the benchmark tools."""
from typing import Callable

import torch

__all__ = ['autograd_saved_bytes']


def autograd_saved_bytes(step: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``step`` runs.

    On CPU there is no allocator peak to read; what a sparse MoE or a frozen
    backbone changes is exactly this activation memory. ``step`` returns the
    tensor to backpropagate (a loss or an output, summed here).
    """
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    out.sum().backward()
    return total
