"""Plots of fits, models and model selection, drawn with matplotlib.

matplotlib is optional: it is imported when a function here is called (``pip install
matplotlib``, or ``pip install "emjax[plot]"``). Every function takes an ``ax`` to draw into
(a new figure when None) and returns the Axes, or a Figure for grids of panels. Nothing is
shown or saved: call ``fig.savefig(...)`` or ``plt.show()`` yourself.
"""

from __future__ import annotations

import math

import numpy as np

from ._models._bgmm import BayesianGaussianMixture
from ._models._gmm import GaussianMixture
from ._models._hmm import HiddenMarkovModel
from ._models._kmeans import KMeans
from ._models._lda import LatentDirichletAllocation
from ._solution import Solution

__all__ = ["bic_curves", "elbo_traces", "hmm_states", "lda_top_words", "mixture",
           "mixture_pairs"]

_SIGMA_STYLES = ("-", "--", ":", "-.")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(
            "emjax.plot needs matplotlib: pip install matplotlib (or pip install "
            '"emjax[plot]").') from e
    return plt


def _new_axes(ax, figsize=(6.4, 4.8)):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize, layout="tight")
    return ax


def _colour(k: int):
    return _pyplot().get_cmap("tab10")(k % 10)


# --------------------------------------------------------------------------- ELBO traces
def elbo_traces(solution: Solution, ax=None, *, best_colour="C3"):
    """Every restart's ELBO against the EM step, the best restart highlighted.

    ``solution.restart_elbo_traces[r, t]`` is the ELBO after ``t`` updates; `emjax.fit`
    pads it with NaN after the restart stopped, so each restart is drawn over its own
    ``restart_num_steps[r] + 1`` values. The other restarts are thin grey lines; restarts
    that failed (non-finite) are dotted.

    Args:
        solution: an `emjax.Solution` (from `emjax.fit`, not batched by ``vmap``).
        ax: matplotlib Axes to draw into; a new figure if None.
        best_colour: colour of the best restart's line.

    Returns:
        The Axes, holding one line per restart (the best one last, labelled "best").

    Raises:
        TypeError: ``solution`` is not an `emjax.Solution`.
        ValueError: a batched solution (more than one restart axis).
        ImportError: matplotlib is not installed.

    Example:
        >>> import jax, emjax, emjax.plot
        >>> X = emjax.datasets.load_old_faithful()
        >>> sol = emjax.fit(emjax.KMeans(2), X, key=jax.random.key(0), num_restarts=4)
        >>> ax = emjax.plot.elbo_traces(sol)
        >>> len(ax.get_lines())
        4
    """
    if not isinstance(solution, Solution):
        raise TypeError(f"`solution` must be an emjax.Solution; got {type(solution).__name__}.")
    traces = np.asarray(solution.restart_elbo_traces, np.float64)
    if traces.ndim != 2:
        raise ValueError("`solution` must come from one emjax.fit (restart traces of shape "
                         f"(R, T)); got traces of shape {traces.shape}.")
    steps = np.asarray(solution.restart_num_steps).reshape(-1)
    from ._solution import RESULTS

    failed = np.asarray(solution.restart_results == RESULTS.nonfinite).reshape(-1)
    best = int(solution.best_restart)
    ax = _new_axes(ax)
    for r in [r for r in range(traces.shape[0]) if r != best] + [best]:
        n = min(int(steps[r]) + 1, traces.shape[1])
        t = np.arange(n)
        if r == best:
            ax.plot(t, traces[r, :n], color=best_colour, linewidth=2.2, label="best", zorder=3)
        else:
            ax.plot(t, traces[r, :n], color="0.6", linewidth=0.8, alpha=0.7,
                    linestyle=":" if failed[r] else "-", zorder=2)
    ax.set_xlabel("EM step")
    ax.set_ylabel("ELBO")
    ax.set_title(f"ELBO of {traces.shape[0]} restart(s)")
    ax.legend(loc="lower right")
    return ax


# --------------------------------------------------------------------------- mixtures
def _mixture_parts(model, params):
    """``(weights (K,), means (K, D), covariances (K, D, D) or None)`` as float64 NumPy."""
    if isinstance(model, KMeans):
        centres = np.asarray(params.centers, np.float64)
        return np.full(len(centres), 1.0 / len(centres)), centres, None
    if isinstance(model, GaussianMixture):
        weights = np.asarray(params.weights, np.float64)
    elif isinstance(model, BayesianGaussianMixture):
        weights = np.asarray(model.expected_weights(params), np.float64)
    else:
        raise TypeError("`model` must be an emjax.GaussianMixture, BayesianGaussianMixture or "
                        f"KMeans; got {type(model).__name__}.")
    means = np.asarray(params.means, np.float64)
    K, D = means.shape
    cov = np.asarray(params.covariances, np.float64)
    ct = model.covariance_type
    if ct == "full":
        full = cov
    elif ct == "tied":
        full = np.broadcast_to(cov, (K, D, D))
    elif ct == "diag":
        full = cov[:, :, None] * np.eye(D)
    else:
        full = cov[:, None, None] * np.eye(D)
    return weights, means, full


def _check_data(X, num_features: int) -> np.ndarray:
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[1] != num_features:
        raise ValueError(f"`X` must have shape (N, {num_features}) like the parameters; got "
                         f"{X.shape}.")
    return X


def _check_dims(dims, D: int) -> tuple[int, int]:
    try:
        i, j = (int(d) for d in dims)
    except (TypeError, ValueError):
        raise ValueError(f"`dims` must be two feature indices; got {dims!r}.") from None
    if not (0 <= i < D and 0 <= j < D) or i == j:
        raise ValueError(f"`dims` must be two different feature indices in 0..{D - 1}; got "
                         f"{dims!r}.")
    return i, j


def _ellipse(mean, cov, n_sigma, colour, style):
    """The ``n_sigma`` Mahalanobis contour of a 2-D Gaussian as a matplotlib Ellipse."""
    from matplotlib.patches import Ellipse

    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 0.0)
    angle = math.degrees(math.atan2(vectors[1, -1], vectors[0, -1]))
    return Ellipse(xy=mean, width=2 * n_sigma * math.sqrt(values[-1]),
                   height=2 * n_sigma * math.sqrt(values[0]), angle=angle, fill=False,
                   edgecolor=colour, linestyle=style, linewidth=1.5)


def mixture(model, params, X, ax=None, dims=(0, 1), *, sigmas=(1, 2), min_weight=1e-3,
            feature_names=None):
    """The data coloured by their most probable component, with each component's ellipses.

    Points are coloured by ``model.predict(params, X)``. For `emjax.GaussianMixture` and
    `emjax.BayesianGaussianMixture` each component ``k`` gets the ellipses
    ``(x − μ_k)ᵀ Σ_k⁻¹ (x − μ_k) = s²`` for ``s`` in ``sigmas`` (1 σ solid, 2 σ dashed), drawn
    from the marginal covariance of the two plotted features (``Σ_k[dims][:, dims]``: the
    projection of the component onto that plane), and its mean as an ``X``. For the
    Bayesian mixture the means are ``E_q[μ_k]``, the covariances ``params.covariances``
    (the inverse of ``E_q[Λ_k]``) and the weights ``E_q[π_k]``. For `emjax.KMeans` only the
    centres are drawn.

    Args:
        model: an `emjax.GaussianMixture`, `emjax.BayesianGaussianMixture` or `emjax.KMeans`.
        params: its parameters (e.g. ``Solution.params``).
        X: data, shape ``(N, D)``.
        ax: matplotlib Axes; a new figure if None.
        dims: the two features to plot (indices).
        sigmas: the Mahalanobis radii of the ellipses.
        min_weight: components whose weight is below this are not drawn (e.g. the unused
            components of a Bayesian mixture).
        feature_names: optional names of the ``D`` features, for the axis labels.

    Returns:
        The Axes: one scatter collection, ``len(sigmas)`` ellipse patches per drawn
        Gaussian component, one marker line per drawn component.

    Raises:
        TypeError: an unsupported model.
        ValueError: ``X`` or ``dims`` that do not fit the parameters.
        ImportError: matplotlib is not installed.

    Example:
        >>> import numpy as np, emjax, emjax.plot
        >>> gmm = emjax.GaussianMixture(2, covariance_type="diag")
        >>> p = gmm.make_params(weights=np.array([0.5, 0.5]),
        ...                     means=np.array([[2.0, 55.0], [4.3, 80.0]]),
        ...                     covariances=np.array([[0.1, 35.0], [0.2, 35.0]]))
        >>> ax = emjax.plot.mixture(gmm, p, emjax.datasets.load_old_faithful())
        >>> len(ax.patches)  # a 1-sigma and a 2-sigma ellipse per component
        4
    """
    weights, means, covs = _mixture_parts(model, params)
    D = means.shape[1]
    X = _check_data(X, D)
    i, j = _check_dims(dims, D)
    labels = np.asarray(model.predict(params, X))
    ax = _new_axes(ax)
    _draw_mixture(ax, X, labels, weights, means, covs, (i, j), sigmas, min_weight)
    names = feature_names or [f"feature {d}" for d in range(D)]
    if len(names) != D:
        raise ValueError(f"`feature_names` must have {D} entries; got {len(names)}.")
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    if covs is not None:
        styles = ", ".join(f"{s} σ {_style_name(n)}" for n, s in enumerate(sigmas))
        ax.set_title(f"{type(model).__name__}, K={len(means)} ({styles})")
    else:
        ax.set_title(f"{type(model).__name__}, K={len(means)} (centres)")
    return ax


def _style_name(n: int) -> str:
    return ("solid", "dashed", "dotted", "dash-dot")[n % 4]


def _draw_mixture(ax, X, labels, weights, means, covs, dims, sigmas, min_weight, size=12):
    i, j = dims
    ax.scatter(X[:, i], X[:, j], s=size, c=[_colour(int(z)) for z in labels], alpha=0.7,
               edgecolors="none")
    for k in range(len(means)):
        if weights[k] < min_weight:
            continue
        colour = _colour(k)
        if covs is not None:
            block = covs[k][np.ix_([i, j], [i, j])]
            for n, s in enumerate(sigmas):
                ax.add_patch(_ellipse(means[k, [i, j]], block, s, colour,
                                      _SIGMA_STYLES[n % len(_SIGMA_STYLES)]))
        ax.plot(means[k, i], means[k, j], marker="X", markersize=10, color=colour,
                markeredgecolor="black", linestyle="none")
    ax.autoscale_view()


def mixture_pairs(model, params, X, *, dims=None, sigmas=(1, 2), min_weight=1e-3,
                  feature_names=None, figsize=None):
    """A grid of `mixture` panels for every pair of features (data with ``D > 2``).

    Panel ``(r, c)`` with ``r ≠ c`` plots feature ``dims[c]`` (horizontal) against
    ``dims[r]`` (vertical) with the components' ellipses; the diagonal panels show a
    histogram of each feature with the mixture's marginal density
    ``Σ_k π_k N(x_d | μ_kd, Σ_k,dd)`` (Gaussian models).

    Args:
        model, params, X: as for `mixture`.
        dims: the features to include (default: all ``D``).
        sigmas, min_weight, feature_names: as for `mixture`.
        figsize: matplotlib figure size; default ``2.6`` inches per panel.

    Returns:
        The Figure, with ``len(dims)²`` Axes.

    Raises:
        TypeError: an unsupported model.
        ValueError: ``X`` or ``dims`` that do not fit the parameters.
        ImportError: matplotlib is not installed.

    Example:
        >>> import numpy as np, emjax, emjax.plot
        >>> km = emjax.KMeans(2)
        >>> p = km.make_params(centers=np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]]))
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> fig = emjax.plot.mixture_pairs(km, p, X)
        >>> len(fig.axes)
        9
    """
    plt = _pyplot()
    weights, means, covs = _mixture_parts(model, params)
    D = means.shape[1]
    X = _check_data(X, D)
    dims = list(range(D)) if dims is None else [int(d) for d in dims]
    if len(dims) < 2 or len(set(dims)) != len(dims) or not all(0 <= d < D for d in dims):
        raise ValueError(f"`dims` must be at least two different feature indices in 0..{D - 1}; "
                         f"got {dims!r}.")
    names = feature_names or [f"feature {d}" for d in range(D)]
    if len(names) != D:
        raise ValueError(f"`feature_names` must have {D} entries; got {len(names)}.")
    labels = np.asarray(model.predict(params, X))
    n = len(dims)
    fig, axes = plt.subplots(n, n, figsize=figsize or (2.6 * n, 2.6 * n), squeeze=False)
    for r, dr in enumerate(dims):
        for c, dc in enumerate(dims):
            ax = axes[r, c]
            if r == c:
                ax.hist(X[:, dr], bins=min(40, max(10, len(X) // 10)), density=True,
                        color="0.75")
                if covs is not None:
                    grid = np.linspace(X[:, dr].min(), X[:, dr].max(), 200)
                    var = covs[:, dr, dr]
                    dens = np.sum(weights[:, None] * np.exp(
                        -0.5 * (grid[None] - means[:, dr, None]) ** 2 / var[:, None])
                        / np.sqrt(2 * np.pi * var[:, None]), axis=0)
                    ax.plot(grid, dens, color="black", linewidth=1.2)
            else:
                _draw_mixture(ax, X, labels, weights, means, covs, (dc, dr), sigmas, min_weight,
                              size=6)
            if r == n - 1:
                ax.set_xlabel(names[dc])
            if c == 0:
                ax.set_ylabel(names[dr])
    fig.suptitle(f"{type(model).__name__}, K={len(means)}")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- selection
def bic_curves(selection, ax=None, *, criterion="bic"):
    """BIC (or ICL) against the number of components, one line per covariance type, from
    `emjax.select`; the chosen model is starred.

    The values are emjax's (lower is better); mclust's BIC plot shows ``−BIC``. Failed fits
    (NaN) leave gaps.

    Args:
        selection: a `Selection` from `emjax.select`.
        ax: matplotlib Axes; a new figure if None.
        criterion: "bic" (default) or "icl".

    Returns:
        The Axes, with one line per covariance type (labelled with mclust's model name) and
        one star marker for the best model by ``criterion``.

    Raises:
        TypeError: ``selection`` is not a `Selection`.
        ValueError: an unknown ``criterion``.
        ImportError: matplotlib is not installed.

    Example:
        >>> import numpy as np, emjax.plot
        >>> rows = [emjax.SelectionRow(k, "full", -100.0 * k, 5 * k, 210.0 - 10 * k * (k < 3), 220.0,
        ...                      True, 1, 5, None, None) for k in (1, 2, 3)]
        >>> ax = emjax.plot.bic_curves(emjax.Selection(rows, (1, 2, 3), ("full",), "bic", 100, 2, 1))
        >>> len(ax.get_lines())  # the curve and the star
        2
    """
    from ._select import MCLUST_NAMES, Selection

    if not isinstance(selection, Selection):
        raise TypeError(f"`selection` must be a Selection from emjax.select; got "
                        f"{type(selection).__name__}.")
    if criterion not in ("bic", "icl"):
        raise ValueError(f"`criterion` must be 'bic' or 'icl'; got {criterion!r}.")
    values = selection.bic if criterion == "bic" else selection.icl
    ks = np.asarray(selection.components)
    order = np.argsort(ks)
    ax = _new_axes(ax)
    markers = "osD^v<>ph"
    for c, ct in enumerate(selection.covariance_types):
        ax.plot(ks[order], values[order, c], marker=markers[c % len(markers)], color=_colour(c),
                label=f"{ct} ({MCLUST_NAMES[ct]})")
    ranked = selection.ranked(criterion)
    if ranked:
        best = ranked[0]
        value = best.bic if criterion == "bic" else best.icl
        ax.plot([best.components], [value], marker="*", markersize=18, color="gold",
                markeredgecolor="black", linestyle="none",
                label=f"best: K={best.components}, {best.covariance_type}")
    name = criterion.upper()
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{name} (lower is better)")
    ax.set_xticks(ks)
    ax.set_title(f"{name} by number of components (mclust plots -{name})")
    ax.legend()
    return ax


# --------------------------------------------------------------------------- HMMs
def hmm_states(model, params, X, ax=None, *, dims=None, feature_names=None):
    """One observed sequence against time, the background shaded by its Viterbi states.

    The most probable state path ``ẑ = argmax_z p(z | x, θ)`` (``model.predict``) is drawn
    as coloured bands, one per run of a constant state (state ``k`` in colour ``k``), behind
    the observations (one line per plotted feature).

    Args:
        model: an `emjax.HiddenMarkovModel`.
        params: its parameters.
        X: one sequence: ``(T, D)`` vectors, or ``(T,)`` scalars or symbols.
        ax: matplotlib Axes; a new figure if None.
        dims: the features to draw (default: all).
        feature_names: optional names of the features, for the legend.

    Returns:
        The Axes: one line per plotted feature and one shaded band per run of a state.

    Raises:
        TypeError: ``model`` is not an `emjax.HiddenMarkovModel`.
        ValueError: ``X`` is not one sequence, or ``dims`` out of range.
        ImportError: matplotlib is not installed.

    Example:
        >>> import numpy as np, emjax, emjax.plot
        >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("spherical"))
        >>> p = hmm.make_params(initial=[0.5, 0.5], transition=[[0.9, 0.1], [0.1, 0.9]],
        ...                     means=np.array([[0.0], [5.0]]), covariances=np.ones(2))
        >>> x = np.array([[0.1], [0.2], [5.1], [4.8], [5.2], [0.0]])
        >>> ax = emjax.plot.hmm_states(hmm, p, x)
        >>> len(ax.patches)  # three runs: 0 0 | 1 1 1 | 0
        3
    """
    if not isinstance(model, HiddenMarkovModel):
        raise TypeError(f"`model` must be an emjax.HiddenMarkovModel; got {type(model).__name__}.")
    values = np.asarray(X)
    if values.ndim not in (1, 2):
        raise ValueError(f"`X` must be one sequence, (T,) or (T, D); got shape {values.shape}.")
    states = np.asarray(model.predict(params, X)).reshape(-1)
    if states.shape[0] != values.shape[0]:
        raise ValueError(f"`X` must be one sequence; got {values.shape[0]} steps but "
                         f"{states.shape[0]} states.")
    series = values.reshape(values.shape[0], -1).astype(np.float64)
    D = series.shape[1]
    dims = list(range(D)) if dims is None else [int(d) for d in dims]
    if not dims or not all(0 <= d < D for d in dims):
        raise ValueError(f"`dims` must be feature indices in 0..{D - 1}; got {dims!r}.")
    names = feature_names or ([f"feature {d}" for d in range(D)] if D > 1 else ["x"])
    if len(names) != D:
        raise ValueError(f"`feature_names` must have {D} entries; got {len(names)}.")
    ax = _new_axes(ax, figsize=(9.0, 3.6))
    t = np.arange(series.shape[0])
    change = np.flatnonzero(np.diff(states)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(states)]])
    seen = set()
    for a, b in zip(starts, ends, strict=True):
        k = int(states[a])
        ax.axvspan(a - 0.5, b - 0.5, color=_colour(k), alpha=0.18, linewidth=0,
                   label=None if k in seen else f"state {k}")
        seen.add(k)
    for d in dims:
        ax.plot(t, series[:, d], color="black" if len(dims) == 1 else None, linewidth=1.0,
                label=names[d])
    ax.set_xlim(-0.5, len(states) - 0.5)
    ax.set_xlabel("time step")
    ax.set_title(f"Viterbi states of a {model.num_states}-state hidden Markov model")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: (not labels[i].startswith("state "), labels[i]))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper right",
              fontsize="small", ncols=min(4, len(order)))
    return ax


# --------------------------------------------------------------------------- LDA
def lda_top_words(model, params, vocabulary, num_words: int = 10, *, ncols=None, figsize=None):
    """One bar panel per topic: its ``num_words`` most probable words and their
    probabilities ``E_q[β_kv] = λ_kv / Σ_u λ_ku``, the most probable on top.

    Args:
        model: an `emjax.LatentDirichletAllocation`.
        params: its parameters.
        vocabulary: the ``V`` words, in the column order of the counts.
        num_words: words per topic (``1..V``).
        ncols: panels per row (default: up to 5).
        figsize: matplotlib figure size; default about 2.6 by 0.3·num_words inches a panel.

    Returns:
        The Figure, with one Axes per topic (unused grid cells are removed).

    Raises:
        TypeError: ``model`` is not an `emjax.LatentDirichletAllocation`.
        ValueError: a vocabulary of the wrong length or a bad ``num_words``.
        ImportError: matplotlib is not installed.

    Example:
        >>> import numpy as np, emjax, emjax.plot
        >>> lda = emjax.LatentDirichletAllocation(2)
        >>> p = lda.make_params(topic_word=np.array([[5.0, 1.0, 1.0], [1.0, 1.0, 6.0]]))
        >>> fig = emjax.plot.lda_top_words(lda, p, ["geyser", "wait", "erupt"], num_words=2)
        >>> [ax.get_yticklabels()[0].get_text() for ax in fig.axes]  # the top word of each
        ['geyser', 'erupt']
    """
    if not isinstance(model, LatentDirichletAllocation):
        raise TypeError("`model` must be an emjax.LatentDirichletAllocation; got "
                        f"{type(model).__name__}.")
    probs = np.asarray(model.topic_word_distributions(params), np.float64)
    K, V = probs.shape
    vocabulary = list(vocabulary)
    if len(vocabulary) != V:
        raise ValueError(f"`vocabulary` must have V={V} words; got {len(vocabulary)}.")
    if isinstance(num_words, bool) or not isinstance(num_words, (int, np.integer)) or not (
            1 <= num_words <= V):
        raise ValueError(f"`num_words` must be an integer in 1..{V}; got {num_words!r}.")
    plt = _pyplot()
    ncols = min(K, 5) if ncols is None else int(ncols)
    if ncols < 1:
        raise ValueError(f"`ncols` must be >= 1; got {ncols}.")
    nrows = math.ceil(K / ncols)
    height = max(1.6, 0.3 * num_words + 0.8)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (2.8 * ncols, height * nrows),
                             squeeze=False)
    for k in range(nrows * ncols):
        ax = axes.flat[k]
        if k >= K:
            ax.remove()
            continue
        top = np.argsort(-probs[k], kind="stable")[:num_words]
        y = np.arange(num_words)[::-1]  # the most probable word on top
        ax.barh(y, probs[k, top], color=_colour(k))
        ax.set_yticks(y, [str(vocabulary[v]) for v in top])
        ax.set_title(f"topic {k}")
        ax.set_xlabel("probability")
    fig.tight_layout()
    return fig
