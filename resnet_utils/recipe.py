"""What a training recipe is: the schedules' names and defaults, each schedule's recipe (learning
rate, weight decay, label smoothing, BN momentum, warm-up), the fields that make a run's identity,
what runs recorded before a field existed used, and how a recipe is set on a built model.

Plain Python, no TensorFlow at import time: the command line's ``--help`` and the readers of run
folders (:mod:`resnet_utils.runs`) use it without loading Keras. The learning-rate schedules, the
optimizer and the loss that carry a recipe out are Keras objects and live in
:mod:`resnet_utils.training`.
"""

from __future__ import annotations

SCHEDULES = ("keras", "paper", "fast")
ARCHS = ("cifar", "resnet18", "resnet50")
#: Epochs each schedule was designed for (``paper``: 64k iterations of batch 128 on 50k images).
DEFAULT_EPOCHS = {"keras": 200, "paper": 164, "fast": 30}
DEFAULT_BATCH_SIZE = {"keras": 32, "paper": 128, "fast": 128}
#: The ``fast`` schedule's linear warm-up, as a fraction of all training steps, before the
#: ``warmup`` recipe field existed (runs recorded without the field used it).
FAST_WARMUP = 0.05
#: Each schedule's recipe: ``learning_rate``, the peak (Adam's for ``keras``, SGD's otherwise);
#: ``weight_decay``, the decay d on every convolution kernel (gradient d*w: Keras's ``L2(1e-4)`` in
#: the loss is d = 2e-4); ``label_smoothing`` (0: plain cross-entropy); ``bn_momentum`` of the moving
#: statistics (Keras's default 0.99); ``warmup``, the fraction of the steps over which the ``fast``
#: schedule's rate rises linearly to its peak (``keras`` and ``paper`` have none).
DEFAULT_RECIPE = {
    "keras": {"learning_rate": 1e-3, "weight_decay": 2e-4, "label_smoothing": 0.0, "bn_momentum": 0.99, "warmup": 0.0},
    "paper": {"learning_rate": 0.1, "weight_decay": 2e-4, "label_smoothing": 0.0, "bn_momentum": 0.99, "warmup": 0.0},
    # chosen on held-out training images by benchmarks/recipe_screen.py (benchmarks/RESULTS.md)
    "fast": {"learning_rate": 0.2, "weight_decay": 5e-4, "label_smoothing": 0.1, "bn_momentum": 0.9, "warmup": FAST_WARMUP},
}
RECIPE_FIELDS = ("learning_rate", "weight_decay", "label_smoothing", "bn_momentum", "warmup")

#: Fields of config.json that define a run; a folder holding a run that differs in one is refused.
IDENTITY_FIELDS = ("arch", "n", "version", "shortcut", "stem", "schedule", "epochs", "batch_size", "seed", "data", "limit_train",
                   "learning_rate", "weight_decay", "label_smoothing", "bn_momentum", "warmup", "validation_split")
#: What runs made before the recipe fields existed used, for comparing their folders' identities.
LEGACY_IDENTITY = {"weight_decay": 2e-4, "label_smoothing": 0.0, "bn_momentum": 0.99, "validation_split": 0.0}
LEGACY_LEARNING_RATE = {"keras": 1e-3, "paper": 0.1, "fast": 0.1}


def legacy_identity(schedule: str | None) -> dict:
    """The identity fields that a run folder recorded before they existed took, for ``schedule``:
    the recipe of the time (peak 0.1 for ``fast``), a 5% warm-up for ``fast``, no validation split."""
    return {**LEGACY_IDENTITY, "learning_rate": LEGACY_LEARNING_RATE.get(schedule),
            "warmup": FAST_WARMUP if schedule == "fast" else 0.0}


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")


def apply_recipe(model, config) -> None:
    """Set the recipe's training-only settings on a freshly built model, without changing a layer
    or a parameter: the L2 factor of every kernel penalty (``weight_decay / 2``, since Keras's
    ``L2(l)`` adds ``l * sum(w**2)`` to the loss, whose gradient is ``2 * l * w``) and the momentum
    of every batch normalisation's moving averages. ``config`` is a ``training.TrainConfig`` (or
    anything with ``weight_decay`` and ``bn_momentum``)."""
    import keras

    for layer in model.layers:
        regularizer = getattr(layer, "kernel_regularizer", None)
        if isinstance(regularizer, keras.regularizers.L2):
            regularizer.l2 = config.weight_decay / 2
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = config.bn_momentum
