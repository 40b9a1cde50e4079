"""Reading run folders (what :func:`resnet_utils.training.train` writes), for plots and notebooks.

Never trains anything: it reads ``config.json``, ``log.csv``, ``metrics.json`` and
``predictions.npz`` and turns them into DataFrames. It imports nothing of the trainer (only
:mod:`resnet_utils.recipe`): data flows one way, from ``training`` through the run folder to here.

A damaged run folder never stops the others from loading: :func:`load_runs` (and so
:func:`trained_models` and :func:`load_trained`) skips it with one warning naming it and the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import pandas as pd

from resnet_utils._quiet import tensorflow as _tensorflow  # TensorFlow, imported quietly when first needed

from resnet_utils.recipe import DEFAULT_RECIPE, RECIPE_FIELDS, legacy_identity

#: The files a run folder may hold; ``resnet_utils.run_folder`` (which writes them) uses this list too.
RUN_FILE_NAMES = ("config.json", "log.csv", "best.keras", "last.keras", "best.json", "predictions.npz", "metrics.json",
                  "mean.npy", "resume.keras", "resume.bkp.keras")


class DamagedFile(ValueError):
    """A run folder's file cannot be read as what it should be; the message names it.
    ``reason`` says what is wrong with it in a few words."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path} is damaged ({reason})")
        self.path, self.reason = Path(path), reason


@dataclass
class Run:
    """One run folder: its name, config, per-epoch log and final metrics (empty when unfinished)."""

    path: Path
    config: dict
    log: pd.DataFrame
    metrics: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def finished(self) -> bool:
        return self.metrics.get("status") == "complete"

    def predictions(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(probabilities (N, 10), true labels (N,)) of the best model on the test set, if saved."""
        path = self.path / "predictions.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as arrays:
                probabilities, labels = arrays["probabilities"].astype(np.float32), arrays["labels"].astype(np.int64)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise DamagedFile(path, f"{type(error).__name__}: {error}; it should hold the arrays probabilities and labels. "
                              "Rerun the run's command to rebuild it") from None
        if probabilities.ndim != 2 or labels.shape != (len(probabilities),):
            raise DamagedFile(path, f"probabilities {probabilities.shape} and labels {labels.shape} do not fit; "
                              "rerun the run's command to rebuild it")
        return probabilities, labels


def read_log(path: str | Path) -> list[dict]:
    """The complete rows of a run's ``log.csv`` as dicts of floats (epochs numbered from 0, as
    Keras writes them); a last line cut short (no line end, or missing values) is left out.

    Raises :class:`DamagedFile` if the file is not text (not valid UTF-8)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return []
    except UnicodeDecodeError as error:
        raise DamagedFile(path, f"not text: byte {error.start} is not UTF-8") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a line without its end was cut while being written
    good = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            good.append({k: float(v) for k, v in row.items()})
        except (TypeError, ValueError):
            break
    return good


def read_log_frame(path: str | Path) -> pd.DataFrame:
    """A run's ``log.csv`` as a DataFrame (epochs numbered from 1), or an empty one."""
    frame = pd.DataFrame(read_log(path))
    if "epoch" in frame:
        frame["epoch"] = frame["epoch"].astype(int) + 1
    return frame


def _read_object(file: Path) -> dict:
    """The JSON object in ``file`` (``{}`` if it is missing); :class:`DamagedFile` otherwise."""
    if not file.exists():
        return {}
    try:
        value = json.loads(file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise DamagedFile(file, f"not JSON: {error}") from None
    except OSError as error:
        raise DamagedFile(file, f"unreadable: {error.strerror or error}") from None
    if not isinstance(value, dict):
        raise DamagedFile(file, f"a JSON {type(value).__name__}, not an object")
    return value


def load_run(path: str | Path) -> Run:
    """Read one run folder; missing files give empty parts rather than errors. Raises
    :class:`DamagedFile`, naming the file, if ``config.json``, ``metrics.json`` or ``log.csv``
    cannot be read."""
    path = Path(path)
    return Run(path, _read_object(path / "config.json"), read_log_frame(path / "log.csv"), _read_object(path / "metrics.json"))


def load_runs(results_dir: str | Path | None = None) -> dict[str, Run]:
    """Every run folder (a folder with a config.json) under ``results_dir``, by folder name; without
    one, under the committed results (:func:`results_dir`). A folder that does not exist has none.

    A folder that cannot be read (a damaged ``config.json``, ``metrics.json`` or ``log.csv``) is
    skipped with one warning naming it; so is a folder holding run files but no ``config.json``."""
    results_dir = Path(results_dir) if results_dir is not None else _find_results_dir()
    if not results_dir.is_dir():
        return {}
    runs = {}
    for folder in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        if not (folder / "config.json").exists():
            present = [name for name in RUN_FILE_NAMES if (folder / name).exists()]
            if present:
                warnings.warn(f"Skipping the run folder {folder}: it holds {', '.join(present)} but no config.json.", stacklevel=2)
            continue
        try:
            runs[folder.name] = load_run(folder)
        except DamagedFile as error:
            warnings.warn(f"Skipping the run folder {folder}: {error}.", stacklevel=2)
    return runs


def recipe_of(run: Run) -> dict:
    """The run's schedule and recipe settings (learning rate, weight decay, label smoothing, BN
    momentum, warm-up), with the values of the time for runs made before they were recorded."""
    identity = run.config.get("identity", {})
    schedule = identity.get("schedule", run.metrics.get("schedule", "fast"))
    legacy = legacy_identity(schedule)
    recipe = {"schedule": schedule}
    for name in RECIPE_FIELDS:
        recipe[name] = legacy[name] if identity.get(name) is None else identity[name]
    return recipe


def identity_of(run: Run) -> dict:
    """The run's identity (``config.json``'s ``identity``, what makes two runs the same run), with
    every field that was added to the identity after the run was made filled with the value such
    runs used (``recipe.legacy_identity`` of its schedule: e.g. the ``fast`` schedule's 5% warm-up
    for a folder written before ``warmup`` was recorded)."""
    identity = dict(run.config.get("identity", {}))
    for name, value in legacy_identity(identity.get("schedule", run.metrics.get("schedule"))).items():
        if identity.get(name) is None:  # not recorded (or recorded as "the schedule's own", as recipe_of reads it)
            identity[name] = value
    return identity


def find_run(identity: dict, results_dir: str | Path | None = None, ignore: tuple[str, ...] = ("data",)) -> Run | None:
    """The finished run under ``results_dir`` (default: the repository's ``results/``) whose identity
    (:func:`identity_of`) equals ``identity`` (e.g. ``TrainConfig(...).identity()``) in every field but
    those in ``ignore`` (by default the data *source*: ``"auto"`` and ``"folder"`` can name the same
    images), or ``None``. Of several, the first by folder name."""
    wanted = {k: v for k, v in identity.items() if k not in ignore}
    for run in load_runs(results_dir).values():
        if run.finished:
            recorded = identity_of(run)
            if {k: recorded.get(k) for k in wanted} == wanted:
                return run
    return None


def recipe_label(run: Run) -> str:
    """``"default"`` (the project's current default recipe), ``"previous default"`` (the ``fast``
    recipe before 2026-11-28's recipe screen), or the schedule and settings in short."""
    recipe = recipe_of(run)
    schedule = recipe.pop("schedule")
    if recipe == DEFAULT_RECIPE.get(schedule):
        return "default" if schedule == "fast" else f"{schedule} (its default)"
    previous = legacy_identity("fast")
    if schedule == "fast" and recipe == {name: previous[name] for name in RECIPE_FIELDS}:
        return "previous default"
    short = {"learning_rate": "lr", "weight_decay": "wd", "label_smoothing": "ls", "bn_momentum": "bn", "warmup": "warm-up"}
    return f"{schedule}: " + ", ".join(f"{short[name]} {value:g}" for name, value in recipe.items())


def device_label(hardware: dict) -> str:
    """The GPUs, else the CPU and its cores (``"1 of 2"`` when the run was pinned to some), of a
    ``metrics.json`` hardware record."""
    cores = hardware.get("cpu_count", "?")
    if hardware.get("cores_used", cores) != cores:
        cores = f"{hardware['cores_used']} of {cores}"
    return ", ".join(hardware.get("gpus", [])) or f"{hardware.get('cpu', '?')} ({cores} cores)"


def short_machine(label: str) -> str:
    """A ``device_label`` without trademarks and clock: ``"Intel(R) Xeon(R) Processor (2 cores)"``
    becomes ``"Intel Xeon (2 cores)"``."""
    return re.sub(r"\(R\)| Processor| CPU @ [\d.]+GHz", "", label)


def seed_group(name: str) -> str:
    """A run's name without its ``-seedN`` suffix: the runs that differ only in their seed share it."""
    return re.sub(r"-seed\d+$", "", name)


def runs_table(runs: dict[str, Run]) -> pd.DataFrame:
    """One row per run: model, schedule, epochs, test accuracy of the final epoch (and of the best epoch,
    chosen on the test set, so slightly optimistic), time, hardware, date, command."""
    rows = []
    for name, run in runs.items():
        m, c = run.metrics, run.config
        identity = c.get("identity", {})
        hardware = m.get("hardware", {})
        device = device_label(hardware)
        rows.append({
            "run": name,
            "model": m.get("model", c.get("model")),
            "parameters": m.get("parameters", c.get("parameters")),
            "schedule": m.get("schedule", c.get("identity", {}).get("schedule")),
            "epochs": m.get("epochs_completed", len(run.log)),
            "test_accuracy": m.get("test_accuracy_last"),
            "test_error_%": round(100 * (1 - m["test_accuracy_last"]), 2) if "test_accuracy_last" in m else None,
            "test_accuracy_best_epoch": m.get("test_accuracy_best"),
            "train_minutes": round(m["train_seconds"] / 60, 1) if "train_seconds" in m else None,
            "data": "; ".join(filter(None, [m.get("data", c.get("data_description")), c.get("extra", {}).get("note")])),
            "hardware": device if m else None,
            "date": m.get("date", "")[:10] or None,
            "status": m.get("status", "unfinished"),
            "command": m.get("command", c.get("command")),
            "arch": identity.get("arch", "cifar"),
            "depth": _depth(identity),
            "version": identity.get("version") if identity.get("arch", "cifar") == "cifar" else None,
            "shortcut": identity.get("shortcut") if identity.get("arch", "cifar") == "cifar" else None,
            "stem": identity.get("stem") if identity.get("arch", "cifar") != "cifar" else None,
            "seed": identity.get("seed", 0),
            "train_images": m.get("train_images", c.get("train_images")),
            "recipe": recipe_label(run),
            "seconds_per_epoch": m.get("seconds_per_epoch"),
            "group": seed_group(name),
        })
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def _depth(identity: dict) -> int | None:
    from resnet_utils.models import depth_from_n

    if identity.get("arch", "cifar") != "cifar" or "n" not in identity:
        return None
    return depth_from_n(identity["n"], identity.get("version", 1))


def seed_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Finished runs that differ only in their seed (``NAME``, ``NAME-seed1``, ...), as one row each:
    the final-epoch test accuracy's mean, standard deviation (over seeds; NaN for one), min and max."""
    finished = table[table["status"] == "complete"]
    grouped = finished.groupby("group")["test_accuracy"]
    summary = pd.DataFrame({
        "seeds": grouped.count(),
        "mean_%": 100 * grouped.mean(),
        "std_%": 100 * grouped.std(),
        "min_%": 100 * grouped.min(),
        "max_%": 100 * grouped.max(),
    }).round(2)
    first = finished.groupby("group").first()
    return summary.join(first[["model", "epochs", "recipe", "hardware"]]).rename_axis("runs")


# --- the committed trained models ------------------------------------------------------------------

RESULTS_ENV = "RESNET_RESULTS_DIR"  # a folder of run folders to read instead of the repository's results/
RUNS_ENV = "RESNET_RUNS_DIR"  # where the notebooks train new runs instead of the repository's runs/


class ResultsNotFound(FileNotFoundError):
    """No folder of committed run folders: none given, none set, and no repository around the package."""


def repository_root(package_dir: str | Path | None = None) -> Path | None:
    """The repository this package sits in (the folder above ``resnet_utils/`` holding ``pyproject.toml``
    and ``results/``), or ``None`` once it is installed elsewhere (site-packages, Colab's pip)."""
    root = Path(package_dir or Path(__file__).parent).resolve().parent
    return root if (root / "pyproject.toml").is_file() and (root / "results").is_dir() else None


def results_dir(path: str | Path | None = None) -> Path:
    """The folder of committed run folders: ``path`` if given, else ``$RESNET_RESULTS_DIR``, else the
    repository's ``results/`` (found from the package's location, whatever the working directory).

    Raises ``ResultsNotFound`` (one line: what is missing and what to set) if the chosen folder does
    not exist, or if none is given or set and the package is not inside its repository.
    """
    if path is None and os.environ.get(RESULTS_ENV):
        path, source = os.environ[RESULTS_ENV], f"${RESULTS_ENV}"
    else:
        source = "results_dir"
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ResultsNotFound(f"{source} is {str(path)!r}, which is not a folder: point it at a folder of run folders "
                                  "(the repository's results/).")
        return folder
    root = repository_root()
    if root is None:
        raise ResultsNotFound(f"No results folder: resnet_utils is installed outside its repository, so there is no "
                              f"results/ beside it; set {RESULTS_ENV} (or pass results_dir=) to a clone's results/ folder.")
    return root / "results"


_find_results_dir = results_dir  # for the functions below, whose argument of that name shadows it


def runs_dir(path: str | Path | None = None) -> Path:
    """Where new runs go (folders the notebooks train into; not created here): ``path`` if given, else
    ``$RESNET_RUNS_DIR``, else the repository's ``runs/`` (git-ignored), else ``runs/`` in the working
    directory when the package is installed outside its repository (e.g. ``/content/runs`` on Colab)."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser()
    root = repository_root()
    return root / "runs" if root is not None else Path.cwd() / "runs"


@dataclass
class TrainedModel:
    """A trained Keras model from a run folder, with what it scored and how it was made."""

    model: object  # keras.Model
    name: str  # the model's name, e.g. "resnet20v1"
    run: Run
    checkpoint: str  # "last.keras" (the final epoch) or "best.keras" (best epoch, chosen on the test set)
    test_accuracy: float  # of this checkpoint, from metrics.json
    mean: np.ndarray  # the run's per-pixel mean image (32, 32, 3), subtracted from every input

    @property
    def command(self) -> str:
        return self.run.metrics.get("command", self.run.config.get("command", ""))

    @property
    def accuracy_label(self) -> str:
        """What ``test_accuracy`` is, in words."""
        m = self.run.metrics
        if self.checkpoint == "last.keras":
            return f"final epoch ({m.get('epochs_completed', '?')})"
        return f"best epoch ({m.get('best_epoch', '?')} of {m.get('epochs_completed', '?')}), chosen on the test set"

    def describe(self) -> str:
        m = self.run.metrics
        hardware = m.get("hardware", {})
        device = device_label(hardware)
        lines = [f"{self.name} from {self.run.path.name}/{self.checkpoint}: test accuracy {self.test_accuracy:.2%} "
                 f"({self.accuracy_label})"]
        if self.checkpoint == "best.keras" and "test_accuracy_last" in m:
            lines.append(f"  final epoch's test accuracy: {m['test_accuracy_last']:.2%} (its model, last.keras, is not committed)")
        lines.append(f"  trained: {m.get('schedule', '?')} schedule, {m.get('epochs_completed', '?')} epochs, "
                     f"{m.get('data', '?')}; {device}; {m.get('date', '?')[:10]}")
        lines.append(f"  made by: {self.command}")
        return "\n".join(lines)

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, 32, 32, 3) -> what the model expects: x / 255 - the run's mean image."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(f"images must have shape (N, 32, 32, 3); got {images.shape}.")
        if self.mean.shape != (32, 32, 3):
            raise ValueError(f"the mean image of {self.run.path} has shape {self.mean.shape}, not (32, 32, 3).")
        return images.astype(np.float32) / 255.0 - self.mean

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, 10) for uint8 images (N, 32, 32, 3)."""
        return np.asarray(self.model.predict(self.preprocess(images), batch_size=batch_size, verbose=0), dtype=np.float32)


def _checkpoint_of(run: Run) -> tuple[str, float] | None:
    """The checkpoint to load and its test accuracy: the final epoch's model when it is there."""
    m = run.metrics
    if (run.path / "last.keras").exists() and "test_accuracy_last" in m:
        return "last.keras", float(m["test_accuracy_last"])
    if (run.path / "best.keras").exists() and "test_accuracy_best" in m:
        return "best.keras", float(m["test_accuracy_best"])
    return None


def trained_models(results_dir: str | Path | None = None) -> pd.DataFrame:
    """The finished runs with a loadable model, one row per run: model name, checkpoint, accuracy, epochs.

    ``load_trained`` accepts a model name (the most-trained run of that model is taken) or a run name.
    ``results_dir`` is found as :func:`results_dir` finds it; ``ResultsNotFound`` if there is none.
    """
    rows = []
    for name, run in load_runs(_find_results_dir(results_dir)).items():
        chosen = _checkpoint_of(run) if run.finished else None
        if chosen is None:
            continue
        rows.append({"run": name, "model": run.metrics.get("model", run.config.get("model")), "checkpoint": chosen[0],
                     "test_accuracy": chosen[1], "epochs": run.metrics.get("epochs_completed")})
    return pd.DataFrame(rows, columns=["run", "model", "checkpoint", "test_accuracy", "epochs"]).set_index("run")


def load_trained(name: str, results_dir: str | Path | None = None) -> TrainedModel:
    """A committed trained model by name, e.g. ``load_trained("resnet20v1")``.

    ``name`` is a model name (``"resnet20v1"``, ``"resnet56v1"``, ``"plain20"``: the finished run of that
    model with the most epochs, then the highest accuracy) or a run folder name
    (``"resnet20v1-fast-30ep"``). Loads the final epoch's model (``last.keras``) if the run folder has
    it, else ``best.keras`` (the best epoch, chosen on the test set); ``TrainedModel.describe()`` says
    which, with the accuracy, the data, the machine and the command that made it.

    ``results_dir`` is found as :func:`results_dir` finds it (argument, ``$RESNET_RESULTS_DIR``, the
    repository's ``results/``); without one it raises ``ResultsNotFound`` saying what to set.
    Raises ``KeyError`` naming the available models and runs if ``name`` is neither.
    """
    _tensorflow()
    from resnet_utils.models import load_model  # loads a net of any depth the package builds

    results_dir = _find_results_dir(results_dir)
    available = trained_models(results_dir)
    if name in available.index:
        run_name = name
    else:
        matches = available[available["model"] == name]
        if matches.empty:
            models = sorted(set(available["model"]))
            raise KeyError(
                f"No trained model {name!r} in {results_dir}. Available models: {', '.join(models) or 'none'}; "
                f"runs: {', '.join(available.index) or 'none'}. Train one with `python -m resnet_utils.train` (notebook 06)."
            )
        run_name = matches.sort_values(["epochs", "test_accuracy"], ascending=False).index[0]
    run = load_run(results_dir / run_name)
    checkpoint, accuracy = _checkpoint_of(run)
    path = run.path / checkpoint
    redo = f"Rerun its command to rebuild it: {run.metrics.get('command', 'python -m resnet_utils.train ...')}"
    if path.is_symlink():
        raise DamagedFile(path, f"a symbolic link to {path.readlink()}; load_trained reads only a run folder's own files. "
                          "Put the model itself there")
    mean_path = run.path / "mean.npy"
    try:
        mean = np.load(mean_path, allow_pickle=False)
    except FileNotFoundError:
        raise DamagedFile(mean_path, f"missing: the run's mean image is needed to feed its model. {redo}") from None
    except (OSError, ValueError, EOFError) as error:
        raise DamagedFile(mean_path, f"{type(error).__name__}: {error}. {redo}") from None
    if mean.shape != (32, 32, 3):
        raise DamagedFile(mean_path, f"shape {mean.shape}, not the (32, 32, 3) mean image. {redo}")
    try:
        model = load_model(path, compile=False)  # for predictions: no optimizer or loss needed
    except Exception as error:  # a damaged archive fails inside zipfile/h5py with many types
        raise DamagedFile(path, f"cannot load it as a Keras model: {type(error).__name__}. {redo}") from None
    bfloat16 = any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in model.layers)
    if bfloat16 and not _tensorflow().config.list_physical_devices("GPU"):
        from resnet_utils.hardware import cpu_has_native_bfloat16
        from resnet_utils.models import with_dtype_policy

        if not cpu_has_native_bfloat16():  # bfloat16 would be slower than float32 here, with a warning at each call
            model = with_dtype_policy(model, "float32")
    return TrainedModel(model=model, name=run.metrics.get("model", model.name), run=run, checkpoint=checkpoint,
                        test_accuracy=accuracy, mean=mean)


def results_markdown(runs: dict[str, Run]) -> str:
    """A Markdown table of the finished run folders, for a README: each with its model, recipe,
    epochs, seed, training images, the final epoch's test accuracy, training minutes, machine and
    date. Generated, so that no number in it is copied by hand (``python results/campaign.py
    --write-tables``)."""
    table = runs_table({name: run for name, run in runs.items() if run.finished})
    lines = ["| run | model | recipe | epochs | seed | training images | test accuracy, final epoch | minutes | machine | date |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    if table.empty:
        return "\n".join(lines) + "\n"
    for name, row in table.sort_values(["model", "epochs", "seed"], kind="stable").iterrows():
        machine = short_machine(row["hardware"]) if isinstance(row["hardware"], str) else ""
        minutes = f"{row['train_minutes']:g}" if pd.notna(row["train_minutes"]) else ""
        images = f"{int(row['train_images']):,}" if pd.notna(row["train_images"]) else ""
        lines.append(f"| `{name}` | {row['model']} | {row['recipe']} | {row['epochs']} | {row['seed']} | {images} | "
                     f"{100 * row['test_accuracy']:.2f}% | {minutes} | {machine} | {row['date'] or ''} |")
    return "\n".join(lines) + "\n"
