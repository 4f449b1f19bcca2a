"""Mixtures of linear-regression experts with a softmax gate (mixtures of experts)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._accumulate import Blocks, default_block_size, map_rows
from .._custom_types import Array, Float, PRNGKeyArray
from .._kmeanspp import squared_distances
from .._model import check_enough_points
from .._validation import (
    as_float_array,
    check_choice,
    check_finite,
    check_matrix,
    check_nonnegative_scalar,
    check_positive_int,
    is_traced,
)
from ._density import DENSITY_INITS, AbstractDensityMixture, _weighted_seeds

GATINGS = ("linear", "constant")
_LOG_2PI = math.log(2 * math.pi)


class MixtureOfExpertsParams(eqx.Module):
    """Parameters of `emjax.MixtureOfExperts`.

    Attributes:
        gate_weights: the gate's coefficients ``V``, shape ``(K, D)`` (zero for
            ``gating="constant"``).
        gate_bias: the gate's intercepts ``b``, shape ``(K,)``; the gate is
            ``π_k(x) = softmax_k(V x + b)``.
        coefs: the experts' regression coefficients ``β_k``, shape ``(K, D)``.
        intercepts: the experts' intercepts ``c_k``, shape ``(K,)``.
        variances: the experts' noise variances ``σ²_k``, shape ``(K,)``.
    """

    gate_weights: Float[Array, "K D"]
    gate_bias: Float[Array, " K"]
    coefs: Float[Array, "K D"]
    intercepts: Float[Array, " K"]
    variances: Float[Array, " K"]


class MixtureOfExperts(AbstractDensityMixture):
    r"""A mixture of linear-regression experts with a softmax gate, fitted by EM.

    For inputs ``x ∈ ℝ^D`` and a scalar response ``y``,

    .. math::

        p(y \mid x) = Σ_k π_k(x)\, N(y \mid β_kᵀ x + c_k, σ_k^2), \qquad
        π_k(x) = \mathrm{softmax}_k(V x + b),

    (Jacobs, Jordan, Nowlan & Hinton 1991; Jordan & Jacobs 1994). The latent variable is
    the expert ``z_n`` that produced ``y_n``. EM alternates the responsibilities
    ``r_nk ∝ π_k(x_n) N(y_n | β_kᵀ x_n + c_k, σ²_k)`` with a gradient M-step
    (`emjax.GradientMStep`, L-BFGS by default) on

    .. math::

        Q(θ \mid θ_t) = Σ_n w_n Σ_k r_{nk}(θ_t)\big[\log π_k(x_n) + \log N(y_n \mid β_kᵀx_n + c_k, σ_k^2)\big]

    over ``V, b, β, c`` and ``log(σ² − reg_variance)``. With ``gating="constant"``
    (``V = 0``: weights that do not depend on ``x``) this is a mixture of linear
    regressions, whose closed-form EM (weighted least squares and weighted variances) the
    tests use as the reference.

    Data are a tuple ``(X, y)``: ``X`` of shape ``(N, D)`` and ``y`` of shape ``(N,)``.
    The mixture methods take the same tuple: ``predict_proba(params, (X, y))`` is the
    posterior ``p(z = k | x, y)``, ``log_prob`` is ``log p(y | x)``. To predict ``y`` from
    ``X`` alone, use `predict_mean` (``E[y | x]``) and `gate_proba` (``π(x)``).

    Args:
        num_experts: number of experts ``K`` (``>= 1``).
        gating: "linear" (default: ``π(x) = softmax(Vx + b)``) or "constant" (``V = 0``).
        reg_variance: a floor under the experts' noise variances (``>= 0``; an array
            leaf): ``σ²_k = exp(s_k) + reg_variance``.
        gate_l2: precision ``λ ≥ 0`` of a Gaussian prior ``log p(V) = −λ‖V‖²/2`` on the
            gate's coefficients (0, the default, is maximum likelihood). A small value
            keeps ``V`` finite when the experts' regions are separable.
        init: "kmeans++" (default) or "random_from_data": ``K`` seeds among the
            standardised points ``(x_n, y_n)``; each point joins its nearest seed and each
            expert starts from the weighted least-squares fit of its points, with the gate
            at the group proportions.

    Raises:
        ValueError: an invalid ``num_experts``, ``gating``, ``reg_variance``, ``gate_l2``
            or ``init``.

    References:
        Jacobs, Jordan, Nowlan & Hinton (1991), "Adaptive mixtures of local experts",
        Neural Computation 3:79–87; Jordan & Jacobs (1994), "Hierarchical mixtures of
        experts and the EM algorithm", Neural Computation 6:181–214.

    Example:
        >>> import jax, numpy as np, emjax
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-3, 3, (300, 1))
        >>> y = np.where(X[:, 0] < 0, 1 + 2 * X[:, 0], 1 - X[:, 0]) + 0.1 * rng.normal(size=300)
        >>> model = emjax.MixtureOfExperts(num_experts=2)
        >>> sol = emjax.fit(model, (X, y), key=jax.random.key(0))
        >>> y_hat = model.predict_mean(sol.params, X)
        >>> bool(np.sqrt(np.mean((np.asarray(y_hat) - y) ** 2)) < 0.3)
        True
    """

    num_components: int = eqx.field(static=True)
    gating: str = eqx.field(static=True)
    init: str = eqx.field(static=True)
    reg_variance: Float[Array, ""]
    gate_l2: Float[Array, ""]

    def __init__(self, num_experts: int, gating: str = "linear", *, reg_variance=1e-6,
                 gate_l2=0.0, init: str = "kmeans++"):
        self.num_components = check_positive_int(num_experts, "num_experts")
        self.gating = check_choice(gating, "gating", GATINGS)
        self.reg_variance = check_nonnegative_scalar(reg_variance, "reg_variance")
        self.gate_l2 = check_nonnegative_scalar(gate_l2, "gate_l2")
        self.init = check_choice(init, "init", DENSITY_INITS)

    @property
    def num_experts(self) -> int:
        """The number of experts ``K``."""
        return self.num_components

    # ------------------------------------------------------------------ contract
    def check_data(self, data):
        X, y = _check_xy(data, "data")
        check_enough_points(X, self.num_components, "num_experts", "EM")
        return X, y

    def check_params(self, params, data):
        if not isinstance(params, MixtureOfExpertsParams):
            raise TypeError(
                "`params0` must be MixtureOfExpertsParams; build it with model.make_params(...); "
                f"got {type(params).__name__}."
            )
        X = data[0]
        batched = np.ndim(params.coefs) == 3
        lead = tuple(np.shape(params.coefs)[:1]) if batched else ()
        p = self.make_params(**{f: getattr(params, f) for f in _FIELDS}, _batch=lead,
                             _num_features=X.shape[1])
        return jax.tree.map(lambda a: a.astype(X.dtype), p), (lead[0] if batched else None)

    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> MixtureOfExpertsParams:
        Xb, yb = blocks.data
        X = Xb.reshape(-1, Xb.shape[-1])
        y = yb.reshape(-1)
        w = blocks.weights.reshape(-1)
        K, D = self.num_components, X.shape[1]
        dtype = X.dtype
        # Seeds among standardised (x, y) points; each point joins its nearest seed.
        Z = jnp.concatenate([X, y[:, None]], axis=1)
        total = jnp.sum(w)
        centre = jnp.sum(w[:, None] * Z, axis=0) / total
        spread = jnp.sqrt(jnp.sum(w[:, None] * jnp.square(Z - centre), axis=0) / total)
        Z = (Z - centre) / jnp.where(spread > 0, spread, 1.0)
        seeds = _weighted_seeds(Z, w, K, self.init, key)
        rw = jax.nn.one_hot(jnp.argmin(squared_distances(Z, seeds), axis=1), K, dtype=dtype)
        rw = rw * w[:, None]
        A = jnp.concatenate([X, jnp.ones_like(y)[:, None]], axis=1)  # (N, D + 1)
        # Weighted least squares per expert, with a tiny ridge (and a fallback to the
        # pooled fit) for groups too small to determine D + 1 coefficients.
        gram = jnp.einsum("nk,nd,ne->kde", rw, A, A, precision=jax.lax.Precision.HIGHEST)
        rhs = jnp.einsum("nk,nd,n->kd", rw, A, y, precision=jax.lax.Precision.HIGHEST)
        pooled = jnp.sum(gram, axis=0)
        ridge = 1e-8 * jnp.trace(pooled) / (D + 1) + jnp.finfo(dtype).tiny
        eye = jnp.eye(D + 1, dtype=dtype)
        beta = jnp.linalg.solve(gram + ridge * eye, rhs[..., None])[..., 0]
        beta_all = jnp.linalg.solve(pooled + ridge * eye, jnp.sum(rhs, axis=0))
        counts = jnp.sum(rw, axis=0)
        ok = (counts > D + 1) & jnp.all(jnp.isfinite(beta), axis=1)
        beta = jnp.where(ok[:, None], beta, beta_all)
        resid2 = jnp.square(y[:, None] - A @ beta.T)  # (N, K)
        var_all = jnp.sum(w * jnp.square(y - A @ beta_all)) / total
        var = jnp.sum(rw * resid2, axis=0) / jnp.where(ok, counts, 1.0)
        reg = self.reg_variance.astype(dtype)
        var = jnp.where(ok & (var > 0), var, var_all) + reg
        var = jnp.where(var > 0, var, 1.0)
        mass = jnp.maximum(counts, 1e-3 * total / K)
        return MixtureOfExpertsParams(
            gate_weights=jnp.zeros((K, D), dtype),
            gate_bias=jnp.log(mass / jnp.sum(mass)),
            coefs=beta[:, :D],
            intercepts=beta[:, D],
            variances=var,
        )

    def log_prior(self, params):
        return -0.5 * self.gate_l2.astype(params.coefs.dtype) * jnp.sum(jnp.square(params.gate_weights))

    def check_input(self, params, X):
        X, y = _check_xy(X, "X")
        D = params.coefs.shape[-1]
        if X.shape[1] != D:
            raise ValueError(f"the inputs have {X.shape[1]} features but the parameters have {D}.")
        dtype = params.coefs.dtype
        return X.astype(dtype), y.astype(dtype)

    def log_mixing(self, params, data):
        X, _ = data
        logits = jnp.matmul(X, params.gate_weights.T, precision=jax.lax.Precision.HIGHEST)
        return jax.nn.log_softmax(logits + params.gate_bias, axis=1)

    def component_log_prob(self, params, data):
        """``log N(y_n | β_kᵀ x_n + c_k, σ²_k)``, shape ``(B, K)``."""
        X, y = data
        mean = jnp.matmul(X, params.coefs.T, precision=jax.lax.Precision.HIGHEST) + params.intercepts
        var = params.variances
        return -0.5 * (_LOG_2PI + jnp.log(var) + jnp.square(y[:, None] - mean) / var)

    def unconstrain(self, params):
        """``(V, b, β, c, log(σ² − reg_variance))``; ``V`` left out for constant gating."""
        dtype = params.coefs.dtype
        reg = self.reg_variance.astype(dtype)
        log_var = jnp.log(jnp.maximum(params.variances - reg, jnp.finfo(dtype).tiny))
        rest = (params.gate_bias, params.coefs, params.intercepts, log_var)
        return rest if self.gating == "constant" else (params.gate_weights,) + rest

    def constrain(self, unconstrained):
        """The inverse of `unconstrain`."""
        if self.gating == "constant":
            bias, coefs, intercepts, log_var = unconstrained
            gate = jnp.zeros_like(coefs)
        else:
            gate, bias, coefs, intercepts, log_var = unconstrained
        var = jnp.exp(log_var) + self.reg_variance.astype(coefs.dtype)
        return MixtureOfExpertsParams(gate, bias, coefs, intercepts, var)

    # ------------------------------------------------------------------ public API
    def gate_proba(self, params: MixtureOfExpertsParams, X) -> Float[Array, "N K"]:
        """The gate ``π_k(x_n) = p(z_n = k | x_n)``, shape ``(N, K)``: which expert each
        input is routed to, before seeing ``y``.

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.MixtureOfExperts(2)
            >>> p = model.make_params(gate_weights=np.zeros((2, 1)), gate_bias=np.zeros(2),
            ...                       coefs=np.ones((2, 1)), intercepts=np.zeros(2),
            ...                       variances=np.ones(2))
            >>> model.gate_proba(p, np.zeros((3, 1))).tolist()
            [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]
        """
        X = self._check_inputs(params, X)
        return _per_input(self, params, X, "gate")

    def predict_mean(self, params: MixtureOfExpertsParams, X) -> Float[Array, " N"]:
        """The mean prediction ``E[y | x_n] = Σ_k π_k(x_n) (β_kᵀ x_n + c_k)``, shape ``(N,)``.

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.MixtureOfExperts(2)
            >>> p = model.make_params(gate_weights=np.zeros((2, 1)), gate_bias=np.zeros(2),
            ...                       coefs=np.array([[1.0], [3.0]]), intercepts=np.zeros(2),
            ...                       variances=np.ones(2))
            >>> model.predict_mean(p, np.ones((2, 1))).tolist()
            [2.0, 2.0]
        """
        X = self._check_inputs(params, X)
        return _per_input(self, params, X, "mean")

    def _check_inputs(self, params, X):
        X = check_matrix(X, "X")
        D = params.coefs.shape[-1]
        if X.shape[1] != D:
            raise ValueError(f"`X` has {X.shape[1]} features but the parameters have {D}.")
        return X.astype(params.coefs.dtype)

    def make_params(self, *, gate_weights, gate_bias, coefs, intercepts, variances, _batch=(),
                    _num_features=None) -> MixtureOfExpertsParams:
        """Build and validate parameters (for ``params0``).

        A leading restart axis on every array gives a batch for ``params0``.

        Args:
            gate_weights: ``(K, D)``; must be zero for ``gating="constant"``.
            gate_bias: ``(K,)``.
            coefs: ``(K, D)``.
            intercepts: ``(K,)``.
            variances: ``(K,)``, positive.

        Raises:
            ValueError: shapes that do not fit, non-finite values, variances ``<= 0``, or a
                non-zero gate for constant gating.

        Example:
            >>> import numpy as np, emjax
            >>> p = emjax.MixtureOfExperts(3).make_params(
            ...     gate_weights=np.zeros((3, 2)), gate_bias=np.zeros(3), coefs=np.ones((3, 2)),
            ...     intercepts=np.zeros(3), variances=np.ones(3))
            >>> p.coefs.shape
            (3, 2)
        """
        arrays = {name: as_float_array(value, name) for name, value in zip(
            _FIELDS, (gate_weights, gate_bias, coefs, intercepts, variances), strict=True)}
        K = self.num_components
        lead = tuple(_batch)
        if not lead and arrays["coefs"].ndim == 3:
            lead = arrays["coefs"].shape[:1]
        c = arrays["coefs"]
        if c.ndim != len(lead) + 2 or c.shape[: len(lead) + 1] != lead + (K,):
            raise ValueError(f"`coefs` must have shape {lead + (K, 'D')}; got {tuple(c.shape)}.")
        D = c.shape[-1]
        if _num_features is not None and D != _num_features:
            raise ValueError(f"`coefs` have {D} features but the data have {_num_features}.")
        for name, shape in (("gate_weights", (K, D)), ("gate_bias", (K,)),
                            ("intercepts", (K,)), ("variances", (K,))):
            if arrays[name].shape != lead + shape:
                raise ValueError(f"`{name}` must have shape {lead + shape}; got "
                                 f"{tuple(arrays[name].shape)}.")
        dtype = jnp.result_type(*arrays.values())
        if not any(is_traced(a) for a in arrays.values()):
            for name, a in arrays.items():
                check_finite(a, name)
            if (np.asarray(arrays["variances"]) <= 0).any():
                raise ValueError("`variances` must be > 0.")
            if self.gating == "constant" and np.any(np.asarray(arrays["gate_weights"]) != 0):
                raise ValueError('`gate_weights` must be zero for gating="constant".')
        return MixtureOfExpertsParams(**{k: a.astype(dtype) for k, a in arrays.items()})


_FIELDS = ("gate_weights", "gate_bias", "coefs", "intercepts", "variances")


def _check_xy(data, name: str):
    """``(X, y)``: a finite ``(N, D)`` matrix and a finite ``(N,)`` vector, one dtype."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"`{name}` for a mixture of experts must be a tuple (X, y) of inputs (N, D) and "
            f"responses (N,); got {type(data).__name__}."
        )
    X = check_matrix(data[0], "X")
    y = as_float_array(data[1], "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"`y` must have shape ({X.shape[0]},), one response per row of X; got "
            f"{tuple(y.shape)}."
        )
    check_finite(y, "y")
    dtype = jnp.result_type(X, y)
    return X.astype(dtype), y.astype(dtype)


@eqx.filter_jit
def _per_input(model: MixtureOfExperts, params, X, what: str):
    def one_block(x):
        hi = jax.lax.Precision.HIGHEST
        gate = jax.nn.softmax(jnp.matmul(x, params.gate_weights.T, precision=hi)
                              + params.gate_bias, axis=1)
        if what == "gate":
            return gate
        mean = jnp.matmul(x, params.coefs.T, precision=hi) + params.intercepts
        return jnp.sum(gate * mean, axis=1)

    return map_rows(one_block, X, default_block_size(X.shape[0], model.row_cost(X)))
