"""The contract every emjax model fulfils."""

import abc

import equinox as eqx

from ._accumulate import Blocks
from ._custom_types import Array, Data, Float, Params, PRNGKeyArray, Stats
from ._elbo import ELBO


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


class AbstractMixtureModel(AbstractEMModel):
    """A model whose latent variable is one discrete assignment per data point.

    Such models also support classification (hard) EM: ``hard_e_step`` puts ``q(z_n)`` on
    the most probable assignment, so the ELBO becomes the classification log-likelihood
    ``Σ_n max_k log p(x_n, z_n = k | θ)`` and the entropy is zero.
    """

    @abc.abstractmethod
    def hard_e_step(
        self, params: Params, data: Data, weights: Float[Array, " B"]
    ) -> tuple[Stats, ELBO]:
        """Statistics and ELBO data terms of one block under hard (argmax) assignments."""
