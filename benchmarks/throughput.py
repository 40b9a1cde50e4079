"""Benchmark: training throughput of the classic Keras recipe against this project's training path.

    python benchmarks/throughput.py                       # ResNet20 v1 grid, ResNet56 v1 and v2
    python benchmarks/throughput.py --models 20v1 --images 1024 --rounds 1   # a quick look
    python benchmarks/throughput.py --models 20v1 resnet18 resnet50 --no-memory  # the ImageNet-stem nets too

For every variant it trains with ``model.fit`` on the variant's own input pipeline, augmentation
included, and prints images per second, the ratio to the classic recipe of the same model, the
seconds per 50,000-image epoch that implies, and peak memory:

* ``classic``: the Keras example on Keras 3 (batch 32, Adam, ``ImageDataGenerator`` shifting and
  flipping each image in Python/SciPy with 4 worker threads, Keras's own BatchNormalization; see
  ``classic_recipe.py``);
* ``tf.data``: this project's path (``data.make_dataset``: pad-crop-flip in the tf.data graph,
  prefetched), over batch sizes, float32 against mixed precision, XLA on and off, and channels-last
  against channels-first, the fused batch normalisation against Keras's own, one step per call
  against four. The row marked ``default`` is what ``training.train`` picks on this machine.

The variants run interleaved, round after round, in one process, so a busy machine slows them all
alike and the ratios hold. Peak memory: on a GPU TensorFlow's peak allocation per variant; on a CPU
the peak resident memory of a separate short process per variant (``--no-memory`` skips it).
Data: random uint8 images (speed does not depend on pixel values), so no download is needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import classic_recipe  # noqa: E402
from resnet_utils import data, models, training  # noqa: E402

EPOCH_IMAGES = 50_000


@dataclass(frozen=True)
class Variant:
    model: str  # depth + version of a CIFAR ResNet, e.g. "20v1", or an ImageNet-stem net: "resnet18", "resnet50"
    recipe: str  # "classic" or "tf.data"
    batch_size: int
    policy: str = "float32"  # a Keras dtype policy
    xla: bool = False
    layout: str = "channels_last"
    steps_per_execution: int = 1
    batch_norm: str = "fused"  # "fused" (resnet_utils.layers.BatchNormalization) or "keras" (Keras's own)

    @property
    def label(self) -> str:
        if self.recipe == "classic":
            return f"classic (batch {self.batch_size}, Python aug, Adam)"
        parts = [f"tf.data batch {self.batch_size}", self.policy.replace("mixed_", "mixed ")]
        if self.xla:
            parts.append("XLA")
        if self.layout != "channels_last":
            parts.append(self.layout)
        if self.steps_per_execution > 1:
            parts.append(f"{self.steps_per_execution} steps/call")
        if self.batch_norm == "keras":
            parts.append("keras.applications (Keras BN)" if self.model == "resnet50" else "Keras BN")
        return ", ".join(parts)


def default_variant(model: str) -> Variant:
    """What ``training.train`` uses on this machine by default (``training.speed_settings``)."""
    config = training.TrainConfig(out="unused")
    speed = training.speed_settings(config)
    return Variant(model, "tf.data", config.batch_size, speed["precision_policy"], xla=speed["xla"],
                   steps_per_execution=speed["steps_per_execution"])


def variants_for(models_wanted: list[str], batch_sizes: list[int]) -> list[Variant]:
    """The full grid for the first model; classic, default and float32 for the others. An
    ImageNet-stem net gets the default and the same with Keras's batch normalisation (for ResNet50:
    ``keras.applications.ResNet50``, what ``models.resnet50`` built before it had the fused layer)."""
    chosen: list[Variant] = []
    for index, model in enumerate(models_wanted):
        default = default_variant(model)
        mixed = default.policy if default.policy != "float32" else "mixed_bfloat16"
        if is_imagenet_net(model):
            chosen += [Variant(model, "tf.data", default.batch_size, default.policy, batch_norm="keras"), default]
            continue
        chosen.append(Variant(model, "classic", classic_recipe.CLASSIC_BATCH_SIZE, batch_norm="keras"))
        if index == 0:
            chosen += [Variant(model, "tf.data", default.batch_size, mixed, batch_norm="keras"),
                       Variant(model, "tf.data", default.batch_size, "float32", batch_norm="keras"),
                       Variant(model, "tf.data", default.batch_size, default.policy, steps_per_execution=4)]
            for batch in batch_sizes:
                chosen += [Variant(model, "tf.data", batch, "float32"), Variant(model, "tf.data", batch, mixed)]
            chosen += [Variant(model, "tf.data", default.batch_size, "float32", xla=True),
                       Variant(model, "tf.data", default.batch_size, mixed, xla=True),
                       Variant(model, "tf.data", default.batch_size, "float32", layout="channels_first")]
        else:
            chosen += [Variant(model, "tf.data", default.batch_size, "float32"), Variant(model, "tf.data", default.batch_size, mixed)]
        if default not in chosen:
            chosen.append(default)
    return list(dict.fromkeys(chosen))


class BatchClock:
    """Records when each training batch ends, to time steps after the first few of a ``fit``."""

    def __init__(self):
        import keras

        clock = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                clock.ends.append(time.perf_counter())

        self.callback = Callback()
        self.ends: list[float] = []


def prepare(variant: Variant, images: np.ndarray, labels: np.ndarray):
    """Build and compile the variant's model and its endless training stream."""
    import keras
    import tensorflow as tf

    keras.config.set_image_data_format(variant.layout)
    keras.mixed_precision.set_global_policy(variant.policy)
    try:
        shape = (3, 32, 32) if variant.layout == "channels_first" else (32, 32, 3)
        output_dtype = "float32" if variant.policy != "float32" else None
        if variant.model == "resnet50" and variant.batch_norm == "keras":  # before: Keras's own application
            model = keras_application_resnet50(shape, output_dtype)
        else:
            model = build(variant.model, shape, output_dtype=output_dtype)
            if variant.batch_norm == "keras":  # the Keras example's own layer (the classic baseline)
                model = models.with_keras_batch_normalization(model)
        if variant.recipe == "classic":
            optimizer = classic_recipe.classic_optimizer()
        else:
            optimizer = training.make_optimizer("fast", 30, 391)
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=variant.xla,
                      steps_per_execution=variant.steps_per_execution)
    finally:
        keras.mixed_precision.set_global_policy("float32")
        keras.config.set_image_data_format("channels_last")
    mean = data.pixel_mean(images)
    if variant.recipe == "classic":
        stream = classic_recipe.classic_flow(images, labels, mean, variant.batch_size)
    else:
        stream = data.make_dataset(images, labels, mean, variant.batch_size, training=True).repeat()
        if variant.layout == "channels_first":
            stream = stream.map(lambda x, y: (tf.transpose(x, [0, 3, 1, 2]), y))
    return model, stream


def run_steps(model, stream, steps: int, skip: int = 2) -> float:
    """Batches per second over ``steps`` batches of one ``fit``, not counting its first ``skip``
    (a finite stream that runs out earlier is timed over the batches it gave). With several steps
    per execution Keras calls back once per execution, so the counts are in executions."""
    per_call = getattr(model, "steps_per_execution", 1) or 1
    clock = BatchClock()
    model.fit(stream, steps_per_epoch=(steps + skip) * per_call, epochs=1, verbose=0, callbacks=[clock.callback])
    if len(clock.ends) <= skip:
        raise RuntimeError(f"the stream gave only {len(clock.ends)} batches; time needs more than {skip}")
    return per_call * (len(clock.ends) - skip) / (clock.ends[-1] - clock.ends[skip - 1])


def is_imagenet_net(spec: str) -> bool:
    return spec in ("resnet18", "resnet50")


def display_name(spec: str) -> str:
    """``20v1`` -> ``ResNet20v1``; ``resnet50`` -> ``ResNet50`` (the ImageNet stem)."""
    return spec.replace("resnet", "ResNet") if is_imagenet_net(spec) else f"ResNet{spec}"


def build(spec: str, input_shape=(32, 32, 3), output_dtype: str | None = None):
    """The model a ``--models`` entry names, as ``training.train`` builds it (ImageNet stem for
    resnet18/50)."""
    if is_imagenet_net(spec):
        return getattr(models, spec)("imagenet", input_shape=input_shape, output_dtype=output_dtype)
    n, version = parse_model(spec)
    return models.build_resnet(n, version, input_shape=input_shape, output_dtype=output_dtype)


def keras_application_resnet50(input_shape, output_dtype: str | None):
    """``keras.applications.ResNet50`` for 10 classes, its softmax in ``output_dtype`` (None: the policy's)."""
    import keras

    body = keras.applications.ResNet50(weights=None, input_shape=tuple(input_shape), classes=10, classifier_activation=None)
    outputs = keras.layers.Activation("softmax", dtype=output_dtype, name="predictions_softmax")(body.output)
    return keras.Model(body.input, outputs, name="keras_applications_resnet50")


def parse_model(spec: str) -> tuple[int, int]:
    depth, version = spec.lower().split("v")
    return models.n_from_depth(int(depth), int(version)), int(version)


def memory_probe(variant: Variant, images: np.ndarray, labels: np.ndarray) -> None:
    """Child process: train the variant for a few steps, print its peak resident memory (MiB)."""
    model, stream = prepare(variant, images, labels)
    run_steps(model, stream, 3)
    print(json.dumps({"peak_mib": peak_resident_mib()}))


def peak_resident_mib() -> float:
    """This process's peak resident memory. /proc's VmHWM, because getrusage's ru_maxrss survives
    fork+exec on Linux and would report the parent's peak instead."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(variants: list[Variant], images: np.ndarray, labels: np.ndarray, rounds: int = 2,
            images_per_round: int = 2048, memory: bool = True):
    """Train every variant for ``images_per_round`` images per round, interleaved over ``rounds``.

    Returns (images/s per round, peak MiB, failure message) dicts keyed by variant. A variant that
    cannot run here (e.g. a layout the CPU kernels lack) is reported, not raised.
    """
    import tensorflow as tf

    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    prepared, failures = {}, {}
    for variant in variants:
        try:
            model, stream = prepare(variant, images, labels)
            if on_gpu:
                tf.config.experimental.reset_memory_stats("GPU:0")
            run_steps(model, stream, 2)  # traces and compiles
            prepared[variant] = (model, stream)
        except Exception as error:  # an unsupported combination is a result, not a crash
            failures[variant] = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
        print(f"ready: {variant.model} {variant.label}" + (f" (failed: {failures[variant]})" if variant in failures else ""), file=sys.stderr)

    rates: dict[Variant, list[float]] = {v: [] for v in prepared}
    peaks: dict[Variant, float] = {}
    for round_index in range(rounds):
        for variant, (model, stream) in prepared.items():
            steps = max(3, round(images_per_round / variant.batch_size / variant.steps_per_execution))
            if on_gpu:
                tf.config.experimental.reset_memory_stats("GPU:0")
            rates[variant].append(run_steps(model, stream, steps) * variant.batch_size)
            if on_gpu:
                peaks[variant] = max(peaks.get(variant, 0), tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20)
        print(f"round {round_index + 1}/{rounds} done", file=sys.stderr)

    if not on_gpu and memory:
        for variant in prepared:
            result = subprocess.run([sys.executable, __file__, "--probe", json.dumps(asdict(variant))],
                                    capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
            if lines:
                peaks[variant] = json.loads(lines[-1])["peak_mib"]

    return rates, peaks, failures


def results_table(variants: list[Variant], rates: dict, peaks: dict, failures: dict) -> pd.DataFrame:
    """One row per variant: best images/s, ratio to the classic recipe, s/epoch, peak memory."""
    rows = []
    for variant in variants:
        default = default_variant(variant.model)
        classic = next((v for v in rates if v.model == variant.model and v.recipe == "classic"), None)
        best = max(rates[variant]) if variant in rates else None
        baseline = max(rates[classic]) if classic in rates else None
        rows.append({
            "model": display_name(variant.model),
            "variant": variant.label + ("  <- default" if variant == default else ""),
            "img/s": round(best) if best else None,
            "x classic": round(best / baseline, 2) if best and baseline else None,
            "s/epoch": round(EPOCH_IMAGES / best, 1) if best else None,
            "GFLOP/s": round(best * training_flops_per_image(variant.model) / 1e9, 1) if best else None,
            "peak MiB": round(peaks[variant]) if variant in peaks else None,
            "note": failures.get(variant, ""),
        })
    return pd.DataFrame(rows)


def training_flops_per_image(model: str) -> float:
    """About 3 x the forward pass's 2 x MACs: the forward pass, then the gradients with respect to
    the activations and to the weights, each as costly as the forward convolutions (batch norm,
    ReLU and the optimizer update are left out: they are memory-bound and small in FLOPs)."""
    from resnet_utils import analysis

    return 3 * 2 * analysis.total_macs(build(model))


def matmul_peak_gflops(dtype: str, size: int = 2048, repeats: int = 10) -> float:
    """What this machine's TensorFlow reaches on a large square matrix product: the practical
    ceiling for dense convolution work in that precision."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((size, size)), dtype)
    product = tf.function(lambda m: tf.matmul(m, m))
    product(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        product(a).numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def machine_label() -> str:
    """The GPUs, or the CPU and its core count: what a benchmark's figures were measured on."""
    hardware = training.hardware_description()
    return ", ".join(hardware["gpus"]) or f"{hardware['cpu']}, {hardware['cpu_count']} cores, no GPU"


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' ``to_markdown`` would need the tabulate package)."""
    cells = [[("" if pd.isna(v) else str(v)) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["20v1", "56v1", "56v2"], help="depth + version; the first gets the full grid")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 128, 256, 512], help="for the first model's tf.data grid")
    parser.add_argument("--images", type=int, default=2048, help="images timed per variant per round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the table shows the best round")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-variant memory probe on a CPU")
    parser.add_argument("--markdown", help="also write the table as Markdown to this file (and as CSV beside it)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one variant's memory, as JSON
    args = parser.parse_args(argv)

    import tensorflow as tf

    rng = np.random.default_rng(0)
    largest = max(args.batch_sizes + [training.DEFAULT_BATCH_SIZE["fast"]])
    pool = max(4 * largest, args.images + 4 * classic_recipe.CLASSIC_BATCH_SIZE)  # the classic stream does not repeat
    images = rng.integers(0, 256, size=(pool, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=pool)
    if args.probe:
        memory_probe(Variant(**json.loads(args.probe)), images, labels)
        return pd.DataFrame()
    variants = variants_for(args.models, args.batch_sizes)
    rates, peaks, failures = measure(variants, images, labels, args.rounds, args.images, memory=not args.no_memory)
    table = results_table(variants, rates, peaks, failures)
    on_gpu = bool(tf.config.list_physical_devices("GPU"))

    device = machine_label()
    header = (f"{dt.date.today()} · {device} · TensorFlow {tf.__version__} · Keras {__import__('keras').__version__} · "
              f"{args.images} images per variant per round, best of {args.rounds} interleaved rounds · "
              f"peak memory: {'TensorFlow GPU peak' if on_gpu else 'resident set of a separate process per variant'}")
    peaks_gflops = {dtype: matmul_peak_gflops(dtype) for dtype in ("float32", "bfloat16")}
    flops = training_flops_per_image(args.models[0])
    ceiling = "; ".join(f"{dtype} {value:.0f} GFLOP/s, at most {value * 1e9 / flops:.0f} img/s for {display_name(args.models[0])}"
                        for dtype, value in peaks_gflops.items())
    header += f" · ceiling (a 2048x2048 matmul in TensorFlow): {ceiling}"
    print(f"# {header}")
    with pd.option_context("display.width", 200, "display.max_columns", 10, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    if args.markdown:
        Path(args.markdown).write_text(f"{header}\n\n{markdown_table(table)}\n")
        table.assign(machine=device, date=str(dt.date.today())).to_csv(Path(args.markdown).with_suffix(".csv"), index=False)
    return table


if __name__ == "__main__":
    main()
