"""The benchmark scripts run, measure what they say, and keep the classic recipe faithful."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import classic_recipe  # noqa: E402
import throughput  # noqa: E402
import time_to_accuracy  # noqa: E402

from resnet_utils import data, training  # noqa: E402


def test_the_grid_covers_every_axis_the_benchmark_promises():
    variants = throughput.variants_for(["20v1", "56v1", "56v2"], [64, 128, 256, 512])
    first = [v for v in variants if v.model == "20v1"]
    assert {v.recipe for v in first} == {"classic", "tf.data"}
    assert {v.batch_size for v in first if v.recipe == "tf.data"} == {64, 128, 256, 512}
    assert {v.policy for v in first} >= {"float32"} and any(v.policy.startswith("mixed_") for v in first)
    assert {v.xla for v in first} == {True, False}
    assert {v.layout for v in first} == {"channels_last", "channels_first"}
    for model in ("20v1", "56v1", "56v2"):
        assert throughput.default_variant(model) in variants
        assert sum(v.recipe == "classic" for v in variants if v.model == model) == 1
    classic = next(v for v in variants if v.recipe == "classic")
    assert (classic.batch_size, classic.policy, classic.batch_norm) == (32, "float32", "keras")
    assert {v.batch_norm for v in first} == {"fused", "keras"}  # what the fused batch norm saves
    assert throughput.default_variant("20v1").batch_norm == "fused"
    assert len(set(variants)) == len(variants)


def test_the_default_variant_is_what_train_uses():
    default = throughput.default_variant("20v1")
    assert default.batch_size == training.DEFAULT_BATCH_SIZE[training.TrainConfig(out="x").schedule]
    assert default.policy == training.precision_policy("auto")


def test_classic_flow_shifts_and_flips_like_the_example():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=64)
    mean = data.pixel_mean(images)
    flow = classic_recipe.classic_flow(images, labels, mean, batch_size=32, seed=1)
    assert len(flow) == 2 and flow.workers == 4
    x, y = flow[0]
    assert x.shape == (32, 32, 32, 3) and x.dtype == np.float32 and y.shape == (32,)
    plain = classic_recipe.classic_inputs(images, mean)
    assert plain.min() >= -1.0 and plain.max() <= 1.0 and abs(float(plain.mean())) < 1e-5
    # Augmented batches are the same images moved around: every one differs from all originals...
    assert not any(np.allclose(x[0], original) for original in plain)
    # ...yet keeps pixel values from the (mean-subtracted) originals' range.
    assert x.min() >= plain.min() - 1e-5 and x.max() <= plain.max() + 1e-5
    assert isinstance(classic_recipe.classic_optimizer().learning_rate.numpy().item(), float)


def test_measure_reports_images_per_second_and_the_ratio_to_classic():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(192, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=192)
    variants = [throughput.Variant("8v1", "classic", 32), throughput.Variant("8v1", "tf.data", 32, "mixed_bfloat16"),
                throughput.Variant("8v1", "tf.data", 32, steps_per_execution=2)]
    rates, peaks, failures = throughput.measure(variants, images, labels, rounds=1, images_per_round=96, memory=False)
    assert not failures and all(len(r) == 1 and r[0] > 0 for r in rates.values())
    table = throughput.results_table(variants, rates, peaks, failures)
    assert list(table["x classic"])[:2] == [1.0, pytest.approx(rates[variants[1]][0] / rates[variants[0]][0], abs=0.01)]
    assert "2 steps/call" in table["variant"][2]
    assert (table["s/epoch"] * table["img/s"]).between(49_000, 51_000).all()
    assert table["GFLOP/s"].gt(0).all()
    markdown = throughput.markdown_table(table)
    assert markdown.splitlines()[0].startswith("| model | variant | img/s | x classic")
    assert len(markdown.splitlines()) == 2 + len(variants)


def test_an_unsupported_variant_is_a_row_not_a_crash(monkeypatch):
    def refuse(variant, images, labels):
        raise RuntimeError("no such kernel here")

    monkeypatch.setattr(throughput, "prepare", refuse)
    variant = throughput.Variant("8v1", "tf.data", 32)
    rates, peaks, failures = throughput.measure([variant], np.zeros((32, 32, 32, 3), np.uint8), np.zeros(32), rounds=1, memory=False)
    assert rates == {} and failures[variant] == "RuntimeError: no such kernel here"
    assert throughput.results_table([variant], rates, peaks, failures)["note"][0] == "RuntimeError: no such kernel here"


def test_training_flops_are_three_times_the_forward_pass():
    # ResNet20 v1: 40.81M multiply-accumulates forward (reference facts), so ~245 MFLOPs to train.
    assert throughput.training_flops_per_image("20v1") == pytest.approx(3 * 2 * 40.81e6, rel=0.01)


@pytest.mark.slow
def test_time_to_accuracy_writes_comparable_run_folders(tmp_path):
    out = tmp_path / "tta"
    table = time_to_accuracy.main(["--epochs", "1", "--data", "sample", "--limit-train", "128", "--recipes", "classic", "default",
                                   "--out", str(out)])
    assert list(table["recipe"]) == ["classic", "default"]
    assert list(table["batch"]) == [32, 128] and list(table["epochs"]) == [1, 1]
    classic = json.loads((out / "classic" / "metrics.json").read_text())
    assert classic["status"] == "complete" and classic["train_images"] == 128
    assert len(training.read_log(out / "classic" / "log.csv")) == 1
    assert (out / "default" / "best.keras").exists()
    assert "| recipe |" in (out / "summary.md").read_text()
    assert {"minutes to 85%", "minutes to 88%"} <= set(table.columns)


def test_minutes_to_counts_wall_time_until_the_first_epoch_that_reaches_it():
    log = [{"epoch_time_s": 60.0, "val_accuracy": 0.80}, {"epoch_time_s": 60.0, "val_accuracy": 0.86},
           {"epoch_time_s": 60.0, "val_accuracy": 0.85}]
    assert time_to_accuracy.minutes_to(log, 0.85) == 2.0
    assert time_to_accuracy.minutes_to(log, 0.80) == 1.0
    assert time_to_accuracy.minutes_to(log, 0.88) is None
