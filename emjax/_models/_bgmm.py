"""Bayesian Gaussian mixtures fitted by mean-field variational inference (CAVI)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammaln

from .._accumulate import Blocks, default_block_size, map_rows
from .._custom_types import Array, Float, Int, PRNGKeyArray
from .._model import AbstractMixtureModel, check_enough_points, hard_assignments, soft_assignments
from .._solver import EM
from .._validation import (
    as_float_array,
    check_choice,
    check_finite,
    check_matrix,
    check_nonnegative_scalar,
    check_positive_int,
    check_positive_scalar,
    is_traced,
)
from ._gmm import (
    GMM_INITS,
    GaussianMixture,
    GaussianMixtureStats,
    _ignore_unweighted,
    _tril_inverse_t,
    rebase_shifted,
)

WEIGHT_PRIORS = ("dirichlet_process", "dirichlet_distribution")
BGMM_COVARIANCE_TYPES = ("full", "diag", "spherical")
_HI = jax.lax.Precision.HIGHEST
_LOG_2PI = math.log(2 * math.pi)


class BayesianGaussianMixtureParams(eqx.Module):
    r"""Variational parameters of a Bayesian Gaussian mixture, in scikit-learn's shapes.

    ``q(π) q(μ, Λ) = q(π) Π_k N(μ_k | m_k, (β_k Λ_k)⁻¹) W(Λ_k | W_k, ν_k)``, with the Wishart
    scale kept as scikit-learn keeps it: ``covariances[k] = W_k⁻¹ / ν_k``, the inverse of
    the expected precision ``E_q[Λ_k] = ν_k W_k`` (the covariance to plug into a Gaussian).

    Attributes:
        weight_concentration: ``(K,)`` Dirichlet parameters ``α_k`` of ``q(π)``
            ("dirichlet_distribution"), or ``(2, K)`` Beta parameters ``(a_k, b_k)`` of
            the stick proportions ``q(v_k)`` ("dirichlet_process").
        mean_precision: ``β_k``, shape ``(K,)``.
        means: ``m_k = E_q[μ_k]``, shape ``(K, D)``.
        degrees_of_freedom: ``ν_k``, shape ``(K,)``.
        covariances: ``W_k⁻¹ / ν_k``: ``(K, D, D)`` ("full"), ``(K, D)`` ("diag": the
            diagonal of a diagonal scale matrix) or ``(K,)`` ("spherical": ``W_k⁻¹/ν_k`` is
            this times the identity).
        mean_prior: the prior mean ``m₀`` in use, shape ``(D,)``: the model's, or the
            weighted data mean (recomputed from the statistics by every M-step).
        covariance_prior: the prior scale ``W₀⁻¹`` in use: ``(D, D)``, ``(D,)`` or ``()``
            as ``covariances``; the model's, or the weighted data covariance. ``None``
            in parameters built by `BayesianGaussianMixture.make_params` from a model with
            data-dependent priors, until `emjax.fit` fills them in.
    """

    weight_concentration: Array
    mean_precision: Float[Array, " K"]
    means: Float[Array, "K D"]
    degrees_of_freedom: Float[Array, " K"]
    covariances: Array
    mean_prior: Float[Array, " D"] | None
    covariance_prior: Array | None


class BayesianGaussianMixture(AbstractMixtureModel):
    r"""A Gaussian mixture with priors on its parameters, fitted by mean-field variational
    inference (coordinate ascent, CAVI; Bishop 2006 §10.2; Blei & Jordan 2006).

    **Model.** ``z_n | π ~ Categorical(π)``, ``x_n | z_n = k ~ N(μ_k, Λ_k⁻¹)``, with

    - weights: ``π ~ Dirichlet(γ, …, γ)`` ("dirichlet_distribution"), or a truncated
      stick-breaking Dirichlet process ("dirichlet_process", the default):
      ``π_k = v_k Π_{j<k} (1 − v_j)``, ``v_k ~ Beta(1, γ)``, ``k = 1..K``;
    - means and precisions: ``Λ_k ~ Wishart(W₀, ν₀)``, ``μ_k | Λ_k ~ N(m₀, (β₀ Λ_k)⁻¹)``.

    ``γ`` = ``weight_concentration_prior``, ``β₀`` = ``mean_precision_prior``, ``m₀`` =
    ``mean_prior``, ``ν₀`` = ``degrees_of_freedom_prior``, ``W₀⁻¹`` = ``covariance_prior``;
    defaults as scikit-learn's ``BayesianGaussianMixture``.

    **Variational family.** ``q(z) q(π) Π_k q(μ_k, Λ_k)`` with ``q(π)`` Dirichlet (or
    ``q(v_k) = Beta(a_k, b_k)``, and ``q(z_n)`` on the first ``K`` components only) and
    ``q(μ_k, Λ_k) = N(m_k, (β_k Λ_k)⁻¹) W(W_k, ν_k)``. For "diag" (and "spherical") the
    prior scale ``W₀`` and the variational scales ``W_k`` are diagonal (a multiple of the
    identity), as in scikit-learn: then ``E_q[Λ_k] = ν_k W_k`` is diagonal and the updates
    below, restricted to such ``W_k``, are still the exact coordinate maximisers.

    **E-step** (local update; Bishop 10.64–10.67): with
    ``ℓ_nk = E[log π_k] + ½ E[log |Λ_k|] − (D/2) log 2π − D/(2β_k)
    − (ν_k/2)(x_n − m_k)ᵀ W_k (x_n − m_k)``, where
    ``E[log |Λ_k|] = Σ_{i=1}^{D} ψ((ν_k + 1 − i)/2) + D log 2 + log |W_k|`` and
    ``E[log π_k] = ψ(α_k) − ψ(Σ_j α_j)`` (Dirichlet) or
    ``ψ(a_k) − ψ(a_k + b_k) + Σ_{j<k} [ψ(b_j) − ψ(a_j + b_j)]`` (stick-breaking),
    ``q(z_n = k) = r_nk = softmax_k ℓ_nk``. The statistics are those of
    `emjax.GaussianMixture`: ``N_k = Σ w_n r_nk`` and first and second moments shifted by
    the current ``m_k`` (accurate in float32).

    **M-step** (global update, closed form; Bishop 10.58–10.63 with ``ν_k = ν₀ + N_k``):
    ``α_k = γ + N_k`` or ``(a_k, b_k) = (1 + N_k, γ + Σ_{j>k} N_j)``; ``β_k = β₀ + N_k``;
    ``m_k = (β₀ m₀ + Σ_n w_n r_nk x_n) / β_k``;
    ``W_k⁻¹ = W₀⁻¹ + Σ_n w_n r_nk (x_n − m_k)(x_n − m_k)ᵀ + β₀ (m_k − m₀)(m_k − m₀)ᵀ
    (+ reg_covar · N_k · I)``, a sum of positive semi-definite terms (no division by
    ``N_k``, so empty components simply return to the prior); its diagonal for "diag",
    the mean of that diagonal for "spherical". ``m_step`` depends on the statistics only
    (the current means serve as their shift), so `emjax.OnlineEM` with the statistics
    of a minibatch scaled by ``N/B`` is stochastic variational inference (Hoffman et al.
    2013).

    **ELBO.** ``E_q[log p(x, z | π, μ, Λ)] + H[q(z)] − KL(q(π) ‖ p(π))
    − Σ_k KL(q(μ_k, Λ_k) ‖ p(μ_k, Λ_k))`` with every constant: the exact lower bound on
    ``log p(x)``, which never decreases under CAVI (with ``reg_covar = 0``). The E-step
    returns the first two terms; ``log_prior(params)`` is ``−KL(q(θ) ‖ p(θ))``.
    scikit-learn's ``lower_bound_`` drops constants and is evaluated before the E-step:
    the two differ by a constant after each M-step.

    **Per-point quantities.** ``log_joint`` is ``ℓ_nk``; ``predict_proba`` is ``q(z_n)``;
    ``log_prob(params, X)`` is ``log Σ_k exp ℓ_nk``, each point's share of the ELBO (what
    scikit-learn's ``score_samples`` returns), a lower bound on the log of the variational
    predictive density, which `predictive_log_prob` computes exactly (a mixture of
    Student-t densities); ``log_likelihood`` is the sum of ``log_prob``, so
    ``Solution.log_likelihood`` is the ELBO without its KL term.

    Fit it with `emjax.fit` (``solver=emjax.EM()``, the default, is CAVI here).

    Args:
        num_components: the number of components ``K`` (``>= 1``): the truncation level of
            the Dirichlet process, or the dimension of the Dirichlet.
        covariance_type: "full" (default), "diag" or "spherical".
        weight_prior: "dirichlet_process" (default) or "dirichlet_distribution"
            (scikit-learn's ``weight_concentration_prior_type``).
        weight_concentration_prior: ``γ > 0``; default ``1/K``.
        mean_precision_prior: ``β₀ > 0``; default 1.
        mean_prior: ``m₀``, shape ``(D,)``; default (``None``): the weighted mean of the
            data.
        degrees_of_freedom_prior: ``ν₀ > D − 1``; default (``None``): ``D``.
        covariance_prior: ``W₀⁻¹``: ``(D, D)`` symmetric positive definite ("full"),
            ``(D,)`` positive ("diag") or a positive scalar ("spherical"); default
            (``None``): the weighted covariance of the data (``ddof = 1``; for
            "spherical" the mean of the variances).
        reg_covar: ``>= 0``, adds ``reg_covar · N_k · I`` to ``W_k⁻¹`` in every M-step as
            scikit-learn does (its default is ``1e-6``); default 0, which keeps every
            update an exact coordinate maximiser of the ELBO.
        init: the initial responsibilities, as for `emjax.GaussianMixture` ("kmeans++",
            the default, "kmeans", "random", "random_from_data"); the first parameters
            are the M-step on them. Pass ``params0`` to `emjax.fit` for your own (see
            `make_params`).

    The priors and ``reg_covar`` are array leaves: they can be vmapped over and
    differentiated (``jax.grad`` of the fitted ELBO with respect to them, through
    `emjax.fit`). Priors left at ``None`` follow the data: they are computed from the
    weighted statistics in every M-step and kept in ``params.mean_prior`` and
    ``params.covariance_prior``.

    Raises:
        ValueError: an invalid ``num_components``, ``covariance_type``, ``weight_prior``,
            ``init``, a prior that is not positive (or not finite, or of the wrong shape),
            or ``reg_covar < 0``; at fit time, ``degrees_of_freedom_prior <= D − 1``, a
            prior whose shape does not match the data's ``D``, or a data covariance that
            is singular when ``covariance_prior`` is left to follow the data.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> model = emjax.BayesianGaussianMixture(num_components=6,
        ...                                       weight_prior="dirichlet_process")
        >>> sol = emjax.fit(model, X, key=jax.random.key(0))
        >>> model.expected_weights(sol.params).shape
        (6,)
        >>> int(model.effective_num_components(sol.params))
        2

    References:
        C. M. Bishop, *Pattern Recognition and Machine Learning*, §10.2, Springer 2006.
        D. M. Blei and M. I. Jordan, "Variational inference for Dirichlet process
        mixtures", *Bayesian Analysis* 1(1), 2006.
        M. D. Hoffman, D. M. Blei, C. Wang and J. Paisley, "Stochastic variational
        inference", *JMLR* 14, 2013.
    """

    num_components: int = eqx.field(static=True)
    covariance_type: str = eqx.field(static=True)
    weight_prior: str = eqx.field(static=True)
    init: str = eqx.field(static=True)
    weight_concentration_prior: Float[Array, ""]
    mean_precision_prior: Float[Array, ""]
    mean_prior: Float[Array, " D"] | None
    degrees_of_freedom_prior: Float[Array, ""] | None
    covariance_prior: Array | None
    reg_covar: Float[Array, ""]

    def __init__(
        self,
        num_components: int,
        covariance_type: str = "full",
        weight_prior: str = "dirichlet_process",
        *,
        weight_concentration_prior=None,
        mean_precision_prior=1.0,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        reg_covar=0.0,
        init: str = "kmeans++",
    ):
        self.num_components = check_positive_int(num_components, "num_components")
        self.covariance_type = check_choice(covariance_type, "covariance_type",
                                            BGMM_COVARIANCE_TYPES)
        self.weight_prior = check_choice(weight_prior, "weight_prior", WEIGHT_PRIORS)
        self.init = check_choice(init, "init", GMM_INITS)
        if weight_concentration_prior is None:
            weight_concentration_prior = 1.0 / self.num_components
        self.weight_concentration_prior = check_positive_scalar(
            weight_concentration_prior, "weight_concentration_prior")
        self.mean_precision_prior = check_positive_scalar(mean_precision_prior,
                                                          "mean_precision_prior")
        self.degrees_of_freedom_prior = (
            None if degrees_of_freedom_prior is None
            else check_positive_scalar(degrees_of_freedom_prior, "degrees_of_freedom_prior"))
        self.reg_covar = check_nonnegative_scalar(reg_covar, "reg_covar")
        self.mean_prior = None if mean_prior is None else _check_mean_prior(mean_prior)
        self.covariance_prior = (
            None if covariance_prior is None
            else _check_covariance_prior(covariance_prior, covariance_type))

    # ------------------------------------------------------------------ contract
    def default_solver(self):
        return EM()

    def row_cost(self, data) -> int:
        """``K·D``: the differences ``x_n − m_k`` an E-step forms for each row."""
        return self.num_components * data.shape[-1]

    def check_data(self, data):
        X = check_enough_points(check_matrix(data, "X"), self.num_components,
                                "num_components", "Variational inference")
        self._check_num_features(X.shape[1])
        if self.covariance_prior is None:
            if X.shape[0] < 2:
                raise ValueError(
                    "`X` has 1 row: the default covariance_prior (the data covariance) needs at "
                    "least 2; pass `covariance_prior`."
                )
            if not is_traced(X):
                xn = np.asarray(X, np.float64)
                cov = np.atleast_2d(np.cov(xn.T))
                ok = (np.linalg.eigvalsh(cov)[0] > 0 if self.covariance_type == "full"
                      else (np.diag(cov) > 0).all())
                if not ok:
                    raise ValueError(
                        "The default covariance_prior is the data covariance, which is singular "
                        "here (a constant or collinear column?); pass `covariance_prior`, e.g. "
                        "covariance_prior=np.eye(D) for 'full'."
                    )
        return X

    def check_params(self, params, data):
        if not isinstance(params, BayesianGaussianMixtureParams):
            raise TypeError(
                "`params0` must be BayesianGaussianMixtureParams; build it with "
                "model.make_params(weight_concentration=..., mean_precision=..., means=..., "
                f"degrees_of_freedom=..., covariances=...); got {type(params).__name__}."
            )
        D = data.shape[1]
        batched = np.ndim(params.means) == 3
        lead = params.means.shape[:1] if batched else ()
        p = self.make_params(
            weight_concentration=params.weight_concentration,
            mean_precision=params.mean_precision, means=params.means,
            degrees_of_freedom=params.degrees_of_freedom, covariances=params.covariances,
            _batch=lead, _num_features=D,
        )
        # The ELBO at params0 needs the priors; data-dependent ones come from the unweighted
        # data here (this method does not see sample weights), and from the weighted
        # statistics from the first M-step on.
        m0, c0 = _data_priors(self, data.astype(p.means.dtype))
        p = BayesianGaussianMixtureParams(
            p.weight_concentration, p.mean_precision, p.means, p.degrees_of_freedom,
            p.covariances, jnp.broadcast_to(m0, lead + m0.shape),
            jnp.broadcast_to(c0, lead + c0.shape))
        p = jax.tree.map(lambda a: a.astype(data.dtype), p)
        return p, (lead[0] if batched else None)

    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> BayesianGaussianMixtureParams:
        # GaussianMixture's initialisation gives the weights, means and covariances of the
        # initial responsibilities (reg_covar=0: the empirical ones); they are the
        # statistics N_k, S1_k = 0 and S2_k = N_k Σ_k about the means.
        g = GaussianMixture(self.num_components, self.covariance_type, reg_covar=0.0,
                            init=self.init).init_params(blocks, key=key)
        counts = g.weights * jnp.sum(blocks.weights)
        if self.covariance_type == "full":
            s2 = counts[:, None, None] * g.covariances
        elif self.covariance_type == "diag":
            s2 = counts[:, None] * g.covariances
        else:
            s2 = counts[:, None] * jnp.broadcast_to(g.covariances[:, None], g.means.shape)
        stats = GaussianMixtureStats(counts, jnp.zeros_like(g.means), s2)
        K, dtype = self.num_components, g.means.dtype
        ones = jnp.ones((K,), dtype)
        wc = ones if self.weight_prior == "dirichlet_distribution" else jnp.ones((2, K), dtype)
        provisional = BayesianGaussianMixtureParams(
            wc, ones, g.means, ones, g.covariances, jnp.zeros_like(g.means[0]),
            self._covariance_from_stats(jnp.ones_like(g.covariances[0])))
        return self.m_step(provisional, stats)

    def e_step(self, params, x, w):
        x = _ignore_unweighted(x, w, params.means[0])
        log_joint, diff = self._log_joint_and_diff(params, x)
        rw, elbo = soft_assignments(log_joint, w)
        return self._gmm()._statistics(diff, rw), elbo

    def hard_e_step(self, params, x, w):
        x = _ignore_unweighted(x, w, params.means[0])
        log_joint, diff = self._log_joint_and_diff(params, x)
        rw, _, elbo = hard_assignments(log_joint, w)
        return self._gmm()._statistics(diff, rw), elbo

    def m_step(self, params, stats):
        """The closed-form CAVI update of ``q(π) q(μ, Λ)`` from the statistics (see the class
        docstring); ``params.means`` is only the shift the statistics are relative to."""
        counts, s1 = stats.counts, stats.shifted_sum
        dtype = counts.dtype
        ref = params.means
        D = ref.shape[1]
        m0, c0 = self._priors_from_stats(stats, ref)
        beta0 = self.mean_precision_prior.astype(dtype)
        nu0 = self._nu0(D, dtype)
        gamma = self.weight_concentration_prior.astype(dtype)

        beta = beta0 + counts
        means = m0 + (counts[:, None] * (ref - m0) + s1) / beta[:, None]
        # Scatter about the new means: S2 moved from the shift `ref` to `means`.
        scatter = rebase_shifted(stats, ref - means, self._stats_type).shifted_scatter
        dev = means - m0
        reg = self.reg_covar.astype(dtype) * counts
        if self.covariance_type == "full":
            eye = jnp.eye(D, dtype=dtype)
            scale = (c0 + scatter + beta0 * dev[:, :, None] * dev[:, None, :]
                     + reg[:, None, None] * eye)
            scale = 0.5 * (scale + jnp.swapaxes(scale, 1, 2))
            ok = jnp.all(jnp.isfinite(jnp.linalg.cholesky(scale)), axis=(1, 2))
        else:
            scale = c0 + scatter + beta0 * jnp.square(dev) + reg[:, None]
            if self.covariance_type == "spherical":
                scale = jnp.mean(scale, axis=1)
                ok = scale > 0
            else:
                ok = jnp.all(scale > 0, axis=1)
        nu = nu0 + counts
        if self.covariance_type == "full":
            covariances = scale / nu[:, None, None]
        elif self.covariance_type == "diag":
            covariances = scale / nu[:, None]
        else:
            covariances = scale / nu
        # Rounding alone could make a scale matrix indefinite only when the prior scale is
        # negligible next to the data's; keep that component's previous factor.
        keep = ok if self.covariance_type == "spherical" else (
            ok[:, None] if self.covariance_type == "diag" else ok[:, None, None])
        covariances = jnp.where(keep, covariances, params.covariances)

        if self.weight_prior == "dirichlet_distribution":
            wc = gamma + counts
        else:
            after = jnp.concatenate([jnp.cumsum(counts[::-1])[-2::-1], jnp.zeros((1,), dtype)])
            wc = jnp.stack([1.0 + counts, gamma + after])
        return BayesianGaussianMixtureParams(wc, beta, means, nu, covariances, m0, c0)

    def log_prior(self, params) -> Float[Array, ""]:
        r"""``−KL(q(π) ‖ p(π)) − Σ_k KL(q(μ_k, Λ_k) ‖ p(μ_k, Λ_k))``, the ELBO's prior term.

        With ``ψ_D(a) = Σ_{i=1}^{D} ψ(a + (1 − i)/2)`` and ``log Γ_D`` the multivariate
        log-gamma function,

        - Normal-Wishart: ``KL = ((ν − ν₀)/2) ψ_D(ν/2) + log Γ_D(ν₀/2) − log Γ_D(ν/2)
          + (ν₀/2)(log |W₀| − log |W|) + (ν/2)(tr(W₀⁻¹ W) − D)
          + ½ [D β₀/β − D + D log(β/β₀) + β₀ ν (m − m₀)ᵀ W (m − m₀)]``;
        - Dirichlet: ``log Γ(Σα) − Σ log Γ(α_k) − log Γ(Kγ) + K log Γ(γ)
          + Σ (α_k − γ)(ψ(α_k) − ψ(Σα))``;
        - stick-breaking (``Beta(a_k, b_k)`` against ``Beta(1, γ)``, ``log B(1, γ) = −log γ``):
          ``Σ_k −log γ − log B(a_k, b_k) + (a_k − 1)(ψ(a_k) − ψ(a_k + b_k))
          + (b_k − γ)(ψ(b_k) − ψ(a_k + b_k))``.

        Here ``W_k = (ν_k · covariances_k)⁻¹`` and ``W₀⁻¹`` is the covariance prior. The
        model's own ``mean_prior`` and ``covariance_prior`` are used where it has them, else
        the data-dependent ones in ``params`` (set by the last M-step, or by `emjax.fit`
        for ``params0``).

        Raises:
            ValueError: ``params`` carry no prior (built by `make_params` for a model with
                data-dependent priors, not yet passed through `emjax.fit`).
        """
        # The model's own priors where it has them (so that gradients reach them directly),
        # else the data-dependent ones the last M-step resolved.
        m0 = params.mean_prior if self.mean_prior is None else self.mean_prior
        c0 = params.covariance_prior if self.covariance_prior is None else self.covariance_prior
        if m0 is None or c0 is None:
            raise ValueError(
                "These parameters carry no resolved mean_prior/covariance_prior (the model's "
                "follow the data): use the parameters returned by emjax.fit, or give the model "
                "explicit `mean_prior` and `covariance_prior`."
            )
        dtype = params.means.dtype
        m0, c0 = m0.astype(dtype), c0.astype(dtype)
        D = params.means.shape[-1]
        beta0 = self.mean_precision_prior.astype(dtype)
        nu0 = self._nu0(D, dtype)
        beta, nu = params.mean_precision, params.degrees_of_freedom
        logdet, trace, quad = _wishart_terms(self.covariance_type, params.covariances, c0,
                                             params.means - m0)
        logdet0 = _logdet(self.covariance_type, c0, D)
        # log|W| = −D log ν − log|cov|; log|W₀| = −log|W₀⁻¹|; ν tr(W₀⁻¹W) = tr(W₀⁻¹ cov⁻¹).
        kl_wishart = (0.5 * (nu - nu0) * _multidigamma(0.5 * nu, D)
                      + _log_multigamma(0.5 * nu0, D) - _log_multigamma(0.5 * nu, D)
                      + 0.5 * nu0 * (D * jnp.log(nu) + logdet - logdet0)
                      + 0.5 * trace - 0.5 * nu * D)
        kl_normal = 0.5 * (D * beta0 / beta - D + D * jnp.log(beta / beta0) + beta0 * quad)
        return -(jnp.sum(kl_wishart + kl_normal) + self._kl_weights(params.weight_concentration))

    def log_joint(self, params, x) -> Float[Array, "N K"]:
        """``ℓ_nk = E_q[log π_k + log N(x_n | μ_k, Λ_k⁻¹)]``, shape ``(N, K)`` (see the class
        docstring): the E-step's log-potentials, whose softmax is ``q(z_n)``."""
        return self._log_joint_and_diff(params, x)[0]

    def check_input(self, params, X):
        X = check_matrix(X, "X")
        D = params.means.shape[-1]
        if X.shape[1] != D:
            raise ValueError(f"`X` has {X.shape[1]} features but the parameters have {D}.")
        return X.astype(params.means.dtype)

    def rebase_stats(self, stats, from_params, to_params):
        """Shifted statistics moved from the means of ``from_params`` to those of
        ``to_params`` (see `emjax.AbstractEMModel.rebase_stats`)."""
        return rebase_shifted(stats, from_params.means - to_params.means, self._stats_type)

    # ------------------------------------------------------------------ public API
    def make_params(self, *, weight_concentration, mean_precision, means, degrees_of_freedom,
                    covariances, _batch=(), _num_features=None) -> BayesianGaussianMixtureParams:
        """Build and validate variational parameters from scikit-learn-shaped arrays.

        The names and meanings are those of scikit-learn's fitted attributes
        (``weight_concentration_``, ``mean_precision_``, ``means_``,
        ``degrees_of_freedom_``, ``covariances_``), so a scikit-learn state carries over.

        A leading restart axis on every array gives a batch for ``params0``.

        Args:
            weight_concentration: ``(K,)`` positive Dirichlet parameters
                ("dirichlet_distribution"), or the Beta parameters ``(a, b)`` of the sticks
                as a pair of ``(K,)`` arrays or a ``(2, K)`` array ("dirichlet_process").
            mean_precision: ``(K,)`` positive ``β_k``.
            means: ``(K, D)``.
            degrees_of_freedom: ``(K,)``, each ``> D − 1``.
            covariances: ``W_k⁻¹/ν_k``: ``(K, D, D)`` symmetric positive definite
                ("full"), ``(K, D)`` positive ("diag") or ``(K,)`` positive ("spherical").

        Returns:
            `BayesianGaussianMixtureParams`; ``mean_prior`` and ``covariance_prior`` are
            the model's when it has them (else ``None``, filled in by `emjax.fit`).

        Raises:
            ValueError: a shape that does not fit ``num_components``, ``covariance_type``
                and ``weight_prior``, or a value that is not finite or not positive.

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.BayesianGaussianMixture(2, "diag", "dirichlet_distribution")
            >>> p = model.make_params(weight_concentration=[100.5, 50.5],
            ...                       mean_precision=[101.0, 51.0],
            ...                       means=[[0.0, 0.0], [3.0, 3.0]],
            ...                       degrees_of_freedom=[102.0, 52.0],
            ...                       covariances=np.ones((2, 2)))
            >>> model.expected_weights(p).round(3).tolist()
            [0.666, 0.334]
        """
        if isinstance(weight_concentration, (tuple, list)) and self.weight_prior == "dirichlet_process":
            weight_concentration = jnp.stack([as_float_array(a, "weight_concentration")
                                              for a in weight_concentration], axis=-2)
        arrays = {
            "weight_concentration": as_float_array(weight_concentration, "weight_concentration"),
            "mean_precision": as_float_array(mean_precision, "mean_precision"),
            "means": as_float_array(means, "means"),
            "degrees_of_freedom": as_float_array(degrees_of_freedom, "degrees_of_freedom"),
            "covariances": as_float_array(covariances, "covariances"),
        }
        means = arrays["means"]
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
        expected = {
            "weight_concentration": (K,) if self.weight_prior == "dirichlet_distribution" else (2, K),
            "mean_precision": (K,),
            "degrees_of_freedom": (K,),
            "covariances": {"full": (K, D, D), "diag": (K, D), "spherical": (K,)}[self.covariance_type],
        }
        for name, shape in expected.items():
            if arrays[name].shape != lead + shape:
                raise ValueError(
                    f"`{name}` must have shape {lead + shape} for covariance_type="
                    f"{self.covariance_type!r} and weight_prior={self.weight_prior!r}; got "
                    f"{tuple(arrays[name].shape)}."
                )
        dtype = jnp.result_type(*arrays.values())
        if not any(is_traced(a) for a in arrays.values()):
            for name, a in arrays.items():
                check_finite(a, name)
            for name in ("weight_concentration", "mean_precision"):
                if (np.asarray(arrays[name]) <= 0).any():
                    raise ValueError(f"`{name}` must be positive.")
            if (np.asarray(arrays["degrees_of_freedom"]) <= D - 1).any():
                raise ValueError(f"`degrees_of_freedom` must be > D - 1 = {D - 1}.")
            cn = np.asarray(arrays["covariances"], np.float64)
            if self.covariance_type == "full":
                if not np.allclose(cn, np.swapaxes(cn, -1, -2), rtol=1e-6, atol=1e-12):
                    raise ValueError("`covariances` must be symmetric.")
                if (np.linalg.eigvalsh(cn) <= 0).any():
                    raise ValueError("`covariances` must be positive definite.")
            elif (cn <= 0).any():
                raise ValueError("`covariances` must be positive.")
        arrays = {k: v.astype(dtype) for k, v in arrays.items()}
        m0 = c0 = None
        if self.mean_prior is not None and self.covariance_prior is not None:
            self._check_num_features(D)
            m0 = jnp.broadcast_to(self.mean_prior.astype(dtype), lead + (D,))
            c0 = self.covariance_prior.astype(dtype)
            c0 = jnp.broadcast_to(c0, lead + c0.shape)
        return BayesianGaussianMixtureParams(mean_prior=m0, covariance_prior=c0, **arrays)

    def expected_weights(self, params) -> Float[Array, " K"]:
        """``E_q[π_k]``, normalised to sum to 1: ``α_k / Σ_j α_j`` (Dirichlet), or for the
        stick-breaking prior ``E[v_k] Π_{j<k} E[1 − v_j]`` with ``E[v_k] = a_k/(a_k + b_k)``,
        divided by its sum over the ``K`` components (the stick left beyond the truncation
        is dropped, as scikit-learn's ``weights_`` does).

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.BayesianGaussianMixture(3, "spherical", "dirichlet_process")
            >>> p = model.make_params(weight_concentration=([11.0, 6.0, 1.0], [6.1, 0.1, 0.1]),
            ...                       mean_precision=[11.0, 6.0, 1.0], means=np.zeros((3, 2)),
            ...                       degrees_of_freedom=[12.0, 7.0, 2.0], covariances=np.ones(3))
            >>> [round(float(w), 3) for w in model.expected_weights(p)]
            [0.644, 0.351, 0.005]
        """
        wc = params.weight_concentration
        if self.weight_prior == "dirichlet_distribution":
            return wc / jnp.sum(wc, axis=-1, keepdims=True)
        a, b = wc[..., 0, :], wc[..., 1, :]
        rest = b / (a + b)
        before = jnp.concatenate([jnp.ones_like(rest[..., :1]), jnp.cumprod(rest, axis=-1)[..., :-1]],
                                 axis=-1)
        w = a / (a + b) * before
        return w / jnp.sum(w, axis=-1, keepdims=True)

    def effective_num_components(self, params, threshold=1e-2) -> Int[Array, ""]:
        """The number of components whose expected weight exceeds ``threshold``.

        Components the data do not need keep an expected weight of order ``1/N`` (their
        expected count ``N_k`` goes to 0): the number left is what the model uses.

        Args:
            params: fitted parameters.
            threshold: a weight in ``[0, 1)``; default ``0.01``.

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.BayesianGaussianMixture(3, "spherical", "dirichlet_process")
            >>> p = model.make_params(weight_concentration=([11.0, 6.0, 1.0], [6.1, 0.1, 0.1]),
            ...                       mean_precision=[11.0, 6.0, 1.0], means=np.zeros((3, 2)),
            ...                       degrees_of_freedom=[12.0, 7.0, 2.0], covariances=np.ones(3))
            >>> int(model.effective_num_components(p)), int(model.effective_num_components(p, 1e-3))
            (2, 3)
        """
        if not is_traced(threshold) and not 0 <= float(threshold) < 1:
            raise ValueError(f"`threshold` must be in [0, 1); got {threshold}.")
        return jnp.sum(self.expected_weights(params) > threshold, axis=-1)

    def expected_means(self, params) -> Float[Array, "K D"]:
        """``E_q[μ_k] = m_k``, shape ``(K, D)``."""
        return params.means

    def expected_precisions(self, params) -> Array:
        """``E_q[Λ_k] = ν_k W_k``, the inverse of ``params.covariances`` (scikit-learn's
        ``precisions_``), in the shape of ``params.covariances``.

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.BayesianGaussianMixture(1, "spherical")
            >>> p = model.make_params(weight_concentration=([5.0], [0.5]), mean_precision=[5.0],
            ...                       means=[[0.0, 0.0]], degrees_of_freedom=[6.0],
            ...                       covariances=[0.5])
            >>> model.expected_precisions(p).tolist()
            [2.0]
        """
        cov = params.covariances
        if self.covariance_type == "full":
            eye = jnp.broadcast_to(jnp.eye(cov.shape[-1], dtype=cov.dtype), cov.shape)
            chol = jnp.linalg.cholesky(cov)
            return jax.scipy.linalg.cho_solve((chol, True), eye)
        return 1.0 / cov

    def expected_covariances(self, params) -> Array:
        """``E_q[Λ_k⁻¹] = W_k⁻¹ / (ν_k − D − 1)``, the posterior mean of the covariance
        (finite only for ``ν_k > D + 1``; ``inf`` elsewhere), in the shape of
        ``params.covariances``. ``params.covariances`` itself is the inverse of the
        expected precision, ``W_k⁻¹ / ν_k``: the two agree as ``ν_k`` grows.

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.BayesianGaussianMixture(1, "spherical")
            >>> p = model.make_params(weight_concentration=([5.0], [0.5]), mean_precision=[5.0],
            ...                       means=[[0.0, 0.0]], degrees_of_freedom=[6.0],
            ...                       covariances=[0.5])
            >>> model.expected_covariances(p).tolist()
            [1.0]
        """
        nu = params.degrees_of_freedom
        D = params.means.shape[-1]
        factor = jnp.where(nu > D + 1, nu / jnp.where(nu > D + 1, nu - D - 1, 1.0), jnp.inf)
        extra = params.covariances.ndim - nu.ndim
        return params.covariances * factor.reshape(factor.shape + (1,) * extra)

    def predictive_log_prob(self, params, X) -> Float[Array, " N"]:
        r"""Log-density of the variational posterior predictive, shape ``(N,)``.

        ``log Σ_k E_q[π_k] St(x_n | m_k, (1 + β_k)/(β_k ν'_k) W_k⁻¹, ν'_k)`` with
        ``ν'_k = ν_k + 1 − D`` (Bishop 10.81–10.82): a mixture of multivariate Student-t
        densities, a proper density in ``x`` (the weights are `expected_weights`). It is
        at least `log_prob`, which is the ELBO's per-point term.

        Raises:
            ValueError: ``X`` is not a finite 2-D array with the parameters' ``D`` columns.

        Example:
            >>> import numpy as np, emjax
            >>> model = emjax.BayesianGaussianMixture(2, "diag", "dirichlet_distribution")
            >>> p = model.make_params(weight_concentration=[100.5, 50.5],
            ...                       mean_precision=[101.0, 51.0],
            ...                       means=[[0.0, 0.0], [3.0, 3.0]],
            ...                       degrees_of_freedom=[102.0, 52.0],
            ...                       covariances=np.ones((2, 2)))
            >>> X = np.array([[0.0, 0.5], [3.0, 2.0], [10.0, -4.0]])
            >>> bool((model.predictive_log_prob(p, X) >= model.log_prob(p, X)).all())
            True
        """
        return _predictive(self, params, self.check_input(params, X))

    # ------------------------------------------------------------------ internals
    @property
    def _stats_type(self) -> str:
        """The covariance type whose statistics this model keeps (spherical keeps the diagonal)."""
        return "full" if self.covariance_type == "full" else "diag"

    def _gmm(self) -> GaussianMixture:
        return GaussianMixture(self.num_components, self.covariance_type, reg_covar=0.0)

    def _nu0(self, D: int, dtype):
        if self.degrees_of_freedom_prior is None:
            return jnp.asarray(D, dtype)
        return self.degrees_of_freedom_prior.astype(dtype)

    def _check_num_features(self, D: int) -> None:
        if self.mean_prior is not None and self.mean_prior.shape != (D,):
            raise ValueError(f"`mean_prior` must have shape ({D},) for data with {D} features; "
                             f"got {tuple(self.mean_prior.shape)}.")
        if self.covariance_prior is not None and self.covariance_type != "spherical":
            shape = (D, D) if self.covariance_type == "full" else (D,)
            if self.covariance_prior.shape != shape:
                raise ValueError(f"`covariance_prior` must have shape {shape} for data with {D} "
                                 f"features; got {tuple(self.covariance_prior.shape)}.")
        nu0 = self.degrees_of_freedom_prior
        if nu0 is not None and not is_traced(nu0) and not float(nu0) > D - 1:
            raise ValueError(f"`degrees_of_freedom_prior` must be > D - 1 = {D - 1} (a proper "
                             f"Wishart prior); got {float(nu0)}.")

    def _covariance_from_stats(self, diag_or_full):
        """A covariance prior of this covariance type from a full or diagonal scatter."""
        if self.covariance_type == "spherical":
            return jnp.mean(diag_or_full)
        return diag_or_full

    def _priors(self, total, mean, scatter):
        """``m₀`` and ``W₀⁻¹`` in use: the model's, or the data's weighted mean and covariance
        (``ddof = 1``) from the total weight, the mean and the scatter about it."""
        dtype = mean.dtype
        m0 = mean if self.mean_prior is None else self.mean_prior.astype(dtype)
        if self.covariance_prior is None:
            # Frequency weights: divide by Σw − 1 (scikit-learn's np.cov with unit weights),
            # never by less than Σw / 2 (weights summing to less than 2 are degenerate).
            c0 = self._covariance_from_stats(scatter / jnp.maximum(total - 1.0, 0.5 * total))
        else:
            c0 = self.covariance_prior.astype(dtype)
        return m0, c0

    def _priors_from_stats(self, stats, ref):
        """`_priors` from the statistics, shifted by ``ref``: the data's moments are sums of
        the components' moments."""
        if self.mean_prior is not None and self.covariance_prior is not None:
            return self._priors(None, self.mean_prior.astype(ref.dtype), None)
        counts = stats.counts
        total = jnp.sum(counts)
        mean = jnp.sum(counts[:, None] * ref + stats.shifted_sum, axis=0) / total
        about_mean = rebase_shifted(stats, ref - mean, self._stats_type).shifted_scatter
        return self._priors(total, mean, jnp.sum(about_mean, axis=0))

    def _expected_log_weights(self, wc):
        if self.weight_prior == "dirichlet_distribution":
            return digamma(wc) - digamma(jnp.sum(wc))
        a, b = wc[0], wc[1]
        total = digamma(a + b)
        log_rest = digamma(b) - total
        return digamma(a) - total + jnp.concatenate([jnp.zeros_like(a[:1]), jnp.cumsum(log_rest)[:-1]])

    def _kl_weights(self, wc):
        gamma = self.weight_concentration_prior.astype(wc.dtype)
        if self.weight_prior == "dirichlet_distribution":
            K = wc.shape[0]
            total = jnp.sum(wc)
            return (gammaln(total) - jnp.sum(gammaln(wc)) - gammaln(K * gamma) + K * gammaln(gamma)
                    + jnp.sum((wc - gamma) * (digamma(wc) - digamma(total))))
        a, b = wc[0], wc[1]
        dsum = digamma(a + b)
        log_beta = gammaln(a) + gammaln(b) - gammaln(a + b)
        return jnp.sum(-jnp.log(gamma) - log_beta + (a - 1.0) * (digamma(a) - dsum)
                       + (b - gamma) * (digamma(b) - dsum))

    def _log_joint_and_diff(self, params, x):
        """``ℓ_nk`` as ``(B, K)`` and the differences ``x_n − m_k`` as ``(K, B, D)``."""
        D = x.shape[1]
        diff = x[None, :, :] - params.means[:, None, :]
        maha, logdet = _mahalanobis(self.covariance_type, diff, params.covariances)
        nu, beta = params.degrees_of_freedom, params.mean_precision
        # ½ E[log|Λ_k|] − D/(2β_k) with log|W_k| = −D log ν_k − log|covariances_k|
        half_logdet = 0.5 * (_multidigamma(0.5 * nu, D) + D * math.log(2.0) - D * jnp.log(nu)
                             - logdet)
        const = self._expected_log_weights(params.weight_concentration) + half_logdet \
            - 0.5 * D / beta - 0.5 * D * _LOG_2PI
        return const[None, :] - 0.5 * maha.T, diff


@eqx.filter_jit
def _data_priors(model: BayesianGaussianMixture, X):
    """``m₀`` and ``W₀⁻¹`` in use for the unweighted data ``X`` (see `_priors`)."""
    mean = jnp.mean(X, axis=0)
    centred = X - mean
    if model.covariance_type == "full":
        scatter = jnp.matmul(centred.T, centred, precision=_HI)
    else:
        scatter = jnp.sum(jnp.square(centred), axis=0)
    return model._priors(jnp.asarray(X.shape[0], X.dtype), mean, scatter)


def _check_mean_prior(value):
    arr = as_float_array(value, "mean_prior")
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"`mean_prior` must be a 1-D array of shape (D,); got shape "
                         f"{tuple(arr.shape)}.")
    check_finite(arr, "mean_prior")
    return arr


def _check_covariance_prior(value, covariance_type: str):
    if covariance_type == "spherical":
        return check_positive_scalar(value, "covariance_prior")
    arr = as_float_array(value, "covariance_prior")
    if covariance_type == "full":
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError("`covariance_prior` must be a square (D, D) matrix for "
                             f"covariance_type='full'; got shape {tuple(arr.shape)}.")
    elif arr.ndim != 1:
        raise ValueError("`covariance_prior` must be a 1-D array of shape (D,) for "
                         f"covariance_type='diag'; got shape {tuple(arr.shape)}.")
    check_finite(arr, "covariance_prior")
    if not is_traced(arr):
        a = np.asarray(arr, np.float64)
        if covariance_type == "full":
            if not np.allclose(a, a.T, rtol=1e-6, atol=1e-12) or np.linalg.eigvalsh(a)[0] <= 0:
                raise ValueError("`covariance_prior` must be symmetric positive definite.")
        elif (a <= 0).any():
            raise ValueError("`covariance_prior` must be positive.")
    return arr


def _log_multigamma(a, D: int):
    """``log Γ_D(a) = D(D − 1)/4 · log π + Σ_{i=0}^{D−1} log Γ(a − i/2)``."""
    half = jnp.arange(D, dtype=a.dtype) / 2
    return D * (D - 1) / 4 * math.log(math.pi) + jnp.sum(gammaln(a[..., None] - half), axis=-1)


def _multidigamma(a, D: int):
    """``ψ_D(a) = Σ_{i=0}^{D−1} ψ(a − i/2)``, the derivative of ``log Γ_D``."""
    half = jnp.arange(D, dtype=a.dtype) / 2
    return jnp.sum(digamma(a[..., None] - half), axis=-1)


def _logdet(covariance_type: str, cov, D: int):
    """``log |C|`` of covariance-shaped arrays (batched over a leading axis or not)."""
    if covariance_type == "full":
        chol = jnp.linalg.cholesky(cov)
        return 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    if covariance_type == "diag":
        return jnp.sum(jnp.log(cov), axis=-1)
    return D * jnp.log(cov)


def _mahalanobis(covariance_type: str, diff, cov):
    """``(x − m_k)ᵀ C_k⁻¹ (x − m_k)`` for ``diff`` of shape ``(K, B, D)``, as ``(K, B)``, and
    ``log |C_k|`` as ``(K,)``, from Cholesky factors (no inverse formed)."""
    D = diff.shape[-1]
    if covariance_type == "full":
        chol = jnp.linalg.cholesky(cov)
        y = jnp.einsum("kbd,kde->kbe", diff, _tril_inverse_t(chol), precision=_HI)
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return jnp.sum(jnp.square(y), axis=-1), logdet
    if covariance_type == "diag":
        return jnp.sum(jnp.square(diff) / cov[:, None, :], axis=-1), jnp.sum(jnp.log(cov), axis=-1)
    return jnp.sum(jnp.square(diff), axis=-1) / cov[:, None], D * jnp.log(cov)


def _wishart_terms(covariance_type: str, cov, cov0, dev):
    """``log |C_k|``, ``tr(C₀ C_k⁻¹)`` and ``devₖᵀ C_k⁻¹ devₖ`` for each component."""
    D = dev.shape[-1]
    if covariance_type == "full":
        chol = jnp.linalg.cholesky(cov)
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        chol0 = jnp.broadcast_to(jnp.linalg.cholesky(cov0), cov.shape)
        solved = jax.scipy.linalg.solve_triangular(chol, chol0, lower=True)
        trace = jnp.sum(jnp.square(solved), axis=(-2, -1))
        y = jax.scipy.linalg.solve_triangular(chol, dev[..., None], lower=True)[..., 0]
        return logdet, trace, jnp.sum(jnp.square(y), axis=-1)
    if covariance_type == "diag":
        return (jnp.sum(jnp.log(cov), axis=-1), jnp.sum(cov0 / cov, axis=-1),
                jnp.sum(jnp.square(dev) / cov, axis=-1))
    return D * jnp.log(cov), D * cov0 / cov, jnp.sum(jnp.square(dev), axis=-1) / cov


@eqx.filter_jit
def _predictive(model: BayesianGaussianMixture, params, X):
    D = X.shape[1]
    nu, beta = params.degrees_of_freedom, params.mean_precision
    dof = nu + 1.0 - D
    # Student-t scale S_k = (1 + β_k)/(β_k ν'_k) · ν_k · covariances_k.
    factor = (1.0 + beta) * nu / (beta * dof)
    log_w = jnp.log(model.expected_weights(params))

    def one_block(x):
        diff = x[None, :, :] - params.means[:, None, :]
        maha, logdet = _mahalanobis(model.covariance_type, diff, params.covariances)
        const = (gammaln(0.5 * (dof + D)) - gammaln(0.5 * dof) - 0.5 * D * jnp.log(dof * jnp.pi)
                 - 0.5 * (logdet + D * jnp.log(factor)) + log_w)
        log_t = const[:, None] - 0.5 * (dof + D)[:, None] * jnp.log1p(
            maha / (factor * dof)[:, None])
        return jax.nn.logsumexp(log_t, axis=0)

    return map_rows(one_block, X, default_block_size(X.shape[0], model.row_cost(X)))
