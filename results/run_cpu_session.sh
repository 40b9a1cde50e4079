#!/usr/bin/env bash
# The real runs behind results/, made with the project's own command line on a 2-core CPU
# (see results/README.md). Data: the full CIFAR-10 JPEG copy (../shared/data/cifar10), extracted
# to $CIFAR10_DIR. A run that is already complete is skipped; an interrupted one resumes.
set -u
CIFAR10_DIR=${CIFAR10_DIR:-/tmp/cifar10}
NOTE="full CIFAR-10 (50k/10k) from the JPEG copy in ../shared/data/cifar10 (lossy re-encoding of the original)"
run() {  # run NAME ARGS...
  local name=$1; shift
  mkdir -p "results/$name"
  python -m resnet_utils.train "$@" --data folder --data-dir "$CIFAR10_DIR" --verbose 2 \
    --note "$NOTE" --out "results/$name" >>"results/$name/stdout.log" 2>&1
}
# Issue 4: ResNet20 v1 on the best budget a 2-core CPU allows in one session.
run resnet20v1-fast-15ep --n 3 --version 1 --schedule fast --epochs 15
# Issue 6 (notebook 08): plain vs residual, same schedule and budget for all four.
run plain20-fast-3ep     --n 3 --shortcut none --schedule fast --epochs 3
run resnet20v1-fast-3ep  --n 3 --schedule fast --epochs 3
run plain56-fast-3ep     --n 9 --shortcut none --schedule fast --epochs 3
run resnet56v1-fast-3ep  --n 9 --schedule fast --epochs 3
# Issue 7: the fast default recipe (fast schedule, batch 128, mixed_bfloat16 picked by
# --mixed-precision auto on this AVX-512 BF16 CPU) for its 30 epochs.
run resnet20v1-fast-30ep --n 3 --version 1 --schedule fast --epochs 30
# Issue 11: the recipe screen (held-out 5k of the training images, never the test set), then the
# chosen default recipe for 4, 15 and 30 epochs on the full training set, tested on the test set.
python benchmarks/recipe_screen.py --epochs 4 --data folder --data-dir "$CIFAR10_DIR" --out results/recipe-screen-4ep \
  >>results/recipe-screen-4ep.log 2>&1
run resnet20v1-default-4ep  --n 3 --version 1 --epochs 4
run resnet20v1-default-15ep --n 3 --version 1 --epochs 15
run resnet20v1-default-30ep --n 3 --version 1 --epochs 30
