"""The EM loop of one restart: its state, its body, and the two ways of running it.

`run_while` is a ``lax.while_loop`` that stops as soon as the restart has converged; it is
what `emjax.fit` runs unless gradients must flow backwards through the iterations.
`run_scan` runs the same body as a ``lax.scan`` of fixed length with a done-mask and a
checkpoint per step, which reverse-mode differentiation can go through (`emjax.Unrolled`).
Both give the same parameters, ELBO, step count, result and ELBO trace.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _progress
from ._accumulate import Blocks
from ._custom_types import Array, Float, Int, Params, PyTree
from ._elbo import ELBO
from ._solution import RESULTS


def select(pred, on_true, on_false):
    """``jnp.where(pred, a, b)`` on every leaf of two pytrees of the same structure."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def all_finite(tree) -> Array:
    """Whether every floating leaf of ``tree`` is finite (a scalar boolean)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if eqx.is_inexact_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class LoopState(eqx.Module):
    """The carry of the EM loop of one restart."""

    params: Params  # θ_t, the parameters to evaluate next (the answer once `done`)
    prev_params: Params  # θ_{t-1}: the fallback if θ_t gives a non-finite ELBO
    elbo: ELBO  # ELBO at θ_{t-1} while running; at `params` once `done`
    solver_state: PyTree
    step: Int[Array, ""]
    result: RESULTS
    done: Array


def init_state(model, solver, blocks: Blocks, params0) -> LoopState:
    return LoopState(
        params=params0,
        prev_params=params0,
        elbo=ELBO.nan(blocks.weights.dtype),
        solver_state=solver.init(model, blocks, params0),
        step=jnp.array(0, jnp.int32),
        result=RESULTS.converged,
        done=jnp.array(False),
    )


def make_body(model, solver, blocks: Blocks, rtol, atol, max_steps, progress=None):
    """One iteration: ``body(state) -> (state, elbo_value_at_state.params)``.

    ``progress``: None, or the traced number of a host-side reporter (`emjax._progress`)
    that receives each iteration's step, ELBO and status.

    The iteration evaluates the ELBO at ``θ_t`` (and computes ``θ_{t+1}``), then decides:
    converged (``|ΔELBO| <= atol + rtol·|ELBO|``), out of steps, or non-finite. A finished
    restart stands on ``θ_t`` (whose ELBO it knows), or on ``θ_{t-1}`` if the ELBO at ``θ_t``
    is not finite.
    """

    def body(s: LoopState) -> tuple[LoopState, Float[Array, ""]]:
        elbo, new_params, new_solver_state = solver.step(model, blocks, s.params, s.solver_state)
        value = elbo.total
        finite = jnp.isfinite(value)
        converged = (
            (s.step > 0) & finite & (jnp.abs(value - s.elbo.total) <= atol + rtol * jnp.abs(value))
            & solver.may_stop(s.solver_state)
        )
        at_max = s.step >= max_steps
        bad_update = finite & ~converged & ~at_max & ~all_finite(new_params)
        revert = ~finite & (s.step > 0)
        done = ~finite | converged | at_max | bad_update

        result = RESULTS.where(
            ~finite | bad_update,
            RESULTS.nonfinite,
            RESULTS.where(converged, RESULTS.converged, RESULTS.max_steps_reached),
        )
        # Where to stand after this step: θ_{t+1} if going on; θ_t if stopping with a finite
        # ELBO; θ_{t-1} (with its ELBO) if θ_t itself is not finite.
        params = select(done, select(revert, s.prev_params, s.params), new_params)
        step = jnp.where(done, jnp.where(revert, s.step - 1, s.step), s.step + 1)
        if progress is not None:
            step = step + _progress.report(progress, s.step, value, done,
                                           done & (result == RESULTS.converged))
        new = LoopState(
            params=params,
            prev_params=s.params,
            elbo=select(finite, elbo, s.elbo),
            solver_state=new_solver_state,
            step=step,
            result=result,
            done=done,
        )
        return new, jnp.where(finite, value, jnp.nan)

    return body


def run_while(model, solver, blocks: Blocks, params0, rtol, atol, max_steps, capacity: int,
              progress=None):
    """The EM loop of one restart as a ``lax.while_loop``; under ``vmap`` a finished restart
    is frozen.

    ``max_steps`` may be traced; ``capacity`` (static, ``> max_steps``) sizes the ELBO trace.

    Returns:
        ``(params, elbo, num_steps, result, trace)``.
    """
    body = make_body(model, solver, blocks, rtol, atol, max_steps, progress)
    trace0 = jnp.full((capacity,), jnp.nan, blocks.weights.dtype)

    def loop_body(carry):
        s, trace = carry
        new, value = body(s)
        return new, trace.at[s.step].set(value)

    final, trace = jax.lax.while_loop(
        lambda carry: ~carry[0].done, loop_body, (init_state(model, solver, blocks, params0), trace0)
    )
    return final.params, final.elbo, final.step, final.result, trace


def run_scan(model, solver, blocks: Blocks, params0, rtol, atol, max_steps, length: int,
             progress=None):
    """The same loop as `run_while`, as a ``lax.scan`` of ``length`` iterations that
    reverse-mode differentiation can go through.

    Each iteration is wrapped in ``jax.checkpoint``: the backward pass keeps only the
    carry of every iteration (parameters and a few scalars) and recomputes the iteration's
    E-step, so memory grows with the parameters, not with the ``N × K`` intermediates.
    Once the restart is done, the iteration is skipped (``lax.cond``; under ``vmap`` the
    iteration is computed and discarded), so the parameters are frozen exactly.
    ``length`` must be ``> max_steps`` for the loop to finish.
    """
    body = make_body(model, solver, blocks, rtol, atol, max_steps, progress)
    dtype = blocks.weights.dtype

    def skip(s):
        return s, jnp.array(jnp.nan, dtype)

    def scan_body(s, _):
        return jax.lax.cond(s.done, skip, body, s)

    final, trace = jax.lax.scan(
        jax.checkpoint(scan_body, prevent_cse=False),
        init_state(model, solver, blocks, params0),
        None,
        length=length,
    )
    return final.params, final.elbo, final.step, final.result, trace
