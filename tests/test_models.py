"""The models are the facts the notebooks teach: counts, shapes, layer order and the errors."""

import keras
import numpy as np
import pytest
from keras import layers

from resnet_utils import models
from resnet_utils.analysis import paper_parameter_count
from resnet_utils.layers import BatchNormalization as FusedBatchNormalization  # ours: Keras's layer, fused kernel
from resnet_utils.layers import ZeroPadShortcut, resnet_layer

# Parameter counts of the classic Keras CIFAR-10 example (Keras 3), by (version, depth).
KERAS_EXAMPLE_PARAMETERS = {
    (1, 20): 274_442, (1, 32): 470_218, (1, 44): 665_994, (1, 56): 861_770, (1, 110): 1_742_762,
    (2, 56): 1_673_738, (2, 110): 3_323_210, (2, 164): 4_972_682,
}
# He et al. 2016, Table 6 (option A shortcuts), rounded to 0.01M / 0.1M.
PAPER_TABLE_6 = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


@pytest.mark.parametrize("version,depth", sorted(KERAS_EXAMPLE_PARAMETERS))
def test_parameter_counts_match_the_keras_example(version, depth):
    builder = models.resnet_v1 if version == 1 else models.resnet_v2
    assert builder(depth=depth).count_params() == KERAS_EXAMPLE_PARAMETERS[(version, depth)]


@pytest.mark.parametrize("depth", sorted(PAPER_TABLE_6))
def test_zero_padding_shortcuts_match_the_papers_rounded_counts(depth):
    millions = paper_parameter_count(models.resnet_v1(depth=depth, shortcut="zeropad")) / 1e6
    digits = 1 if depth == 110 else 2
    assert round(millions, digits) == PAPER_TABLE_6[depth]


@pytest.mark.parametrize("n,version,depth", [(3, 1, 20), (9, 1, 56), (18, 1, 110), (6, 2, 56), (12, 2, 110)])
def test_build_resnet_derives_depth_from_n(n, version, depth):
    assert models.depth_from_n(n, version) == depth
    assert models.n_from_depth(depth, version) == n
    model = models.build_resnet(n, version)
    assert model.name == f"resnet{depth}v{version}"
    assert model.count_params() == KERAS_EXAMPLE_PARAMETERS.get((version, depth), model.count_params())


def _reference(version: int, depth: int) -> keras.Model:
    """An independent, anonymous-layer build of the Keras example's architecture (test oracle)."""
    def unit(x, filters, kernel=3, strides=1, act="relu", bn=True, conv_first=True):
        conv = layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal",
                             kernel_regularizer=keras.regularizers.L2(1e-4))
        if conv_first:
            x = conv(x)
        if bn:
            x = layers.BatchNormalization()(x)
        if act:
            x = layers.Activation(act)(x)
        return x if conv_first else conv(x)

    inputs = keras.Input((32, 32, 3))
    x = unit(inputs, 16)
    if version == 1:
        blocks, filters = (depth - 2) // 6, 16
        for stage in range(3):
            for b in range(blocks):
                s = 2 if stage and not b else 1
                y = unit(unit(x, filters, strides=s), filters, act=None)
                if s == 2:
                    x = unit(x, filters, kernel=1, strides=2, act=None, bn=False)
                x = layers.Activation("relu")(layers.Add()([x, y]))
            filters *= 2
    else:
        blocks, width = (depth - 2) // 9, 16
        for stage in range(3):
            out = width * (4 if stage == 0 else 2)
            for b in range(blocks):
                s = 2 if stage and not b else 1
                first_of_all = stage == 0 and b == 0
                y = unit(x, width, 1, s, None if first_of_all else "relu", not first_of_all, False)
                y = unit(unit(y, width, conv_first=False), out, 1, conv_first=False)
                if b == 0:
                    x = unit(x, out, 1, s, None, False)
                x = layers.Add()([x, y])
            width = out
        x = layers.Activation("relu")(layers.BatchNormalization()(x))
    x = layers.Flatten()(layers.AveragePooling2D(8)(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax", kernel_initializer="he_normal")(x))


def _signature(model: keras.Model) -> list:
    rows = []
    for layer in model.layers[1:]:
        config = layer.get_config()
        keep = {k: config.get(k) for k in ("filters", "kernel_size", "strides", "padding", "activation", "pool_size", "units")}
        keep["l2"] = (config.get("kernel_regularizer") or {}).get("config", {}).get("l2")
        keep["init"] = (config.get("kernel_initializer") or {}).get("class_name")
        parents = [t.shape for t in layer._inbound_nodes[0].input_tensors]
        # Our BatchNormalization is Keras's, computed by the fused kernel (tested to agree below).
        kind = "BatchNormalization" if isinstance(layer, keras.layers.BatchNormalization) else type(layer).__name__
        rows.append((kind, keep, [tuple(w.shape) for w in layer.weights], parents, layer.output.shape))
    return rows


@pytest.mark.parametrize("version,depth", [(1, 20), (1, 32), (2, 29), (2, 56)])
def test_layer_for_layer_equivalent_to_the_keras_example(version, depth):
    ours = (models.resnet_v1 if version == 1 else models.resnet_v2)(depth=depth)
    assert _signature(ours) == _signature(_reference(version, depth))


def test_layer_names_read_as_the_architecture():
    names = [layer.name for layer in models.build_resnet(3, 1).layers]
    for expected in ("conv1_conv", "conv2_block1_1_conv", "conv2_block3_2_bn", "conv3_block1_0_conv",
                     "conv4_block3_add", "conv4_block3_out", "avg_pool", "predictions"):
        assert expected in names
    assert not any(name.startswith("conv5") for name in names)


def test_output_and_stage_shapes():
    model = models.build_resnet(3, 1)
    assert model.output.shape == (None, 10)
    for stage, shape in (("conv2_block3_out", (32, 32, 16)), ("conv3_block3_out", (16, 16, 32)), ("conv4_block3_out", (8, 8, 64))):
        assert model.get_layer(stage).output.shape[1:] == shape
    v2 = models.build_resnet(2, 2)
    for stage, shape in (("conv2_block2_add", (32, 32, 64)), ("conv3_block2_add", (16, 16, 128)), ("conv4_block2_add", (8, 8, 256))):
        assert v2.get_layer(stage).output.shape[1:] == shape
    assert models.build_resnet(1, 1, num_classes=100).output.shape == (None, 100)


def test_resnet_layer_orders_and_shapes():
    inputs = keras.Input((32, 32, 8))
    v1 = keras.Model(inputs, resnet_layer(inputs, 16, strides=2, name="a"))
    assert [type(l).__name__ for l in v1.layers[1:]] == ["Conv2D", "BatchNormalization", "Activation"]
    assert v1.output.shape == (None, 16, 16, 16)
    v2 = keras.Model(inputs, resnet_layer(inputs, 16, conv_first=False, name="b"))
    assert [type(l).__name__ for l in v2.layers[1:]] == ["BatchNormalization", "Activation", "Conv2D"]
    assert v2.output.shape == (None, 32, 32, 16)
    # 3*3*8*16 kernel + 16 bias, BN on 16 (v1) or 8 (v2) channels: 4 numbers each
    assert v1.count_params() == 3 * 3 * 8 * 16 + 16 + 4 * 16
    assert v2.count_params() == 3 * 3 * 8 * 16 + 16 + 4 * 8


def test_shortcut_options_agree_where_they_must():
    projection = models.build_resnet(3, 1)
    zeropad = models.build_resnet(3, 1, shortcut="zeropad")
    plain = models.build_resnet(3, 1, shortcut="none")
    # Option A adds no parameters: the only difference is the two 1x1 projections (16->32, 32->64).
    assert projection.count_params() - zeropad.count_params() == (16 * 32 + 32) + (32 * 64 + 64)
    assert zeropad.count_params() == plain.count_params()
    assert not any(isinstance(l, layers.Add) for l in plain.layers)
    assert sum(isinstance(l, layers.Add) for l in zeropad.layers) == 9
    # With the same weights, the first stage (no shape change) computes the same function.
    for layer in zeropad.layers:
        if layer.weights:
            layer.set_weights(projection.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    stage = lambda m: keras.Model(m.input, m.get_layer("conv2_block3_out").output)(x)  # noqa: E731
    np.testing.assert_allclose(stage(projection), stage(zeropad), rtol=1e-6)
    block = lambda m: keras.Model(m.input, m.get_layer("conv3_block1_add").output)(x)  # noqa: E731
    assert not np.allclose(block(projection), block(zeropad))


def test_zero_pad_shortcut_subsamples_and_pads_channels():
    x = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 2)
    y = np.asarray(ZeroPadShortcut(6, 2)(x))
    assert y.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
    assert not y[..., :2].any() and not y[..., 4:].any()


def test_models_with_custom_layer_round_trip_through_keras_files(tmp_path):
    model = models.build_resnet(1, 1, shortcut="zeropad")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.ones((1, 32, 32, 3), "float32")
    np.testing.assert_allclose(model(x), loaded(x), rtol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda: models.resnet_v1(depth=21), r"6n\+2 .*valid depths: 8, 14, 20"),
    (lambda: models.resnet_v1(depth=2), r"6n\+2"),
    (lambda: models.resnet_v2(depth=21), r"9n\+2 .*valid depths: 11, 20, 29"),
    (lambda: models.build_resnet(0, 1), "n must be"),
    (lambda: models.build_resnet(2.5, 1), "n must be"),
    (lambda: models.build_resnet(3, 3), "version must be 1 or 2"),
    (lambda: models.build_resnet(3, 1, shortcut="identity"), "shortcut must be one of"),
    (lambda: models.resnet18(stem="tiny"), "stem must be"),
])
def test_bad_arguments_raise_value_errors_naming_valid_values(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_imagenet_resnets():
    keras50 = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)
    ours50 = models.resnet50()
    assert keras50.count_params() == ours50.count_params() == 23_608_202
    assert [(l.name, [tuple(w.shape) for w in l.weights]) for l in keras50.layers[1:]] == \
           [(l.name, [tuple(w.shape) for w in l.weights]) for l in ours50.layers[1:]]
    # Layer for layer the same net: Keras's weights loaded into ours give Keras's outputs, in
    # inference and in training mode (batch statistics), with the fused batch normalisation.
    rng = np.random.default_rng(0)
    for layer in keras50.layers:  # moving statistics away from 0/1, so inference mode tests them
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2, variance.shape)])
    ours50.set_weights(keras50.get_weights())
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    outputs = [keras.ops.convert_to_numpy(model(images, training=False)) for model in (ours50, keras50)]
    np.testing.assert_allclose(*outputs, atol=1e-5)
    # Training mode normalises by the batch's statistics, over 32 values per channel at conv5's 1x1
    # maps: the two kernels' round-off differs there, so the outputs agree less tightly.
    images = rng.normal(size=(32, 32, 32, 3)).astype("float32")
    outputs = [keras.ops.convert_to_numpy(model(images, training=True)) for model in (ours50, keras50)]
    np.testing.assert_allclose(*outputs, atol=2e-3)
    assert sum(isinstance(l, FusedBatchNormalization) for l in ours50.layers) == 53
    assert keras50.get_layer("pool1_pool").output.shape[1:3] == (8, 8)
    assert keras50.get_layer("conv5_block3_out").output.shape[1:3] == (1, 1)
    cifar50 = models.resnet50("cifar")
    assert cifar50.get_layer("conv2_block3_out").output.shape[1:3] == (32, 32)
    assert cifar50.get_layer("conv5_block3_out").output.shape[1:3] == (4, 4)
    r18 = models.resnet18()
    assert 11.1e6 < r18.count_params() < 11.3e6
    assert sum(isinstance(l, layers.Add) for l in r18.layers) == 8
    # The CIFAR stem swaps 7x7x3x64 for 3x3x3x64 weights and nothing else.
    assert r18.count_params() - models.resnet18("cifar").count_params() == (49 - 9) * 3 * 64


@pytest.mark.parametrize("n,version", [(3, 1), (2, 2)])
def test_channels_first_builds_the_same_network(n, version):
    """The benchmark's channels-first layout: same layers, same weights, BN over axis 1."""
    reference = models.build_resnet(n, version)
    keras.config.set_image_data_format("channels_first")
    try:
        transposed = models.build_resnet(n, version, input_shape=(3, 32, 32))
    finally:
        keras.config.set_image_data_format("channels_last")
    assert [layer.name for layer in transposed.layers] == [layer.name for layer in reference.layers]
    assert transposed.count_params() == reference.count_params()
    assert all(layer.axis in (1, [1]) for layer in transposed.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert transposed.output_shape == (None, 10)


@pytest.mark.parametrize("build", [lambda d: models.resnet18("cifar", output_dtype=d), lambda d: models.resnet50("imagenet", output_dtype=d),
                                   lambda d: models.build_resnet(3, 1, output_dtype=d)])
def test_under_mixed_precision_the_classifier_can_stay_float32(build):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build("float32")
        plain = build(None)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.output.dtype == "float32" and plain.output.dtype == "bfloat16"
    assert model.count_params() == plain.count_params()


# --- issue 12, item 7 and 8: input validation --------------------------------------------------------------


def test_numpy_integers_are_whole_numbers():
    import numpy as np

    from resnet_utils.models import build_resnet, depth_from_n, n_from_depth

    assert depth_from_n(np.int64(3), np.int32(1)) == 20 and type(depth_from_n(np.int64(3))) is int
    assert n_from_depth(np.int64(56), 2) == 6
    assert build_resnet(np.int64(1), np.int64(1)).count_params() == 78_666


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_a_version_that_is_not_1_or_2_is_refused(version):
    from resnet_utils.models import build_resnet

    with pytest.raises(ValueError, match="version must be 1 or 2"):
        build_resnet(1, version)


@pytest.mark.parametrize("call,message", [
    (lambda m: m.build_resnet(201), r"n=201 is too deep: ResNet v1 supports at most n=200 \(depth 1202\)"),
    (lambda m: m.build_resnet(112, 2), r"n=112 is too deep: ResNet v2 supports at most n=111 \(depth 1001\)"),
    (lambda m: m.resnet_v1(depth=6002), "n=1000 is too deep"),
    (lambda m: m.resnet_v2(depth=1010), "n=112 is too deep"),
    (lambda m: m.build_resnet(1, input_shape=(16, 16, 3)), r"input_shape \(16, 16, 3\) is too small: .*at least 29"),
    (lambda m: m.build_resnet(1, input_shape=(32, 32)), r"input_shape must be \(height, width, channels\)"),
    (lambda m: m.resnet18(input_shape=(32, 0, 3)), r"input_shape must be \(height, width, channels\)"),
])
def test_impossible_models_are_refused_at_once(call, message):
    from resnet_utils import models

    with pytest.raises(ValueError, match=message):
        call(models)


def _bn_pair(policy: str, axis: int = -1, shape=(8, 6, 6, 5)):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras_bn, fused_bn = layers.BatchNormalization(axis=axis), FusedBatchNormalization(axis=axis)
        keras_bn.build(shape), fused_bn.build(shape)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    weights = [np.random.default_rng(i).uniform(0.5, 2, shape[axis]).astype("float32") for i in range(4)]
    keras_bn.set_weights(weights), fused_bn.set_weights(weights)
    return keras_bn, fused_bn


@pytest.mark.parametrize("policy,tolerance", [("float32", 1e-5), ("mixed_bfloat16", 1e-2)])  # bf16: 8-bit mantissa
@pytest.mark.parametrize("axis", [-1, 1])
def test_fused_batch_normalization_is_kerass_batch_normalization(policy, tolerance, axis):
    import tensorflow as tf

    shape = (8, 6, 6, 5) if axis == -1 else (8, 5, 6, 6)
    keras_bn, fused_bn = _bn_pair(policy, axis, shape)
    assert isinstance(fused_bn, layers.BatchNormalization)
    assert keras_bn.get_config() | {"name": None} == fused_bn.get_config() | {"name": None}
    x = tf.constant(np.random.default_rng(0).normal(2, 3, size=shape), keras_bn.compute_dtype)
    for training in (True, False):  # training: batch statistics and one moving-average update
        out_keras, out_fused = keras_bn(x, training=training), fused_bn(x, training=training)
        assert out_fused.dtype == out_keras.dtype == keras_bn.compute_dtype
        scale = float(np.abs(np.float32(out_keras)).max())
        np.testing.assert_allclose(np.float32(out_fused), np.float32(out_keras), atol=tolerance * scale)
    for ours, theirs in zip(fused_bn.weights, keras_bn.weights):  # same moving mean and (biased) variance
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)


def test_fused_batch_normalization_gradient_matches_float64_maths():
    import tensorflow as tf

    x = np.random.default_rng(0).normal(2, 3, size=(8, 6, 6, 5))
    weight = np.arange(5.0)
    gamma, beta = np.random.default_rng(1).uniform(0.5, 2, 5), np.random.default_rng(2).uniform(0.5, 2, 5)

    def input_gradient(layer_call, dtype):
        xt = tf.constant(x, dtype)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(tf.cast(layer_call(xt), "float64") ** 2 * weight)
        return tape.gradient(loss, xt).numpy()

    def float64_maths(xt):
        mean, variance = tf.nn.moments(xt, [0, 1, 2])
        return tf.nn.batch_normalization(xt, mean, variance, tf.constant(beta), tf.constant(gamma), 1e-3)

    fused_bn = FusedBatchNormalization()
    fused_bn.build(x.shape)
    fused_bn.set_weights([gamma.astype("float32"), beta.astype("float32"), np.zeros(5, "float32"), np.ones(5, "float32")])
    exact = input_gradient(float64_maths, "float64")
    fused = input_gradient(lambda xt: fused_bn(xt, training=True), "float32")
    assert np.abs(fused - exact).max() <= 5e-3 * np.abs(exact).max()


def test_fused_batch_normalization_saves_and_loads(tmp_path):
    model = models.build_resnet(1, 1)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("conv1_bn")) is FusedBatchNormalization
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), rtol=1e-6)


def test_with_keras_batch_normalization_is_the_same_model_with_kerass_layer():
    model = models.build_resnet(1, 2)
    plain = models.with_keras_batch_normalization(model)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    assert all(type(layer) is layers.BatchNormalization for layer in plain.layers if isinstance(layer, layers.BatchNormalization))
    assert [layer.name for layer in plain.layers] == [layer.name for layer in model.layers]
    assert _signature(plain) == _signature(model)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(plain(x, training=False), model(x, training=False), rtol=1e-5, atol=1e-6)


def test_models_saved_with_the_layers_earlier_name_still_load():
    from pathlib import Path

    model = keras.models.load_model(Path(__file__).parent.parent / "results" / "resnet20v1-default-4ep" / "best.keras", compile=False)
    assert isinstance(model.get_layer("conv1_bn"), FusedBatchNormalization) and model.count_params() == 274_442


# --- the deepest nets of the tables: ResNet1202 v1 (He et al., Table 6) and ResNet1001 v2 (the Keras
# example's table). Tens of seconds each to build: Keras creates over 3,000 layers. Built once here.

DEEPEST = {(1, 1202): 19_558_378, (2, 1001): 30_539_498}  # Keras's count_params(), option B shortcuts


@pytest.fixture(scope="module")
def resnet1202v1():
    return models.resnet_v1(depth=1202)


def test_resnet1202_v1_builds_with_its_parameter_count(resnet1202v1):
    import sys

    limit = sys.getrecursionlimit()
    assert resnet1202v1.name == "resnet1202v1" and resnet1202v1.count_params() == DEEPEST[(1, 1202)]
    # The paper's Table 6 says 19.4M (learned weights only, as paper_parameter_count counts).
    assert round(paper_parameter_count(resnet1202v1) / 1e6, 1) == 19.4
    assert sum(isinstance(layer, (layers.Conv2D, layers.Dense)) and "_0_" not in layer.name
               for layer in resnet1202v1.layers) == 1202  # weighted layers on the main path
    assert models.build_resnet(1, 1).count_params() and sys.getrecursionlimit() == limit  # limit restored


@pytest.mark.slow  # over a minute on a busy 2-core CPU
def test_resnet1001_v2_builds_with_its_parameter_count():
    model = models.build_resnet(models.n_from_depth(1001, 2), 2)
    assert model.name == "resnet1001v2" and model.count_params() == DEEPEST[(2, 1001)]


@pytest.mark.slow  # about a minute and a half on a busy 2-core CPU
def test_resnet1202_v1_saves_loads_and_runs(resnet1202v1, tmp_path):
    path = tmp_path / "resnet1202v1.keras"
    resnet1202v1.save(path)  # Keras's own save walks the graph within Python's default limit
    loaded = models.load_model(path)  # keras.models.load_model alone ends in a RecursionError
    assert loaded.name == "resnet1202v1" and loaded.count_params() == DEEPEST[(1, 1202)]
    assert all(np.array_equal(a, b) for a, b in zip(resnet1202v1.get_weights(), loaded.get_weights()))
    # Untrained, its BN's moving statistics (mean 0, variance 1) let the signal grow through 600 blocks
    # to overflow in inference mode, so the forward pass normalises with the batch's statistics.
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(loaded(images, training=True))
    assert probabilities.shape == (2, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


def test_a_deep_build_keeps_the_callers_dtype_policy_and_errors(monkeypatch):
    # Nets from DEEP_N blocks per stage are built in another thread, where Keras keeps its own settings.
    monkeypatch.setattr(models, "DEEP_N", 1)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.build_resnet(1, 1, output_dtype="float32")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16" and model.output.dtype == "float32"

    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():  # e.g. training's MirroredStrategy: the thread builds in the caller's scope
        assert models.call_with_deep_recursion(tf.distribute.get_strategy) is strategy
    assert models.call_with_deep_recursion(tf.distribute.has_strategy) is False

    def fail():
        raise KeyError("raised in the thread")

    with pytest.raises(KeyError, match="raised in the thread"):
        models.call_with_deep_recursion(fail)
