"""M-step strategies: how `emjax.EM` turns the E-step's output into new parameters.

An M-step is an ``(init, update)`` pair over explicit state, like an optax transformation:
`ClosedFormMStep` calls the model's exact ``m_step`` and keeps no state;
`GradientMStep` runs an optax optimizer on the expected complete-data log-likelihood and
carries the optimizer's state from one EM iteration to the next.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._accumulate import Blocks, accumulate
from ._custom_types import Params, PyTree, Stats
from ._loop import all_finite, select
from ._model import AbstractEMModel, AbstractUnconstrainedModel
from ._validation import check_positive_int


def _no_closed_form(model) -> bool:
    return not model.has_closed_form_m_step


class AbstractMStep(eqx.Module):
    """How the M-step of `emjax.EM` maps the E-step's statistics to new parameters.

    Example:
        >>> import optax, emjax
        >>> isinstance(emjax.GradientMStep(optax.sgd(0.1), num_steps=3), emjax.AbstractMStep)
        True

    ``init(model, blocks, params)`` builds the state carried across EM iterations (inside
    the solver's state); ``update(model, blocks, params, stats, state)`` returns
    ``(new_params, new_state)``, where ``params`` are the parameters the statistics
    ``stats`` were computed at (``θ_t``) and ``blocks`` is the data (for M-steps that need
    another pass over it).

    Every M-step must be a *generalized* EM step (Dempster et al. 1977; Wu 1983): it may
    not decrease ``Q(θ | θ_t) + log p(θ)``, so that the ELBO never decreases.

    Implementations: `ClosedFormMStep` and `GradientMStep`.
    """

    @abc.abstractmethod
    def check_model(self, model: AbstractEMModel) -> None:
        """Raise ``TypeError`` if this M-step cannot update ``model``'s parameters."""

    @abc.abstractmethod
    def init(self, model: AbstractEMModel, blocks: Blocks, params: Params) -> PyTree:
        """The M-step's state before the first EM iteration."""

    @abc.abstractmethod
    def update(
        self, model: AbstractEMModel, blocks: Blocks, params: Params, stats: Stats, state: PyTree
    ) -> tuple[Params, PyTree]:
        """New parameters (and state) from the statistics computed at ``params``."""


class ClosedFormMStep(AbstractMStep):
    r"""The model's exact M-step: ``θ_{t+1} = argmax_θ Q(θ | θ_t) + log p(θ)``.

    Calls ``model.m_step(params, stats)``, the closed-form maximiser of the expected
    complete-data log-likelihood given the expected sufficient statistics (Dempster, Laird
    & Rubin 1977). Keeps no state. This is what ``emjax.EM()`` uses.

    Raises:
        TypeError: (from ``check_model``) for models without a closed-form M-step, such as
            `emjax.StudentTMixture` or `emjax.DensityMixture`; use `GradientMStep`.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> solver = emjax.EM(m_step=emjax.ClosedFormMStep())  # the same as emjax.EM()
        >>> sol = emjax.fit(emjax.GaussianMixture(2), X, key=jax.random.key(0), solver=solver)
        >>> bool(sol.converged)
        True
    """

    def check_model(self, model):
        if _no_closed_form(model):
            raise TypeError(
                f"{type(model).__name__} has no closed-form M-step; fit it with a gradient "
                "M-step, e.g. solver=emjax.EM(m_step=emjax.GradientMStep(optax.adam(1e-2), "
                "num_steps=10)), or leave `solver` out to use the model's default."
            )

    def init(self, model, blocks, params):
        return None

    def update(self, model, blocks, params, stats, state):
        return model.m_step(params, stats), state


class GradientMStep(AbstractMStep):
    r"""A partial M-step: ``num_steps`` steps of an optax optimizer on ``Q``.

    With the responsibilities ``r_nk(θ_t) = p(z_n = k | x_n, θ_t)`` held at ``θ_t``, it
    minimises

    .. math::

        f(ψ) = -\frac{1}{Σ_n w_n}\Big[\underbrace{Σ_n w_n Σ_k r_{nk}(θ_t)
        \log p(x_n, z_n = k \mid θ(ψ))}_{Q(θ \mid θ_t)} + \log p(θ(ψ))\Big]

    over the model's unconstrained parameters ``ψ`` (``θ = model.constrain(ψ)``: logits for
    mixing weights, Cholesky factors with a log-diagonal for covariance matrices, logs of
    scales and degrees of freedom), starting from ``ψ_0 = model.unconstrain(θ_t)``. Dividing
    by the total weight makes learning rates independent of the data size. Every
    evaluation of ``f`` is a blocked pass over the data, with ``r_nk(θ_t)`` recomputed in
    each block, so memory stays bounded by one block (no ``N × K`` array is kept). The
    responsibilities depend on ``θ_t``, not on ``ψ``, so ``∇f`` does not see them (no
    ``stop_gradient`` is needed), while derivatives with respect to ``θ_t`` stay exact.

    **Closed-form parts first (ECM).** Parameters the model can maximise in closed form
    from the E-step's statistics (``model.partial_m_step``, e.g. the initial and
    transition probabilities of `emjax.HiddenMarkovModel`) are set to their maximiser
    first; the optimizer starts from there (Meng & Rubin 1993).

    **Monotone by construction.** The start is a candidate, and the update returns the best
    of the start and the ``num_steps`` iterates by ``f`` (chosen with ``jnp.where``), so
    ``Q + log p`` never decreases, and hence neither does the ELBO: this is a generalized
    EM step (Dempster et al. 1977; Wu 1983), the gradient EM of Lange (1995) with an
    ascent check. An iterate with a non-finite value or gradient is never chosen: the
    optimizer goes back to the best point and retries the step at half the length (each
    finite step doubles it again, up to the optimizer's own), so parameters never become
    NaN. If no iterate improves on ``θ_t`` (for example a learning rate far
    too large), the parameters stay, the ELBO does not change and `emjax.fit` stops as
    converged: lower the learning rate.

    **State.** By default the optimizer's state (Adam's moments) lives in the solver's
    state and is carried from one EM iteration to the next, so that the optimizer keeps
    its estimates of the scale of each coordinate while ``Q`` changes slowly under it.
    With ``reset=True`` it starts afresh at every EM iteration instead; use that for
    quasi-Newton methods such as ``optax.lbfgs()``, whose memory would otherwise hold a
    curvature pair straddling two different objectives (optax's L-BFGS does not check
    curvature, so such a pair can turn its direction uphill and stall the fit). The loop
    has static length (``lax.scan``), so the step is reverse-mode differentiable when the
    optimizer is (adam, sgd, ...; not `optax.lbfgs`, whose line search is a
    ``while_loop``).

    **Optimizers.** Any ``optax.GradientTransformation``; the extra arguments ``value``,
    ``grad`` and ``value_fn`` are passed, so line-search methods such as
    ``optax.lbfgs()`` work. Each ``lbfgs`` step costs one gradient and at least one
    further function evaluation (each a pass over the data).

    **Compilation.** The optimizer (a NamedTuple of functions) and ``num_steps`` are
    static: reusing the same optimizer object reuses the compiled program, but a new
    ``optax.adam(1e-2)`` object, even with the same learning rate, compiles again (a few
    seconds). Create the optimizer once, at module level, and reuse it.

    Args:
        optimizer: an optax optimizer, e.g. ``optax.adam(1e-2)`` or ``optax.lbfgs()``.
        num_steps: optimizer steps per EM iteration (``>= 1``, static).
        reset: start the optimizer afresh at every EM iteration (static; default False:
            carry its state across iterations).

    Raises:
        TypeError: ``optimizer`` is not an optax ``GradientTransformation``,
            ``num_steps`` is not an integer or ``reset`` not a bool; (from ``check_model``) the model has no
            unconstrained parametrization (`emjax.AbstractUnconstrainedModel`).
        ValueError: ``num_steps < 1``.

    References:
        Dempster, Laird & Rubin (1977), JRSS-B 39:1–38; Wu (1983), Ann. Statist.
        11:95–103; Lange (1995), "A gradient algorithm locally equivalent to the EM
        algorithm", JRSS-B 57:425–437.

    Example:
        >>> import jax, optax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> solver = emjax.EM(m_step=emjax.GradientMStep(optax.adam(5e-2), num_steps=10))
        >>> sol = emjax.fit(emjax.GaussianMixture(2, covariance_type="diag"), X,
        ...                 key=jax.random.key(0), solver=solver, max_steps=20)
        >>> trace = sol.elbo_trace[: int(sol.num_steps) + 1]
        >>> bool((jax.numpy.diff(trace) >= 0).all())
        True
    """

    optimizer: optax.GradientTransformation = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    reset: bool = eqx.field(static=True)

    def __init__(self, optimizer: optax.GradientTransformation, num_steps: int = 10, *,
                 reset: bool = False):
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                "`optimizer` must be an optax GradientTransformation, e.g. optax.adam(1e-2) "
                f"or optax.lbfgs(); got {type(optimizer).__name__}."
            )
        self.optimizer = optimizer
        self.num_steps = check_positive_int(num_steps, "num_steps")
        if not isinstance(reset, bool):
            raise TypeError(f"`reset` must be True or False; got {reset!r}.")
        self.reset = reset

    def check_model(self, model):
        if not isinstance(model, AbstractUnconstrainedModel):
            raise TypeError(
                f"GradientMStep needs a model with an unconstrained parametrization "
                f"(emjax.AbstractUnconstrainedModel); {type(model).__name__} has none."
            )

    def init(self, model, blocks, params):
        return self.optimizer.init(model.unconstrain(params))

    def update(self, model, blocks, params, stats, state):
        # Q is recomputed from the data, with responsibilities at `params` (θ_t); the
        # statistics only feed the model's closed-form part, if it has one (ECM).
        start = model.partial_m_step(params, stats)
        dtype = blocks.weights.dtype
        inv_total = 1.0 / blocks.total_weight()

        def objective(psi):
            theta = model.constrain(psi)
            q = accumulate(lambda x, w: model.expected_log_joint(theta, params, x, w), blocks)
            return -(q + model.log_prior(theta)) * inv_total

        tx = optax.with_extra_args_support(self.optimizer)
        psi0 = model.unconstrain(start)
        if self.reset:
            state = self.optimizer.init(psi0)
        inf = jnp.array(jnp.inf, dtype)

        def consider(i, psi, value, best):
            best_psi, best_value, best_index = best
            better = jnp.isfinite(value) & (value < best_value)
            return (
                select(better, psi, best_psi),
                jnp.where(better, value, best_value),
                jnp.where(better, i, best_index),
            )

        def body(carry, i):
            psi, opt_state, best, scale, used = carry
            value, grad = jax.value_and_grad(objective)(psi)
            ok = jnp.isfinite(value) & all_finite(grad)
            best = consider(i, psi, jnp.where(ok, value, inf), best)
            updates, new_state = tx.update(
                grad, opt_state, psi, value=value, grad=grad, value_fn=objective
            )
            new_psi = optax.apply_updates(psi, jax.tree.map(lambda u: scale * u, updates))
            step_ok = ok & all_finite(new_psi)
            # A step that reached a non-finite point is discarded: go back to the best point
            # (keeping the optimizer state of the last finite step) and retry at half the
            # length; each finite step doubles the length again, up to the optimizer's own.
            psi = select(step_ok, new_psi, best[0])
            opt_state = select(step_ok, new_state, opt_state)
            used, scale = (jnp.where(ok, scale, used),
                           jnp.where(ok, jnp.minimum(1.0, 2 * scale), 0.5 * used))
            return (psi, opt_state, best, scale, used), None

        best0 = (psi0, inf, jnp.array(0, jnp.int32))
        one = jnp.ones((), dtype)
        steps = jnp.arange(self.num_steps, dtype=jnp.int32)
        (psi, state, best, _, _), _ = jax.lax.scan(body, (psi0, state, best0, one, one), steps)
        best_psi, _, best_index = consider(self.num_steps, psi, objective(psi), best)
        # The start itself when no iterate improved on it (exactly, not through
        # constrain∘unconstrain).
        new_params = select(best_index == 0, start, model.constrain(best_psi))
        return new_params, state
