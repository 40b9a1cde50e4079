#!/usr/bin/env bash
# All GPU checks of issue 7 in one call, for a machine with one NVIDIA GPU and no network
# (the `device` tool's H100/H200). From the repository root, with the CIFAR-10 JPEG archive copied
# to data/cifar10-jpg.tar.gz (git-ignored; carried to the machine):
#
#     bash benchmarks/gpu_check.sh [OUT]        # OUT defaults to $OUT or gpu-check/
#
# 1. the throughput table (classic recipe against the default path, variants) for ResNet20/56 v1 and
#    ResNet56 v2 on the GPU;
# 2. the fast schedule's full 30 epochs of ResNet20 v1 on all of CIFAR-10 with the defaults (bfloat16,
#    XLA, 16 steps per call), which gives seconds per epoch and the final test accuracy.
# Everything lands in OUT: the tables, the run folder, and the logs. About 6-8 minutes on an H100.
set -euo pipefail
OUT=${1:-${OUT:-gpu-check}}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
python -m pip install -q -r requirements.txt -e . > "$OUT/pip.log" 2>&1 || true
python -c "import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))" > "$OUT/tf-gpus.txt" 2>&1
DATA=/tmp/cifar10
if [ ! -d "$DATA/train" ]; then mkdir -p "$DATA" && tar xzf data/cifar10-jpg.tar.gz -C "$DATA"; fi
export TF_CPP_MIN_LOG_LEVEL=2
python -m resnet_utils.train --n 3 --version 1 --data folder --data-dir "$DATA" --verbose 2 \
  --note "full CIFAR-10 (50k/10k) from the JPEG copy in ../shared/data/cifar10" \
  --out "$OUT/resnet20v1-fast-30ep-gpu" > "$OUT/train.log" 2>&1
python benchmarks/throughput.py --models 20v1 56v1 56v2 --images 8192 --markdown "$OUT/throughput-gpu.md" \
  > "$OUT/throughput-gpu.txt" 2> "$OUT/throughput-gpu.err"
rm -f "$OUT"/*/last.keras
rm -rf "$OUT"/*/backup
