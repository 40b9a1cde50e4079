"""Matplotlib figures from arrays, DataFrames and run folders. Nothing here trains anything.

Every function returns the ``matplotlib.figure.Figure`` it drew, so notebooks show it and scripts
can ``fig.savefig(...)``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from resnet_utils.data import CLASS_NAMES
from resnet_utils.runs import Run


def image_grid(images: np.ndarray, labels: Sequence[int] | None = None, class_names: Sequence[str] = CLASS_NAMES,
               columns: int = 10, titles: Sequence[str] | None = None, size: float = 1.2):
    """Show uint8 or [0, 1] float images in a grid, titled by class name (or by ``titles``)."""
    images = np.asarray(images)
    rows = int(np.ceil(len(images) / columns))
    lines = max((str(t).count("\n") + 1 for t in titles), default=1) if titles is not None else 1
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * (1 + 0.2 * lines)), squeeze=False)
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


def augmentation_preview(images: np.ndarray, views: int = 6, seed: int = 0, labels: Sequence[str] | None = None):
    """Each row: an original image (titled with its class when ``labels`` are given), then ``views``
    pad-crop-flip augmentations of it."""
    import tensorflow as tf

    from resnet_utils.data import pad_crop_flip

    fig, axes = plt.subplots(len(images), views + 1, figsize=((views + 1) * 1.2, len(images) * 1.25), squeeze=False)
    for row, image in enumerate(images):
        x = tf.cast(image, tf.float32) / 255.0
        axes[row, 0].imshow(image)
        name = f"{labels[row]}" if labels is not None else ""
        axes[row, 0].set_title(f"{name} (original)" if name else ("original" if row == 0 else ""), fontsize=8)
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


def learning_curves(runs, metrics: Iterable[str] = ("loss", "accuracy", "learning_rate"), markers: bool = False):
    """Training (solid) and test (dashed) curves per epoch for one or more runs.

    ``runs``: a :class:`Run`, or a dict of name -> Run or log DataFrame (columns as in log.csv). One
    colour per run; a single legend below the panels names the runs and the two line styles.
    """
    from matplotlib.lines import Line2D

    logs = {name: log for name, log in _as_logs(runs).items() if len(log)}
    metrics = list(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    marker = "o" if markers else None
    for ax, metric in zip(axes[0], metrics):
        for index, (name, log) in enumerate(logs.items()):
            color = f"C{index}"
            if metric in log:
                ax.plot(log["epoch"], log[metric], color=color, marker=marker, markersize=3)
            if f"val_{metric}" in log:
                ax.plot(log["epoch"], log[f"val_{metric}"], color=color, linestyle="--", marker=marker, markersize=3)
        ax.set_title(metric.replace("_", " ")); ax.set_xlabel("epoch"); ax.grid(alpha=0.3)
        if metric == "learning_rate" and any((log.get(metric, pd.Series([1])) > 0).all() for log in logs.values()):
            ax.set_yscale("log")
    if logs:
        handles = [Line2D([], [], color=f"C{i}", label=name) for i, name in enumerate(logs)]
        handles += [Line2D([], [], color="k", label="training"), Line2D([], [], color="k", linestyle="--", label="test")]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, -0.02 - 0.06 * ((len(handles) - 1) // 5)))
    fig.tight_layout(rect=(0, 0.1 + 0.06 * ((len(logs) + 1) // 5), 1, 1))
    return fig


def lr_schedule_panels(schedules: dict):
    """One panel per schedule: name -> (schedule, epochs, steps_per_epoch, optimizer label). Each is drawn
    over its own length, on its own axis (Adam's and SGD's rates are not comparable numbers)."""
    fig, axes = plt.subplots(1, len(schedules), figsize=(4.2 * len(schedules), 3.2), squeeze=False)
    for ax, (name, (schedule, epochs, steps_per_epoch, label)) in zip(axes[0], schedules.items()):
        total = epochs * steps_per_epoch
        steps = np.unique(np.concatenate([np.linspace(0, total - 1, 800).astype(int), np.arange(min(total, 200))]))
        ax.plot(steps / steps_per_epoch, [float(schedule(int(s))) for s in steps], color="C0")
        ax.set_title(f"{name}: {label}", fontsize=10)
        ax.set_xlabel(f"epoch (of {epochs})"); ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes[0, 0].set_ylabel("learning rate")
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
    """One value per row of a DataFrame (labelled by the index), each with its value written next to it.

    Linear scale: horizontal bars from zero, so their lengths compare. ``log_scale=True``: dots on a
    logarithmic axis and no bars, because a bar on a log axis starts at an arbitrary minimum and its
    length means nothing (37M would look like half of 41M).
    """
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(frame) + 1.2))
    colors = ["C0"] * len(frame)
    handles = {}
    if color_by is not None:
        groups = {g: f"C{i}" for i, g in enumerate(dict.fromkeys(frame[color_by]))}
        colors = [groups[g] for g in frame[color_by]]
        from matplotlib.lines import Line2D

        handles = {g: Line2D([], [], color=c, marker="s" if not log_scale else "o", linestyle="", label=str(g)) for g, c in groups.items()}
    labels = [str(i) for i in frame.index]
    values = frame[column].to_numpy(dtype=float)
    positions = np.arange(len(frame))
    if log_scale:
        ax.hlines(positions, values.min() / 1.5, values, colors="0.85", linewidth=1, zorder=1)
        ax.scatter(values, positions, color=colors, s=40, zorder=2)
        ax.set_xscale("log")
        ax.set_xlim(values.min() / 1.5, values.max() * 4)
        # plain numbers at 1, 2 and 5 times the powers of ten, and no minor labels, which overlap
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.6g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:
        ax.barh(positions, values, color=colors)
        ax.set_xlim(0, values.max() * 1.18 if values.max() > 0 else 1)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    for y, value in enumerate(values):
        ax.text(value * (1.12 if log_scale else 1), y, f" {value:,.0f}" if abs(value) >= 1000 else f" {value:.4g}", va="center", fontsize=8)
    if handles:
        # beside the axes, where it cannot cover a row
        ax.legend(handles=list(handles.values()), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    xlabel = column.replace("_", " ") + (" (log scale)" if log_scale else "")
    ax.set_xlabel(xlabel); ax.set_title(title); ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def feature_maps(activations: np.ndarray, columns: int = 8, title: str = "", label: str = "activation"):
    """Show the channels of one (height, width, channels) activation, all on one colour scale (so that
    channels compare), with a colour bar saying what a colour means."""
    activations = np.asarray(activations)
    channels = activations.shape[-1]
    rows = int(np.ceil(channels / columns))
    low, high = float(activations.min()), float(activations.max())
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1 + 0.9, rows * 1.1 + 0.2), squeeze=False)
    image = None
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < channels:
            image = ax.imshow(activations[..., index], cmap="viridis", vmin=low, vmax=high)
            ax.set_title(str(index), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return fig


# --- architecture pictures, drawn from the built model ------------------------------------------------

_BOX_COLOURS = {"Conv2D": "#9ecae1", "BatchNormalization": "#fdd0a2", "Activation": "#c7e9c0", "Add": "#ffffff",
                "ZeroPadShortcut": "#dadaeb", "MaxPooling2D": "#dadaeb", "ZeroPadding2D": "#eeeeee"}


def _box(ax, x, y, text, colour, width=2.6, height=0.72, fontsize=8):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.04",
                                fc=colour, ec="0.4", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, colour="0.3", **kwargs):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color=colour, lw=1, **kwargs))


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def block_diagram(model, block: str = "conv3_block1", ax=None):
    """Draw one residual block of a built model (e.g. ``"conv3_block1"``): its layers top to bottom with
    kernel, stride and output shape, and the shortcut beside them (identity, 1x1 projection or zero
    padding), read from the model itself (``analysis.block_layers``), so it follows n, version and
    shortcut. Returns the figure."""
    from resnet_utils import analysis

    table = analysis.block_layers(model, block)
    first_inputs = table.iloc[0]["inputs"]
    source = first_inputs[0] if first_inputs else "input"
    in_shape = _shape(model.get_layer(source).output.shape[1:]) if first_inputs else "?"
    main = table[~table["shortcut"] & ~table["type"].isin(["Add"]) & ~table["layer"].str.endswith("_out")]
    side = table[table["shortcut"]]
    add = table[table["type"] == "Add"]
    after = table[table["layer"].str.endswith("_out")]

    steps = len(main) + 3 + len(after)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 0.62 * steps + 0.6))
    else:
        fig = ax.figure
    y = 0.0
    _box(ax, 0, y, f"input ({source})\n{in_shape}", "white")
    top = y
    for _, row in main.iterrows():
        y -= 1
        _arrow(ax, (0, y + 0.64), (0, y + 0.36))
        detail = f"{row['type']} {row['kernel']}" + (f" /{row['stride']}" if row["kernel"] and row["stride"] != 1 else "")
        if row["type"] == "Activation":
            detail = "ReLU"
        _box(ax, 0, y, f"{row['layer']}\n{detail}  ->  {_shape(row['output_shape'])}", _BOX_COLOURS.get(row["type"], "white"))
    y -= 1
    _arrow(ax, (0, y + 0.64), (0, y + 0.36))
    add_shape = _shape(add.iloc[0]["output_shape"]) if len(add) else "?"
    _box(ax, 0, y, f"+  ({add.iloc[0]['layer'] if len(add) else 'add'})  ->  {add_shape}", "white")
    add_y = y
    # the shortcut, beside the main path
    x_side = 3.3
    if len(side):
        ys = np.linspace(top - 1.5, add_y + 1.5, len(side)) if len(side) > 1 else [(top + add_y) / 2]
        previous = (0 + 1.3, top)
        for y_side, (_, row) in zip(ys, side.iterrows()):
            label = {"Conv2D": f"Conv2D {row['kernel']} /{row['stride']}", "ZeroPadShortcut": "zero-pad channels, /2",
                     "BatchNormalization": "BatchNormalization"}.get(row["type"], row["type"])
            _box(ax, x_side, y_side, f"{row['layer']}\n{label}  ->  {_shape(row['output_shape'])}",
                 _BOX_COLOURS.get(row["type"], "white"), width=3.0)
            _arrow(ax, previous, (x_side, y_side + 0.36), colour="C1")
            previous = (x_side, y_side - 0.36)
        _arrow(ax, previous, (1.3, add_y), colour="C1")
        kind = "zero-padding shortcut (option A)" if (side["type"] == "ZeroPadShortcut").any() else "projection shortcut (option B)"
    else:
        ax.annotate("", xy=(1.3, add_y), xytext=(1.3, top), arrowprops=dict(arrowstyle="->", color="C1", lw=1.5,
                                                                           connectionstyle="arc3,rad=-0.35"))
        ax.text(x_side - 0.6, (top + add_y) / 2, "identity shortcut\n(no parameters)", color="C1", fontsize=9, va="center")
        kind = "identity shortcut"
    for _, row in after.iterrows():
        y -= 1
        _arrow(ax, (0, y + 0.64), (0, y + 0.36))
        _box(ax, 0, y, f"{row['layer']}\nReLU  ->  {_shape(row['output_shape'])}", _BOX_COLOURS["Activation"])
    ax.set_xlim(-1.6, 5.0); ax.set_ylim(y - 0.6, top + 0.6); ax.axis("off")
    params = int(table["parameters"].sum())
    ax.set_title(f"{model.name}: {block}, {kind}; {params:,} parameters", fontsize=10)
    fig.tight_layout()
    return fig


def architecture_diagram(models: dict, ax=None):
    """Networks side by side, stage by stage (stem, conv2..conv5, head): blocks, block type and the
    output shape of each stage, read from the built models (``analysis.stage_blocks``)."""
    from resnet_utils import analysis

    tables = {name: analysis.stage_blocks(model) for name, model in models.items()}
    order = ["conv1", "conv2", "conv3", "conv4", "conv5", "head"]
    stages = [s for s in order if any(s in t.index for t in tables.values())]
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.6 * len(models) + 0.8, 1.0 * (len(stages) + 1) + 0.4))
    else:
        fig = ax.figure
    colours = {"conv1": "#eeeeee", "head": "#eeeeee"}
    for column, (name, table) in enumerate(tables.items()):
        x = column * 3.6
        model = models[name]
        ax.text(x, 0.9, f"{name}\n{model.count_params():,} parameters", ha="center", va="center", fontsize=9, weight="bold")
        _box(ax, x, 0, f"input {_shape(model.input_shape[1:])}", "white", width=3.2, height=0.6)
        for row_index, stage in enumerate(stages, start=1):
            y = -row_index
            if stage not in table.index:
                ax.text(x, y, "(no such stage)", ha="center", va="center", fontsize=8, color="0.5")
                continue
            row = table.loc[stage]
            if stage == "conv1":
                text = f"stem: {row['kind']}\n-> {row['output']}"
            elif stage == "head":
                text = f"head: {row['kind']}\n-> {row['output']}"
            else:
                text = f"{stage}: {row['blocks']} x {row['kind']} block\n-> {row['output']}, {row['parameters'] / 1e6:.2f}M par."
            colour = colours.get(stage, "#9ecae1" if row["kind"] == "basic" else "#fdd0a2")
            _box(ax, x, y, text, colour, width=3.2, height=0.72)
            _arrow(ax, (x, y + 0.64), (x, y + 0.36))
    for row_index, stage in enumerate(stages, start=1):
        ax.text(-2.0, -row_index, stage, ha="right", va="center", fontsize=8, color="0.4")
    ax.set_xlim(-2.6, 3.6 * (len(models) - 1) + 1.9); ax.set_ylim(-len(stages) - 0.6, 1.4); ax.axis("off")
    fig.tight_layout()
    return fig


def sweep_plot(table: pd.DataFrame, columns=("parameters", "macs", "ms_per_step"), x: str = "depth"):
    """One panel per column of a sweep over n (``analysis.sweep`` plus timings), against depth; one
    line per version if the table has several."""
    columns = [c for c in columns if c in table]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.0 * len(columns), 3.2), squeeze=False)
    titles = {"parameters": "parameters (millions)", "macs": "MACs per image (millions)", "ms_per_step": "ms per training step"}
    scale = {"parameters": 1e6, "macs": 1e6, "ms_per_step": 1}
    for ax, column in zip(axes[0], columns):
        for version, part in table.groupby("version"):
            part = part.sort_values(x)
            ax.plot(part[x], part[column] / scale.get(column, 1), "o-", label=f"v{version}")
        ax.set_title(titles.get(column, column), fontsize=10); ax.set_xlabel(x); ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    if table["version"].nunique() > 1:
        axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
