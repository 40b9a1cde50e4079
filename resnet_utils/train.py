"""Command line for training: ``python -m resnet_utils.train --n 3 --version 1 --out runs/resnet20v1``.

It only parses arguments; the work is done by :func:`resnet_utils.training.train`. Run it again
with the same ``--out`` to resume an interrupted run.

TensorFlow is imported only once the arguments are parsed, so ``--help`` and a mistyped flag
answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys

from resnet_utils import data as data_lib
from resnet_utils import hardware, recipe

#: ``models.SHORTCUTS`` and ``models.IMAGENET_STEMS`` (models imports Keras; tests check they agree).
SHORTCUTS = ("projection", "zeropad", "none")
STEMS = ("imagenet", "cifar")

EXAMPLES = """examples:
  python -m resnet_utils.train --depth 20 --out runs/resnet20v1
      ResNet20 v1 with the default recipe (fast: 30 epochs at batch 128); rerun the same line to resume
  python -m resnet_utils.train --data sample --epochs 2 --limit-train 200 --out runs/try
      a one-minute try-out on the small sample shipped with the package (no download)
  python -m resnet_utils.train --depth 110 --version 2 --schedule paper --data-dir "$CIFAR10_DIR" --out runs/resnet110v2
      ResNet110 v2 on the paper's schedule (164 epochs), from a local copy of CIFAR-10
"""


def _per_schedule(values: dict) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``error: ...``), not the usage text as well."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _OneLineParser(
        prog="python -m resnet_utils.train",
        description="Train a CIFAR-10 ResNet into a run folder (CSV log, best/last .keras, metrics.json). "
        "Rerun with the same --out to resume.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--n", type=int, help="blocks per stage: depth 6n+2 (v1) or 9n+2 (v2); default 3")
    model.add_argument("--depth", type=int, help="instead of --n: 20, 32, 44, 56, 110, ... 1202 (v1) or 56, 110, 164, ... 1001 (v2)")
    model.add_argument("--version", type=int, default=1, help="1 (basic blocks) or 2 (pre-activation bottleneck)")
    model.add_argument("--shortcut", default="projection", help=f"one of {', '.join(SHORTCUTS)} ('none' = plain net); default projection")
    model.add_argument("--arch", default="cifar", help=f"one of {', '.join(recipe.ARCHS)}; resnet18/50 are ImageNet-style; default cifar")
    model.add_argument("--stem", help="for resnet18/50 only: imagenet (7x7/2 + max-pool, the default) or cifar (3x3/1)")
    run = parser.add_argument_group("training")
    run.add_argument("--schedule", default="fast", help=f"one of {', '.join(recipe.SCHEDULES)} (default fast: SGD, warm-up + cosine, 30 epochs at batch 128; keras: the example's Adam recipe, 200 epochs at batch 32)")
    run.add_argument("--epochs", type=int, help=f"default per schedule: {_per_schedule(recipe.DEFAULT_EPOCHS)}")
    run.add_argument("--batch-size", type=int, help=f"default per schedule: {_per_schedule(recipe.DEFAULT_BATCH_SIZE)}")
    defaults = recipe.DEFAULT_RECIPE["fast"]
    run.add_argument("--learning-rate", type=float, help=f"peak learning rate; default per schedule (fast: {defaults['learning_rate']:g})")
    run.add_argument("--weight-decay", type=float, help=f"decay d on every convolution kernel, gradient d*w (fast: {defaults['weight_decay']:g}; Keras's L2(1e-4) is 2e-4)")
    run.add_argument("--label-smoothing", type=float, help=f"(fast: {defaults['label_smoothing']:g})")
    run.add_argument("--bn-momentum", type=float, help=f"momentum of BatchNormalization's moving statistics (fast: {defaults['bn_momentum']:g}; Keras's default 0.99)")
    run.add_argument("--warmup", type=float, help=f"fraction of the steps over which the fast schedule's rate rises to its peak (fast: {defaults['warmup']:g}; 0.3: one-cycle's shape)")
    run.add_argument("--validation-split", type=float, default=0.0,
                     help="hold out this fraction of the training images (same share per class, fixed) and evaluate on it instead of the test set, "
                          "to choose a recipe without looking at the test set; 0.1 is the paper's 45k/5k")
    run.add_argument("--seed", type=int, default=0,
                     help="seeds the weights, the order of the images and their augmentation (default 0); the same seed "
                     "on the same machine gives the same run, and other seeds show how much a result varies")
    run.add_argument("--out", required=True, help="run folder (created; an unfinished run there is resumed)")
    run.add_argument("--restart", action="store_true",
                     help="delete the run already in --out (config, log, checkpoints, metrics) and start over; "
                     "not needed to resume or to recover a damaged folder: rerunning the same command does that")
    run.add_argument("--mixed-precision", default="auto", choices=hardware.PRECISIONS,
                     help="auto (default): bfloat16 on GPUs from A100 on and on CPUs with AVX-512 BF16/AMX, float16 on older GPUs, else float32")
    run.add_argument("--xla", default="auto", choices=("auto", "on", "off"), help="compile with XLA; auto (default): on with a GPU only")
    run.add_argument("--steps-per-execution", type=int, help=f"batches per compiled call; default 1 on a CPU, {hardware.GPU_STEPS_PER_EXECUTION} on a GPU")
    run.add_argument("--distribute", default="auto", choices=hardware.DISTRIBUTE,
                     help="auto (default): MirroredStrategy over all GPUs when there are several; mirrored: always "
                     "(all GPUs, or all CPU devices without one); none")
    run.add_argument("--verbose", default="auto", choices=("auto", "0", "1", "2"),
                     help="Keras verbosity: auto, 0, 1 (progress bar), 2 (one line per epoch)")
    source = parser.add_argument_group("data")
    source.add_argument("--data", help=f"one of {', '.join(data_lib.SOURCES)}; default: ${data_lib.SOURCE_ENV} if set, else auto")
    source.add_argument("--data-dir", help=f"local CIFAR-10 copy (or set {data_lib.DATA_DIR_ENV})")
    source.add_argument("--note", default="", help="free text stored in config.json (e.g. where the data came from)")
    source.add_argument("--limit-train", type=int, help="train on N randomly chosen (seeded) training images only: smoke runs, or a subset for nets too costly for the full set")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; print one line ``error: ...`` and return non-zero if it cannot."""
    args = parse_args(argv)
    if args.stem is not None and args.arch == "cifar":
        print(f"error: --stem applies to --arch resnet18 or resnet50 only; the cifar nets have their own 3x3 stem (got --stem {args.stem}). "
              "Leave --stem out, or pass --arch. (see --help)", file=sys.stderr)
        return 2
    if args.data_dir and args.data in ("sample", "keras"):
        print(f"error: --data-dir names a local copy, which --data {args.data} does not read; pass --data folder (or leave --data out) "
              "with it, or leave --data-dir out. (see --help)", file=sys.stderr)
        return 2
    from resnet_utils import models, training  # TensorFlow: only once the arguments are parsed

    try:
        if args.depth is not None and args.n is not None:
            raise ValueError(f"give --n or --depth, not both (--n {args.n} is depth {models.depth_from_n(args.n, args.version)}).")
        n = models.n_from_depth(args.depth, args.version) if args.depth is not None else (3 if args.n is None else args.n)
        config = training.TrainConfig(
            out=args.out, n=n, version=args.version, shortcut=args.shortcut, arch=args.arch, stem=args.stem or "imagenet",
            schedule=args.schedule, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
            learning_rate=args.learning_rate, weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
            bn_momentum=args.bn_momentum, warmup=args.warmup, validation_split=args.validation_split,
            data=args.data or os.environ.get(data_lib.SOURCE_ENV) or "auto", data_dir=args.data_dir,
            limit_train=args.limit_train, mixed_precision=args.mixed_precision, xla=args.xla,
            steps_per_execution=args.steps_per_execution, distribute=args.distribute, restart=args.restart,
            verbose=args.verbose if args.verbose == "auto" else int(args.verbose),
            extra={"note": args.note} if args.note else {},
        )
        training.train(config)
    except data_lib.DataError as error:
        print(f"error: {error.cli_message}", file=sys.stderr)
        return 2
    except (ValueError, training.RunFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except training.TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except training.TrainingInterrupted as error:
        print(f"error: {error}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("error: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
