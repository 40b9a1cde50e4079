"""The README's figure, drawn from committed run folders by the package's plots module:

    python docs/readme_figure.py            # writes docs/plain-vs-resnet-10ep.png

The paper's Figure 6 at 10 epochs: plain nets of 20-56 layers against ResNets of the same depths,
training error dashed, test error bold, all from ``results/<run>/log.csv``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import resnet_utils  # noqa: F401  (imports TensorFlow quietly, before matplotlib pulls anything in)
import matplotlib

matplotlib.use("Agg")

from resnet_utils import plots, runs  # noqa: E402

HERE = Path(__file__).resolve().parent
FIGURE = HERE / "plain-vs-resnet-10ep.png"
DEPTHS = (20, 32, 44, 56)
GROUPS = {"plain nets": "plain{depth}-10ep", "ResNets (v1)": "resnet{depth}v1-10ep"}


def draw(out: Path = FIGURE, results_dir: Path | None = None) -> Path:
    """Draw the figure from the committed runs and save it as a PNG; return its path."""
    found = runs.load_runs(runs.results_dir(results_dir))
    chosen = {group: {f"{depth} layers": found[pattern.format(depth=depth)] for depth in DEPTHS} for group, pattern in GROUPS.items()}
    used = [run for group in chosen.values() for run in group.values()]
    machines = sorted({runs.short_machine(runs.device_label(run.metrics["hardware"])) for run in used})
    dates = sorted(run.metrics["date"][:10] for run in used)
    fig = plots.error_curves({group: {name: run.log for name, run in logs.items()} for group, logs in chosen.items()})
    fig.suptitle(f"CIFAR-10 (full, JPEG copy), 10 epochs of the default recipe, seed 0; {', '.join(machines)}, "
                 f"{dates[0]} to {dates[-1]}", fontsize=9, y=1.02)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    return out


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else FIGURE))
