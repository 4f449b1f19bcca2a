"""`emjax.select`: choose a Gaussian mixture by BIC or ICL over a grid of component counts and
covariance types, as R's mclust does with ``Mclust(data)``."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import time
import warnings
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

from ._custom_types import PRNGKeyArray
from ._fit import fit
from ._models._gmm import COVARIANCE_TYPES, GMM_INITS, GaussianMixture
from ._solution import RESULTS, ConvergenceWarning, Solution
from ._validation import (
    check_choice,
    check_key,
    check_matrix,
    check_nonnegative_scalar,
    check_positive_int,
    check_sample_weight,
)

CRITERIA = ("bic", "icl")
# mclust's names for the covariance structures that emjax's types are (Fraley & Raftery 2002).
MCLUST_NAMES = {"full": "VVV", "diag": "VVI", "spherical": "VII", "tied": "EEE"}
# A covariance whose unregularised part ``Σ − reg_covar·I`` has a reciprocal condition number
# below this many machine epsilons (of the fit's dtype) is treated as singular.
_SINGULAR_EPS = 1000


@dataclasses.dataclass(frozen=True)
class SelectionRow:
    """One cell of a `Selection` grid: a Gaussian mixture with ``components`` components and
    one covariance type, fitted by `emjax.fit` with restarts.

    Attributes:
        components: the number of components ``K``.
        covariance_type: "full", "diag", "spherical" or "tied" (mclust's VVV, VVI, VII, EEE).
        log_likelihood: ``Σ_n w_n log p(x_n | θ̂)`` at the best restart; NaN if the fit failed.
        num_params: the number of free parameters ``p`` (`GaussianMixture.num_free_params`).
        bic: ``−2 log L + p log N`` (lower is better); NaN if the fit failed.
        icl: ``BIC + 2 · CE`` with the classification entropy ``CE`` (see `emjax.select`);
            NaN if the fit failed.
        converged: whether the best restart converged (False for a failed fit).
        converged_restarts: how many of the restarts converged.
        num_steps: EM steps of the best restart (0 if the fit failed).
        error: why the fit failed (too few points, a singular covariance, a non-finite
            likelihood), or None for a usable fit.
        model: the `emjax.GaussianMixture` of this cell.
        params: the fitted `emjax.GaussianMixtureParams` (None if the fit raised).
        solution: the `emjax.Solution` of the fit (None if the fit raised).
    """

    components: int
    covariance_type: str
    log_likelihood: float
    num_params: int
    bic: float
    icl: float
    converged: bool
    converged_restarts: int
    num_steps: int
    error: str | None
    model: GaussianMixture = dataclasses.field(repr=False)
    params: Any = dataclasses.field(default=None, repr=False)
    solution: Solution | None = dataclasses.field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        """Whether this cell has no usable fit (its criteria are NaN)."""
        return self.error is not None

    def record(self) -> dict:
        """The row's table entries (everything except ``model``, ``params``, ``solution``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("model", "params", "solution")}


_COLUMNS = ("components", "covariance_type", "log_likelihood", "num_params", "bic", "icl",
            "converged", "converged_restarts", "num_steps", "error")


class Selection:
    """The outcome of `emjax.select`: one fitted Gaussian mixture per number of components
    and covariance type, their BIC and ICL, and the chosen model.

    It reads like a table: ``rows`` holds one `SelectionRow` per cell, in the order of the
    grid (components first, then covariance types, as given to `emjax.select`); ``bic``
    and ``icl`` are the same values as ``(num components, num covariance types)`` arrays;
    ``to_dict()`` gives the columns and ``to_pandas()`` a ``pandas.DataFrame``;
    ``print(selection)`` shows the BIC grid, the three best models and the chosen one, in
    the manner of mclust's ``summary(mclustBIC(...))``.

    Attributes:
        rows: one `SelectionRow` per cell.
        components: the numbers of components of the grid's rows.
        covariance_types: the covariance types of the grid's columns.
        criterion: "bic" or "icl": what ``best`` minimises.
        num_points: ``N``, the number of data points (the sum of the sample weights, if any).
        num_features: ``D``.
        num_restarts: restarts per fit.
    """

    def __init__(self, rows, components, covariance_types, criterion, num_points,
                 num_features, num_restarts):
        self.rows: tuple[SelectionRow, ...] = tuple(rows)
        self.components: tuple[int, ...] = tuple(components)
        self.covariance_types: tuple[str, ...] = tuple(covariance_types)
        self.criterion: str = criterion
        self.num_points: float = num_points
        self.num_features: int = num_features
        self.num_restarts: int = num_restarts

    def _grid(self, name: str) -> np.ndarray:
        values = np.array([getattr(r, name) for r in self.rows], dtype=np.float64)
        return values.reshape(len(self.components), len(self.covariance_types))

    @property
    def bic(self) -> np.ndarray:
        """BIC of every cell, shape ``(len(components), len(covariance_types))``; NaN where
        the fit failed. Lower is better (mclust's table shows ``−BIC``)."""
        return self._grid("bic")

    @property
    def icl(self) -> np.ndarray:
        """ICL of every cell, shaped like `bic`; NaN where the fit failed. Lower is better."""
        return self._grid("icl")

    @property
    def log_likelihood(self) -> np.ndarray:
        """Log-likelihood of every cell, shaped like `bic`; NaN where the fit failed."""
        return self._grid("log_likelihood")

    def ranked(self, criterion: str | None = None) -> list[SelectionRow]:
        """The usable rows, best first by ``criterion`` (default: the selection's own).

        Ties keep the grid order, so the model with fewer components comes first.
        """
        criterion = self.criterion if criterion is None else check_choice(
            criterion, "criterion", CRITERIA)
        usable = [r for r in self.rows if not r.failed]
        return sorted(usable, key=lambda r: getattr(r, criterion))

    @property
    def best(self) -> SelectionRow | None:
        """The chosen row (lowest ``criterion``), with its ``model``, ``params`` and
        ``solution``; None if every fit failed."""
        ranked = self.ranked()
        return ranked[0] if ranked else None

    @property
    def failed(self) -> list[SelectionRow]:
        """The rows whose fit failed, each with its ``error``."""
        return [r for r in self.rows if r.failed]

    def to_dict(self) -> dict[str, list]:
        """The table as columns: ``{"components": [...], "covariance_type": [...],
        "log_likelihood": [...], "num_params": [...], "bic": [...], "icl": [...],
        "converged": [...], "converged_restarts": [...], "num_steps": [...],
        "error": [...]}``, one entry per row, in the order of ``rows``."""
        records = [r.record() for r in self.rows]
        return {name: [rec[name] for rec in records] for name in _COLUMNS}

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (the columns of `to_dict`).

        Raises:
            ImportError: pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(
                "Selection.to_pandas needs pandas: pip install pandas (or use to_dict())."
            ) from e
        return pd.DataFrame(self.to_dict())

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __repr__(self) -> str:
        best = self.best
        chosen = "none" if best is None else f"K={best.components} {best.covariance_type!r}"
        return (f"Selection({len(self.components)} component counts x "
                f"{len(self.covariance_types)} covariance types, criterion={self.criterion!r}, "
                f"best: {chosen})")

    def __str__(self) -> str:
        return _format(self)


def _format(sel: Selection) -> str:
    """The mclust-like printout of a `Selection`."""
    crit = sel.criterion.upper()
    names = [f"{t} ({MCLUST_NAMES[t]})" for t in sel.covariance_types]
    width = max(12, *(len(n) for n in names))
    lines = [
        f"Gaussian mixtures fitted by EM to {_number(sel.num_points)} points in "
        f"{sel.num_features} dimension(s), {sel.num_restarts} restart(s) per fit.",
        "BIC = -2 log L + p log N (scikit-learn's and emjax's sign: lower is better; mclust "
        "reports -BIC, where higher is better).",
        "",
        "BIC:",
        " K " + "".join(f"{n:>{width + 2}}" for n in names),
    ]
    for i, K in enumerate(sel.components):
        values = sel.bic[i]
        cells = "".join(f"{'NA' if math.isnan(v) else f'{v:.3f}':>{width + 2}}" for v in values)
        lines.append(f"{K:>2} " + cells)
    ranked = sel.ranked()
    lines.append("")
    if not ranked:
        lines.append("Every fit failed; there is no model to choose.")
    else:
        top = ranked[:3]
        lines.append(f"Top {len(top)} model(s) by {crit} (lowest first):")
        for r in top:
            lines.append(f"  {r.covariance_type} ({MCLUST_NAMES[r.covariance_type]}), "
                         f"K={r.components}: BIC {r.bic:.3f}, ICL {r.icl:.3f}")
        b = ranked[0]
        lines.append("")
        lines.append(
            f"Chosen by {crit}: K={b.components}, covariance_type={b.covariance_type!r} "
            f"(mclust {MCLUST_NAMES[b.covariance_type]}), log-likelihood {b.log_likelihood:.3f}, "
            f"{b.num_params} free parameters, BIC {b.bic:.3f}, ICL {b.icl:.3f}, "
            f"{'converged' if b.converged else 'did not converge'} "
            f"({b.converged_restarts}/{sel.num_restarts} restarts converged)."
        )
    failed = sel.failed
    if failed:
        lines.append("")
        lines.append("Failed fits (NA above):")
        for r in failed:
            lines.append(f"  K={r.components} {r.covariance_type}: {r.error}")
    return "\n".join(lines)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# --------------------------------------------------------------------------- validation
def _as_tuple(value, name: str, check_item, kind: str) -> tuple:
    if isinstance(value, (str, int, np.integer)):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"`{name}` must be {kind} or an iterable of them; got {value!r}.") from None
    if not items:
        raise ValueError(f"`{name}` must not be empty.")
    items = tuple(check_item(v) for v in items)
    if len(set(items)) != len(items):
        raise ValueError(f"`{name}` must not repeat values; got {items}.")
    return items


def _check_components(components) -> tuple[int, ...]:
    def one(k):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"`components` must hold integers >= 1; got {k!r}.")
        if k < 1:
            raise ValueError(f"`components` must hold integers >= 1; got {k}.")
        return int(k)

    return _as_tuple(components, "components", one, "an integer >= 1")


def _check_covariance_types(covariance_types) -> tuple[str, ...]:
    if isinstance(covariance_types, int):
        raise TypeError(f"`covariance_types` must hold strings; got {covariance_types!r}.")
    return _as_tuple(covariance_types, "covariance_types",
                     lambda t: check_choice(t, "covariance_types", COVARIANCE_TYPES),
                     "a covariance type")


# --------------------------------------------------------------------------- one cell
def _full_covariances(covariance_type: str, cov: np.ndarray, K: int, D: int) -> np.ndarray:
    """Every component's covariance as a ``(K, D, D)`` array."""
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (K, D, D))
    if covariance_type == "diag":
        return cov[:, :, None] * np.eye(D)
    return cov[:, None, None] * np.eye(D)


def _singular_components(model: GaussianMixture, params) -> list[int]:
    """Components whose covariance, without ``reg_covar``, is numerically singular: the
    component collapsed onto fewer points than it needs (e.g. one point, or points on a
    line for a 2-D full covariance), and only ``reg_covar`` keeps it positive definite."""
    cov = np.asarray(params.covariances, np.float64)
    D = params.means.shape[-1]
    K = model.num_components
    raw = _full_covariances(model.covariance_type, cov, K, D) - float(model.reg_covar) * np.eye(D)
    eig = np.linalg.eigvalsh(raw)
    eps = np.finfo(np.dtype(params.means.dtype)).eps
    singular = eig[:, 0] <= _SINGULAR_EPS * eps * np.maximum(eig[:, -1], np.finfo(np.float64).tiny)
    return [int(k) for k in np.flatnonzero(singular)]


def _fit_cell(X, weights, total_weight, key, K, covariance_type, options) -> SelectionRow:
    model = GaussianMixture(K, covariance_type=covariance_type, reg_covar=options["reg_covar"],
                            init=options["init"])
    num_params = model.num_free_params(X.shape[1])
    nan = math.nan
    failed = dict(log_likelihood=nan, num_params=num_params, bic=nan, icl=nan, converged=False,
                  converged_restarts=0, num_steps=0, model=model)
    if X.shape[0] < K:
        return SelectionRow(K, covariance_type, error=(
            f"too few points: {X.shape[0]} rows for {K} components"), **failed)
    try:
        sol = fit(model, X, key=key, num_restarts=options["num_restarts"],
                  sample_weight=weights, max_steps=options["max_steps"], rtol=options["rtol"],
                  atol=options["atol"], restart_batch_size=options["restart_batch_size"],
                  throw=False)
    except ValueError as e:  # data the model cannot fit; the grid goes on
        return SelectionRow(K, covariance_type, error=str(e), **failed)
    converged_restarts = int(np.sum(np.asarray(sol.restart_results == RESULTS.converged)))
    failed.update(converged_restarts=converged_restarts, num_steps=int(sol.num_steps),
                  params=sol.params, solution=sol)
    log_likelihood = float(sol.log_likelihood)
    if bool(sol.result == RESULTS.nonfinite) or not math.isfinite(log_likelihood):
        return SelectionRow(K, covariance_type, error=RESULTS[RESULTS.nonfinite], **failed)
    singular = _singular_components(model, sol.params)
    if singular:
        which = "the shared covariance" if covariance_type == "tied" else (
            f"component(s) {', '.join(map(str, singular))}")
        return SelectionRow(K, covariance_type, error=(
            f"singular covariance: {which} collapsed onto too few distinct points (only "
            "reg_covar keeps it positive definite)"), **failed)
    bic = -2.0 * log_likelihood + num_params * math.log(total_weight)
    # Classification entropy −Σ_n w_n log max_k p(z_n = k | x_n, θ̂), from the log of the
    # largest responsibility (no log of a tiny probability is taken).
    proba = np.asarray(model.predict_proba(sol.params, X), np.float64)
    w = np.ones(X.shape[0]) if weights is None else np.asarray(weights, np.float64)
    entropy = -float(np.sum(w * np.log(np.max(proba, axis=1))))
    return SelectionRow(
        K, covariance_type, log_likelihood=log_likelihood, num_params=num_params, bic=bic,
        icl=bic + 2.0 * entropy, converged=bool(sol.converged),
        converged_restarts=converged_restarts, num_steps=int(sol.num_steps), error=None,
        model=model, params=sol.params, solution=sol,
    )


# --------------------------------------------------------------------------- select
def select(
    X,
    *,
    components: Iterable[int] | int = range(1, 10),
    covariance_types: Iterable[str] | str = COVARIANCE_TYPES,
    num_restarts: int = 10,
    key: PRNGKeyArray | None = None,
    criterion: str = "bic",
    max_steps: int = 500,
    rtol: float = 1e-5,
    atol: float = 0.0,
    sample_weight=None,
    reg_covar=1e-6,
    init: str = "kmeans++",
    restart_batch_size: int | None = None,
    max_workers: int | None = None,
    progress=None,
) -> Selection:
    r"""Fit Gaussian mixtures over a grid of component counts and covariance types and choose
    one by BIC or ICL, like R's mclust (``Mclust(data)``, Fraley & Raftery 2002).

    Every cell ``(K, covariance_type)`` of the grid is an `emjax.fit` of
    ``emjax.GaussianMixture(K, covariance_type)`` with ``num_restarts`` restarts, run
    together by ``vmap`` in one compiled program, and the best restart is kept. The
    covariance types are mclust's models ``VVV`` ("full"), ``VVI`` ("diag"), ``VII``
    ("spherical") and ``EEE`` ("tied").

    **BIC** (Schwarz 1978), with the sign of scikit-learn's ``GaussianMixture.bic`` and
    `emjax.GaussianMixture.bic` (lower is better; mclust reports ``−BIC``, higher is better):

    ``BIC = −2 log L(θ̂) + p log N``,

    with ``log L(θ̂) = Σ_n w_n log p(x_n | θ̂)``, ``p`` the number of free parameters and
    ``N = Σ_n w_n`` (the number of points without ``sample_weight``).

    **ICL** (the integrated completed likelihood, Biernacki, Celeux & Govaert 2000, in its
    BIC-like approximation, as mclust's ``icl``), on the same scale and with the same
    sign (lower is better):

    ``ICL = BIC + 2 · CE``, ``CE = −Σ_n w_n Σ_k ẑ_nk log t_nk = −Σ_n w_n log max_k t_nk ≥ 0``,

    where ``t_nk = p(z_n = k | x_n, θ̂)`` are the responsibilities and ``ẑ_n`` the MAP
    (one-hot) classification. ``−ICL/2`` approximates ``log p(x, ẑ | model)``: ICL adds to
    BIC a penalty for overlapping components, so it prefers well-separated clusters.
    mclust reports ``−ICL`` (higher is better).

    A cell whose fit fails is kept in the table with NaN criteria and the reason in
    ``error``, and is never chosen: fewer points than components, a non-finite
    likelihood, or a singular covariance (a component collapsed onto too few distinct
    points, so that its covariance without ``reg_covar`` has a reciprocal condition number
    below ``1000·eps`` of the data's dtype).

    Each cell is fitted with the same ``key``, so the row ``(K, t)`` is reproduced by
    ``emjax.fit(emjax.GaussianMixture(K, t), X, key=key, num_restarts=num_restarts, ...)``,
    and a repeated call with the same arguments gives the same table. The cells are
    fitted ``max_workers`` at a time by threads (compiling, which dominates small fits,
    runs outside the GIL); the results do not depend on it.

    Args:
        X: data, shape ``(N, D)``, finite.
        components: the numbers of components to try (default ``1..9``, as mclust); an int
            for one.
        covariance_types: among "full", "diag", "spherical", "tied" (default: all four);
            a string for one.
        num_restarts: restarts per fit (``>= 1``), vmapped.
        key: a JAX PRNG key for the initialisations; default ``jax.random.key(0)``.
        criterion: "bic" (default) or "icl": what `Selection.best` minimises.
        max_steps, rtol, atol: EM's stopping rule per restart (see `emjax.fit`);
            ``max_steps`` defaults to 500 (mclust iterates to convergence).
        sample_weight: optional non-negative weights, shape ``(N,)`` (replication weights:
            a weight of 2 counts a row twice, also in ``N`` above).
        reg_covar: added to every covariance's diagonal (see `emjax.GaussianMixture`).
        init: the restarts' initialisation (see `emjax.GaussianMixture`).
        restart_batch_size: passed to `emjax.fit` to bound memory with many restarts.
        max_workers: how many cells to fit at a time (threads); default: the number of CPU
            cores, at most the number of cells.
        progress: None, or a function ``progress(info)`` called (from the calling thread)
            after each cell, with ``info`` a dict: ``done`` and ``num_cells`` (cells
            finished and in all), ``row`` (the finished cell's `SelectionRow`) and
            ``elapsed`` (seconds since the call).

    Returns:
        A `Selection`: ``rows``, the ``bic`` and ``icl`` grids, ``best`` (with its
        ``model``, ``params`` and ``solution``), ``to_dict()``, ``to_pandas()``, and an
        mclust-like printout with ``print``.

    Raises:
        TypeError: an argument of the wrong type (e.g. non-integer ``components``, a key
            that is not a JAX PRNG key).
        ValueError: invalid data or options (NaN in ``X``, an unknown covariance type or
            criterion, repeated or non-positive component counts, bad ``sample_weight``,
            negative tolerances), before any fit.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> sel = emjax.select(X, components=2, covariance_types=("tied",), num_restarts=2,
        ...                    key=jax.random.key(0))
        >>> sel.bic.shape  # (components, covariance types)
        (1, 1)
        >>> sel.best.components, sel.best.covariance_type
        (2, 'tied')
        >>> round(sel.best.bic, 2)
        2325.22
        >>> sel.best.params.means.shape
        (2, 2)

    References:
        C. Biernacki, G. Celeux and G. Govaert (2000), "Assessing a mixture model for
        clustering with the integrated completed likelihood", IEEE Transactions on Pattern
        Analysis and Machine Intelligence 22(7), 719–725.
        C. Fraley and A. E. Raftery (2002), "Model-based clustering, discriminant analysis,
        and density estimation", Journal of the American Statistical Association 97,
        611–631.
        G. Schwarz (1978), "Estimating the dimension of a model", Annals of Statistics 6,
        461–464.
    """
    X = check_matrix(X, "X")
    components = _check_components(components)
    covariance_types = _check_covariance_types(covariance_types)
    num_restarts = check_positive_int(num_restarts, "num_restarts")
    key = jax.random.key(0) if key is None else check_key(key)
    criterion = check_choice(criterion, "criterion", CRITERIA)
    max_steps = check_positive_int(max_steps, "max_steps", minimum=0)
    rtol = float(check_nonnegative_scalar(rtol, "rtol"))
    atol = float(check_nonnegative_scalar(atol, "atol"))
    reg_covar = float(check_nonnegative_scalar(reg_covar, "reg_covar"))
    init = check_choice(init, "init", GMM_INITS)
    if restart_batch_size is not None:
        restart_batch_size = check_positive_int(restart_batch_size, "restart_batch_size")
    if max_workers is not None:
        max_workers = check_positive_int(max_workers, "max_workers")
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a function taking one dict, or None; got {progress!r}.")
    weights = None
    if sample_weight is not None:
        weights = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        total_weight = float(np.sum(np.asarray(weights, np.float64)))
    else:
        total_weight = float(X.shape[0])

    options = dict(num_restarts=num_restarts, max_steps=max_steps, rtol=rtol, atol=atol,
                   reg_covar=reg_covar, init=init, restart_batch_size=restart_batch_size)
    grid = [(K, t) for K in components for t in covariance_types]
    workers = max_workers or max(1, min(len(grid), os.cpu_count() or 1))
    workers = min(workers, len(grid))
    run = lambda cell: _fit_cell(X, weights, total_weight, key, *cell, options)  # noqa: E731
    # Convergence is reported per cell; the warnings filter is process-wide, so it is set
    # once here rather than in the worker threads.
    start = time.perf_counter()

    def report(done, row):
        if progress is not None:
            progress({"done": done, "num_cells": len(grid), "row": row,
                      "elapsed": time.perf_counter() - start})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if workers == 1:
            rows = []
            for cell in grid:
                rows.append(run(cell))
                report(len(rows), rows[-1])
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(run, cell): i for i, cell in enumerate(grid)}
                rows = [None] * len(grid)
                for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                    rows[futures[future]] = future.result()
                    report(done, rows[futures[future]])
    return Selection(rows, components, covariance_types, criterion, total_weight, X.shape[1],
                     num_restarts)
