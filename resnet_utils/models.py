"""CIFAR-10 ResNets (v1: depth 6n+2, v2: depth 9n+2) and ImageNet-style ResNet18/50 for 32x32.

``resnet_v1`` and ``resnet_v2`` are layer-for-layer equivalent to the classic Keras CIFAR-10 example
(same layers, same order, same parameter counts); only the layer names differ, chosen so that
``model.summary()`` reads as the architecture: ``conv1`` is the stem, ``conv2``/``conv3``/``conv4``
are the three stages (as in ``keras.applications``), ``conv3_block1_2_conv`` is the second
convolution of the first block of the second stage, ``conv3_block1_0_conv`` that block's shortcut.

Shortcuts where the shape changes (``shortcut=``):

* ``"projection"`` (He et al.'s option B, the Keras example): a 1x1 convolution with stride 2;
* ``"zeropad"`` (option A, the paper's CIFAR-10 models): subsample and pad with zero channels;
* ``"none"``: no shortcut at all, the "plain" networks of the paper's Figure 6.
"""

from __future__ import annotations

import numbers
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from resnet_utils._quiet import tensorflow as _tensorflow

_tensorflow()  # before Keras: TensorFlow's start-up lines filtered

import keras  # noqa: E402
from keras import layers  # noqa: E402

from resnet_utils.layers import BatchNormalization  # ours (fused); layers.BatchNormalization is Keras's
from resnet_utils.layers import ZeroPadShortcut, channel_axis, resnet_layer

SHORTCUTS = ("projection", "zeropad", "none")
VERSIONS = (1, 2)
CIFAR_INPUT_SHAPE = (32, 32, 3)
#: The most blocks per stage, the deepest nets of the two tables this collection reproduces, each
#: built, counted, run, saved and loaded by the tests: v1 n=200 is ResNet1202 (He et al., Table 6),
#: v2 n=111 is ResNet1001 (the Keras example's table). Deeper nets are refused: untested.
MAX_N = {1: 200, 2: 111}
#: From this many blocks per stage on, a net is built in a thread with a deep stack (see
#: ``call_with_deep_recursion``): Keras walks a functional graph recursively, and through the 4,209
#: layers of ResNet1202 v1 (n=200) that walk nests deeper than Python's default limit of 1,000 calls.
DEEP_N = 50
_DEEP_RECURSION_LIMIT = 50_000
_DEEP_STACK_BYTES = 256 * 1024 * 1024
_in_deep_thread = threading.local()

_T = TypeVar("_T")


def call_with_deep_recursion(function: Callable[..., _T], *args, **kwargs) -> _T:
    """``function(*args, **kwargs)``, run in a thread with a 256 MiB stack while Python's recursion
    limit is raised to 50,000, then restored; its result is returned and its exception raised here.

    Keras builds, and loads, a functional model by walking its graph recursively, so a net of
    thousands of layers (ResNet1202) exceeds Python's default limit of 1,000 frames, and raising the
    limit on the main thread's own stack (8 MiB) risks a crash instead of an error. Keras keeps some
    settings per thread; the caller's dtype policy, custom objects and TensorFlow distribution
    strategy are applied in the thread too. Called from inside such a thread, it just calls.
    """
    if getattr(_in_deep_thread, "active", False):
        return function(*args, **kwargs)
    policy = keras.config.dtype_policy()
    custom_objects = keras.saving.get_custom_objects().copy()
    strategy = _current_strategy()
    outcome: dict = {}

    def work():
        _in_deep_thread.active = True
        try:
            keras.config.set_dtype_policy(policy)
            with keras.saving.custom_object_scope(custom_objects):
                if strategy is None:
                    outcome["value"] = function(*args, **kwargs)
                else:
                    with strategy.scope():
                        outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # raised again in the caller's thread
            outcome["error"] = error

    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    sys.setrecursionlimit(max(old_limit, _DEEP_RECURSION_LIMIT))
    try:
        threading.stack_size(_DEEP_STACK_BYTES)
        thread = threading.Thread(target=work, name="resnet-utils-deep-graph")
        thread.start()
    finally:
        threading.stack_size(old_stack)
    try:
        thread.join()
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _current_strategy():
    """The TensorFlow distribution strategy whose scope the caller is in, or ``None``."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def _walk_graph(deep: bool, function: Callable[..., _T], *args, **kwargs) -> _T:
    """``function(*args, **kwargs)``, through ``call_with_deep_recursion`` if ``deep``."""
    return call_with_deep_recursion(function, *args, **kwargs) if deep else function(*args, **kwargs)


def load_model(path: str | Path, **kwargs) -> keras.Model:
    """``keras.models.load_model(path, **kwargs)`` for a net of any depth this module builds: loading
    walks the graph as building does, so it runs through ``call_with_deep_recursion``."""
    return call_with_deep_recursion(keras.models.load_model, path, **kwargs)


def save_model(model: keras.Model, path: str | Path, **kwargs) -> None:
    """``model.save(path, **kwargs)`` through ``call_with_deep_recursion``, for nets of any depth."""
    call_with_deep_recursion(model.save, path, **kwargs)


def _is_whole_number(value) -> bool:
    """True for Python and numpy integers; False for bools, floats and strings."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def depth_from_n(n: int, version: int = 1) -> int:
    """Number of weighted layers of a CIFAR ResNet: 6n+2 for v1, 9n+2 for v2.

    v1 has three stages of ``n`` blocks of two 3x3 convolutions (6n), plus the first convolution and
    the classifier (+2); v2's bottleneck blocks have three convolutions each (9n + 2).
    """
    version = _check_version(version)
    if not _is_whole_number(n) or n < 1:
        raise ValueError(f"n must be a whole number >= 1 (blocks per stage); got {n!r}.")
    _check_not_too_deep(int(n), version)
    return (6 if version == 1 else 9) * int(n) + 2


def _check_not_too_deep(n: int, version: int) -> None:
    if n > MAX_N[version]:
        deepest = (6 if version == 1 else 9) * MAX_N[version] + 2
        raise ValueError(
            f"n={n} is too deep: ResNet v{version} supports at most n={MAX_N[version]} (depth {deepest}), "
            "the deepest net of the paper's and the Keras example's tables and the deepest tested; choose a smaller n."
        )


def n_from_depth(depth: int, version: int = 1) -> int:
    """Blocks per stage for a given depth; raises ``ValueError`` naming valid depths if none fits."""
    version = _check_version(version)
    per_block = 6 if version == 1 else 9
    if not _is_whole_number(depth) or depth < per_block + 2 or (depth - 2) % per_block:
        examples = ", ".join(str(per_block * k + 2) for k in (1, 2, 3, 5, 6, 9, 12, 18))
        raise ValueError(
            f"ResNet v{version} depth must be {per_block}n+2 with n >= 1 "
            f"(valid depths: {examples}, ...); got {depth!r}."
        )
    n = (int(depth) - 2) // per_block
    _check_not_too_deep(n, version)
    return n


def _check_version(version: int) -> int:
    """``version`` as a plain int if it is 1 or 2 (``True`` and ``1.0`` are not versions)."""
    if not _is_whole_number(version) or version not in VERSIONS:
        raise ValueError(f"version must be 1 or 2 (ResNet v1 or v2); got {version!r}.")
    return int(version)


def _check_input_shape(input_shape: Sequence[int], smallest: int, why: str) -> tuple[int, int, int]:
    """``input_shape`` as a tuple of three whole numbers (height, width, channels; channels first
    under ``channels_first``), height and width at least ``smallest``; ``ValueError`` saying ``why``
    otherwise."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(_is_whole_number(d) and d >= 1 for d in shape):
        raise ValueError(f"input_shape must be (height, width, channels), e.g. (32, 32, 3); got {input_shape!r}.")
    spatial = shape[1:] if keras.config.image_data_format() == "channels_first" else shape[:2]
    if min(spatial) < smallest:
        raise ValueError(f"input_shape {shape} is too small: {why}, so height and width must be at least {smallest}.")
    return tuple(int(d) for d in shape)


#: The CIFAR nets halve the map twice (stride 2, "same" padding) and then average-pool 8x8.
_CIFAR_HEAD_REASON = "the CIFAR ResNets halve the image twice and then average-pool an 8x8 map"
_CIFAR_SMALLEST = 4 * 7 + 1  # ceil(ceil(h / 2) / 2) >= 8


def _check_shortcut(shortcut: str) -> None:
    if shortcut not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {', '.join(map(repr, SHORTCUTS))}; got {shortcut!r}.")


def _head(x: keras.KerasTensor, num_classes: int, output_dtype: str | None) -> keras.KerasTensor:
    """8x8 average pooling, flatten, softmax classifier (the example's classifier)."""
    x = layers.AveragePooling2D(pool_size=8, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    return layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer="he_normal",
        dtype=output_dtype,
        name="predictions",
    )(x)


def _shortcut(x, filters: int, strides: int, shortcut: str, name: str, conv_first: bool):
    """The shortcut branch of a block whose output shape differs from its input's."""
    if shortcut == "projection":
        return resnet_layer(
            x,
            num_filters=filters,
            kernel_size=1,
            strides=strides,
            activation=None,
            batch_normalization=False,
            conv_first=conv_first,
            name=name,
        )
    return ZeroPadShortcut(filters, strides, name=f"{name}_pad")(x)


def resnet_v1(
    input_shape: Sequence[int] = CIFAR_INPUT_SHAPE,
    depth: int = 20,
    num_classes: int = 10,
    shortcut: str = "projection",
    output_dtype: str | None = None,
) -> keras.Model:
    """ResNet v1 for CIFAR (He et al. 2016, Section 4.2): depth 6n+2, basic blocks.

    A 3x3 convolution with 16 filters, then three stages of ``n`` basic blocks with 16, 32 and 64
    filters on 32x32, 16x16 and 8x8 maps, then global average pooling and a softmax classifier.
    A basic block is conv3x3-BN-ReLU, conv3x3-BN, add the shortcut, ReLU. The first block of
    stages 2 and 3 halves the map with stride 2 and changes the shortcut as ``shortcut`` says.

    Args:
        input_shape: image shape, (32, 32, 3) for CIFAR.
        depth: 20, 32, 44, 56, 110, ... (6n+2).
        num_classes: size of the softmax.
        shortcut: ``"projection"`` (Keras example), ``"zeropad"`` (paper) or ``"none"`` (plain net).
        output_dtype: dtype of the classifier, e.g. ``"float32"`` under mixed precision.
    """
    n = n_from_depth(depth, 1)
    _check_shortcut(shortcut)
    input_shape = _check_input_shape(input_shape, _CIFAR_SMALLEST, _CIFAR_HEAD_REASON)
    return _walk_graph(n >= DEEP_N, _resnet_v1_graph, input_shape, n, num_classes, shortcut, output_dtype)


def _resnet_v1_graph(input_shape, n: int, num_classes: int, shortcut: str, output_dtype: str | None) -> keras.Model:
    depth = depth_from_n(n, 1)
    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_layer(inputs, num_filters=16, name="conv1")
    filters = 16
    for stage in range(3):
        for block in range(n):
            prefix = f"conv{stage + 2}_block{block + 1}"
            strides = 2 if stage > 0 and block == 0 else 1
            y = resnet_layer(x, num_filters=filters, strides=strides, name=f"{prefix}_1")
            y = resnet_layer(y, num_filters=filters, activation=None, name=f"{prefix}_2")
            if shortcut != "none":
                if strides != 1:
                    x = _shortcut(x, filters, strides, shortcut, f"{prefix}_0", conv_first=True)
                y = layers.Add(name=f"{prefix}_add")([x, y])
            x = layers.Activation("relu", name=f"{prefix}_out")(y)
        filters *= 2
    outputs = _head(x, num_classes, output_dtype)
    name = f"resnet{depth}v1" if shortcut != "none" else f"plain{depth}"
    return keras.Model(inputs, outputs, name=name)


def resnet_v2(
    input_shape: Sequence[int] = CIFAR_INPUT_SHAPE,
    depth: int = 56,
    num_classes: int = 10,
    shortcut: str = "projection",
    output_dtype: str | None = None,
) -> keras.Model:
    """ResNet v2 for CIFAR (He et al., "Identity Mappings in Deep Residual Networks"): depth 9n+2.

    Pre-activation bottleneck blocks: BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1, then add
    the shortcut with no activation after it, so the identity path stays clean from block to block.
    After a 3x3 conv-BN-ReLU stem with 16 filters, three stages of ``n`` blocks output 64, 128 and
    256 channels on 32x32, 16x16 and 8x8 maps (bottleneck widths 16, 64, 128). The first block of a
    stage changes the width, so its shortcut changes too; in the first stage that block skips its
    leading BN-ReLU because the stem has just applied one. A final BN-ReLU precedes the classifier.

    Args are as for :func:`resnet_v1`; ``depth`` is 56, 110, 164, ... (9n+2).
    """
    n = n_from_depth(depth, 2)
    _check_shortcut(shortcut)
    input_shape = _check_input_shape(input_shape, _CIFAR_SMALLEST, _CIFAR_HEAD_REASON)
    return _walk_graph(n >= DEEP_N, _resnet_v2_graph, input_shape, n, num_classes, shortcut, output_dtype)


def _resnet_v2_graph(input_shape, n: int, num_classes: int, shortcut: str, output_dtype: str | None) -> keras.Model:
    depth = depth_from_n(n, 2)
    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_layer(inputs, num_filters=16, conv_first=True, name="conv1")
    width = 16
    for stage in range(3):
        out_filters = width * 4 if stage == 0 else width * 2
        for block in range(n):
            prefix = f"conv{stage + 2}_block{block + 1}"
            first = block == 0
            strides = 2 if stage > 0 and first else 1
            skip_preact = stage == 0 and first
            y = resnet_layer(
                x,
                num_filters=width,
                kernel_size=1,
                strides=strides,
                activation=None if skip_preact else "relu",
                batch_normalization=not skip_preact,
                conv_first=False,
                name=f"{prefix}_1",
            )
            y = resnet_layer(y, num_filters=width, conv_first=False, name=f"{prefix}_2")
            y = resnet_layer(y, num_filters=out_filters, kernel_size=1, conv_first=False, name=f"{prefix}_3")
            if shortcut != "none":
                if first:
                    x = _shortcut(x, out_filters, strides, shortcut, f"{prefix}_0", conv_first=False)
                y = layers.Add(name=f"{prefix}_add")([x, y])
            x = y
        width = out_filters
    x = BatchNormalization(axis=channel_axis(), name="post_bn")(x)
    x = layers.Activation("relu", name="post_relu")(x)
    outputs = _head(x, num_classes, output_dtype)
    name = f"resnet{depth}v2" if shortcut != "none" else f"plain{depth}v2"
    return keras.Model(inputs, outputs, name=name)


def build_resnet(
    n: int = 3,
    version: int = 1,
    input_shape: Sequence[int] = CIFAR_INPUT_SHAPE,
    num_classes: int = 10,
    shortcut: str = "projection",
    output_dtype: str | None = None,
) -> keras.Model:
    """Build the CIFAR ResNet with ``n`` blocks per stage: ResNet(6n+2) v1 or ResNet(9n+2) v2.

    ``build_resnet(3, 1)`` is ResNet20 v1 (274,442 parameters), ``build_resnet(6, 2)`` ResNet56 v2.
    """
    depth = depth_from_n(n, version)
    builder = resnet_v1 if int(version) == 1 else resnet_v2
    return builder(input_shape, depth, num_classes, shortcut=shortcut, output_dtype=output_dtype)


def with_keras_batch_normalization(model: keras.Model) -> keras.Model:
    """A copy of ``model`` (same layers, names and weights) whose batch normalisations are Keras's
    own ``BatchNormalization`` instead of ``resnet_utils.layers.BatchNormalization`` (fused): the model as the
    Keras example computes it, for baselines and for measuring what the fused kernel saves."""

    def clone(layer):
        if isinstance(layer, BatchNormalization):
            return layers.BatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    # Cloning walks the graph as building does: a net of thousands of layers needs the deep stack too.
    copy = _walk_graph(len(model.layers) > 1000, keras.models.clone_model, model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def with_dtype_policy(model: keras.Model, policy: str = "float32") -> keras.Model:
    """A copy of ``model`` (same layers, names and weights) whose layers all compute in ``policy``:
    e.g. a net trained in mixed bfloat16, for predictions on a CPU without native bfloat16, where
    bfloat16 is slower than float32 and TensorFlow warns at every call."""

    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": policy})

    copy = _walk_graph(len(model.layers) > 1000, keras.models.clone_model, model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def plain_net(n: int = 3, **kwargs) -> keras.Model:
    """The paper's "plain" network: ResNet v1 with every shortcut removed (Figure 6)."""
    return build_resnet(n, 1, shortcut="none", **kwargs)


# --- ImageNet-style ResNets (He et al. Table 1) on 32x32 inputs -------------------------------------

IMAGENET_STEMS = ("imagenet", "cifar")
_BN_EPSILON = 1.001e-5  # as in keras.applications


def _check_stem(stem: str) -> None:
    if stem not in IMAGENET_STEMS:
        raise ValueError(f"stem must be 'imagenet' (7x7/2 conv + max-pool) or 'cifar' (3x3/1 conv); got {stem!r}.")


def _stem(x, stem: str, use_bias: bool):
    if stem == "imagenet":
        x = layers.ZeroPadding2D(padding=3, name="conv1_pad")(x)
        x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    else:
        x = layers.Conv2D(64, 3, strides=1, padding="same", use_bias=use_bias, name="conv1_conv")(x)
    x = BatchNormalization(axis=channel_axis(), epsilon=_BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    if stem == "imagenet":
        x = layers.ZeroPadding2D(padding=1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    return x


def _conv_bn(x, filters, kernel, strides, name, use_bias, relu=True):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=use_bias, name=f"{name}_conv")(x)
    x = BatchNormalization(axis=channel_axis(), epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _basic_block(x, filters, strides, name, use_bias):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, strides, f"{name}_0", use_bias, relu=False)
    y = _conv_bn(x, filters, 3, strides, f"{name}_1", use_bias)
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", use_bias, relu=False)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _bottleneck_block(x, filters, strides, name, use_bias):
    shortcut = x
    if strides != 1 or x.shape[-1] != 4 * filters:
        shortcut = _conv_bn(x, 4 * filters, 1, strides, f"{name}_0", use_bias, relu=False)
    y = _conv_bn(x, filters, 1, strides, f"{name}_1", use_bias)
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", use_bias)
    y = _conv_bn(y, 4 * filters, 1, 1, f"{name}_3", use_bias, relu=False)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def imagenet_resnet(
    blocks: Sequence[int],
    bottleneck: bool,
    stem: str = "imagenet",
    input_shape: Sequence[int] = CIFAR_INPUT_SHAPE,
    num_classes: int = 10,
    use_bias: bool | None = None,
    name: str = "resnet",
    output_dtype: str | None = None,
) -> keras.Model:
    """An ImageNet-style ResNet (four stages, widths 64-512) with either stem.

    ``stem="imagenet"`` is the 7x7 stride-2 convolution and 3x3 stride-2 max-pool of He et al.'s
    Table 1 (a 32x32 image is 8x8 after it); ``stem="cifar"`` is one 3x3 stride-1 convolution and no
    pooling, so the first stage sees the full 32x32 map. Layer names follow ``keras.applications``.
    ``use_bias`` defaults to ``True`` for bottleneck nets (as keras.applications.ResNet50) and
    ``False`` for basic-block nets (as torchvision's resnet18). ``output_dtype`` as in ``resnet_v1``.
    """
    _check_stem(stem)
    input_shape = _check_input_shape(input_shape, 1, "")
    use_bias = bottleneck if use_bias is None else use_bias
    block_fn = _bottleneck_block if bottleneck else _basic_block
    inputs = keras.Input(shape=input_shape, name="image")
    x = _stem(inputs, stem, use_bias)
    for stage, (count, filters) in enumerate(zip(blocks, (64, 128, 256, 512))):
        for block in range(count):
            strides = 2 if stage > 0 and block == 0 else 1
            x = block_fn(x, filters, strides, f"conv{stage + 2}_block{block + 1}", use_bias)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype=output_dtype, name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def resnet18(stem: str = "imagenet", input_shape=CIFAR_INPUT_SHAPE, num_classes: int = 10,
             output_dtype: str | None = None) -> keras.Model:
    """ResNet18 (basic blocks, [2, 2, 2, 2]); Keras ships none, so it is built here."""
    suffix = "" if stem == "imagenet" else "_cifar_stem"
    return imagenet_resnet([2, 2, 2, 2], False, stem, input_shape, num_classes, name=f"resnet18{suffix}",
                           output_dtype=output_dtype)


def resnet50(stem: str = "imagenet", input_shape=CIFAR_INPUT_SHAPE, num_classes: int = 10,
             output_dtype: str | None = None) -> keras.Model:
    """ResNet50 (bottleneck blocks, [3, 4, 6, 3]) with either stem.

    With the ImageNet stem it is layer for layer ``keras.applications.ResNet50(weights=None)`` (same
    names, shapes and maths; a test loads one's weights into the other and compares their outputs),
    but with the fused batch normalisation of ``resnet_utils.layers``, as every net here (for ResNet50
    it was measured no faster than Keras's layer on a CPU: benchmarks/RESULTS.md, section E).
    """
    suffix = "" if stem == "imagenet" else "_cifar_stem"
    return imagenet_resnet([3, 4, 6, 3], True, stem, input_shape, num_classes, name=f"resnet50{suffix}",
                           output_dtype=output_dtype)
