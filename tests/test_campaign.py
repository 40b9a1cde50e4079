"""results/campaign.py: one command for every run the notebooks read, which skips and resumes."""

import fcntl
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
import campaign  # noqa: E402

from resnet_utils import models, train  # noqa: E402


def test_every_planned_run_is_a_valid_train_command_with_a_name_that_says_what_it_is():
    names = [p.name for p in campaign.PLAN]
    assert len(set(names)) == len(names)
    for planned in campaign.PLAN:
        args = train.parse_args([*planned.args, "--out", "x"])
        name = planned.name.removeprefix("screens/")
        if planned.name.startswith("screens/"):  # a recipe screen: short, and never on the test set
            warmup = f"-warmup{args.warmup:g}" if args.warmup is not None else ""
            assert args.validation_split == 0.1 and name.endswith(f"-lr{args.learning_rate:g}{warmup}-{args.epochs}ep"), planned.name
        else:
            assert args.epochs >= 10, planned.name  # the budget: at least 10 epochs for every comparison
            assert args.validation_split == 0.0, planned.name
        assert (args.shortcut == "none") == name.startswith("plain"), planned.name
        if args.arch == "cifar":
            assert f"{args.depth}" in name and f"v{args.version}" in name or name.startswith("plain")
            models.n_from_depth(args.depth, args.version)  # a depth the family has
        else:
            assert name.startswith(f"{args.arch}-{args.stem}-stem"), planned.name
        assert ("--seed" in planned.args) == ("-seed" in planned.name)
    cpu = {p.name for p in campaign.PLAN if p.part == "cpu"}
    # The minimum: depth 20-56 residual, plain-20/56, v1 against v2, both stems, three seeds.
    for must in ("resnet20v1-10ep", "resnet32v1-10ep", "resnet44v1-10ep", "resnet56v1-10ep", "plain20-10ep", "plain56-10ep",
                 "resnet56v2-10ep", "resnet18-imagenet-stem-10ep", "resnet50-imagenet-stem-10ep",
                 "resnet20v1-10ep-seed2", "plain20-10ep-seed2", "resnet50-imagenet-stem-10ep-seed2"):
        assert must in cpu


def test_without_a_gpu_the_cifar_stem_nets_train_beside_the_others_on_one_subset():
    """The issue's fallback: the CIFAR-stem ResNet18/50 on a subset, beside the same subset's ResNet20,
    ResNet56 and ImageNet-stem nets, all on the same images (one size, one seed) and epochs."""
    subset = [train.parse_args([*p.args, "--out", "x"]) for p in campaign.PLAN if p.question == campaign.SUBSET]
    assert {(a.arch, a.stem if a.arch != "cifar" else a.depth) for a in subset} == {
        ("cifar", 20), ("cifar", 56), ("resnet18", "imagenet"), ("resnet18", "cifar"), ("resnet50", "imagenet"), ("resnet50", "cifar")}
    assert {(a.limit_train, a.seed, a.epochs, a.schedule) for a in subset} == {(campaign.SUBSET_IMAGES, 0, campaign.CPU_EPOCHS, "fast")}
    assert all(p.part == "cpu" and "-10k-" in p.name for p in campaign.PLAN if "--limit-train" in p.args)


def test_status_reads_the_run_folder(tmp_path):
    folder = tmp_path / "run"
    assert campaign.status(folder) == "to do"
    folder.mkdir()
    (folder / "log.csv").write_text("epoch,accuracy\n0,0.1\n1,0.2\n")
    assert campaign.status(folder) == "epoch 2"
    with open(folder / ".lock", "w") as held:  # another trainer holds the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert campaign.status(folder) == "busy"
    assert campaign.status(folder) == "epoch 2"  # the lock ends with its holder
    (folder / "metrics.json").write_text(json.dumps({"status": "complete"}))
    assert campaign.status(folder) == "done"


def test_recorded_commands_carry_no_path_of_this_machine():
    command = campaign.PLAN[0].command(campaign.data_arguments(None, None), campaign.RESULTS)
    assert command[command.index("--out") + 1] == f"results/{campaign.PLAN[0].name}"
    assert command[command.index("--data") + 1] == "keras"  # no local copy: Keras downloads it


def test_a_missing_data_folder_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="not a folder.*leave it out"):
        campaign.data_arguments(str(tmp_path / "nowhere"), None)
    with pytest.raises(SystemExit, match="no planned run matches"):
        campaign.select("cpu", ["resnet999"])


def test_only_takes_a_full_name_exactly_and_a_part_of_names_as_a_filter():
    assert [p.name for p in campaign.select("cpu", ["resnet50-imagenet-stem-10ep"])] == ["resnet50-imagenet-stem-10ep"]
    subset = [p.name for p in campaign.PLAN if p.part == "cpu" and "--limit-train" in p.args]
    assert len(subset) >= 6 and [p.name for p in campaign.select("cpu", ["10k"])] == subset


def test_the_campaign_runs_skips_what_is_done_and_stops_on_time(tmp_path, monkeypatch, capsys):
    tiny = campaign.Planned("tiny", ("--n", "1", "--epochs", "1", "--batch-size", "32", "--limit-train", "64"), "cpu", "a test")
    monkeypatch.setattr(campaign, "PLAN", (tiny,))
    assert campaign.main(["--out", str(tmp_path), "--data", "sample", "--stop-after", "0"]) == 0
    assert "not started" in capsys.readouterr().out and not (tmp_path / "tiny").exists()
    assert campaign.main(["--out", str(tmp_path), "--data", "sample"]) == 0
    assert "tiny: finished" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "tiny" / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["epochs_completed"] == 1
    assert campaign.main(["--out", str(tmp_path), "--data", "sample"]) == 0
    assert "tiny: done, skipped" in capsys.readouterr().out
    campaign.main(["--out", str(tmp_path), "--list"])
    assert "tiny  cpu  done" in capsys.readouterr().out


def test_the_readme_tables_are_the_run_folders():
    """Every finished run in results/ is in the results table of results/README.md, with its numbers
    as its files say; the landing page links to it instead of holding a copy."""
    assert campaign.TABLE_FILES == (campaign.RESULTS / "README.md",)
    landing = (campaign.RESULTS.parent / "README.md").read_text()
    assert campaign.TABLE_START not in landing and "(results/README.md)" in landing
    table = campaign.results_table()
    for path in campaign.TABLE_FILES:
        text = path.read_text()
        block = text[text.index(campaign.TABLE_START) + len(campaign.TABLE_START):text.index(campaign.TABLE_END)]
        assert block.strip() == table.strip(), f"{path.name} is stale: run python results/campaign.py --write-tables"
    for folder in campaign.RESULTS.glob("*/metrics.json"):
        metrics = json.loads(folder.read_text())
        if metrics.get("status") == "complete" and (folder.parent / "config.json").exists():
            row = next(line for line in table.splitlines() if line.startswith(f"| `{folder.parent.name}` |"))
            assert f"| {100 * metrics['test_accuracy_last']:.2f}% |" in row and f"| {metrics['train_images']:,} |" in row


def test_the_landing_pages_headline_numbers_are_the_committed_runs(tmp_path):
    """Each accuracy the README leads with is the final epoch's of the run folders it names."""
    import importlib.util

    readme = (campaign.RESULTS.parent / "README.md").read_text()
    final = {p.parent.name: 100 * json.loads(p.read_text())["test_accuracy_last"] for p in campaign.RESULTS.glob("*/metrics.json")}
    single = ["plain20-10ep", "plain56-10ep", "resnet20v1-10ep", "resnet56v1-10ep", "resnet20v1-default-30ep"]
    for run in single:
        assert f"{final[run]:.2f}%" in readme, run
    seeds = {"resnet20v1-10ep": "ResNet20", "resnet50-imagenet-stem-10ep": "ResNet50"}
    for group in seeds:
        values = [final[name] for name in (group, f"{group}-seed1", f"{group}-seed2")]
        assert f"{sum(values) / 3:.2f}% on average ({min(values):.2f}-{max(values):.2f}%)" in readme, group
    # its figure is drawn from those runs by the committed script
    spec = importlib.util.spec_from_file_location("readme_figure", campaign.RESULTS.parent / "docs" / "readme_figure.py")
    figure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figure)
    assert figure.draw(tmp_path / "figure.png").stat().st_size > 10_000
    assert f"]({figure.FIGURE.relative_to(campaign.RESULTS.parent)})" in readme


def test_a_big_resume_state_is_packed_into_parts_and_joined_back_on_a_fresh_clone(tmp_path):
    folder = tmp_path / "resnet50-imagenet-stem-30ep"
    folder.mkdir()
    state = bytes(range(256)) * 41 + b"end"   # 10,499 bytes: three parts of 4,096 at most
    (folder / "resume.keras").write_bytes(state)
    files = campaign.pack_state(folder, part_bytes=4096)
    assert [f.name for f in files] == ["resume.keras.part-000", "resume.keras.part-001", "resume.keras.part-002",
                                      "resume.parts.json"]
    assert max((folder / f"resume.keras.part-00{i}").stat().st_size for i in range(3)) <= 4096
    assert not campaign.unpack_state(folder)          # resume.keras is there: nothing to do
    (folder / "resume.keras").unlink()                 # a fresh clone holds only what was committed
    assert campaign.unpack_state(folder) and (folder / "resume.keras").read_bytes() == state
    # a damaged part is refused with what to do, and no resume.keras is written from it
    (folder / "resume.keras").unlink()
    (folder / "resume.keras.part-001").write_bytes(b"x" * 4096)
    with pytest.raises(SystemExit, match="do not join"):
        campaign.unpack_state(folder)
    assert not (folder / "resume.keras").exists()
    (folder / "resume.keras.part-002").unlink()
    with pytest.raises(SystemExit, match="lacks resume.keras.part-002"):
        campaign.unpack_state(folder)
    # a small state is committed whole: packing it leaves no parts (and removes stale ones)
    (folder / "resume.keras").write_bytes(b"small")
    assert campaign.pack_state(folder, part_bytes=4096) == []
    assert sorted(p.name for p in folder.iterdir()) == ["resume.keras"]
