"""Checks of user input made before any compute, with messages that say what to fix."""

import jax
import jax.numpy as jnp
import numpy as np


def is_traced(x) -> bool:
    """True for a JAX tracer (inside jit/vmap/grad): its values cannot be checked."""
    return isinstance(x, jax.core.Tracer)


def as_float_array(x, name: str):
    """``x`` as a JAX floating array (integers and booleans become the default float)."""
    if is_traced(x):
        arr = x
    else:
        try:
            arr = jnp.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(f"`{name}` must be a numeric array; got {type(x).__name__}: {e}") from e
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
            or arr.dtype == jnp.bool_):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {arr.dtype}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    elif jnp.finfo(arr.dtype).bits < 32:
        # float16 / bfloat16 cannot carry EM's statistics (nor CPU Cholesky): use float32.
        arr = arr.astype(jnp.float32)
    return arr


def check_matrix(X, name: str = "X"):
    """A finite 2-D float array ``(N, D)`` with at least one row and one column."""
    X = as_float_array(X, name)
    if X.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array of shape (num_points, num_features); got "
            f"{X.ndim}-D shape {tuple(X.shape)}. Reshape 1-D data with x[:, None]."
        )
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least one row and one column; got shape "
                         f"{tuple(X.shape)}.")
    check_finite(X, name)
    return X


def check_finite(x, name: str) -> None:
    if is_traced(x):
        return
    ok = np.isfinite(np.asarray(x))
    if not ok.all():
        bad = np.argwhere(~ok)
        rows = ", ".join(str(tuple(int(i) for i in b)) for b in bad[:5])
        more = "" if len(bad) <= 5 else f" and {len(bad) - 5} more"
        raise ValueError(
            f"`{name}` contains NaN or infinite values (at index {rows}{more}); "
            "remove or impute them first."
        )


def check_sample_weight(sample_weight, num_points: int, dtype):
    """Non-negative finite weights of shape ``(N,)`` that do not all vanish; ones if None."""
    if sample_weight is None:
        return jnp.ones((num_points,), dtype)
    w = as_float_array(sample_weight, "sample_weight").astype(dtype)
    if w.shape != (num_points,):
        raise ValueError(
            f"`sample_weight` must have shape ({num_points},), one weight per row of the data; "
            f"got shape {tuple(w.shape)}."
        )
    if not is_traced(w):
        wn = np.asarray(w)
        check_finite(wn, "sample_weight")
        if (wn < 0).any():
            raise ValueError(
                f"`sample_weight` must be non-negative; got {int((wn < 0).sum())} negative "
                f"value(s), the smallest {wn.min()}."
            )
        if not (wn > 0).any():
            raise ValueError("`sample_weight` must have at least one positive entry; all are 0.")
    return w


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value}.")
    return int(value)


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; got {value!r}."
        )
    return value


def _real_scalar(value, name: str, expected: str):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be {expected}; got {value!r}.")
    try:
        arr = jnp.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be {expected}; got {value!r}.") from e
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"`{name}` must be {expected}; got dtype {arr.dtype}.")
    return arr


def check_nonnegative_scalar(value, name: str):
    """A real scalar >= 0, kept as an array leaf (so it stays differentiable)."""
    arr = _real_scalar(value, name, "a real number >= 0")
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar; got shape {tuple(arr.shape)}.")
    if not is_traced(arr):
        v = float(arr)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"`{name}` must be a finite number >= 0; got {v}.")
    return arr


def check_positive_scalar(value, name: str):
    """A real scalar > 0, kept as an array leaf."""
    arr = _real_scalar(value, name, "a real number > 0")
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar; got shape {tuple(arr.shape)}.")
    if not is_traced(arr):
        v = float(arr)
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"`{name}` must be a finite number > 0; got {v}.")
    return arr


def check_key(key):
    """One PRNG key: a typed scalar key (``jax.random.key``) or a legacy uint32 ``(2,)`` key."""
    if is_traced(key):
        return key
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key
    raise TypeError(
        "`key` must be a JAX PRNG key: a single key such as jax.random.key(0) (restarts get their "
        f"own keys from it); got {type(key).__name__}"
        + (f" of dtype {key.dtype} and shape {tuple(key.shape)}." if hasattr(key, "shape") else ".")
    )
