"""How a recipe is carried out in Keras: the learning-rate schedules (``keras``, ``paper``,
``fast``), the optimizer that follows them, and the label-smoothed loss for integer labels.

What each schedule's defaults are lives in :mod:`resnet_utils.recipe` (plain Python, no Keras).
"""

from __future__ import annotations

from typing import Any

from resnet_utils._quiet import tensorflow as _tensorflow

_tensorflow()  # before Keras: TensorFlow's start-up lines filtered

import keras  # noqa: E402
import numpy as np  # noqa: E402

from resnet_utils.recipe import DEFAULT_RECIPE, check_schedule  # noqa: E402


@keras.saving.register_keras_serializable(package="resnet_utils")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``base_lr * factors[k]`` where ``k`` is how many ``boundaries`` (in steps) have been reached.

    ``StepDecay(0.1, [32000, 48000], [1, 0.1, 0.01])`` is the paper's schedule: 0.1 up to step
    31,999, 0.01 from step 32,000, 0.001 from step 48,000.
    """

    def __init__(self, base_lr: float, boundaries: list[int], factors: list[float]):
        if len(factors) != len(boundaries) + 1:
            raise ValueError("StepDecay needs one more factor than boundaries.")
        self.base_lr = float(base_lr)
        self.boundaries = [int(b) for b in boundaries]
        self.factors = [float(f) for f in factors]

    def __call__(self, step):
        step = keras.ops.convert_to_tensor(step, dtype="int64")
        index = keras.ops.sum(keras.ops.cast(keras.ops.greater_equal(step, self.boundaries), "int32"))
        return self.base_lr * keras.ops.take(keras.ops.convert_to_tensor(self.factors, "float32"), index)

    def get_config(self):
        return {"base_lr": self.base_lr, "boundaries": self.boundaries, "factors": self.factors}


def make_schedule(name: str, epochs: int, steps_per_epoch: int, peak: float | None = None,
                  warmup: float | None = None) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate per step for a schedule.

    * ``keras``: the Keras example's Adam schedule, 1e-3, times 0.1 after 40% of training (epoch 80
      of 200), 0.01 after 60%, 1e-3 after 80%, 5e-4 after 90%.
    * ``paper``: He et al.'s SGD schedule, 0.1, divided by 10 at 50% and 75% of training
      (iterations 32k and 48k of 64k).
    * ``fast``: for short budgets, a linear warm-up to the peak over the first ``warmup`` fraction
      of the steps, then cosine decay to zero (SGD with Nesterov momentum). A warm-up of 0.25-0.3
      gives the rate the shape of fastai's one-cycle policy (without its momentum cycle).

    Boundaries scale with ``epochs``, so a shorter run keeps the shape of the schedule. ``peak`` and
    ``warmup`` replace the schedule's values in ``DEFAULT_RECIPE``.
    """
    check_schedule(name)
    peak = DEFAULT_RECIPE[name]["learning_rate"] if peak is None else float(peak)
    warmup = DEFAULT_RECIPE[name]["warmup"] if warmup is None else warmup
    if name != "fast" and warmup:
        raise ValueError(f"The {name} schedule has no warm-up (warmup {warmup!r}); a warm-up belongs to the fast schedule.")
    _check_positive("epochs", epochs)
    _check_positive("steps_per_epoch", steps_per_epoch)
    total = epochs * steps_per_epoch
    if name == "keras":
        # The example lowers the rate "when epoch > 80" (0-based), i.e. from epoch 81 of 200 on.
        starts = [int(epochs * e / 200) + 1 for e in (80, 120, 160, 180)]
        return StepDecay(peak, [s * steps_per_epoch for s in starts], [1.0, 1e-1, 1e-2, 1e-3, 0.5e-3])
    if name == "paper":
        return StepDecay(peak, [total // 2, total * 3 // 4], [1.0, 0.1, 0.01])
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup is a fraction of the training steps, from 0 up to (not including) 1; got {warmup!r}.")
    warmup_steps = int(total * warmup)  # none in a very short run: a one-step run would train at rate 0
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total - warmup_steps), alpha=0.0, warmup_target=peak, warmup_steps=warmup_steps
    )


def make_optimizer(name: str, epochs: int, steps_per_epoch: int, learning_rate: float | None = None,
                   warmup: float | None = None) -> keras.optimizers.Optimizer:
    """Adam for the Keras example's schedule, SGD with momentum 0.9 for ``paper`` and ``fast``."""
    schedule = make_schedule(name, epochs, steps_per_epoch, learning_rate, warmup)
    if name == "keras":
        return keras.optimizers.Adam(learning_rate=schedule)
    return keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=name == "fast")


def _check_positive(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive whole number; got {value!r}.")


@keras.saving.register_keras_serializable(package="resnet_utils")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy against integer labels smoothed by ``smoothing``: the target puts
    ``1 - smoothing`` on the true class plus ``smoothing / classes`` on every class (as Keras's
    ``CategoricalCrossentropy(label_smoothing=...)`` does for one-hot labels)."""

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        y_pred = keras.ops.cast(y_pred, "float32")
        log_probabilities = keras.ops.log(keras.ops.clip(y_pred, 1e-7, 1.0))
        true_term = -keras.ops.take_along_axis(log_probabilities, keras.ops.cast(keras.ops.reshape(y_true, (-1, 1)), "int32"), axis=-1)[:, 0]
        uniform_term = -keras.ops.mean(log_probabilities, axis=-1)
        return (1.0 - self.smoothing) * true_term + self.smoothing * uniform_term

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}
