"""What does the JPEG copy of CIFAR-10 cost in accuracy? Encode it once more, train on both, compare.

    python benchmarks/jpeg_cost.py --data-dir "$CIFAR10_DIR" --epochs 4 --seeds 0 1 --out results/jpeg-cost-4ep

The offline copy (``../shared/data/cifar10``) is the original CIFAR-10 passed once through JPEG at
quality 75 with 4:2:0 chroma subsampling (its quantisation tables are exactly Pillow's ``quality=75``
ones). The original cannot be downloaded here, so the cost of that pass is estimated by making a
second pass with the same settings (beside the copy, ``<data-dir>-second-pass``; train and test
images alike) and training
the default recipe on each copy with the same seeds: first pass against second pass. A second pass
through the same quantiser usually loses less than the first, so the difference is an estimate, more
likely too small than too large, of what the copy costs against the original. Run folders:
``<out>/first-pass-seedS`` and ``<out>/second-pass-seedS`` (rerun to resume or skip).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from resnet_utils import training

QUALITY = 75  # Pillow's quality 75 (4:2:0) reproduces the copy's quantisation tables


def reencode(source: Path, target: Path, quality: int = QUALITY) -> int:
    """Write every ``*.jpg`` under ``source`` to the same place under ``target``, decoded and
    encoded again at ``quality`` with 4:2:0 subsampling; returns how many (skips existing files)."""
    count = 0
    for path in sorted(source.glob("*/*/*.jpg")):
        out = target / path.relative_to(source)
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            Image.open(path).convert("RGB").save(tmp, "JPEG", quality=quality, subsampling="4:2:0")
            tmp.rename(out)
        count += 1
    return count


def pixel_change(first: Path, second: Path, limit: int = 2000) -> float:
    """Mean absolute difference in pixel value (0-255) between the two copies' first ``limit`` files."""
    paths = sorted(first.glob("*/*/*.jpg"))[:limit]
    diffs = [np.abs(np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)
                    - np.asarray(Image.open(second / p.relative_to(first)).convert("RGB"), dtype=np.int16)).mean()
             for p in paths]
    return float(np.mean(diffs))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the JPEG copy (folder with train/ and test/)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default="results/jpeg-cost-4ep")
    parser.add_argument("--second-pass-dir", help="where the second pass goes (default: beside the copy, <data-dir>-second-pass)")
    args = parser.parse_args(argv)
    first = Path(args.data_dir)
    second = Path(args.second_pass_dir) if args.second_pass_dir else first.parent / (first.name.rstrip("/") + "-second-pass")
    start = time.perf_counter()
    count = reencode(first, second)
    print(f"Second pass: {count:,} images in {second} ({time.perf_counter() - start:.0f} s); mean absolute pixel change "
          f"against the first pass {pixel_change(first, second):.2f} of 255.", flush=True)
    accuracy: dict[str, list[float]] = {"first pass (the copy)": [], "second pass": []}
    for seed in args.seeds:
        for label, folder, name in (("first pass (the copy)", first, "first-pass"), ("second pass", second, "second-pass")):
            config = training.TrainConfig(out=str(Path(args.out) / f"{name}-seed{seed}"), epochs=args.epochs, seed=seed,
                                          data="folder", data_dir=str(folder), verbose=2,
                                          extra={"note": f"jpeg_cost.py: {label} of CIFAR-10 through JPEG quality {QUALITY}"})
            accuracy[label].append(training.train(config)["test_accuracy"])
    print(f"\n| data | test accuracy after {args.epochs} epochs, seeds {', '.join(map(str, args.seeds))} | mean |\n|---|---|---|")
    for label, values in accuracy.items():
        print(f"| {label} | {' / '.join(f'{100 * v:.2f}%' for v in values)} | {100 * statistics.mean(values):.2f}% |")
    cost = statistics.mean(accuracy["first pass (the copy)"]) - statistics.mean(accuracy["second pass"])
    print(f"\nThe second pass costs {100 * cost:.2f} points (mean over seeds).")


if __name__ == "__main__":
    main()
