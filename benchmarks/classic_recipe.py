"""The classic Keras CIFAR-10 ResNet recipe, reproduced on Keras 3: the baseline the benchmarks beat.

The example (keras-team/keras ``examples/cifar10_resnet.py``) scales pixels to [0, 1], subtracts
the per-pixel training mean, and trains with Adam at 1e-3 on batches of 32 drawn from
``ImageDataGenerator.flow``: random shifts of up to 10% (3 pixels) with nearest-pixel filling and
random horizontal flips, computed image by image in Python/NumPy/SciPy on the host, with 4 worker
threads. Its first learning-rate drop comes after epoch 80, so any run of up to 80 epochs of that
recipe is Adam at a constant 1e-3, which is what ``classic_optimizer`` returns.

Only the recipe is reproduced here; the model is the project's own ``build_resnet``, which the
tests prove layer-for-layer equal to the example's, with Keras's own ``BatchNormalization``
(``models.with_keras_batch_normalization``), as the example computes it.
"""

from __future__ import annotations

import keras
import numpy as np

#: The example's settings.
CLASSIC_BATCH_SIZE = 32
CLASSIC_LEARNING_RATE = 1e-3
CLASSIC_WORKERS = 4


def classic_inputs(images: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1] minus the mean image (``mean`` as ``data.pixel_mean``)."""
    return images.astype("float32") / 255.0 - np.asarray(mean, dtype="float32")


def classic_flow(images: np.ndarray, labels: np.ndarray, mean: np.ndarray, batch_size: int = CLASSIC_BATCH_SIZE,
                 seed: int = 0, workers: int = CLASSIC_WORKERS) -> keras.utils.PyDataset:
    """The example's augmented training stream: ``ImageDataGenerator(width_shift_range=0.1,
    height_shift_range=0.1, horizontal_flip=True, fill_mode="nearest").flow(...)``, shuffled every
    epoch, ``workers`` threads preparing batches (the example's ``workers=4``)."""
    import tensorflow as tf

    # Keras 3 keeps ImageDataGenerator only behind TensorFlow's tf.keras compatibility namespace.
    generator = tf.keras.preprocessing.image.ImageDataGenerator(
        width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True, fill_mode="nearest"
    )
    flow = generator.flow(classic_inputs(images, mean), np.asarray(labels).reshape(-1), batch_size=batch_size, seed=seed)
    flow.workers = workers  # Keras 3: the PyDataset's setting, where Keras 2 had fit(workers=4)
    return flow


def classic_optimizer() -> keras.optimizers.Optimizer:
    """Adam at the example's 1e-3 (its rate for the first 80 of its 200 epochs)."""
    return keras.optimizers.Adam(learning_rate=CLASSIC_LEARNING_RATE)
