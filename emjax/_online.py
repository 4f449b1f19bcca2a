"""Solvers beyond plain EM, on the same engine: SQUAREM, online EM and incremental EM.

All three use only the model contract (``e_step``, ``m_step``, ``log_prior`` and, for the
two that combine statistics from different iterations, ``rebase_stats``), so every model
with a closed-form M-step gets them without new model code. Each is an `AbstractSolver`:
one ``step`` is one cycle (SQUAREM) or one pass over the data in minibatches (online and
incremental EM), and `emjax.fit` runs the loop, restarts and convergence checks as for
`emjax.EM`.

The per-cycle and per-minibatch updates are module-level functions of a "pass" or of one
minibatch's statistics, so that `emjax.fit_stream` runs the same algorithms on data
streamed from the host.
"""

import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._accumulate import Blocks, accumulate, default_block_size, make_blocks
from ._custom_types import Array, Int, Params, PRNGKeyArray, PyTree, Stats
from ._elbo import ELBO
from ._loop import all_finite, select
from ._mstep import _no_closed_form
from ._solver import EM, AbstractSolver, _full_pass
from ._validation import check_positive_int

# ---------------------------------------------------------------------------------------
# Arithmetic on pytrees of statistics and parameters (floating leaves only)


def _is_float(a) -> bool:
    return eqx.is_inexact_array(a)


def tree_scale(tree, c):
    """``c · tree`` on every floating leaf (other leaves unchanged)."""
    return jax.tree.map(lambda a: a * c.astype(a.dtype) if _is_float(a) else a, tree)


def tree_axpby(a_coef, a, b_coef, b):
    """``a_coef · a + b_coef · b`` on every floating leaf of two trees of one structure."""
    return jax.tree.map(
        lambda x, y: (a_coef.astype(x.dtype) * x + b_coef.astype(x.dtype) * y) if _is_float(x) else x,
        a, b,
    )


def _sq_norm(tree):
    leaves = [jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree) if _is_float(x)]
    return sum(leaves) if leaves else jnp.zeros(())


def _require_closed_form(solver: str, model) -> None:
    if _no_closed_form(model):
        raise TypeError(
            f"{solver} needs a closed-form M-step, which {type(model).__name__} does not have; "
            "fit it with emjax.EM(m_step=emjax.GradientMStep(...)) (the model's default)."
        )


def _check_model(solver: str, model) -> None:
    from ._model import AbstractEMModel

    if not isinstance(model, AbstractEMModel):
        raise TypeError(f"{solver} fits emjax models; got {type(model).__name__}.")
    _require_closed_form(solver, model)


def minibatch_pass(model, params, data, weights):
    """Statistics and ELBO data terms of one minibatch at ``params`` (no prior term); the
    minibatch is itself cut into blocks of the default size. NaN statistics make the
    ELBO NaN, as in a full pass."""
    rows = weights.shape[0]
    blocks = make_blocks(data, weights, default_block_size(rows, model.row_cost(data)))
    stats, elbo = accumulate(lambda x, w: model.e_step(params, x, w), blocks)
    nan = jnp.array(False)
    for leaf in jax.tree.leaves(stats):
        if _is_float(leaf):
            nan = nan | jnp.any(jnp.isnan(leaf))
    return stats, jax.tree.map(lambda v: jnp.where(nan, jnp.nan, v), elbo)


def _take_rows(blocks: Blocks, index: Int[Array, " B"], valid) -> tuple[PyTree, Array]:
    """Rows ``index`` of the (flattened) blocks; rows where ``valid`` is False get weight 0."""
    data, weights = blocks.flat()
    take = lambda a: jnp.take(a, index, axis=0)  # noqa: E731
    return jax.tree.map(take, data), jnp.where(valid, take(weights), 0.0)


def _minibatch_index(order: Int[Array, " N"], batch_size: int):
    """``order`` cut into ``ceil(N / B)`` minibatches of ``B`` row indices, the last one
    padded (with ``valid`` False), as ``(index (M, B), valid (M, B))``."""
    n = order.shape[0]
    m = math.ceil(n / batch_size)
    pad = m * batch_size - n
    index = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]) if pad else order
    valid = jnp.arange(m * batch_size) < n
    return index.reshape(m, batch_size), valid.reshape(m, batch_size)


# ---------------------------------------------------------------------------------------
# SQUAREM


def squarem_cycle(model, full_pass: Callable, x0: Params, step_max, step_max0, mstep):
    """One SQUAREM cycle (Varadhan & Roland 2008, steplength "S3") from ``x0``.

    ``full_pass(θ) -> (stats, ELBO)`` is an exact E-step over all the data (with the prior
    term). Returns ``(ELBO at x0, new parameters, new step_max)``.
    """
    s0, e0 = full_pass(x0)
    x1 = model.m_step(x0, s0)
    s1, e1 = full_pass(x1)
    x2 = model.m_step(x1, s1)
    r = tree_axpby(jnp.array(1.0), x1, jnp.array(-1.0), x0)
    v = tree_axpby(jnp.array(1.0), tree_axpby(jnp.array(1.0), x2, jnp.array(-2.0), x1),
                   jnp.array(1.0), x0)
    nr, nv = jnp.sqrt(_sq_norm(r)), jnp.sqrt(_sq_norm(v))
    alpha = jnp.where(nv > 0, nr / jnp.where(nv > 0, nv, 1.0), 1.0)
    alpha = jnp.clip(alpha, 1.0, step_max)
    # x' = x0 + 2αr + α²v: α = 1 gives x2 exactly.
    x_prime = tree_axpby(jnp.array(1.0), tree_axpby(jnp.array(1.0), x0, 2 * alpha, r),
                         jnp.square(alpha), v)
    x_prime = jax.tree.map(lambda a, b: a.astype(b.dtype) if _is_float(b) else a, x_prime, x0)
    # The stabilisation step: the M-step from the extrapolated point returns valid
    # parameters whenever its E-step was finite.
    sp, ep = full_pass(x_prime)
    x_new = model.m_step(x_prime, sp)
    value1 = e1.total
    good = jnp.isfinite(ep.total) & (ep.total >= value1) & all_finite(x_new)
    new = select(good, x_new, x2)
    at_max = alpha >= step_max
    step_max = jnp.where(
        good,
        jnp.where(at_max, step_max * mstep, step_max),
        jnp.where(at_max, jnp.maximum(step_max0, step_max / mstep), step_max),
    )
    return e0, new, step_max


class SQUAREM(AbstractSolver):
    r"""EM accelerated by squared extrapolation (SQUAREM; Varadhan & Roland 2008).

    Plain EM converges linearly, and slowly when the components overlap (its rate is the
    largest fraction of missing information). SQUAREM treats EM as a fixed-point map
    ``F`` and, from ``θ_0``, computes ``θ_1 = F(θ_0)``, ``θ_2 = F(θ_1)``,
    ``r = θ_1 − θ_0``, ``v = θ_2 − 2θ_1 + θ_0`` and the step length
    ``α = clip(‖r‖ / ‖v‖, 1, α_max)`` (the "S3" rule), then jumps to

    .. math::

        θ' = θ_0 + 2α r + α^2 v

    (``α = 1`` gives ``θ_2``), and takes a stabilising EM step from there:
    ``θ_new = F(θ')``, which is valid parameters (an M-step output) whenever the E-step at
    ``θ'`` is finite.

    **Safeguard.** If the extrapolated point leaves the parameter space (a negative weight
    or variance, a covariance that is not positive definite: its E-step is not finite) or
    lowers the ELBO below that of ``θ_1``, the cycle falls back to the plain EM iterate
    ``θ_2``. So the ELBO at the start of each cycle never decreases, like EM's, and the
    fixed points are EM's. ``α_max`` starts at ``step_max0`` and is multiplied by
    ``mstep`` each time ``α`` reaches it, divided by ``mstep`` (not below
    ``step_max0``) when such a step fails.

    One solver step is one cycle: **three E-steps** (passes over the data), so
    ``Solution.num_steps`` counts cycles and the ELBO trace has one value per cycle (at
    ``θ_0`` of each cycle). Convergence is tested on the change of that value, as for EM.

    Args:
        step_max0: the initial (and smallest) upper bound on ``α`` (``>= 1``; the R
            package's default is 1).
        mstep: the factor by which the bound grows or shrinks (``> 1``; default 4).

    Raises:
        TypeError: (from ``check_model``) for a model without a closed-form M-step.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> gmm = emjax.GaussianMixture(2)
        >>> sol = emjax.fit(gmm, X, key=jax.random.key(0), solver=emjax.SQUAREM())
        >>> bool(sol.converged)
        True

    References:
        R. Varadhan and C. Roland, "Simple and globally convergent methods for accelerating
        the convergence of any EM algorithm", Scand. J. Statist. 35 (2008) 335–353.
    """

    step_max0: float = eqx.field(default=1.0, static=True)
    mstep: float = eqx.field(default=4.0, static=True)
    tight_bound: ClassVar[bool] = True

    def __check_init__(self):
        if not isinstance(self.step_max0, (int, float)) or not self.step_max0 >= 1:
            raise ValueError(f"`step_max0` must be a number >= 1; got {self.step_max0!r}.")
        if not isinstance(self.mstep, (int, float)) or not self.mstep > 1:
            raise ValueError(f"`mstep` must be a number > 1; got {self.mstep!r}.")

    def check_model(self, model):
        _check_model("SQUAREM()", model)

    def init(self, model, blocks, params):
        return jnp.asarray(self.step_max0, blocks.weights.dtype)

    def step(self, model, blocks, params, state):
        def full_pass(theta):
            return _full_pass(model.e_step, model, blocks, theta)

        return squarem_cycle(model, full_pass, params, state, self.step_max0, self.mstep)

    def fixed_point_solver(self):
        return EM()


# ---------------------------------------------------------------------------------------
# Online (stochastic) EM


class OnlineState(eqx.Module):
    """The carry of `OnlineEM` between passes."""

    iterate: Params  # θ_t, the current iterate (the loop's params are its average, if any)
    stats: Stats  # the running statistics s_t, relative to `iterate`
    have_stats: Array  # False until the first update (s_0 is then ignored)
    count: Int[Array, ""]  # updates made so far (t)
    num_averaged: Int[Array, ""]
    key: PRNGKeyArray | None


def default_step_size(t, offset, decay):
    """``ρ_t = (t + offset)^(−decay)``."""
    return jnp.power(t + offset, -decay)


def online_update(solver: "OnlineEM", model, state: OnlineState, average: Params,
                  batch_stats: Stats, scale):
    """One online-EM update from one minibatch's statistics ``batch_stats`` computed at
    ``state.iterate``; ``scale`` is ``N / B``. Returns ``(state, average)``."""
    theta = state.iterate
    dtype = jax.tree.leaves(batch_stats)[0].dtype
    rho = solver.step_size_at(state.count).astype(dtype)
    rho = jnp.where(state.have_stats, jnp.clip(rho, 0.0, 1.0), 1.0)
    stats = tree_axpby(1.0 - rho, state.stats, rho * scale, batch_stats)
    updating = state.count + 1 > solver.burn_in
    new_theta = select(updating, model.m_step(theta, stats), theta)
    stats = model.rebase_stats(stats, theta, new_theta)
    if solver.average_after is None:
        n_avg, average = state.num_averaged, new_theta
    else:
        counted = updating & (state.count + 1 > solver.average_after)
        n_avg = state.num_averaged + counted.astype(state.num_averaged.dtype)
        weight = (1.0 / jnp.maximum(n_avg, 1)).astype(dtype)
        moved = tree_axpby(1.0 - weight, average, weight, new_theta)
        # Before averaging starts the "average" follows the iterate.
        average = select(counted, moved, select(n_avg > 0, average, new_theta))
    new_state = OnlineState(new_theta, stats, jnp.array(True), state.count + 1, n_avg, state.key)
    return new_state, average


class OnlineEM(AbstractSolver):
    r"""Online (stochastic) EM on random minibatches (Cappé & Moulines 2009).

    The recursion is on the expected sufficient statistics, not on the parameters. For
    each minibatch ``b`` of ``B`` rows drawn without replacement (a new random order each
    pass over the ``N`` rows),

    .. math::

        s_t = (1 − ρ_t)\, s_{t−1} + ρ_t \frac{N}{B} \hat s_b(θ_{t−1}),
        \qquad θ_t = \bar θ(s_t)

    where ``ŝ_b(θ)`` are the minibatch's expected statistics under ``p(z | x, θ)`` and
    ``θ̄`` is the model's closed-form M-step. The step sizes default to
    ``ρ_t = (t + offset)^{−decay}`` (Robbins–Monro for ``decay ∈ (1/2, 1]``). The running
    statistics start from ``s_0 = model.stats_from_params(θ_0)`` where the model defines
    that inverse of its M-step (`emjax.LatentDirichletAllocation`: ``λ_0 − η``), so that a
    first ``ρ_0 < 1`` (``offset > 1``) keeps part of ``θ_0``, as online LDA does; for the
    other models the first update uses ``ρ = 1`` and ``s_0`` plays no part. For models
    whose global update is "prior + statistics" (`emjax.BayesianGaussianMixture`,
    `emjax.LatentDirichletAllocation`) this is stochastic variational inference (Hoffman
    et al. 2013): the natural-gradient step on the global variational parameters.

    With ``average_after`` set, the returned parameters are the Polyak–Ruppert average
    of the iterates ``θ_t`` after that many updates (every emjax parameter space is
    convex: weights on the simplex, covariances positive definite, ...), which attains
    the maximum-likelihood estimator's asymptotic efficiency. With ``burn_in = b``, the
    first ``b`` updates only accumulate statistics (no M-step), so that early M-steps do
    not act on a few points.

    One solver step is one pass over the data in ``ceil(N / B)`` minibatches (the last one
    smaller). The ELBO it reports is the sum of the minibatches' ELBOs, each at the
    parameters it was computed with, plus the log-prior at the start of the pass: an
    estimate of the ELBO, which converges with the parameters; `emjax.fit` stops when it
    changes by at most ``atol + rtol·|ELBO|`` from one pass to the next.
    ``Solution.log_likelihood`` is computed exactly at the returned parameters.

    The minibatch order is drawn from `emjax.fit`'s ``key`` (a key of its own per
    restart), so ``key`` is required even with ``params0``.

    Args:
        batch_size: rows (points, or sequences for a hidden Markov model) per minibatch;
            clamped to ``N``.
        step_size: ``None`` for ``(t + offset)^{−decay}``, a float for a constant ``ρ``, or
            a function of the update count ``t = 0, 1, ...`` (e.g. an optax schedule);
            values are clipped to ``[0, 1]``.
        offset, decay: the default schedule's ``offset >= 1`` and ``decay ∈ (0, 1]``.
        average_after: ``None`` (no averaging) or the number of updates after which the
            iterates are averaged.
        burn_in: updates made before the first M-step (``>= 0``).
        shuffle: True (default) for a new random order of the rows every pass; False for
            the rows in their order, ``ceil(N / B)`` contiguous minibatches each pass (as
            scikit-learn's online LDA does).

    Raises:
        TypeError: (from ``check_model``) for a model without a closed-form M-step.
        ValueError: invalid arguments.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> gmm = emjax.GaussianMixture(2)
        >>> sol = emjax.fit(gmm, X, key=jax.random.key(0), rtol=1e-4, max_steps=500,
        ...                 solver=emjax.OnlineEM(batch_size=64))
        >>> sol.params.means.shape
        (2, 2)

    References:
        O. Cappé and E. Moulines, "On-line expectation-maximization algorithm for latent
        data models", JRSS-B 71 (2009) 593–613. M. D. Hoffman, D. M. Blei, C. Wang and
        J. Paisley, "Stochastic variational inference", JMLR 14 (2013) 1303–1347.
    """

    batch_size: int = eqx.field(static=True)
    step_size: float | Callable | None = eqx.field(default=None, static=True)
    offset: float = eqx.field(default=1.0, static=True)
    decay: float = eqx.field(default=0.6, static=True)
    average_after: int | None = eqx.field(default=None, static=True)
    burn_in: int = eqx.field(default=0, static=True)
    shuffle: bool = eqx.field(default=True, static=True)
    key: PRNGKeyArray | None = None

    tight_bound: ClassVar[bool] = False
    needs_key: ClassVar[bool] = True

    def __check_init__(self):
        check_positive_int(self.batch_size, "batch_size")
        if self.step_size is not None and not callable(self.step_size):
            if not isinstance(self.step_size, (int, float)) or not 0 < self.step_size <= 1:
                raise ValueError(
                    "`step_size` must be None, a number in (0, 1] or a function of the update "
                    f"count; got {self.step_size!r}."
                )
        if not isinstance(self.offset, (int, float)) or not self.offset >= 1:
            raise ValueError(f"`offset` must be a number >= 1 (so that ρ_0 <= 1); got {self.offset!r}.")
        if not isinstance(self.decay, (int, float)) or not 0 < self.decay <= 1:
            raise ValueError(f"`decay` must be in (0, 1]; got {self.decay!r}.")
        if self.average_after is not None:
            check_positive_int(self.average_after, "average_after", minimum=0)
        check_positive_int(self.burn_in, "burn_in", minimum=0)
        if not isinstance(self.shuffle, bool):
            raise TypeError(f"`shuffle` must be True or False; got {self.shuffle!r}.")

    def with_key(self, key):
        return eqx.tree_at(lambda s: s.key, self, key, is_leaf=lambda x: x is None)

    def step_size_at(self, t):
        """``ρ_t`` for the update count ``t``."""
        t = jnp.asarray(t)
        if self.step_size is None:
            return default_step_size(t.astype(jnp.result_type(float)), self.offset, self.decay)
        if callable(self.step_size):
            return jnp.asarray(self.step_size(t))
        return jnp.asarray(self.step_size, jnp.result_type(float))

    def check_model(self, model):
        _check_model("OnlineEM()", model)

    def may_stop(self, state):
        # During the burn-in the parameters do not move, so the ELBO cannot either.
        return state.count > self.burn_in

    def init_state(self, model, stats_like: Stats, params, key) -> OnlineState:
        zeros = jax.tree.map(lambda a: jnp.zeros_like(a) if _is_float(a) else a, stats_like)
        zero = jnp.array(0, jnp.int32)
        return OnlineState(params, zeros, jnp.array(False), zero, zero, key)

    def init(self, model, blocks, params):
        if self.key is None:
            raise ValueError("OnlineEM needs a key: emjax.fit gives it one from its `key`.")
        x, w = _take_rows(blocks, jnp.arange(1), jnp.array([True]))
        shape = jax.eval_shape(lambda: model.e_step(params, x, w)[0])
        stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape)
        state = self.init_state(model, stats, params, self.key)
        start = model.stats_from_params(params, blocks.total_weight())
        if start is None:
            return state
        start = jax.tree.map(lambda a, like: jnp.asarray(a, like.dtype), start, stats)
        return eqx.tree_at(lambda s: (s.stats, s.have_stats), state, (start, jnp.array(True)))

    def step(self, model, blocks, params, state):
        n = blocks.rows
        b = min(self.batch_size, n)
        key, sub = jax.random.split(state.key)
        order = jax.random.permutation(sub, n) if self.shuffle else jnp.arange(n)
        index, valid = _minibatch_index(order, b)
        dtype = blocks.weights.dtype
        elbo0 = jax.tree.map(lambda a: jnp.zeros((), dtype), ELBO.nan(dtype))
        prior = model.log_prior(params)

        def one(carry, batch):
            s, average, elbo = carry
            idx, ok = batch
            x, w = _take_rows(blocks, idx, ok)
            stats, e = minibatch_pass(model, s.iterate, x, w)
            scale = jnp.asarray(n, dtype) / jnp.sum(ok).astype(dtype)
            s, average = online_update(self, model, s, average, stats, scale)
            return (s, average, elbo + e), None

        (state, average, elbo), _ = jax.lax.scan(one, (state, params, elbo0), (index, valid))
        elbo = eqx.tree_at(lambda e: e.log_prior, elbo, prior)
        state = eqx.tree_at(lambda s: s.key, state, key)
        return elbo, average, state

    def fixed_point_solver(self):
        return EM()


# ---------------------------------------------------------------------------------------
# Incremental EM


class IncrementalState(eqx.Module):
    """The carry of `IncrementalEM` between passes."""

    iterate: Params  # θ, the current parameters
    batch_stats: Stats  # per-minibatch statistics, stacked (M, ...), each relative to its θ_i
    batch_params: Params  # the parameters each minibatch's statistics were computed at
    index: Int[Array, "M B"]  # the fixed partition of the rows into minibatches
    valid: Array


def incremental_total(model, batch_stats, batch_params, theta):
    """``S = Σ_i s_i`` with every ``s_i`` moved to ``θ`` (``rebase_stats``)."""
    moved = jax.vmap(lambda s, p: model.rebase_stats(s, p, theta))(batch_stats, batch_params)
    return jax.tree.map(lambda a: jnp.sum(a, axis=0) if _is_float(a) else a, moved)


def incremental_update(model, theta, total, old_stats, old_params, new_stats):
    """Swap one minibatch's statistics in the total (all at ``θ``) and take the M-step.
    Returns ``(new θ, new total relative to new θ)``."""
    old = model.rebase_stats(old_stats, old_params, theta)
    total = tree_axpby(jnp.array(1.0), tree_axpby(jnp.array(1.0), total, jnp.array(-1.0), old),
                       jnp.array(1.0), new_stats)
    new_theta = model.m_step(theta, total)
    return new_theta, model.rebase_stats(total, theta, new_theta)


class IncrementalEM(AbstractSolver):
    r"""Incremental EM (Neal & Hinton 1998): an M-step after every minibatch.

    The rows are split once into ``M`` minibatches (a random partition drawn from
    `emjax.fit`'s ``key``), and the solver keeps every minibatch's statistics ``s_i``
    with their total ``S = Σ_i s_i``. Visiting minibatch ``i``, it recomputes
    ``s_i ← E_{p(z_i | x_i, θ)}[t(x_i, z_i)]``, swaps it into the total,
    ``S ← S − s_i^{old} + s_i^{new}``, and takes the M-step ``θ ← θ̄(S)``. Each visit
    maximises the free energy ``F(q, θ) = E_q[log p(x, z | θ)] + H[q]`` over ``q_i`` and
    then over ``θ``, so ``F`` never decreases, while the parameters move ``M`` times per
    pass instead of once. The fixed points are EM's.

    The first pass over the data (in ``init``) computes every ``s_i`` at ``θ_0``. The
    total is recomputed from the stored ``s_i`` at the start of every pass, so rounding
    errors of the swaps do not accumulate. Memory: ``M`` copies of the statistics and of
    the parameters.

    One solver step is one pass (``M`` visits, in the same order every pass). The ELBO it
    reports is the sum of the minibatches' ELBOs at the parameters of their visit, plus
    the log-prior at the start of the pass; ``Solution.log_likelihood`` is computed
    exactly at the returned parameters.

    Args:
        batch_size: rows per minibatch; or
        num_batches: the number of minibatches (default 10 if neither is given).

    Raises:
        TypeError: (from ``check_model``) for a model without a closed-form M-step.
        ValueError: both or invalid sizes.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> sol = emjax.fit(emjax.GaussianMixture(2), X, key=jax.random.key(0),
        ...                 solver=emjax.IncrementalEM(num_batches=4))
        >>> bool(sol.converged)
        True

    References:
        R. M. Neal and G. E. Hinton, "A view of the EM algorithm that justifies
        incremental, sparse, and other variants", in Learning in Graphical Models (1998).
    """

    batch_size: int | None = eqx.field(default=None, static=True)
    num_batches: int | None = eqx.field(default=None, static=True)
    key: PRNGKeyArray | None = None

    tight_bound: ClassVar[bool] = False
    needs_key: ClassVar[bool] = True

    def __check_init__(self):
        if self.batch_size is not None and self.num_batches is not None:
            raise ValueError("Give `batch_size` or `num_batches`, not both.")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        if self.num_batches is not None:
            check_positive_int(self.num_batches, "num_batches")

    def with_key(self, key):
        return eqx.tree_at(lambda s: s.key, self, key, is_leaf=lambda x: x is None)

    def check_model(self, model):
        _check_model("IncrementalEM()", model)

    def rows_per_batch(self, n: int) -> int:
        if self.batch_size is not None:
            return min(self.batch_size, n)
        return math.ceil(n / min(self.num_batches or 10, n))

    def init(self, model, blocks, params):
        if self.key is None:
            raise ValueError("IncrementalEM needs a key: emjax.fit gives it one from its `key`.")
        n = blocks.rows
        index, valid = _minibatch_index(jax.random.permutation(self.key, n),
                                        self.rows_per_batch(n))

        def one(batch):
            x, w = _take_rows(blocks, *batch)
            return minibatch_pass(model, params, x, w)[0]

        stats = jax.lax.map(one, (index, valid))
        batch_params = jax.tree.map(lambda a: jnp.broadcast_to(a, (index.shape[0],) + a.shape),
                                    params)
        return IncrementalState(params, stats, batch_params, index, valid)

    def step(self, model, blocks, params, state):
        dtype = blocks.weights.dtype
        prior = model.log_prior(params)
        total = incremental_total(model, state.batch_stats, state.batch_params, params)
        elbo0 = jax.tree.map(lambda a: jnp.zeros((), dtype), ELBO.nan(dtype))

        def one(carry, batch):
            theta, total, elbo = carry
            idx, ok, old_stats, old_params = batch
            x, w = _take_rows(blocks, idx, ok)
            stats, e = minibatch_pass(model, theta, x, w)
            new_theta, total = incremental_update(model, theta, total, old_stats, old_params,
                                                  stats)
            return (new_theta, total, elbo + e), (stats, theta)

        (theta, _, elbo), (batch_stats, batch_params) = jax.lax.scan(
            one, (params, total, elbo0),
            (state.index, state.valid, state.batch_stats, state.batch_params),
        )
        elbo = eqx.tree_at(lambda e: e.log_prior, elbo, prior)
        return elbo, theta, IncrementalState(theta, batch_stats, batch_params, state.index,
                                             state.valid)

    def fixed_point_solver(self):
        return EM()
