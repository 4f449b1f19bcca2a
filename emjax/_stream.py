"""`emjax.fit_stream`: EM on data streamed from the host, for data larger than memory.

The statistics and parameters stay on the device; the data arrive chunk by chunk from a
NumPy array or memmap, a list of arrays, or a function that yields chunks. Each chunk is
padded to a fixed number of rows (weight 0), so one compiled E-step serves every chunk.
The algorithms are those of the in-memory solvers, driven from Python: the same E-step,
M-step, SQUAREM cycle, online and incremental updates.
"""

import math
import sys
import time
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._accumulate import default_block_size, make_blocks
from ._custom_types import Params, PRNGKeyArray
from ._elbo import ELBO
from ._fit import _data_shape
from ._loop import all_finite
from ._model import AbstractEMModel
from ._mstep import ClosedFormMStep
from ._online import (
    SQUAREM,
    IncrementalEM,
    OnlineEM,
    incremental_total,
    incremental_update,
    minibatch_pass,
    online_update,
    squarem_cycle,
)
from ._solution import RESULTS, ConvergenceWarning, NonFiniteError, Solution
from ._solver import EM, HardEM
from ._validation import check_key, check_nonnegative_scalar, check_positive_int

_DEFAULT_CHUNK_ROWS = 65_536


# ---------------------------------------------------------------------------------------
# Sources


class _Source:
    """Chunks of a host-side data source, as ``(data, weights)`` padded to ``rows`` rows."""

    def __init__(self, model, source, chunk_size: int | None, num_rows: int | None,
                 default_chunk: int):
        self.model = model
        if isinstance(source, (list, tuple)):
            if not source:
                raise ValueError("`source` is an empty list: there is no data to fit.")
            self.kind, self.items = "list", list(source)
            self.num_rows = num_rows
            self.rows = chunk_size
        elif callable(source):
            self.kind, self.factory = "callable", source
            self.num_rows = num_rows
            self.rows = chunk_size
        elif hasattr(source, "shape") and hasattr(source, "__getitem__"):
            if len(source.shape) < 1 or source.shape[0] < 1:
                raise ValueError(
                    f"`source` must have at least one row; got shape {tuple(source.shape)}.")
            self.kind, self.array = "array", source
            self.num_rows = int(source.shape[0])
            if num_rows is not None and num_rows != self.num_rows:
                raise ValueError(
                    f"`num_rows`={num_rows} but the source array has {self.num_rows} rows.")
            self.rows = min(chunk_size or default_chunk, self.num_rows)
        else:
            raise TypeError(
                "`source` must be an array or memmap of rows, a list of chunks, or a function "
                f"returning an iterable of chunks; got {type(source).__name__}."
            )

    def num_chunks(self) -> int | None:
        if self.kind == "array":
            return math.ceil(self.num_rows / self.rows)
        if self.kind == "list":
            return len(self.items)
        return None

    def raw_chunks(self, order=None):
        """The chunks of one pass, in ``order`` (chunk indices) if given."""
        if self.kind == "array":
            n = self.num_chunks()
            for i in (range(n) if order is None else order):
                yield np.asarray(self.array[i * self.rows:(i + 1) * self.rows])
        elif self.kind == "list":
            for i in (range(len(self.items)) if order is None else order):
                yield self.items[i]
        else:
            iterable = self.factory()
            if iterable is None:
                raise TypeError("`source()` returned None; it must return an iterable of chunks.")
            yield from iterable

    def prepare(self, raw, position: int):
        """Validate one chunk and pad it to ``self.rows`` rows (weight 0)."""
        if isinstance(raw, dict):
            unknown = set(raw) - {"data", "sample_weight"}
            if "data" not in raw or unknown:
                raise ValueError(
                    f"chunk {position}: a dict chunk must have the keys 'data' and optionally "
                    f"'sample_weight'; got {sorted(raw)}.")
            data, weights = raw["data"], raw.get("sample_weight")
        else:
            data, weights = raw, None
        pad_before = 0
        if isinstance(data, np.ndarray | jax.Array) and self.rows is not None:
            # A short last chunk may hold fewer rows than a model's components: pad the raw
            # rows first (repeating the last one, weight 0) so that validation passes.
            pad_before = max(0, self.rows - data.shape[0]) if data.ndim >= 1 else 0
            real = data.shape[0] if data.ndim >= 1 else 0
            if pad_before and real > 0:
                data = np.concatenate([np.asarray(data),
                                       np.repeat(np.asarray(data)[-1:], pad_before, axis=0)])
        try:
            data = self.model.check_data(data)
        except (ValueError, TypeError) as e:
            raise type(e)(f"chunk {position} of the source: {e}") from None
        rows, _, dtype = _data_shape(data)
        real = rows - pad_before
        if weights is None:
            w = jnp.concatenate([jnp.ones((real,), dtype), jnp.zeros((pad_before,), dtype)])
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (real,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError(
                    f"chunk {position}: 'sample_weight' must be {real} finite non-negative "
                    f"values, one per row; got shape {w.shape}.")
            w = jnp.concatenate([jnp.asarray(w, dtype), jnp.zeros((pad_before,), dtype)])
        if self.rows is None:
            self.rows = rows  # callables and lists: the first chunk sets the padded size
        if rows < self.rows:
            blocks = make_blocks(data, w, self.rows)
            data, w = blocks.block(0)
        return data, w, real

    def chunks(self, order=None):
        for position, raw in enumerate(self.raw_chunks(order)):
            yield self.prepare(raw, position)

    def sample_for_init(self, key, size: int):
        """Rows to initialise the parameters from: a uniform sample of an array source
        (sorted indices, so a memmap reads forwards), else the first chunk."""
        if self.kind == "array":
            n = self.num_rows
            take = min(n, size)
            idx = np.sort(np.asarray(jax.random.choice(key, n, (take,), replace=False)))
            raw = np.asarray(self.array[idx])
            saved, self.rows = self.rows, None
            try:
                return self.prepare(raw, 0)
            finally:
                self.rows = saved
        return next(iter(self.chunks()))


# ---------------------------------------------------------------------------------------
# Jitted pieces


@eqx.filter_jit
def _chunk_pass(model, params, data, weights, hard: bool):
    if hard:
        blocks = make_blocks(data, weights, default_block_size(weights.shape[0], model.row_cost(data)))
        from ._accumulate import accumulate

        return accumulate(lambda x, w: model.hard_e_step(params, x, w), blocks)
    return minibatch_pass(model, params, data, weights)


@eqx.filter_jit
def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


@eqx.filter_jit
def _m_step(model, params, stats):
    return model.m_step(params, stats)


@eqx.filter_jit
def _with_prior(model, params, elbo: ELBO, stats):
    nan = jnp.array(False)
    for leaf in jax.tree.leaves(stats):
        if eqx.is_inexact_array(leaf):
            nan = nan | jnp.any(jnp.isnan(leaf))
    elbo = eqx.tree_at(lambda e: e.log_prior, elbo, model.log_prior(params))
    return jax.tree.map(lambda v: jnp.where(nan, jnp.nan, v), elbo)


@eqx.filter_jit
def _online_step(solver, model, state, average, stats, scale):
    return online_update(solver, model, state, average, stats, scale)


@eqx.filter_jit
def _incremental_step(model, theta, total, old_stats, old_params, new_stats):
    return incremental_update(model, theta, total, old_stats, old_params, new_stats)


@eqx.filter_jit
def _incremental_total(model, batch_stats, batch_params, theta):
    return incremental_total(model, batch_stats, batch_params, theta)


@eqx.filter_jit
def _init_params(model, data, weights, key):
    blocks = make_blocks(data, weights, default_block_size(weights.shape[0], model.row_cost(data)))
    return model.init_params(blocks, key=key)


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _zero_elbo(dtype) -> ELBO:
    z = jnp.zeros((), dtype)
    return ELBO(z, z, z)


# ---------------------------------------------------------------------------------------
# The driver


class _Interrupted(Exception):
    pass


def fit_stream(
    model: AbstractEMModel,
    source,
    *,
    solver=None,
    key: PRNGKeyArray | None = None,
    params0: Params | None = None,
    num_rows: int | None = None,
    chunk_size: int | None = None,
    max_passes: int = 100,
    rtol: float = 1e-5,
    atol: float = 0.0,
    throw: bool = True,
    init_sample_size: int = 100_000,
    callback: Callable | None = None,
    verbose: bool = False,
) -> Solution:
    r"""Fit ``model`` to data streamed from the host, one chunk at a time.

    For data that do not fit in device memory (or in host memory: a ``numpy.memmap`` of a
    file is read one chunk at a time). Expected sufficient statistics add up over data
    points, so every algorithm only needs one chunk on the device at a time:

    - `emjax.EM` / `emjax.HardEM` (the default is the model's): each pass adds up the
      chunks' statistics at ``θ_t``, then takes the M-step. This is exactly the in-memory
      fit (the same sums; equal to rounding, and bit for bit when ``chunk_size`` equals
      the in-memory ``block_size``).
    - `emjax.SQUAREM`: three such passes per cycle.
    - `emjax.OnlineEM`: every chunk is a minibatch, ``s ← (1 − ρ_t) s + ρ_t (N/B) ŝ``
      then the M-step; for an array source the chunks are visited in a new random order
      each pass (the rows inside a chunk keep their order: shuffle a sorted file once
      beforehand).
    - `emjax.IncrementalEM`: every chunk is a minibatch whose statistics are kept on the
      device (memory: one copy of the statistics and parameters per chunk).

    Each chunk is padded to ``chunk_size`` rows with weight 0, so one compiled E-step
    serves them all. One restart (initialise several on a sample with `emjax.fit` and pass
    the best as ``params0``).

    The fit is robust to interruption: ``callback(info)`` is called after every pass
    with a dict (``pass``, ``params``, ``elbo``, ``seconds``) — save ``params`` there to
    checkpoint a long fit; a ``KeyboardInterrupt`` during a pass returns the parameters
    of the last complete pass (with a warning) instead of losing them.

    Args:
        model: an emjax model with a closed-form M-step.
        source: one of: an array or ``numpy.memmap`` whose leading axis is the rows
            (points, or sequences); a list of chunks; or a function returning an iterable
            of chunks (called once per pass, and giving the same chunks in the same order
            every pass for `emjax.IncrementalEM`). A chunk is anything ``emjax.fit``
            accepts as data for ``model``, or a dict ``{"data": ..., "sample_weight": ...}``.
        solver: `emjax.EM`, `emjax.HardEM`, `emjax.SQUAREM`, `emjax.OnlineEM` or
            `emjax.IncrementalEM`; default: the model's default solver.
        key: a PRNG key: needed to initialise the parameters (without ``params0``) and by
            `emjax.OnlineEM` (chunk order).
        params0: initial parameters (one set).
        num_rows: the total number of rows (points or sequences): needed by
            `emjax.OnlineEM` (the ``N`` in ``N/B``) when the source is not an array.
        chunk_size: rows per chunk of an array source (default: the online solver's
            ``batch_size``, else 65,536); for lists and functions, the size chunks are
            padded to (default: the first chunk's).
        max_passes: the most parameter updates (passes, or cycles for SQUAREM).
        rtol, atol: convergence tolerances on the change of the ELBO between passes, as in
            `emjax.fit`.
        throw: raise `emjax.NonFiniteError` if the first pass is not finite.
        init_sample_size: rows sampled uniformly from an array source to initialise the
            parameters (other sources: the first chunk).
        callback: called as ``callback(info)`` after every pass.
        verbose: print one line per pass (ELBO, change, seconds) to standard error.

    Returns:
        A `Solution` with one restart: ``elbo_trace`` has one value per pass.
        ``log_likelihood`` is exact (for the online and incremental solvers, and hard EM,
        one more pass computes it).

    Raises:
        TypeError, ValueError: a bad model, solver, source or option, before any pass; a
            bad chunk, when it is read (the message names the chunk).
        NonFiniteError: with ``throw=True``, when the first pass is not finite.

    Example:
        >>> import jax, numpy as np, emjax
        >>> X = np.asarray(emjax.datasets.load_old_faithful())
        >>> gmm = emjax.GaussianMixture(2)
        >>> sol = emjax.fit_stream(gmm, X, key=jax.random.key(0), chunk_size=100)
        >>> bool(sol.converged)
        True
    """
    if not isinstance(model, AbstractEMModel):
        raise TypeError(
            f"`model` must be an emjax model (e.g. emjax.GaussianMixture); got {type(model).__name__}.")
    if solver is None:
        solver = model.default_solver()
    if isinstance(solver, EM):
        if not isinstance(solver.m_step, ClosedFormMStep):
            raise TypeError("fit_stream needs a closed-form M-step; GradientMStep needs the "
                            "whole data in every optimizer step. Use emjax.fit.")
    elif not isinstance(solver, (HardEM, SQUAREM, OnlineEM, IncrementalEM)):
        raise TypeError(
            "`solver` must be emjax.EM(), HardEM(), SQUAREM(), OnlineEM(...) or "
            f"IncrementalEM(...); got {solver!r}.")
    solver.check_model(model)
    max_passes = check_positive_int(max_passes, "max_passes", minimum=0)
    rtol = float(check_nonnegative_scalar(rtol, "rtol"))
    atol = float(check_nonnegative_scalar(atol, "atol"))
    init_sample_size = check_positive_int(init_sample_size, "init_sample_size")
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    if num_rows is not None:
        num_rows = check_positive_int(num_rows, "num_rows")
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable; got {callback!r}.")
    if key is not None:
        key = check_key(key)
    elif params0 is None:
        raise ValueError("`key` is required to initialise the parameters, e.g. "
                         "key=jax.random.key(0) (or pass `params0`).")
    online = isinstance(solver, OnlineEM)
    if online and key is None:
        raise ValueError("`key` is required by OnlineEM, which visits the chunks in random order.")
    default_chunk = solver.batch_size if online else _DEFAULT_CHUNK_ROWS
    if isinstance(solver, IncrementalEM) and solver.batch_size is not None:
        default_chunk = solver.batch_size
    src = _Source(model, source, chunk_size, num_rows, default_chunk)
    if online and src.num_rows is None:
        raise ValueError("OnlineEM on a list or function source needs `num_rows` (the total "
                         "number of rows, the N of the N/B scaling).")

    key_init = key_order = None
    if key is not None:
        key_init, key_order = jax.random.split(key)
    if params0 is None:
        data, w, _ = src.sample_for_init(key_init, max(init_sample_size, src.rows or 1))
        params = _init_params(model, data, w, key_init)
    else:
        first, _, _ = src.prepare(next(iter(src.raw_chunks())), 0)
        params, size = model.check_params(params0, first)
        if size is not None:
            raise ValueError("fit_stream fits one restart: pass one set of `params0`.")
    dtype = jax.tree.leaves([a for a in jax.tree.leaves(params) if eqx.is_inexact_array(a)])[0].dtype

    hard = isinstance(solver, HardEM)

    def full_pass(theta):
        stats = elbo = None
        for data, w, _ in src.chunks():
            s, e = _chunk_pass(model, theta, data, w, hard)
            stats, elbo = (s, e) if stats is None else (_add(stats, s), _add(elbo, e))
        return stats, _with_prior(model, theta, elbo, stats)

    # Solver state, driven from here.
    state = None
    if isinstance(solver, SQUAREM):
        state = jnp.asarray(solver.step_max0, dtype)
    elif online:
        first, w, _ = next(iter(src.chunks()))
        shape = jax.eval_shape(lambda: model.e_step(params, first, w)[0])
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape)
        state = solver.init_state(model, zeros, params, key_order)

    def step(theta, state):
        nonlocal src
        if isinstance(solver, SQUAREM):
            return squarem_cycle(model, full_pass, theta, state, solver.step_max0, solver.mstep)
        if online:
            nchunks = src.num_chunks()
            k, sub = jax.random.split(state.key)
            order = (None if nchunks is None
                     else np.asarray(jax.random.permutation(sub, nchunks)))
            average, elbo = theta, _zero_elbo(dtype)
            prior = model.log_prior(theta)
            for data, w, real in src.chunks(order):
                stats, e = _chunk_pass(model, state.iterate, data, w, False)
                scale = jnp.asarray(src.num_rows / real, dtype)
                state, average = _online_step(solver, model, state, average, stats, scale)
                elbo = _add(elbo, e)
            state = eqx.tree_at(lambda s: s.key, state, k)
            return eqx.tree_at(lambda e: e.log_prior, elbo, prior), average, state
        if isinstance(solver, IncrementalEM):
            if state is None:  # every chunk's statistics at θ_0
                stats = [_chunk_pass(model, theta, d, w, False)[0] for d, w, _ in src.chunks()]
                state = (_stack(stats), _stack([theta] * len(stats)))
            batch_stats, batch_params = state
            total = _incremental_total(model, batch_stats, batch_params, theta)
            prior = model.log_prior(theta)
            elbo, new_stats, new_params = _zero_elbo(dtype), [], []
            for i, (data, w, _) in enumerate(src.chunks()):
                s, e = _chunk_pass(model, theta, data, w, False)
                old_s = jax.tree.map(lambda a, i=i: a[i], batch_stats)
                old_p = jax.tree.map(lambda a, i=i: a[i], batch_params)
                new_stats.append(s)
                new_params.append(theta)
                theta, total = _incremental_step(model, theta, total, old_s, old_p, s)
                elbo = _add(elbo, e)
            return (eqx.tree_at(lambda e: e.log_prior, elbo, prior), theta,
                    (_stack(new_stats), _stack(new_params)))
        stats, elbo = full_pass(theta)
        return elbo, _m_step(model, theta, stats), state

    trace: list[float] = []
    result = RESULTS.max_steps_reached
    elbo_at = None
    interrupted = False
    prev_params = params
    t = 0
    start = time.perf_counter()
    try:
        while True:
            tick = time.perf_counter()
            try:
                elbo, new_params, new_state = step(params, state)
            except KeyboardInterrupt:
                raise _Interrupted from None
            value = float(elbo.total)
            finite = math.isfinite(value)
            if not finite:
                if t == 0:
                    if throw:
                        raise NonFiniteError("emjax.fit_stream: the first pass gave a non-finite "
                                             "ELBO. " + RESULTS[RESULTS.nonfinite])
                    elbo_at = elbo
                else:
                    params, t = prev_params, t - 1
                result = RESULTS.nonfinite
                break
            trace.append(value)
            converged = (t > 0 and abs(value - float(elbo_at.total)) <= atol + rtol * abs(value)
                         and (not online or bool(solver.may_stop(state))))
            elbo_at = elbo
            if verbose:
                change = "" if t == 0 else f"  change {value - trace[-2]:+.3e}"
                sys.stderr.write(f"emjax.fit_stream: pass {t}: ELBO {value:.10g}{change}  "
                                 f"({time.perf_counter() - tick:.2f} s)\n")
                sys.stderr.flush()
            if callback is not None:
                callback({"pass": t, "params": params, "elbo": value,
                          "seconds": time.perf_counter() - start})
            if converged:
                result = RESULTS.converged
                break
            if t >= max_passes:
                break
            if not bool(all_finite(new_params)):
                result = RESULTS.nonfinite
                break
            prev_params, params, state, t = params, new_params, new_state, t + 1
    except _Interrupted:
        interrupted = True
        if t > 0:  # θ_t has no ELBO yet: stand on θ_{t-1}, whose pass completed
            params, t = prev_params, t - 1
        warnings.warn(
            f"emjax.fit_stream: interrupted; returning the parameters after {t} complete "
            "pass(es) (their log-likelihood is NaN for solvers whose bound is not tight).",
            ConvergenceWarning, stacklevel=2)
        if elbo_at is None:
            elbo_at = jax.tree.map(lambda v: jnp.full_like(v, jnp.nan), _zero_elbo(dtype))

    tight = isinstance(solver, (EM, SQUAREM))
    if not interrupted and result == RESULTS.max_steps_reached and max_passes > 0:
        warnings.warn(
            f"emjax.fit_stream: did not converge in max_passes={max_passes} passes. "
            + RESULTS[RESULTS.max_steps_reached], ConvergenceWarning, stacklevel=2)
    if tight or interrupted or result == RESULTS.nonfinite:
        log_likelihood = (elbo_at.total - elbo_at.log_prior if tight
                          else jnp.full((), jnp.nan, dtype))
    else:
        log_likelihood = jnp.zeros((), dtype)
        for data, w, _ in src.chunks():
            log_likelihood = log_likelihood + model.log_likelihood(params, data, w)

    trace_arr = jnp.full((max_passes + 1,), jnp.nan, dtype).at[: len(trace)].set(
        jnp.asarray(trace, dtype)) if trace else jnp.full((max_passes + 1,), jnp.nan, dtype)
    one = lambda tree: jax.tree.map(lambda a: jnp.asarray(a)[None], tree)  # noqa: E731
    res = RESULTS.where(jnp.array(True), result, result)
    return Solution(
        params=params,
        log_likelihood=jnp.asarray(log_likelihood, dtype),
        elbo=elbo_at,
        elbo_trace=trace_arr,
        num_steps=jnp.asarray(t, jnp.int32),
        result=res,
        best_restart=jnp.asarray(0, jnp.int32),
        restart_params=one(params),
        restart_elbos=jnp.asarray([elbo_at.total], dtype),
        restart_results=jax.tree.map(lambda a: a[None], res),
        restart_num_steps=jnp.asarray([t], jnp.int32),
        restart_elbo_traces=trace_arr[None],
    )
