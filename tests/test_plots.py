"""Figures: architecture pictures drawn from the built models, honest bar charts, one legend."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from resnet_utils import models, plots  # noqa: E402


def _texts(fig):
    return "\n".join(text.get_text() for ax in fig.axes for text in ax.texts) + "\n" + "\n".join(ax.get_title() for ax in fig.axes)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("version", [1, 2])
def test_block_diagram_follows_the_model(n, version):
    model = models.build_resnet(n, version)
    first_of_stage = _texts(plots.block_diagram(model, "conv3_block1"))
    plt.close("all")
    if version == 1:
        assert "conv3_block1_1_conv" in first_of_stage and "Conv2D 3x3 /2  ->  16x16x32" in first_of_stage
        assert "conv3_block1_0_conv" in first_of_stage and "projection shortcut" in first_of_stage
        assert "conv3_block1_out" in first_of_stage
    else:
        assert "conv3_block1_1_bn" in first_of_stage and "conv3_block1_3_conv" in first_of_stage
        assert "16x16x128" in first_of_stage and "conv3_block1_out" not in first_of_stage  # nothing after the addition
    assert f"resnet{models.depth_from_n(n, version)}v{version}" in first_of_stage
    if n >= 2:
        identity = _texts(plots.block_diagram(model, "conv3_block2"))
        plt.close("all")
        assert "identity shortcut" in identity and "_0_" not in identity


def test_block_diagram_zero_padding_and_resnet50():
    zeropad = _texts(plots.block_diagram(models.build_resnet(1, 1, shortcut="zeropad"), "conv4_block1"))
    assert "conv4_block1_0_pad" in zeropad and "zero-padding shortcut" in zeropad and "8x8x64" in zeropad
    resnet50 = _texts(plots.block_diagram(models.resnet50(), "conv2_block1"))
    assert "conv2_block1_0_conv" in resnet50 and "8x8x256" in resnet50
    with pytest.raises(ValueError, match="no block"):
        plots.block_diagram(models.build_resnet(1, 1), "conv5_block1")
    plt.close("all")


def test_architecture_diagram_stage_by_stage():
    text = _texts(plots.architecture_diagram({"ResNet20": models.build_resnet(3, 1), "ResNet50": models.resnet50()}))
    plt.close("all")
    assert "conv4: 3 x basic block\n-> 8x8x64" in text
    assert "conv5: 3 x bottleneck block\n-> 1x1x2048" in text
    assert "stem: 7x7 conv /2 + 3x3 max-pool /2\n-> 8x8x64" in text and "stem: 3x3 conv /1\n-> 32x32x16" in text
    assert "(no such stage)" in text  # ResNet20 has no conv5


def test_log_scale_draws_dots_not_bars():
    frame = pd.DataFrame({"macs": [41e6, 37e6, 1.2e9]}, index=["a", "b", "c"])
    log_fig = plots.bar_chart(frame, "macs", log_scale=True)
    assert len(log_fig.axes[0].patches) == 0  # no bar lengths on a log axis
    linear_fig = plots.bar_chart(frame, "macs")
    assert len(linear_fig.axes[0].patches) == 3 and linear_fig.axes[0].get_xlim()[0] == 0  # bars start at zero
    plt.close("all")


def test_learning_curves_one_legend_for_many_runs():
    logs = {f"run{i}": pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0], "val_loss": [2.1, 1.2], "accuracy": [0.3, 0.5],
                                     "val_accuracy": [0.3, 0.4], "learning_rate": [0.1, 0.01]}) for i in range(6)}
    fig = plots.learning_curves(logs)
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 6 + 2  # runs + "training"/"test"
    plt.close("all")


def test_sweep_plot_and_table():
    from resnet_utils import analysis

    table = analysis.sweep([1, 2, 3], version=1)
    assert table["depth"].tolist() == [8, 14, 20] and table.loc[3, "parameters"] == 274_442
    assert np.all(np.diff(table["macs"]) > 0)
    fig = plots.sweep_plot(table)
    assert len(fig.axes) == 2
    plt.close("all")


def test_explorer_follows_n_and_version_and_shows_a_picture(monkeypatch):
    import IPython.display

    from resnet_utils import explore

    model, line, stages = explore.summary(5, 1)
    assert "resnet32v1, depth 32 (6n+2), 470,218 parameters" in line and list(stages.index)[:2] == ["conv1", "conv2"]
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **kwargs: shown.extend(objects))
    explore.show(6, 2)
    pictures = [o for o in shown if isinstance(o, IPython.display.Image)]
    assert len(pictures) == 1 and pictures[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    calls = []
    monkeypatch.setattr(explore, "show", lambda *args: calls.append(args))
    monkeypatch.setenv(explore.LIVE_ENV, "live")  # as in JupyterLab (pytest runs in no kernel)
    widget = explore.explorer(3, 1)
    assert "starts at n = 3, v1" in repr(widget)
    widget.children[0].value = 5  # the slider
    widget.children[1].value = 2  # the version buttons; v2 has projection shortcuts only
    assert calls == [(3, 1, "projection", "conv3_block1"), (5, 1, "projection", "conv3_block1"), (5, 2, "projection", "conv3_block1")]
    calls.clear()
    assert explore.explorer(4, 2, live=False) is None and calls == [(4, 2, "projection")]  # no widgets, the start only


class _FakeKernel:
    def __init__(self, metadata):
        self.metadata = metadata

    def get_parent(self, channel=None):
        return {"header": {"msg_type": "execute_request"}, "metadata": self.metadata, "content": {}}


@pytest.mark.parametrize("metadata, live", [
    ({"deletedCells": [], "recordTiming": False, "cellId": "5d2b"}, True),  # JupyterLab 4 / Notebook 7
    ({}, False),                                                            # nbclient (papermill, nbconvert), nbval
])
def test_widgets_are_live_only_for_a_frontend_that_sends_cell_metadata(monkeypatch, metadata, live):
    import IPython

    from resnet_utils import explore

    monkeypatch.delenv(explore.LIVE_ENV, raising=False)
    shell = type("Shell", (), {"kernel": _FakeKernel(metadata)})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert explore.interactive_frontend() is live
    monkeypatch.setenv(explore.LIVE_ENV, "static")
    assert explore.interactive_frontend() is False
    monkeypatch.setenv(explore.LIVE_ENV, "live")
    assert explore.interactive_frontend() is True


def test_outside_a_kernel_there_are_no_live_widgets(monkeypatch):
    from resnet_utils import explore

    monkeypatch.delenv(explore.LIVE_ENV, raising=False)
    assert explore.interactive_frontend() is False
    calls = []
    monkeypatch.setattr(explore, "show", lambda *args: calls.append(args))
    assert explore.explorer(5, 1) is None and calls == [(5, 1, "projection")]


def test_papermill_in_real_mode_gets_the_static_explorer_and_does_not_hang(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.delenv("RESNET_SMOKE", raising=False)  # real mode: explorer(live=True), as a learner's "Run all"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from resnet_utils import explore\nexplore.explorer(2, 1, live=True)")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "explorer.ipynb")
    papermill.execute_notebook(str(tmp_path / "explorer.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3",
                               progress_bar=False, execution_timeout=300)
    outputs = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs
    kinds = {kind for output in outputs for kind in output.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" not in kinds and "image/png" in kinds
    assert any("run this cell in JupyterLab" in output.get("text", "") for output in outputs)


def test_bar_chart_legend_sits_beside_the_rows_and_log_ticks_are_plain_numbers():
    frame = pd.DataFrame({"s": [35.0, 180.0, 65.0], "machine": ["gpu", "gpu", "this machine"]}, index=["a", "b", "c"])
    fig = plots.bar_chart(frame, "s", log_scale=True, color_by="machine")
    ax = fig.axes[0]
    fig.canvas.draw()
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes_box.x1  # outside the axes: it covers no row, the last one included
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(label.replace(",", "").isdigit() for label in labels)  # 50, 100, 200: no "2 x 10^2"
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    plt.close("all")


def test_feature_maps_share_one_colour_scale_with_a_colour_bar():
    maps = np.stack([np.zeros((8, 8)), np.full((8, 8), 3.0), np.linspace(-1, 1, 64).reshape(8, 8)], axis=-1)
    fig = plots.feature_maps(maps, columns=3, label="value")
    images = [image for ax in fig.axes for image in ax.get_images()]
    assert len(images) == 3 and {image.get_clim() for image in images} == {(-1.0, 3.0)}
    assert any(ax.get_ylabel() == "value" for ax in fig.axes)  # the colour bar, labelled
    plt.close("all")
