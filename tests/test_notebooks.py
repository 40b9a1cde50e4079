"""The committed notebooks: what "Run all" does, clean and short outputs, and papermill parameters."""

import ast
import json
import logging
from pathlib import Path

import nbformat
import pytest

from resnet_utils._quiet import is_startup_line

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_OUTPUT_BYTES = 50_000    # text: streams, tables, summaries (a progress bar or a full summary is far more)
MAX_IMAGE_BYTES = 500_000    # a figure's PNG (a grid of photos compresses badly)


def _cells(path, kind="code"):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == kind]


def test_there_are_eight_chapters():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 9)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_injected_parameters_cell(path):
    # A papermill-injected cell would override the parameters, so "Run all" would not do what the prose says.
    tags = [tag for cell in _cells(path) for tag in cell.metadata.get("tags", [])]
    assert "injected-parameters" not in tags
    assert tags.count("parameters") == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_plain_assignments(path):
    # papermill can only read (and override) `name = literal` lines; anything else gives "Unable to parse line".
    cell = next(c for c in _cells(path) if "parameters" in c.metadata.get("tags", []))
    for statement in ast.parse(cell.source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, ast.unparse(statement)
        assert isinstance(statement.targets[0], ast.Name), ast.unparse(statement)
        ast.literal_eval(statement.value)  # raises for anything but a literal


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_clean_and_short(path):
    for index, cell in enumerate(_cells(path)):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            images = {k: v for k, v in data.items() if k.startswith("image/")}
            text = {k: v for k, v in output.items() if k != "data"} | {k: v for k, v in data.items() if k not in images}
            size = len(json.dumps(text))
            assert size < MAX_OUTPUT_BYTES, f"{path.name} code cell {index}: a text output of {size:,} bytes"
            for kind, image in images.items():
                assert len(image) < MAX_IMAGE_BYTES, f"{path.name} code cell {index}: a {kind} of {len(image):,} bytes"
            if output.get("output_type") == "stream":
                startup = [line for line in output["text"].splitlines() if is_startup_line(line)]
                assert not startup, f"{path.name} code cell {index} shows TensorFlow's start-up lines: {startup[:2]}"
                assert "\r" not in output["text"], f"{path.name} code cell {index}: a progress bar (carriage returns)"
            assert output.get("output_type") != "error", f"{path.name} code cell {index} was committed with an error"


def _run_papermill(name, parameters, tmp_path, monkeypatch, caplog):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("RESNET_SMOKE", "1")
    source = next(p for p in NOTEBOOKS if p.name.startswith(name))
    out = tmp_path / source.name
    with caplog.at_level(logging.WARNING):
        papermill.execute_notebook(str(source), str(out), parameters=parameters, cwd=str(source.parent),
                                   kernel_name="python3", progress_bar=False)
    assert "Unable to parse" not in caplog.text
    text = "".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for cell in nbformat.read(out, as_version=4).cells if cell.cell_type == "code"
        for output in cell.get("outputs", []))
    return text


def test_papermill_n5_gives_resnet32(tmp_path, monkeypatch, caplog):
    text = _run_papermill("02", {"n": 5}, tmp_path, monkeypatch, caplog)
    assert "n = 5: resnet32v1, 32 weighted layers, 470,218 parameters" in text


def test_papermill_n12_gives_resnet110_v2(tmp_path, monkeypatch, caplog):
    text = _run_papermill("03", {"n": 12}, tmp_path, monkeypatch, caplog)
    assert "v2: n = 12 -> resnet110v2, 3,323,210 parameters" in text


# --- length: a chapter a learner reads in fifteen minutes ---------------------------------------------

MAX_WORDS = 2000             # markdown cells plus the markdown that code cells write (display(Markdown(...)))
MAX_GENERATED_PARAGRAPH = 85  # "about 80 words": a generated paragraph longer than that is a wall of text



def _prose(path):
    """(words of hand-written markdown, list of generated markdown paragraphs) of a notebook."""
    import re

    words, generated = 0, []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            words += len(cell.source.split())
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/markdown")
                if text:
                    generated += [p for p in re.split(r"\n\s*\n", "".join(text)) if p.strip()]
    return words, generated


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_chapter_is_at_most_2000_words_with_short_generated_paragraphs(path):
    words, generated = _prose(path)
    total = words + sum(len(p.split()) for p in generated)
    assert total <= MAX_WORDS, f"{path.name}: {total:,} words of prose (at most {MAX_WORDS:,})"
    long = [p[:80] for p in generated if len(p.split()) > MAX_GENERATED_PARAGRAPH]
    assert not long, f"{path.name}: generated paragraphs over {MAX_GENERATED_PARAGRAPH} words: {long}"


def test_the_word_count_counts_generated_markdown(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("one two three")])
    code = nbformat.v4.new_code_cell("display(Markdown(...))")
    code.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "four five\n\n" + "w " * 90})]
    notebook.cells.append(code)
    nbformat.write(notebook, tmp_path / "n.ipynb")
    words, generated = _prose(tmp_path / "n.ipynb")
    assert words == 3 and [len(p.split()) for p in generated] == [2, 90]


# --- Colab: every chapter's first code cell installs the package there ----------------------------------




@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_first_code_cell_is_the_colab_setup_cell(path):
    from resnet_utils import colab

    first = _cells(path)[0]
    assert first.source == colab.SETUP_CELL, f"{path.name}: run `python -m resnet_utils.colab {path.name}`"
    assert colab.TAG in first.metadata.get("tags", []) and not first.get("outputs")


def test_the_colab_cell_does_nothing_off_colab_and_the_writer_is_idempotent(tmp_path):
    import sys

    from resnet_utils import colab

    assert "google.colab" not in sys.modules
    exec(compile(colab.SETUP_CELL, "setup", "exec"), {})  # no clone, no install, no chdir here
    assert '"pip", "install", "--quiet", "--no-deps", "-e", "/content/resnet-cifar-notebooks"]' in colab.SETUP_CELL  # nothing of Colab's own
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(notebook, tmp_path / "n.ipynb")
    assert colab.write_setup_cell(tmp_path / "n.ipynb") is True
    assert colab.write_setup_cell(tmp_path / "n.ipynb") is False
    cells = nbformat.read(tmp_path / "n.ipynb", as_version=4).cells
    assert [c.cell_type for c in cells] == ["markdown", "code", "code"] and cells[1].source == colab.SETUP_CELL
