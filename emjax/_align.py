"""Label switching: match the components of two fits (or two labelings) by a linear-sum
assignment, and permute parameters accordingly.

The assignment solver is the Hungarian method in its shortest-augmenting-path form with dual
potentials (Kuhn 1955; Munkres 1957; Jonker & Volgenant 1987), written in NumPy: emjax does
not need SciPy at run time.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._models._bgmm import BayesianGaussianMixtureParams
from ._models._density import MixtureParams
from ._models._emissions import (
    CategoricalEmissionParams,
    GaussianEmissionParams,
    GaussianMixtureEmissionParams,
    PoissonEmissionParams,
)
from ._models._experts import MixtureOfExpertsParams
from ._models._gmm import GaussianMixtureParams
from ._models._hmm import HMMParams
from ._models._kmeans import KMeansParams
from ._models._lda import LDAParams
from ._models._student_t import StudentTMixtureParams

COSTS = ("means", "params")


# --------------------------------------------------------------------------- assignment
def linear_sum_assignment(cost, *, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Solve the linear-sum assignment problem by the Hungarian method.

    For an ``(n, m)`` cost matrix ``C``, find distinct rows ``r_i`` and distinct columns
    ``c_i``, ``i = 1..min(n, m)``, minimising (or, with ``maximize``, maximising)
    ``Σ_i C[r_i, c_i]``. Each row (of the smaller side) is added in turn by a shortest
    augmenting path over reduced costs ``C_ij − u_i − v_j ≥ 0``, whose dual potentials
    ``u, v`` are updated along the way (Kuhn 1955; Munkres 1957; Jonker & Volgenant 1987):
    ``O(n² m)`` time, here with the inner loop vectorised in NumPy. The result is the
    same as ``scipy.optimize.linear_sum_assignment``'s up to ties.

    Args:
        cost: a finite real ``(n, m)`` matrix (any array-like).
        maximize: maximise the total instead of minimising it.

    Returns:
        ``(rows, cols)``: integer arrays of length ``min(n, m)``, ``rows`` increasing, so
        that ``cost[rows, cols].sum()`` is optimal.

    Raises:
        ValueError: ``cost`` is not a 2-D array of finite real numbers.

    Example:
        >>> import numpy as np
        >>> from emjax._align import linear_sum_assignment
        >>> rows, cols = linear_sum_assignment(np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]]))
        >>> rows.tolist(), cols.tolist()
        ([0, 1, 2], [1, 0, 2])
    """
    c = np.asarray(cost)
    if c.ndim != 2:
        raise ValueError(f"`cost` must be a 2-D matrix; got shape {c.shape}.")
    if not (np.issubdtype(c.dtype, np.number) or c.dtype == np.bool_) or np.iscomplexobj(c):
        raise ValueError(f"`cost` must hold real numbers; got dtype {c.dtype}.")
    c = c.astype(np.float64)
    if not np.isfinite(c).all():
        raise ValueError("`cost` must be finite (no NaN or infinite entries).")
    if maximize:
        c = -c
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    n, m = c.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty.copy()
    # Shift so that all costs are >= 0 (the optimum does not change: every row is used once).
    c = c - c.min()
    u = np.zeros(n + 1)  # row potentials (index 0 unused)
    v = np.zeros(m + 1)  # column potentials; column 0 is a virtual start column
    owner = np.zeros(m + 1, dtype=np.intp)  # owner[j]: row (1-based) holding column j, 0: free
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        min_reduced = np.full(m + 1, np.inf)  # shortest reduced distance to each column
        came_from = np.zeros(m + 1, dtype=np.intp)  # previous column on that path
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used
            reduced = c[i0 - 1] - u[i0] - v[1:]
            better = free[1:] & (reduced < min_reduced[1:])
            min_reduced[1:][better] = reduced[better]
            came_from[1:][better] = j0
            candidates = np.where(free[1:], min_reduced[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            min_reduced[free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # augment along the path back to the virtual column
            j1 = came_from[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.flatnonzero(owner[1:])  # columns that were assigned
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows, kind="stable")
    return rows[order].astype(np.intp), cols[order].astype(np.intp)


# --------------------------------------------------------------------------- labels
class LabelAlignment(NamedTuple):
    """What `emjax.align_labels` returns.

    Attributes:
        permutation: ``(L,)`` integer array: label ``j`` of ``labels`` becomes
            ``permutation[j]``.
        labels: the relabelled labels, ``permutation[labels]``.
    """

    permutation: np.ndarray
    labels: np.ndarray


def _check_labels(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of integer labels; got shape {a.shape}.")
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer)
                                   or (np.issubdtype(a.dtype, np.floating)
                                       and np.all(np.isfinite(a)) and np.all(a == np.round(a)))):
        raise ValueError(f"`{name}` must hold integer labels; got dtype {a.dtype}.")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise ValueError(f"`{name}` must hold labels >= 0; got {int(a.min())}.")
    return a


def align_labels(reference_labels, labels, num_labels: int | None = None) -> LabelAlignment:
    r"""Relabel ``labels`` to agree as much as possible with ``reference_labels``.

    Label switching makes two clusterings of the same points equal up to a renaming of the
    labels. With the contingency table ``C[a, b] = #{n : reference_n = a, labels_n = b}``,
    the renaming ``σ`` maximising the agreement ``Σ_n 1[reference_n = σ(labels_n)] =
    Σ_b C[σ(b), b]`` is a linear-sum assignment, solved exactly by the Hungarian method.

    Args:
        reference_labels: ``(N,)`` integer labels in ``0..L−1`` (e.g. true classes or the
            labels of a reference fit).
        labels: ``(N,)`` integer labels to rename (e.g. ``model.predict(params, X)``).
        num_labels: ``L``, the number of labels (default: one more than the largest label
            in either array). Labels absent from both arrays are matched to each other.

    Returns:
        A `LabelAlignment` ``(permutation, labels)``: ``permutation[j]`` is the new name of
        label ``j``, and ``labels`` is ``permutation[labels]`` (NumPy arrays).

    Raises:
        ValueError: arrays that are not 1-D, of different lengths, with negative or
            non-integer labels, or a ``num_labels`` not above every label.

    Example:
        >>> import emjax
        >>> perm, new = emjax.align_labels([0, 0, 1, 1, 2], [2, 2, 0, 0, 1])
        >>> perm.tolist(), new.tolist()
        ([1, 2, 0], [0, 0, 1, 1, 2])
    """
    ref = _check_labels(reference_labels, "reference_labels")
    lab = _check_labels(labels, "labels")
    if ref.shape != lab.shape:
        raise ValueError(
            f"`reference_labels` and `labels` must have the same length; got {ref.size} and "
            f"{lab.size}.")
    largest = int(max(ref.max(initial=-1), lab.max(initial=-1))) + 1
    if num_labels is None:
        num_labels = max(largest, 1)
    else:
        if isinstance(num_labels, bool) or not isinstance(num_labels, (int, np.integer)):
            raise TypeError(f"`num_labels` must be an integer; got {num_labels!r}.")
        if num_labels < largest or num_labels < 1:
            raise ValueError(
                f"`num_labels` must be >= 1 and above every label (>= {largest}); got "
                f"{num_labels}.")
    L = int(num_labels)
    table = np.zeros((L, L), dtype=np.int64)
    np.add.at(table, (ref, lab), 1)
    # Rows: the labels to rename (b); columns: their new names (a); maximise agreement.
    rows, cols = linear_sum_assignment(table.T, maximize=True)
    permutation = np.empty(L, dtype=np.int64)
    permutation[rows] = cols
    return LabelAlignment(permutation, permutation[lab])


# --------------------------------------------------------------------------- components
def _covariance_is_tied(cov, num_components: int, covariance_type: str | None) -> bool:
    """Whether a Gaussian covariance array (unbatched) is one shared ``(D, D)`` matrix."""
    if covariance_type is not None:
        return covariance_type == "tied"
    if jnp.ndim(cov) != 2:
        return False
    if cov.shape[0] != num_components:
        return True
    if cov.shape[0] != cov.shape[1]:
        return False
    raise ValueError(
        f"Cannot tell from the shapes whether the {cov.shape} covariances are 'diag' (one row "
        f"per component) or 'tied' (one shared matrix): there are {num_components} components "
        "and as many features. Pass model= (the model the parameters belong to).")


def _covariance_type(model) -> str | None:
    if model is None:
        return None
    emissions = getattr(model, "emissions", None)
    if emissions is not None:
        return getattr(emissions, "covariance_type", None)
    return getattr(model, "covariance_type", None)


def _take(a, perm, axis: int = 0):
    return jnp.take(jnp.asarray(a), perm, axis=axis)


def _permute_one(params, perm, covariance_type: str | None):
    """``params`` (unbatched) with components in the order ``perm``."""
    take_all = lambda tree: jax.tree.map(lambda a: _take(a, perm), tree)  # noqa: E731
    if isinstance(params, GaussianMixtureParams):
        K = params.means.shape[0]
        tied = _covariance_is_tied(params.covariances, K, covariance_type)
        cov = params.covariances if tied else _take(params.covariances, perm)
        return GaussianMixtureParams(_take(params.weights, perm), _take(params.means, perm), cov)
    if isinstance(params, BayesianGaussianMixtureParams):
        return BayesianGaussianMixtureParams(
            weight_concentration=_take(params.weight_concentration, perm, axis=-1),
            mean_precision=_take(params.mean_precision, perm),
            means=_take(params.means, perm),
            degrees_of_freedom=_take(params.degrees_of_freedom, perm),
            covariances=_take(params.covariances, perm),
            mean_prior=params.mean_prior,
            covariance_prior=params.covariance_prior,
        )
    if isinstance(params, KMeansParams):
        return KMeansParams(_take(params.centers, perm))
    if isinstance(params, HMMParams):
        transition = _take(_take(params.transition, perm, axis=0), perm, axis=1)
        em = params.emissions
        if isinstance(em, GaussianEmissionParams):
            tied = _covariance_is_tied(em.covariances, em.means.shape[0], covariance_type)
            em = GaussianEmissionParams(_take(em.means, perm),
                                        em.covariances if tied else _take(em.covariances, perm))
        else:  # every other emission family keeps a leading state axis on every leaf
            em = take_all(em)
        return HMMParams(_take(params.initial, perm), transition, em)
    if isinstance(params, (StudentTMixtureParams, MixtureParams, MixtureOfExpertsParams)):
        return take_all(params)
    if isinstance(params, LDAParams):
        alpha = params.doc_topic_prior
        if jnp.ndim(alpha) == 1:
            alpha = _take(alpha, perm)
        return LDAParams(_take(params.topic_word, perm), alpha, params.topic_word_prior)
    raise TypeError(
        "Unsupported parameters: expected GaussianMixtureParams, BayesianGaussianMixtureParams, "
        "KMeansParams, HMMParams, StudentTMixtureParams, MixtureParams, MixtureOfExpertsParams "
        f"or LDAParams; got {type(params).__name__}.")


def _anchor(params):
    """The leaf whose leading axis is the component axis of unbatched parameters, and its
    number of dimensions when unbatched."""
    if isinstance(params, (GaussianMixtureParams, BayesianGaussianMixtureParams,
                           StudentTMixtureParams)):
        return params.means, 2
    if isinstance(params, KMeansParams):
        return params.centers, 2
    if isinstance(params, HMMParams):
        return params.transition, 2
    if isinstance(params, MixtureParams):
        return params.weights, 1
    if isinstance(params, MixtureOfExpertsParams):
        return params.gate_bias, 1
    if isinstance(params, LDAParams):
        return params.topic_word, 2
    _permute_one(params, None, None)  # raises the TypeError naming what is supported
    raise AssertionError  # pragma: no cover


def _batch_size(params, name: str) -> int | None:
    leaf, ndim = _anchor(params)
    extra = jnp.ndim(leaf) - ndim
    if extra == 0:
        return None
    if extra == 1:
        return int(leaf.shape[0])
    raise ValueError(f"`{name}` has {extra} leading batch axes; at most one (restarts) is "
                     "supported.")


def _num_components(params) -> int:
    leaf, ndim = _anchor(params)
    return int(leaf.shape[jnp.ndim(leaf) - ndim])


def _location(params, cost: str, covariance_type: str | None) -> np.ndarray:
    """One row per component: where that component is (``cost="means"``) or all of its
    parameters (``cost="params"``), flattened, as float64."""
    K = _num_components(params)
    if cost == "params":
        parts = []
        for leaf in jax.tree.leaves(_component_leaves(params, covariance_type)):
            a = np.asarray(leaf, np.float64)
            parts.append(a.reshape(K, -1))
        return np.concatenate(parts, axis=1)
    if isinstance(params, (GaussianMixtureParams, BayesianGaussianMixtureParams,
                           StudentTMixtureParams)):
        loc = params.means
    elif isinstance(params, KMeansParams):
        loc = params.centers
    elif isinstance(params, HMMParams):
        em = params.emissions
        if isinstance(em, GaussianEmissionParams):
            loc = em.means
        elif isinstance(em, GaussianMixtureEmissionParams):
            loc = jnp.einsum("km,kmd->kd", em.weights, em.means)
        elif isinstance(em, CategoricalEmissionParams):
            loc = em.probs
        elif isinstance(em, PoissonEmissionParams):
            loc = em.rates
        else:
            loc = jnp.concatenate([jnp.reshape(a, (K, -1)) for a in jax.tree.leaves(em)], axis=1)
    elif isinstance(params, MixtureParams):
        loc = jnp.concatenate([jnp.reshape(a, (K, -1)) for a in jax.tree.leaves(params.components)],
                              axis=1)
    elif isinstance(params, MixtureOfExpertsParams):
        loc = jnp.concatenate([params.coefs, params.intercepts[:, None]], axis=1)
    else:  # LDAParams: the expected topic-word distributions
        lam = params.topic_word
        loc = lam / jnp.sum(lam, axis=1, keepdims=True)
    return np.asarray(loc, np.float64).reshape(K, -1)


def _component_leaves(params, covariance_type):
    """The leaves of unbatched ``params`` that carry a component axis first, as a pytree."""
    if isinstance(params, GaussianMixtureParams):
        tied = _covariance_is_tied(params.covariances, params.means.shape[0], covariance_type)
        return (params.weights, params.means) + (() if tied else (params.covariances,))
    if isinstance(params, BayesianGaussianMixtureParams):
        return (jnp.moveaxis(params.weight_concentration, -1, 0), params.mean_precision,
                params.means, params.degrees_of_freedom, params.covariances)
    if isinstance(params, HMMParams):
        em = params.emissions
        if isinstance(em, GaussianEmissionParams):
            tied = _covariance_is_tied(em.covariances, em.means.shape[0], covariance_type)
            em = (em.means,) + (() if tied else (em.covariances,))
        # Transition rows depend on the order of the other states: only the self-transitions
        # belong to a state alone.
        return (params.initial, jnp.diagonal(params.transition), em)
    if isinstance(params, LDAParams):
        return (params.topic_word,)
    return params


def _check_same_kind(reference_params, params):
    if type(reference_params) is not type(params):
        raise TypeError(
            f"`reference_params` and `params` must be the same kind of parameters; got "
            f"{type(reference_params).__name__} and {type(params).__name__}.")
    if isinstance(params, HMMParams) and type(reference_params.emissions) is not type(params.emissions):
        raise TypeError(
            "`reference_params` and `params` must have the same kind of emissions; got "
            f"{type(reference_params.emissions).__name__} and {type(params.emissions).__name__}.")


def _index(tree, r: int):
    return jax.tree.map(lambda a: a[r], tree)


def match_components(reference_params, params, *, cost="means", model=None) -> np.ndarray:
    r"""The order of the components of ``params`` that best matches ``reference_params``.

    Finds the permutation ``σ`` minimising ``Σ_i c(i, σ(i))`` by the Hungarian method,
    where ``c(i, j)`` is the cost of matching reference component ``i`` with component
    ``j``:

    - ``cost="means"`` (default): ``‖m_i^ref − m_j‖²`` between the components' locations:
      the means (Gaussian, Bayesian Gaussian and Student-t mixtures; Gaussian emissions of
      a hidden Markov model), the centres (k-means), the mixture mean ``Σ_m w_km μ_km``
      (Gaussian-mixture emissions), the symbol probabilities (categorical emissions), the
      rates (Poisson emissions), the normalised topic-word distributions (LDA), the
      experts' coefficients and intercepts (mixture of experts), or every component leaf
      (`emjax.DensityMixture`, `emjax.DensityEmissions`);
    - ``cost="params"``: the squared distance between all of a component's parameters
      flattened (weights, means, covariances, ...; for a hidden Markov model the initial
      probability, the self-transition probability and the emission parameters);
    - an array ``(K, K)`` (or ``(R, K, K)`` for a batch): ``cost[i, j]`` given by you.

    Args:
        reference_params: parameters to match (no batch axis).
        params: parameters of the same kind, or a batch of them with a leading restart
            axis (e.g. `Solution.restart_params`).
        cost: "means", "params" or a cost array, as above.
        model: the model the parameters belong to; needed only for Gaussian covariances
            whose type the shapes do not tell ("diag" or "tied" when there are as many
            components as features).

    Returns:
        ``σ`` as a NumPy integer array ``(K,)``, or ``(R, K)`` for a batch: component ``i``
        of the aligned parameters is component ``σ[i]`` of ``params`` (see
        `permute_components`). A label ``z`` predicted with ``params`` becomes
        ``argsort(σ)[z]``.

    Raises:
        TypeError: parameters of different or unsupported kinds.
        ValueError: a different number of components, a batched ``reference_params``, a
            cost array of the wrong shape or not finite, an unknown cost name, or
            ambiguous covariances without ``model``.

    Example:
        >>> import numpy as np, emjax
        >>> km = emjax.KMeans(3)
        >>> ref = km.make_params(centers=np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]))
        >>> other = km.make_params(centers=np.array([[0.1, 5.2], [0.2, 0.1], [4.9, -0.1]]))
        >>> emjax.match_components(ref, other).tolist()
        [1, 2, 0]
    """
    _check_same_kind(reference_params, params)
    if _batch_size(reference_params, "reference_params") is not None:
        raise ValueError("`reference_params` must be one set of parameters, without a batch "
                         "axis.")
    batch = _batch_size(params, "params")
    K = _num_components(reference_params)
    if _num_components(params) != K:
        raise ValueError(
            f"`reference_params` has {K} components and `params` {_num_components(params)}; "
            "they must have as many.")
    ctype = _covariance_type(model)
    if isinstance(cost, str):
        if cost not in COSTS:
            raise ValueError(f"`cost` must be one of {', '.join(map(repr, COSTS))} or a cost "
                             f"array; got {cost!r}.")
        ref_loc = _location(reference_params, cost, ctype)
        items = [params] if batch is None else [_index(params, r) for r in range(batch)]
        costs = []
        for p in items:
            loc = _location(p, cost, ctype)
            costs.append(np.sum(np.square(ref_loc[:, None, :] - loc[None, :, :]), axis=-1))
        costs = np.stack(costs)
    else:
        costs = np.asarray(cost, dtype=np.float64)
        expected = (K, K) if batch is None else (batch, K, K)
        if costs.shape != expected:
            raise ValueError(f"A `cost` array must have shape {expected}; got {costs.shape}.")
        if not np.isfinite(costs).all():
            raise ValueError("A `cost` array must be finite.")
        costs = costs.reshape((-1, K, K))
    perms = np.stack([linear_sum_assignment(c)[1] for c in costs])
    return perms[0] if batch is None else perms


def permute_components(params, permutation, *, model=None):
    r"""Reorder the components (or hidden states) of ``params``: component ``i`` of the result
    is component ``permutation[i]`` of ``params``.

    Every parameter with a component axis is permuted along it: weights, means,
    covariances (except a "tied" covariance, which is shared), degrees of freedom, the
    Dirichlet or stick-breaking parameters of `emjax.BayesianGaussianMixtureParams`, centres,
    topic-word parameters, and for a hidden Markov model the initial probabilities, the
    rows *and* columns of the transition matrix (``A'_ij = A_{σ(i) σ(j)}``) and the
    emission parameters. The likelihood of any data is unchanged, with one exception: a
    Bayesian mixture with a "dirichlet_process" weight prior, whose stick-breaking order
    carries meaning (its expected weights change).

    Args:
        params: parameters, or a batch of them with a leading restart axis.
        permutation: integer array ``(K,)``, a permutation of ``0..K−1``; ``(R, K)`` for a
            batch (one per restart), or ``(K,)`` applied to every restart.
        model: the model the parameters belong to; needed only for Gaussian covariances
            whose type the shapes do not tell (as in `match_components`).

    Returns:
        Parameters of the same kind and shapes, permuted.

    Raises:
        TypeError: unsupported parameters.
        ValueError: ``permutation`` is not a permutation of ``0..K−1`` of the right shape.

    Example:
        >>> import numpy as np, emjax
        >>> km = emjax.KMeans(2)
        >>> p = km.make_params(centers=np.array([[0.0], [1.0]]))
        >>> emjax.permute_components(p, [1, 0]).centers.tolist()
        [[1.0], [0.0]]
    """
    batch = _batch_size(params, "params")
    K = _num_components(params)
    perm = np.asarray(permutation)
    if not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(f"`permutation` must hold integers; got dtype {perm.dtype}.")
    allowed = [(K,)] + ([] if batch is None else [(batch, K)])
    if perm.shape not in allowed:
        raise ValueError(f"`permutation` must have shape {' or '.join(map(str, allowed))}; got "
                         f"{perm.shape}.")
    if not (np.sort(perm, axis=-1) == np.arange(K)).all():
        raise ValueError(f"`permutation` must be a permutation of 0..{K - 1}; got {perm.tolist()}.")
    ctype = _covariance_type(model)
    if batch is None:
        return _permute_one(params, perm, ctype)
    perm = np.broadcast_to(perm, (batch, K))
    return jax.vmap(lambda p, s: _permute_one(p, s, ctype))(params, jnp.asarray(perm))


def align_components(reference_params, params, *, cost="means", model=None):
    r"""Reorder the components of ``params`` to best match ``reference_params`` (label
    switching).

    ``permute_components(params, match_components(reference_params, params, cost=cost,
    model=model))``: the permutation minimising the total matching cost (see
    `match_components`) is found by the Hungarian method, and every parameter with a
    component axis is permuted along it (see `permute_components`; for a hidden Markov
    model the transition matrix's rows and columns and the initial probabilities too).

    Args:
        reference_params: the parameters to match, without a batch axis.
        params: parameters of the same kind, or a batch of them with a leading restart
            axis (e.g. `Solution.restart_params`: then each restart is aligned on its own).
        cost: "means" (default), "params", or a ``(K, K)`` / ``(R, K, K)`` cost array.
        model: the model, needed only when the covariance type is ambiguous from shapes.

    Returns:
        ``params`` with its components permuted, same kind and shapes.

    Raises:
        TypeError: parameters of different or unsupported kinds.
        ValueError: different numbers of components, or an invalid ``cost``.

    Example:
        >>> import numpy as np, emjax
        >>> gmm = emjax.GaussianMixture(2, covariance_type="spherical")
        >>> ref = gmm.make_params(weights=np.array([0.3, 0.7]), means=np.array([[0.0], [4.0]]),
        ...                       covariances=np.array([1.0, 2.0]))
        >>> swapped = gmm.make_params(weights=np.array([0.7, 0.3]),
        ...                           means=np.array([[4.1], [0.2]]),
        ...                           covariances=np.array([2.0, 1.0]))
        >>> emjax.align_components(ref, swapped).weights.tolist()
        [0.3, 0.7]
    """
    perm = match_components(reference_params, params, cost=cost, model=model)
    return permute_components(params, perm, model=model)
