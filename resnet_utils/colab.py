"""Google Colab: the first code cell of every notebook, which installs this package there.

The cell runs before ``resnet_utils`` can be imported, so it is plain Python held here as a string
(``SETUP_CELL``), and ``write_setup_cell`` puts it into a notebook (or refreshes it). The
repository's public address is kept in one place, ``REPOSITORY_URL``: the cell, the README's Colab
steps and a badge all take it from here once it is set.

On Colab the cell clones the repository to ``CLONE_DIR`` (unless it is already there), installs the
package with ``pip install --no-deps -e`` (Colab already has TensorFlow, Keras, NumPy, pandas,
matplotlib, Pillow and ipywidgets, and pinning any of them would replace Colab's own builds), and
moves into the clone's ``notebooks/`` folder, so ``../results`` is the committed runs. Anywhere
else it does nothing.

    python -m resnet_utils.colab notebooks/0*.ipynb   # write or refresh the cell in these notebooks
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The repository's public address (``https://github.com/<owner>/resnet-cifar-notebooks``); None until it has one.
REPOSITORY_URL: str | None = None
#: Where the cell clones the repository on Colab.
CLONE_DIR = "/content/resnet-cifar-notebooks"
#: The tag that marks the cell in a notebook.
TAG = "colab-setup"

SETUP_CELL = f'''# Colab only: install this project's package (once per runtime). Anywhere else this cell does nothing.
import os, subprocess, sys
if "google.colab" in sys.modules and not os.path.isdir("{CLONE_DIR}/resnet_utils"):
    REPOSITORY_URL = {REPOSITORY_URL!r}  # kept in resnet_utils/colab.py
    if REPOSITORY_URL is None:
        raise RuntimeError("This project has no public address yet: upload the repository to {CLONE_DIR} "
                           "(Files pane, or clone it from where you got it), then run this cell again.")
    subprocess.run(["git", "clone", "--depth", "1", REPOSITORY_URL, "{CLONE_DIR}"], check=True)
if "google.colab" in sys.modules:
    import importlib.util
    if importlib.util.find_spec("resnet_utils") is None:
        # --no-deps: Colab's own TensorFlow, Keras, NumPy, pandas and matplotlib stay as they are
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e", "{CLONE_DIR}"], check=True)
        sys.path.insert(0, "{CLONE_DIR}")  # this kernel started before the install
    os.chdir("{CLONE_DIR}/notebooks")  # so that ../results holds the committed runs'''


def write_setup_cell(path: str | Path) -> bool:
    """Make ``SETUP_CELL`` the first code cell of the notebook at ``path`` (replacing an older copy,
    found by its tag, else inserting it before the first code cell). Returns whether the file changed."""
    import nbformat

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    cells = notebook.cells
    old = [i for i, cell in enumerate(cells) if TAG in cell.metadata.get("tags", [])]
    first_code = next((i for i, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))
    if old == [first_code] and cells[first_code].source == SETUP_CELL and cells[first_code].metadata.get("jupyter"):
        return False
    for i in reversed(old):
        del cells[i]
    first_code = next((i for i, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))
    # folded in JupyterLab: a learner sees one line, not the installer
    cell = nbformat.v4.new_code_cell(SETUP_CELL, metadata={"tags": [TAG], "jupyter": {"source_hidden": True}})
    cells.insert(first_code, cell)
    nbformat.write(notebook, path)
    return True


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m resnet_utils.colab NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for path in paths:
        print(f"{path}: {'written' if write_setup_cell(path) else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
