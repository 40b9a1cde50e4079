"""Training a CIFAR-10 ResNet into a run folder: ``TrainConfig``, the callbacks and ``train``.

The recipe's defaults are in :mod:`resnet_utils.recipe`, the Keras schedules, optimizer and loss
in :mod:`resnet_utils.schedules`, the machine's settings in :mod:`resnet_utils.hardware`; their
names stay importable from here.

A run folder is the contract between training and everything after it (plots, notebooks, README):

    config.json       what was asked for (model, schedule, epochs, batch size, seed, data) and the
                      data's fingerprint
    log.csv           one row per finished epoch, exactly once, also across interruptions
    best.keras        the model with the best test accuracy so far (written atomically)
    last.keras        the model after the last finished epoch (written atomically)
    best.json         which epoch best.keras is, and its test accuracy
    predictions.npz   the best model's test-set probabilities and the true labels
    metrics.json      final figures and provenance (hardware, versions, data, wall time, date)
    resume.keras      while a run is unfinished: weights, optimizer and epoch counter in one file
    .lock             locked (``fcntl.flock``) by the process training in the folder

Starting ``train`` again with the same folder resumes after the last finished epoch, recovering
from whatever intact state the folder holds (:mod:`resnet_utils.run_folder` has the rules); a
folder that holds another run is refused unless ``restart=True``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import math
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnet_utils._quiet import tensorflow as _tensorflow

_tensorflow()  # before Keras: TensorFlow's start-up lines filtered

import keras  # noqa: E402
import numpy as np

from resnet_utils import data as data_lib
from resnet_utils import models
from resnet_utils import run_folder
from resnet_utils.hardware import (  # noqa: F401  (the names notebooks and benchmarks use from here)
    DISTRIBUTE, GPU_STEPS_PER_EXECUTION, PRECISIONS, check_precision, cpu_has_native_bfloat16, hardware_description,
    make_strategy, precision_policy, slow_precision_warning, speed_settings, versions,
)
from resnet_utils.recipe import (  # noqa: F401  (the names notebooks and benchmarks use from here)
    ARCHS, DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_RECIPE, FAST_WARMUP, IDENTITY_FIELDS, LEGACY_IDENTITY,
    LEGACY_LEARNING_RATE, RECIPE_FIELDS, SCHEDULES, apply_recipe, check_schedule, legacy_identity,
)
from resnet_utils.run_folder import RUN_FILES, RunFolderBusy, RunFolderError  # noqa: F401  (part of this module's API)
from resnet_utils.schedules import SmoothedSparseCrossentropy, StepDecay, make_optimizer, make_schedule  # noqa: F401
from resnet_utils.runs import read_log

VERBOSITY = ("auto", 0, 1, 2)

class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoints were kept."""


class TrainingInterrupted(RuntimeError):
    """Training was interrupted (Ctrl-C); every finished epoch is kept and a rerun resumes."""


#: The largest values the whole-number settings take: beyond them Keras and TensorFlow end in
#: overflow tracebacks (or a run of a million years), so they are refused with one line.
MAXIMUM = {"epochs": 100_000, "batch_size": 1_000_000, "steps_per_execution": 100_000, "limit_train": 1_000_000_000,
           "seed": 2**32 - 1}


def _whole_number(name: str, value: Any, minimum: int = 1, what: str = "a positive whole number") -> int:
    """``value`` as a plain ``int`` if it is a whole number (Python or numpy) >= ``minimum`` (and
    at most ``MAXIMUM[name]``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be {what}; got {value!r}.")
    if name in MAXIMUM and value > MAXIMUM[name]:
        raise ValueError(f"{name} must be {what} of at most {MAXIMUM[name]:,}; got {value:,}.")
    return int(value)


# --- configuration --------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``epochs``/``batch_size`` of ``None`` take the
    schedule's defaults (``DEFAULT_EPOCHS``, ``DEFAULT_BATCH_SIZE``)."""

    out: str
    n: int = 3
    version: int = 1
    shortcut: str = "projection"
    arch: str = "cifar"  # "cifar" (ResNet v1/v2 from n and version), "resnet18" or "resnet50"
    stem: str = "imagenet"  # for resnet18/resnet50 only
    schedule: str = "fast"  # the fastest correct recipe measured (benchmarks/RESULTS.md)
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None  # these five: None takes the schedule's DEFAULT_RECIPE
    weight_decay: float | None = None
    label_smoothing: float | None = None
    bn_momentum: float | None = None
    warmup: float | None = None  # fraction of the steps (fast schedule only)
    validation_split: float = 0.0  # hold out this fraction of the training images (stratified, fixed) to choose recipes on
    seed: int = 0
    data: str = "auto"  # auto | keras | folder | sample
    data_dir: str | None = None
    limit_train: int | None = None  # train on N randomly chosen (seeded) training images (smoke runs)
    mixed_precision: str = "auto"  # auto | on | off | bfloat16 | float16: see precision_policy()
    xla: str = "auto"  # auto (on with a GPU only) | on | off
    steps_per_execution: int | None = None  # None: 1 on a CPU, GPU_STEPS_PER_EXECUTION on a GPU
    distribute: str = "auto"  # auto (MirroredStrategy with >1 GPU) | mirrored (all GPUs, else all CPU devices) | none
    restart: bool = False  # delete the run already in ``out`` and start over (a deliberate fresh start only)
    verbose: int | str = "auto"  # auto | 0 | 1 (progress bar) | 2 (one line per epoch)
    extra: dict = field(default_factory=dict)  # free-form notes stored in config.json

    def __post_init__(self):
        if not isinstance(self.out, (str, os.PathLike)):
            raise ValueError(f"out must name the run folder (e.g. runs/resnet20v1); got {self.out!r}.")
        self.out = str(self.out)  # may stay "" as a placeholder until dataclasses.replace; train() refuses it
        check_schedule(self.schedule)
        self.epochs = DEFAULT_EPOCHS[self.schedule] if self.epochs is None else self.epochs
        self.batch_size = DEFAULT_BATCH_SIZE[self.schedule] if self.batch_size is None else self.batch_size
        # numpy integers are whole numbers too; store plain ints so config.json compares equal on resume
        self.epochs = _whole_number("epochs", self.epochs)
        self.batch_size = _whole_number("batch_size", self.batch_size)
        self.seed = _whole_number("seed", self.seed, minimum=0, what="a whole number >= 0")
        limits = {"learning_rate": (0.0, 10.0), "weight_decay": (0.0, 0.1), "label_smoothing": (0.0, 1.0), "bn_momentum": (0.0, 1.0),
                  "warmup": (0.0, 1.0)}
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            value = DEFAULT_RECIPE[self.schedule][name] if value is None else value
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not low <= value < high:
                raise ValueError(f"{name} must be a number from {low:g} up to (not including) {high:g}; got {value!r}.")
            if name == "learning_rate" and value == 0:
                raise ValueError("learning_rate must be above 0; at 0 no weight changes and the net stays at chance.")
            setattr(self, name, float(value))
        if self.warmup and self.schedule != "fast":
            raise ValueError(f"warmup applies to the fast schedule only; the {self.schedule} schedule has none (got {self.warmup:g}).")
        if isinstance(self.validation_split, bool) or not isinstance(self.validation_split, (int, float)) or not 0 <= self.validation_split < 0.5:
            raise ValueError(f"validation_split must be a fraction from 0 up to 0.5 (0.1 holds out 5,000 of 50,000 images); got {self.validation_split!r}.")
        self.validation_split = float(self.validation_split)
        if self.arch not in ARCHS:
            raise ValueError(f"Unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}.")
        if self.arch == "cifar":
            models.depth_from_n(self.n, self.version)  # raises for bad n / version
            self.n, self.version = int(self.n), int(self.version)
            models._check_shortcut(self.shortcut)
        else:
            models._check_stem(self.stem)
        if self.arch == "cifar" and self.stem != "imagenet":  # "imagenet" is the field's default, unused by cifar nets
            raise ValueError(f"stem applies to resnet18 and resnet50 only; the cifar arch has its own 3x3 stem (got stem {self.stem!r}). "
                             "Leave --stem out, or pass --arch resnet18/resnet50.")
        if self.data not in data_lib.SOURCES:
            raise ValueError(f"Unknown data source {self.data!r}; choose one of {', '.join(data_lib.SOURCES)}.")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
            if self.data in ("sample", "keras"):
                raise ValueError(f"data_dir names a local copy, which data={self.data!r} does not read; use data='folder' "
                                 "(--data folder) with it, or leave it out.")
        if self.limit_train is not None:
            self.limit_train = _whole_number("limit_train", self.limit_train)
        check_precision(self.mixed_precision)
        if self.steps_per_execution is not None:
            self.steps_per_execution = _whole_number("steps_per_execution", self.steps_per_execution)
        if self.xla not in ("auto", "on", "off"):
            raise ValueError(f"xla must be 'auto', 'on' or 'off'; got {self.xla!r}.")
        if self.distribute not in DISTRIBUTE:
            raise ValueError(f"distribute must be one of {', '.join(DISTRIBUTE)}; got {self.distribute!r}.")
        if not isinstance(self.restart, (bool, np.bool_)):
            raise ValueError(f"restart must be True or False; got {self.restart!r} (a {type(self.restart).__name__}).")
        self.restart = bool(self.restart)
        if isinstance(self.verbose, (bool, np.bool_)) or self.verbose not in VERBOSITY:
            raise ValueError(f"verbose must be 'auto', 0, 1 or 2; got {self.verbose!r}.")

    @property
    def model_name(self) -> str:
        if self.arch != "cifar":
            return self.arch + ("_cifar_stem" if self.stem == "cifar" else "")
        depth = models.depth_from_n(self.n, self.version)
        if self.shortcut == "none":
            return f"plain{depth}" + ("v2" if self.version == 2 else "")
        return f"resnet{depth}v{self.version}" + ("_zeropad" if self.shortcut == "zeropad" else "")

    def identity(self) -> dict:
        return {name: getattr(self, name) for name in IDENTITY_FIELDS}

    def command(self) -> str:
        """The command line that reproduces this run."""
        parts = ["python -m resnet_utils.train"]
        if self.arch == "cifar":
            parts += [f"--n {self.n}", f"--version {self.version}"]
            if self.shortcut != "projection":
                parts.append(f"--shortcut {self.shortcut}")
        else:
            parts += [f"--arch {self.arch}", f"--stem {self.stem}"]
        parts += [f"--schedule {self.schedule}", f"--epochs {self.epochs}", f"--batch-size {self.batch_size}"]
        for name in RECIPE_FIELDS:
            if getattr(self, name) != DEFAULT_RECIPE[self.schedule][name]:
                parts.append(f"--{name.replace('_', '-')} {getattr(self, name):g}")
        if self.validation_split:
            parts.append(f"--validation-split {self.validation_split:g}")
        if self.seed:
            parts.append(f"--seed {self.seed}")
        if self.limit_train:
            parts.append(f"--limit-train {self.limit_train}")
        if self.data != "auto":
            parts.append(f"--data {self.data}")
        if self.data_dir:  # where the data lies is the reader's own: a variable, not this machine's path
            parts.append('--data-dir "$CIFAR10_DIR"')
        if self.distribute != "auto":
            parts.append(f"--distribute {self.distribute}")
        parts.append(f"--out {shlex.quote(self.out)}")
        return " ".join(parts)


def build_model(config: TrainConfig, output_dtype: str | None = None) -> keras.Model:
    """The Keras model a config asks for (not compiled)."""
    if config.arch == "resnet18":
        return models.resnet18(config.stem, output_dtype=output_dtype)
    if config.arch == "resnet50":
        return models.resnet50(config.stem, output_dtype=output_dtype)
    return models.build_resnet(config.n, config.version, shortcut=config.shortcut, output_dtype=output_dtype)


# --- callbacks ------------------------------------------------------------------------------------


def _finite(logs: dict | None) -> bool:
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


class EpochFacts(keras.callbacks.Callback):
    """Adds the learning rate at the end of the epoch and the epoch's wall time to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        lr = self.model.optimizer.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
        logs["epoch_time_s"] = round(time.perf_counter() - self._start, 2)


class SetDataEpoch(keras.callbacks.Callback):
    """Tells the training dataset which epoch is starting, so that its order and augmentation are a
    function of (seed, epoch) alone (``data.make_dataset(..., epoch=variable)``): a resumed run then
    trains epoch k on the same batches as an uninterrupted one."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


class TimeBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` of wall time have passed (checked after every batch): for
    comparing models on one compute budget rather than one number of epochs."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)
        self.steps = 0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if time.perf_counter() - self._start >= self.seconds:
            self.model.stop_training = True

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start


class RunRecorder(keras.callbacks.Callback):
    """Records each finished epoch in the run folder, in an order that a kill at any moment cannot
    corrupt: the resumable state (``resume.keras``: weights, optimizer and epoch counter in one
    file), then ``log.csv``, then ``last.keras`` and, if the test accuracy improved,
    ``best.keras``/``best.json``. Epochs whose loss is not finite are not recorded."""

    def __init__(self, out: Path, state: run_folder.ResumeState, identity: dict, fingerprint: str):
        super().__init__()
        self.out = Path(out)
        self.history = list(state.history)
        self.best = state.best
        self.epochs_done = state.epochs_done
        self.identity = identity
        self.fingerprint = fingerprint
        self.diverged_in: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not _finite(logs):
            self.diverged_in = epoch + 1
            return
        epochs_done = epoch + 1
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items()}}
        improved = self.best is None or row["val_accuracy"] > self.best["val_accuracy"]
        best = {"epoch": epochs_done, "val_accuracy": row["val_accuracy"]} if improved else self.best
        history = [*self.history, row]
        record = run_folder.state_record(epochs_done, history, best, self.identity, self.fingerprint)
        run_folder.save_state(self.out, self.model, record)
        self.history, self.epochs_done = history, epochs_done
        run_folder.write_log(self.out / run_folder.LOG, history)
        run_folder.crash_point("log-written", epochs_done)
        run_folder.copy_atomic(self.out / run_folder.RESUME, self.out / run_folder.LAST)
        if improved:
            run_folder.copy_atomic(self.out / run_folder.RESUME, self.out / run_folder.BEST)
            run_folder.write_json(self.out / run_folder.BEST_RECORD, best)
            self.best = best


# --- training -------------------------------------------------------------------------------------


def compile_model(config: TrainConfig, steps_per_epoch: int) -> tuple[keras.Model, dict]:
    """The model of ``config``, compiled exactly as ``train`` compiles it (optimizer and schedule,
    loss, accuracy, ``speed_settings``); returns it with those settings. Call it inside a
    ``tf.distribute`` strategy's scope to spread it over several GPUs."""
    speed = speed_settings(config)
    mixed = speed["precision_policy"] != "float32"
    keras.mixed_precision.set_global_policy(speed["precision_policy"])
    try:
        model = build_model(config, output_dtype="float32" if mixed else None)
        apply_recipe(model, config)
        model.compile(
            optimizer=make_optimizer(config.schedule, config.epochs, steps_per_epoch, config.learning_rate, config.warmup),
            loss=SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing else "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=speed["xla"],
            steps_per_execution=speed["steps_per_execution"],
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model, speed


def train(config: TrainConfig, data: data_lib.CifarData | None = None) -> dict:
    """Train (or resume) the run ``config`` describes; return its final metrics (also in metrics.json).

    The folder is checked and locked before anything slow happens, and stays locked while this
    runs. A rerun resumes from the newest intact state and says in one line what it recovered.
    Progress is shown by Keras. Mixed precision and XLA are used on a GPU (``"auto"``), and
    ``tf.distribute.MirroredStrategy`` spreads the batch over several GPUs (see ``make_strategy``).

    Raises:
        RunFolderError: the folder is unwritable, busy (``RunFolderBusy``), holds a different run
            or other data, its records disagree, or the disk is full.
        data.DataError: the data cannot be used (the message says what to do).
        TrainingDiverged: the loss became NaN/inf (best/last checkpoints of earlier epochs are kept).
        TrainingInterrupted: Ctrl-C; every finished epoch is kept, rerunning resumes.
    """
    if not config.out.strip():  # Path("") would be the current folder, and --restart would delete files there
        raise ValueError(f"out must name the run folder (e.g. runs/resnet20v1); got {config.out!r}.")
    out = Path(config.out)
    run_folder.make_writable(out)
    with run_folder.locked(out), _stop_signals_interrupt():
        run_folder.refuse_links(out)
        return _train_locked(config, data, out)


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: handled as Ctrl-C is (every finished epoch kept), naming the signal."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@contextlib.contextmanager
def _stop_signals_interrupt():
    """While training, SIGTERM and SIGHUP (a ``kill``, a closed terminal) stop it as Ctrl-C does: the
    finished epochs are kept and one line says how to resume. Only in the main thread, where
    Python can install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(number, frame):
        raise _Stopped(signal.Signals(number).name)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _train_locked(config: TrainConfig, data: data_lib.CifarData | None, out: Path) -> dict:
    notes: list[str] = []
    if config.restart:
        deleted = run_folder.delete_run(out)
        if deleted:
            print(f"restart: deleted {', '.join(deleted)} in {out}.")
        identity, fingerprint = None, None
    else:
        identity, fingerprint = run_folder.recorded_identity(out, notes)
        if identity is not None:  # runs made before the recipe fields existed used these
            identity = {**legacy_identity(identity.get("schedule")), **identity}
        run_folder.check_identity(out, identity, config.identity())
        finished = run_folder.read_json(out / run_folder.METRICS)
        if finished and finished.get("status") == "complete":
            removed = run_folder.remove_leftovers(out)
            if removed:
                print(f"Removed what the finished run no longer needs: {', '.join(removed)}.")
            epochs_completed = finished.get("epochs_completed")
            damaged = run_folder.finished_damage(out, epochs_completed)
            if not damaged:
                print(f"{out} already holds the finished run ({epochs_completed} epochs); pass restart=True (--restart) to train again.")
                return finished
            run_folder.check_finished_repairable(out, damaged, epochs_completed)
            notes.append(f"{out} holds the finished run, but {', '.join(damaged)} {'is' if len(damaged) == 1 else 'are'} damaged "
                         "or missing; rebuilding from last.keras (the final epoch's state) and evaluating again.")
        if finished is None and (out / run_folder.METRICS).exists():
            notes.append("metrics.json was damaged; the run is finished again from its checkpoints.")

    # The command line and train() stop at a failed download (one line); only the notebooks fall back to the sample.
    data = data or data_lib.load_cifar10(config.data, config.data_dir, sample_if_offline=False)
    x_train, y_train, x_eval, y_eval, eval_name = _training_images(data, config)
    fingerprint_now = data.fingerprint
    run_folder.check_data_fingerprint(out, fingerprint, fingerprint_now, data.describe())
    mean = data_lib.pixel_mean(x_train)
    run_folder.write_atomic(out / run_folder.MEAN, lambda path: np.save(path, mean))

    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    with strategy.scope():
        model, speed = compile_model(config, steps_per_epoch)
    warning = slow_precision_warning(speed["precision_policy"])
    if warning:
        print(warning)

    def load_state(path: Path) -> None:
        with strategy.scope():
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(path)

    state = run_folder.find_resume_state(out, load_state, config.epochs)
    if state.source is None and state.notes:  # a damaged state may have half-loaded: start from fresh weights
        with strategy.scope():
            model, speed = compile_model(config, steps_per_epoch)
    state.notes[:0] = notes
    run_folder.reconcile_log(out, state)
    run_folder.repair_best(out, state)
    run_folder.repair_last(out, state)
    for note in state.notes:
        print(note)
    if state.epochs_done == config.epochs:
        print(f"Finishing {out}: all {config.epochs} epochs are trained.")
    elif state.epochs_done:
        print(f"Resuming {out} after epoch {state.epochs_done} of {config.epochs}.")
    sessions = training_sessions(run_folder.read_json(out / run_folder.CONFIG) if (out / run_folder.CONFIG).exists() else None,
                                 state.epochs_done, config.epochs, speed)
    run_folder.write_json(out / run_folder.CONFIG, {
        "identity": config.identity(),
        "data_fingerprint": fingerprint_now,
        "model": config.model_name,
        "parameters": model.count_params(),
        "data_dir": config.data_dir,
        "data_description": data.describe(),
        "train_images": int(len(x_train)),
        "steps_per_epoch": steps_per_epoch,
        "mixed_precision": speed["precision_policy"] != "float32",
        **speed,
        "distribute": config.distribute,
        "replicas": strategy.num_replicas_in_sync,
        "command": config.command(),
        "extra": config.extra,
        "sessions": sessions,
    })

    recorder = RunRecorder(out, state, config.identity(), fingerprint_now)
    try:
        if state.epochs_done < config.epochs:
            import tensorflow as tf

            # Each epoch's order and augmentation are a function of (seed, epoch), set by SetDataEpoch
            # as the epoch starts, so a resumed run trains on the batches an uninterrupted one would.
            data_epoch = tf.Variable(state.epochs_done, dtype=tf.int64, trainable=False, name="data_epoch")
            train_ds = data_lib.make_dataset(x_train, y_train, mean, config.batch_size, training=True, seed=config.seed, epoch=data_epoch)
            eval_ds = data_lib.make_dataset(x_eval, y_eval, mean, config.batch_size)
            callbacks = [SetDataEpoch(data_epoch), EpochFacts(), recorder, keras.callbacks.TerminateOnNaN()]
            verbose = config.verbose
            if verbose == "auto":
                verbose = 1 if sys.stdout.isatty() or "ipykernel" in sys.modules else 2
            # shuffle=False: the tf.data pipeline shuffles already (Keras would only warn).
            model.fit(train_ds, epochs=config.epochs, initial_epoch=state.epochs_done, validation_data=eval_ds,
                      callbacks=callbacks, verbose=verbose, shuffle=False)
        if recorder.diverged_in:
            run_folder.write_json(out / run_folder.METRICS, {
                "status": "diverged", "diverged_in_epoch": recorder.diverged_in, "epochs_completed": recorder.epochs_done,
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            })
            raise TrainingDiverged(
                f"The loss became NaN or infinite in epoch {recorder.diverged_in}; training stopped. best.keras and last.keras "
                "still hold the last good epochs. Lower the learning rate or check the input data, then rerun with --restart."
            )
        if recorder.epochs_done < config.epochs:
            raise RunFolderError(f"Training in {out} stopped after epoch {recorder.epochs_done} of {config.epochs}; rerun the same command to resume.")
        run_folder.crash_point("before-finish", recorder.epochs_done)
        return finish_run(out, config, data, x_train, (x_eval, y_eval, eval_name))
    except KeyboardInterrupt as error:
        how = f"stopped by {error.name}" if isinstance(error, _Stopped) else "interrupted"
        raise TrainingInterrupted(
            f"Training in {out} was {how} after epoch {recorder.epochs_done} of {config.epochs}; "
            "rerun the same command to resume."
        ) from None


def training_sessions(previous: dict | None, epochs_done: int, epochs: int, speed: dict) -> list[dict]:
    """The record of which epochs ran where, for ``config.json``: one entry per training session
    (the first, and each resume), with its first epoch, date, precision and machine.

    The identity of a run (its recipe) cannot change when it resumes, but its speed settings can:
    ``mixed_precision="auto"`` picks bfloat16 on one CPU and float32 on another. The config's
    top-level ``precision_policy`` is the current session's; this list keeps the earlier ones.
    A config written before this record existed gives its own settings as the first session's."""
    history = list((previous or {}).get("sessions") or [])
    if not history and previous and epochs_done:
        history = [{"from_epoch": 1, "precision_policy": previous.get("precision_policy"), "xla": previous.get("xla"),
                    "hardware": None}]  # the machine of a config older than this record is not known here
    if epochs_done >= epochs:
        return history  # finishing: no epoch is trained in this session
    while history and history[-1]["from_epoch"] > epochs_done:  # a session that trained nothing before it stopped
        history.pop()
    hardware = hardware_description()
    hardware["native_bfloat16"] = cpu_has_native_bfloat16()
    history.append({"from_epoch": epochs_done + 1, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "precision_policy": speed["precision_policy"], "xla": speed["xla"], "hardware": hardware})
    return history


def _training_images(data: data_lib.CifarData, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """``(x_train, y_train, x_eval, y_eval, eval_name)``: the training images ``config`` asks for
    (all, or ``limit_train`` chosen at random, less a held-out ``validation_split``) and the images
    accuracy is measured on (the test set, or that held-out part), after checking both splits:
    shapes, dtypes, labels, and that neither is empty."""
    where = f" of {data.location}" if data.location else f" of the {data.source} data"
    data_lib.check_arrays(data.x_train, data.y_train, what=f"the training images{where}")
    data_lib.check_arrays(data.x_test, data.y_test, what=f"the test images{where}")
    for split, images in (("training", data.x_train), ("test", data.x_test)):
        if len(images) == 0:
            raise data_lib.DataError(
                f"{data.describe()}: there are no {split} images, so there is nothing to "
                f"{'train on' if split == 'training' else 'measure accuracy on'}. Add {split} images to the data."
            )
    x_train, y_train = data.x_train, np.asarray(data.y_train).reshape(-1)
    if config.limit_train:
        if config.limit_train > len(x_train):
            raise data_lib.DataError(
                f"limit_train is {config.limit_train:,} but the data has only {len(x_train):,} training images; "
                f"ask for at most {len(x_train):,} (or leave limit_train out to use them all)."
            )
        if config.limit_train < len(x_train):
            # A random (seeded) subset: folder copies are stored class by class, so the first N would
            # hold only one or two classes.
            keep = data_lib.random_subset(len(x_train), config.limit_train, config.seed)
            x_train, y_train = x_train[keep], y_train[keep]
    if config.validation_split:
        held_out_count = len(data_lib.validation_split(y_train, config.validation_split)[1])
    else:
        held_out_count = 0
    if config.batch_size > len(x_train) - held_out_count:
        raise data_lib.DataError(
            f"batch_size {config.batch_size:,} is more than the {len(x_train) - held_out_count:,} training images, so every "
            f"epoch would be one step of a smaller batch than recorded. Use a batch size of at most {len(x_train) - held_out_count:,}."
        )
    if config.validation_split:
        # Hold out a fixed, stratified part of the training images and evaluate on it, never on
        # the test set: for choosing a recipe without looking at the test set.
        keep, held_out = data_lib.validation_split(y_train, config.validation_split)
        if len(held_out) == 0 or len(keep) == 0:
            raise data_lib.DataError(
                f"validation_split {config.validation_split:g} of {len(y_train):,} training images holds out "
                f"{len(held_out)} of them; use more images or a larger fraction."
            )
        return x_train[keep], y_train[keep], x_train[held_out], y_train[held_out], "validation"
    return x_train, y_train, data.x_test, np.asarray(data.y_test).reshape(-1), "test"


def best_epoch_note(eval_name: str) -> str:
    """What metrics.json's figures mean: the final epoch's is the honest one; the best epoch is
    chosen on the very images it is measured on, so its figure is optimistic."""
    return (
        f"{eval_name}_accuracy (= {eval_name}_accuracy_last) is the final epoch's model on the {eval_name} images: "
        f"the honest figure. {eval_name}_accuracy_best and best_epoch are the epoch with the highest {eval_name} "
        f"accuracy, chosen on the {eval_name} images themselves, so that figure is optimistic."
    )


def finish_run(out: Path, config: TrainConfig, data: data_lib.CifarData, x_train: np.ndarray,
               evaluation: tuple[np.ndarray, np.ndarray, str] | None = None) -> dict:
    """Evaluate the last and best models on the test set (or on the held-out validation images, for
    a run with ``validation_split``); write predictions.npz and metrics.json (led by the final
    epoch's accuracy), then remove the resumable state."""
    x_eval, y_eval, eval_name = evaluation or (data.x_test, data.y_test, "test")
    mean = np.load(out / run_folder.MEAN)
    test_ds = data_lib.make_dataset(x_eval, y_eval, mean, 256)
    log = read_log(out / run_folder.LOG)
    results = {}
    for which in ("last", "best"):
        path = out / f"{which}.keras"
        try:
            model = models.load_model(path, compile=False)  # for predictions only (any depth)
        except Exception as error:  # a damaged archive fails inside zipfile/h5py with many types
            if which == "best" and log:  # the final epoch's model stands in for a best model that is lost
                lost = (run_folder.read_json(out / run_folder.BEST_RECORD) or {}).get("epoch")
                run_folder.copy_atomic(out / run_folder.LAST, path)
                run_folder.write_json(out / run_folder.BEST_RECORD, {"epoch": len(log), "val_accuracy": float(log[-1]["val_accuracy"]),
                                                                      "replaces_lost_epoch": lost})
                print(f"best.keras (epoch {lost}) cannot be read ({type(error).__name__}) and cannot be rebuilt; it now holds "
                      f"the final epoch's model ({len(log)}).")
                model = models.load_model(path, compile=False)
            else:
                raise RunFolderError(
                    f"{path} cannot be read ({type(error).__name__}). Delete it (rm {shlex.quote(str(path))}) and rerun the same "
                    f"command to rebuild it from {run_folder.RESUME} if the folder holds one; otherwise pass --restart to train again."
                ) from error
        probabilities = model.predict(test_ds, verbose=0)
        results[which] = float(np.mean(probabilities.argmax(axis=1) == y_eval))
        if which == "best":
            run_folder.write_atomic(out / run_folder.PREDICTIONS, lambda p: np.savez_compressed(
                p, probabilities=probabilities.astype(np.float16), labels=y_eval.astype(np.int8)))
    best_record = run_folder.read_json(out / run_folder.BEST_RECORD) or run_folder.best_from_history(log)
    train_seconds = sum(row.get("epoch_time_s", 0.0) for row in log)
    metrics = {
        f"{eval_name}_accuracy": results["last"],
        "status": "complete",
        "model": config.model_name,
        "parameters": int(model.count_params()),
        "schedule": config.schedule,
        "recipe": {name: getattr(config, name) for name in RECIPE_FIELDS},
        "evaluated_on": f"{len(y_eval):,} {eval_name} images",
        "epochs_completed": len(log),
        "batch_size": config.batch_size,
        f"{eval_name}_accuracy_last": results["last"],
        f"{eval_name}_accuracy_best": results["best"],
        "best_epoch": best_record["epoch"],
        "best_epoch_note": best_epoch_note(eval_name),
        "final_train_accuracy": log[-1]["accuracy"] if log else None,
        "train_seconds": round(train_seconds, 1),
        "seconds_per_epoch": round(train_seconds / max(1, len(log)), 2),
        "train_images_per_second": round(len(x_train) * len(log) / train_seconds, 1) if train_seconds else None,
        "data": data.describe(),
        "data_fingerprint": data.fingerprint,
        "data_note": config.extra.get("note", ""),
        "train_images": int(len(x_train)),
        "hardware": hardware_description(),
        "versions": versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": config.command(),
    }
    run_folder.write_json(out / run_folder.METRICS, metrics)
    run_folder.crash_point("metrics-written", len(log))
    run_folder.remove_leftovers(out)
    print(
        f"{eval_name.capitalize()} accuracy after the final epoch ({len(log)}): {results['last']:.4f} "
        f"(best epoch {best_record['epoch']}: {results['best']:.4f}, chosen on the same images, so optimistic). "
        f"Wrote {out}/metrics.json"
    )
    return metrics


def config_from_dict(values: dict) -> TrainConfig:
    """A ``TrainConfig`` from a dict, ignoring keys it does not know."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in names})
