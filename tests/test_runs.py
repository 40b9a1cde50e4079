"""The committed trained models by name, and TensorFlow's start-up lines kept out of stderr."""

import subprocess
import sys

import numpy as np
import pytest

from resnet_utils import _quiet, runs


def test_trained_models_lists_the_committed_runs():
    table = runs.trained_models()
    assert "resnet20v1" in set(table["model"])
    assert set(table["checkpoint"]) <= {"best.keras", "last.keras"}


def test_load_trained_by_name_classifies_real_images():
    from resnet_utils.data import load_cifar10

    trained = runs.load_trained("resnet20v1")
    metrics = trained.run.metrics
    expected = metrics["test_accuracy_last"] if trained.checkpoint == "last.keras" else metrics["test_accuracy_best"]
    assert trained.test_accuracy == expected
    assert "python -m resnet_utils.train" in trained.command and trained.checkpoint in trained.describe()
    sample = load_cifar10("sample", verbose=False)
    accuracy = np.mean(trained.predict(sample.x_test).argmax(axis=1) == sample.y_test)
    assert accuracy > 0.6  # a trained ResNet20 on 500 real test images (chance: 0.1)


def test_load_trained_unknown_name_lists_what_there_is():
    with pytest.raises(KeyError, match="Available models: .*resnet20v1"):
        runs.load_trained("resnet18")


def test_startup_filter_keeps_real_errors():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "E0000 00:00:1795834829.009465    5371 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
            "I0000 00:00:1795893039.248596    3417 port.cc:153] oneDNN custom operations are on. You may see ...\n"
            "E0000 00:00:1795834829.009465    5371 some_kernel.cc:12] a real error\n")
    assert _quiet.keep_lines(text) == "E0000 00:00:1795834829.009465    5371 some_kernel.cc:12] a real error\n"


def test_import_prints_no_startup_lines():
    code = "import resnet_utils, tensorflow as tf; tf.config.list_physical_devices('GPU'); import os; os.write(2, b'still shown\\n')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if _quiet.is_startup_line(line)], result.stderr
    assert "still shown" in result.stderr
