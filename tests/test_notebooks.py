"""Every notebook in notebooks/ runs top to bottom (code cells in order, in a subprocess),
and the notebooks saved with their outputs are complete, error-free and small."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# The suite's time budget (10 minutes on 2 cores): the shortest notebook by default, every
# notebook with -m slow.
DEFAULT = {"hyperparameter_gradient.ipynb"}

# Notebooks stored with their outputs (executed top to bottom, figures inline as PNG), so
# that they read well on GitHub without running them.
EXECUTED = {"bayesian_gmm_pruning.ipynb", "kmeans_hard_em.ipynb", "lda_topics.ipynb",
            "old_faithful.ipynb"}

MAX_BYTES = 1_000_000


@pytest.mark.parametrize(
    "path",
    [p if p.name in DEFAULT else pytest.param(p, marks=pytest.mark.slow) for p in NOTEBOOKS],
    ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    pytest.importorskip("matplotlib", reason="the notebooks plot with matplotlib")
    nb = json.loads(path.read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    script = tmp_path / (path.stem + ".py")
    script.write_text("\n\n".join(cells))
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def test_there_is_at_least_one_notebook():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_small_and_has_no_errors(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: keep notebooks under 1 MB"
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (
                f"{path.name} was saved with an error: {output.get('ename')}: "
                f"{output.get('evalue')}")


def test_executed_notebooks_exist():
    assert EXECUTED <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("name", sorted(EXECUTED))
def test_notebook_is_saved_executed(name):
    """Every code cell ran, once, in order, and the figures are embedded as PNG."""
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{name}: re-run it top to bottom ({counts})"
    assert any(c["outputs"] for c in code)
    plots = [c for c in code if "plt." in "".join(c["source"]) or "emjax.plot." in "".join(c["source"])]
    for cell in plots:
        kinds = {k for o in cell["outputs"] for k in o.get("data", {})}
        assert "image/png" in kinds, f"{name}: a plotting cell has no inline image"
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert len(markdown) >= 3, f"{name}: notebooks explain what they do"
