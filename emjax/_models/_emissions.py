"""Emission models of a hidden Markov model: ``p(x_t | z_t = k, θ)`` with their own
statistics, M-step and initialisation."""

import abc
import dataclasses
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._accumulate import Blocks
from .._custom_types import Array, Float, PRNGKeyArray, PyTree
from .._kmeanspp import kmeans_plusplus, squared_distances
from .._validation import (
    as_float_array,
    check_choice,
    check_nonnegative_scalar,
    check_positive_int,
    is_traced,
)
from ..hmm import safe_log
from ._gmm import (
    _HI,
    GMM_INITS,
    GaussianMixture,
    GaussianMixtureParams,
    rebase_shifted,
    sample_gaussians,
)

# The unconstrained value of a log-probability that is exactly zero (a structural zero):
# finite, so that optimizers and finiteness checks accept it, and so negative that
# softmax/exp give exactly 0 and its gradient is exactly 0.
_LOG_ZERO = -1e30


def _unconstrained_log(p):
    return jnp.where(p > 0, safe_log(p), _LOG_ZERO)


class AbstractEmissions(eqx.Module):
    """The emission model of `emjax.HiddenMarkovModel`: ``p(x_t | z_t = k)`` for each state.

    An emission model owns its parameters (leaves with a leading state axis ``K``), its
    expected sufficient statistics and its M-step, exactly like a mixture's components:

    - ``log_prob(params, x)``: ``log p(x_t | z_t = k)``, shape ``(T, K)``, for the
      observations ``x`` of shape ``(T, *event_shape)``;
    - ``statistics(params, x, weights)``: additive statistics under the weights
      ``w_t γ_t(k)`` of shape ``(T, K)``;
    - ``m_step(params, stats)``: the maximiser of ``Σ_t Σ_k w_t γ_t(k) log p(x_t | z_t = k)``
      (models without a closed form set ``has_closed_form_m_step = False`` and are
      fitted by `emjax.GradientMStep` through ``unconstrain``/``constrain``);
    - ``init_params(x, w, num_states, key=...)`` from weighted observations;
    - validation (``check_observations``, ``make_params``), ``sample``,
      ``num_free_params``.

    Implementations: `GaussianEmissions`, `GaussianMixtureEmissions`,
    `CategoricalEmissions`, `PoissonEmissions`, `DensityEmissions`.
    """

    event_ndim: eqx.AbstractClassVar[int]  # 1: vectors of D features; 0: symbols
    has_closed_form_m_step: ClassVar[bool] = True

    @abc.abstractmethod
    def check_observations(self, x, name: str):
        """``x`` (any leading axes, then the event axes) as an array of the right dtype."""

    @abc.abstractmethod
    def check_values(self, x_valid: np.ndarray, name: str, num_symbols: int | None) -> None:
        """Raise ValueError for invalid values among the (concrete, valid) observations."""

    @abc.abstractmethod
    def log_prob(self, params, x) -> Float[Array, "T K"]:
        """``log p(x_t | z_t = k)`` for every step and state."""

    @abc.abstractmethod
    def statistics(self, params, x, weights: Float[Array, "T K"]) -> PyTree:
        """Expected sufficient statistics under the weights ``w_t γ_t(k)``."""

    @abc.abstractmethod
    def m_step(self, params, stats):
        """New emission parameters from statistics summed over all sequences."""

    @abc.abstractmethod
    def init_params(self, x, w, num_states: int, *, key: PRNGKeyArray, num_symbols=None):
        """Initial parameters from observations ``x`` ``(N, *event)`` with weights ``w``."""

    @abc.abstractmethod
    def make_params(self, num_states: int, *, _batch=(), _num_features=None, **arrays):
        """Validated parameters from plain arrays."""

    params_class: ClassVar[type | None] = None  # the parameters' class, for `params_from`

    def params_from(self, params, num_states: int, lead: tuple, num_features):
        """Validate user parameters of this emission model (for ``params0``): the
        parameter class's fields passed through ``make_params``."""
        cls = self.params_class
        if not isinstance(params, cls):
            raise TypeError(f"`params0.emissions` must be {cls.__name__}; got "
                            f"{type(params).__name__}.")
        fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
        return self.make_params(num_states, _batch=lead, _num_features=num_features, **fields)

    @abc.abstractmethod
    def num_free_params(self, num_states: int, num_features: int) -> int:
        """The number of free emission parameters."""

    @abc.abstractmethod
    def sample(self, params, states, *, key: PRNGKeyArray):
        """One observation per entry of ``states``."""

    @abc.abstractmethod
    def unconstrain(self, params) -> PyTree:
        """Parameters in an unconstrained parametrization (for `emjax.GradientMStep`)."""

    @abc.abstractmethod
    def constrain(self, unconstrained: PyTree):
        """The inverse of ``unconstrain``."""

    def rebase_stats(self, stats, from_params, to_params):
        """Statistics computed at ``from_params`` re-expressed at ``to_params`` (see
        `emjax.AbstractEMModel.rebase_stats`); the default returns them unchanged."""
        return stats

    def log_prior(self, params) -> Float[Array, ""]:
        """``log p(emission parameters)``; zero (maximum likelihood) by default."""
        return jnp.zeros((), jax.tree.leaves(params)[0].dtype)

    def step_cost(self, num_states: int, num_features: int) -> int:
        """Intermediate values one time step needs in the E-step."""
        return num_states * max(1, num_features)


def _frames(x, w):
    return Blocks(x[None], w[None])


# --------------------------------------------------------------------------- Gaussian
class GaussianEmissionParams(eqx.Module):
    """Gaussian emission parameters: ``means`` ``(K, D)`` and ``covariances`` in the shape of
    the covariance type (``(K, D, D)`` full, ``(K, D)`` diag, ``(K,)`` spherical,
    ``(D, D)`` tied)."""

    means: Float[Array, "K D"]
    covariances: Array


class _GaussianBase(AbstractEmissions):
    """Shared by the Gaussian emission models: observations are finite float vectors."""

    event_ndim: ClassVar[int] = 1

    def check_observations(self, x, name):
        return as_float_array(x, name)

    def check_values(self, x_valid, name, num_symbols):
        _check_finite_frames(x_valid, name)


def _check_finite_frames(x_valid, name):
    ok = np.isfinite(x_valid).all(axis=tuple(range(1, x_valid.ndim)))
    if not ok.all():
        bad = np.flatnonzero(~ok)
        raise ValueError(
            f"`{name}` contains NaN or infinite values (in {len(bad)} time step(s), the first "
            f"at flat step {int(bad[0])}); remove or impute them first."
        )


class GaussianEmissions(_GaussianBase):
    r"""Gaussian emissions ``x_t | z_t = k ~ N(μ_k, Σ_k)``, as hmmlearn's ``GaussianHMM``.

    The E-step's statistics and the M-step are those of `emjax.GaussianMixture` with the
    responsibilities replaced by the smoothed state marginals ``γ_t(k)``:
    ``μ_k = Σ_t γ_t(k) x_t / Σ_t γ_t(k)`` and ``Σ_k`` the ``γ``-weighted scatter around
    ``μ_k`` (accumulated around the current means, so float32 stays accurate for offset
    data), plus ``reg_covar·I``. A state that receives no mass keeps its parameters.

    Args:
        covariance_type: "full" (default), "diag", "spherical" or "tied".
        reg_covar: added to the diagonal of every covariance in every M-step (``>= 0``;
            an array leaf, differentiable).
        init: how emissions are initialised from the observations of all sequences
            pooled: the `emjax.GaussianMixture` initialisations ("kmeans++" default,
            "kmeans", "random", "random_from_data").

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("diag"))
        >>> sol = emjax.fit(hmm, X, key=jax.random.key(0))
        >>> sol.params.emissions.means.shape
        (2, 2)
    """

    covariance_type: str = eqx.field(static=True)
    init: str = eqx.field(static=True)
    reg_covar: Float[Array, ""]
    params_class: ClassVar[type] = GaussianEmissionParams

    def __init__(self, covariance_type: str = "full", reg_covar=1e-6, init: str = "kmeans++"):
        self.covariance_type = check_choice(
            covariance_type, "covariance_type", ("full", "diag", "spherical", "tied")
        )
        self.reg_covar = check_nonnegative_scalar(reg_covar, "reg_covar")
        self.init = check_choice(init, "init", GMM_INITS)

    def _gmm(self, num_states):
        return GaussianMixture(num_states, self.covariance_type, self.reg_covar, self.init)

    def _as_gmm(self, params):
        K = params.means.shape[-2]
        weights = jnp.full(params.means.shape[:-1], 1.0 / K, params.means.dtype)
        return GaussianMixtureParams(weights, params.means, params.covariances)

    def log_prob(self, params, x):
        return self._gmm(params.means.shape[0])._log_gaussian(self._as_gmm(params), x)[0]

    def statistics(self, params, x, weights):
        diff = x[None, :, :] - params.means[:, None, :]
        return self._gmm(params.means.shape[0])._statistics(diff, weights)

    def rebase_stats(self, stats, from_params, to_params):
        return rebase_shifted(stats, from_params.means - to_params.means, self.covariance_type)

    def m_step(self, params, stats):
        new = self._gmm(params.means.shape[0]).m_step(self._as_gmm(params), stats)
        return GaussianEmissionParams(new.means, new.covariances)

    def init_params(self, x, w, num_states, *, key, num_symbols=None):
        p = self._gmm(num_states).init_params(_frames(x, w), key=key)
        return GaussianEmissionParams(p.means, p.covariances)

    def make_params(self, num_states, *, means, covariances, _batch=(), _num_features=None):
        means = as_float_array(means, "means")
        lead = tuple(_batch) or (means.shape[:1] if means.ndim == 3 else ())
        covariances = as_float_array(covariances, "covariances")
        if self.covariance_type == "diag" and covariances.ndim == len(lead) + 3:
            # hmmlearn's `covars_` gives diagonal covariances as (K, D, D) matrices.
            diag = jnp.diagonal(covariances, axis1=-2, axis2=-1)
            if not is_traced(covariances) and not np.array_equal(
                    np.asarray(covariances), np.asarray(diag)[..., None] * np.eye(diag.shape[-1])):
                raise ValueError("`covariances` for covariance_type='diag' must be (K, D) "
                                 "variances or (K, D, D) diagonal matrices; got matrices "
                                 "with off-diagonal entries.")
            covariances = diag
        weights = np.full(lead + (num_states,), 1.0 / num_states)
        p = self._gmm(num_states).make_params(
            weights=weights, means=means, covariances=covariances, _batch=lead,
            _num_features=_num_features,
        )
        return GaussianEmissionParams(p.means, p.covariances)

    def num_free_params(self, num_states, num_features):
        return self._gmm(num_states).num_free_params(num_features) - (num_states - 1)

    def sample(self, params, states, *, key):
        return sample_gaussians(key, self.covariance_type, params.means, params.covariances, states)

    def unconstrain(self, params):
        _, means, psi_cov = self._gmm(params.means.shape[0]).unconstrain(self._as_gmm(params))
        return means, psi_cov

    def constrain(self, unconstrained):
        means, psi_cov = unconstrained
        K = means.shape[0]
        p = self._gmm(K).constrain((jnp.zeros((K,), means.dtype), means, psi_cov))
        return GaussianEmissionParams(p.means, p.covariances)


# --------------------------------------------------------------------------- GMM per state
class GaussianMixtureEmissionParams(eqx.Module):
    """Parameters of a Gaussian mixture per state: ``weights`` ``(K, M)`` (rows sum to 1),
    ``means`` ``(K, M, D)``, ``covariances`` ``(K, M, D, D)`` (full), ``(K, M, D)`` (diag)
    or ``(K, M)`` (spherical)."""

    weights: Float[Array, "K M"]
    means: Float[Array, "K M D"]
    covariances: Array


class GaussianMixtureEmissions(_GaussianBase):
    r"""A Gaussian mixture per state, ``p(x_t | z_t = k) = Σ_m w_km N(x_t | μ_km, Σ_km)``
    (hmmlearn's ``GMMHMM``).

    The E-step splits each ``γ_t(k)`` over the state's components by their
    responsibilities; the M-step is `emjax.GaussianMixture`'s on the ``K·M`` components,
    with the weights normalised within each state.

    Args:
        num_mixtures: components per state ``M`` (``>= 1``).
        covariance_type: "full" (default), "diag" or "spherical".
        reg_covar: added to every covariance's diagonal in every M-step (``>= 0``).

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> em = emjax.GaussianMixtureEmissions(2, covariance_type="diag")
        >>> sol = emjax.fit(emjax.HiddenMarkovModel(2, emissions=em), X, key=jax.random.key(0))
        >>> sol.params.emissions.means.shape
        (2, 2, 2)
    """

    num_mixtures: int = eqx.field(static=True)
    covariance_type: str = eqx.field(static=True)
    reg_covar: Float[Array, ""]
    params_class: ClassVar[type] = GaussianMixtureEmissionParams

    def __init__(self, num_mixtures: int, covariance_type: str = "full", reg_covar=1e-6):
        self.num_mixtures = check_positive_int(num_mixtures, "num_mixtures")
        self.covariance_type = check_choice(covariance_type, "covariance_type",
                                            ("full", "diag", "spherical"))
        self.reg_covar = check_nonnegative_scalar(reg_covar, "reg_covar")

    def _gmm(self, num_states):
        return GaussianMixture(num_states * self.num_mixtures, self.covariance_type,
                               self.reg_covar)

    def _flat(self, params):
        K, M = params.weights.shape
        cov = params.covariances.reshape((K * M,) + params.covariances.shape[2:])
        return GaussianMixtureParams(params.weights.reshape(K * M) / K,
                                     params.means.reshape(K * M, -1), cov)

    def _component_log_joint(self, params, x):
        K, M = params.weights.shape
        flat = self._flat(params)
        log_gauss, diff = self._gmm(K)._log_gaussian(flat, x)
        log_joint = log_gauss.reshape(-1, K, M) + safe_log(params.weights)
        return log_joint, diff

    def log_prob(self, params, x):
        from ..hmm import logsumexp

        return logsumexp(self._component_log_joint(params, x)[0], axis=2)

    def statistics(self, params, x, weights):
        K, M = params.weights.shape
        log_joint, diff = self._component_log_joint(params, x)
        resp = jax.nn.softmax(log_joint, axis=2) * weights[:, :, None]
        return self._gmm(K)._statistics(diff, resp.reshape(-1, K * M))

    def rebase_stats(self, stats, from_params, to_params):
        delta = self._flat(from_params).means - self._flat(to_params).means
        return rebase_shifted(stats, delta, self.covariance_type)

    def m_step(self, params, stats):
        K, M = params.weights.shape
        new = self._gmm(K).m_step(self._flat(params), stats)
        counts = stats.counts.reshape(K, M)
        total = jnp.sum(counts, axis=1, keepdims=True)
        floor = 10 * jnp.finfo(counts.dtype).eps * jnp.maximum(jnp.sum(counts), 1.0)
        mass = jnp.maximum(counts, floor)
        weights = jnp.where(total > floor, mass / jnp.sum(mass, axis=1, keepdims=True),
                            params.weights)
        cov = new.covariances.reshape((K, M) + new.covariances.shape[1:])
        return GaussianMixtureEmissionParams(weights, new.means.reshape(K, M, -1), cov)

    def init_params(self, x, w, num_states, *, key, num_symbols=None):
        K, M = num_states, self.num_mixtures
        p = self._gmm(K).init_params(_frames(x, w), key=key)
        weights = p.weights.reshape(K, M)
        weights = weights / jnp.sum(weights, axis=1, keepdims=True)
        cov = p.covariances.reshape((K, M) + p.covariances.shape[1:])
        return GaussianMixtureEmissionParams(weights, p.means.reshape(K, M, -1), cov)

    def make_params(self, num_states, *, weights, means, covariances, _batch=(),
                    _num_features=None):
        K, M = num_states, self.num_mixtures
        weights = as_float_array(weights, "weights")
        means = as_float_array(means, "means")
        covariances = as_float_array(covariances, "covariances")
        lead = tuple(_batch) or (means.shape[:1] if means.ndim == 4 else ())
        nb = len(lead)
        if weights.shape != lead + (K, M):
            raise ValueError(f"`weights` must have shape {lead + (K, M)}; got {weights.shape}.")
        if means.ndim != nb + 3 or means.shape[:nb + 2] != lead + (K, M):
            raise ValueError(f"`means` must have shape {lead + (K, M, 'D')}; got {means.shape}.")
        if not is_traced(weights):
            wn = np.asarray(weights, np.float64)
            if (wn < 0).any() or not np.allclose(wn.sum(-1), 1.0, atol=1e-6):
                raise ValueError("`weights` must be non-negative with rows summing to 1.")
        flat_w = np.full(lead + (K * M,), 1.0 / (K * M))
        p = self._gmm(K).make_params(
            weights=flat_w, means=means.reshape(lead + (K * M, -1)),
            covariances=covariances.reshape(lead + (K * M,) + covariances.shape[nb + 2:]),
            _batch=lead, _num_features=_num_features,
        )
        cov = p.covariances.reshape(lead + (K, M) + p.covariances.shape[nb + 1:])
        return GaussianMixtureEmissionParams(weights.astype(p.means.dtype),
                                             p.means.reshape(lead + (K, M, -1)), cov)

    def num_free_params(self, num_states, num_features):
        KM = num_states * self.num_mixtures
        return (self._gmm(num_states).num_free_params(num_features) - (KM - 1)
                + num_states * (self.num_mixtures - 1))

    def step_cost(self, num_states, num_features):
        return num_states * self.num_mixtures * max(1, num_features)

    def sample(self, params, states, *, key):
        km, kx = jax.random.split(key)
        m = jax.random.categorical(km, safe_log(params.weights[states]))
        flat = self._flat(params)
        return sample_gaussians(kx, self.covariance_type, flat.means, flat.covariances,
                                states * self.num_mixtures + m)

    def unconstrain(self, params):
        K, M = params.weights.shape
        _, means, psi_cov = self._gmm(K).unconstrain(self._flat(params))
        return _unconstrained_log(params.weights), means, psi_cov

    def constrain(self, unconstrained):
        logits, means, psi_cov = unconstrained
        K, M = logits.shape
        p = self._gmm(K).constrain((jnp.zeros((K * M,), means.dtype), means, psi_cov))
        cov = p.covariances.reshape((K, M) + p.covariances.shape[1:])
        return GaussianMixtureEmissionParams(jax.nn.softmax(logits, axis=1),
                                             p.means.reshape(K, M, -1), cov)


# --------------------------------------------------------------------------- categorical
class CategoricalEmissionParams(eqx.Module):
    """Categorical emission parameters: ``probs`` ``(K, V)``, ``p(x_t = v | z_t = k)``, rows
    summing to 1."""

    probs: Float[Array, "K V"]


class CategoricalEmissions(AbstractEmissions):
    r"""Discrete symbols ``x_t ∈ {0, …, V−1}``, ``p(x_t = v | z_t = k) = B_kv``
    (hmmlearn's ``CategoricalHMM``).

    Statistics are expected symbol counts ``Σ_t γ_t(k) 1[x_t = v]`` (a segment sum, never
    a ``T × V`` one-hot matrix); the M-step normalises them per state. A state that
    receives no mass keeps its probabilities.

    Observations are integers, one symbol per step: a sequence is a ``(T,)`` or
    ``(T, 1)`` integer array (as in hmmlearn).

    Args:
        num_symbols: the vocabulary size ``V``; None (default) takes ``1 + max symbol``
            of the data when fitting (pass it to fit inside ``jax.jit``, or when held-out
            data may contain symbols the training data lack).

    Example:
        >>> import jax, jax.numpy as jnp, emjax
        >>> x = jnp.array([0, 0, 1, 2, 2, 2, 1, 0, 0, 0, 2, 2])
        >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.CategoricalEmissions(3))
        >>> sol = emjax.fit(hmm, x, key=jax.random.key(0), num_restarts=4)
        >>> sol.params.emissions.probs.shape
        (2, 3)
    """

    event_ndim: ClassVar[int] = 0
    num_symbols: int | None = eqx.field(static=True)
    params_class: ClassVar[type] = CategoricalEmissionParams

    def __init__(self, num_symbols: int | None = None):
        self.num_symbols = (None if num_symbols is None
                            else check_positive_int(num_symbols, "num_symbols"))

    def check_observations(self, x, name):
        if is_traced(x):
            arr = x
        else:
            try:
                arr = jnp.asarray(x)
            except (TypeError, ValueError) as e:
                raise TypeError(f"`{name}` must be an array of integer symbols; got "
                                f"{type(x).__name__}.") from e
        if jnp.issubdtype(arr.dtype, jnp.floating) and not is_traced(arr):
            a = np.asarray(arr)
            finite = a[np.isfinite(a)]
            if (finite != np.round(finite)).any():
                raise ValueError(f"`{name}` must hold integer symbols 0..V-1; got non-integer "
                                 f"values such as {finite[finite != np.round(finite)][0]}.")
        elif not (jnp.issubdtype(arr.dtype, jnp.integer) or jnp.issubdtype(arr.dtype, jnp.floating)):
            raise TypeError(f"`{name}` must hold integer symbols; got dtype {arr.dtype}.")
        if arr.ndim >= 1 and arr.shape[-1] == 1 and arr.ndim >= 2:
            arr = arr[..., 0]  # hmmlearn's (T, 1) layout
        if jnp.issubdtype(arr.dtype, jnp.floating) and not is_traced(arr):
            arr = jnp.asarray(np.nan_to_num(np.asarray(arr), nan=-1))
        return arr.astype(jnp.int32)

    def check_values(self, x_valid, name, num_symbols):
        if (x_valid < 0).any():
            raise ValueError(f"`{name}` must hold non-negative integer symbols (or NaN was "
                             f"given); got the value {int(x_valid.min())}.")
        V = num_symbols or self.num_symbols
        if V is not None and x_valid.size and int(x_valid.max()) >= V:
            raise ValueError(f"`{name}` holds the symbol {int(x_valid.max())} but "
                             f"num_symbols={V} (symbols are 0..{V - 1}).")

    def log_prob(self, params, x):
        return safe_log(params.probs)[:, x].T

    def statistics(self, params, x, weights):
        V = params.probs.shape[1]
        return jax.ops.segment_sum(weights, x, num_segments=V).T

    def m_step(self, params, stats):
        total = jnp.sum(stats, axis=1, keepdims=True)
        alive = total > 10 * jnp.finfo(stats.dtype).eps * jnp.maximum(jnp.sum(stats), 1.0)
        return CategoricalEmissionParams(
            jnp.where(alive, stats / jnp.where(alive, total, 1.0), params.probs))

    def init_params(self, x, w, num_states, *, key, num_symbols=None):
        V = num_symbols or self.num_symbols
        dtype = w.dtype
        freq = jax.ops.segment_sum(w, x, num_segments=V)
        freq = freq / jnp.sum(freq)
        noise = jax.random.dirichlet(key, jnp.ones((V,), dtype), (num_states,)).astype(dtype)
        return CategoricalEmissionParams(0.5 * freq + 0.5 * noise)

    def make_params(self, num_states, *, probs, _batch=(), _num_features=None):
        probs = as_float_array(probs, "probs")
        lead = tuple(_batch) or (probs.shape[:1] if probs.ndim == 3 else ())
        V = self.num_symbols if _num_features is None else _num_features
        if probs.ndim != len(lead) + 2 or probs.shape[len(lead)] != num_states or (
                V is not None and probs.shape[-1] < V):
            raise ValueError(f"`probs` must have shape {lead + (num_states, V or 'V')}; got "
                             f"{probs.shape}.")
        _check_stochastic(probs, "probs")
        return CategoricalEmissionParams(probs)

    def num_free_params(self, num_states, num_features):
        return num_states * (num_features - 1)

    def step_cost(self, num_states, num_features):
        return num_states

    def sample(self, params, states, *, key):
        return jax.random.categorical(key, safe_log(params.probs[states])).astype(jnp.int32)

    def unconstrain(self, params):
        return _unconstrained_log(params.probs)

    def constrain(self, unconstrained):
        return CategoricalEmissionParams(jax.nn.softmax(unconstrained, axis=1))


def _check_stochastic(p, name, what="rows"):
    """Non-negative, finite, summing to 1 along the last axis (concrete values only)."""
    if is_traced(p):
        return
    pn = np.asarray(p, np.float64)
    if not np.isfinite(pn).all() or (pn < 0).any():
        raise ValueError(f"`{name}` must be finite and non-negative.")
    tol = 1e-6 if p.dtype == jnp.float32 else 1e-8
    sums = pn.sum(-1)
    if not np.allclose(sums, 1.0, atol=tol):
        bad = np.argwhere(~np.isclose(sums, 1.0, atol=tol))[0]
        raise ValueError(
            f"`{name}` must be stochastic: its {what} must sum to 1; {what[:-1]} "
            f"{tuple(int(i) for i in bad)} sums to {sums[tuple(bad)]:.10g}."
        )


# --------------------------------------------------------------------------- Poisson
class PoissonEmissionParams(eqx.Module):
    """Poisson emission parameters: ``rates`` ``(K, D)`` (non-negative)."""

    rates: Float[Array, "K D"]


class PoissonEmissions(AbstractEmissions):
    r"""Independent Poisson counts per feature, ``x_td | z_t = k ~ Poisson(λ_kd)``
    (hmmlearn's ``PoissonHMM``).

    Statistics: ``N_k = Σ_t γ_t(k)`` and ``S_k = Σ_t γ_t(k) x_t``; M-step ``λ_k = S_k / N_k``.
    A state that receives no mass keeps its rates. Observations are non-negative integer
    counts, ``(T, D)``.

    Example:
        >>> import jax, jax.numpy as jnp, emjax
        >>> x = jnp.array([[0], [1], [0], [7], [9], [8], [1], [0]])
        >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.PoissonEmissions())
        >>> sol = emjax.fit(hmm, x, key=jax.random.key(0))
        >>> sol.params.emissions.rates.shape
        (2, 1)
    """

    event_ndim: ClassVar[int] = 1
    params_class: ClassVar[type] = PoissonEmissionParams

    def check_observations(self, x, name):
        return as_float_array(x, name)

    def check_values(self, x_valid, name, num_symbols):
        _check_finite_frames(x_valid, name)
        if (x_valid < 0).any() or (x_valid != np.round(x_valid)).any():
            raise ValueError(f"`{name}` must hold non-negative integer counts for Poisson "
                             "emissions.")

    def log_prob(self, params, x):
        rates = params.rates
        xk = x[:, None, :]
        term = jnp.where(xk > 0, xk * safe_log(rates)[None], 0.0)
        return jnp.sum(term - rates[None] - jax.scipy.special.gammaln(xk + 1.0), axis=-1)

    def statistics(self, params, x, weights):
        return jnp.sum(weights, axis=0), jnp.matmul(weights.T, x, precision=_HI)

    def m_step(self, params, stats):
        counts, sums = stats
        alive = counts > 10 * jnp.finfo(counts.dtype).eps * jnp.maximum(jnp.sum(counts), 1.0)
        rates = sums / jnp.where(alive, counts, 1.0)[:, None]
        return PoissonEmissionParams(jnp.where(alive[:, None], rates, params.rates))

    def init_params(self, x, w, num_states, *, key, num_symbols=None):
        seeds = kmeans_plusplus(x, w, num_states, key=key)
        z = jnp.argmin(squared_distances(x, seeds), axis=1)
        onehot = jax.nn.one_hot(z, num_states, dtype=x.dtype) * w[:, None]
        mean = jnp.sum(w[:, None] * x, axis=0) / jnp.sum(w)
        counts = jnp.sum(onehot, axis=0)[:, None]
        rates = jnp.where(counts > 0, onehot.T @ x / jnp.maximum(counts, 1e-30), mean)
        # Keep every rate positive so that no state starts unable to emit a count.
        return PoissonEmissionParams(rates + 1e-3 * mean + jnp.finfo(x.dtype).tiny)

    def make_params(self, num_states, *, rates, _batch=(), _num_features=None):
        rates = as_float_array(rates, "rates")
        lead = tuple(_batch) or (rates.shape[:1] if rates.ndim == 3 else ())
        if rates.ndim != len(lead) + 2 or rates.shape[len(lead)] != num_states or (
                _num_features is not None and rates.shape[-1] != _num_features):
            raise ValueError(f"`rates` must have shape {lead + (num_states, _num_features or 'D')}"
                             f"; got {rates.shape}.")
        if not is_traced(rates):
            rn = np.asarray(rates)
            if not np.isfinite(rn).all() or (rn < 0).any():
                raise ValueError("`rates` must be finite and non-negative.")
        return PoissonEmissionParams(rates)

    def num_free_params(self, num_states, num_features):
        return num_states * num_features

    def sample(self, params, states, *, key):
        return jax.random.poisson(key, params.rates[states]).astype(params.rates.dtype)

    def unconstrain(self, params):
        return _unconstrained_log(params.rates)

    def constrain(self, unconstrained):
        return PoissonEmissionParams(jnp.exp(unconstrained))


# --------------------------------------------------------------------------- user density
class DensityEmissions(_GaussianBase):
    r"""Emissions given by any differentiable log-density, fitted by a gradient M-step.

    ``log p(x_t | z_t = k) = log_prob(φ_k, x_t)`` where ``φ`` is a pytree whose leaves have
    a leading state axis ``K``, written in an unconstrained form (every real value valid:
    a log-scale, not a scale). There is no closed-form M-step: the hidden Markov model
    is then fitted by generalized EM, `emjax.GradientMStep` on
    ``Q = Σ γ_1 log π + Σ ξ log A + Σ_t Σ_k γ_t(k) log p(x_t | z_t = k)`` (the initial and
    transition probabilities through their logits, structural zeros kept).

    Args:
        log_prob: ``(φ_k, x_t) -> scalar`` for one state's parameters and one observation
            (a vector of ``D`` features).
        init_params: ``(seeds, X, weights) -> φ`` with ``seeds`` ``(K, D)`` k-means++ points
            of the pooled observations ``X`` ``(N, D)`` (weights ``(N,)``).

    Example:
        >>> import jax, jax.numpy as jnp, emjax
        >>> def laplace(phi, x):
        ...     scale = jnp.exp(phi["log_scale"])
        ...     return jnp.sum(-jnp.abs(x - phi["loc"]) / scale - jnp.log(2 * scale))
        >>> def init(seeds, X, w):
        ...     return {"loc": seeds, "log_scale": jnp.zeros_like(seeds)}
        >>> em = emjax.DensityEmissions(laplace, init)
        >>> hmm = emjax.HiddenMarkovModel(2, emissions=em)
        >>> X = emjax.datasets.load_old_faithful()
        >>> sol = emjax.fit(hmm, (X - X.mean(0)) / X.std(0), key=jax.random.key(0),
        ...                 max_steps=5, throw=False)
        >>> sol.params.emissions["loc"].shape
        (2, 2)
    """

    log_density: Callable = eqx.field(static=True)
    init_fn: Callable = eqx.field(static=True)
    has_closed_form_m_step: ClassVar[bool] = False

    def __init__(self, log_prob: Callable, init_params: Callable):
        if not callable(log_prob) or not callable(init_params):
            raise TypeError("`log_prob` and `init_params` must be callables.")
        self.log_density = log_prob
        self.init_fn = init_params

    def log_prob(self, params, x):
        per_state = jax.vmap(self.log_density, in_axes=(0, None))
        return jax.vmap(lambda xt: per_state(params, xt))(x)

    def statistics(self, params, x, weights):
        return jnp.sum(weights, axis=0)

    def m_step(self, params, stats):
        raise TypeError("DensityEmissions has no closed-form M-step; use emjax.GradientMStep.")

    def init_params(self, x, w, num_states, *, key, num_symbols=None):
        seeds = kmeans_plusplus(x, w, num_states, key=key)
        params = self.init_fn(seeds, x, w)
        for leaf in jax.tree.leaves(params):
            if jnp.shape(leaf)[:1] != (num_states,):
                raise ValueError(
                    "`init_params` must return a pytree whose leaves have a leading axis of "
                    f"size num_states={num_states}; got a leaf of shape {jnp.shape(leaf)}.")
        return jax.tree.map(lambda a: jnp.asarray(a, x.dtype), params)

    def make_params(self, num_states, *, _batch=(), _num_features=None, **components):
        raise TypeError("DensityEmissions parameters are your own pytree: pass it as "
                        "`emissions=` to HiddenMarkovModel.make_params.")

    def params_from(self, params, num_states, lead, num_features):
        n = len(lead)
        for leaf in jax.tree.leaves(params):
            if jnp.shape(leaf)[n:n + 1] != (num_states,):
                raise ValueError("every leaf of the emission parameters needs a leading axis "
                                 f"of size num_states={num_states} (after any restart axis).")
        return jax.tree.map(jnp.asarray, params)

    def num_free_params(self, num_states, num_features):
        raise TypeError("DensityEmissions cannot count its free parameters (their structure "
                        "is yours): count them for BIC/AIC yourself.")

    def sample(self, params, states, *, key):
        raise TypeError("DensityEmissions cannot sample: its density is only known up to "
                        "log_prob.")

    def unconstrain(self, params):
        return params

    def constrain(self, unconstrained):
        return unconstrained
