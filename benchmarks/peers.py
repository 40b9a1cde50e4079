"""Benchmark: this project's default training path against PyTorch and Keras 3's other backends.

    python benchmarks/peers.py --peer-python <peers-venv>/bin/python --rounds 3 --images 3072 \\
        --markdown benchmarks/peers-cpu.md          # also writes peers-cpu.csv
    python benchmarks/peers.py --images 512 --rounds 1   # TensorFlow rows only; peers "not available"

Every variant trains ResNet20 v1 (274,442 parameters, as ``resnet_utils.models.build_resnet(3, 1)``)
at batch 128 on the same random uint8 images, input pipeline and augmentation included (zero-pad 4,
random 32x32 crop, horizontal flip, per-pixel mean subtraction), with SGD (momentum 0.9, Nesterov),
an L2 penalty of 1e-4 on the convolution kernels and softmax cross-entropy:

* ``project default``: exactly what ``training.train`` runs, through the project's own public
  functions at the time the benchmark runs (``TrainConfig`` -> ``compile_model`` and
  ``data.make_dataset(..., training=True)`` -> ``model.fit``), so it follows any change to them;
* ``classic``: the Keras example's recipe (``classic_recipe.py``: batch 32, Adam, ImageDataGenerator);
* ``pytorch ...``: the same network written in PyTorch (``torch_resnet20``), channels-last, in float32,
  in bfloat16 autocast, and bfloat16 autocast under ``torch.compile``; the augmentation is done on the
  batch as tensors, weight decay 2e-4 on conv kernels only (the gradient of Keras's L2(1e-4) loss);
* ``keras jax/torch backend``: the project's own Keras model (``resnet_utils.models``) and optimizer
  (``training.make_optimizer``) under ``KERAS_BACKEND=jax`` / ``torch``, float32 and mixed_bfloat16,
  fed numpy batches augmented in numpy (``augment_numpy``).

Each variant runs in a fresh subprocess per round (TensorFlow rows in this interpreter, the others in
``--peer-python``, a virtual environment with torch, jax and keras, so neither disturbs the other),
and the rounds are interleaved: round 1 runs every variant once, then round 2, ... A busy machine
slows all variants of a round alike. A subprocess trains ``--warmup`` steps (tracing, compiling,
the pipeline's start), then ``--images`` more images, timed from the end of the last warm-up step to
the end of the last step; ``fit``'s whole wall time and the seconds it took to return after its last
batch are reported too. A variant whose interpreter or package is missing is a row reading
"not available (why)"; one that breaks reads "failed: why". Neither stops the others.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

BATCH_SIZE = 128
RESNET20_PARAMETERS = 274_442
#: Keras's L2(1e-4) penalty in the loss has the gradient 2e-4 * w: PyTorch's ``weight_decay``.
TORCH_WEIGHT_DECAY = 2e-4
#: Keras BatchNormalization(momentum=0.99, epsilon=1e-3) in PyTorch's convention.
TORCH_BN_MOMENTUM, TORCH_BN_EPS = 0.01, 1e-3
LEARNING_RATE = 0.1


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "project", "classic", "torch" or "keras"
    interpreter: str  # "project" (this Python, TensorFlow) or "peer" (--peer-python)
    backend: str = "tensorflow"  # Keras backend (or "torch" for plain PyTorch)
    precision: str = "float32"  # torch: float32 | bfloat16 (autocast); keras: a dtype policy
    compile: bool = False  # torch.compile

    @property
    def batch_size(self) -> int:
        return 32 if self.kind == "classic" else BATCH_SIZE


VARIANTS = (
    Variant("project default", "project", "project"),
    Variant("classic", "classic", "project"),
    Variant("pytorch fp32 channels_last", "torch", "peer", "torch", "float32"),
    Variant("pytorch bf16 autocast channels_last", "torch", "peer", "torch", "bfloat16"),
    Variant("pytorch bf16 + torch.compile", "torch", "peer", "torch", "bfloat16", compile=True),
    Variant("keras jax backend, float32", "keras", "peer", "jax", "float32"),
    Variant("keras jax backend, mixed_bfloat16", "keras", "peer", "jax", "mixed_bfloat16"),
    Variant("keras torch backend, float32", "keras", "peer", "torch", "float32"),
    Variant("keras torch backend, mixed_bfloat16", "keras", "peer", "torch", "mixed_bfloat16"),
)
BY_NAME = {v.name: v for v in VARIANTS}


# --- data and augmentation (shared by every worker) -------------------------------------------------


def random_images(count: int, seed: int = 0):
    """``count`` random uint8 images (N, 32, 32, 3) and labels: speed does not depend on pixel values."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, size=count).astype(np.int64)


def pixel_mean(images):
    """The per-pixel mean image in [0, 1], float32 (as ``resnet_utils.data.pixel_mean``)."""
    import numpy as np

    return (np.asarray(images, dtype=np.float64) / 255.0).mean(axis=0).astype(np.float32)


def crop_indices(offsets_y, offsets_x, flips, xp, size: int = 32):
    """Row and column indices into the zero-padded images that take each image's random
    ``size``x``size`` window, its columns reversed where it is flipped (numpy or torch as ``xp``)."""
    steps = xp.arange(size)
    rows = offsets_y[:, None] + steps[None, :]
    cols = offsets_x[:, None] + xp.where(flips[:, None], size - 1 - steps[None, :], steps[None, :])
    return rows, cols


def augment_numpy(batch, mean, rng, padding: int = 4):
    """The project's augmentation of a uint8 batch in numpy: zero-pad ``padding`` pixels, crop a
    random 32x32 window, flip left-right with probability 1/2, scale to [0, 1], subtract ``mean``."""
    import numpy as np

    n = len(batch)
    padded = np.pad(batch, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    rows, cols = crop_indices(rng.integers(0, 2 * padding + 1, n), rng.integers(0, 2 * padding + 1, n),
                              rng.random(n) < 0.5, np)
    crops = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return crops.astype(np.float32) * np.float32(1 / 255) - mean


# --- timing ------------------------------------------------------------------------------------------


def summarise(ends: list[float], images_per_end: list[int], start: float, stop: float, warmup: int) -> dict:
    """Images/s from the end of step ``warmup`` to the last step's end, and the wall times around it."""
    if len(ends) <= warmup:
        raise RuntimeError(f"only {len(ends)} steps ran; timing needs more than the {warmup} warm-up steps")
    timed_images = sum(images_per_end[warmup:len(ends)])
    seconds = ends[-1] - ends[warmup - 1] if warmup else ends[-1] - start
    marks = [ends[warmup - 1] if warmup else start] + ends[warmup:]
    durations = sorted((marks[i + 1] - marks[i]) / images_per_end[warmup + i] for i in range(len(marks) - 1))
    middle = len(durations) // 2
    median = durations[middle] if len(durations) % 2 else (durations[middle - 1] + durations[middle]) / 2
    return {
        "images_per_s": timed_images / seconds,
        # robust to the machine pausing the process for a while (others' jobs share its cores)
        "median_step_images_per_s": 1 / median,
        "timed_images": timed_images,
        "timed_steps": len(ends) - warmup,
        "warmup_s": (ends[warmup - 1] if warmup else start) - start,
        "wall_s": stop - start,
        "after_last_step_s": stop - ends[-1],
    }


def keras_clock(budget_s: float, warmup: int):
    """A Keras callback that records each batch's end and stops ``fit`` once ``budget_s`` seconds
    have passed after the warm-up (so a very slow variant cannot hold the run up)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            if len(self.ends) > warmup and self.ends[-1] - self.ends[warmup - 1 if warmup else 0] > budget_s:
                self.model.stop_training = True

    return Clock()


def fit_and_time(model, stream, steps: int, batch_sizes: list[int], warmup: int, budget_s: float, **fit_args) -> dict:
    """``model.fit`` one epoch of ``steps`` batches, timed by a batch-end callback. With several
    steps per execution Keras calls back once per execution, so the images are counted per call."""
    per_call = int(getattr(model, "steps_per_execution", 1) or 1)
    images_per_end = [sum(batch_sizes[i:i + per_call]) for i in range(0, len(batch_sizes), per_call)]
    clock = keras_clock(budget_s, warmup)
    start = time.perf_counter()
    model.fit(stream, epochs=1, verbose=0, callbacks=[clock], **fit_args)
    stop = time.perf_counter()
    result = summarise(clock.ends, images_per_end, start, stop, warmup)
    result["stopped_early"] = len(clock.ends) < len(images_per_end)
    return result


def batch_sizes_of(count: int, batch_size: int) -> list[int]:
    return [min(batch_size, count - start) for start in range(0, count, batch_size)]


# --- workers: one variant in this process ------------------------------------------------------------


class Unavailable(Exception):
    """The interpreter lacks a package the variant needs."""


def require(*modules: str) -> dict:
    """Import ``modules`` (raising ``Unavailable`` if one is missing) and return their versions."""
    import importlib

    versions = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise Unavailable(f"{name} does not import in {Path(sys.executable).name} {platform.python_version()}: {error}") from error
        versions[name] = getattr(module, "__version__", "?")
    return versions


def work_project_default(count: int, warmup: int, budget_s: float) -> dict:
    """The project's own path, through its public functions, as ``training.train`` runs it (without
    the epoch-end checkpoints and validation, which do not run between training steps)."""
    versions = require("tensorflow", "keras")
    import keras

    from resnet_utils import data, training

    config = training.TrainConfig(out=str(Path(tempfile.gettempdir()) / "peers-unused"), data="sample")  # never written
    images, labels = random_images(count)
    mean = data.pixel_mean(images)
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    keras.utils.set_random_seed(config.seed)
    train_ds = data.make_dataset(images, labels, mean, config.batch_size, training=True, seed=config.seed)
    compiled = training.compile_model(config, steps_per_epoch)
    model, speed = compiled if isinstance(compiled, tuple) else (compiled, {})
    result = fit_and_time(model, train_ds, steps_per_epoch, batch_sizes_of(len(images), config.batch_size), warmup,
                          budget_s, shuffle=False)
    settings = ", ".join(f"{k} {v}" for k, v in speed.items())
    result.update(versions=versions, parameters=model.count_params(), batch_size=config.batch_size,
                  settings=f"training.speed_settings: {settings}" if settings else "")
    return result


def work_classic(count: int, warmup: int, budget_s: float) -> dict:
    versions = require("tensorflow", "keras", "scipy")
    import keras

    sys.path.insert(0, str(HERE))
    import classic_recipe

    from resnet_utils import data, models

    images, labels = random_images(count)
    keras.utils.set_random_seed(0)
    model = models.with_keras_batch_normalization(models.build_resnet(3, 1))  # the example's own layers
    model.compile(classic_recipe.classic_optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    flow = classic_recipe.classic_flow(images, labels, data.pixel_mean(images), classic_recipe.CLASSIC_BATCH_SIZE)
    result = fit_and_time(model, flow, len(flow), batch_sizes_of(len(images), classic_recipe.CLASSIC_BATCH_SIZE), warmup, budget_s)
    result.update(versions=versions, parameters=model.count_params(), batch_size=classic_recipe.CLASSIC_BATCH_SIZE,
                  settings=f"float32, Adam, ImageDataGenerator with {flow.workers} threads")
    return result


def torch_resnet20(torch, num_classes: int = 10):
    """ResNet20 v1 in PyTorch, layer for layer the Keras example's (``resnet_utils.models.resnet_v1``):
    conv3x3(16)-BN-ReLU; 3 stages of 3 basic blocks (conv3x3-BN-ReLU, conv3x3-BN, + shortcut, ReLU)
    with 16/32/64 filters; where the shape changes, a 1x1 stride-2 convolution shortcut (no BN, as in
    the example); 8x8 average pooling; dense 10. Convolutions have biases and He-normal kernels
    (Keras: truncated normal), BN has Keras's momentum and epsilon. Returns logits."""
    nn = torch.nn

    def conv(cin, cout, kernel=3, stride=1):
        layer = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=True)
        std = math.sqrt(2.0 / (cin * kernel * kernel)) / 0.87962566103423978  # Keras he_normal
        nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(layer.bias)
        return layer

    def bn(channels):
        return nn.BatchNorm2d(channels, eps=TORCH_BN_EPS, momentum=TORCH_BN_MOMENTUM)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1, self.bn1 = conv(cin, cout, 3, stride), bn(cout)
            self.conv2, self.bn2 = conv(cout, cout), bn(cout)
            self.shortcut = conv(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + self.shortcut(x))

    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = conv(3, 16), bn(16)
            blocks, cin = [], 16
            for stage, cout in enumerate((16, 32, 64)):
                for block in range(3):
                    blocks.append(Block(cin, cout, 2 if stage > 0 and block == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.pool = nn.AvgPool2d(8)
            self.fc = nn.Linear(64, num_classes)
            std = math.sqrt(2.0 / 64) / 0.87962566103423978
            nn.init.trunc_normal_(self.fc.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(self.fc.bias)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            return self.fc(torch.flatten(self.pool(self.blocks(x)), 1))

    return ResNet20()


def torch_parameter_count(model) -> int:
    """Parameters as Keras counts them: weights plus BN's moving mean and variance."""
    stats = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    return sum(p.numel() for p in model.parameters()) + stats


def work_torch(variant: Variant, count: int, warmup: int, budget_s: float) -> dict:
    versions = require("torch", "numpy")
    import torch

    torch.set_num_threads(int(os.environ.get("PEERS_THREADS", 0)) or os.cpu_count() or 1)
    torch.manual_seed(0)
    images, labels = random_images(count)
    mean = torch.from_numpy(pixel_mean(images))
    images_t, labels_t = torch.from_numpy(images), torch.from_numpy(labels)
    model = torch_resnet20(torch).to(memory_format=torch.channels_last).train()
    decayed = [p for name, p in model.named_parameters() if p.ndim == 4]  # conv kernels only
    others = [p for name, p in model.named_parameters() if p.ndim != 4]
    optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": TORCH_WEIGHT_DECAY}, {"params": others, "weight_decay": 0.0}],
                                lr=LEARNING_RATE, momentum=0.9, nesterov=True)
    bf16 = variant.precision == "bfloat16"
    forward = torch.compile(model) if variant.compile else model
    padding, size = 4, 32
    generator = torch.Generator().manual_seed(0)

    def batch(indices):
        n = len(indices)
        padded = torch.nn.functional.pad(images_t[indices], (0, 0, padding, padding, padding, padding))  # NHWC uint8
        rows, cols = crop_indices(torch.randint(0, 2 * padding + 1, (n,), generator=generator),
                                  torch.randint(0, 2 * padding + 1, (n,), generator=generator),
                                  torch.rand(n, generator=generator) < 0.5, torch)
        crops = padded[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
        x = crops.float().mul_(1 / 255).sub_(mean)
        return x.permute(0, 3, 1, 2), labels_t[indices]  # NCHW view of NHWC memory: channels-last

    sizes = batch_sizes_of(count, BATCH_SIZE)
    order = torch.randperm(count, generator=generator)
    correct = torch.zeros((), dtype=torch.int64)
    ends: list[float] = []
    start = time.perf_counter()
    for step, n in enumerate(sizes):
        x, y = batch(order[step * BATCH_SIZE:step * BATCH_SIZE + n])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        correct += (logits.argmax(1) == y).sum()  # the accuracy Keras computes every step
        ends.append(time.perf_counter())
        if len(ends) > warmup and ends[-1] - ends[max(warmup - 1, 0)] > budget_s:
            break
    stop = time.perf_counter()
    if not math.isfinite(loss.item()):
        raise RuntimeError("the loss is not finite")
    result = summarise(ends, sizes, start, stop, warmup)
    result["stopped_early"] = len(ends) < len(sizes)
    on = "bfloat16 autocast" if bf16 else "float32"
    result.update(versions=versions, parameters=torch_parameter_count(model), batch_size=BATCH_SIZE,
                  settings=f"{on}, channels_last, {torch.get_num_threads()} threads"
                           + (", torch.compile (inductor)" if variant.compile else ", eager"))
    return result


def work_keras_backend(variant: Variant, count: int, warmup: int, budget_s: float) -> dict:
    if os.environ.get("KERAS_BACKEND") != variant.backend:
        raise RuntimeError(f"KERAS_BACKEND must be {variant.backend!r} for {variant.name!r}")
    versions = require("keras", variant.backend, "numpy")
    import keras
    import numpy as np

    from resnet_utils import models

    note = ""
    try:
        from resnet_utils import training
    except ImportError as error:  # training's other imports (e.g. pandas) missing: same optimizer, constant rate
        training, note = None, f"resnet_utils.training does not import ({error}): SGD 0.1 built here"
    if "tensorflow" in sys.modules:
        note = (note + "; " if note else "") + "TensorFlow was imported"
    images, labels = random_images(count)
    mean = pixel_mean(images)
    sizes = batch_sizes_of(count, BATCH_SIZE)
    keras.utils.set_random_seed(0)
    mixed = variant.precision != "float32"
    keras.mixed_precision.set_global_policy(variant.precision)
    try:
        model = models.build_resnet(3, 1, output_dtype="float32" if mixed else None)
        optimizer = (training.make_optimizer("fast", 30, len(sizes)) if training else
                     keras.optimizers.SGD(LEARNING_RATE, momentum=0.9, nesterov=True))
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    finally:
        keras.mixed_precision.set_global_policy("float32")

    def batches():
        rng = np.random.default_rng(0)
        order = rng.permutation(count)
        for step, n in enumerate(sizes):
            indices = order[step * BATCH_SIZE:step * BATCH_SIZE + n]
            yield augment_numpy(images[indices], mean, rng), labels[indices]

    result = fit_and_time(model, batches(), len(sizes), sizes, warmup, budget_s, steps_per_epoch=len(sizes), shuffle=False)
    jit = getattr(model, "jit_compile", "?")
    result.update(versions=versions, parameters=model.count_params(), batch_size=BATCH_SIZE,
                  settings=f"{variant.precision}, jit_compile {jit}, numpy batches", note=note)
    return result


def work(variant: Variant, images: int, warmup: int, budget_s: float) -> dict:
    """Run one variant here and return its figures (or why it could not run)."""
    count = images + warmup * variant.batch_size
    try:
        if variant.kind == "project":
            result = work_project_default(count, warmup, budget_s)
        elif variant.kind == "classic":
            result = work_classic(count, warmup, budget_s)
        elif variant.kind == "torch":
            result = work_torch(variant, count, warmup, budget_s)
        else:
            result = work_keras_backend(variant, count, warmup, budget_s)
    except Unavailable as reason:
        return {"status": "not available", "reason": str(reason)}
    except Exception as error:  # one broken variant is a row, not a crash
        return {"status": "failed", "reason": f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"}
    result.update(status="ok", python=platform.python_version(),
                  peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


# --- the driver: interleaved rounds of subprocesses ----------------------------------------------------


def interpreter_for(variant: Variant, peer_python: str | None) -> tuple[str | None, str]:
    """The Python that runs ``variant``, or None and why there is none."""
    if variant.interpreter == "project":
        return sys.executable, ""
    if not peer_python:
        return None, "no --peer-python given"
    if not Path(peer_python).exists():
        return None, f"peer python {peer_python} not found"
    return peer_python, ""


def worker_environment(variant: Variant) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["KERAS_BACKEND"] = variant.backend if variant.kind == "keras" else "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("JAX_PLATFORMS", "cpu")
    if env.get("PEERS_THREADS"):  # --threads: every side gets the same number of compute threads
        env["TF_NUM_INTRAOP_THREADS"] = env["OMP_NUM_THREADS"] = env["PEERS_THREADS"]
    return env


def run_variant(variant: Variant, python: str, images: int, warmup: int, budget_s: float, timeout_s: float) -> dict:
    """One round of ``variant`` in a fresh subprocess of ``python``."""
    with tempfile.TemporaryDirectory(prefix="peers-") as folder:
        out = Path(folder) / "result.json"
        command = [python, str(Path(__file__).resolve()), "--worker", variant.name, "--images", str(images),
                   "--warmup", str(warmup), "--budget", str(budget_s), "--result", str(out)]
        started = time.perf_counter()
        try:
            finished = subprocess.run(command, env=worker_environment(variant), cwd=folder, capture_output=True,
                                      text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"timed out after {timeout_s:.0f} s"}
        if out.exists():
            result = json.loads(out.read_text())
        else:
            lines = [line for line in (finished.stderr or "").splitlines() if line.strip()]
            result = {"status": "failed", "reason": f"exit code {finished.returncode}: {lines[-1][:200] if lines else 'no output'}"}
        result["process_s"] = time.perf_counter() - started
        return result


def measure(variants, peer_python: str | None, rounds: int, images: int, warmup: int = 3, budget_s: float = 60.0,
            timeout_s: float = 900.0, log=print, after_round=None) -> dict:
    """Round 1 of every variant, then round 2, ...; returns {name: [result per round]}. A variant that
    is not available or failed is not retried in later rounds. ``after_round(results, k)`` is called
    after each round (to write what is measured so far)."""
    results: dict[str, list[dict]] = {v.name: [] for v in variants}
    for round_number in range(1, rounds + 1):
        for variant in variants:
            earlier = results[variant.name]
            if earlier and earlier[-1]["status"] != "ok":
                continue
            python, why = interpreter_for(variant, peer_python)
            if python is None:
                result = {"status": "not available", "reason": why}
            else:
                result = run_variant(variant, python, images, warmup, budget_s, timeout_s)
            earlier.append(result)
            shown = f"{result['images_per_s']:.0f} img/s" if result["status"] == "ok" else f"{result['status']}: {result['reason']}"
            log(f"round {round_number}/{rounds} · {variant.name}: {shown}", flush=True)
        if after_round:
            after_round(results, round_number)
    return results


def runs_on(variant: Variant, result: dict | None) -> str:
    """Which interpreter, backend and versions ran a variant."""
    if not result:
        return "project python" if variant.interpreter == "project" else "peer python"
    who = "project python" if variant.interpreter == "project" else "peer python"
    versions = result.get("versions", {})
    names = {"tensorflow": "TensorFlow", "keras": "Keras", "torch": "torch", "jax": "jax"}
    listed = " · ".join(f"{names[k]} {v}" for k, v in versions.items() if k in names)
    backend = f" · backend {variant.backend}" if variant.kind == "keras" else ""
    return f"{who} {result.get('python', '')} · {listed}{backend}"


def results_table(variants, results: dict, rounds: int) -> list[dict]:
    """One row per variant: every round's img/s, the best, ratios to the project default and to
    classic, and (of the best round) warm-up, fit wall time and the lag after the last batch."""
    def best_of(name):
        ok = [r for r in results.get(name, []) if r["status"] == "ok"]
        return max(ok, key=lambda r: r["images_per_s"]) if ok else None

    default, classic = best_of("project default"), best_of("classic")
    rows = []
    for variant in variants:
        runs = results.get(variant.name, [])
        best = best_of(variant.name)
        row = {"variant": variant.name}
        for k in range(rounds):
            run = runs[k] if k < len(runs) else None
            row[f"round {k + 1}"] = round(run["images_per_s"]) if run and run["status"] == "ok" else ""
        row["best img/s"] = round(best["images_per_s"]) if best else ""
        row["x default"] = round(best["images_per_s"] / default["images_per_s"], 2) if best and default else ""
        row["x classic"] = round(best["images_per_s"] / classic["images_per_s"], 2) if best and classic else ""
        row["median-step img/s"] = round(best["median_step_images_per_s"]) if best else ""
        row["warm-up s"] = round(best["warmup_s"], 1) if best else ""
        row["fit/loop s"] = round(best["wall_s"], 1) if best else ""
        row["after last step s"] = round(best["after_last_step_s"], 2) if best else ""
        row["peak MiB"] = round(best["peak_mib"]) if best else ""
        row["runs on"] = runs_on(variant, best)
        notes = []
        if best:
            notes.append(best.get("settings", ""))
            if best.get("parameters") != RESNET20_PARAMETERS:
                notes.append(f"{best.get('parameters')} parameters, not {RESNET20_PARAMETERS}")
            if best.get("stopped_early"):
                notes.append(f"stopped after the time budget ({best['timed_images']} images timed)")
            if best.get("note"):
                notes.append(best["note"])
        bad = next((r for r in runs if r["status"] != "ok"), None)
        if bad:
            notes.append(f"{bad['status']} ({bad['reason']})" if bad["status"] == "not available"
                         else f"failed: {bad['reason']}")
        row["note"] = "; ".join(n for n in notes if n)
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(row[c]).replace("|", "/") for c in columns) + " |" for row in rows])


def cpu_description() -> str:
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in line.split()]
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores" + (f" ({', '.join(flags)})" if flags else "")


def versions_line(variants, results: dict) -> str:
    """The interpreters and package versions that ran the variants, gathered from their results."""
    found: dict[str, dict] = {}
    for variant in variants:
        for result in results.get(variant.name, []):
            if result["status"] == "ok":
                who = found.setdefault(f"{variant.interpreter} python {result.get('python', '')}", {})
                who.update(result.get("versions", {}))
    return "; ".join(f"{who}: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) for who, versions in found.items()) or "none ran"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", help="Python of a virtual environment with torch, jax and keras (the peers)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows each and the best")
    parser.add_argument("--images", type=int, default=3072, help="images timed per variant per round, after the warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="steps trained before the clock starts")
    parser.add_argument("--budget", type=float, default=60.0, help="stop a variant's timed steps after this many seconds")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up on one subprocess after this many seconds")
    parser.add_argument("--threads", type=int, help="compute threads for every side (TensorFlow intra-op, torch, OpenMP); "
                        "default: each library's own (all cores). With `taskset -c K` and --threads 1, all sides share one core")
    parser.add_argument("--variants", nargs="+", choices=list(BY_NAME), metavar="NAME", help="only these (default: all)")
    parser.add_argument("--markdown", help="also write the table as Markdown to this file (and as CSV beside it)")
    parser.add_argument("--worker", choices=list(BY_NAME), help=argparse.SUPPRESS)  # internal: one variant, one round
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["PEERS_THREADS"] = str(args.threads)
    if args.rounds < 1 or args.images < 1 or args.warmup < 1:
        parser.error("--rounds, --images and --warmup must be at least 1")

    if args.worker:
        result = work(BY_NAME[args.worker], args.images, args.warmup, args.budget)
        Path(args.result).write_text(json.dumps(result))
        return []

    variants = [BY_NAME[name] for name in args.variants] if args.variants else list(VARIANTS)
    load_before = load_average()
    started = dt.datetime.now(dt.timezone.utc)

    shown = ["python benchmarks/peers.py"]
    if args.peer_python:
        shown += ["--peer-python", "<peers-venv>/bin/python"]
    shown += ["--rounds", str(args.rounds), "--images", str(args.images)]
    for flag, value, default in (("--warmup", args.warmup, 3), ("--budget", args.budget, 60.0)):
        if value != default:
            shown += [flag, f"{value:g}"]
    if args.variants:
        shown += ["--variants"] + [shlex.quote(v) for v in args.variants]
    if args.markdown:
        target = Path(args.markdown).resolve()
        shown += ["--markdown", shlex.quote(str(target.relative_to(REPO)) if target.is_relative_to(REPO) else target.name)]

    def report(results: dict, done: int, final: bool) -> list[dict]:
        rows = results_table(variants, results, args.rounds)
        rounds_text = f"{args.rounds} interleaved round(s)" + ("" if done == args.rounds else f", {done} done so far")
        header = [
            f"ResNet20 v1 training throughput: this project's default path and its peers, batch {BATCH_SIZE} "
            f"(classic: 32), augmentation included",
            "",
            f"- machine: {cpu_description()}, no GPU · load average (1, 5, 15 min) {load_before} before, "
            f"{load_average()} {'after' if final else 'now'}",
            f"- date: {started:%Y-%m-%d %H:%M} UTC · {args.images} images timed per variant per round after "
            f"{args.warmup} warm-up steps, {rounds_text}, each variant in a fresh process per round",
            f"- versions: {versions_line(variants, results)}",
            f"- how it was run: `{f'nice -n {os.nice(0)} ' if os.nice(0) else ''}{' '.join(shown)}`",
        ]
        if final:
            print("\n".join(header))
            print(markdown_table(rows))
        if args.markdown:
            path = Path(args.markdown)
            path.write_text("\n".join(["# " + header[0]] + header[1:]) + "\n\n" + markdown_table(rows) + "\n")
            with open(path.with_suffix(".csv"), "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) + ["machine", "date"])
                writer.writeheader()
                for row in rows:
                    writer.writerow({**row, "machine": cpu_description(), "date": f"{started:%Y-%m-%d}"})
        return rows

    results = measure(variants, args.peer_python, args.rounds, args.images, args.warmup, args.budget, args.timeout,
                      after_round=lambda results, done: report(results, done, final=False))
    rows = report(results, args.rounds, final=True)
    return rows


if __name__ == "__main__":
    main()
