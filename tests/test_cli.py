"""The command line: clear errors for bad arguments, and a SIGKILLed run that resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from resnet_utils import train as cli
from resnet_utils import training

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args,message", [
    (["--depth", "21"], "depth must be 6n+2"),
    (["--depth", "57", "--version", "2"], "depth must be 9n+2"),
    (["--n", "0"], "n must be a whole number >= 1"),
    (["--version", "3"], "version must be 1 or 2"),
    (["--epochs", "0"], "epochs must be a positive whole number"),
    (["--batch-size", "-8"], "batch_size must be a positive whole number"),
    (["--schedule", "linear"], "Unknown schedule 'linear'"),
    (["--data", "folder", "--data-dir", "/no/such/folder"], "does not exist"),
])
def test_bad_arguments_exit_with_a_message(tmp_path, capsys, args, message):
    # Safe defaults first (argparse lets the case's own values win), so a case that were wrongly
    # accepted would train for a moment on eight sample images, not for hours.
    safe = ["--data", "sample", "--epochs", "1", "--limit-train", "8", "--out", str(tmp_path / "run")]
    code = cli.main([*safe, *args])
    assert code == 2
    assert message in capsys.readouterr().err


def _command(out: Path, epochs: int = 4) -> list[str]:
    return [sys.executable, "-m", "resnet_utils.train", "--n", "1", "--schedule", "fast", "--epochs", str(epochs),
            "--batch-size", "8", "--data", "sample", "--limit-train", "400", "--verbose", "0", "--out", str(out)]


def _rows(out: Path) -> list[dict]:
    return training.read_log(out / "log.csv")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_every_epoch_once(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen(_command(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not (out / "backup" / "training_metadata.json").exists():  # epoch 1 fully done
        assert process.poll() is None, process.stdout.read().decode()
        assert time.time() < deadline, "the first epoch never finished"
        time.sleep(0.05)
    time.sleep(0.5)  # inside the second epoch (50 steps + evaluation take seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = len(_rows(out))
    assert 1 <= killed_after < 4
    # Whatever the moment of the kill, the checkpoints on disk are whole models.
    for name in ("best.keras", "last.keras"):
        keras.models.load_model(out / name)
    assert not list(out.glob("*.partial*"))

    resumed = subprocess.run(_command(out), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming" in resumed.stdout

    rows = _rows(out)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    # The schedule continued where it was: the rate logged at the end of epoch e is the
    # schedule's value after (e + 1) * 50 optimizer steps, before and after the kill alike.
    schedule = training.make_schedule("fast", 4, 50)
    for row in rows:
        assert row["learning_rate"] == pytest.approx(float(schedule((int(row["epoch"]) + 1) * 50)), rel=1e-4, abs=1e-7)
    best = json.loads((out / "best.json").read_text())
    assert best["val_accuracy"] == pytest.approx(max(r["val_accuracy"] for r in rows))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["epochs_completed"] == 4
    assert not (out / "backup").exists()
