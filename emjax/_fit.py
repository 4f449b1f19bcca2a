"""`emjax.fit`: the whole EM loop, every restart, as one jitted program."""

import math
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _mesh, _progress
from ._accumulate import default_block_size, make_blocks
from ._adjoint import AbstractAdjoint, Implicit
from ._custom_types import Array, Float, Params, PRNGKeyArray
from ._loop import run_while as _run_one  # noqa: F401  (GaussianMixture's k-means init uses it)
from ._model import AbstractEMModel
from ._solution import RESULTS, ConvergenceWarning, NonFiniteError, Solution
from ._solver import AbstractSolver
from ._validation import (
    check_key,
    check_nonnegative_scalar,
    check_positive_int,
    check_sample_weight,
    is_traced,
)

MAX_STEPS_LIMIT = 1_000_000
_PROGRESS_INTERVAL = 0.5  # seconds between two progress reports
_NONFINITE = (
    "emjax.fit: no restart produced finite parameters and ELBO. "
    + RESULTS[RESULTS.nonfinite]
    + " Pass throw=False to inspect the partial result."
)

# Incremented each time `_fit_impl` is traced; the tests use it to check for retraces.
trace_count = 0


def _trace_capacity(max_steps: int) -> int:
    """Trace buffer length: a power of two >= ``max_steps + 1``, so that nearby values of
    ``max_steps`` share one compiled program."""
    return max(16, 1 << max_steps.bit_length())


def _broadcast_params(params, num_restarts: int):
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (num_restarts,) + jnp.shape(a)), params)


@eqx.filter_jit
def _fit_impl(
    model: AbstractEMModel,
    solver: AbstractSolver,
    data,
    weights: Float[Array, " N"],
    key: PRNGKeyArray | None,
    params0: Params | None,
    params0_batched: bool,
    num_restarts: int,
    max_steps,
    capacity: int,
    rtol,
    atol,
    block_size: int,
    restart_batch_size: int | None,
    adjoint: AbstractAdjoint,
    throw,
    mesh=None,
    data_axis: str | None = None,
    num_points: int | None = None,
    progress=None,
) -> Solution:
    global trace_count
    trace_count += 1

    if mesh is None:
        blocks = init_blocks = make_blocks(data, weights, block_size)
    else:
        # Rows sharded over the mesh (padded to a multiple of its devices by `fit`, or here
        # when traced). The initialisation sees the whole data set, cut into blocks exactly
        # as without a mesh, so that a key gives the same initial parameters either way;
        # the rows are gathered on every device for it (see docs/developer/design.md).
        data, weights = _pad_rows(data, weights, _mesh.num_shards(mesh, data_axis))
        blocks = None
        if params0 is None:
            everywhere = _mesh.replicated(mesh)
            head = lambda a: jax.lax.with_sharding_constraint(a[:num_points], everywhere)  # noqa: E731
            init_blocks = make_blocks(jax.tree.map(head, data), head(weights), block_size)
    if params0 is None:
        # Initialisation from the data (k-means++, Lloyd, ...) is not differentiated: pass
        # `params0` to differentiate with respect to the initial parameters.
        keys = jax.random.split(key, num_restarts)
        init = jax.vmap(lambda k: model.init_params(jax.lax.stop_gradient(init_blocks), key=k))(keys)
    elif params0_batched:
        init = params0
    else:
        init = _broadcast_params(params0, num_restarts)

    if solver.needs_key:
        # The solver's own randomness (minibatch order) is independent of the initialisation.
        solver_keys = jax.random.split(jax.random.fold_in(key, 1), num_restarts)
    else:
        solver_keys = jnp.zeros((num_restarts,), jnp.uint32)  # unused

    args = (model, solver, init, solver_keys, rtol, atol, max_steps, throw)
    static = (num_restarts, restart_batch_size, capacity, adjoint)
    if mesh is None:
        return _solve(blocks, data, weights, *args, *static, progress)

    def on_each_device(rows, args):
        # This device's contiguous share of the rows, as blocks whose passes psum over the
        # data axis: everything computed from them is the same on every device.
        local_data, local_weights = rows
        local_blocks = make_blocks(local_data, local_weights,
                                   min(block_size, local_weights.shape[0]), axis_name=data_axis)
        return _solve(local_blocks, local_data, local_weights, *args, *static)

    return _mesh.shard_rows(on_each_device, mesh, data_axis, (data, weights), args)


def _solve(blocks, data, weights, model, solver, init, solver_keys, rtol, atol, max_steps, throw,
           num_restarts, restart_batch_size, capacity, adjoint, progress=None) -> Solution:
    """Every restart's EM loop from ``init`` on ``blocks``, and the `Solution` (the best
    restart and every restart's outcome). ``data`` and ``weights`` are the rows of
    ``blocks`` (for the final log-likelihood of solvers whose bound is not tight)."""

    def run(p_and_key):
        p, k = p_and_key
        s = solver.with_key(k) if solver.needs_key else solver
        return adjoint.run(model, s, blocks, p, rtol, atol, max_steps, capacity, throw, progress)

    both = (init, solver_keys)
    if num_restarts == 1:
        # No vmap for a single restart: XLA's CPU code for some batched contractions is
        # several times slower (measured: a float32 diagonal-covariance step, 0.13 s
        # batched vs 0.04 s unbatched, N=100,000, D=K=16).
        out = jax.tree.map(lambda a: a[None], run(jax.tree.map(lambda a: a[0], both)))
    elif restart_batch_size == 1:
        out = jax.lax.map(run, both)  # one restart after another, unbatched
    elif restart_batch_size is None or restart_batch_size >= num_restarts:
        out = jax.vmap(run)(both)
    else:
        out = jax.lax.map(run, both, batch_size=restart_batch_size)
    all_params, all_elbo, all_steps, all_results, all_traces = out

    totals = all_elbo.total
    usable = jnp.isfinite(totals)
    ok = usable & (all_results != RESULTS.nonfinite)
    score = jnp.where(jnp.any(ok), jnp.where(ok, totals, -jnp.inf), jnp.where(usable, totals, -jnp.inf))
    best = jnp.argmax(score)
    pick = lambda tree: jax.tree.map(lambda a: a[best], tree)  # noqa: E731
    params = pick(all_params)
    result = pick(all_results)
    elbo = pick(all_elbo)
    if solver.tight_bound:
        # The exact E-step makes the bound tight: the ELBO is the log-likelihood.
        log_likelihood = elbo.total - elbo.log_prior
    else:
        log_likelihood = model.log_likelihood(params, data, weights)
        if blocks.axis_name is not None:
            log_likelihood = jax.lax.psum(log_likelihood, blocks.axis_name)
    solution = Solution(
        params=params,
        log_likelihood=log_likelihood,
        elbo=elbo,
        elbo_trace=all_traces[best],
        num_steps=all_steps[best],
        result=result,
        best_restart=best,
        restart_params=all_params,
        restart_elbos=totals,
        restart_results=all_results,
        restart_num_steps=all_steps,
        restart_elbo_traces=all_traces,
    )
    # No error check in here: a host callback (eqx.error_if) would keep this program out of
    # JAX's persistent compilation cache. `fit` checks the result instead.
    return solution


def _pad_rows(data, weights, multiple: int):
    """Rows of weight 0 (repeating the last row) up to a multiple of ``multiple`` rows."""
    pad = -weights.shape[0] % multiple
    if not pad:
        return data, weights
    extend = lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])  # noqa: E731
    return jax.tree.map(extend, data), jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)])


def _data_shape(data):
    """Rows, values per row and the computation dtype: that of the first floating leaf, or
    JAX's default float for data that are all integers (symbols, counts)."""
    leaves = jax.tree.leaves(data)
    leaf = leaves[0]
    floats = [a.dtype for a in leaves if jnp.issubdtype(a.dtype, jnp.floating)]
    dtype = floats[0] if floats else jnp.result_type(float)
    return leaf.shape[0], math.prod(leaf.shape[1:]) or 1, dtype


def fit(
    model: AbstractEMModel,
    data,
    *,
    key: PRNGKeyArray | None = None,
    num_restarts: int = 1,
    params0: Params | None = None,
    sample_weight=None,
    solver: AbstractSolver | None = None,
    max_steps: int = 200,
    rtol: float = 1e-5,
    atol: float = 0.0,
    throw: bool = True,
    block_size: int | None = None,
    restart_batch_size: int | None = None,
    adjoint: AbstractAdjoint | None = None,
    mesh=None,
    data_axis: str = "data",
    progress=None,
) -> Solution:
    r"""Fit ``model`` to ``data`` by an EM-type solver, with restarts, in one jitted program.

    Each restart iterates ``θ_{t+1} = solver.step(θ_t)`` (for `emjax.EM`: the E-step
    computes the expected sufficient statistics under ``q(z) = p(z | x, θ_t)``, the
    M-step maximises the expected complete-data log-likelihood) until the ELBO
    ``L_t = E_q[log p(x, z | θ_t)] + H[q] + log p(θ_t)`` changes by at most
    ``atol + rtol·|L_t|`` in one step (the criterion of scikit-learn and mclust), or until
    ``max_steps`` updates. The loop runs on device (``lax.while_loop``); restarts are
    ``vmap``-ed, and a converged restart is frozen while the others go on. The restart with
    the highest final ELBO is returned, together with every restart's outcome.

    Every pass over the data is a ``lax.scan`` over blocks of ``block_size`` rows, adding up
    the blocks' statistics, so memory is bounded by one block's intermediates.

    The same ``key`` gives the same result. Computation follows the data's dtype: float32
    by default, float64 when ``jax_enable_x64`` is on and the data are float64.

    Args:
        model: the model, e.g. `emjax.GaussianMixture` or `emjax.KMeans`.
        data: the data, e.g. an ``(N, D)`` array for a mixture.
        key: a JAX PRNG key (``jax.random.key(0)``), required unless ``params0`` is given.
            Restart ``r`` is initialised with ``jax.random.split(key, num_restarts)[r]``.
        num_restarts: number of random restarts, run in parallel by ``vmap``.
        params0: initial parameters instead of the model's initialisation: one set (used
            by every restart) or a batch with a leading restart axis (then
            ``num_restarts`` is that axis' size).
        sample_weight: optional non-negative weights, shape ``(N,)``; every statistic and
            the ELBO are weighted sums, so a weight of 2 equals a duplicated row.
        solver: `emjax.EM` (default for most models), `emjax.HardEM` (default for
            `emjax.KMeans`), `emjax.SQUAREM` (accelerated EM), `emjax.OnlineEM`
            (stochastic EM on minibatches) or `emjax.IncrementalEM`. The last two draw
            their minibatches from ``key`` (a key of their own per restart), so they need
            ``key`` even with ``params0``.
        max_steps: the most parameter updates per restart (``>= 0``).
        rtol, atol: convergence tolerances on the change of the ELBO (``>= 0``).
        throw: if True, raise `emjax.NonFiniteError` when no restart produced finite
            parameters (inside a user's ``jax.jit``, an equinox runtime error). Reaching
            ``max_steps`` is not an error: it is reported in ``result`` and, outside
            ``jax.jit``, by a `emjax.ConvergenceWarning` (not for ``max_steps=0``, which
            asks for the initial parameters); but with the `emjax.Implicit`
            adjoint, differentiating through a fit that did not converge raises in the
            backward pass (with ``throw=False`` the approximate gradient is returned).
        block_size: rows per block of a pass over the data. The default,
            ``clamp(2^18 // (P · model.row_cost(data)), 16, N)`` with ``P`` restarts computed
            at once, keeps one block's intermediates around 2 MiB (in cache on a CPU).
        restart_batch_size: run the restarts in sequential chunks of this many (each chunk
            vmapped) to bound memory with very many restarts; 1 runs them one after
            another without ``vmap``; default: all at once.
        adjoint: how gradients flow backwards through the fit (``jax.grad`` with respect
            to the data, ``sample_weight``, ``params0`` or the model's array
            hyperparameters): `emjax.Implicit` (the default: the implicit function theorem
            at the converged fixed point; the forward loop stops at convergence) or
            `emjax.Unrolled` (reverse mode through the iterations taken, checkpointed per
            iteration). See their documentation for cost and validity.
        mesh: a ``jax.sharding.Mesh`` to fit data-parallel over its devices (and
            processes, after ``jax.distributed.initialize``): the rows are sharded along
            the axis ``data_axis``, each device runs the E-step on its contiguous share,
            and every pass adds the devices' statistics with ``lax.psum``
            (``s = Σ_devices Σ_{n in share} w_n s(x_n)``), so that the M-step, run on every
            device, gives the same replicated parameters. Rows are padded with weight-0
            rows to a multiple of the number of devices, so any ``N`` works. The result is
            the same as without ``mesh`` up to the order of floating-point sums.
            ``data`` (and ``sample_weight``) may be host arrays that are the same on every
            process, or global ``jax.Array``s whose rows are spread over the processes
            (``jax.make_array_from_process_local_data(NamedSharding(mesh,
            PartitionSpec(data_axis)), local_rows)``, ``N`` a multiple of the number of
            devices). The initialisation from ``key`` runs once on the whole data set
            (gathered on every device) and gives the same initial parameters as without
            ``mesh``; pass ``params0`` to skip it for data too large for one device. The
            `Solution` holds ordinary arrays, the same on every process. ``block_size``
            then applies to each device's share. Gradients through a fit on a mesh need
            ``adjoint=emjax.Unrolled()`` for now. Supported solvers: `emjax.EM`,
            `emjax.HardEM`, `emjax.SQUAREM` (not yet the minibatch solvers
            `emjax.OnlineEM` and `emjax.IncrementalEM`). Gradients through a mesh fit
            need ``adjoint=emjax.Unrolled()`` (`emjax.Implicit` raises
            ``NotImplementedError`` there). See ``docs/scaling.md`` for how to launch a
            multi-process fit.
        data_axis: the name of the mesh axis along which the rows are sharded (default
            ``"data"``); other mesh axes, if any, hold replicas.
        progress: None, or a function ``progress(info)`` called on the host while the
            compiled loop runs, at most every 0.5 s and once at the end (``info["final"]``
            True), with ``info`` a dict: ``step`` (the furthest restart's step), ``elbo``
            (the best finite ELBO so far), ``num_converged``, ``num_running``,
            ``num_restarts``, ``elapsed`` (seconds). `emjax.print_progress` prints one line
            per report. Each iteration then makes one host call (for all restarts of a
            ``vmap``-ed batch together; about 0.5 ms on a CPU, measurable on small fits);
            with ``restart_batch_size`` the figures are those of the running batch. Only for a call of `fit` outside ``jit``/``vmap``, and not
            with ``mesh``. An exception raised by ``progress`` is raised again when the fit
            ends.

    Returns:
        A `Solution`: ``params``, ``log_likelihood``, ``elbo`` (parts), ``elbo_trace``,
        ``num_steps``, ``result`` and every restart's outcome.

    Raises:
        NonFiniteError: with ``throw=True``, when no restart produced finite parameters.
        TypeError: a model or solver of the wrong kind, non-numeric data, or a ``mesh``
            that is not a ``jax.sharding.Mesh``.
        ValueError: data or options that cannot work (NaN or infinite values, wrong number
            of dimensions, fewer points than components, bad sample weights, a missing
            ``key``, a ``data_axis`` that the mesh does not have, a solver not supported
            with ``mesh``, global arrays not sharded by rows over the mesh, ...), before
            any compute.

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> model = emjax.GaussianMixture(num_components=2)
        >>> sol = emjax.fit(model, X, key=jax.random.key(0), num_restarts=8)
        >>> sol.params.means.shape
        (2, 2)
        >>> bool(sol.converged)
        True

        Data-parallel over every device (here the CPU devices of one process; start
        Python with ``JAX_NUM_CPU_DEVICES=4`` to get four):

        >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
        >>> par = emjax.fit(model, X, key=jax.random.key(0), num_restarts=8, mesh=mesh)
        >>> bool(abs(par.log_likelihood - sol.log_likelihood) < 1e-3 * abs(sol.log_likelihood))
        True
    """
    if not isinstance(model, AbstractEMModel):
        raise TypeError(
            f"`model` must be an emjax model (e.g. emjax.GaussianMixture); got {type(model).__name__}."
        )
    if solver is None:
        solver = model.default_solver()
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"`solver` must be an emjax solver (e.g. emjax.EM()); got {solver!r}.")
    solver.check_model(model)
    if mesh is not None:
        _mesh.check_mesh(mesh, data_axis)
        if solver.needs_key:
            raise ValueError(
                f"{type(solver).__name__} is not supported with mesh= yet: it draws random "
                "minibatches of rows, and each device would draw from its own share. Fit with "
                "emjax.EM(), emjax.HardEM() or emjax.SQUAREM(), or without mesh=."
            )
    spread = mesh is not None and any(_mesh.is_global(a) for a in jax.tree.leaves(data))
    if spread:
        data = _mesh.check_global_data(model, data, mesh, data_axis)
    else:
        data = model.check_data(data)
    num_points, _, dtype = _data_shape(data)
    if mesh is None:
        weights = check_sample_weight(sample_weight, num_points, dtype)
    elif spread and sample_weight is None:
        weights = _mesh.global_ones(num_points, dtype, mesh, data_axis)
    else:
        weights = _mesh.check_weights(sample_weight, num_points, dtype, mesh, data_axis)
    num_restarts = check_positive_int(num_restarts, "num_restarts")
    max_steps = check_positive_int(max_steps, "max_steps", minimum=0)
    if max_steps > MAX_STEPS_LIMIT:
        raise ValueError(
            f"`max_steps` must be <= {MAX_STEPS_LIMIT:,} (the ELBO trace keeps one value per "
            f"step and restart); got {max_steps:,}."
        )
    rtol = check_nonnegative_scalar(rtol, "rtol").astype(dtype)
    atol = check_nonnegative_scalar(atol, "atol").astype(dtype)
    if not isinstance(throw, bool):
        raise TypeError(f"`throw` must be True or False; got {throw!r}.")
    if restart_batch_size is not None:
        restart_batch_size = check_positive_int(restart_batch_size, "restart_batch_size")
    if progress is not None:
        if not callable(progress):
            raise TypeError(
                f"`progress` must be a function taking one dict (e.g. emjax.print_progress), "
                f"or None; got {progress!r}."
            )
        if mesh is not None:
            raise ValueError("`progress` is not supported together with `mesh` yet.")
        if any(is_traced(a) for a in jax.tree.leaves((data, weights, key, params0))):
            raise ValueError(
                "`progress` needs emjax.fit to be called outside jit/vmap/grad: the host "
                "cannot follow a fit that is part of a larger traced program."
            )

    batched = False
    if params0 is not None:
        params0, size = model.check_params(params0, data)
        if size is not None:
            if num_restarts not in (1, size):
                raise ValueError(
                    f"`params0` holds a batch of {size} initial parameter sets but "
                    f"num_restarts={num_restarts}; pass num_restarts={size} or leave it at 1."
                )
            num_restarts, batched = size, True
    elif key is None:
        raise ValueError(
            "`key` is required to initialise the parameters, e.g. key=jax.random.key(0) "
            "(or pass `params0`)."
        )
    if key is None and solver.needs_key:
        raise ValueError(
            f"`key` is required by {type(solver).__name__}, which draws random minibatches: "
            "pass key=jax.random.key(0)."
        )
    if key is not None:
        key = check_key(key)

    parallel = min(num_restarts, restart_batch_size or num_restarts)
    if block_size is None:
        block_size = default_block_size(num_points, model.row_cost(data), parallel)
    else:
        block_size = min(check_positive_int(block_size, "block_size"), num_points)

    if adjoint is None:
        adjoint = Implicit()
    if not isinstance(adjoint, AbstractAdjoint):
        raise TypeError(
            f"`adjoint` must be emjax.Implicit() or emjax.Unrolled(); got {adjoint!r}."
        )
    # Unrolled's scan needs its length at compile time; the while-loop shares one program
    # across nearby max_steps.
    capacity = max_steps + 1 if adjoint.static_length else _trace_capacity(max_steps)
    mesh_options = {}
    if mesh is not None:
        mesh = _mesh.auto_mesh(mesh)
        if not any(is_traced(a) for a in jax.tree.leaves((data, weights))):
            data, weights = _mesh.place_rows(data, weights, mesh, data_axis)
        model, solver, key, params0 = _mesh.release((model, solver, key, params0))
        mesh_options = dict(mesh=mesh, data_axis=data_axis, num_points=num_points)
    if progress is not None:
        rid = _progress.register(progress, num_restarts, _PROGRESS_INTERVAL)
        mesh_options["progress"] = jnp.asarray(rid, jnp.int32)
    try:
        solution = _fit_impl(
            model, solver, data, weights, key, params0, batched, num_restarts,
            jnp.asarray(max_steps, jnp.int32), capacity, rtol, atol, block_size,
            restart_batch_size, adjoint, jnp.asarray(throw), **mesh_options,
        )
        if progress is not None:
            jax.block_until_ready(solution)  # every report is in before the final one
    finally:
        if progress is not None:
            _progress.finish(rid)
    if mesh is not None:
        solution = _mesh.local_copy(solution)
    # Show the trace up to max_steps (the buffer is longer so that programs are shared).
    solution = eqx.tree_at(
        lambda s: (s.elbo_trace, s.restart_elbo_traces),
        solution,
        (solution.elbo_trace[: max_steps + 1], solution.restart_elbo_traces[:, : max_steps + 1]),
    )
    result = solution.result._value
    if is_traced(result):
        # Inside the user's jit/vmap: raise at run time through the compiled program.
        if throw:
            solution = eqx.error_if(solution, solution.result == RESULTS.nonfinite, _NONFINITE)
    elif int(result) == int(RESULTS.nonfinite._value) and throw:
        raise NonFiniteError(_NONFINITE)
    elif int(result) == int(RESULTS.max_steps_reached._value) and max_steps > 0:
        # (max_steps=0 asks for the initial parameters only: nothing to warn about)
        warnings.warn(
            f"emjax.fit: the best restart did not converge in max_steps={max_steps} steps. "
            + RESULTS[RESULTS.max_steps_reached],
            ConvergenceWarning,
            stacklevel=2,
        )
    return solution
