"""The contract every emjax model fulfils."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from ._accumulate import Blocks, accumulate, default_block_size, make_blocks, map_rows
from ._custom_types import Array, Data, Float, Int, Params, PRNGKeyArray, PyTree, Stats
from ._elbo import ELBO
from ._validation import check_sample_weight


class AbstractEMModel(eqx.Module):
    """A latent-variable model that EM-type solvers can fit.

    A model holds structure (static ints and strings such as the number of components) and
    hyperparameters (array leaves, so they can be vmapped and differentiated). Parameters
    are a separate pytree, so restarts are a ``vmap`` over initial parameters.

    The contract:

    - ``e_step(params, x, w)`` on one block of rows returns expected sufficient statistics
      and the `ELBO` data terms for that block, both **additive** over blocks:
      ``e_step(A ∪ B) == e_step(A) + e_step(B)``. The E-step sets ``q(z) = p(z | x, θ)``.
    - ``m_step(params, stats)`` maps the summed statistics to new parameters (in closed form
      for the models here). ``params`` are the ones the statistics were computed at (models
      use them, for example, as the centre of shifted second moments).
    - ``log_prior(params)`` is added to the ELBO once per pass.
    """

    @abc.abstractmethod
    def check_data(self, data) -> Data:
        """Validate user data before any compute; return it as arrays, or raise."""

    @abc.abstractmethod
    def check_params(self, params: Params, data: Data) -> tuple[Params, int | None]:
        """Validate parameters; return them and the restart-axis size (None if unbatched)."""

    @abc.abstractmethod
    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> Params:
        """Initial parameters for one restart, from the (blocked) data."""

    @abc.abstractmethod
    def e_step(self, params: Params, data: Data, weights: Float[Array, " B"]) -> tuple[Stats, ELBO]:
        """Expected sufficient statistics and ELBO data terms of one block of rows."""

    @abc.abstractmethod
    def m_step(self, params: Params, stats: Stats) -> Params:
        """New parameters from statistics summed over the data."""

    @abc.abstractmethod
    def log_prior(self, params: Params) -> Float[Array, ""]:
        """``log p(θ)``; zero for maximum likelihood."""

    @abc.abstractmethod
    def log_likelihood(self, params: Params, data, sample_weight=None) -> Float[Array, ""]:
        """``Σ_n w_n log p(x_n | θ)``."""

    @abc.abstractmethod
    def default_solver(self):
        """The solver `emjax.fit` uses when none is given."""

    @abc.abstractmethod
    def row_cost(self, data: Data) -> int:
        """Intermediate values one data row needs in one E-step (sets the default block size)."""

    def rebase_stats(self, stats: Stats, from_params: Params, to_params: Params) -> Stats:
        """Statistics computed at ``from_params``, re-expressed as if computed at ``to_params``.

        Some models keep their statistics relative to the parameters of the E-step that
        produced them (e.g. `emjax.GaussianMixture`'s second moments centred on the current
        means, which keeps float32 sums accurate); ``m_step(params, stats)`` then needs
        statistics relative to ``params``. Solvers that combine statistics from different
        iterations (`emjax.OnlineEM`, `emjax.IncrementalEM`) move them to common
        parameters first. The expected values are unchanged; only their representation is.
        The default (statistics that do not depend on the parameters) returns ``stats``.
        """
        return stats

    def stats_from_params(self, params: Params, total_weight) -> Stats | None:
        """Statistics of ``total_weight`` rows for which the M-step returns ``params``, or
        None where the model has no such inverse (the default).

        `emjax.OnlineEM` starts its running statistics ``s_0`` from them, so that a first
        step size ``ρ_0 < 1`` blends the minibatch's statistics with ``params0`` (as online
        LDA does) instead of ignoring ``params0``. Models whose global update is "prior +
        statistics" have an exact inverse (`emjax.LatentDirichletAllocation`:
        ``λ − η``); for the others ``s_0`` plays no part (the first ``ρ`` is then 1).
        """
        return None

    @property
    def has_closed_form_m_step(self) -> bool:
        """Whether ``m_step`` is the exact maximiser (`emjax.ClosedFormMStep` and
        `emjax.HardEM` need it); models fitted only by `emjax.GradientMStep` say False."""
        return True


class AbstractHardEMModel(AbstractEMModel):
    """A model that classification (hard) EM can fit: it has a hard E-step.

    ``hard_e_step(params, x, w)`` puts ``q(z)`` on the single most probable configuration
    of the latent variables, ``ẑ = argmax_z p(z | x, θ)``, and returns the statistics of
    that configuration with the ELBO data terms ``Σ w log p(x, ẑ | θ)`` (zero entropy).
    The M-step on them cannot decrease ``max_z log p(x, z | θ)``.
    """

    @abc.abstractmethod
    def hard_e_step(
        self, params: Params, data: Data, weights: Float[Array, " B"]
    ) -> tuple[Stats, ELBO]:
        """Statistics and ELBO data terms of one block under the most probable latents."""


class AbstractMixtureModel(AbstractHardEMModel):
    """A model whose latent variable is one discrete assignment ``z_n ∈ {1..K}`` per point.

    Subclasses define ``log_joint(params, x) = log p(x_n, z_n = k | θ)`` (shape ``(N, K)``)
    and ``check_input``; the per-point methods below follow from it and are jitted.

    Such models also support classification (hard) EM: ``hard_e_step`` puts ``q(z_n)`` on
    the most probable assignment, so the ELBO becomes the classification log-likelihood
    ``Σ_n max_k log p(x_n, z_n = k | θ)`` and the entropy is zero.
    """

    @abc.abstractmethod
    def log_joint(self, params: Params, x) -> Float[Array, "N K"]:
        """``log p(x_n, z_n = k | θ)`` for every point and component, shape ``(N, K)``."""

    @abc.abstractmethod
    def check_input(self, params: Params, X):
        """Validate data passed to a fitted-model method; return it as an array."""

    def log_prob(self, params: Params, X) -> Float[Array, " N"]:
        """Per-point log-density ``log p(x_n | θ) = log Σ_k p(x_n, z_n = k | θ)``, shape ``(N,)``.

        scikit-learn calls this ``score_samples``.

        Args:
            params: fitted parameters (e.g. ``Solution.params``).
            X: data of shape ``(N, D)``.

        Raises:
            ValueError: ``X`` is not a finite 2-D array with the parameters' ``D`` columns.

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> gmm = emjax.GaussianMixture(2)
            >>> params = emjax.fit(gmm, X, key=jax.random.key(0)).params
            >>> gmm.log_prob(params, X).shape
            (272,)
        """
        return _per_point(self, params, self.check_input(params, X), "log_prob")

    def predict_proba(self, params: Params, X) -> Float[Array, "N K"]:
        """Posterior assignment probabilities ``p(z_n = k | x_n, θ)``, shape ``(N, K)``.

        ``softmax_k log p(x_n, z_n = k | θ)``: the E-step's responsibilities.

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> gmm = emjax.GaussianMixture(2)
            >>> params = emjax.fit(gmm, X, key=jax.random.key(0)).params
            >>> bool(abs(gmm.predict_proba(params, X).sum(axis=1) - 1).max() < 1e-5)
            True
        """
        return _per_point(self, params, self.check_input(params, X), "proba")

    def predict(self, params: Params, X) -> Int[Array, " N"]:
        """The most probable component of each point, ``argmax_k p(z_n = k | x_n, θ)``.

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> km = emjax.KMeans(2)
            >>> params = emjax.fit(km, X, key=jax.random.key(0)).params
            >>> sorted(set(km.predict(params, X).tolist()))
            [0, 1]
        """
        return _per_point(self, params, self.check_input(params, X), "label")

    def log_likelihood(self, params: Params, X, sample_weight=None) -> Float[Array, ""]:
        """Total log-likelihood ``Σ_n w_n log p(x_n | θ)`` (weights default to 1).

        Args:
            params: parameters.
            X: data of shape ``(N, D)``.
            sample_weight: optional non-negative weights of shape ``(N,)``.

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> gmm = emjax.GaussianMixture(2)
            >>> sol = emjax.fit(gmm, X, key=jax.random.key(0))
            >>> bool(abs(gmm.log_likelihood(sol.params, X) - sol.log_likelihood) < 1e-3)
            True
        """
        X = self.check_input(params, X)
        first = jax.tree.leaves(X)[0]  # X may be a pytree, e.g. (inputs, targets)
        w = check_sample_weight(sample_weight, first.shape[0], first.dtype)
        return _total_log_likelihood(self, params, X, w)


class AbstractUnconstrainedModel(eqx.Module):
    r"""Capability: a model whose parameters `emjax.GradientMStep` can optimise.

    A model with this capability gives its parameters an unconstrained parametrization
    ``ψ`` (every real value of every leaf is valid) and can evaluate the expected
    complete-data log-likelihood ``Q(θ | θ')`` at any ``θ`` on one block of rows:

    - ``unconstrain(params) -> ψ`` and ``constrain(ψ) -> params``, with
      ``constrain(unconstrain(θ)) == θ`` up to rounding (e.g. logits for simplex weights,
      a Cholesky factor with a log-diagonal for a covariance matrix, a log for a scale);
    - ``expected_log_joint(params, reference_params, data, weights)``:
      ``Σ_n w_n E_{p(z_n | x_n, θ')}[log p(x_n, z_n | θ)]`` with ``θ = params`` and
      ``θ' = reference_params``. The posterior comes from ``reference_params``, so the
      gradient with respect to ``params`` is ``∇_θ Q(θ | θ')`` with no ``stop_gradient``
      needed; derivatives with respect to ``reference_params`` stay exact. Rows of
      weight 0 must contribute exactly zero (and no NaN).

    `emjax.GaussianMixture` and every `emjax.AbstractDensityMixture` have it.

    Example:
        >>> import numpy as np, emjax
        >>> gmm = emjax.GaussianMixture(2, covariance_type="diag")
        >>> isinstance(gmm, emjax.AbstractUnconstrainedModel)
        True
        >>> p = gmm.make_params(weights=[0.5, 0.5], means=np.zeros((2, 2)),
        ...                     covariances=np.ones((2, 2)))
        >>> logits, means, log_variances = gmm.unconstrain(p)
        >>> np.allclose(gmm.constrain((logits, means, log_variances)).covariances, 1.0)
        True
    """

    @abc.abstractmethod
    def unconstrain(self, params: Params) -> PyTree:
        """Parameters in an unconstrained parametrization ``ψ``."""

    @abc.abstractmethod
    def constrain(self, unconstrained: PyTree) -> Params:
        """Parameters from their unconstrained parametrization (the inverse of ``unconstrain``)."""

    @abc.abstractmethod
    def expected_log_joint(
        self, params: Params, reference_params: Params, data: Data, weights: Float[Array, " B"]
    ) -> Float[Array, ""]:
        """``Q(params | reference_params)`` on one block of rows."""

    def partial_m_step(self, params: Params, stats) -> Params:
        """The closed-form part of the M-step, if any: ``Q(θ | θ_t)`` maximised over the
        parameters that have a closed-form maximiser, the others unchanged (a conditional
        maximisation step of ECM; Meng & Rubin 1993). `emjax.GradientMStep` starts its
        optimizer from there. The default has no closed-form part."""
        return params


def mixture_expected_log_joint(
    log_joint: Float[Array, "B K"], reference_log_joint: Float[Array, "B K"],
    w: Float[Array, " B"],
) -> Float[Array, ""]:
    """``Σ_n w_n Σ_k r_nk log p(x_n, z_n = k | θ)`` with ``r = softmax(reference_log_joint)``.

    The responsibilities come from the reference parameters; terms with ``w r = 0`` are
    exactly zero (even where ``log_joint`` is ``−∞``).
    """
    rw = jax.nn.softmax(reference_log_joint, axis=1) * w[:, None]
    positive = rw > 0
    return jnp.sum(jnp.where(positive, rw * jnp.where(positive, log_joint, 0.0), 0.0))


def soft_assignments(log_joint: Float[Array, "B K"], w: Float[Array, " B"]):
    """The exact E-step of a mixture on one block, from ``log p(x_n, z_n = k | θ)``.

    Returns the weighted responsibilities ``w_n r_nk`` (``r = softmax(log_joint)``) and the
    ELBO data terms ``Σ w r log p(x, z)`` and ``−Σ w r log r`` (``0 log 0 = 0``, with a
    double ``where`` so that gradients stay finite).
    """
    log_resp = jax.nn.log_softmax(log_joint, axis=1)
    resp = jnp.exp(log_resp)
    rw = resp * w[:, None]
    positive = resp > 0
    elbo = ELBO(
        expected_log_joint=jnp.sum(jnp.where(positive, rw * log_joint, 0.0)),
        entropy=-jnp.sum(jnp.where(positive, rw * jnp.where(positive, log_resp, 0.0), 0.0)),
        log_prior=jnp.zeros((), log_joint.dtype),
    )
    return rw, elbo


def hard_assignments(log_joint: Float[Array, "B K"], w: Float[Array, " B"]):
    """The hard E-step of a mixture on one block: ``z_n = argmax_k log p(x_n, z_n = k | θ)``.

    Returns the weighted one-hot assignments, ``z``, and the ELBO data terms
    ``Σ w max_k log p(x, z)`` with zero entropy.
    """
    z = jnp.argmax(log_joint, axis=1)
    rw = jax.nn.one_hot(z, log_joint.shape[1], dtype=log_joint.dtype) * w[:, None]
    best = jnp.take_along_axis(log_joint, z[:, None], axis=1)[:, 0]
    zero = jnp.zeros((), log_joint.dtype)
    elbo = ELBO(expected_log_joint=jnp.sum(jnp.where(w > 0, w * best, 0.0)), entropy=zero,
                log_prior=zero)
    return rw, z, elbo


def check_enough_points(X, num: int, name: str, what: str):
    """EM needs at least as many data points as components."""
    if X.shape[0] < num:
        raise ValueError(
            f"`X` has {X.shape[0]} rows but {name}={num}: {what} needs at least as many data "
            f"points as {name.split('_')[1]}."
        )
    return X


@eqx.filter_jit
def _per_point(model: AbstractMixtureModel, params, X, what: str):
    def one_block(x):
        log_joint = model.log_joint(params, x)
        if what == "log_prob":
            return jax.nn.logsumexp(log_joint, axis=1)
        if what == "proba":
            return jax.nn.softmax(log_joint, axis=1)
        return jnp.argmax(log_joint, axis=1)

    n = jax.tree.leaves(X)[0].shape[0]
    return map_rows(one_block, X, default_block_size(n, model.row_cost(X)))


@eqx.filter_jit
def _total_log_likelihood(model: AbstractMixtureModel, params, X, w):
    blocks = make_blocks(X, w, default_block_size(w.shape[0], model.row_cost(X)))

    def one_block(x, wb):
        lse = jax.nn.logsumexp(model.log_joint(params, x), axis=1)
        return jnp.sum(jnp.where(wb > 0, wb * lse, 0.0))

    return accumulate(one_block, blocks)
