"""Solvers: one EM-type update as an ``(init, step)`` pair over explicit state."""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._accumulate import Blocks, accumulate
from ._custom_types import Params, PyTree
from ._elbo import ELBO
from ._model import AbstractEMModel, AbstractHardEMModel
from ._mstep import AbstractMStep, ClosedFormMStep, _no_closed_form


class AbstractSolver(eqx.Module):
    """One iteration of an EM-type algorithm.

    ``init`` builds the solver's state from the model, data and initial parameters;
    ``step(model, blocks, params, state)`` returns ``(elbo, new_params, new_state)`` where
    ``elbo`` is the ELBO (with its prior term) **at** ``params``, before the update. The
    loop in `emjax.fit` owns convergence checks, traces and restarts.

    ``tight_bound`` says whether the E-step is exact, so that the ELBO equals the
    (penalised) log-likelihood at the parameters it was computed at.
    """

    tight_bound: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def check_model(self, model: AbstractEMModel) -> None:
        """Raise ``TypeError`` if this solver cannot fit ``model``."""

    @abc.abstractmethod
    def init(self, model: AbstractEMModel, blocks: Blocks, params: Params) -> PyTree:
        """The solver state before the first step."""

    @abc.abstractmethod
    def step(
        self, model: AbstractEMModel, blocks: Blocks, params: Params, state: PyTree
    ) -> tuple[ELBO, Params, PyTree]:
        """One update: the ELBO at ``params``, the new parameters and the new state."""

    # Whether the solver draws random numbers (minibatches): `emjax.fit` then gives it a
    # key of its own per restart through `with_key`.
    needs_key: ClassVar[bool] = False

    def with_key(self, key) -> "AbstractSolver":
        """This solver with the random key of one restart (for solvers that sample)."""
        return self

    def may_stop(self, state: PyTree):
        """Whether the loop may declare convergence at this state (a boolean array); False
        while the ELBO cannot move yet (e.g. during `emjax.OnlineEM`'s burn-in)."""
        return jnp.array(True)

    def fixed_point_solver(self) -> "AbstractSolver":
        """The solver whose one-step map has this solver's fixed points as its own, which
        `emjax.Implicit` linearises: the solver itself for `EM`; plain `EM` for the
        accelerated and stochastic variants, which converge to EM's fixed points."""
        return self


def _full_pass(e_step, model, blocks: Blocks, params):
    stats, elbo = accumulate(lambda x, w: e_step(params, x, w), blocks)
    elbo = eqx.tree_at(lambda e: e.log_prior, elbo, model.log_prior(params))
    # NaN statistics mean the E-step failed even if the ELBO looks finite: report it as a
    # non-finite ELBO, so the loop stops with `nonfinite` instead of freezing components.
    nan = jnp.array(False)
    for leaf in jax.tree.leaves(stats):
        nan = nan | jnp.any(jnp.isnan(leaf))
    elbo = jax.tree.map(lambda v: jnp.where(nan, jnp.nan, v), elbo)
    return stats, elbo


class EM(AbstractSolver):
    r"""Exact expectation-maximization (Dempster, Laird & Rubin 1977).

    Each step runs the E-step over all the data, which sets ``q(z) = p(z | x, θ_t)`` and
    returns the expected sufficient statistics ``s_t``, then the M-step. With the default
    `ClosedFormMStep` that is ``θ_{t+1} = argmax_θ Q(θ | θ_t) + log p(θ)``, where
    ``Q(θ | θ_t) = E_q[log p(x, z | θ)]``; with `GradientMStep` it is a few optimizer steps
    on ``Q + log p`` that never decrease it (generalized EM). Either way the ELBO at ``θ_t``
    equals the (penalised) log-likelihood and never decreases from one step to the next.

    One exception, shared with scikit-learn: `emjax.GaussianMixture`'s ``reg_covar`` adds
    ``reg_covar·I`` to each covariance after the maximisation, which is not the maximiser
    of any ``Q + log p``, so with a large ``reg_covar`` the log-likelihood can fall from
    one step to the next (measured on standardised Old Faithful, K = 3, 300 steps: no
    decrease at ``1e-6``; at ``0.1``, 79 decreases adding up to −1.6). With
    ``reg_covar = 0`` the monotonicity holds and is tested.

    Args:
        m_step: the M-step strategy: `ClosedFormMStep()` (default, the model's exact
            ``m_step``) or `GradientMStep(optimizer, num_steps)` (an optax optimizer on the
            model's unconstrained parameters; needed by models without a closed form, such
            as `emjax.StudentTMixture`). Its state (e.g. Adam's moments) is the solver's
            state, carried across iterations.

    Raises:
        TypeError: ``m_step`` is not an `AbstractMStep`.

    Example:
        >>> import jax, optax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> sol = emjax.fit(emjax.GaussianMixture(2), X, key=jax.random.key(0),
        ...                 solver=emjax.EM())
        >>> bool(sol.converged)
        True
        >>> gem = emjax.EM(m_step=emjax.GradientMStep(optax.adam(1e-2), num_steps=10))
    """

    m_step: AbstractMStep = ClosedFormMStep()
    tight_bound: ClassVar[bool] = True

    def __check_init__(self):
        if not isinstance(self.m_step, AbstractMStep):
            raise TypeError(
                "`m_step` must be an emjax M-step: emjax.ClosedFormMStep() or "
                f"emjax.GradientMStep(optimizer, num_steps); got {self.m_step!r}."
            )

    def check_model(self, model):
        if not isinstance(model, AbstractEMModel):
            raise TypeError(f"EM() fits emjax models; got {type(model).__name__}.")
        self.m_step.check_model(model)

    def init(self, model, blocks, params):
        return self.m_step.init(model, blocks, params)

    def step(self, model, blocks, params, state):
        stats, elbo = _full_pass(model.e_step, model, blocks, params)
        new_params, new_state = self.m_step.update(model, blocks, params, stats, state)
        return elbo, new_params, new_state


class HardEM(AbstractSolver):
    r"""Classification (hard) EM: the E-step assigns each point to its most probable component.

    With ``z_n = argmax_k p(z_n = k | x_n, θ_t)``, the M-step maximises the classification
    log-likelihood ``Σ_n log p(x_n, z_n | θ)``, which therefore never decreases (Celeux &
    Govaert 1992). For an isotropic mixture with equal weights and a common fixed variance
    this is Lloyd's k-means algorithm, the solver `emjax.KMeans` uses by default.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> sol = emjax.fit(emjax.GaussianMixture(2), X, key=jax.random.key(0),
        ...                 solver=emjax.HardEM())
        >>> int(sol.num_steps) > 0
        True
    """

    tight_bound: ClassVar[bool] = False

    def check_model(self, model):
        if not isinstance(model, AbstractHardEMModel):
            raise TypeError(
                "HardEM() needs a model with a hard E-step (a mixture, or a hidden Markov "
                f"model); got {type(model).__name__}."
            )
        if _no_closed_form(model):
            raise TypeError(
                f"HardEM() needs a closed-form M-step, which {type(model).__name__} does not "
                "have; use emjax.EM(m_step=emjax.GradientMStep(...)) (the model's default)."
            )

    def init(self, model, blocks, params):
        return None

    def step(self, model, blocks, params, state):
        stats, elbo = _full_pass(model.hard_e_step, model, blocks, params)
        return elbo, model.m_step(params, stats), state
