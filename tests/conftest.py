import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests are CPU tests, also on a GPU machine

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _no_dataset_env(monkeypatch, tmp_path):
    """Tests never see the developer's data, results and runs settings and never write to ~/.cache."""
    monkeypatch.delenv("RESNET_CIFAR10_DIR", raising=False)
    monkeypatch.delenv("RESNET_DATA", raising=False)
    monkeypatch.delenv("RESNET_RESULTS_DIR", raising=False)
    monkeypatch.delenv("RESNET_RUNS_DIR", raising=False)
    monkeypatch.setenv("RESNET_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def sample():
    """The CIFAR-10 sample shipped in the package (1,000 training and 500 test images)."""
    from resnet_utils import data

    return data.load_sample()
