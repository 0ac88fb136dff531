# Copyright (c) mmfgmoe contributors. All rights reserved.
"""A two-layer MLP on tokens (``[..., C]``).

Reference: the ``Mlp`` of timm (``timm.layers.mlp``): one class, the layer
types injected (``act_layer``).
"""
from typing import Callable, Optional, Tuple, Union

import torch.nn as nn
from torch import Tensor

__all__ = ['Mlp']


def _pair(value: Union[bool, Tuple[bool, bool]]) -> Tuple[bool, bool]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f'`bias` must be a bool or a pair, got {value!r}')
        return bool(value[0]), bool(value[1])
    return bool(value), bool(value)


class Mlp(nn.Module):
    """FFN ``in -> hidden -> out`` with an activation in between.

    Args:
        in_channels (int): Input channels ``C``.
        hidden_channels (int): Hidden width ``H``.
        out_channels (int, optional): Output channels. Defaults to
            ``in_channels``.
        act_layer (Callable[[], nn.Module]): Activation class (injected, not a
            string). Defaults to :class:`torch.nn.GELU`.
        bias (bool | tuple[bool, bool]): Bias of the first / second layer.
            Defaults to True.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int,
                 out_channels: Optional[int] = None,
                 act_layer: Callable[[], nn.Module] = nn.GELU,
                 bias: Union[bool, Tuple[bool, bool]] = True) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        bias1, bias2 = _pair(bias)
        self.fc1 = nn.Linear(in_channels, hidden_channels, bias=bias1)
        self.fc2 = nn.Linear(hidden_channels, out_channels, bias=bias2)
        self.act = act_layer()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): ``[..., C_in]`` tokens.

        Returns:
            Tensor: ``[..., C_out]``.
        """
        return self.fc2(self.act(self.fc1(x)))
