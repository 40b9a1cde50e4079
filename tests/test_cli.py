"""The command line: clear errors for bad arguments, and a SIGKILLed run that resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from resnet_utils import run_folder, training
from resnet_utils import train as cli

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
    (["--verbose", "loud"], "argument --verbose: invalid choice: 'loud'"),
    (["--n", "2", "--depth", "20"], "give --n or --depth, not both"),
    (["--version", "1.0"], "argument --version: invalid int value: '1.0'"),
    (["--out", ""], "out must name the run folder"),
    (["--n", "1000"], "n=1000 is too deep: ResNet v1 supports at most n=200"),
    (["--depth", "1010", "--version", "2"], "n=112 is too deep: ResNet v2 supports at most n=111 (depth 1001)"),
    (["--limit-train", "5000"], "limit_train is 5,000 but the data has only 1,000 training images"),
    (["--distribute", "tpu"], "invalid choice: 'tpu'"),
])
def test_bad_arguments_exit_with_a_message(tmp_path, capsys, args, message):
    # Safe defaults first (argparse lets the case's own values win), so a case that were wrongly
    # accepted would train for a moment on eight sample images, not for hours.
    safe = ["--data", "sample", "--epochs", "1", "--limit-train", "8", "--out", str(tmp_path / "run")]
    try:
        code = cli.main([*safe, *args])
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("depth,version,n", [(110, 1, 18), (1202, 1, 200), (164, 2, 18), (1001, 2, 111)])
def test_every_depth_of_the_tables_is_accepted(monkeypatch, tmp_path, depth, version, n):
    asked = []
    monkeypatch.setattr(training, "train", lambda config: asked.append(config))
    assert cli.main(["--depth", str(depth), "--version", str(version), "--data", "sample", "--out", str(tmp_path / "run")]) == 0
    assert asked[0].n == n


def test_the_command_line_honours_resnet_data(monkeypatch, tmp_path):
    asked = []
    monkeypatch.setattr(training, "train", lambda config: asked.append(config))
    monkeypatch.setenv("RESNET_DATA", "sample")
    assert cli.main(["--out", str(tmp_path / "run")]) == 0
    assert asked[0].data == "sample"
    assert cli.main(["--data", "keras", "--out", str(tmp_path / "run")]) == 0 and asked[1].data == "keras"


def test_offline_the_command_line_names_its_own_flags(monkeypatch, tmp_path, capsys):
    def offline():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: None")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    assert cli.main(["--data", "keras", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--data sample" in err and "--data-dir" in err and "source=" not in err and err.count("\n") == 1


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, tmp_path, capsys):
    def interrupted(config):
        raise training.TrainingInterrupted("Training in x was interrupted after epoch 3 of 30; rerun the same command to resume.")

    monkeypatch.setattr(training, "train", interrupted)
    assert cli.main(["--data", "sample", "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err == "error: Training in x was interrupted after epoch 3 of 30; rerun the same command to resume.\n"


def _command(out: Path, epochs: int = 4) -> list[str]:
    return [sys.executable, "-m", "resnet_utils.train", "--n", "1", "--schedule", "fast", "--epochs", str(epochs),
            "--batch-size", "8", "--data", "sample", "--limit-train", "400", "--verbose", "0", "--out", str(out)]


def _rows(out: Path) -> list[dict]:
    return training.read_log(out / "log.csv")


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **extra}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_every_epoch_once(tmp_path, capsys):
    out = tmp_path / "run"
    env = _env()
    process = subprocess.Popen(_command(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not (out / "resume.keras").exists():  # epoch 1 fully done
        assert process.poll() is None, process.stdout.read().decode()
        assert time.time() < deadline, "the first epoch never finished"
        time.sleep(0.05)
    # While it trains, a second trainer on the same folder is refused at once (issue 12, item 1).
    started = time.time()
    assert cli.main(_command(out)[3:]) == 2
    err = capsys.readouterr().err
    assert f"{out} is in use: process {process.pid} is training in it" in err and err.count("\n") == 1
    assert time.time() - started < 5
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
    assert not (out / "resume.keras").exists()


# --- issue 12: kills at the exact moments that used to hurt, in real processes --------------------------------


def _small(out: Path, epochs: int = 3, *extra: str) -> list[str]:
    return [sys.executable, "-m", "resnet_utils.train", "--n", "1", "--epochs", str(epochs), "--batch-size", "32",
            "--data", "sample", "--limit-train", "256", "--verbose", "0", "--seed", "3", "--out", str(out), *extra]


def _killed_then_resumed(command: list[str], out: Path, points: list[str], env: dict | None = None) -> str:
    """Run ``command`` once per kill point (each SIGKILLed there), then once to the end; its output."""
    for point in points:
        killed = subprocess.run(command, env={**(env or _env()), run_folder.KILL_ENV: point}, capture_output=True, text=True, timeout=600)
        assert killed.returncode == -signal.SIGKILL, f"{point}: {killed.stdout}{killed.stderr}"
    finished = subprocess.run(command, env=env or _env(), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


def _assert_every_epoch_once_on_schedule(out: Path, epochs: int, steps_per_epoch: int) -> list[dict]:
    rows = _rows(out)
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    schedule = training.make_schedule("fast", epochs, steps_per_epoch)
    for row in rows:  # the rate at the end of epoch e is the schedule's after (e + 1) epochs of steps
        assert row["learning_rate"] == pytest.approx(float(schedule((int(row["epoch"]) + 1) * steps_per_epoch)), rel=1e-4, abs=1e-7)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["epochs_completed"] == epochs
    assert not list(out.glob("*partial*")) and not (out / "resume.keras").exists()
    return rows


@pytest.mark.slow
def test_kills_inside_the_resumable_state_write_resume_exactly(tmp_path):
    """Issue 12, item 4: the state (weights, optimizer, epoch counter) is one unit. A kill after the
    new state is written but before it replaces the old one (where Keras's BackupAndRestore had
    written the weights but not the epoch), and one after the state but before log.csv, resume on
    the right epoch with the schedule in step (the learning rate at the end of each epoch)."""
    out = tmp_path / "run"
    output = _killed_then_resumed(_small(out), out, ["state-written:1", "state-saved:2"])
    assert "log.csv lacked epoch(s) 2..2; restored them from resume.keras" in output
    assert "Resuming" in output
    _assert_every_epoch_once_on_schedule(out, 3, 8)


@pytest.mark.slow
def test_the_gpu_settings_run_killed_and_resumed_on_a_cpu(tmp_path):
    """Issue 11, item 5: XLA, mixed_float16 with loss scaling and 16 steps per execution, on a CPU."""
    out = tmp_path / "run"
    command = _small(out, 2, "--mixed-precision", "float16", "--xla", "on", "--steps-per-execution", "16", "--batch-size", "16")
    _killed_then_resumed(command, out, ["state-saved:1"])
    config = json.loads((out / "config.json").read_text())
    assert (config["precision_policy"], config["xla"], config["steps_per_execution"]) == ("mixed_float16", True, 16)
    _assert_every_epoch_once_on_schedule(out, 2, 16)
    model = keras.models.load_model(out / "last.keras", compile=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())


MIRRORED_ON_TWO_CPUS = (
    "import sys, tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
    "from resnet_utils.train import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_killed_and_resumed(tmp_path):
    """Issue 11, item 5: the multi-GPU path (MirroredStrategy), on two logical CPU devices."""
    out = tmp_path / "run"
    command = [sys.executable, "-c", MIRRORED_ON_TWO_CPUS, *_small(out, 2, "--distribute", "mirrored")[3:]]
    _killed_then_resumed(command, out, ["state-saved:1"])
    assert json.loads((out / "config.json").read_text())["replicas"] == 2
    _assert_every_epoch_once_on_schedule(out, 2, 8)


# --- issue 26: a fast, helpful --help; issue 24: flags that were recorded and ignored ---------------------------


def test_help_answers_without_importing_tensorflow_and_shows_examples():
    result = subprocess.run([sys.executable, "-m", "resnet_utils.train", "--help"], env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "examples:" in result.stdout and "--seed SEED" in result.stdout
    assert "seeds the weights" in result.stdout and "{'" not in result.stdout  # defaults read as words, not dicts
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "resnet_utils.train", "--help"], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert timed.returncode == 0 and "tensorflow" not in timed.stderr and "keras" not in timed.stderr
    wrong = subprocess.run([sys.executable, "-X", "importtime", "-m", "resnet_utils.train", "--out", "x", "--verbose", "loud"],
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "tensorflow" not in wrong.stderr and "invalid choice: 'loud'" in wrong.stderr


def test_the_help_lists_the_models_shortcuts_and_stems():
    from resnet_utils import models

    assert cli.SHORTCUTS == models.SHORTCUTS and cli.STEMS == models.IMAGENET_STEMS


@pytest.mark.parametrize("args,message", [
    (["--stem", "cifar"], "--stem applies to --arch resnet18 or resnet50 only"),
    (["--stem", "foo"], "--stem applies to --arch resnet18 or resnet50 only"),
    (["--data-dir", "/some/copy"], "--data-dir names a local copy, which --data sample does not read"),
    (["--learning-rate", "0"], "learning_rate must be above 0"),
    (["--epochs", "100000000000000000000"], "epochs must be a positive whole number of at most 100,000"),
    (["--batch-size", "100000000000000000000"], "batch_size must be a positive whole number of at most 1,000,000"),
    (["--steps-per-execution", "100000000000000000000"], "steps_per_execution must be a positive whole number of at most"),
    (["--epochs", "1e20"], "argument --epochs: invalid int value: '1e20'"),
    (["--batch-size", "5000", "--limit-train", "1000"], "batch_size 5,000 is more than the 1,000 training images"),
])
def test_values_once_ignored_or_ending_in_tracebacks_are_one_line(tmp_path, capsys, args, message):
    test_bad_arguments_exit_with_a_message(tmp_path, capsys, args, message)
