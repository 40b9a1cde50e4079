"""Benchmark: training and inference speed of the CIFAR ResNets, and of the input pipeline.

    python benchmarks/throughput.py                       # ResNet20/56 v1, ResNet56 v2 on this machine
    python benchmarks/throughput.py --models 20v1 110v1 --batch-size 128 --steps 30

Prints one table (images per second, milliseconds per step, peak resident memory) and the machine
it ran on. Data: random uint8 images through the real tf.data pipeline (pad-crop-flip, mean
subtraction), so no download is needed; speed does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from resnet_utils import analysis, data, models, training  # noqa: E402


def parse_model(spec: str):
    depth, version = spec.lower().split("v")
    return models.n_from_depth(int(depth), int(version)), int(version)


def time_steps(step, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["20v1", "56v1", "56v2"], help="depth + version, e.g. 20v1 110v1 56v2")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model (after 3 warm-up steps)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    count = args.batch_size * 8
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count)
    mean = data.pixel_mean(images)
    pipeline = data.make_dataset(images, labels, mean, args.batch_size, training=True).repeat()
    batches = iter(pipeline)
    pipeline_seconds = time_steps(lambda: next(batches), 3, args.steps * 3)
    rows = [{"what": "input pipeline (pad-crop-flip, mean)", "parameters": None, "MMACs/image": None,
             "train img/s": round(args.batch_size / pipeline_seconds), "train ms/step": round(1000 * pipeline_seconds, 1),
             "inference img/s": None}]

    x, y = next(batches)
    for spec in args.models:
        n, version = parse_model(spec)
        model = models.build_resnet(n, version)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy",
                      jit_compile=bool(tf.config.list_physical_devices("GPU")))
        train_seconds = time_steps(lambda: model.train_on_batch(x, y), 3, args.steps)
        predict = tf.function(lambda batch: model(batch, training=False))
        infer_seconds = time_steps(lambda: predict(x).numpy(), 3, args.steps)
        rows.append({"what": model.name, "parameters": model.count_params(),
                     "MMACs/image": round(analysis.total_macs(model) / 1e6, 1),
                     "train img/s": round(args.batch_size / train_seconds), "train ms/step": round(1000 * train_seconds, 1),
                     "inference img/s": round(args.batch_size / infer_seconds)})

    hardware = training.hardware_description()
    device = ", ".join(hardware["gpus"]) or f"{hardware['cpu']} ({hardware['cpu_count']} cores, CPU only)"
    print(f"# {dt.date.today()} · {device} · TensorFlow {tf.__version__} · batch {args.batch_size} · {args.steps} timed steps")
    print(f"# peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    with pd.option_context("display.width", 160, "display.max_columns", 10):
        print(pd.DataFrame(rows).set_index("what").to_string())


if __name__ == "__main__":
    main()
