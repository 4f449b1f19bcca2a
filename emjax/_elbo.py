"""The evidence lower bound as a small pytree of its parts."""

import equinox as eqx
import jax.numpy as jnp

from ._custom_types import Array, Float


class ELBO(eqx.Module):
    r"""The evidence lower bound, kept as its parts.

    For a variational distribution ``q(z)`` over the latent variables,

    .. math::

        \log p(x \mid \theta) \;\ge\; \mathcal{L}(q, \theta)
        = \underbrace{\mathbb{E}_q[\log p(x, z \mid \theta)]}_{\texttt{expected\_log\_joint}}
        + \underbrace{\mathrm{H}[q]}_{\texttt{entropy}}
        + \underbrace{\log p(\theta)}_{\texttt{log\_prior}}

    by Jensen's inequality. The exact E-step of EM sets ``q(z) = p(z | x, θ)``, which makes
    the bound tight: then ``total`` equals the (penalised) log-likelihood. A hard E-step
    puts ``q`` on the most likely assignment, so ``entropy`` is zero and ``total`` is the
    classification log-likelihood.

    ELBOs of disjoint blocks of data add up (``a + b``): the data terms are sums over data
    points. The prior term is a property of the parameters, not of the data, and emjax adds
    it once per pass, never per block.

    Attributes:
        expected_log_joint: ``E_q[log p(x, z | θ)]``, weighted by the sample weights.
        entropy: ``H[q]``, weighted by the sample weights.
        log_prior: ``log p(θ)`` (zero for maximum-likelihood models).

    Example:
        >>> import jax.numpy as jnp
        >>> from emjax import ELBO
        >>> e = ELBO(jnp.array(-10.0), jnp.array(2.0), jnp.array(0.0))
        >>> float(e.total)
        -8.0
    """

    expected_log_joint: Float[Array, ""]
    entropy: Float[Array, ""]
    log_prior: Float[Array, ""]

    @property
    def total(self) -> Float[Array, ""]:
        """The value of the bound: the sum of its parts."""
        return self.expected_log_joint + self.entropy + self.log_prior

    def __add__(self, other: "ELBO") -> "ELBO":
        return ELBO(
            self.expected_log_joint + other.expected_log_joint,
            self.entropy + other.entropy,
            self.log_prior + other.log_prior,
        )

    @classmethod
    def nan(cls, dtype) -> "ELBO":
        """An ELBO whose parts are NaN: the placeholder before any E-step has run."""
        value = jnp.array(jnp.nan, dtype)
        return cls(value, value, value)
