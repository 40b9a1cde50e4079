"""Benchmark: the default training path with oneDNN's CPU kernels off and on.

    python benchmarks/onednn.py                                  # ResNet20 v1, 2 rounds
    python benchmarks/onednn.py --models 20v1 resnet18 --rounds 3 --markdown benchmarks/onednn-cpu.md

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it starts, and by itself turns oneDNN on only
on x86 CPUs with AVX-512 VNNI/BF16 or AMX. ``import resnet_utils`` turns it on for every x86 CPU
(unless the variable is set). Each measurement is therefore its own process: the default ``fit``
of ``benchmarks/throughput.py`` (the tf.data pipeline, the precision ``train`` picks here) with the
variable at 0 and at 1, alternating round after round so that a busy machine slows both alike. The
table shows the best round of each, and what TensorFlow alone picks on this CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

SETTINGS = {"off (TF_ENABLE_ONEDNN_OPTS=0)": "0", "on (TF_ENABLE_ONEDNN_OPTS=1)": "1"}
TENSORFLOWS_OWN = ("import tensorflow; from tensorflow.python.util import _pywrap_util_port as port; "
                   "print(port.IsMklEnabled())")


def child(model: str, images: int, batch_size: int) -> None:
    """Print one model's default ``fit`` speed under this process's environment, as JSON."""
    import numpy as np

    import throughput  # noqa: E402  (imports resnet_utils, then TensorFlow)
    from resnet_utils import hardware

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4 * batch_size, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=len(x))
    variant = throughput.default_variant(model)
    model_, stream = throughput.prepare(variant, x, y)
    throughput.run_steps(model_, stream, 2)  # graph tracing and first steps, not timed
    steps = max(3, images // batch_size)
    rate = throughput.run_steps(model_, stream, steps) * batch_size
    print(json.dumps({"img_s": rate, "onednn": hardware.onednn_enabled(), "precision": variant.policy}))


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["20v1"], help="as in throughput.py: 20v1, 56v1, resnet18, resnet50, ...")
    parser.add_argument("--images", type=int, default=1024, help="images timed per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--markdown", help="also write the table as Markdown to this file")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "IMAGES", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return None

    import pandas as pd

    import throughput

    own = subprocess.run([sys.executable, "-c", TENSORFLOWS_OWN], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"})
    tensorflows_own = {"True": "on", "False": "off"}.get(own.stdout.strip().splitlines()[-1] if own.stdout.strip() else "", "unknown")
    best: dict[tuple[str, str], dict] = {}
    for _ in range(args.rounds):
        for model in args.models:
            for name, value in SETTINGS.items():
                result = subprocess.run([sys.executable, __file__, "--child", model, str(args.images), "128"],
                                        capture_output=True, text=True, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": value})
                lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
                if not lines:
                    raise SystemExit(f"error: the {model} measurement with oneDNN {name} failed:\n{result.stderr[-2000:]}")
                measured = json.loads(lines[-1])
                if measured["img_s"] > best.get((model, name), {}).get("img_s", 0):
                    best[(model, name)] = measured
    rows = []
    for model in args.models:
        off, on = best[(model, "off (TF_ENABLE_ONEDNN_OPTS=0)")], best[(model, "on (TF_ENABLE_ONEDNN_OPTS=1)")]
        for name, measured in ((n, best[(model, n)]) for n in SETTINGS):
            rows.append({"model": model, "oneDNN": name, "precision": measured["precision"], "img/s": round(measured["img_s"], 1),
                         "seconds per 50,000-image epoch": round(50_000 / measured["img_s"]),
                         "vs off": f"{measured['img_s'] / off['img_s']:.2f}x", "kernels on (reported)": measured["onednn"]})
        assert off["onednn"] is not True and on["onednn"] is not False, "TF_ENABLE_ONEDNN_OPTS was not honoured"
    table = pd.DataFrame(rows)
    header = (f"The default fit with oneDNN off and on: {throughput.machine_label()}, TensorFlow alone leaves oneDNN "
              f"{tensorflows_own} on this CPU; best of {args.rounds} alternating rounds, {args.images} images each, "
              f"batch 128, {time.strftime('%Y-%m-%d')}")
    print(header)
    print(table.to_string(index=False))
    if args.markdown:
        Path(args.markdown).write_text(f"{header}\n\n{throughput.markdown_table(table)}\n")
    return table


if __name__ == "__main__":
    main()
