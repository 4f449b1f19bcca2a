"""Every notebook in notebooks/ runs top to bottom (code cells in order, in a subprocess)."""

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
