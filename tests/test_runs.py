"""The committed trained models by name, and TensorFlow's start-up lines kept out of stderr."""

import os
import platform
import subprocess
import sys
from pathlib import Path

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
        runs.load_trained("resnet164v2")  # a name no committed run has


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



@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN's default differs off x86")
def test_importing_the_package_turns_on_onednn_on_x86_unless_the_user_chose():
    # TensorFlow leaves oneDNN off on x86 CPUs without AVX-512 VNNI/BF16 or AMX, and falls back to slower kernels
    code = "import resnet_utils, os; from resnet_utils import hardware; print(os.environ['TF_ENABLE_ONEDNN_OPTS'], hardware.onednn_enabled())"
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    for chosen, expected in ((None, "1 True"), ("0", "0 False")):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                                env=env if chosen is None else {**env, "TF_ENABLE_ONEDNN_OPTS": chosen})
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == expected.split(), (chosen, result.stdout)

def _fake_run(folder, name, accuracy, **identity):
    import json
    run = folder / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"identity": {"arch": "cifar", "n": 3, "version": 1, "shortcut": "projection",
                                                              "schedule": "fast", "seed": 0, **identity}}))
    (run / "metrics.json").write_text(json.dumps({"status": "complete", "model": "resnet20v1", "epochs_completed": 10,
                                                  "test_accuracy_last": accuracy}))


def test_runs_table_says_depth_seed_and_recipe_and_seeds_are_summarised(tmp_path):
    from resnet_utils import training

    default = dict(training.DEFAULT_RECIPE["fast"])
    _fake_run(tmp_path, "r20", 0.80, **default)
    _fake_run(tmp_path, "r20-seed1", 0.82, seed=1, **default)
    _fake_run(tmp_path, "r20-seed2", 0.84, seed=2, **default)
    _fake_run(tmp_path, "old", 0.70)  # made before the recipe was recorded
    _fake_run(tmp_path, "v2", 0.75, n=6, version=2, **{**default, "learning_rate": 0.4})
    before_warmup = {k: v for k, v in default.items() if k != "warmup"}  # recorded before the field existed
    _fake_run(tmp_path, "no-warmup-field", 0.81, **before_warmup)
    _fake_run(tmp_path, "long-warmup", 0.83, **{**default, "warmup": 0.3})
    table = runs.runs_table(runs.load_runs(tmp_path))
    assert table.loc["r20-seed2", "seed"] == 2 and table.loc["v2", "depth"] == 56 and table.loc["old", "depth"] == 20
    assert list(table.loc[["r20", "old", "v2", "no-warmup-field", "long-warmup"], "recipe"]) == [
        "default", "previous default", "fast: lr 0.4, wd 0.0005, ls 0.1, bn 0.9, warm-up 0.05", "default",
        "fast: lr 0.2, wd 0.0005, ls 0.1, bn 0.9, warm-up 0.3"]
    summary = runs.seed_summary(table)
    assert summary.loc["r20", "seeds"] == 3 and summary.loc["old", "seeds"] == 1
    assert summary.loc["r20", "mean_%"] == pytest.approx(82.0) and summary.loc["r20", "std_%"] == pytest.approx(2.0)
    assert (summary.loc["r20", "min_%"], summary.loc["r20", "max_%"]) == (80.0, 84.0)


def test_short_machine_drops_trademarks_and_clock_but_keeps_the_cores():
    assert runs.short_machine("Intel(R) Xeon(R) Processor (1 of 2 cores)") == "Intel Xeon (1 of 2 cores)"
    assert runs.short_machine("Intel(R) Core(TM) i7 CPU @ 2.60GHz (8 cores)") == "Intel Core(TM) i7 (8 cores)"


# --- a run's identity, old folders included, and finding a committed run by it ----------------------


def test_every_finished_committed_run_has_a_complete_identity_once_filled():
    from resnet_utils.training import IDENTITY_FIELDS

    finished = {name: run for name, run in runs.load_runs(runs.results_dir()).items() if run.finished}
    assert len(finished) > 10
    for name, run in finished.items():
        identity = runs.identity_of(run)
        missing = [field for field in IDENTITY_FIELDS if field not in identity]
        assert not missing, f"{name}: {missing}"
        assert identity["learning_rate"] is not None and identity["warmup"] is not None, name
        recorded = run.config["identity"]
        assert all(identity[k] == v for k, v in recorded.items() if v is not None), name  # recorded values are kept


def test_a_folder_from_before_warmup_takes_the_fast_schedules_old_warmup():
    run = runs.load_run(runs.results_dir() / "resnet20v1-default-30ep")
    assert "warmup" not in run.config["identity"]  # the folder predates the field: the case this guards
    from resnet_utils.training import FAST_WARMUP

    assert runs.identity_of(run)["warmup"] == FAST_WARMUP


def test_notebook_06s_default_configuration_finds_its_committed_run():
    from resnet_utils.training import TrainConfig

    found = runs.find_run(TrainConfig(out="").identity())
    assert found is not None and found.name == "resnet20v1-default-30ep"
    assert runs.find_run(TrainConfig(out="", epochs=4).identity()).name == "resnet20v1-default-4ep"
    assert runs.find_run(TrainConfig(out="", seed=12345).identity()) is None  # no committed run has that seed
    assert runs.find_run(TrainConfig(out="").identity(), ignore=()) is None  # its data source is "folder", not "auto"


def test_find_run_ignores_unfinished_runs(tmp_path):
    import json
    import shutil

    shutil.copytree(runs.results_dir() / "resnet20v1-default-4ep", tmp_path / "copy", ignore=shutil.ignore_patterns("*.keras", "*.npz"))
    identity = runs.identity_of(runs.load_run(tmp_path / "copy"))
    assert runs.find_run(identity, tmp_path).name == "copy"
    metrics = json.loads((tmp_path / "copy" / "metrics.json").read_text())
    (tmp_path / "copy" / "metrics.json").write_text(json.dumps({**metrics, "status": "running"}))
    assert runs.find_run(identity, tmp_path) is None

# --- where the committed results are, whatever the working directory ----------------------------

REPOSITORY = Path(__file__).resolve().parents[1]


def test_results_are_found_from_the_package_not_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # e.g. papermill run from elsewhere: "../results" would point nowhere
    assert runs.repository_root() == REPOSITORY
    assert runs.results_dir() == REPOSITORY / "results"
    assert "resnet20v1-default-30ep" in runs.trained_models().index
    assert runs.runs_dir() == REPOSITORY / "runs"


def test_an_argument_then_the_environment_choose_the_folders(monkeypatch, tmp_path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir(), theirs.mkdir()
    monkeypatch.setenv(runs.RESULTS_ENV, str(theirs))
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "new-runs"))
    assert runs.results_dir() == theirs and runs.results_dir(mine) == mine
    assert runs.trained_models().empty  # read from $RESNET_RESULTS_DIR, which holds no runs
    assert runs.runs_dir() == tmp_path / "new-runs" and runs.runs_dir(mine) == mine


@pytest.mark.parametrize("setting", ["argument", "environment"])
def test_a_results_folder_that_is_not_there_is_one_line_naming_it(monkeypatch, tmp_path, setting):
    missing = tmp_path / "no-such-folder"
    if setting == "environment":
        monkeypatch.setenv(runs.RESULTS_ENV, str(missing))
    with pytest.raises(runs.ResultsNotFound) as error:
        runs.load_trained("resnet20v1", missing if setting == "argument" else None)
    message = str(error.value)
    assert "no-such-folder" in message and "not a folder" in message and "\n" not in message
    assert message.startswith("$RESNET_RESULTS_DIR is" if setting == "environment" else "results_dir is")


def test_installed_outside_the_repository_load_trained_says_what_to_set(monkeypatch, tmp_path):
    installed = tmp_path / "site-packages" / "resnet_utils"
    installed.mkdir(parents=True)
    assert runs.repository_root(installed) is None
    assert runs.repository_root(REPOSITORY / "resnet_utils") == REPOSITORY
    monkeypatch.setattr(runs, "repository_root", lambda package_dir=None: None)
    for call in (lambda: runs.load_trained("resnet20v1"), runs.trained_models):
        with pytest.raises(runs.ResultsNotFound, match="installed outside its repository.*set RESNET_RESULTS_DIR") as error:
            call()
        assert "\n" not in str(error.value)
    monkeypatch.chdir(tmp_path)
    assert runs.runs_dir() == tmp_path / "runs"  # new runs go beside the notebook instead (Colab: /content/runs)

# --- issue 24: readers survive one bad folder ------------------------------------------------------------

import json  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402

COMMITTED = runs.results_dir() / "resnet20v1-default-30ep"


def _committed_copy(root, name="good"):
    shutil.copytree(COMMITTED, root / name)
    return root / name


@pytest.mark.parametrize("file,content,reason", [
    ("config.json", b"\x00garbage", "not JSON"),
    ("log.csv", b"epoch,loss\n\xff\xfe0,1.0\n", "not text"),
    ("metrics.json", b'{"status": "complete", "test_acc', "not JSON"),
    ("metrics.json", b"[1, 2]", "a JSON list, not an object"),
])
def test_one_damaged_folder_is_skipped_with_one_warning_and_the_others_load(tmp_path, file, content, reason):
    _committed_copy(tmp_path)
    bad = _committed_copy(tmp_path, "bad")
    (bad / file).write_bytes(content)
    with pytest.warns(UserWarning, match=rf"Skipping the run folder .*bad: .*{file} is damaged \({reason}") as caught:
        loaded = runs.load_runs(tmp_path)
    assert list(loaded) == ["good"] and len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(runs.trained_models(tmp_path).index) == ["good"]
        assert runs.load_trained("resnet20v1", tmp_path).run.name == "good"


def test_a_folder_whose_config_was_deleted_warns_instead_of_vanishing(tmp_path):
    _committed_copy(tmp_path)
    (_committed_copy(tmp_path, "lost") / "config.json").unlink()
    (tmp_path / "figures").mkdir()  # a folder without run files: no warning
    with pytest.warns(UserWarning, match=r"Skipping the run folder .*lost: it holds log.csv, best.keras.* but no config.json") as caught:
        assert list(runs.load_runs(tmp_path)) == ["good"]
    assert len(caught) == 1


@pytest.mark.parametrize("damage,message", [
    (lambda run: (run / "mean.npy").unlink(), r"mean.npy is damaged \(missing: .*Rerun its command"),
    (lambda run: np.save(run / "mean.npy", np.zeros(3, np.float32)), r"mean.npy is damaged \(shape \(3,\), not the \(32, 32, 3\)"),
    (lambda run: (run / "best.keras").write_bytes((run / "best.keras").read_bytes()[:5000]), r"best.keras is damaged \(cannot load it as a Keras model"),
])
def test_load_trained_names_the_damaged_file(tmp_path, damage, message):
    run = _committed_copy(tmp_path)
    damage(run)
    with pytest.raises(runs.DamagedFile, match=message):
        runs.load_trained("good", tmp_path)


def test_load_trained_refuses_a_model_linked_from_elsewhere(tmp_path):
    run = _committed_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere.keras"
    (run / "best.keras").rename(elsewhere)
    (run / "best.keras").symlink_to(elsewhere)
    with pytest.raises(runs.DamagedFile, match="a symbolic link to"):
        runs.load_trained("good", tmp_path)


def test_predictions_of_a_garbage_npz_name_the_file(tmp_path):
    run = _committed_copy(tmp_path)
    (run / "predictions.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(runs.DamagedFile, match=r"predictions.npz is damaged .*probabilities and labels"):
        runs.load_run(run).predictions()
    assert json.loads((run / "config.json").read_text())  # the rest still reads


# --- issue 25: data flows one way ------------------------------------------------------------------------


def _package_imports() -> dict[str, set[str]]:
    """Which resnet_utils modules each module imports (at any level, lazily too), from its source."""
    import ast
    from pathlib import Path

    package = Path(runs.__file__).parent
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name in modules:
        found = set()
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "resnet_utils":
                    found |= {alias.name for alias in node.names if alias.name in modules}
                elif node.module.startswith("resnet_utils."):
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("resnet_utils.")}
        graph[name] = found - {name}
    return graph


def test_no_import_cycle_among_the_package_modules_and_readers_never_import_the_trainer():
    graph = _package_imports()
    assert "training" not in graph["runs"] and "training" not in graph["run_folder"]
    assert graph["recipe"] <= {"_quiet"} and graph["hardware"] <= {"_quiet"}

    def reach(start, seen=None):
        seen = set() if seen is None else seen
        for nxt in graph.get(start, ()):
            if nxt not in seen:
                seen.add(nxt)
                reach(nxt, seen)
        return seen

    cycles = sorted(name for name in graph if name in reach(name))
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_a_bfloat16_model_predicts_in_float32_on_a_cpu_without_native_bfloat16(monkeypatch):
    # there bfloat16 is slower than float32, and TensorFlow writes an error line at every call
    from resnet_utils import data, hardware, models

    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: True)
    native = runs.load_trained("resnet20v1-default-30ep")   # trained in mixed bfloat16 (its config.json)
    assert any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in native.model.layers)
    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: False)
    converted = runs.load_trained("resnet20v1-default-30ep")
    assert {layer.dtype_policy.name for layer in converted.model.layers} == {"float32"}
    assert [layer.name for layer in converted.model.layers] == [layer.name for layer in native.model.layers]
    images = data.load_cifar10("sample", verbose=False).x_test[:100]
    assert np.mean(converted.predict(images).argmax(1) == native.predict(images).argmax(1)) >= 0.95
    assert models.with_dtype_policy(converted.model, "float32").count_params() == 274_442
