"""What every scikit-learn-style estimator of emjax shares: seeds, precision, fitted checks.

scikit-learn's conventions, kept here: hyperparameters are stored unchanged by ``__init__``
and validated in ``fit``; fitted attributes end in ``_``; ``random_state`` is ``None``, an
int or a ``numpy.random.RandomState``. emjax's own conventions, kept too: a fit is one
compiled program over ``n_init`` vmapped restarts, and JAX's global configuration is never
changed. An estimator with ``dtype="float64"`` (the default, as in scikit-learn) computes
inside ``jax.enable_x64(True)``, a thread-local switch that is restored on exit.
"""

from __future__ import annotations

import contextlib
import numbers

import jax
import numpy as np

try:
    import sklearn  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "emjax.sklearn needs scikit-learn (pip install scikit-learn); the functional API "
        "(emjax.fit and the models) does not."
    ) from e

DTYPES = ("float64", "float32")


def check_dtype(dtype) -> str:
    """The estimator's ``dtype`` hyperparameter as "float64" or "float32" (ValueError naming
    ``dtype`` otherwise, also for a name NumPy does not know)."""
    try:
        name = np.dtype(dtype).name if dtype is not None else None
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"`dtype` must be 'float64' or 'float32'; got {dtype!r}.")
    return name


def precision(dtype):
    """A context in which JAX computes in ``dtype``: float64 turns on x64 for this thread
    only, and restores it on exit; float32 leaves the configuration as it is."""
    if check_dtype(dtype) == "float64":
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def random_key(random_state):
    """A JAX key from scikit-learn's ``random_state`` (None, an int or a RandomState).

    None draws a fresh seed from NumPy's global generator, as scikit-learn does, so two fits
    with ``random_state=None`` differ and a fit after ``np.random.seed(s)`` repeats.
    """
    if random_state is None or random_state is np.random:
        seed = np.random.mtrand._rand.randint(np.iinfo(np.int32).max)
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"`random_state` must be non-negative; got {random_state}.")
        seed = int(random_state) % (2**32)
    elif isinstance(random_state, np.random.RandomState):
        seed = random_state.randint(np.iinfo(np.int32).max)
    elif isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(np.iinfo(np.int32).max))
    else:
        raise ValueError(
            "`random_state` must be None, an int, a numpy.random.RandomState or a "
            f"numpy.random.Generator; got {type(random_state).__name__}."
        )
    return jax.random.key(seed)


# --------------------------------------------------------------------------- added helpers
# Hyperparameter checks for ``fit``: they raise ValueError naming the estimator's argument
# (scikit-learn's name for it) and what was expected, before any compute.


def check_int_param(value, name: str, minimum: int = 0) -> int:
    """``value`` as a Python int ``>= minimum``, or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_real_param(value, name: str, minimum: float = 0.0, *, strict: bool = False) -> float:
    """``value`` as a finite Python float ``>= minimum`` (``> minimum`` if ``strict``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = np.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"{'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"`{name}` must be a finite number {bound}; got {value!r}.")
    return value


def check_option_param(value, name: str, options) -> str:
    """``value`` if it is one of the strings ``options``, else ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, options))}; got {value!r}.")
    return value


def check_block_size(block_size):
    """emjax's ``block_size`` extra: None (emjax's default) or a positive int."""
    return None if block_size is None else check_int_param(block_size, "block_size", 1)


def host_arrays(tree):
    """Every array leaf of ``tree`` as a NumPy array (fitted attributes live on the host, so
    that estimators pickle and compare without JAX devices)."""
    return jax.tree.map(lambda a: np.asarray(a) if isinstance(a, jax.Array) else a, tree)

