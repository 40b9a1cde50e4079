"""Time to accuracy: the classic Keras recipe against this project's default, on one epoch budget.

    python benchmarks/time_to_accuracy.py --epochs 4 --data folder --data-dir "$CIFAR10_DIR" \\
        --out results/time-to-accuracy-4ep

Trains ResNet20 v1 on the full training set for ``--epochs`` epochs three ways, each into its own
run folder under ``--out`` (a finished one is skipped when the command is run again):

* ``classic``: the Keras example's recipe (batch 32, Adam at 1e-3, which is its rate for its first
  80 epochs, ``ImageDataGenerator`` augmentation in Python; see ``classic_recipe.py``);
* ``default``: ``training.train`` with its defaults (the ``fast`` schedule over the same number of
  epochs: SGD with Nesterov momentum, warm-up then cosine decay, batch 128, tf.data pipeline,
  the precision ``auto`` picks on this machine);
* ``default-float32``: the same in float32, to show what mixed precision does to accuracy.

Prints (and writes to ``--out``/summary.md) test accuracy, training wall time and images/s, and the
epochs and minutes each run took to reach 85%, 88% and 90% test accuracy. To compare finished runs of any
length (the default's 15- and 30-epoch runs, the campaign's Keras-recipe run) without training
anything, give no recipe and list their folders::

    python benchmarks/time_to_accuracy.py --recipes --out results/time-to-accuracy-runs \\
        --also results/resnet20v1-default-15ep results/resnet20v1-default-30ep results/resnet20v1-keras-recipe-30ep

Minutes compare only between runs on the same machine and cores (the ``machine`` column); epochs do
not depend on either.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402

import classic_recipe  # noqa: E402
from throughput import machine_label, markdown_table  # noqa: E402
from resnet_utils import data as data_lib  # noqa: E402
from resnet_utils import models, training  # noqa: E402
from resnet_utils.runs import device_label, read_log  # noqa: E402

RECIPES = ("classic", "default", "default-float32")


def train_classic(out: Path, dataset: data_lib.CifarData, epochs: int, seed: int, limit_train: int | None) -> dict:
    """The classic recipe into ``out`` (log.csv, metrics.json in the run-folder format)."""
    import keras

    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train = dataset.x_train, dataset.y_train
    if limit_train and limit_train < len(x_train):
        keep = data_lib.random_subset(len(x_train), limit_train, seed)
        x_train, y_train = x_train[keep], y_train[keep]
    keras.utils.set_random_seed(seed)
    mean = data_lib.pixel_mean(x_train)
    model = models.with_keras_batch_normalization(models.build_resnet(3, 1))  # the example's own layers
    model.compile(classic_recipe.classic_optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    (out / "log.csv").unlink(missing_ok=True)
    model.fit(
        classic_recipe.classic_flow(x_train, y_train, mean, seed=seed),
        validation_data=(classic_recipe.classic_inputs(dataset.x_test, mean), dataset.y_test),
        validation_batch_size=256,
        epochs=epochs,
        verbose=2,
        callbacks=[training.EpochFacts(), keras.callbacks.CSVLogger(str(out / "log.csv"))],
    )
    log = read_log(out / "log.csv")
    seconds = sum(row["epoch_time_s"] for row in log)
    metrics = {
        "status": "complete", "model": "resnet20v1", "schedule": "classic (Adam 1e-3, ImageDataGenerator)",
        "epochs_completed": len(log), "batch_size": classic_recipe.CLASSIC_BATCH_SIZE,
        "test_accuracy_last": log[-1]["val_accuracy"], "test_accuracy_best": max(r["val_accuracy"] for r in log),
        "train_seconds": round(seconds, 1), "train_images_per_second": round(len(x_train) * len(log) / seconds, 1),
        "precision_policy": "float32", "data": dataset.describe(), "train_images": int(len(x_train)),
        "hardware": training.hardware_description(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def train_default(out: Path, dataset: data_lib.CifarData, epochs: int, seed: int, limit_train: int | None,
                  precision: str, data_source: str, data_dir: str | None) -> dict:
    config = training.TrainConfig(out=str(out), n=3, version=1, epochs=epochs, seed=seed, limit_train=limit_train,
                                  mixed_precision=precision, data=data_source, data_dir=data_dir, verbose=2)
    return training.train(config, dataset)


THRESHOLDS = (0.85, 0.88, 0.90)


def epochs_to(log: list[dict], accuracy: float) -> int | None:
    """How many epochs it took until the test accuracy first reached ``accuracy``; ``None`` if it
    never did. Unlike minutes, this does not depend on the machine or on how busy it was."""
    return next((index + 1 for index, row in enumerate(log) if row["val_accuracy"] >= accuracy), None)


def minutes_to(log: list[dict], accuracy: float) -> float | None:
    """Training wall time (minutes, per-epoch test passes included) until the end of the first epoch
    whose test accuracy reached ``accuracy``; ``None`` if no epoch did."""
    epochs = epochs_to(log, accuracy)
    return None if epochs is None else round(sum(row.get("epoch_time_s", 0.0) for row in log[:epochs]) / 60, 1)


def summary(folders: dict[str, Path]) -> pd.DataFrame:
    """One row per finished run folder: recipe, final test accuracy, time, the machine, and epochs
    and minutes to 85%, 88% and 90%. A run resumed on other machines (``sessions`` in its config.json)
    says so in its machine column: its minutes add up epochs timed on different CPUs."""
    rows = []
    for recipe, folder in folders.items():
        path = folder / "metrics.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
        precision = m.get("precision_policy") or config.get("precision_policy", "?")
        log = read_log(folder / "log.csv")
        row = {
            "recipe": recipe, "schedule": m["schedule"], "batch": m["batch_size"], "precision": precision,
            "epochs": m["epochs_completed"], "test accuracy (last epoch)": f"{100 * m['test_accuracy_last']:.2f}%",
            "train minutes": round(m["train_seconds"] / 60, 1), "train img/s": m["train_images_per_second"],
            "machine": device_label(m.get("hardware", {})),
        }
        sessions = config.get("sessions") or []
        machines = {(str(s.get("hardware")), s.get("precision_policy")) for s in sessions}
        policies = list(dict.fromkeys(s["precision_policy"] for s in sessions if s.get("precision_policy")))
        if len(policies) > 1:
            row["precision"] = " then ".join(policies)
        if len(machines) > 1:
            row["machine"] = f"{len(sessions)} sessions, {len(machines)} machines or precisions (config.json)"
        for threshold in THRESHOLDS:
            epochs, minutes = epochs_to(log, threshold), minutes_to(log, threshold)
            row[f"epochs to {threshold:.0%}"] = epochs if epochs is not None else "-"
            row[f"minutes to {threshold:.0%}"] = minutes if minutes is not None else f"not reached in {m['epochs_completed']} epochs"
        rows.append(row)
    return pd.DataFrame(rows)


def _label(folder: Path) -> str:
    """A run folder's name in the summary; a folder of this script's own (``classic``, ``default``)
    keeps its parent's name, which says the budget (``time-to-accuracy-4ep/classic``)."""
    return f"{folder.parent.name}/{folder.name}" if folder.name in RECIPES else folder.name


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=RECIPES,
                        help="recipes to train (default all); none (--recipes with no name) only summarises --also")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default="auto", choices=data_lib.SOURCES)
    parser.add_argument("--data-dir")
    parser.add_argument("--limit-train", type=int, help="train on N random images (smoke runs only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--also", nargs="*", default=[], help="finished run folders to add to the summary (e.g. longer default runs)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    dataset = data_lib.load_cifar10(args.data, args.data_dir) if args.recipes else None
    for recipe in args.recipes:
        folder = out / recipe
        metrics_path = folder / "metrics.json"
        if metrics_path.exists() and json.loads(metrics_path.read_text()).get("status") == "complete":
            print(f"{folder}: finished already, skipped")
            continue
        print(f"--- {recipe}: {args.epochs} epochs into {folder}", flush=True)
        started = time.perf_counter()
        if recipe == "classic":
            train_classic(folder, dataset, args.epochs, args.seed, args.limit_train)
        else:
            train_default(folder, dataset, args.epochs, args.seed, args.limit_train,
                          "off" if recipe == "default-float32" else "auto", args.data, args.data_dir)
        print(f"--- {recipe}: done in {time.perf_counter() - started:.0f} s", flush=True)

    table = summary({**{recipe: out / recipe for recipe in args.recipes}, **{_label(Path(f)): Path(f) for f in args.also}})
    if args.recipes:
        header = f"ResNet20 v1, {args.epochs} epochs, {dataset.describe()}; {machine_label()}; {dt.date.today()}"
    else:  # a summary of finished run folders: each row names its own machine, its data is in its metrics.json
        header = f"ResNet20 v1, finished run folders summarised on {dt.date.today()} (each row: its own epochs and machine)"
    out.mkdir(parents=True, exist_ok=True)
    print(header)
    print(table.to_string(index=False))
    (out / "summary.md").write_text(f"{header}\n\n{markdown_table(table)}\n")
    return table


if __name__ == "__main__":
    main()
