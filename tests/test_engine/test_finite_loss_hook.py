# Copyright (c) mmfgmoe contributors. All rights reserved.
"""FiniteLossHook on its own (one process): which iterations and keys it
checks, and what it reports. The Runner and distributed runs are in
tests/test_reliability."""
from types import SimpleNamespace

import pytest
import torch

from mmfgmoe.engine.hooks import FiniteLossHook

NAN, INF = float('nan'), float('inf')


def _check(hook, outputs, iteration=0):
    hook.after_train_iter(SimpleNamespace(iter=iteration), iteration,
                          outputs=outputs)


def test_names_every_non_finite_loss_and_the_total():
    with pytest.raises(FloatingPointError,
                       match=r'at iteration 4: loss_depth=inf '
                       r'loss_edge=nan \(total loss=nan\)'):
        _check(FiniteLossHook(),
               dict(loss=NAN, loss_semseg=1.0, loss_depth=INF,
                    loss_edge=torch.tensor(NAN)), iteration=3)


def test_finite_losses_pass():
    _check(FiniteLossHook(), dict(loss=torch.tensor(2.5), loss_depth=1.0))


def test_interval_skips_the_iterations_in_between():
    hook = FiniteLossHook(interval=2)
    _check(hook, dict(loss=NAN), iteration=0)  # iteration 1: not checked
    with pytest.raises(FloatingPointError, match='at iteration 2'):
        _check(hook, dict(loss=NAN), iteration=1)


def test_key_filter_and_non_scalar_values():
    hook = FiniteLossHook(key_filter='loss_depth')
    _check(hook, dict(loss_semseg=NAN, lr=NAN))  # not its keys
    with pytest.raises(FloatingPointError, match='loss_depth=nan'):
        _check(hook, dict(loss_depth=torch.tensor([1.0, NAN])))


def test_interval_must_be_positive():
    with pytest.raises(ValueError,
                       match='FiniteLossHook.interval must be >= 1, got 0'):
        FiniteLossHook(interval=0)
