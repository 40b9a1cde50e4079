"""Tables about a built model, as pandas DataFrames: parameters per stage, multiply-accumulates
(MACs) per layer, feature-map sizes per stage, and receptive fields.

Stages are read from the layer names (``conv1`` is the stem, ``conv2``..``conv5`` the stages, the
rest the head), which holds for every model in :mod:`resnet_utils.models` and for
``keras.applications.ResNet50``.
"""

from __future__ import annotations

from resnet_utils._quiet import tensorflow as _tensorflow

_tensorflow()  # before Keras: TensorFlow's start-up lines filtered

import keras  # noqa: E402
import numpy as np
import pandas as pd
from keras import layers


def stage_of(layer_name: str) -> str:
    """``"conv3_block1_2_conv"`` -> ``"conv3"``; stem layers -> ``"conv1"``; the classifier -> ``"head"``."""
    prefix = layer_name.split("_")[0]
    if prefix in ("conv1", "pool1"):
        return "conv1"
    if prefix.startswith("conv") and prefix[4:].isdigit():
        return prefix
    if prefix in ("image", "input"):
        return "input"
    return "head"


def _inputs_of(layer: layers.Layer) -> list[str]:
    """Names of the layers whose outputs feed ``layer`` (in a functional model)."""
    node = layer._inbound_nodes[0] if layer._inbound_nodes else None
    if node is None:
        return []
    return [tensor._keras_history.operation.name for tensor in node.input_tensors]


def _macs(layer: layers.Layer) -> int:
    """Multiply-accumulates of one forward pass of one image through ``layer`` (conv and dense only)."""
    if isinstance(layer, layers.Conv2D):
        _, height, width, out_channels = layer.output.shape
        kernel_h, kernel_w, in_channels, _ = layer.kernel.shape
        return int(height * width * kernel_h * kernel_w * in_channels * out_channels)
    if isinstance(layer, layers.Dense):
        return int(layer.kernel.shape[0] * layer.kernel.shape[1])
    return 0


def layer_table(model: keras.Model) -> pd.DataFrame:
    """One row per layer: name, stage, type, output shape, parameters, MACs per 32x32 image, and the
    receptive field (in input pixels) of one output position along the deepest path."""
    field: dict[str, tuple[int, int]] = {}  # layer name -> (receptive field, jump)
    rows = []
    for layer in model.layers:
        parents = _inputs_of(layer)
        rf, jump = max((field[p] for p in parents if p in field), default=(1, 1))
        if isinstance(layer, (layers.Conv2D, layers.MaxPooling2D, layers.AveragePooling2D)):
            kernel = layer.kernel_size[0] if isinstance(layer, layers.Conv2D) else layer.pool_size[0]
            stride = layer.strides[0]
            rf, jump = rf + (kernel - 1) * jump, jump * stride
        field[layer.name] = (rf, jump)
        shape = layer.output.shape
        rows.append({
            "layer": layer.name,
            "stage": stage_of(layer.name),
            "type": type(layer).__name__,
            "output_shape": tuple(shape[1:]),
            "parameters": int(layer.count_params()),
            "macs": _macs(layer),
            "receptive_field": rf if len(shape) == 4 else None,
        })
    return pd.DataFrame(rows)


def _is_main_path_weighted(table: pd.DataFrame) -> pd.Series:
    """Conv/dense layers that count towards a ResNet's depth (shortcut projections ``*_0_conv`` do not)."""
    return table["type"].isin(["Conv2D", "Dense"]) & ~table["layer"].str.contains("_0_conv")


def total_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one image (convolutions and dense layers)."""
    return int(sum(_macs(layer) for layer in model.layers))


def stage_table(model: keras.Model) -> pd.DataFrame:
    """One row per stage: parameters, MACs, output feature map (height x width x channels), and
    how many weighted layers it holds (conv/dense on the main path: the "depth" of ResNet20 is 20;
    projection shortcuts are not counted, as in the paper)."""
    table = layer_table(model)
    table = table[table["stage"] != "input"]
    weighted = _is_main_path_weighted(table)
    grouped = table.assign(weighted=weighted).groupby("stage", sort=False)
    result = pd.DataFrame({
        "parameters": grouped["parameters"].sum(),
        "macs": grouped["macs"].sum(),
        "weighted_layers": grouped["weighted"].sum(),
        "output": grouped["output_shape"].last().map(lambda s: " x ".join(map(str, s))),
    })
    result.loc["total"] = [result["parameters"].sum(), result["macs"].sum(), result["weighted_layers"].sum(), ""]
    return result


def feature_map_table(model: keras.Model) -> pd.DataFrame:
    """Spatial size and width of the feature map after each stage (what a 32x32 image becomes)."""
    table = layer_table(model)
    table = table[table["receptive_field"].notna() & (table["stage"] != "head")]
    last = table.groupby("stage", sort=False).last()
    return pd.DataFrame({
        "height": last["output_shape"].map(lambda s: s[0]),
        "width": last["output_shape"].map(lambda s: s[1]),
        "channels": last["output_shape"].map(lambda s: s[2]),
        "receptive_field": last["receptive_field"].astype(int),
    })


def receptive_field(model: keras.Model) -> int:
    """Receptive field (pixels) of one position of the last feature map before global pooling."""
    table = layer_table(model)
    return int(table[table["stage"] != "head"]["receptive_field"].dropna().iloc[-1])


def summarize(models: dict[str, keras.Model]) -> pd.DataFrame:
    """One row per model: weighted layers, parameters, MACs, and the final feature map."""
    rows = []
    for name, model in models.items():
        table = layer_table(model)
        spatial = table[table["receptive_field"].notna() & (table["stage"] != "head")].iloc[-1]
        rows.append({
            "model": name,
            "weighted_layers": int(_is_main_path_weighted(table).sum()),
            "parameters": int(model.count_params()),
            "macs": int(table["macs"].sum()),
            "last_feature_map": "x".join(map(str, spatial["output_shape"][:2])),
            "receptive_field": int(spatial["receptive_field"]),
        })
    return pd.DataFrame(rows).set_index("model")


def paper_parameter_count(model: keras.Model) -> int:
    """Parameters as He et al. count them: trainable weights, without convolution biases.

    Keras's ``count_params()`` also counts each BN layer's moving mean and variance (not learned)
    and a bias in every convolution (redundant before BN; the paper's Caffe models have none).
    With these left out, ``shortcut="zeropad"`` ResNets give the paper's Table 6 figures.
    """
    total = 0
    for layer in model.layers:
        for weight in layer.trainable_weights:
            if isinstance(layer, layers.Conv2D) and weight is layer.bias:
                continue
            total += int(np.prod(weight.shape))
    return total


def block_layers(model: keras.Model, block: str) -> pd.DataFrame:
    """The layers of one residual block (e.g. ``"conv3_block1"``) in network order, with what feeds
    each one (``inputs``), and whether it is on the shortcut path (``*_0_*`` layers)."""
    rows = []
    for layer in model.layers:
        if layer.name.startswith(block + "_"):
            rows.append({
                "layer": layer.name,
                "type": type(layer).__name__,
                "kernel": "x".join(map(str, layer.kernel_size)) if isinstance(layer, layers.Conv2D) else "",
                "stride": layer.strides[0] if isinstance(layer, layers.Conv2D) else (getattr(layer, "strides", None) or ""),
                "output_shape": tuple(layer.output.shape[1:]),
                "parameters": int(layer.count_params()),
                "inputs": _inputs_of(layer),
                "shortcut": "_0_" in layer.name,
            })
    if not rows:
        raise ValueError(f"{model.name} has no block {block!r}; blocks are named like 'conv2_block1'.")
    return pd.DataFrame(rows)


def stage_blocks(model: keras.Model) -> pd.DataFrame:
    """One row per stage: how many blocks, which kind, the stem's layers, and the output shape."""
    table = layer_table(model)
    rows = []
    for stage, part in table[table["stage"] != "input"].groupby("stage", sort=False):
        blocks = part["layer"].str.extract(r"_block(\d+)_")[0].dropna()
        convs = part[(part["type"] == "Conv2D") & ~part["layer"].str.contains("_0_conv")]
        if stage == "conv1":
            parts = []
            for _, row in part.iterrows():
                layer = model.get_layer(row["layer"])
                if isinstance(layer, layers.Conv2D):
                    parts.append(f"{layer.kernel_size[0]}x{layer.kernel_size[1]} conv /{layer.strides[0]}")
                elif isinstance(layer, layers.MaxPooling2D):
                    parts.append(f"{layer.pool_size[0]}x{layer.pool_size[1]} max-pool /{layer.strides[0]}")
            kind = " + ".join(parts)
        elif stage == "head":
            kind = "global average pool + dense"
        else:
            per_block = len(convs) // max(1, blocks.nunique())
            kind = {2: "basic", 3: "bottleneck"}.get(per_block, f"{per_block}-conv")
        shape = part["output_shape"].iloc[-1]
        rows.append({"stage": stage, "blocks": int(blocks.nunique()), "kind": kind,
                     "output": "x".join(map(str, shape)), "parameters": int(part["parameters"].sum()),
                     "macs": int(part["macs"].sum())})
    return pd.DataFrame(rows).set_index("stage")


def sweep(ns, version: int = 1, shortcut: str = "projection") -> pd.DataFrame:
    """Depth, parameters and MACs per image of ``build_resnet(n, version)`` for every n in ``ns``."""
    from resnet_utils.models import build_resnet, depth_from_n

    rows = []
    for n in ns:
        model = build_resnet(n, version, shortcut=shortcut)
        rows.append({"n": n, "version": version, "depth": depth_from_n(n, version), "model": model.name,
                     "parameters": int(model.count_params()), "macs": total_macs(model)})
    return pd.DataFrame(rows).set_index("n")
