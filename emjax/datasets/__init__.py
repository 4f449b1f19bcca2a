"""Small bundled datasets for examples, tests and documentation.

Old Faithful
------------
``old_faithful.csv`` records 272 eruptions of the Old Faithful geyser in
Yellowstone National Park, Wyoming, USA. It has two columns:

``eruptions``
    duration of the eruption, in minutes;
``waiting``
    waiting time until the next eruption, in minutes.

The joint distribution is clearly bimodal (short eruptions followed by short
waits, long eruptions followed by long waits), which makes it the customary
first example for two-component Gaussian mixtures fitted by EM.

The file is the ``faithful`` data frame as distributed with R's ``datasets``
package. Sources: W. Härdle (1991), *Smoothing Techniques with Implementation
in S*, Springer; A. Azzalini and A. W. Bowman (1990), "A look at some data on
the Old Faithful geyser", *Applied Statistics* 39, 357-365. The data are
observations of a natural phenomenon and are in the public domain.

Every loader here returns plain NumPy arrays and imports nothing from JAX, so
reading a dataset never initialises a JAX backend.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from importlib import resources

import numpy as np

__all__ = ["dataset_names", "load", "load_old_faithful"]

_OLD_FAITHFUL_FILE = "old_faithful.csv"
_OLD_FAITHFUL_COLUMNS = ("eruptions", "waiting")


def _read_numeric_csv(filename: str) -> tuple[tuple[str, ...], list[list[float]]]:
    """Read a bundled CSV file with a header row and numeric body."""
    text = (resources.files(__name__) / filename).read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = tuple(next(reader))
    rows = [[float(value) for value in row] for row in reader if row]
    return header, rows


def load_old_faithful(*, return_names: bool = False, dtype=None):
    """Load the Old Faithful geyser eruptions as a NumPy array.

    Args:
        return_names: if true, also return the column names.
        dtype: NumPy dtype of the returned array; ``float64`` when ``None``.

    Returns:
        ``X``, an array of shape ``(272, 2)`` whose columns are the eruption
        duration and the waiting time to the next eruption, both in minutes.
        With ``return_names=True`` the result is the pair
        ``(X, ("eruptions", "waiting"))``.

    Example:
        >>> from emjax.datasets import load_old_faithful
        >>> X = load_old_faithful()
        >>> X.shape, X.dtype
        ((272, 2), dtype('float64'))
        >>> X[0].tolist()
        [3.6, 79.0]
        >>> X, names = load_old_faithful(return_names=True)
        >>> names
        ('eruptions', 'waiting')
    """
    header, rows = _read_numeric_csv(_OLD_FAITHFUL_FILE)
    if header != _OLD_FAITHFUL_COLUMNS:  # guards against a corrupted package file
        raise RuntimeError(
            f"unexpected header {header!r} in {_OLD_FAITHFUL_FILE}; "
            f"expected {_OLD_FAITHFUL_COLUMNS!r}"
        )
    X = np.asarray(rows, dtype=np.float64 if dtype is None else dtype)
    if return_names:
        return X, _OLD_FAITHFUL_COLUMNS
    return X


_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "old_faithful": load_old_faithful,
}


def dataset_names() -> tuple[str, ...]:
    """Names accepted by :func:`load`.

    Returns:
        A tuple of dataset names.

    Example:
        >>> from emjax.datasets import dataset_names
        >>> dataset_names()
        ('old_faithful',)
    """
    return tuple(_LOADERS)


def load(name: str) -> np.ndarray:
    """Load a bundled dataset by name.

    Args:
        name: one of :func:`dataset_names`.

    Returns:
        The dataset as a ``float64`` NumPy array of shape ``(n_samples, n_features)``.

    Raises:
        ValueError: if ``name`` is not a known dataset.

    Example:
        >>> from emjax.datasets import load
        >>> load("old_faithful").shape
        (272, 2)
    """
    try:
        loader = _LOADERS[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in _LOADERS)
        raise ValueError(f"unknown dataset name={name!r}; valid names are: {valid}") from None
    return loader()
