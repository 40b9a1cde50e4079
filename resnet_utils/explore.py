"""An interactive explorer of the CIFAR ResNets for JupyterLab: choose n and v1/v2, and the depth,
parameters, MACs, feature maps and block diagram follow (drawn from the built model).

``explorer(n, version)`` returns an ipywidgets control (JupyterLab 4 renders it; ``pip install
ipywidgets``). Without ipywidgets, or to get the same view in a script, ``show(n, version)`` displays
it for one choice. Nothing here trains a model you keep (`measure_step_ms` times a few steps on random data).
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import pandas as pd

from resnet_utils import analysis, plots
from resnet_utils.models import build_resnet, depth_from_n


def summary(n: int, version: int = 1, shortcut: str = "projection"):
    """(model, one-line description, per-stage table) of ``build_resnet(n, version, shortcut)``."""
    model = build_resnet(n, version, shortcut=shortcut)
    macs = analysis.total_macs(model)
    line = (f"n = {n}, v{version}: {model.name}, depth {depth_from_n(n, version)} "
            f"({'6n+2' if version == 1 else '9n+2'}), {model.count_params():,} parameters, "
            f"{macs / 1e6:,.1f}M multiply-accumulates per image")
    stages = analysis.stage_blocks(model)
    stages["parameters"] = stages["parameters"].map("{:,}".format)
    stages["MACs (M)"] = (stages.pop("macs") / 1e6).round(2)
    return model, line, stages


def show(n: int, version: int = 1, shortcut: str = "projection", block: str = "conv3_block1"):
    """Display the description, the stage table and the diagram of ``block`` for one model."""
    from IPython.display import Image, display

    model, line, stages = summary(n, version, shortcut)
    print(line)
    display(stages)
    fig = plots.block_diagram(model, block)
    # Shown as a PNG made here, then the figure freed: plt.show() in a widget callback also flushes
    # whatever other figure pyplot holds open (seen in JupyterLab as a garbled v2 diagram).
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    display(Image(png.getvalue()))


LIVE_ENV = "RESNET_WIDGETS"  # "live" or "static": overrides the detection of an interactive frontend


def interactive_frontend() -> bool:
    """Whether the code runs in a kernel that a person drives from a notebook frontend that shows
    widgets (JupyterLab, Notebook 7, Colab), rather than one run by a program (papermill, nbconvert,
    nbval, any ``nbclient`` runner), or in no kernel at all.

    The signal: JupyterLab and Notebook 7 send every cell's ``execute_request`` with metadata
    (``cellId``, ``deletedCells``, ``recordTiming``); ``nbclient`` and nbval send it with none. Colab
    is recognised by its ``google.colab`` module. ``RESNET_WIDGETS=live`` or ``=static`` decides
    instead, for a frontend this misreads.
    """
    import os
    import sys

    chosen = os.environ.get(LIVE_ENV, "").strip().lower()
    if chosen in ("live", "static"):
        return chosen == "live"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:  # a terminal IPython or a plain script: nobody renders widgets
        return False
    if "google.colab" in sys.modules:
        return True
    try:
        parent = kernel.get_parent("shell")
    except Exception:  # an older ipykernel without get_parent(channel)
        parent = getattr(kernel, "_parent_header", {}) or {}
    return bool(parent.get("metadata"))


def explorer(n: int = 3, version: int = 1, shortcut: str = "projection", max_n: int = 30, live: bool = True):
    """A slider for n and buttons for v1/v2 (start values: the arguments, e.g. the parameters cell).

    The widgets are built only where a person can move them (``interactive_frontend()``); a notebook
    run by a program (nbval, papermill, nbconvert) gets the starting point as a static figure: such
    runs have nobody to move the slider, and they can hang on the widgets' messages after the cell
    has finished (jupyter/nbclient#312; seen here with papermill). ``live=False`` (the notebooks pass
    it in smoke mode) asks for the static view anywhere.
    """
    if not (live and interactive_frontend()):
        print(f"[n explorer: run this cell in JupyterLab to use the slider; it starts at n = {n}, v{version}]")
        show(n, version, shortcut)
        return None
    try:
        import ipywidgets as widgets
    except ImportError:  # no widgets: show the starting point only
        print("ipywidgets is not installed (pip install ipywidgets): showing n and version from the parameters cell.")
        show(n, version, shortcut)
        return None
    n_slider = widgets.IntSlider(value=n, min=1, max=max_n, description="n", continuous_update=False)
    version_buttons = widgets.ToggleButtons(options=[("v1 (basic)", 1), ("v2 (bottleneck)", 2)], value=version,
                                            description="version")
    shortcut_buttons = widgets.ToggleButtons(options=["projection", "zeropad"], value=shortcut, description="shortcut")
    block_buttons = widgets.ToggleButtons(options=["conv2_block1", "conv3_block1", "conv3_block2"], value="conv3_block1",
                                          description="block")
    output = widgets.interactive_output(
        lambda n, version, shortcut, block: show(n, version, shortcut if version == 1 else "projection", block),
        {"n": n_slider, "version": version_buttons, "shortcut": shortcut_buttons, "block": block_buttons})
    class Explorer(widgets.VBox):
        def __repr__(self):  # what a page without a live kernel (GitHub, nbconvert) shows instead of the controls
            return f"[n explorer: run this cell in JupyterLab to use the slider; it starts at n = {n}, v{version}]"

    return Explorer([n_slider, version_buttons, shortcut_buttons, block_buttons, output])


def measure_step_ms(model, batch_size: int = 128, steps: int = 5) -> float:
    """Milliseconds per SGD training step of ``model`` on random 32x32 images: the median of ``steps``
    individually timed steps after one warm-up step (the median shrugs off a step slowed by another
    program). A cost measurement, not training: the weights learn nothing useful."""
    import time

    import keras
    import numpy as np

    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, 10, size=batch_size)
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def sweep_with_timing(ns, version: int = 1, time_steps: bool = True, batch_size: int = 128, steps: int = 5) -> pd.DataFrame:
    """``analysis.sweep`` plus milliseconds per training step (batch ``batch_size``) when ``time_steps``."""
    table = analysis.sweep(ns, version)
    if time_steps:
        table["ms_per_step"] = [round(measure_step_ms(build_resnet(n, version), batch_size, steps)) for n in table.index]
    return table
