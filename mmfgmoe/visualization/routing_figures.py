# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Figures of the routing analysis (``tools/analysis_tools/
analyze_routing.py``), drawn with matplotlib from
:meth:`mmfgmoe.evaluation.RoutingAccumulator.summary` and per-image maps."""
from typing import Dict, List, Optional

import numpy as np

__all__ = [
    'expert_colors', 'plot_expert_usage', 'plot_class_cooccurrence',
    'plot_global_gate', 'plot_routing_maps'
]


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only; never needs a display
    import matplotlib.pyplot as plt
    return plt


def _frequent_classes(summary: Dict, min_class_share: float) -> np.ndarray:
    """Ids of the classes holding at least ``min_class_share`` of the
    labelled tokens."""
    class_tokens = np.array(summary['class_tokens'], dtype=np.float64)
    return np.flatnonzero(
        class_tokens >= min_class_share * max(class_tokens.sum(), 1))


def expert_colors(num_experts: int) -> np.ndarray:
    """``[E, 4]`` RGBA colours, distinct for up to 20 experts.

    Up to 20 experts take matplotlib's ``tab20`` colours, its dark shades
    first; more take ``E`` evenly spaced hues of ``hsv``.

    Args:
        num_experts (int): Number of experts ``E``.

    Returns:
        np.ndarray: ``[E, 4]`` float RGBA colours in [0, 1], row ``e`` the
        colour of expert ``e``.
    """
    plt = _pyplot()
    cmap = plt.get_cmap('tab20' if num_experts <= 20 else 'hsv')
    if num_experts <= 20:
        # tab20 pairs a dark and a light shade: take the darks first.
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))
        return np.array([cmap(order[i]) for i in range(num_experts)])
    return cmap(np.linspace(0, 1, num_experts, endpoint=False))


def plot_expert_usage(summary: Dict, path: str) -> None:
    """Task x expert share of the assignments, one panel per MoE layer.

    Cells show the percentage of a task's token-to-expert assignments that
    went to each expert (rows sum to 100); ``100 / E`` is perfect balance.

    Args:
        summary (dict): :meth:`RoutingAccumulator.summary`; reads
            ``num_experts`` and, per task, the ``fraction`` ``[E]`` of each
            of its ``layers`` (every task has as many layers as the first).
        path (str): Output image file (format from its extension, e.g.
            PNG).
    """
    plt = _pyplot()
    tasks = list(summary['tasks'])
    num_layers = len(summary['tasks'][tasks[0]]['layers'])
    num_experts = summary['num_experts']
    fig, axes = plt.subplots(num_layers,
                             1,
                             figsize=(0.55 * num_experts + 2.5,
                                      (0.45 * len(tasks) + 1.1) * num_layers),
                             squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        share = np.array([
            summary['tasks'][task]['layers'][i]['fraction'] for task in tasks
        ]) * 100  # [T, E]
        image = ax.imshow(share,
                          cmap='viridis',
                          vmin=0,
                          vmax=max(share.max(), 2 * 100 / num_experts),
                          aspect='auto')
        for (t, e), value in np.ndenumerate(share):
            ax.text(e, t, f'{value:.0f}', ha='center', va='center',
                    fontsize=7,
                    color='white' if value < share.max() * .6 else 'black')
        ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
        ax.set_xticks(range(num_experts), range(num_experts), fontsize=7)
        ax.set_title(f'MoE layer {i}: share of each task\'s assignments (%), '
                     f'balanced = {100 / num_experts:.1f} (each task has its '
                     'own experts)',
                     fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    axes[-1, 0].set_xlabel('expert')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_class_cooccurrence(summary: Dict,
                            task: str,
                            path: str,
                            min_class_share: float = 0.005) -> None:
    """Which semantic classes each of ``task``'s experts serves.

    Each cell is ``log2`` of the lift ``P(class | expert) / P(class)`` over
    the assignments: 0 (white) = the expert sees the class as often as the
    task's experts do on average, +1 = twice as often, -1 = half. Classes
    below ``min_class_share`` of the labelled tokens are left out.

    Args:
        summary (dict): :meth:`RoutingAccumulator.summary` of an accumulator
            with ``class_names``; reads ``class_names``, ``class_tokens``,
            ``num_experts`` and the ``cooccurrence`` ``[E][C]`` of each of
            ``task``'s ``layers``.
        task (str): The task whose experts are shown, a key of
            ``summary['tasks']``.
        path (str): Output image file (format from its extension, e.g.
            PNG).
        min_class_share (float): Smallest share of the labelled tokens
            (``class_tokens``) a class needs to be shown. Defaults to 0.005.
    """
    plt = _pyplot()
    names = summary['class_names']
    shown = _frequent_classes(summary, min_class_share)
    layers = summary['tasks'][task]['layers']
    fig, axes = plt.subplots(len(layers),
                             1,
                             figsize=(0.42 * len(shown) + 2.8,
                                      (0.3 * summary['num_experts'] + 1.6) *
                                      len(layers)),
                             squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        counts = np.array(layers[i]['cooccurrence'],
                          dtype=np.float64)[:, shown]  # [E, C']
        p_class_given_expert = counts / np.maximum(
            counts.sum(1, keepdims=True), 1)
        p_class = counts.sum(0) / max(counts.sum(), 1)
        with np.errstate(divide='ignore', invalid='ignore'):
            lift = np.log2(p_class_given_expert / p_class)
        lift[~np.isfinite(lift)] = -2.  # never seen: the coldest colour
        image = ax.imshow(lift, cmap='RdBu_r', vmin=-2, vmax=2,
                          aspect='auto')
        ax.set_yticks(range(counts.shape[0]), range(counts.shape[0]),
                      fontsize=7)
        ax.set_ylabel('expert', fontsize=8)
        ax.set_xticks(range(len(shown)), [names[c] for c in shown],
                      rotation=60, ha='right', fontsize=7)
        ax.set_title(f'{task}, MoE layer {i}: log2 P(class|expert) / '
                     'P(class)', fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_global_gate(summary: Dict,
                     path: str,
                     min_class_share: float = 0.005) -> None:
    """Distribution of the global-expert gate per task (histogram) and its
    mean per semantic class (where classes are known).

    Args:
        summary (dict): :meth:`RoutingAccumulator.summary` of a decoder with
            a global expert; reads ``class_names`` and, per task, the
            ``global_gate``'s ``histogram`` and, when ``class_names`` is not
            None, its ``by_class`` means (also ``class_tokens``).
        path (str): Output image file (format from its extension, e.g.
            PNG).
        min_class_share (float): Smallest share of the labelled tokens
            (``class_tokens``) a class needs to be shown in the per-class
            panel. Defaults to 0.005.
    """
    plt = _pyplot()
    tasks = list(summary['tasks'])
    with_classes = summary['class_names'] is not None
    fig, axes = plt.subplots(1,
                             2 if with_classes else 1,
                             figsize=(13 if with_classes else 5.5, 3.6),
                             squeeze=False)
    ax = axes[0, 0]
    for task in tasks:
        hist = np.array(summary['tasks'][task]['global_gate']['histogram'],
                        dtype=np.float64)
        centres = (np.arange(len(hist)) + .5) / len(hist)
        ax.plot(centres, hist / max(hist.sum(), 1), marker='o', ms=3,
                label=task)
    ax.set_xlabel('global gate value (0 = closed, 1 = open)')
    ax.set_ylabel('share of tokens')
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title('global expert gate per task', fontsize=9)
    if with_classes:
        shown = [
            summary['class_names'][c]
            for c in _frequent_classes(summary, min_class_share)
        ]
        ax = axes[0, 1]
        width = 0.8 / len(tasks)
        for t, task in enumerate(tasks):
            by_class = summary['tasks'][task]['global_gate']['by_class']
            ax.bar(np.arange(len(shown)) + t * width,
                   [by_class.get(name, np.nan) for name in shown],
                   width,
                   label=task)
        ax.set_xticks(
            np.arange(len(shown)) + 0.4 - width / 2, shown, rotation=60,
            ha='right', fontsize=7)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, ncol=len(tasks))
        ax.set_ylabel('mean gate')
        ax.set_title('mean global gate by semantic class', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_routing_maps(image: np.ndarray,
                      top1: Dict[str, List[np.ndarray]],
                      gates: Optional[Dict[str, np.ndarray]],
                      num_experts: int,
                      path: str,
                      title: str = '') -> None:
    """Per-token routing of one image, overlaid on it.

    Rows are tasks; columns the input, the top-1 expert of every MoE layer
    (one colour per expert, legend at the bottom) and the global gate
    (dark = closed, bright = open).

    Args:
        image (np.ndarray): ``[H, W, 3]`` uint8 RGB input (unpadded).
        top1 (dict[str, list[np.ndarray]]): Per task, per layer ``[h, w]``
            int top-1 expert of each token covering the image.
        gates (dict[str, np.ndarray], optional): Per task ``[h, w]`` gate
            values in [0, 1]; None without a global expert.
        num_experts (int): ``E`` (fixes the colours).
        path (str): Output PNG.
        title (str): Figure title (e.g. the image name); none when empty.
            Defaults to ''.
    """
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    tasks = list(top1)
    num_layers = len(top1[tasks[0]])
    cols = 1 + num_layers + (gates is not None)
    height, width = image.shape[:2]
    panel = 2.6
    fig, axes = plt.subplots(len(tasks),
                             cols,
                             figsize=(panel * cols + 0.8,
                                      panel * height / width * len(tasks) +
                                      1.2),
                             squeeze=False,
                             layout='constrained')
    colors = expert_colors(num_experts)
    extent = (0, width, height, 0)
    for t, task in enumerate(tasks):
        row = axes[t]
        row[0].imshow(image)
        row[0].set_ylabel(task, fontsize=9)
        for i, experts in enumerate(top1[task]):
            ax = row[1 + i]
            ax.imshow(image)
            ax.imshow(experts,
                      cmap=ListedColormap(colors),
                      vmin=-.5,
                      vmax=num_experts - .5,
                      alpha=.6,
                      extent=extent,
                      interpolation='nearest')
            if t == 0:
                ax.set_title(f'top-1 expert, layer {i}', fontsize=8)
        if gates is not None:
            ax = row[-1]
            ax.imshow(image)
            shown = ax.imshow(gates[task],
                              cmap='magma',
                              vmin=0,
                              vmax=1,
                              alpha=.7,
                              extent=extent,
                              interpolation='bilinear')
            if t == 0:
                ax.set_title('global gate', fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    if gates is not None:
        fig.colorbar(shown, ax=axes[:, -1].tolist(), shrink=0.6,
                     label='global gate')
    if num_experts:
        fig.legend(handles=[
            Patch(color=colors[e], label=str(e)) for e in range(num_experts)
        ],
                   loc='outside lower center',
                   ncol=min(num_experts, 16),
                   fontsize=7,
                   title='top-1 expert (each task has its own experts)',
                   title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
