# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Task losses: values against hand computations, masking, all-ignore."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmfgmoe.models.losses import (BalancedBinaryCrossEntropyLoss, DepthL1Loss,
                                   MaskedCrossEntropyLoss, NormalsL1Loss)


def test_cross_entropy_matches_torch_on_valid_pixels():
    torch.manual_seed(0)
    pred = torch.randn(2, 5, 4, 6)
    target = torch.randint(0, 5, (2, 1, 4, 6))
    target[0, 0, :2] = 255
    loss = MaskedCrossEntropyLoss(loss_weight=2.)(pred, target)
    want = F.cross_entropy(pred, target[:, 0], ignore_index=255)
    torch.testing.assert_close(loss, 2 * want)


def test_balanced_bce_fixed_pos_weight():
    pred = torch.tensor([[[[0.5, -1.0, 2.0, 0.0]]]])
    target = torch.tensor([[[[1, 0, 255, 0]]]])
    loss = BalancedBinaryCrossEntropyLoss(pos_weight=0.95)(pred, target)
    pos = -math.log(torch.sigmoid(torch.tensor(0.5)).item())
    neg = -math.log(1 - torch.sigmoid(torch.tensor(-1.)).item()) + \
        -math.log(0.5)
    want = (0.95 * pos + 0.05 * neg) / 3  # 3 valid pixels
    assert loss.item() == pytest.approx(want, rel=1e-5)


def test_balanced_bce_auto_weight_is_negative_fraction():
    pred = torch.zeros(1, 1, 1, 4)
    target = torch.tensor([[[[1, 0, 0, 0]]]])
    loss = BalancedBinaryCrossEntropyLoss()(pred, target)
    # w = 3/4 on the positive, 1/4 on each negative; bce(0) = log 2.
    want = (0.75 * math.log(2) + 3 * 0.25 * math.log(2)) / 4
    assert loss.item() == pytest.approx(want, rel=1e-5)


def _bce(logit: float, label: int) -> float:
    """Binary cross-entropy of one logit, by hand."""
    return math.log1p(math.exp(-logit if label else logit))


def test_balanced_bce_auto_weight_counts_valid_pixels_only():
    """pos_weight=None: w = negatives / valid pixels of the whole batch;
    ignored (255) pixels count neither in w nor in the mean."""
    pred = torch.tensor([[[[0.5, -1.0, 2.0, 3.0]]], [[[-0.5, 1.5, -4.0,
                                                        0.25]]]])
    target = torch.tensor([[[[1, 0, 0, 255]]], [[[1, 0, 255, 255]]]])
    loss = BalancedBinaryCrossEntropyLoss(loss_weight=2.)(pred, target)
    # 5 valid pixels, 2 positive: w = 3 / 5 (all 8 pixels: 6 / 8).
    w = 3 / 5
    pos = _bce(0.5, 1) + _bce(-0.5, 1)
    neg = _bce(-1.0, 0) + _bce(2.0, 0) + _bce(1.5, 0)
    want = 2. * (w * pos + (1 - w) * neg) / 5
    assert loss.item() == pytest.approx(want, rel=1e-6)
    # the logits at ignored pixels play no part
    pred[0, 0, 0, 3], pred[1, 0, 0, 2:] = -7., 9.
    assert BalancedBinaryCrossEntropyLoss(loss_weight=2.)(
        pred, target).item() == pytest.approx(want, rel=1e-6)


def test_depth_l1_masks_invalid():
    pred = torch.tensor([[[[1., 2., 3.]]]])
    target = torch.tensor([[[[2., 0., 1.]]]])
    assert DepthL1Loss()(pred, target).item() == pytest.approx(1.5)


def test_normals_l1_normalises_and_masks():
    pred = torch.zeros(1, 3, 1, 2)
    pred[0, :, 0, 0] = torch.tensor([0., 0., 5.])  # normalised: (0, 0, 1)
    pred[0, :, 0, 1] = torch.tensor([1., 0., 0.])
    target = torch.zeros(1, 3, 1, 2)
    target[0, :, 0, 0] = torch.tensor([0., 1., 0.])  # second pixel invalid
    loss = NormalsL1Loss()(pred, target)
    # InvPT's scale: |0-0| + |0-1| + |1-0| summed over the components of
    # the one valid pixel (not averaged over them: 2 / 3).
    assert loss.item() == pytest.approx(2.)


def test_normals_l1_scale_by_hand():
    """Per valid pixel, the 3 components' absolute errors (after normalising
    the prediction) summed; averaged over the valid pixels only; times
    loss_weight."""
    pred = torch.tensor([[0., 2., 1.], [3., 0., 1.], [4., 0., 1.]]).view(
        1, 3, 1, 3)  # pixels (0, 3, 4), (2, 0, 0), (1, 1, 1)
    target = torch.tensor([[0., 0., 0.], [0., 1., 0.], [1., 0., 0.]]).view(
        1, 3, 1, 3)  # (0, 0, 1), (0, 1, 0), all-zero: invalid
    loss = NormalsL1Loss(loss_weight=10.)(pred, target)
    # (0, .6, .8) vs (0, 0, 1): 0 + .6 + .2 = .8
    # (1, 0, 0) vs (0, 1, 0): 1 + 1 + 0 = 2
    want = 10. * (0.8 + 2.0) / 2
    assert loss.item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize('cfg,channels,ignore', [
    (dict(type='MaskedCrossEntropyLoss'), 7, 255),
    (dict(type='BalancedBinaryCrossEntropyLoss'), 1, 255),
    (dict(type='BalancedBinaryCrossEntropyLoss', pos_weight=0.95), 1, 255),
    (dict(type='DepthL1Loss'), 1, 0),
    (dict(type='NormalsL1Loss'), 3, 0),
])
def test_all_ignore_gives_zero_with_grad(cfg, channels, ignore):
    loss_fn = MODELS.build(cfg)
    pred = torch.randn(2, channels, 3, 4, requires_grad=True)
    target_channels = 3 if channels == 3 else 1
    target = torch.full((2, target_channels, 3, 4), ignore)
    if ignore == 0:
        target = target.float()
    loss = loss_fn(pred, target)
    assert loss.item() == 0. and not torch.isnan(loss)
    loss.backward()
    assert pred.grad is not None and torch.equal(pred.grad,
                                                 torch.zeros_like(pred))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match='DepthL1Loss'):
        DepthL1Loss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
