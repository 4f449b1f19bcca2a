"""Gaussian mixture models fitted by EM."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._accumulate import Blocks, accumulate
from .._custom_types import Array, Float, PRNGKeyArray
from .._kmeanspp import kmeans_plusplus, squared_distances
from .._model import (
    AbstractMixtureModel,
    AbstractUnconstrainedModel,
    check_enough_points,
    hard_assignments,
    mixture_expected_log_joint,
    soft_assignments,
)
from .._solver import EM
from .._validation import (
    as_float_array,
    check_choice,
    check_matrix,
    check_nonnegative_scalar,
    check_positive_int,
    is_traced,
)

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
GMM_INITS = ("kmeans++", "kmeans", "random", "random_from_data")
_HI = jax.lax.Precision.HIGHEST  # no TF32 / bf16 passes in the statistics (GPU, TPU)
_LOG_2PI = math.log(2 * math.pi)


class GaussianMixtureParams(eqx.Module):
    """Parameters of a Gaussian mixture, in scikit-learn's shapes.

    Attributes:
        weights: mixing proportions, shape ``(K,)``, summing to 1.
        means: component means, shape ``(K, D)``.
        covariances: ``(K, D, D)`` for "full", ``(K, D)`` for "diag", ``(K,)`` for
            "spherical" (one variance per component), ``(D, D)`` for "tied".
    """

    weights: Float[Array, " K"]
    means: Float[Array, "K D"]
    covariances: Array


class GaussianMixtureStats(eqx.Module):
    """Expected sufficient statistics of a Gaussian mixture, summed over data points.

    With responsibilities ``r_nk``, sample weights ``w_n`` and the current means ``μ_k``
    as a shift (which keeps float32 second moments accurate for offset data):

    Attributes:
        counts: ``N_k = Σ_n w_n r_nk``, shape ``(K,)``.
        shifted_sum: ``Σ_n w_n r_nk (x_n − μ_k)``, shape ``(K, D)``.
        shifted_scatter: ``Σ_n w_n r_nk (x_n − μ_k)(x_n − μ_k)ᵀ`` as ``(K, D, D)`` (full),
            its diagonal ``(K, D)`` (diag, spherical), or summed over ``k`` ``(D, D)``
            (tied).
    """

    counts: Float[Array, " K"]
    shifted_sum: Float[Array, "K D"]
    shifted_scatter: Array

    def __add__(self, other: "GaussianMixtureStats") -> "GaussianMixtureStats":
        return jax.tree.map(jnp.add, self, other)


def _ignore_unweighted(x, w, fill):
    """Rows of weight 0 (padding, or rows a user weighted out) replaced by a harmless point,
    so that their values (even inf or 1e200) can never turn a 0·∞ into NaN statistics."""
    return jnp.where((w > 0)[:, None], x, fill)


def _diag_embed(d):
    """Diagonal matrices from the last axis of ``d`` (batched)."""
    return d[..., :, None] * jnp.eye(d.shape[-1], dtype=d.dtype)


def _log_cholesky(a):
    """Lower Cholesky factor of the positive (semi)definite ``a`` (batched) with the log of
    its diagonal on the diagonal: an unconstrained parametrization of ``a``.

    A factorisation that fails (``a`` singular or slightly indefinite from rounding) is
    retried with ``10·eps·max(diag)`` added to the diagonal; diagonals are floored at the
    smallest normal number, so the result is always finite.
    """
    dtype = a.dtype
    eye = jnp.eye(a.shape[-1], dtype=dtype)
    chol = jnp.linalg.cholesky(a)
    jitter = 10 * jnp.finfo(dtype).eps * jnp.max(jnp.abs(jnp.diagonal(a, axis1=-2, axis2=-1)),
                                                  axis=-1)
    retry = jnp.linalg.cholesky(a + (jitter + jnp.finfo(dtype).tiny)[..., None, None] * eye)
    good = jnp.all(jnp.isfinite(chol), axis=(-2, -1), keepdims=True)
    chol = jnp.where(good, chol, retry)
    chol = jnp.where(jnp.isfinite(chol), chol, 0.0)
    diag = jnp.maximum(jnp.diagonal(chol, axis1=-2, axis2=-1), jnp.finfo(dtype).tiny)
    return jnp.tril(chol, -1) + _diag_embed(jnp.log(diag))


def _tril_inverse_t(chol):
    """``L⁻ᵀ`` for lower-triangular ``L`` (batched): the precision Cholesky factor."""
    eye = jnp.broadcast_to(jnp.eye(chol.shape[-1], dtype=chol.dtype), chol.shape)
    inv = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
    return jnp.swapaxes(inv, -1, -2)


class GaussianMixture(AbstractMixtureModel, AbstractUnconstrainedModel):
    r"""A mixture of ``K`` Gaussians, ``p(x) = Σ_k π_k N(x | μ_k, Σ_k)``, fitted by EM.

    **E-step.** Responsibilities ``r_nk = π_k N(x_n | μ_k, Σ_k) / Σ_j π_j N(x_n | μ_j, Σ_j)``
    are computed in log space (``logsumexp``) from Cholesky factors ``Σ_k = L_k L_kᵀ``:
    ``log N = −½‖L_k⁻¹(x − μ_k)‖² − Σ_d log (L_k)_dd − (D/2) log 2π``; no covariance is
    inverted. The statistics are ``N_k = Σ w_n r_nk``, ``S1_k = Σ w_n r_nk (x_n − μ_k)``
    and ``S2_k = Σ w_n r_nk (x_n − μ_k)(x_n − μ_k)ᵀ`` around the current means.

    **M-step** (closed form, Dempster et al. 1977; Bishop 2006 §9.2):
    ``π_k = N_k / Σ_j N_j``, ``μ_k ← μ_k + S1_k / N_k``,
    ``Σ_k = S2_k / N_k − (S1_k/N_k)(S1_k/N_k)ᵀ + reg_covar·I`` for "full"; its diagonal for
    "diag"; the mean of that diagonal for "spherical"; and
    ``Σ = Σ_k (S2_k − S1_k S1_kᵀ / N_k) / Σ_j N_j + reg_covar·I`` for "tied", matching
    scikit-learn's ``GaussianMixture``. A component whose mass falls below
    ``10·eps·N`` (empty), or whose new covariance is not positive definite, keeps its
    previous mean and covariance, so parameters never become NaN.

    **Gradient M-step.** With ``solver=emjax.EM(m_step=emjax.GradientMStep(...))`` the
    parameters are optimised in an unconstrained form: logits ``log π_k`` for the weights,
    and ``Σ = L Lᵀ + reg_covar·I`` with ``L`` lower triangular with a log-diagonal ("full",
    "tied") or ``Σ = exp(s) + reg_covar`` ("diag", "spherical"). There ``reg_covar`` is a
    floor under the covariances' eigenvalues rather than an addition to the estimate, so
    the fixed points agree with the closed-form M-step's when ``reg_covar = 0``.

    Args:
        num_components: number of components ``K`` (``>= 1``).
        covariance_type: "full" (default), "diag", "spherical" or "tied".
        reg_covar: added to the diagonal of every covariance in every M-step (``>= 0``);
            an array leaf, so it can be vmapped over and differentiated.
        init: how `emjax.fit` initialises each restart: "kmeans++" (default: greedy
            k-means++ seeds, each point assigned to its nearest seed, then an M-step),
            "kmeans" (k-means++ seeds refined by up to 100 Lloyd steps, like
            scikit-learn's default), "random" (uniformly random responsibilities, like
            scikit-learn's "random") or "random_from_data" (K distinct random points as
            means, nearest-mean assignment). Pass ``params0`` to `emjax.fit` for user
            parameters (see `make_params`).

    Raises:
        ValueError: an invalid ``num_components``, ``covariance_type``, ``reg_covar`` or
            ``init``.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> gmm = emjax.GaussianMixture(num_components=2, covariance_type="full")
        >>> sol = emjax.fit(gmm, X, key=jax.random.key(0), num_restarts=16)
        >>> sol.params.covariances.shape
        (2, 2, 2)
        >>> labels = gmm.predict(sol.params, X)
        >>> bic = gmm.bic(sol.params, X)
    """

    num_components: int = eqx.field(static=True)
    covariance_type: str = eqx.field(static=True)
    init: str = eqx.field(static=True)
    reg_covar: Float[Array, ""]

    def __init__(
        self,
        num_components: int,
        covariance_type: str = "full",
        reg_covar=1e-6,
        init: str = "kmeans++",
    ):
        self.num_components = check_positive_int(num_components, "num_components")
        self.covariance_type = check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
        self.reg_covar = check_nonnegative_scalar(reg_covar, "reg_covar")
        self.init = check_choice(init, "init", GMM_INITS)

    # ------------------------------------------------------------------ contract
    def default_solver(self):
        return EM()

    def row_cost(self, data) -> int:
        """``K·D``: the differences ``x_n − μ_k`` an E-step forms for each row."""
        return self.num_components * data.shape[-1]

    def check_data(self, data):
        return check_enough_points(check_matrix(data, "X"), self.num_components,
                                   "num_components", "EM")

    def check_params(self, params, data):
        if not isinstance(params, GaussianMixtureParams):
            raise TypeError(
                "`params0` must be GaussianMixtureParams; build it with "
                f"model.make_params(weights=..., means=..., covariances=...); got {type(params).__name__}."
            )
        D = data.shape[1]
        batched = np.ndim(params.means) == 3
        lead = params.means.shape[:1] if batched else ()
        p = self.make_params(
            weights=params.weights, means=params.means, covariances=params.covariances,
            _batch=lead, _num_features=D,
        )
        p = jax.tree.map(lambda a: a.astype(data.dtype), p)
        return p, (lead[0] if batched else None)

    def log_prior(self, params):
        return jnp.zeros((), params.means.dtype)

    def e_step(self, params, x, w):
        x = _ignore_unweighted(x, w, params.means[0])
        log_joint, diff = self._log_joint_and_diff(params, x)
        rw, elbo = soft_assignments(log_joint, w)
        return self._statistics(diff, rw), elbo

    def hard_e_step(self, params, x, w):
        x = _ignore_unweighted(x, w, params.means[0])
        log_joint, diff = self._log_joint_and_diff(params, x)
        rw, _, elbo = hard_assignments(log_joint, w)
        return self._statistics(diff, rw), elbo

    def m_step(self, params, stats):
        dtype = stats.counts.dtype
        counts = stats.counts
        total = jnp.sum(counts)
        floor = 10 * jnp.finfo(dtype).eps * jnp.maximum(total, 1.0)
        alive = counts > floor
        safe = jnp.where(alive, counts, 1.0)
        delta = stats.shifted_sum / safe[:, None]
        means = params.means + delta
        reg = self.reg_covar.astype(dtype)
        D = means.shape[1]
        eye = jnp.eye(D, dtype=dtype)
        ct = self.covariance_type
        if ct == "full":
            cov = stats.shifted_scatter / safe[:, None, None] - delta[:, :, None] * delta[:, None, :]
            cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2)) + reg * eye
            chol = jnp.linalg.cholesky(cov)
            ok = alive & jnp.all(jnp.isfinite(chol), axis=(1, 2))
            cov = jnp.where(ok[:, None, None], cov, params.covariances)
        elif ct == "tied":
            dd = jnp.where(alive[:, None, None], counts[:, None, None] * delta[:, :, None] * delta[:, None, :], 0.0)
            cov = (stats.shifted_scatter - jnp.sum(dd, axis=0)) / total
            cov = 0.5 * (cov + cov.T) + reg * eye
            ok = jnp.all(jnp.isfinite(jnp.linalg.cholesky(cov)))
            cov = jnp.where(ok, cov, params.covariances)
            ok = alive
        else:
            var = stats.shifted_scatter / safe[:, None] - jnp.square(delta)
            if ct == "spherical":
                var = jnp.mean(var, axis=1)
            var = var + reg
            ok = alive & (var > 0 if ct == "spherical" else jnp.all(var > 0, axis=1))
            cov = jnp.where(ok if ct == "spherical" else ok[:, None], var, params.covariances)
        means = jnp.where(ok[:, None], means, params.means)
        mass = jnp.maximum(counts, floor)
        return GaussianMixtureParams(weights=mass / jnp.sum(mass), means=means, covariances=cov)

    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> GaussianMixtureParams:
        x = blocks.data.reshape(-1, blocks.data.shape[-1])
        w = blocks.weights.reshape(-1)
        K = self.num_components
        total = jnp.sum(w)
        centre = jnp.sum(w[:, None] * x, axis=0) / total
        var = jnp.sum(w[:, None] * jnp.square(x - centre), axis=0) / total
        # A scale-aware fallback for components that receive no points at initialisation.
        fallback = self._covariance_from_variance(jnp.maximum(var, 0) + self.reg_covar.astype(x.dtype))
        if self.init == "random":
            resp = jax.random.uniform(key, (x.shape[0], K), x.dtype)
            resp = resp / jnp.sum(resp, axis=1, keepdims=True)
            shift = jnp.broadcast_to(centre, (K, x.shape[1]))
            resp_blocks = Blocks((blocks.data, resp.reshape(blocks.weights.shape + (K,))), blocks.weights)
            stats = accumulate(
                lambda xr, wb: self._statistics(xr[0][None] - shift[:, None], xr[1] * wb[:, None]),
                resp_blocks,
            )
        else:
            if self.init == "random_from_data":
                logits = jnp.where(w > 0, 0.0, -jnp.inf)
                g = jax.random.gumbel(key, w.shape, x.dtype) + logits
                shift = x[jax.lax.top_k(g, K)[1]]
            else:
                shift = kmeans_plusplus(x, w, K, key=key)
                if self.init == "kmeans":
                    shift = _lloyd(shift, blocks, max_steps=100)
            stats = accumulate(lambda xb, wb: self._hard_statistics(shift, xb, wb), blocks)
        provisional = GaussianMixtureParams(
            weights=jnp.full((K,), 1.0 / K, x.dtype), means=shift, covariances=fallback
        )
        return self.m_step(provisional, stats)

    # ------------------------------------------------------------------ gradient M-step
    def unconstrain(self, params):
        """``(log π, means, ψ_Σ)`` with ``ψ_Σ`` a Cholesky factor of ``Σ − reg_covar·I`` whose
        diagonal holds logs ("full", "tied"), or ``log(Σ − reg_covar)`` ("diag", "spherical")."""
        dtype = params.means.dtype
        tiny = jnp.finfo(dtype).tiny
        reg = self.reg_covar.astype(dtype)
        logits = jnp.log(jnp.maximum(params.weights, tiny))
        cov = params.covariances
        if self.covariance_type in ("full", "tied"):
            psi_cov = _log_cholesky(cov - reg * jnp.eye(cov.shape[-1], dtype=dtype))
        else:
            psi_cov = jnp.log(jnp.maximum(cov - reg, tiny))
        return logits, params.means, psi_cov

    def constrain(self, unconstrained):
        """The inverse of `unconstrain`: softmax weights, ``L Lᵀ + reg_covar·I`` or ``exp + reg``."""
        logits, means, psi_cov = unconstrained
        reg = self.reg_covar.astype(means.dtype)
        if self.covariance_type in ("full", "tied"):
            tril = jnp.tril(psi_cov, -1)
            chol = tril + _diag_embed(jnp.exp(jnp.diagonal(psi_cov, axis1=-2, axis2=-1)))
            eye = jnp.eye(means.shape[-1], dtype=means.dtype)
            cov = jnp.matmul(chol, jnp.swapaxes(chol, -1, -2), precision=_HI) + reg * eye
        else:
            cov = jnp.exp(psi_cov) + reg
        return GaussianMixtureParams(jax.nn.softmax(logits), means, cov)

    def expected_log_joint(self, params, reference_params, x, w):
        """``Σ_n w_n Σ_k r_nk(θ') log π_k N(x_n | μ_k, Σ_k)`` on one block (``θ' = reference_params``)."""
        x = _ignore_unweighted(x, w, reference_params.means[0])
        return mixture_expected_log_joint(self.log_joint(params, x),
                                          self.log_joint(reference_params, x), w)

    # ------------------------------------------------------------------ internals
    def _covariance_from_variance(self, var):
        K = self.num_components
        ct = self.covariance_type
        if ct == "full":
            return jnp.broadcast_to(jnp.diag(var), (K,) + (var.shape[0],) * 2)
        if ct == "tied":
            return jnp.diag(var)
        if ct == "diag":
            return jnp.broadcast_to(var, (K, var.shape[0]))
        return jnp.full((K,), jnp.mean(var), var.dtype)

    def _log_gaussian(self, params, x):
        """``log N(x_n | μ_k, Σ_k)`` as ``(B, K)``, and the differences ``x_n − μ_k`` (K, B, D)."""
        diff = x[None, :, :] - params.means[:, None, :]
        D = x.shape[1]
        cov = params.covariances
        ct = self.covariance_type
        if ct in ("full", "tied"):
            chol = jnp.linalg.cholesky(cov)
            prec_chol = _tril_inverse_t(chol)
            half_logdet = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
            if ct == "full":
                y = jnp.einsum("kbd,kde->kbe", diff, prec_chol, precision=_HI)
            else:
                y = jnp.einsum("kbd,de->kbe", diff, prec_chol, precision=_HI)
            maha = jnp.sum(jnp.square(y), axis=-1)
        elif ct == "diag":
            maha = jnp.sum(jnp.square(diff) / cov[:, None, :], axis=-1)
            half_logdet = 0.5 * jnp.sum(jnp.log(cov), axis=-1)
        else:
            maha = jnp.sum(jnp.square(diff), axis=-1) / cov[:, None]
            half_logdet = 0.5 * D * jnp.log(cov)
        log_prob = -0.5 * (D * _LOG_2PI + maha) - jnp.reshape(half_logdet, (-1, 1))
        return log_prob.T, diff

    def rebase_stats(self, stats, from_params, to_params):
        """Shifted statistics moved from the means of ``from_params`` to those of ``to_params``
        (``x − μ' = (x − μ) + δ`` with ``δ = μ − μ'``; see `AbstractEMModel.rebase_stats`)."""
        return rebase_shifted(stats, from_params.means - to_params.means, self.covariance_type)

    def _log_joint_and_diff(self, params, x):
        log_prob, diff = self._log_gaussian(params, x)
        return log_prob + jnp.log(params.weights), diff

    def log_joint(self, params, x):
        """``log π_k + log N(x_n | μ_k, Σ_k)``, shape ``(N, K)``."""
        return self._log_joint_and_diff(params, x)[0]

    def _statistics(self, diff, rw) -> GaussianMixtureStats:
        """Statistics from shifted differences ``diff`` (K, B, D) and weighted resp. (B, K)."""
        counts = jnp.sum(rw, axis=0)
        s1 = jnp.einsum("bk,kbd->kd", rw, diff, precision=_HI)
        ct = self.covariance_type
        if ct == "full":
            s2 = jnp.einsum("kbd,kbe->kde", rw.T[:, :, None] * diff, diff, precision=_HI)
        elif ct == "tied":
            s2 = jnp.einsum("kbd,kbe->de", rw.T[:, :, None] * diff, diff, precision=_HI)
        else:
            s2 = jnp.einsum("bk,kbd->kd", rw, jnp.square(diff), precision=_HI)
        return GaussianMixtureStats(counts, s1, s2)

    def _hard_statistics(self, centres, x, w):
        """Statistics of nearest-centre assignments, shifted by the centres."""
        z = jnp.argmin(squared_distances(x, centres), axis=1)
        rw = jax.nn.one_hot(z, self.num_components, dtype=x.dtype) * w[:, None]
        return self._statistics(x[None] - centres[:, None], rw)

    def check_input(self, params, X):
        X = check_matrix(X, "X")
        D = params.means.shape[-1]
        if X.shape[1] != D:
            raise ValueError(f"`X` has {X.shape[1]} features but the parameters have {D}.")
        return X.astype(params.means.dtype)

    # ------------------------------------------------------------------ public API
    def make_params(self, *, weights, means, covariances, _batch=(), _num_features=None) -> GaussianMixtureParams:
        """Build and validate parameters from scikit-learn-shaped arrays.

        Args:
            weights: ``(K,)`` non-negative mixing proportions summing to 1.
            means: ``(K, D)``.
            covariances: ``(K, D, D)`` symmetric positive definite (full), ``(K, D)``
                positive (diag), ``(K,)`` positive (spherical) or ``(D, D)`` (tied). A
                leading restart axis on every array gives a batch for ``params0``.

        Returns:
            `GaussianMixtureParams`.

        Raises:
            ValueError: a shape that does not fit ``num_components`` and
                ``covariance_type``, weights that are negative or do not sum to 1, or a
                covariance that is not symmetric positive definite.

        Example:
            >>> import numpy as np, emjax
            >>> gmm = emjax.GaussianMixture(2, covariance_type="diag")
            >>> p = gmm.make_params(weights=np.array([0.5, 0.5]),
            ...                     means=np.array([[0.0, 0.0], [3.0, 3.0]]),
            ...                     covariances=np.ones((2, 2)))
            >>> p.means.shape
            (2, 2)
        """
        weights = as_float_array(weights, "weights")
        means = as_float_array(means, "means")
        covariances = as_float_array(covariances, "covariances")
        K = self.num_components
        lead = tuple(_batch)
        if not lead and means.ndim == 3:
            lead = means.shape[:1]
        nb = len(lead)
        if means.ndim != 2 + nb or means.shape[:nb] != lead or means.shape[nb] != K:
            raise ValueError(f"`means` must have shape {lead + (K, 'D')}; got {tuple(means.shape)}.")
        D = means.shape[-1]
        if _num_features is not None and D != _num_features:
            raise ValueError(f"`means` has {D} features but the data have {_num_features}.")
        if weights.shape != lead + (K,):
            raise ValueError(f"`weights` must have shape {lead + (K,)}; got {tuple(weights.shape)}.")
        expected = {
            "full": (K, D, D), "diag": (K, D), "spherical": (K,), "tied": (D, D),
        }[self.covariance_type]
        if covariances.shape != lead + expected:
            raise ValueError(
                f"`covariances` must have shape {lead + expected} for covariance_type="
                f"{self.covariance_type!r}; got {tuple(covariances.shape)}."
            )
        dtype = jnp.result_type(weights, means, covariances)
        if not any(is_traced(a) for a in (weights, means, covariances)):
            wn, cn = np.asarray(weights, np.float64), np.asarray(covariances, np.float64)
            if not (np.isfinite(wn).all() and np.isfinite(np.asarray(means)).all() and np.isfinite(cn).all()):
                raise ValueError("`weights`, `means` and `covariances` must be finite.")
            if (wn < 0).any() or not np.allclose(wn.sum(-1), 1.0, atol=1e-6 if dtype == jnp.float32 else 1e-8):
                raise ValueError(f"`weights` must be non-negative and sum to 1; got sums {wn.sum(-1)}.")
            if self.covariance_type in ("full", "tied"):
                if not np.allclose(cn, np.swapaxes(cn, -1, -2), rtol=1e-6, atol=1e-12):
                    raise ValueError("`covariances` must be symmetric.")
                if (np.linalg.eigvalsh(cn) <= 0).any():
                    raise ValueError("`covariances` must be positive definite.")
            elif (cn <= 0).any():
                raise ValueError("`covariances` (variances) must be positive.")
        return GaussianMixtureParams(
            weights=weights.astype(dtype), means=means.astype(dtype), covariances=covariances.astype(dtype)
        )

    def sample(self, params: GaussianMixtureParams, num_samples: int, *, key: PRNGKeyArray):
        """Draw ``num_samples`` points; returns ``(X, labels)`` of shapes ``(n, D)``, ``(n,)``.

        Example:
            >>> import jax, numpy as np, emjax
            >>> gmm = emjax.GaussianMixture(1, covariance_type="spherical")
            >>> p = gmm.make_params(weights=np.ones(1), means=np.zeros((1, 2)),
            ...                     covariances=np.ones(1))
            >>> X, z = gmm.sample(p, 5, key=jax.random.key(0))
            >>> X.shape
            (5, 2)
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        kz, kx = jax.random.split(key)
        z = jax.random.categorical(kz, jnp.log(params.weights), shape=(num_samples,))
        return sample_gaussians(kx, self.covariance_type, params.means, params.covariances, z), z

    def num_free_params(self, num_features: int) -> int:
        """Number of free parameters: ``K − 1`` weights, ``K·D`` means, and the covariances.

        Example:
            >>> import emjax
            >>> emjax.GaussianMixture(3, covariance_type="full").num_free_params(2)
            17
        """
        K, D = self.num_components, int(num_features)
        cov = {"full": K * D * (D + 1) // 2, "diag": K * D, "spherical": K, "tied": D * (D + 1) // 2}
        return K - 1 + K * D + cov[self.covariance_type]

    def bic(self, params: GaussianMixtureParams, X) -> Float[Array, ""]:
        """Bayesian information criterion ``−2 log L + p log N`` (lower is better).

        The same definition and sign as scikit-learn's ``GaussianMixture.bic``; mclust
        reports the negative.
        """
        X = self.check_input(params, X)
        n, D = X.shape
        return -2.0 * self.log_likelihood(params, X) + self.num_free_params(D) * math.log(n)

    def aic(self, params: GaussianMixtureParams, X) -> Float[Array, ""]:
        """Akaike information criterion ``−2 log L + 2p`` (lower is better)."""
        X = self.check_input(params, X)
        return -2.0 * self.log_likelihood(params, X) + 2.0 * self.num_free_params(X.shape[1])


def rebase_shifted(stats: GaussianMixtureStats, delta, covariance_type: str):
    """Statistics shifted by ``μ`` re-shifted by ``μ' = μ − δ``: with ``S0 = N_k``,
    ``S1 = Σ r (x − μ)`` and ``S2 = Σ r (x − μ)(x − μ)ᵀ``, the new ``S1' = S1 + S0 δ`` and
    ``S2' = S2 + S1 δᵀ + δ S1ᵀ + S0 δ δᵀ`` (its diagonal, or its sum over components)."""
    n, s1 = stats.counts, stats.shifted_sum
    new_s1 = s1 + n[:, None] * delta
    if covariance_type in ("full", "tied"):
        cross = s1[:, :, None] * delta[:, None, :]
        extra = cross + jnp.swapaxes(cross, 1, 2) + n[:, None, None] * delta[:, :, None] * delta[:, None, :]
        if covariance_type == "tied":
            extra = jnp.sum(extra, axis=0)
    else:
        extra = 2.0 * s1 * delta + n[:, None] * jnp.square(delta)
    return GaussianMixtureStats(n, new_s1, stats.shifted_scatter + extra)


def sample_gaussians(key, covariance_type: str, means, covariances, z):
    """One draw from ``N(means[z_n], Σ_{z_n})`` per entry of ``z``, covariances in the shape
    of ``covariance_type`` (as in `GaussianMixtureParams`)."""
    eps = jax.random.normal(key, z.shape + means.shape[-1:], means.dtype)
    if covariance_type == "full":
        noise = jnp.einsum("nde,ne->nd", jnp.linalg.cholesky(covariances)[z], eps)
    elif covariance_type == "tied":
        noise = eps @ jnp.linalg.cholesky(covariances).T
    elif covariance_type == "diag":
        noise = eps * jnp.sqrt(covariances[z])
    else:
        noise = eps * jnp.sqrt(covariances[z])[:, None]
    return means[z] + noise


def _lloyd(centres, blocks: Blocks, max_steps: int):
    """Refine k-means seeds by Lloyd's algorithm on the engine (for ``init="kmeans"``)."""
    from .._fit import _run_one  # the shared EM loop; imported here to avoid a cycle
    from .._solver import HardEM
    from ._kmeans import KMeans, KMeansParams

    model = KMeans(centres.shape[0])
    zero = jnp.zeros((), centres.dtype)
    params, *_ = _run_one(model, HardEM(), blocks, KMeansParams(centres), zero, zero, max_steps,
                          capacity=max_steps + 1)
    return params.centers
