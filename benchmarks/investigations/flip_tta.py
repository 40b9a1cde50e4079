"""Flip test-time augmentation: what averaging each test image with its mirror image adds, per run.

    python benchmarks/investigations/flip_tta.py --data-dir "$CIFAR10_DIR"                      # the default-recipe runs
    python benchmarks/investigations/flip_tta.py --data-dir "$CIFAR10_DIR" --runs resnet20v1-default-30ep

For each finished run folder in ``results/`` it classifies the test images with the run's committed
model, once as they are and once averaging the softmax of each image and its horizontal mirror, and
prints both accuracies. It trains nothing. The headline of a run stays its plain final-epoch accuracy
(``metrics.json``); this is a separate figure, and it is measured on the test set, so it is not a
recipe choice.

The model is ``last.keras`` (the final epoch) where it is still on this machine, else the committed
``best.keras``, the best epoch chosen on the test set; the table says which.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: throughput, classic_recipe

from throughput import markdown_table  # noqa: E402
from resnet_utils import data as data_lib  # noqa: E402
from resnet_utils import runs as runs_lib  # noqa: E402

RESULTS = Path(__file__).resolve().parents[2] / "results"


def flip_accuracy(model, images: np.ndarray, labels: np.ndarray, mean: np.ndarray, batch_size: int = 500) -> tuple[float, float]:
    """(accuracy, accuracy with flip averaging) of a Keras model on uint8 images (N, 32, 32, 3)."""
    plain, averaged = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].astype("float32") / 255.0 - mean
        p = np.asarray(model(x, training=False), dtype=np.float64)
        q = np.asarray(model(x[:, :, ::-1, :], training=False), dtype=np.float64)
        plain.append(p.argmax(axis=1))
        averaged.append((p + q).argmax(axis=1))
    plain, averaged = np.concatenate(plain), np.concatenate(averaged)
    return float(np.mean(plain == labels)), float(np.mean(averaged == labels))


def measure(names: list[str], test_images: np.ndarray, test_labels: np.ndarray, results_dir: Path = RESULTS) -> pd.DataFrame:
    import keras

    rows = []
    for name in names:
        run = runs_lib.load_run(results_dir / name)
        checkpoint = "last.keras" if (run.path / "last.keras").exists() else "best.keras"
        model = keras.models.load_model(run.path / checkpoint, compile=False)
        plain, flipped = flip_accuracy(model, test_images, test_labels, np.load(run.path / "mean.npy"))
        rows.append({"run": name, "model": run.metrics.get("model"), "epochs": run.metrics.get("epochs_completed"),
                     "checkpoint": checkpoint, "test accuracy %": round(100 * plain, 2),
                     "with flip averaging %": round(100 * flipped, 2), "gain (points)": round(100 * (flipped - plain), 2)})
    return pd.DataFrame(rows).set_index("run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", help="run folders in results/ (default: every finished run of the default recipe)")
    parser.add_argument("--data", default=None, help="data source as for train (default: folder with --data-dir, else auto)")
    parser.add_argument("--data-dir", help="local CIFAR-10 copy")
    parser.add_argument("--out", help="also write the table as Markdown to this file")
    args = parser.parse_args(argv)
    every = runs_lib.load_runs(RESULTS)
    table = runs_lib.runs_table(every)
    names = args.runs or [n for n in table.index if table.loc[n, "status"] == "complete" and table.loc[n, "recipe"] == "default"]
    source = args.data or ("folder" if args.data_dir else None)
    cifar = data_lib.load_cifar10(source, data_dir=args.data_dir)
    result = measure(names, cifar.x_test, cifar.y_test)
    header = (f"Flip test-time augmentation, {dt.date.today()}, {cifar.describe()}; each run's own model and mean image. "
              "Separate from the headline: measured on the test set.")
    print(header)
    print(result.to_string())
    if args.out:
        Path(args.out).write_text(header + "\n\n" + markdown_table(result.reset_index()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
