#!/usr/bin/env bash
# The campaign's GPU part (results/campaign.py --part gpu) as one call of at most 10 minutes, for a
# machine with one NVIDIA GPU and no network (the `device` tool's H100/H200). From the repository root,
# with the CIFAR-10 JPEG archive copied to data/cifar10-jpg.tar.gz (git-ignored; carried to the machine):
#
#     bash results/gpu_campaign.sh [OUT]        # OUT defaults to $OUT or gpu-campaign/
#
# It trains, in campaign.py's order, the CIFAR-stem ResNet18 and ResNet50 for the CPU runs' 10 epochs,
# then the Keras example's 200-epoch budget with the default recipe (ResNet20 v1, ResNet56 v1 and v2),
# into results/ (so each run records the command a learner reruns), starts nothing after 8.5 minutes
# and interrupts the run under way at that point: it resumes from its last finished epoch next time.
# The run folders, finished or not, are copied to OUT with the GPU's name; copy them back into
# results/ and run `python results/campaign.py --write-tables`.
set -uo pipefail
OUT=${1:-${OUT:-gpu-campaign}}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
DATA=/tmp/cifar10
if [ ! -d "$DATA/train" ]; then mkdir -p "$DATA" && tar xzf data/cifar10-jpg.tar.gz -C "$DATA"; fi
export TF_CPP_MIN_LOG_LEVEL=2
python results/campaign.py --part gpu --data-dir "$DATA" --stop-after 8.5 \
  --note "full CIFAR-10 (50k/10k) from the JPEG copy in ../shared/data/cifar10 (lossy re-encoding of the original)" \
  > "$OUT/campaign.log" 2>&1
python results/campaign.py --part gpu --list >> "$OUT/campaign.log" 2>&1
for name in $(python -c "import sys; sys.path.insert(0, 'results'); import campaign; print(' '.join(p.name for p in campaign.PLAN if p.part == 'gpu'))"); do
  if [ -d "results/$name" ]; then cp -r "results/$name" "$OUT/"; rm -f "$OUT/$name/.lock"; fi
done
