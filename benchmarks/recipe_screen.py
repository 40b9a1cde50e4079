"""Choose the default recipe on held-out training images, never on the test set.

    python benchmarks/recipe_screen.py --epochs 4 --data-dir /path/to/cifar10 --out results/recipe-screen-4ep

Trains ResNet20 v1 once per recipe (`SETTINGS`) with ``--validation-split 0.1`` (45,000 training
images, 5,000 held out, the paper's split) and prints a table of the held-out accuracy after the
last epoch, with the time per epoch. Every run is an ordinary run folder: rerun the command to
resume or skip finished ones. The chosen recipe then becomes ``training.DEFAULT_RECIPE["fast"]``,
and only the final runs of it are evaluated on the test set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from resnet_utils import training

#: name -> the run's settings (``TrainConfig`` fields). The first four changed the recipe of the Keras
#: example (peak 0.1, decay 2e-4, no smoothing, BN momentum 0.99); the rest change one thing each
#: from the default that came out of them (``DEFAULT_RECIPE["fast"]``).
DEFAULT = {"learning_rate": 0.2, "weight_decay": 5e-4, "label_smoothing": 0.1, "bn_momentum": 0.9}
SETTINGS = {
    "base": {"learning_rate": 0.1, "weight_decay": 2e-4, "label_smoothing": 0.0, "bn_momentum": 0.99},
    "lr0.2-wd5e-4": {"learning_rate": 0.2, "weight_decay": 5e-4, "label_smoothing": 0.0, "bn_momentum": 0.99},
    "lr0.2-wd5e-4-ls0.1": {"learning_rate": 0.2, "weight_decay": 5e-4, "label_smoothing": 0.1, "bn_momentum": 0.99},
    "lr0.2-wd5e-4-bn0.9": {"learning_rate": 0.2, "weight_decay": 5e-4, "label_smoothing": 0.0, "bn_momentum": 0.9},
    "default": DEFAULT,
    # batch 256 and 512 with the peak rate scaled linearly (0.2 per 128 images)
    "default-bs256-lr0.4": {**DEFAULT, "batch_size": 256, "learning_rate": 0.4},
    "default-bs512-lr0.8": {**DEFAULT, "batch_size": 512, "learning_rate": 0.8},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data", default="auto")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="results/recipe-screen")
    parser.add_argument("--only", nargs="*", help="names from SETTINGS (default: all)")
    args = parser.parse_args(argv)
    rows = []
    for name in args.only or SETTINGS:
        config = training.TrainConfig(out=str(Path(args.out) / name), schedule="fast", epochs=args.epochs, data=args.data,
                                      data_dir=args.data_dir, validation_split=0.1, verbose=2, **SETTINGS[name])
        metrics = training.train(config)
        rows.append((name, SETTINGS[name], metrics["validation_accuracy_last"], metrics["seconds_per_epoch"]))
    print(f"\n| recipe | settings | held-out accuracy, last epoch ({args.epochs} epochs) | s/epoch |\n|---|---|---|---|")
    for name, settings, accuracy, seconds in rows:
        print(f"| {name} | {json.dumps(settings)} | {100 * accuracy:.2f}% | {seconds:.0f} |")


if __name__ == "__main__":
    main()
