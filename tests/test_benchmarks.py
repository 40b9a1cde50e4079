"""The benchmark scripts run, measure what they say, and keep the classic recipe faithful."""

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS / "investigations"))  # the one-off investigations' scripts

import classic_recipe  # noqa: E402
import peers  # noqa: E402
import throughput  # noqa: E402
import time_to_accuracy  # noqa: E402

from resnet_utils import data, models, training  # noqa: E402


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


def test_resnet50_before_and_after_the_fused_build():
    """ResNet50's two rows: keras.applications (Keras's batch norm, the build before) and ours."""
    before, after = throughput.variants_for(["resnet50"], [128])
    assert (before.batch_norm, after) == ("keras", throughput.default_variant("resnet50"))
    images, labels = np.zeros((8, 32, 32, 3), np.uint8), np.zeros(8, np.int64)
    model_before, _ = throughput.prepare(before, images, labels)
    model_after, _ = throughput.prepare(after, images, labels)
    assert model_before.name == "keras_applications_resnet50" and model_after.name == "resnet50"
    assert model_before.count_params() == model_after.count_params() == 23_608_202
    assert throughput.display_name("resnet50") == "ResNet50" and throughput.display_name("20v1") == "ResNet20v1"


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
    assert {"minutes to 85%", "minutes to 88%", "epochs to 85%", "machine"} <= set(table.columns)
    # without a recipe it trains nothing and summarises the folders it is given
    summary = time_to_accuracy.main(["--recipes", "--out", str(tmp_path / "summary"), "--also", str(out / "default")])
    assert list(summary["recipe"]) == ["tta/default"] and summary["epochs"].tolist() == [1]
    assert "finished run folders" in (tmp_path / "summary" / "summary.md").read_text()
    # a run resumed in another precision says so in its precision and machine columns
    config_path = out / "default" / "config.json"
    config = json.loads(config_path.read_text())
    config["sessions"] = [{"from_epoch": 1, "precision_policy": "mixed_bfloat16", "hardware": {"cpu": "A"}},
                          {"from_epoch": 2, "precision_policy": "float32", "hardware": {"cpu": "B"}}]
    config_path.write_text(json.dumps(config))
    resumed = time_to_accuracy.summary({"resumed": out / "default"}).iloc[0]
    assert resumed["precision"] == "mixed_bfloat16 then float32"
    assert resumed["machine"].startswith("2 sessions, 2 machines or precisions")


def test_minutes_to_counts_wall_time_until_the_first_epoch_that_reaches_it():
    log = [{"epoch_time_s": 60.0, "val_accuracy": 0.80}, {"epoch_time_s": 60.0, "val_accuracy": 0.86},
           {"epoch_time_s": 60.0, "val_accuracy": 0.85}]
    assert time_to_accuracy.minutes_to(log, 0.85) == 2.0
    assert time_to_accuracy.minutes_to(log, 0.80) == 1.0
    assert time_to_accuracy.minutes_to(log, 0.88) is None
    assert time_to_accuracy.epochs_to(log, 0.85) == 2 and time_to_accuracy.epochs_to(log, 0.80) == 1
    assert time_to_accuracy.epochs_to(log, 0.88) is None


def test_peers_augmentation_pads_crops_flips_and_subtracts_the_mean():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    mean = peers.pixel_mean(images)
    np.testing.assert_allclose(mean, data.pixel_mean(images), atol=1e-6)
    out = peers.augment_numpy(images, mean, np.random.default_rng(1))
    assert out.shape == (16, 32, 32, 3) and out.dtype == np.float32
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0))).astype(np.float32) / 255
    flipped = 0
    for k in range(16):
        pixels = out[k] + mean
        windows = [(padded[k, y:y + 32, x:x + 32], flip) for y in range(9) for x in range(9) for flip in (False, True)]
        matches = [flip for window, flip in windows if np.allclose(window[:, ::-1] if flip else window, pixels, atol=1e-5)]
        assert matches, f"image {k} is not a (flipped) 32x32 window of its zero-padded original"
        flipped += matches[0]
    assert 0 < flipped < 16


def test_peers_table_rounds_ratios_and_unavailable_rows():
    def ok(rate):
        return {"status": "ok", "images_per_s": rate, "median_step_images_per_s": rate, "warmup_s": 1.0, "wall_s": 2.0,
                "after_last_step_s": 0.01, "peak_mib": 900.0, "parameters": peers.RESNET20_PARAMETERS, "python": "3.11",
                "versions": {"torch": "2.x"}, "settings": "bfloat16"}

    variants = [peers.BY_NAME[name] for name in ("project default", "classic", "pytorch fp32 channels_last",
                                                 "keras jax backend, float32")]
    results = {"project default": [ok(600.0), ok(500.0)], "classic": [ok(300.0), ok(200.0)],
               "pytorch fp32 channels_last": [ok(1200.0), {"status": "failed", "reason": "Boom"}],
               "keras jax backend, float32": [{"status": "not available", "reason": "no --peer-python given"}]}
    rows = peers.results_table(variants, results, rounds=2)
    assert [r["variant"] for r in rows] == [v.name for v in variants]
    assert [(r["round 1"], r["round 2"], r["best img/s"]) for r in rows] == [(600, 500, 600), (300, 200, 300), (1200, "", 1200), ("", "", "")]
    assert [r["x default"] for r in rows] == [1.0, 0.5, 2.0, ""] and [r["x classic"] for r in rows] == [2.0, 1.0, 4.0, ""]
    assert "failed: Boom" in rows[2]["note"] and rows[3]["note"] == "not available (no --peer-python given)"
    assert "torch 2.x" in rows[2]["runs on"] and rows[3]["runs on"] == "peer python"
    assert len(peers.markdown_table(rows).splitlines()) == 2 + len(rows)


def test_peers_runs_the_tensorflow_variants_and_reports_missing_peers(tmp_path):
    # The machinery end to end: TensorFlow variants in their own subprocesses, peers without an interpreter.
    markdown = tmp_path / "peers.md"
    rows = peers.main(["--rounds", "1", "--images", "128", "--warmup", "1", "--peer-python", str(tmp_path / "no-python"),
                       "--markdown", str(markdown)])
    by_name = {row["variant"]: row for row in rows}
    assert list(by_name) == [v.name for v in peers.VARIANTS]
    for name in ("project default", "classic"):
        assert by_name[name]["round 1"] > 0 and by_name[name]["best img/s"] == by_name[name]["round 1"], by_name[name]
        assert "TensorFlow" in by_name[name]["runs on"]
    assert by_name["project default"]["x default"] == 1.0 and by_name["classic"]["x classic"] == 1.0
    assert "mixed_bfloat16" in by_name["project default"]["note"] or "float32" in by_name["project default"]["note"]
    for variant in peers.VARIANTS:
        if variant.interpreter == "peer":
            row = by_name[variant.name]
            assert row["round 1"] == "" and row["note"].startswith("not available (peer python") and "not found" in row["note"]
    lines = markdown.read_text().splitlines()
    assert lines[0].startswith("# ResNet20 v1") and any("how it was run" in line and "<peers-venv>" in line for line in lines)
    assert sum(line.startswith("| ") for line in lines) == 1 + len(peers.VARIANTS)
    assert len(markdown.with_suffix(".csv").read_text().splitlines()) == 1 + len(peers.VARIANTS)


def test_peers_reports_a_missing_package_as_not_available(tmp_path):
    try:
        import jax  # noqa: F401
        pytest.skip("jax is installed here")
    except ImportError:
        pass
    result = peers.run_variant(peers.BY_NAME["keras jax backend, float32"], sys.executable, 128, 1, 10.0, 120.0)
    assert result["status"] == "not available" and "jax" in result["reason"]


def test_peers_torch_resnet20_is_the_keras_model():
    torch = pytest.importorskip("torch")
    model = peers.torch_resnet20(torch)
    assert peers.torch_parameter_count(model) == peers.RESNET20_PARAMETERS == models.build_resnet(3, 1).count_params()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_the_folder_holds_the_scripts_a_reader_reruns_and_every_file_named_is_there():
    import re

    top = {p.name for p in BENCHMARKS.iterdir() if p.is_file()}
    assert {"throughput.py", "peers.py", "time_to_accuracy.py", "gpu_check.sh", "recipe_screen.py", "jpeg_cost.py"} <= top
    assert {"throughput-cpu.md", "peers-cpu-2core.md"} <= top  # their latest tables
    readme, results = (BENCHMARKS / "README.md").read_text(), (BENCHMARKS / "RESULTS.md").read_text()
    for script in sorted(p.name for p in BENCHMARKS.glob("**/*.py") if p.name != "classic_recipe.py"):
        assert f"`{script}`" in readme, f"benchmarks/README.md does not list {script}"
    run_folder_files = {"log.csv", "config.json", "metrics.json", "summary.md"}
    for name in set(re.findall(r"`((?:benchmarks/)?(?:investigations/)?[\w.-]+\.(?:md|csv|txt|py|sh))`", readme + results)):
        name = name.removeprefix("benchmarks/")
        if name not in run_folder_files:
            assert (BENCHMARKS / name).exists() or (BENCHMARKS / "investigations" / name).exists(), name


def test_flip_tta_scores_a_committed_model_both_ways():
    import flip_tta

    sample = data.load_cifar10("sample", verbose=False)
    table = flip_tta.measure(["resnet20v1-default-4ep"], sample.x_test[:200], sample.y_test[:200])
    row = table.loc["resnet20v1-default-4ep"]
    assert row["checkpoint"] in ("best.keras", "last.keras")
    assert 60 < row["test accuracy %"] <= 100 and 60 < row["with flip averaging %"] <= 100  # trained: far above chance
    assert row["gain (points)"] == pytest.approx(row["with flip averaging %"] - row["test accuracy %"], abs=0.011)


def test_flip_tta_averages_an_image_with_its_mirror():
    import flip_tta

    class LeftHalf:  # "class 1" when the left half of the image is brighter: flipping swaps the answer
        def __call__(self, x, training=False):
            left = x[:, :, :16].mean(axis=(1, 2, 3)) - x[:, :, 16:].mean(axis=(1, 2, 3))
            return np.stack([0.5 - 0.4 * np.tanh(left), 0.5 + 0.4 * np.tanh(left)], axis=1)

    images = np.zeros((4, 32, 32, 3), np.uint8)
    images[:2, :, :16] = 200  # left half bright: class 1 unflipped, 0 flipped; averaged: a tie, argmax 0
    labels = np.array([1, 1, 0, 0])
    plain, averaged = flip_tta.flip_accuracy(LeftHalf(), images, labels, np.zeros((32, 32, 3), np.float32))
    assert plain == 1.0 and averaged == 0.5


def test_jpeg_cost_fresh_pass_is_lossy_where_a_plain_re_encode_is_not(tmp_path):
    import jpeg_cost
    from PIL import Image

    first = tmp_path / "copy"
    yy, xx = np.mgrid[0:32, 0:32]
    for split, name in (("train", "cat"), ("test", "dog")):
        (first / split / name).mkdir(parents=True)
        for i in range(2):  # smooth colour gradients, like a photo's
            smooth = np.stack([128 + 60 * np.sin(xx / 5 + i), 128 + 50 * np.cos(yy / 6), 100 + 40 * np.sin((xx + yy) / 7)], -1)
            Image.fromarray(smooth.astype(np.uint8)).save(first / split / name / f"{i:04d}.jpg", quality=75)
    fresh = tmp_path / "fresh"
    assert jpeg_cost.fresh_pass(first, fresh) == 4
    assert jpeg_cost.fresh_pass(first, fresh) == 4  # a rerun finds them done
    out = Image.open(fresh / "train/cat/0000.png")
    assert out.size == (32, 32) and out.format == "PNG"
    # the copy's own grid gives almost nothing back; a shifted grid is a real lossy pass
    assert jpeg_cost.same_grid_change(first) < 0.5 < jpeg_cost.pixel_change(first, fresh) < 20


def test_weight_averages_track_every_weight_and_score_each_average():
    import warmup_ema_screen

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    x = np.array([[1, 0], [0, 1]] * 8, np.float32)
    y = np.array([0, 1] * 8)
    averages = warmup_ema_screen.WeightAverages((0.5,), x, y)
    averages.set_model(model)
    start = [w.copy() for w in model.get_weights()]
    averages.on_train_batch_end(0)  # the first batch starts the average
    model.set_weights([w + 2 for w in start])
    averages.on_train_batch_end(1)  # 0.5 * start + 0.5 * (start + 2)
    np.testing.assert_allclose(averages.averages[0.5][0], start[0] + 1, atol=1e-6)
    averages.on_epoch_end(0)
    assert set(averages.rows[0]) == {"epoch", "trained", "ema 0.5"}
    assert all(0 <= averages.rows[0][k] <= 1 for k in ("trained", "ema 0.5"))
    np.testing.assert_allclose(model.get_weights()[0], start[0] + 2)  # the trained weights are back


def test_cpu_threads_sums_onednn_time_per_primitive_kind_and_step():
    import cpu_threads

    line = "onednn_verbose,v1,primitive,exec,cpu,{kind},impl,{prop},src:bf16,,,mb128,{ms}"
    stdout = "\n".join([
        line.format(kind="convolution", prop="forward_training", ms=9.0),   # before the marker: warm-up, not counted
        "CPU-THREADS-START",
        line.format(kind="convolution", prop="forward_training", ms=3.0),
        line.format(kind="convolution", prop="backward_weights", ms=5.0),
        line.format(kind="convolution", prop="forward_training", ms=1.0),
        line.format(kind="reorder", prop="undef", ms=0.5),
        "onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,impl,forward_training,,,,,7.0",   # creation, not execution
        "CPU-THREADS-END 12.50",
    ])
    per_kind, step_ms = cpu_threads.primitive_times(stdout, steps=2)
    assert per_kind == {"convolution forward_training": 2.0, "convolution backward_weights": 2.5, "reorder": 0.25}
    assert step_ms == 12.5
