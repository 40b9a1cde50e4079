"""Where a ResNet20 training step's time goes, on this machine.

    python benchmarks/investigations/where_time_goes.py [--batch-size 128] [--images 2048]

Part 1 (one process, interleaved, best of 2 rounds): the input pipelines alone, the forward pass
alone, a training step on a batch already in memory (``train_on_batch``) and ``fit`` on the
pipeline, in float32 and mixed bfloat16. ``fit`` minus the step on a fixed batch is what the
pipeline and Keras's loop cost; the step minus the forward pass is the backward pass and update.

Part 2 (one process per setting, so not interleaved): the default ``fit`` with oneDNN switched off
(``TF_ENABLE_ONEDNN_OPTS=0``) and with TensorFlow's intra-op / inter-op thread pools at 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: throughput, classic_recipe

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import classic_recipe  # noqa: E402
import throughput  # noqa: E402
from resnet_utils import data  # noqa: E402

SETTINGS = {
    "as shipped (oneDNN on, TensorFlow's default thread pools)": {},
    "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "intra-op threads = 1": {"RESNET_INTRA_OP_THREADS": "1"},
    "inter-op threads = 1": {"RESNET_INTER_OP_THREADS": "1"},
}


def rate(fn, images_per_call: int, calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return images_per_call * calls / (time.perf_counter() - start)


def child(batch_size: int, images: np.ndarray, labels: np.ndarray, count: int) -> None:
    """Print the default ``fit`` speed under this process's environment (part 2)."""
    import tensorflow as tf

    if os.environ.get("RESNET_INTRA_OP_THREADS"):
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["RESNET_INTRA_OP_THREADS"]))
    if os.environ.get("RESNET_INTER_OP_THREADS"):
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["RESNET_INTER_OP_THREADS"]))
    variant = dataclasses.replace(throughput.default_variant("20v1"), batch_size=batch_size)
    model, stream = throughput.prepare(variant, images, labels)
    throughput.run_steps(model, stream, 2)
    best = max(throughput.run_steps(model, stream, max(3, count // batch_size)) for _ in range(2))
    print(json.dumps({"img_s": best * batch_size}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=2048, help="images per measurement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4 * args.batch_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=len(images))
    if args.child:
        child(args.batch_size, images, labels, args.images)
        return

    import tensorflow as tf

    calls = max(3, args.images // args.batch_size)
    mean = data.pixel_mean(images)
    batches = iter(data.make_dataset(images, labels, mean, args.batch_size, training=True).repeat())
    flow = classic_recipe.classic_flow(images, labels, mean, classic_recipe.CLASSIC_BATCH_SIZE)
    x, y = next(batches)
    measurements = {
        "tf.data pipeline alone (pad-crop-flip, mean)": (lambda: next(batches), args.batch_size),
        "classic ImageDataGenerator alone (one thread)": (lambda: flow[np.random.randint(len(flow))], classic_recipe.CLASSIC_BATCH_SIZE),
    }
    for policy in ("float32", "mixed_bfloat16"):
        variant = throughput.Variant("20v1", "tf.data", args.batch_size, policy)
        model, stream = throughput.prepare(variant, images, labels)
        forward = tf.function(lambda batch, m=model: m(batch, training=False))
        measurements[f"{policy}: forward pass only"] = (lambda f=forward: f(x).numpy(), args.batch_size)
        measurements[f"{policy}: training step, batch in memory"] = (lambda m=model: m.train_on_batch(x, y), args.batch_size)
        measurements[f"{policy}: fit on the tf.data pipeline"] = (
            lambda m=model, s=stream: throughput.run_steps(m, s, calls), args.batch_size * calls)
    best = {name: 0.0 for name in measurements}
    for _ in range(2):
        for name, (fn, per_call) in measurements.items():
            repeats = 1 if "fit" in name else calls
            best[name] = max(best[name], rate(fn, per_call, repeats))
    rows = [{"what": name, "img/s": round(value), "ms per batch of " + str(args.batch_size): round(1000 * args.batch_size / value, 1)}
            for name, value in best.items()]

    for name, env in SETTINGS.items():
        result = subprocess.run([sys.executable, __file__, "--child", "--batch-size", str(args.batch_size), "--images", str(args.images)],
                                capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        value = json.loads(lines[-1])["img_s"] if lines else float("nan")
        rows.append({"what": f"default fit, {name} [separate process]", "img/s": round(value) if value == value else None,
                     "ms per batch of " + str(args.batch_size): round(1000 * args.batch_size / value, 1) if value == value else None})

    print(f"# ResNet20 v1, batch {args.batch_size}, {throughput.machine_label()}, TensorFlow {tf.__version__}, {time.strftime('%Y-%m-%d')}")
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
