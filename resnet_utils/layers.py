"""The one building block every CIFAR ResNet here is made of: ``resnet_layer``.

A ``resnet_layer`` is a 2-D convolution, a batch normalisation and an activation. ResNet v1 applies
them in that order (conv -> BN -> ReLU); ResNet v2 ("pre-activation") applies BN -> ReLU first and
the convolution last. Every convolution uses ``padding="same"``, He-normal initialisation and an L2
penalty of 1e-4 on its kernel, as in the classic Keras CIFAR-10 example.

The module also holds ``ZeroPadShortcut``, the parameter-free shortcut of He et al. (option A), and
``BatchNormalization``: Keras's batch normalisation layer, computed by one fused TensorFlow kernel.
"""

from __future__ import annotations

from resnet_utils._quiet import tensorflow as _tensorflow

_tensorflow()  # before Keras: TensorFlow's start-up lines filtered

import keras  # noqa: E402
from keras import layers

#: L2 penalty on every convolution kernel (the Keras example's ``l2(1e-4)``).
WEIGHT_DECAY = 1e-4


def channel_axis() -> int:
    """The channel axis under Keras's image data format: -1 for ``channels_last`` (the default,
    and the fastest layout on CPUs and on GPUs with mixed precision), 1 for ``channels_first``."""
    return 1 if keras.config.image_data_format() == "channels_first" else -1


def resnet_layer(
    inputs: keras.KerasTensor,
    num_filters: int = 16,
    kernel_size: int = 3,
    strides: int = 1,
    activation: str | None = "relu",
    batch_normalization: bool = True,
    conv_first: bool = True,
    name: str | None = None,
) -> keras.KerasTensor:
    """Apply conv -> BN -> activation (``conv_first=True``) or BN -> activation -> conv.

    Args:
        inputs: the tensor to transform, shaped (batch, height, width, channels).
        num_filters: number of output channels of the convolution.
        kernel_size: side of the square convolution kernel (3 or 1 in these networks).
        strides: 2 halves height and width (used to downsample), 1 keeps them.
        activation: name of a Keras activation, or ``None`` for no activation.
        batch_normalization: whether to include the batch normalisation.
        conv_first: ``True`` for the ResNet v1 order, ``False`` for the v2 (pre-activation) order.
        name: prefix for the layer names; the layers are called ``{name}_conv``, ``{name}_bn`` and
            ``{name}_{activation}``, so ``name="conv2_block1_1"`` gives ``conv2_block1_1_conv``...

    Returns:
        The output tensor. With ``padding="same"`` its height and width are the input's divided by
        ``strides`` (rounded up) and it has ``num_filters`` channels.
    """

    def layer_name(suffix: str) -> str | None:
        return f"{name}_{suffix}" if name else None

    conv = layers.Conv2D(
        num_filters,
        kernel_size=kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(WEIGHT_DECAY),
        name=layer_name("conv"),
    )

    def normalise_and_activate(x: keras.KerasTensor) -> keras.KerasTensor:
        if batch_normalization:
            x = BatchNormalization(axis=channel_axis(), name=layer_name("bn"))(x)
        if activation is not None:
            x = layers.Activation(activation, name=layer_name(activation))(x)
        return x

    if conv_first:
        return normalise_and_activate(conv(inputs))
    return conv(normalise_and_activate(inputs))


@keras.saving.register_keras_serializable(package="resnet_utils")
class ZeroPadShortcut(layers.Layer):
    """He et al.'s option-A shortcut: subsample by ``strides`` and zero-pad the new channels.

    It has no weights. Where a stage halves the feature map and doubles the width, the shortcut
    keeps every ``strides``-th pixel and appends zero channels (half before, half after, as in the
    common PyTorch CIFAR implementations), so ``x + F(x)`` still lines up.
    """

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        shrink = lambda size: None if size is None else -(-size // self.strides)  # noqa: E731
        return (batch, shrink(height), shrink(width), self.filters)

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        missing = self.filters - inputs.shape[-1]
        if missing < 0:
            raise ValueError(
                f"ZeroPadShortcut cannot shrink {inputs.shape[-1]} channels to {self.filters}; "
                "use a projection shortcut instead."
            )
        before = missing // 2
        return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [before, missing - before]])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package="resnet_utils")
class BatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization``, computed by TensorFlow's fused batch-norm kernel.

    It keeps Keras's class name, so ``model.summary()`` and the architecture tables read exactly as
    for the Keras example; ``resnet_utils.layers.BatchNormalization`` is a subclass of Keras's.

    The same layer in every respect that defines the model: the same four weights per channel
    (gamma, beta, moving mean, moving variance), the same momentum and epsilon, batch statistics
    while training and moving averages otherwise, the moving variance updated with the biased batch
    variance as Keras does. Only the computation differs: Keras 3 normalises with about ten separate
    element-wise operations, each a pass over the activations, and under mixed precision it first
    casts them to float32 and back. The fused kernel (oneDNN on a CPU, cuDNN on a GPU) does it in one
    pass, reads bfloat16/float16 activations as they are and keeps its statistics in float32. That
    makes a ResNet20 training step about twice as fast on a CPU (``benchmarks/RESULTS.md``).

    It falls back to Keras's own computation wherever the fused kernel does not apply: another
    Keras backend, an input that is not 4-D, a normalisation axis that is not the channel axis, a
    mask, or batch renormalisation.
    """

    def _fused_layout(self, inputs) -> str | None:
        if keras.backend.backend() != "tensorflow" or len(inputs.shape) != 4 or self.renorm:
            return None
        axis = self.axis if isinstance(self.axis, int) else (self.axis[0] if len(self.axis) == 1 else None)
        if axis in (3, -1):
            return "NHWC"
        return "NCHW" if axis == 1 else None

    def call(self, inputs, training=None, mask=None):
        layout = self._fused_layout(inputs)
        if layout is None or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1 if layout == "NHWC" else 1]
        gamma = self.gamma if self.scale else tf.ones([channels], "float32")
        beta = self.beta if self.center else tf.zeros([channels], "float32")
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format=layout, is_training=True
            )
            # The kernel returns the unbiased (n-1) batch variance; Keras averages the biased one.
            size = tf.cast(tf.size(inputs) // channels, "float32")
            variance = variance * (size - 1.0) / size
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
            return outputs
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon, data_format=layout, is_training=False,
        )
        return outputs


@keras.saving.register_keras_serializable(package="resnet_utils")
class FusedBatchNormalization(BatchNormalization):
    """The same layer under the name it had when some run folders of 2026-11-28 were saved; kept so
    that their ``.keras`` files load (Keras finds a layer's weights by its class name). New models
    use ``BatchNormalization``."""
