#!/usr/bin/env bash
# The real runs behind results/ made on a 2-core CPU session (see results/README.md).
# CIFAR-10: the full JPEG copy (../shared/data/cifar10, extracted to $CIFAR10_DIR).
set -u
CIFAR10_DIR=${CIFAR10_DIR:-/tmp/cifar10}
NOTE="full CIFAR-10 (50k/10k) from the JPEG copy in ../shared/data/cifar10 (lossy re-encoding of the original)"
run() {  # run NAME ARGS...
  local name=$1; shift
  mkdir -p "results/$name"
  python -m resnet_utils.train "$@" --data folder --data-dir "$CIFAR10_DIR" --verbose 2 \
    --note "$NOTE" --out "results/$name" >>"results/$name/stdout.log" 2>&1
}
run resnet20v1-fast-15ep --n 3 --version 1 --schedule fast --epochs 15
run plain20-fast-2ep     --n 3 --shortcut none --schedule fast --epochs 2
run resnet20v1-fast-2ep  --n 3 --schedule fast --epochs 2
run plain56-fast-2ep     --n 9 --shortcut none --schedule fast --epochs 2
run resnet56v1-fast-2ep  --n 9 --schedule fast --epochs 2
