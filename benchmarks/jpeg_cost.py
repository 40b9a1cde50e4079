"""What does the JPEG copy of CIFAR-10 cost in accuracy? Give it one more, fresh lossy pass and compare.

    python benchmarks/jpeg_cost.py --data-dir "$CIFAR10_DIR" --epochs 4 --seeds 0 1 --out results/jpeg-cost-4ep

The offline copy (``../shared/data/cifar10``) is the original CIFAR-10 passed once through JPEG at
quality 75 with 4:2:0 chroma subsampling (its quantisation tables are exactly Pillow's ``quality=75``
ones). The original cannot be downloaded here, so the cost of that pass is estimated by making one
more pass with the same settings and training the default recipe on the copy and on the copy after
that pass, with the same seeds.

Encoding the copy again as it is would say little: JPEG at the same tables on the same 8x8 grid is
nearly idempotent (mean pixel change 0.25 of 255 on this copy). So the extra pass is a *fresh* one:
each image is shifted by 3 pixels (reflected at the top and left edges), encoded at quality 75 with
4:2:0, decoded, and shifted back, which puts new content in every 8x8 block and 2x2 chroma cell, as
the original met the first pass. It is stored as PNG, losslessly, beside the copy
(``<data-dir>-fresh-pass``), train and test images alike. The script prints the mean pixel change
of both kinds of pass. Run folders: ``<out>/copy-seedS`` and ``<out>/fresh-pass-seedS`` (rerun to
resume or skip). A pass over images that have been through JPEG once may cost a little less than
the first pass over the original did, so read the difference as an estimate of the copy's cost.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from resnet_utils import training

QUALITY = 75  # Pillow's quality 75 (4:2:0) reproduces the copy's quantisation tables
SHIFT = 3  # pixels: moves the 8x8 luminance blocks and the 2x2 chroma cells off the copy's own grid


def jpeg_pass(image: Image.Image, quality: int = QUALITY, shift: int = SHIFT) -> Image.Image:
    """``image`` after one JPEG pass at ``quality`` (4:2:0) on a grid shifted by ``shift`` pixels:
    reflect-pad the top and left edges, encode, decode, crop back to the original size."""
    pixels = np.asarray(image.convert("RGB"))
    padded = np.pad(pixels, ((shift, 0), (shift, 0), (0, 0)), mode="reflect")
    buffer = io.BytesIO()
    Image.fromarray(padded).save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    return Image.fromarray(np.asarray(Image.open(buffer).convert("RGB"))[shift:, shift:])


def fresh_pass(source: Path, target: Path) -> int:
    """Write every ``*.jpg`` under ``source`` to the same place under ``target`` as a PNG after
    ``jpeg_pass``; returns how many (a rerun skips the files already there)."""
    count = 0
    for path in sorted(source.glob("*/*/*.jpg")):
        out = (target / path.relative_to(source)).with_suffix(".png")
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            jpeg_pass(Image.open(path)).save(tmp, "PNG")
            tmp.rename(out)
        count += 1
    return count


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def pixel_change(first: Path, second: Path, limit: int = 2000) -> float:
    """Mean absolute difference in pixel value (0-255) between the copy's first ``limit`` images
    and the same images under ``second`` (as .jpg or .png)."""
    diffs = []
    for path in sorted(first.glob("*/*/*.jpg"))[:limit]:
        other = second / path.relative_to(first)
        other = other if other.exists() else other.with_suffix(".png")
        diffs.append(np.abs(_pixels(path) - _pixels(other)).mean())
    return float(np.mean(diffs))


def same_grid_change(first: Path, limit: int = 2000) -> float:
    """Mean pixel change of a plain re-encode at the copy's quality on its own grid (no shift)."""
    return float(np.mean([np.abs(_pixels(p) - np.asarray(jpeg_pass(Image.open(p), shift=0), dtype=np.int16)).mean()
                          for p in sorted(first.glob("*/*/*.jpg"))[:limit]]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the JPEG copy (folder with train/ and test/)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default="results/jpeg-cost-4ep")
    parser.add_argument("--fresh-pass-dir", help="where the fresh pass goes (default: beside the copy, <data-dir>-fresh-pass)")
    args = parser.parse_args(argv)
    copy = Path(args.data_dir)
    fresh = Path(args.fresh_pass_dir) if args.fresh_pass_dir else copy.parent / (copy.name + "-fresh-pass")
    start = time.perf_counter()
    count = fresh_pass(copy, fresh)
    print(f"Fresh pass: {count:,} images in {fresh} ({time.perf_counter() - start:.0f} s). Mean absolute pixel change "
          f"(0-255, first 2,000 images): fresh pass {pixel_change(copy, fresh):.2f}; a plain re-encode on the copy's own grid "
          f"{same_grid_change(copy):.2f}.", flush=True)
    accuracy: dict[str, list[float]] = {"the copy (one JPEG pass)": [], "the copy + one fresh pass": []}
    for seed in args.seeds:
        for label, folder, name in (("the copy (one JPEG pass)", copy, "copy"), ("the copy + one fresh pass", fresh, "fresh-pass")):
            config = training.TrainConfig(out=str(Path(args.out) / f"{name}-seed{seed}"), epochs=args.epochs, seed=seed,
                                          data="folder", data_dir=str(folder), verbose=2,
                                          extra={"note": f"jpeg_cost.py: {label}; JPEG quality {QUALITY}, 4:2:0"})
            accuracy[label].append(training.train(config)["test_accuracy"])
    print(f"\n| data | test accuracy after {args.epochs} epochs, seeds {', '.join(map(str, args.seeds))} | mean |\n|---|---|---|")
    for label, values in accuracy.items():
        print(f"| {label} | {' / '.join(f'{100 * v:.2f}%' for v in values)} | {100 * statistics.mean(values):.2f}% |")
    cost = statistics.mean(accuracy["the copy (one JPEG pass)"]) - statistics.mean(accuracy["the copy + one fresh pass"])
    print(f"\nOne more fresh pass costs {100 * cost:.2f} points (mean over seeds).")


if __name__ == "__main__":
    main()
