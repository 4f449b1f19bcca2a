"""Result codes and the `Solution` returned by `emjax.fit`."""

import equinox as eqx

from ._custom_types import Array, Float, Int, Params
from ._elbo import ELBO


class ConvergenceWarning(UserWarning):
    """Warned (outside ``jax.jit``) when the best restart of a fit did not converge."""


class NonFiniteError(RuntimeError):
    """Raised by `emjax.fit` (with ``throw=True``) when no restart produced finite parameters."""


class RESULTS(eqx.Enumeration):
    """Why an EM loop stopped. Each item's value is a readable message.

    - ``converged``: the ELBO changed by at most ``atol + rtol·|ELBO|`` in one step.
    - ``max_steps_reached``: ``max_steps`` updates ran without converging.
    - ``nonfinite``: an E-step gave a non-finite ELBO or an M-step gave non-finite
      parameters. The parameters returned are the last ones whose ELBO was finite, so a
      long fit's progress is never lost.

    Example:
        >>> from emjax import RESULTS
        >>> RESULTS[RESULTS.converged]
        'The ELBO converged: its change in one step was within atol + rtol*|ELBO|.'
    """

    converged = "The ELBO converged: its change in one step was within atol + rtol*|ELBO|."
    max_steps_reached = (
        "The maximum number of steps was reached before the ELBO converged. Increase "
        "`max_steps`, loosen `rtol`/`atol`, or check the data for degeneracies."
    )
    nonfinite = (
        "A non-finite ELBO or parameter appeared (for example a singular covariance). The "
        "parameters returned are the last ones with a finite ELBO. Increase `reg_covar`, "
        "use fewer components, rescale the data, or use float64."
    )


class Solution(eqx.Module):
    """What `emjax.fit` returns: the best restart, plus every restart's outcome.

    Attributes:
        params: parameters of the best restart (the highest final ELBO among the restarts
            that did not fail; failed restarts are chosen only if every restart failed).
        log_likelihood: ``Σ_n w_n log p(x_n | params)``, the (weighted) total
            log-likelihood of the data at ``params``.
        elbo: the `ELBO` parts at ``params`` (for exact EM, ``elbo.total`` equals
            ``log_likelihood`` plus the log prior).
        elbo_trace: ``elbo_trace[t]`` is the ELBO of the parameters after ``t`` updates,
            for ``t = 0 .. num_steps``; later entries are NaN. Shape ``(max_steps + 1,)``.
        num_steps: number of parameter updates that produced ``params``.
        result: a `RESULTS` item saying why the best restart stopped.
        best_restart: index of the best restart.
        restart_params: every restart's final parameters (leading axis ``R``).
        restart_elbos: every restart's final ELBO total, shape ``(R,)``.
        restart_results: every restart's `RESULTS` item (batched, shape ``(R,)``).
        restart_num_steps: every restart's number of updates, shape ``(R,)``.
        restart_elbo_traces: every restart's trace, shape ``(R, max_steps + 1)``.
    """

    params: Params
    log_likelihood: Float[Array, ""]
    elbo: ELBO
    elbo_trace: Float[Array, " T"]
    num_steps: Int[Array, ""]
    result: RESULTS
    best_restart: Int[Array, ""]
    restart_params: Params
    restart_elbos: Float[Array, " R"]
    restart_results: RESULTS
    restart_num_steps: Int[Array, " R"]
    restart_elbo_traces: Float[Array, "R T"]

    @property
    def message(self) -> str:
        """The readable message of the best restart's result (outside ``jax.jit``)."""
        return RESULTS[self.result]

    @property
    def converged(self):
        """Whether the best restart converged (a boolean array)."""
        return self.result == RESULTS.converged
