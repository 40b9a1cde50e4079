"""Two more recipe levers, screened on held-out training images: the warm-up's length (5% as in the
default, 15%, and 30%, the rate shape of a one-cycle policy) and an exponential moving average (EMA)
of the weights.

    python benchmarks/investigations/warmup_ema_screen.py --epochs 4 --data folder --data-dir "$CIFAR10_DIR"

ResNet20 v1 with the default recipe (``training.DEFAULT_RECIPE["fast"]``) but for the warm-up (the
``warmup`` recipe field, ``train --warmup``), 45,000 training images,
accuracy on the 5,000 held out (``--validation-split 0.1``, the paper's split); the test set is never
looked at. Each warm-up is one training run. Averaging the weights does not change the training
steps, so every run also keeps EMAs of all its weights (batch-norm statistics included, as timm's
``ModelEmaV2`` does) after every batch, and after each epoch the held-out images are scored with the
trained weights and with each average: a paired comparison on the same run. Prints a Markdown table
(and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np

from resnet_utils import data as data_lib
from resnet_utils import training

WARMUPS = (0.05, 0.15, 0.3)
EMA_MOMENTA = (0.99, 0.999)


class WeightAverages(keras.callbacks.Callback):
    """Keeps ``average = m * average + (1 - m) * weight`` for every weight of the model (trainable
    or not) after each batch, for each momentum m, and scores the held-out images with each
    average after every epoch (the trained weights are put back before the next batch)."""

    def __init__(self, momenta, eval_ds, y_eval):
        super().__init__()
        self.momenta, self.eval_ds, self.y_eval = momenta, eval_ds, y_eval
        self.averages = None
        self.rows = []

    def on_train_batch_end(self, batch, logs=None):
        weights = [np.asarray(w, dtype=np.float64) for w in self.model.get_weights()]
        if self.averages is None:
            self.averages = {m: [w.copy() for w in weights] for m in self.momenta}
            return
        for m, average in self.averages.items():
            for a, w in zip(average, weights):
                a *= m
                a += (1 - m) * w

    def _accuracy(self) -> float:
        probabilities = self.model.predict(self.eval_ds, verbose=0)
        return float(np.mean(probabilities.argmax(axis=1) == self.y_eval))

    def on_epoch_end(self, epoch, logs=None):
        trained = self.model.get_weights()
        row = {"epoch": epoch + 1, "trained": self._accuracy()}
        for m, average in self.averages.items():
            self.model.set_weights([a.astype(w.dtype) for a, w in zip(average, trained)])
            row[f"ema {m}"] = self._accuracy()
        self.model.set_weights(trained)
        self.rows.append(row)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def screen(warmup: float, epochs: int, data: data_lib.CifarData, seed: int = 0) -> tuple[list[dict], float, int]:
    """Train one run with the given warm-up; return its per-epoch held-out accuracies, s/epoch and
    the number of training images."""
    config = training.TrainConfig(out="", epochs=epochs, validation_split=0.1, seed=seed, warmup=warmup)
    x_train, y_train, x_eval, y_eval, _ = training._training_images(data, config)
    mean = data_lib.pixel_mean(x_train)
    keras.utils.set_random_seed(seed)
    steps = math.ceil(len(x_train) / config.batch_size)
    model, _ = training.compile_model(config, steps)
    train_ds = data_lib.make_dataset(x_train, y_train, mean, config.batch_size, training=True, seed=seed)
    eval_ds = data_lib.make_dataset(x_eval, y_eval, mean, 500)
    averages = WeightAverages(EMA_MOMENTA, eval_ds, y_eval)
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, callbacks=[averages], verbose=2)
    return averages.rows, (time.perf_counter() - start) / epochs, len(x_train)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data", default="auto")
    parser.add_argument("--data-dir")
    parser.add_argument("--warmups", type=float, nargs="*", default=list(WARMUPS))
    parser.add_argument("--seed", type=int, default=0, help="weights, order and augmentation (as train's --seed)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    data = data_lib.load_cifar10(args.data, args.data_dir)
    command = "python benchmarks/investigations/warmup_ema_screen.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.data_dir:  # the reader's own data folder, not this machine's
        command = command.replace(args.data_dir, '"$CIFAR10_DIR"')
    names = ["trained"] + [f"ema {m}" for m in EMA_MOMENTA]
    lines = ["| warm-up | " + " | ".join(names) + " | s/epoch |", "|---" * (len(names) + 2) + "|"]
    per_epoch = ["", f"Per epoch ({' / '.join(names)}):", "",
                 "| warm-up | " + " | ".join(f"epoch {e}" for e in range(1, args.epochs + 1)) + " |", "|---" * (args.epochs + 1) + "|"]
    for warmup in args.warmups:
        rows, seconds, n_train = screen(warmup, args.epochs, data, args.seed)
        per_epoch.append(f"| {warmup:.0%} | " + " | ".join(" / ".join(f"{100 * row[k]:.2f}" for k in names) for row in rows) + " |")
        if len(lines) == 2:
            lines[:0] = [f"ResNet20 v1, default recipe but for the warm-up, seed {args.seed}, {args.epochs} epochs on {n_train:,} "
                         f"training images of CIFAR-10 (--data {args.data}); held-out accuracy ({len(data.x_train) - n_train:,} "
                         f"images) after the last epoch. {training.hardware_description()['cpu']}, {time.strftime('%Y-%m-%d')}.", "",
                         f"`{command}`", ""]
        lines.append(f"| {warmup:.0%} | " + " | ".join(f"{100 * rows[-1][k]:.2f}%" for k in names) + f" | {seconds:.0f} |")
        print("\n".join(lines + per_epoch), flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines + per_epoch) + "\n")


if __name__ == "__main__":
    main()
