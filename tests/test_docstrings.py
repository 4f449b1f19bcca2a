"""Every runnable example in emjax's docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import emjax

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(emjax.__path__, prefix="emjax.")
    if not m.name.endswith("__main__")
)


# The slowest modules' examples (many HMM compiles) run with -m slow (time budget).
SLOW = {"emjax._models._emissions", "emjax._models._hmm", "emjax.sklearn._hmm",
        "emjax._models._experts", "emjax._models._density"}


@pytest.mark.parametrize(
    "name", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
