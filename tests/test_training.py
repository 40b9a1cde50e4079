"""Schedules, configs, train() into a run folder, resume, refusal, divergence, reproducibility."""

import json
import math

import keras
import numpy as np
import pytest

from resnet_utils import data, hardware, models, schedules, training
from resnet_utils.training import RunFolderError, TrainConfig, TrainingDiverged, make_schedule
from helpers import small_config


def lr(schedule, step):
    return float(schedule(step))


def test_keras_example_schedule_both_sides_of_every_boundary():
    spe = 10  # steps per epoch
    schedule = make_schedule("keras", 200, spe)
    # the example lowers the rate when the (0-based) epoch exceeds 80, 120, 160, 180
    for epoch, before, after in ((81, 1e-3, 1e-4), (121, 1e-4, 1e-5), (161, 1e-5, 1e-6), (181, 1e-6, 5e-7)):
        assert lr(schedule, epoch * spe - 1) == pytest.approx(before)
        assert lr(schedule, epoch * spe) == pytest.approx(after)
    assert lr(schedule, 0) == pytest.approx(1e-3)
    assert lr(schedule, 200 * spe - 1) == pytest.approx(5e-7)


def test_paper_schedule_32k_48k_64k():
    schedule = make_schedule("paper", 160, 400)  # 64,000 iterations
    assert lr(schedule, 0) == pytest.approx(0.1)
    assert lr(schedule, 31_999) == pytest.approx(0.1)
    assert lr(schedule, 32_000) == pytest.approx(0.01)
    assert lr(schedule, 47_999) == pytest.approx(0.01)
    assert lr(schedule, 48_000) == pytest.approx(0.001)
    assert lr(schedule, 63_999) == pytest.approx(0.001)


def test_fast_schedule_warms_up_then_decays_to_zero():
    schedule = make_schedule("fast", 20, 100, peak=0.1)  # 2,000 steps, 100 of warm-up
    assert lr(schedule, 0) == pytest.approx(0.0)
    assert lr(schedule, 50) == pytest.approx(0.05, rel=1e-3)
    assert lr(schedule, 100) == pytest.approx(0.1, rel=1e-3)
    default_peak = training.DEFAULT_RECIPE["fast"]["learning_rate"]
    assert lr(make_schedule("fast", 20, 100), 100) == pytest.approx(default_peak, rel=1e-3)
    values = [lr(schedule, s) for s in range(100, 2001, 100)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(0.0, abs=1e-6)


def test_the_fast_warm_up_is_a_fraction_of_all_steps():
    assert training.FAST_WARMUP == 0.05
    for total in (1, 19, 20, 21, 59, 60, 1400, 3520, 11730):  # the default keeps every run's old warm-up, total // 20
        assert make_schedule("fast", 1, total).warmup_steps == total // 20
    long = make_schedule("fast", 10, 100, peak=0.2, warmup=0.3)  # one-cycle's shape: 300 steps up, 700 down
    assert long.warmup_steps == 300 and lr(long, 150) == pytest.approx(0.1, rel=1e-3)
    assert lr(long, 300) == pytest.approx(0.2, rel=1e-3) and lr(long, 1000) == pytest.approx(0.0, abs=1e-6)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="warmup is a fraction of the training steps"):
            make_schedule("fast", 10, 100, warmup=bad)


def test_schedules_round_trip_through_serialization():
    schedule = make_schedule("paper", 4, 10)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert [lr(restored, s) for s in (0, 19, 20, 29, 30)] == [lr(schedule, s) for s in (0, 19, 20, 29, 30)]


@pytest.mark.parametrize("kwargs,message", [
    ({"epochs": 0}, "epochs must be a positive whole number"),
    ({"epochs": -3}, "epochs must be a positive whole number"),
    ({"batch_size": 0}, "batch_size must be a positive whole number"),
    ({"batch_size": 12.5}, "batch_size must be a positive whole number"),
    ({"schedule": "cosine"}, "Unknown schedule 'cosine'; choose one of keras, paper, fast"),
    ({"n": 0}, "n must be a whole number >= 1"),
    ({"version": 3}, "version must be 1 or 2"),
    ({"shortcut": "dense"}, "shortcut must be one of"),
    ({"arch": "vgg"}, "Unknown arch"),
    ({"data": "web"}, "Unknown data source"),
])
def test_bad_configs_are_refused_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(out=str(tmp_path / "run"), **kwargs)
    assert not (tmp_path / "run").exists()


def test_a_tiny_training_run_lowers_the_loss():
    sample = data.load_sample()
    x, y = sample.x_train[::10], sample.y_train[::10]  # 100 images, all classes
    mean = data.pixel_mean(x)
    keras.utils.set_random_seed(0)
    from resnet_utils.models import build_resnet

    model = build_resnet(1, 1)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(data.make_dataset(x, y, mean, 25), epochs=12, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["accuracy"][-1] > 0.3


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sample):
    out = tmp_path_factory.mktemp("runs") / "r8"
    metrics = training.train(small_config(out), sample)
    return out, metrics


def test_train_writes_the_run_folder_contract(finished_run):
    out, metrics = finished_run
    for name in ("config.json", "log.csv", "best.keras", "last.keras", "best.json", "predictions.npz", "metrics.json"):
        assert (out / name).exists(), name
    assert not (out / "backup").exists() and not (out / "resume.keras").exists()
    log = training.read_log(out / "log.csv")
    assert [row["epoch"] for row in log] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_time_s"} <= set(log[0])
    assert metrics["status"] == "complete" and metrics["epochs_completed"] == 2
    assert metrics["parameters"] == 78_666  # ResNet8 v1 (n=1)
    assert metrics["test_accuracy_best"] == pytest.approx(max(r["val_accuracy"] for r in log), abs=1e-6)
    assert metrics["hardware"]["cpu_count"] >= 1 and metrics["versions"]["keras"].startswith("3.")
    assert metrics["command"].startswith("python -m resnet_utils.train --n 1 --version 1 --schedule fast --epochs 2")
    with np.load(out / "predictions.npz") as saved:
        assert saved["probabilities"].shape == (500, 10) and saved["labels"].shape == (500,)
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "resnet8v1" and config["identity"]["epochs"] == 2


def test_a_finished_run_is_not_trained_again(finished_run, sample, capsys):
    out, metrics = finished_run
    before = (out / "log.csv").read_text()
    again = training.train(small_config(out), sample)
    assert "already holds the finished run" in capsys.readouterr().out
    assert again == metrics and (out / "log.csv").read_text() == before


def test_a_folder_holding_another_run_is_refused_unless_restarted(finished_run, sample, tmp_path):
    out, _ = finished_run
    with pytest.raises(RunFolderError, match=r"holds a different run \(n: folder has 1, asked 2.*--restart"):
        training.train(small_config(out, n=2), sample)
    with pytest.raises(RunFolderError, match="schedule: folder has 'fast', asked 'paper'"):
        training.train(small_config(out, schedule="paper"), sample)
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy)
    metrics = training.train(small_config(copy, epochs=1, restart=True), sample)
    assert metrics["epochs_completed"] == 1
    assert len(training.read_log(copy / "log.csv")) == 1


def test_a_folder_recorded_before_the_warm_up_field_keeps_its_five_percent(finished_run, sample, tmp_path):
    import shutil

    out, metrics = finished_run
    old = tmp_path / "old"
    shutil.copytree(out, old)
    config = json.loads((old / "config.json").read_text())
    del config["identity"]["warmup"]  # as the campaign's first runs recorded it
    (old / "config.json").write_text(json.dumps(config))
    assert training.train(small_config(old), sample) == metrics  # the same run: found finished
    with pytest.raises(RunFolderError, match="warmup: folder has 0.05, asked 0.3"):
        training.train(small_config(old, warmup=0.3), sample)


def test_warm_up_is_a_recipe_field_of_the_fast_schedule_only():
    config = TrainConfig(out="unused", warmup=0.3)
    assert config.identity()["warmup"] == 0.3 and "--warmup 0.3" in config.command()
    assert TrainConfig(out="unused").warmup == training.DEFAULT_RECIPE["fast"]["warmup"] == training.FAST_WARMUP
    assert TrainConfig(out="unused", schedule="paper").warmup == 0.0
    with pytest.raises(ValueError, match="warmup applies to the fast schedule only"):
        TrainConfig(out="unused", schedule="paper", warmup=0.1)
    with pytest.raises(ValueError, match="warmup must be a number from 0 up to"):
        TrainConfig(out="unused", warmup=1.0)
    with pytest.raises(ValueError, match="keras schedule has no warm-up"):
        make_schedule("keras", 10, 10, warmup=0.1)
    model, _ = training.compile_model(TrainConfig(out="unused", n=1, epochs=10, warmup=0.3), steps_per_epoch=10)
    assert model.optimizer._learning_rate.warmup_steps == 30  # 30% of 100 steps


def test_an_unwritable_output_folder_is_reported_before_training(tmp_path, sample, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(data, "load_cifar10", lambda *a, **k: pytest.fail("data was loaded"))
    with pytest.raises(RunFolderError, match="Cannot write to the output folder"):
        training.train(small_config(blocker / "run"))


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoints(tmp_path, sample, monkeypatch):
    # A schedule that is sane for the first epoch (3 steps) and absurd afterwards.
    monkeypatch.setattr(schedules, "make_schedule", lambda name, epochs, spe, peak=None, warmup=0.05: training.StepDecay(0.01, [spe], [1.0, 1e30]))
    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match="NaN or infinite in epoch 2.*best.keras and last.keras"):
        training.train(small_config(out, epochs=4), sample)
    for name in ("best.keras", "last.keras"):
        model = keras.models.load_model(out / name)
        assert all(np.isfinite(w).all() for w in model.get_weights())
    assert json.loads((out / "best.json").read_text())["epoch"] == 1
    assert json.loads((out / "metrics.json").read_text())["status"] == "diverged"
    from resnet_utils import run_folder

    assert run_folder.read_state_record(out / "resume.keras")["epochs_done"] == 1  # the last good epoch


def test_same_seed_gives_the_same_first_epoch_loss_on_cpu(tmp_path, sample):
    losses = []
    for name in ("a", "b"):
        training.train(small_config(tmp_path / name, epochs=1, seed=7), sample)
        losses.append(training.read_log(tmp_path / name / "log.csv")[0]["loss"])
    assert losses[0] == losses[1]
    training.train(small_config(tmp_path / "c", epochs=1, seed=8), sample)
    assert training.read_log(tmp_path / "c" / "log.csv")[0]["loss"] != losses[0]
    assert math.isfinite(losses[0])


# --- the fast default path (issue 7) --------------------------------------------------------------


def test_the_default_recipe_is_the_fast_schedule():
    config = TrainConfig(out="unused")
    assert (config.schedule, config.epochs, config.batch_size) == ("fast", 30, 128)
    assert (config.mixed_precision, config.xla) == ("auto", "auto")


@pytest.mark.parametrize("setting,expected", [("off", "float32"), ("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16")])
def test_explicit_precision_settings(setting, expected):
    assert training.precision_policy(setting) == expected


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_a_cpu_follows_native_bfloat16(monkeypatch, native):
    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: native)
    assert training.precision_policy("auto") == ("mixed_bfloat16" if native else "float32")
    assert training.precision_policy("on") == "mixed_bfloat16"  # asked for: correct, if slower


def test_bad_precision_and_steps_per_execution_are_refused(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision must be one of auto, on, off, bfloat16, float16; got 'half'"):
        TrainConfig(out=str(tmp_path / "run"), mixed_precision="half")
    with pytest.raises(ValueError, match="steps_per_execution must be a positive whole number"):
        TrainConfig(out=str(tmp_path / "run"), steps_per_execution=0)
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        training.precision_policy("fp8")


def test_mixed_bfloat16_training_keeps_float32_weights_and_outputs(tmp_path, sample):
    out = tmp_path / "bf16"
    metrics = training.train(small_config(out, epochs=1, mixed_precision="bfloat16", steps_per_execution=2), sample)
    config = json.loads((out / "config.json").read_text())
    assert config["precision_policy"] == "mixed_bfloat16" and config["steps_per_execution"] == 2
    assert [int(r["epoch"]) for r in training.read_log(out / "log.csv")] == [0]
    model = keras.models.load_model(out / "best.keras")
    assert {w.dtype.name for w in model.get_weights()} == {"float32"}  # variables stay float32
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16"
    probabilities = model.predict(sample.x_test[:8].astype("float32") / 255, verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert 0.0 <= metrics["test_accuracy_best"] <= 1.0


def test_compile_model_is_what_train_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: True)
    config = small_config(tmp_path / "unused")
    model, speed = training.compile_model(config, steps_per_epoch=3)
    assert speed == training.speed_settings(config)
    assert speed == {"precision_policy": "mixed_bfloat16", "xla": False, "steps_per_execution": 1}  # a CPU
    assert model.get_layer("conv1_conv").dtype_policy.name == "mixed_bfloat16"
    assert model.output.dtype == "float32" and model.steps_per_execution == 1
    assert keras.mixed_precision.global_policy().name == "float32"  # left as it was found


def test_recipe_settings_reach_the_compiled_model_without_changing_a_layer():
    config = TrainConfig(out="unused", n=1, learning_rate=0.3, weight_decay=6e-4, label_smoothing=0.2, bn_momentum=0.8)
    model, _ = training.compile_model(config, steps_per_epoch=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.kernel_regularizer.l2 == pytest.approx(3e-4) for layer in convs)  # gradient 6e-4 * w
    assert all(layer.momentum == 0.8 for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert model.count_params() == models.build_resnet(1, 1).count_params()
    assert float(model.optimizer.learning_rate.numpy()) >= 0.0 and model.loss.smoothing == 0.2
    assert "--learning-rate 0.3 --weight-decay 0.0006 --label-smoothing 0.2 --bn-momentum 0.8" in config.command()
    assert TrainConfig(out="unused").command().count("--") == 6  # the defaults are not spelled out


def test_smoothed_crossentropy_matches_kerass_one_hot_label_smoothing():
    y = np.array([0, 3, 9])
    p = np.random.default_rng(0).dirichlet(np.ones(10), size=3).astype("float32")
    ours = training.SmoothedSparseCrossentropy(0.1)(y, p)
    theirs = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(keras.ops.one_hot(y, 10), p)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


@pytest.mark.parametrize("values,message", [
    ({"learning_rate": -1.0}, "learning_rate must be a number"),
    ({"label_smoothing": 1.0}, "label_smoothing must be a number"),
    ({"weight_decay": "5e-4"}, "weight_decay must be a number"),
    ({"validation_split": 0.7}, "validation_split must be a fraction"),
])
def test_bad_recipe_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(out="unused", **values)


def test_validation_split_holds_out_the_same_share_of_every_class():
    labels = np.repeat(np.arange(10), 100)
    train, held_out = data.validation_split(labels, 0.1)
    assert len(held_out) == 100 and np.bincount(labels[held_out]).tolist() == [10] * 10
    assert len(np.intersect1d(train, held_out)) == 0 and len(train) + len(held_out) == 1000
    np.testing.assert_array_equal(held_out, data.validation_split(labels, 0.1)[1])


def test_hardware_description_records_the_cores_a_pinned_run_could_use():
    import os

    hardware = training.hardware_description()
    assert hardware["cores_used"] == len(os.sched_getaffinity(0)) <= hardware["cpu_count"]
