"""Matplotlib figures from arrays, DataFrames and run folders. Nothing here trains anything.

Every function returns the ``matplotlib.figure.Figure`` it drew, so notebooks show it and scripts
can ``fig.savefig(...)``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from resnet_utils.data import CLASS_NAMES
from resnet_utils.runs import Run


def image_grid(images: np.ndarray, labels: Sequence[int] | None = None, class_names: Sequence[str] = CLASS_NAMES,
               columns: int = 10, titles: Sequence[str] | None = None, size: float = 1.2):
    """Show uint8 or [0, 1] float images in a grid, titled by class name (or by ``titles``)."""
    images = np.asarray(images)
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 1.15), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        image = images[index]
        ax.imshow(image if image.dtype == np.uint8 else np.clip(image, 0, 1))
        title = titles[index] if titles is not None else (class_names[int(labels[index])] if labels is not None else None)
        if title:
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def images_per_class(images: np.ndarray, labels: np.ndarray, per_class: int = 8, class_names: Sequence[str] = CLASS_NAMES):
    """One row per class with its first ``per_class`` images, the class name on the left."""
    fig, axes = plt.subplots(len(class_names), per_class, figsize=(per_class * 1.0, len(class_names) * 1.0), squeeze=False)
    for row, name in enumerate(class_names):
        chosen = np.flatnonzero(np.asarray(labels) == row)[:per_class]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([]); ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(chosen):
                ax.imshow(images[chosen[col]])
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def augmentation_preview(images: np.ndarray, views: int = 6, seed: int = 0):
    """Each row: an original image, then ``views`` pad-crop-flip augmentations of it."""
    import tensorflow as tf

    from resnet_utils.data import pad_crop_flip

    fig, axes = plt.subplots(len(images), views + 1, figsize=((views + 1) * 1.2, len(images) * 1.25), squeeze=False)
    for row, image in enumerate(images):
        x = tf.cast(image, tf.float32) / 255.0
        axes[row, 0].imshow(image)
        axes[row, 0].set_title("original" if row == 0 else "", fontsize=8)
        for col in range(1, views + 1):
            augmented = pad_crop_flip(x, tf.constant([seed + row, col], tf.int32)).numpy()
            axes[row, col].imshow(np.clip(augmented, 0, 1))
            if row == 0:
                axes[row, col].set_title(f"view {col}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def lr_schedule_plot(schedules: dict, steps_per_epoch: int, epochs: int, log_scale: bool = True):
    """Learning rate against epoch for one or more Keras schedules (name -> schedule)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    total = epochs * steps_per_epoch
    steps = np.unique(np.concatenate([np.linspace(0, total - 1, 1500).astype(int), np.arange(min(total, 200))]))
    for name, schedule in schedules.items():
        values = [float(schedule(int(s))) for s in steps]
        ax.plot(steps / steps_per_epoch, values, label=name)
    ax.set_xlabel("epoch"); ax.set_ylabel("learning rate")
    if log_scale:
        ax.set_yscale("log")
    ax.grid(alpha=0.3); ax.legend()
    fig.tight_layout()
    return fig


def _as_logs(runs) -> dict[str, pd.DataFrame]:
    if isinstance(runs, Run):
        runs = {runs.name: runs}
    return {name: (r.log if isinstance(r, Run) else r) for name, r in runs.items()}


def learning_curves(runs, metrics: Iterable[str] = ("loss", "accuracy", "learning_rate")):
    """Training (solid) and test (dashed) curves per epoch for one or more runs.

    ``runs``: a :class:`Run`, or a dict of name -> Run or log DataFrame (columns as in log.csv).
    """
    logs = {name: log for name, log in _as_logs(runs).items() if len(log)}
    metrics = list(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for index, (name, log) in enumerate(logs.items()):
            color = f"C{index}"
            if metric in log:
                ax.plot(log["epoch"], log[metric], color=color, label=f"{name} (train)" if metric != "learning_rate" else name)
            if f"val_{metric}" in log:
                ax.plot(log["epoch"], log[f"val_{metric}"], color=color, linestyle="--", label=f"{name} (test)")
        ax.set_title(metric.replace("_", " ")); ax.set_xlabel("epoch"); ax.grid(alpha=0.3)
        if metric == "learning_rate" and any((log.get(metric, pd.Series([1])) > 0).all() for log in logs.values()):
            ax.set_yscale("log")
    if logs:
        axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def error_curves(groups: dict[str, dict[str, pd.DataFrame]], title_suffix: str = ""):
    """The paper's Figure 6 layout: one panel per group (e.g. "plain", "ResNet"), error % per epoch,
    training error thin and dashed, test error bold."""
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), sharey=True, squeeze=False)
    for ax, (group, logs) in zip(axes[0], groups.items()):
        for index, (name, log) in enumerate(logs.items()):
            if not len(log):
                continue
            ax.plot(log["epoch"], 100 * (1 - log["accuracy"]), f"C{index}--", linewidth=1, label=f"{name} train")
            ax.plot(log["epoch"], 100 * (1 - log["val_accuracy"]), f"C{index}-", linewidth=2.2, label=f"{name} test")
        ax.set_title(f"{group}{title_suffix}"); ax.set_xlabel("epoch"); ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("error (%)")
    fig.tight_layout()
    return fig


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str] = CLASS_NAMES, normalize: bool = True):
    """Confusion matrix (rows: true class, columns: predicted), as a heat map with the counts/rates."""
    k = len(class_names)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    shown = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1) if normalize else matrix
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(shown, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right"); ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted"); ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else str(matrix[i, j])
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if shown[i, j] > shown.max() / 2 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def bar_chart(frame: pd.DataFrame, column: str, title: str = "", log_scale: bool = False, color_by: str | None = None):
    """Horizontal bars of one column of a DataFrame (one bar per row, labelled by the index)."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(frame) + 1.2))
    colors = None
    if color_by is not None:
        groups = {g: f"C{i}" for i, g in enumerate(dict.fromkeys(frame[color_by]))}
        colors = [groups[g] for g in frame[color_by]]
    ax.barh([str(i) for i in frame.index], frame[column], color=colors)
    ax.invert_yaxis()
    for y, value in enumerate(frame[column]):
        ax.text(value, y, f" {value:,.0f}" if abs(value) >= 1000 else f" {value:.4g}", va="center", fontsize=8)
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel(column.replace("_", " ")); ax.set_title(title); ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def feature_maps(activations: np.ndarray, columns: int = 8, title: str = ""):
    """Show the channels of one (height, width, channels) activation as grey images."""
    activations = np.asarray(activations)
    channels = activations.shape[-1]
    rows = int(np.ceil(channels / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < channels:
            ax.imshow(activations[..., index], cmap="viridis")
            ax.set_title(str(index), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
