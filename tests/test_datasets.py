"""Tests for the bundled datasets in ``emjax.datasets``."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emjax.datasets import dataset_names, load, load_old_faithful

DATASETS_INIT = Path(__file__).resolve().parents[1] / "emjax" / "datasets" / "__init__.py"
CSV_PATH = DATASETS_INIT.parent / "old_faithful.csv"


def test_old_faithful_shape_and_dtype():
    X = load_old_faithful()
    assert isinstance(X, np.ndarray)
    assert X.shape == (272, 2)
    assert X.dtype == np.float64


def test_old_faithful_dtype_override():
    X = load_old_faithful(dtype=np.float32)
    assert X.dtype == np.float32
    assert X.shape == (272, 2)


def test_old_faithful_first_and_last_rows():
    X = load_old_faithful()
    np.testing.assert_array_equal(X[0], [3.6, 79.0])
    last_line = CSV_PATH.read_text(encoding="utf-8").strip().splitlines()[-1]
    expected_last = [float(v) for v in last_line.split(",")]
    np.testing.assert_array_equal(X[-1], expected_last)


def test_old_faithful_column_means():
    X = load_old_faithful()
    np.testing.assert_allclose(X.mean(axis=0), [3.4878, 70.8971], atol=1e-3)


def test_old_faithful_names():
    X, names = load_old_faithful(return_names=True)
    assert names == ("eruptions", "waiting")
    np.testing.assert_array_equal(X, load_old_faithful())


def test_dataset_names_and_load_by_name():
    assert dataset_names() == ("old_faithful",)
    np.testing.assert_array_equal(load("old_faithful"), load_old_faithful())


def test_load_unknown_name_raises():
    with pytest.raises(ValueError) as excinfo:
        load("no_such_dataset")
    message = str(excinfo.value)
    assert "name" in message
    assert "old_faithful" in message


def test_datasets_module_does_not_import_jax():
    # ``emjax/__init__.py`` imports JAX, so load the datasets module file on its
    # own, under a private name, and check that neither importing it nor loading
    # a dataset pulls in JAX.
    code = f"""
import importlib.util
import sys

path = {str(DATASETS_INIT)!r}
spec = importlib.util.spec_from_file_location(
    "_emjax_datasets_standalone", path, submodule_search_locations=[]
)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
assert "jax" not in sys.modules, "importing the datasets module imported jax"
X = module.load_old_faithful()
assert X.shape == (272, 2), X.shape
assert "jax" not in sys.modules, "loading a dataset imported jax"
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
