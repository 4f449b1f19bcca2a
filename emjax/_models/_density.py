"""Mixtures of any differentiable log-densities, fitted by EM with a gradient M-step."""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._accumulate import Blocks
from .._custom_types import Array, Data, Float, PRNGKeyArray, PyTree
from .._kmeanspp import kmeans_plusplus
from .._model import (
    AbstractMixtureModel,
    AbstractUnconstrainedModel,
    check_enough_points,
    hard_assignments,
    mixture_expected_log_joint,
    soft_assignments,
)
from .._mstep import GradientMStep
from .._solver import EM
from .._validation import as_float_array, check_choice, check_matrix, check_positive_int, is_traced

DENSITY_INITS = ("kmeans++", "random_from_data")

# The solver density mixtures use by default. One object for the whole package, so that
# every `default_solver()` call reuses the compiled program (a new optax object compiles
# again). L-BFGS with its zoom line search: invariant to the scale of the data, and each
# line search already ensures a decrease of the objective; started afresh at every EM
# iteration (see GradientMStep). Ten steps solve each M-step nearly exactly, so EM
# converges at its own rate (measured on a 2-D t mixture: 43 EM steps to the optimum with
# 10 L-BFGS steps, 85 with 5, 314 with 3; compile time is the same).
_DEFAULT_SOLVER = EM(m_step=GradientMStep(optax.lbfgs(), num_steps=10, reset=True))


class MixtureStats(eqx.Module):
    """Statistics of a density mixture's E-step: the expected counts.

    Attributes:
        counts: ``N_k = Σ_n w_n r_nk``, shape ``(K,)``.
    """

    counts: Float[Array, " K"]

    def __add__(self, other: "MixtureStats") -> "MixtureStats":
        return MixtureStats(self.counts + other.counts)


class MixtureParams(eqx.Module):
    """Parameters of a `DensityMixture`: mixing weights and a pytree of components.

    Attributes:
        weights: mixing proportions ``π``, shape ``(K,)``, summing to 1.
        components: the components' parameters, any pytree of arrays whose leaves have a
            leading axis of size ``K`` (component ``k`` is ``tree.map(lambda a: a[k], ·)``),
            in the unconstrained form the component log-density is written in.

    Example:
        >>> import jax.numpy as jnp, emjax
        >>> p = emjax.MixtureParams(jnp.array([0.5, 0.5]), {"loc": jnp.zeros((2, 3))})
        >>> p.components["loc"].shape
        (2, 3)
    """

    weights: Float[Array, " K"]
    components: PyTree


def fill_unweighted(data: Data, w: Float[Array, " B"]) -> Data:
    """Rows of weight 0 replaced by the block's row of largest weight (every leaf).

    A row of weight 0 (padding, or one a user weighted out) contributes nothing, but its
    values (even ``1e200``) could still turn ``0·∞`` into NaN statistics or gradients.
    """
    idx = jnp.argmax(w)

    def fill(a):
        keep = (w > 0).reshape((-1,) + (1,) * (a.ndim - 1))
        return jnp.where(keep, a, a[idx])

    return jax.tree.map(fill, data)


def features(data: Data) -> int:
    """Values per row, summed over the leaves of ``data``."""
    return max(1, sum(int(np.prod(a.shape[1:])) for a in jax.tree.leaves(data)))


class AbstractDensityMixture(AbstractMixtureModel, AbstractUnconstrainedModel):
    r"""A mixture whose components are any differentiable log-densities, fitted by EM.

    ``p(x_n) = Σ_k p(z_n = k | θ) p(x_n | z_n = k, θ)``. A subclass supplies the two log
    factors for a block of rows, ``log_mixing`` and ``component_log_prob`` (each shape
    ``(B, K)``), plus parameter handling (``check_data``, ``check_params``,
    ``init_params``, ``check_input``, ``log_prior``, ``unconstrain``, ``constrain``);
    everything else follows:

    - the E-step: responsibilities ``r_nk ∝ p(z_n = k) p(x_n | z_n = k)`` by the same
      code as every mixture's (``soft_assignments``, as in `emjax.GaussianMixture`); the
      statistics are the expected counts `MixtureStats`;
    - the M-step: `emjax.GradientMStep` maximises
      ``Q(θ | θ_t) + log p(θ) = Σ_n w_n Σ_k r_nk(θ_t) [log p(z_n = k | θ) + log p(x_n | z_n = k, θ)] + log p(θ)``
      in the unconstrained parametrization. Mixing weights are updated by the gradient
      too (through their logits), in the same optimisation as the components, which keeps
      one code path for fixed weights and for input-dependent gates (`MixtureOfExperts`).
      There is no closed-form M-step: ``EM()`` and ``HardEM()`` refuse these models.
    - ``predict``, ``predict_proba``, ``log_prob``, ``log_likelihood``, restarts and
      ``sample_weight`` work as for every mixture.

    The default solver is
    ``EM(m_step=GradientMStep(optax.lbfgs(), num_steps=10, reset=True))``.

    See `DensityMixture` to define a mixture from two plain functions, and
    `StudentTMixture`, `MixtureOfExperts` for models built on this class.

    References:
        Dempster, Laird & Rubin (1977), JRSS-B 39:1–38; Lange (1995), JRSS-B 57:425–437.

    Example:
        >>> import emjax
        >>> isinstance(emjax.StudentTMixture(2), emjax.AbstractDensityMixture)
        True
        >>> emjax.StudentTMixture(2).default_solver().m_step.num_steps
        10
    """

    num_components: eqx.AbstractVar[int]

    @property
    def has_closed_form_m_step(self) -> bool:
        return False

    @abc.abstractmethod
    def log_mixing(self, params, data: Data) -> Float[Array, "B K"]:
        """``log p(z_n = k | θ)`` (or ``| x_n, θ`` for a gate) for a block of rows."""

    @abc.abstractmethod
    def component_log_prob(self, params, data: Data) -> Float[Array, "B K"]:
        """``log p(x_n | z_n = k, θ)`` for a block of rows and every component."""

    # ------------------------------------------------------------------ engine (final)
    def log_joint(self, params, x) -> Float[Array, "B K"]:
        """``log p(z_n = k | θ) + log p(x_n | z_n = k, θ)``, shape ``(N, K)``."""
        return self.log_mixing(params, x) + self.component_log_prob(params, x)

    def e_step(self, params, x, w):
        x = fill_unweighted(x, w)
        rw, elbo = soft_assignments(self.log_joint(params, x), w)
        return MixtureStats(jnp.sum(rw, axis=0)), elbo

    def hard_e_step(self, params, x, w):
        x = fill_unweighted(x, w)
        rw, _, elbo = hard_assignments(self.log_joint(params, x), w)
        return MixtureStats(jnp.sum(rw, axis=0)), elbo

    def expected_log_joint(self, params, reference_params, x, w):
        x = fill_unweighted(x, w)
        return mixture_expected_log_joint(self.log_joint(params, x),
                                          self.log_joint(reference_params, x), w)

    def m_step(self, params, stats):
        raise TypeError(
            f"{type(self).__name__} has no closed-form M-step; fit it with "
            "emjax.EM(m_step=emjax.GradientMStep(...)) (its default solver)."
        )

    def default_solver(self):
        return _DEFAULT_SOLVER

    def row_cost(self, data) -> int:
        """``K`` times the values in one row: the per-component work of an E-step."""
        return self.num_components * features(data)


def _weighted_seeds(x, w, num, init, key):
    if init == "random_from_data":
        g = jax.random.gumbel(key, w.shape, x.dtype) + jnp.where(w > 0, 0.0, -jnp.inf)
        return x[jax.lax.top_k(g, num)[1]]
    return kmeans_plusplus(x, w, num, key=key)


def check_weights(weights, K: int, lead: tuple, dtype) -> Array:
    """Mixing weights of shape ``lead + (K,)``: non-negative, summing to 1 (when concrete)."""
    weights = as_float_array(weights, "weights")
    if weights.shape != lead + (K,):
        raise ValueError(f"`weights` must have shape {lead + (K,)}; got {tuple(weights.shape)}.")
    if not is_traced(weights):
        wn = np.asarray(weights, np.float64)
        tol = 1e-6 if jnp.dtype(dtype) == jnp.float32 else 1e-8
        if not np.isfinite(wn).all() or (wn < 0).any() or not np.allclose(wn.sum(-1), 1.0, atol=tol):
            raise ValueError(f"`weights` must be finite, non-negative and sum to 1; got {wn}.")
    return weights.astype(dtype)


class DensityMixture(AbstractDensityMixture):
    r"""A mixture of ``K`` components of any differentiable log-density you write.

    ``p(x) = Σ_k π_k p(x | φ_k)``, where you give ``log p(x | φ)`` for one component and
    one point, and the initial ``φ_k`` from ``K`` seed points. EM then runs with
    responsibilities from the shared mixture engine and a gradient M-step
    (`emjax.GradientMStep`, L-BFGS by default) that maximises, with ``θ_t`` the current
    parameters,

    .. math::

        Q(θ | θ_t) = Σ_n w_n Σ_k r_{nk}(θ_t) \big[\log π_k + \log p(x_n \mid φ_k)\big]

    (plus ``log_prior(params)`` if given) over the weights' logits and the ``φ_k``. Write
    ``log p(x | φ)`` in an unconstrained parametrization (a log-scale rather than a scale):
    the optimizer may set every leaf of ``φ`` to any real value.

    Args:
        num_components: number of components ``K`` (``>= 1``).
        component_log_prob: ``(phi, x) -> scalar``: ``log p(x | φ)`` for one component's
            parameters ``phi`` (a pytree of arrays) and one data row ``x`` of shape
            ``(D,)``; differentiable in ``phi``. Vectorised with ``vmap``.
        init_components: ``(seeds, X, weights) -> components``: initial parameters of all
            components, a pytree whose leaves have a leading axis ``K``, from ``seeds``
            (``(K, D)`` rows of the data chosen by ``init``), the data ``X`` (``(N, D)``,
            possibly with padding rows) and the sample ``weights`` (0 for padding rows).
        log_prior: optional ``(params: MixtureParams) -> scalar``: ``log p(θ)`` for
            maximum a posteriori fitting; default: none (maximum likelihood).
        init: how seeds are drawn: "kmeans++" (default) or "random_from_data".

    The functions are static parts of the model: keep them (define them once with
    ``def``) so that every fit reuses one compiled program; a new lambda compiles again.

    Raises:
        ValueError, TypeError: an invalid ``num_components`` or ``init``, functions that
            are not callable; (in `emjax.fit`) functions that fail on the data's shapes,
            ``init_components`` leaves without a leading axis ``K``, or a
            ``component_log_prob`` that does not return a scalar.

    References:
        Dempster, Laird & Rubin (1977); Lange (1995), JRSS-B 57:425–437 (gradient EM).

    Example:
        A mixture of Laplace distributions (independent per feature) in a few lines:

        >>> import jax, jax.numpy as jnp, emjax
        >>> def laplace_log_prob(phi, x):
        ...     scale = jnp.exp(phi["log_scale"])
        ...     return jnp.sum(-jnp.abs(x - phi["loc"]) / scale - jnp.log(2 * scale))
        >>> def laplace_init(seeds, X, w):
        ...     return {"loc": seeds, "log_scale": jnp.zeros_like(seeds)}
        >>> model = emjax.DensityMixture(2, laplace_log_prob, laplace_init)
        >>> X = emjax.datasets.load_old_faithful()
        >>> sol = emjax.fit(model, X, key=jax.random.key(0), max_steps=30)
        >>> sol.params.components["loc"].shape
        (2, 2)
        >>> model.predict(sol.params, X).shape
        (272,)
    """

    num_components: int = eqx.field(static=True)
    log_density: Callable = eqx.field(static=True)
    init_components: Callable = eqx.field(static=True)
    prior: Callable | None = eqx.field(static=True)
    init: str = eqx.field(static=True)

    def __init__(
        self,
        num_components: int,
        component_log_prob: Callable,
        init_components: Callable,
        *,
        log_prior: Callable | None = None,
        init: str = "kmeans++",
    ):
        self.num_components = check_positive_int(num_components, "num_components")
        for name, fn in (("component_log_prob", component_log_prob),
                         ("init_components", init_components)):
            if not callable(fn):
                raise TypeError(f"`{name}` must be a function; got {type(fn).__name__}.")
        if log_prior is not None and not callable(log_prior):
            raise TypeError(f"`log_prior` must be a function or None; got {type(log_prior).__name__}.")
        self.log_density = component_log_prob
        self.init_components = init_components
        self.prior = log_prior
        self.init = check_choice(init, "init", DENSITY_INITS)

    # ------------------------------------------------------------------ contract
    def check_data(self, data):
        X = check_enough_points(check_matrix(data, "X"), self.num_components, "num_components", "EM")
        self._check_functions(X)
        return X

    def _check_functions(self, X):
        """Run the user's functions on shapes only (``jax.eval_shape``): clear errors early."""
        K, (n, D) = self.num_components, X.shape
        spec = jax.ShapeDtypeStruct
        try:
            comps = jax.eval_shape(self.init_components, spec((K, D), X.dtype), spec((n, D), X.dtype),
                                   spec((n,), X.dtype))
        except Exception as e:  # the user's function: report what it was called with
            raise TypeError(
                f"`init_components(seeds, X, weights)` failed with seeds of shape ({K}, {D}), X of "
                f"shape ({n}, {D}) and weights of shape ({n},): {type(e).__name__}: {e}"
            ) from e
        self._check_component_tree(comps, (K,), "init_components(...)")
        self._check_log_density(comps, D, X.dtype)

    def _check_component_tree(self, comps, lead, what):
        leaves = jax.tree.leaves(comps)
        if not leaves:
            raise ValueError(f"`{what}` returned no arrays; return a pytree of component parameters.")
        for leaf in leaves:
            if tuple(jnp.shape(leaf)[: len(lead)]) != lead:
                raise ValueError(
                    f"every leaf of `{what}` must have a leading axis of size {lead} (one entry "
                    f"per component); got a leaf of shape {tuple(jnp.shape(leaf))}."
                )

    def _check_log_density(self, comps, D, dtype):
        one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], dtype), comps)
        try:
            out = jax.eval_shape(self.log_density, one, jax.ShapeDtypeStruct((D,), dtype))
        except Exception as e:
            raise TypeError(
                f"`component_log_prob(phi, x)` failed on one component's parameters and a row x of "
                f"shape ({D},): {type(e).__name__}: {e}"
            ) from e
        if not hasattr(out, "shape") or out.shape != ():
            raise ValueError(
                "`component_log_prob(phi, x)` must return a scalar log-density for one row; got "
                f"shape {getattr(out, 'shape', type(out).__name__)}."
            )

    def check_params(self, params, data):
        if not isinstance(params, MixtureParams):
            raise TypeError(
                "`params0` must be emjax.MixtureParams(weights, components) (see "
                f"model.make_params); got {type(params).__name__}."
            )
        batched = jnp.ndim(params.weights) == 2
        lead = tuple(jnp.shape(params.weights)[:1]) if batched else ()
        p = self.make_params(weights=params.weights, components=params.components, _lead=lead,
                             _dtype=data.dtype)
        one = jax.tree.map(lambda a: a[0], p.components) if batched else p.components
        self._check_log_density(one, data.shape[1], data.dtype)
        return p, (lead[0] if batched else None)

    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> MixtureParams:
        x = blocks.data.reshape(-1, blocks.data.shape[-1])
        w = blocks.weights.reshape(-1)
        K = self.num_components
        seeds = _weighted_seeds(x, w, K, self.init, key)
        comps = jax.tree.map(lambda a: jnp.asarray(a).astype(x.dtype), self.init_components(seeds, x, w))
        return MixtureParams(jnp.full((K,), 1.0 / K, x.dtype), comps)

    def log_prior(self, params):
        if self.prior is None:
            return jnp.zeros((), params.weights.dtype)
        return jnp.asarray(self.prior(params), params.weights.dtype)

    def check_input(self, params, X):
        X = check_matrix(X, "X")
        self._check_log_density(params.components, X.shape[1], X.dtype)
        return X.astype(params.weights.dtype)

    def log_mixing(self, params, x):
        return jnp.broadcast_to(jnp.log(params.weights), (x.shape[0], self.num_components))

    def component_log_prob(self, params, x):
        per_point = jax.vmap(self.log_density, in_axes=(None, 0))
        return jax.vmap(per_point, in_axes=(0, None))(params.components, x).T

    def unconstrain(self, params):
        """``(log π, components)``: the components are already unconstrained."""
        tiny = jnp.finfo(params.weights.dtype).tiny
        return jnp.log(jnp.maximum(params.weights, tiny)), params.components

    def constrain(self, unconstrained):
        """``MixtureParams(softmax(logits), components)``."""
        logits, comps = unconstrained
        return MixtureParams(jax.nn.softmax(logits), comps)

    # ------------------------------------------------------------------ public API
    def make_params(self, *, weights, components, _lead=None, _dtype=None) -> MixtureParams:
        """Build and validate `MixtureParams` (for ``params0``).

        Args:
            weights: ``(K,)`` non-negative, summing to 1 (or ``(R, K)`` for ``R`` restarts).
            components: a pytree of arrays with a leading axis ``K`` (or ``(R, K)``).

        Raises:
            ValueError: wrong shapes, non-finite values, or weights that do not sum to 1.

        Example:
            >>> import jax.numpy as jnp, emjax
            >>> model = emjax.DensityMixture(
            ...     2, lambda phi, x: -jnp.sum((x - phi) ** 2), lambda s, X, w: s)
            >>> model.make_params(weights=[0.3, 0.7], components=jnp.zeros((2, 1))).weights.tolist()
            [0.3, 0.7]
        """
        K = self.num_components
        w = as_float_array(weights, "weights")
        lead = tuple(w.shape[:1]) if (_lead is None and w.ndim == 2) else tuple(_lead or ())
        comps = jax.tree.map(lambda a: as_float_array(a, "components"), components)
        self._check_component_tree(comps, lead + (K,), "components")
        dtype = _dtype or jnp.result_type(w, *jax.tree.leaves(comps))
        w = check_weights(w, K, lead, dtype)
        for leaf in jax.tree.leaves(comps):
            if not is_traced(leaf) and not np.isfinite(np.asarray(leaf)).all():
                raise ValueError("`components` must be finite.")
        return MixtureParams(w, jax.tree.map(lambda a: a.astype(dtype), comps))
