# Copyright (c) mmfgmoe contributors. All rights reserved.
"""RoutingAccumulator: counts, shares, co-occurrence and gate statistics
against direct recounts from the routing record."""
import math

import pytest
import torch

from _model_cfgs import tiny_head_cfg
from mmfgmoe.evaluation import RoutingAccumulator
from mmseg.registry import MODELS

TASKS = ['semseg', 'depth', 'normals']
CLASSES = ['wall', 'floor', 'chair', 'table', 'lamp']


def _routing(seed=0, **head_overrides):
    cfg = tiny_head_cfg(TASKS, [8], dict(semseg=len(CLASSES)),
                        **dict(dict(num_blocks=2, num_experts=6),
                               **head_overrides))
    torch.manual_seed(seed)
    head = MODELS.build(cfg).eval()
    with torch.no_grad():
        return head.forward_routing([torch.randn(3, 8, 4, 5)])[1]


def test_counts_shares_and_cooccurrence_match_a_recount():
    routing = _routing()
    valid = torch.ones(3, 8, 10, dtype=torch.bool)
    valid[2, 6:] = False  # padding rows of the last image
    valid[1, :, 9:] = False
    generator = torch.Generator().manual_seed(1)
    semantic = torch.randint(0, len(CLASSES), (3, 8, 10), generator=generator)
    semantic[0, :2] = 255  # unlabelled tokens
    acc = RoutingAccumulator(TASKS, 6, 2, class_names=CLASSES)
    acc.update(routing, valid, semantic)
    acc.update(routing, valid, semantic)  # accumulates
    summary = acc.summary()
    assert summary['num_tokens'] == 2 * int(valid.sum())
    labelled = valid & (semantic != 255)
    for t, task in enumerate(TASKS):
        for i, layer in enumerate(summary['tasks'][task]['layers']):
            indices = routing.router_stats[task][i].indices.view(3, 8, 10, 2)
            recount = torch.bincount(indices[valid].flatten(), minlength=6)
            assert layer['counts'] == (2 * recount).tolist()
            assert sum(layer['fraction']) == pytest.approx(1.)
            cooc = torch.zeros(6, len(CLASSES), dtype=torch.long)
            for e, c in zip(indices[labelled].flatten().tolist(),
                            semantic[labelled][:, None].expand(-1, 2)
                            .flatten().tolist()):
                cooc[e, c] += 2
            assert layer['cooccurrence'] == cooc.tolist()
            entropy = routing.router_stats[task][i].entropy.view(3, 8, 10)
            # The mean over image tokens only: padding is left out.
            assert layer['router_entropy'] == pytest.approx(
                float(entropy[valid].double().mean()))
            assert 0 < layer['router_entropy'] <= math.log(6)
            assert 0 < layer['entropy'] <= 1
        gate = routing.global_gate[t][valid].double()
        record = summary['tasks'][task]['global_gate']
        assert record['mean'] == pytest.approx(float(gate.mean()))
        assert record['std'] == pytest.approx(float(gate.std(unbiased=False)),
                                              abs=1e-6)
        assert sum(record['histogram']) == 2 * int(valid.sum())
        wall = routing.global_gate[t][labelled & (semantic == 0)]
        assert record['by_class']['wall'] == pytest.approx(float(wall.mean()))


def test_gate_histogram_bins():
    routing = _routing(seed=2)
    valid = torch.ones(3, 8, 10, dtype=torch.bool)
    acc = RoutingAccumulator(TASKS, 6, 2, gate_bins=4)
    acc.update(routing, valid)
    for t, task in enumerate(TASKS):
        histogram = acc.summary()['tasks'][task]['global_gate']['histogram']
        expected = torch.histc(routing.global_gate[t].float(), bins=4,
                               min=0, max=1)
        assert histogram == expected.long().tolist()
    with pytest.raises(ValueError, match='gate_bins'):
        RoutingAccumulator(TASKS, 6, 2, gate_bins=0)


def test_counts_equal_the_models_own_stats_without_padding():
    routing = _routing(seed=3)
    acc = RoutingAccumulator(TASKS, 6, 2)
    acc.update(routing, torch.ones(3, 8, 10, dtype=torch.bool))
    summary = acc.summary()
    for task in TASKS:
        for layer, stats in zip(summary['tasks'][task]['layers'],
                                routing.router_stats[task]):
            assert layer['counts'] == stats.counts.tolist()
            assert 'cooccurrence' not in layer


def test_dense_decoder_and_errors():
    routing = _routing(moe=False)
    acc = RoutingAccumulator(TASKS, 0, 0)
    acc.update(routing, torch.ones(3, 8, 10, dtype=torch.bool))
    summary = acc.summary()
    assert all(summary['tasks'][t]['layers'] == [] for t in TASKS)
    assert summary['tasks']['depth']['global_gate']['mean'] > 0
    with pytest.raises(ValueError, match='semantic'):
        RoutingAccumulator(TASKS, 6, 2, class_names=CLASSES).update(
            _routing(), torch.ones(3, 8, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="task 'semseg' has 2 MoE layers"):
        RoutingAccumulator(TASKS, 6, 3).update(
            _routing(), torch.ones(3, 8, 10, dtype=torch.bool))
