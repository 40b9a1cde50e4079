"""Reading run folders (what :func:`resnet_utils.training.train` writes), for plots and notebooks.

Never trains anything: it reads ``config.json``, ``log.csv``, ``metrics.json`` and
``predictions.npz`` and turns them into DataFrames.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


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
        with np.load(path) as arrays:
            return arrays["probabilities"].astype(np.float32), arrays["labels"].astype(np.int64)


def read_log(path: str | Path) -> list[dict]:
    """The complete rows of a run's ``log.csv`` as dicts of floats (epochs numbered from 0, as
    Keras writes them); a last line cut short (no line end, or missing values) is left out."""
    try:
        text = Path(path).read_text()
    except (FileNotFoundError, IsADirectoryError):
        return []
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


def load_run(path: str | Path) -> Run:
    """Read one run folder; missing files give empty parts rather than errors."""
    path = Path(path)

    def read_json(name: str) -> dict:
        file = path / name
        return json.loads(file.read_text()) if file.exists() else {}

    return Run(path, read_json("config.json"), read_log_frame(path / "log.csv"), read_json("metrics.json"))


def load_runs(results_dir: str | Path) -> dict[str, Run]:
    """Every run folder (a folder with a config.json) under ``results_dir``, by folder name."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return {}
    return {p.parent.name: load_run(p.parent) for p in sorted(results_dir.glob("*/config.json"))}


def runs_table(runs: dict[str, Run]) -> pd.DataFrame:
    """One row per run: model, schedule, epochs, best test accuracy, time, hardware, date, command."""
    rows = []
    for name, run in runs.items():
        m, c = run.metrics, run.config
        hardware = m.get("hardware", {})
        device = ", ".join(hardware.get("gpus", [])) or f"{hardware.get('cpu', '?')} ({hardware.get('cpu_count', '?')} cores)"
        rows.append({
            "run": name,
            "model": m.get("model", c.get("model")),
            "parameters": m.get("parameters", c.get("parameters")),
            "schedule": m.get("schedule", c.get("identity", {}).get("schedule")),
            "epochs": m.get("epochs_completed", len(run.log)),
            "test_accuracy": m.get("test_accuracy_best"),
            "test_error_%": round(100 * (1 - m["test_accuracy_best"]), 2) if "test_accuracy_best" in m else None,
            "train_minutes": round(m["train_seconds"] / 60, 1) if "train_seconds" in m else None,
            "data": "; ".join(filter(None, [m.get("data", c.get("data_description")), c.get("extra", {}).get("note")])),
            "hardware": device if m else None,
            "date": m.get("date", "")[:10] or None,
            "status": m.get("status", "unfinished"),
            "command": m.get("command", c.get("command")),
        })
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
