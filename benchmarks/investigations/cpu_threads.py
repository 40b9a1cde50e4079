"""Why the default path gains little from a CPU's second core: threads, replicas and oneDNN's kernels.

    python benchmarks/investigations/cpu_threads.py [--rounds 2] [--markdown benchmarks/investigations/cpu-threads.md]

Part 1, settings: the default ``fit`` (``training.compile_model`` + ``data.make_dataset``, ResNet20 v1,
batch 128, random images) in a fresh process per setting, the settings interleaved round by round so
that a busy moment slows all of a round alike:

* TensorFlow's intra-op pool (one op split over threads) against its inter-op pool (independent ops
  side by side), e.g. the backward pass's input and weight gradients of one convolution;
* ``MirroredStrategy`` over as many logical CPU devices as cores (``train --distribute mirrored``):
  each replica takes its share of the batch in its own inter-op thread, one op per core, as data
  parallelism does on several GPUs. Batch normalisation then normalises over each replica's share
  (64 images on 2 cores, as the paper's two GPUs did), so this one is a change of the recipe's
  numerics, not only of its speed;
* XLA (``jit_compile``) on the CPU.

Part 2, kernels: oneDNN's own timing of every primitive it runs (``ONEDNN_VERBOSE=1``) over a few
training steps, with 1 and with 2 intra-op threads, summed by kind (convolution forward, backward
data, backward weights, batch normalisation forward and backward, ...): which kernels gain from the
second thread, and how much of the step is spent outside oneDNN (element-wise ops, the update).

Part 3, operations: TensorFlow's profiler (``tf.profiler.experimental``) over a few training steps,
with 1 and with 2 intra-op threads, its self time summed by operation type: which of the ops outside
oneDNN (Eigen's element-wise ReLU, ReLU gradient, additions, casts) cost what, and how they scale.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent

SETTINGS = {
    "as shipped (intra-op = cores, inter-op = 1)": {},
    "intra-op 1, inter-op 2": {"intra": 1, "inter": 2},
    "intra-op 2, inter-op 2": {"intra": 2, "inter": 2},
    "2 replicas (MirroredStrategy on 2 logical CPUs), intra-op 1, inter-op 2": {"replicas": 2, "intra": 1, "inter": 2},
    "2 replicas, intra-op 2, inter-op 2": {"replicas": 2, "intra": 2, "inter": 2},
    "XLA on (jit_compile), as shipped otherwise": {"xla": "on"},
}
BATCH_SIZE = 128


def random_data(count: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, (count,), dtype=np.int64)


def default_model_and_stream(config, images: int = 1024, warm_up_steps: int = 0):
    """The default path's compiled model (under ``config``'s strategy) and its endless training stream
    of ``images`` random images; ``warm_up_steps`` steps are trained first (tracing, the pipeline's start)."""
    from resnet_utils import data, training

    x, y = random_data(images)
    stream = data.make_dataset(x, y, data.pixel_mean(x), BATCH_SIZE, training=True, seed=0).repeat()
    with training.make_strategy(config).scope():
        model, _ = training.compile_model(config, 8)
    if warm_up_steps:
        model.fit(stream, steps_per_epoch=warm_up_steps, epochs=1, verbose=0)
    return model, stream


def child_fit(setting: dict, images: int, warmup: int) -> None:
    """Print the default ``fit``'s img/s under ``setting`` (this process's only measurement)."""
    import resnet_utils  # noqa: F401  (sets the inter-op default before TensorFlow starts)
    import keras
    import tensorflow as tf

    if setting.get("replicas", 1) > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * setting["replicas"])
    if "intra" in setting:
        tf.config.threading.set_intra_op_parallelism_threads(setting["intra"])
    if "inter" in setting:
        tf.config.threading.set_inter_op_parallelism_threads(setting["inter"])
    from resnet_utils import training

    config = training.TrainConfig(out=str(HERE / "unused"), data="sample", xla=setting.get("xla", "auto"),
                                  distribute="mirrored" if setting.get("replicas", 1) > 1 else "none")
    model, stream = default_model_and_stream(config, max(images, 1024))
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    steps = max(2, images // BATCH_SIZE)
    model.fit(stream, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[Clock()])
    print(json.dumps({"img_s": BATCH_SIZE * steps / (ends[-1] - ends[warmup - 1])}))


def child_verbose(steps: int) -> None:
    """A few default training steps, bracketed by markers for ``ONEDNN_VERBOSE``'s lines."""
    import resnet_utils  # noqa: F401
    from resnet_utils import training

    config = training.TrainConfig(out=str(HERE / "unused"), data="sample", distribute="none")
    model, stream = default_model_and_stream(config, warm_up_steps=4)
    print("CPU-THREADS-START", flush=True)
    start = time.perf_counter()
    model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    print(f"CPU-THREADS-END {1000 * (time.perf_counter() - start) / steps:.2f}", flush=True)


def child_profile(steps: int) -> None:
    """Profile a few default training steps; print TensorFlow's ms per step by operation type."""
    import glob
    import tempfile

    import resnet_utils  # noqa: F401
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_plugin

    from resnet_utils import training

    config = training.TrainConfig(out=str(HERE / "unused"), data="sample", distribute="none")
    model, stream = default_model_and_stream(config, warm_up_steps=4)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        trace = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
        table = json.loads(profiler_plugin.xspace_to_tools_data([trace], "framework_op_stats", {})[0])[0]
    columns = {column["id"]: i for i, column in enumerate(table["cols"])}
    per_type: dict[str, float] = defaultdict(float)
    for row in table["rows"]:
        values = [cell.get("v") for cell in row["c"]]
        if values[columns["type"]] not in ("IDLE", "Dataset"):
            per_type[values[columns["type"]]] += values[columns["total_self_time"]] / 1000 / steps
    print(json.dumps(per_type))


def run_child(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})


def primitive_times(stdout: str, steps: int) -> tuple[dict, float]:
    """oneDNN milliseconds per training step by primitive kind, and the step's wall time in ms."""
    per_kind: dict[str, float] = defaultdict(float)
    inside, step_ms = False, float("nan")
    for line in stdout.splitlines():
        if line.startswith("CPU-THREADS-START"):
            inside = True
        elif line.startswith("CPU-THREADS-END"):
            step_ms = float(line.split()[1])
            inside = False
        elif inside and line.startswith("onednn_verbose") and ",exec,cpu," in line:
            fields = line.split(",")
            kind = f"{fields[5]} {fields[7]}".replace("undef", "").strip()
            per_kind[kind] += float(fields[-1]) / steps
    return dict(per_kind), step_ms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=6144, help="timed images per setting and round")
    parser.add_argument("--warmup", type=int, default=8, help="steps before the clock starts")
    parser.add_argument("--verbose-steps", type=int, default=8, help="part 2: steps traced per thread count")
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 2,3")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "profile":
        child_profile(args.verbose_steps)
        return
    if args.child == "verbose":
        child_verbose(args.verbose_steps)
        return
    if args.child:
        child_fit(json.loads(args.child), args.images, args.warmup)
        return

    import pandas as pd
    import throughput

    parts = {int(part) for part in args.parts.split(",")}
    sections = []
    if 1 in parts:
        sections += ["## Part 1: the default fit under each setting (fresh process each)", "", throughput.markdown_table(settings_table(args)), ""]
    if 2 in parts:
        sections += [f"## Part 2: oneDNN's time per primitive ({args.verbose_steps} steps traced)", "",
                     throughput.markdown_table(kernels_table(args.verbose_steps)), ""]
    if 3 in parts:
        sections += [f"## Part 3: TensorFlow's profiler, self time by operation type ({args.verbose_steps} steps)", "",
                     throughput.markdown_table(operations_table(args.verbose_steps)), ""]

    import tensorflow as tf

    header = (f"# cpu_threads.py: ResNet20 v1, batch {BATCH_SIZE}, {throughput.machine_label()}, TensorFlow {tf.__version__}, "
              f"{time.strftime('%Y-%m-%d')}" + (f"; {args.rounds} round(s) of {args.images} images per setting" if 1 in parts else ""))
    text = "\n".join([header, "", *sections])
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


def settings_table(args):
    import pandas as pd

    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, setting in SETTINGS.items():
            result = run_child(["--child", json.dumps(setting), "--images", str(args.images), "--warmup", str(args.warmup)], {})
            lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
            rates[name].append(json.loads(lines[-1])["img_s"] if lines else float("nan"))
            if not lines:
                print(f"{name}: failed: {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    shipped = max(rates[next(iter(SETTINGS))])
    return pd.DataFrame([{"setting": name, **{f"round {i + 1}": round(v) for i, v in enumerate(values)},
                          "best img/s": round(max(values)), "x as shipped": round(max(values) / shipped, 2)}
                         for name, values in rates.items()])


def kernels_table(steps: int):
    import pandas as pd

    kernels, walls = {}, {}
    for threads in (1, 2):
        result = run_child(["--child", "verbose", "--verbose-steps", str(steps)],
                           {"ONEDNN_VERBOSE": "1", "TF_NUM_INTRAOP_THREADS": str(threads)})
        kernels[threads], walls[threads] = primitive_times(result.stdout, steps)
    kinds = sorted(set(kernels[1]) | set(kernels[2]), key=lambda k: -kernels[1].get(k, 0))
    rows = [{"oneDNN primitive": kind, "ms/step, 1 thread": kernels[1].get(kind, 0), "ms/step, 2 threads": kernels[2].get(kind, 0)}
            for kind in kinds if kernels[1].get(kind, 0) + kernels[2].get(kind, 0) >= 0.5]
    inside = {t: sum(kernels[t].values()) for t in (1, 2)}
    rows.append({"oneDNN primitive": "all oneDNN primitives", "ms/step, 1 thread": inside[1], "ms/step, 2 threads": inside[2]})
    rows.append({"oneDNN primitive": "outside oneDNN (step wall time minus the above)",
                 "ms/step, 1 thread": walls[1] - inside[1], "ms/step, 2 threads": walls[2] - inside[2]})
    rows.append({"oneDNN primitive": "whole training step (wall time, verbose tracing on)", "ms/step, 1 thread": walls[1], "ms/step, 2 threads": walls[2]})
    table = pd.DataFrame(rows)
    table["speed-up"] = (table["ms/step, 1 thread"] / table["ms/step, 2 threads"]).round(2)
    return table.round(1)


def operations_table(steps: int):
    import pandas as pd

    per_type = {}
    for threads in (1, 2):
        result = run_child(["--child", "profile", "--verbose-steps", str(steps)], {"TF_NUM_INTRAOP_THREADS": str(threads)})
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        per_type[threads] = json.loads(lines[-1]) if lines else {}
    kinds = sorted(set(per_type[1]) | set(per_type[2]), key=lambda k: -per_type[1].get(k, 0))
    rows = [{"operation type": kind, "oneDNN": "yes" if "Mkl" in kind else "no",
             "ms/step, 1 thread": per_type[1].get(kind, 0), "ms/step, 2 threads": per_type[2].get(kind, 0)}
            for kind in kinds if per_type[1].get(kind, 0) >= 0.5]
    for label, keep in (("all oneDNN (_Mkl*) operations", lambda k: "Mkl" in k), ("all other operations", lambda k: "Mkl" not in k),
                        ("all operations", lambda k: True)):
        rows.append({"operation type": label, "oneDNN": "",
                     **{f"ms/step, {t} thread{'s' if t > 1 else ''}": sum(v for k, v in per_type[t].items() if keep(k)) for t in (1, 2)}})
    table = pd.DataFrame(rows)
    table["speed-up"] = (table["ms/step, 1 thread"] / table["ms/step, 2 threads"]).round(2)
    return table.round(1)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))  # benchmarks/: throughput
    main()
