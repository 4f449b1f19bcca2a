"""How gradients flow backwards through `emjax.fit`: the ``adjoint=`` option.

A fit is a map from the data ``x``, the model's array hyperparameters ``η`` (``reg_covar``,
``temperature``, prior strengths, ...) and the initial parameters ``θ_0`` to the fitted
parameters ``θ*`` and the ELBO there. Two ways to differentiate it:

- `Unrolled`: reverse-mode through the EM iterations actually taken, with a checkpoint per
  iteration, so that memory grows with the (small) parameters, not with the ``N × K``
  intermediates of each E-step. Exact for the truncated iteration, whether or not it has
  converged.
- `Implicit`: the implicit function theorem at the fixed point ``θ* = T(θ*; x, η)`` of the
  EM map ``T = M ∘ E``. Only the last iterate is linearised; memory and time do not depend
  on the number of forward iterations. Valid where the fit has converged.
"""

import abc
import dataclasses
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg, gmres

from ._accumulate import Blocks
from ._loop import run_scan, run_while
from ._mstep import GradientMStep
from ._solution import RESULTS
from ._solver import EM
from ._solver import _full_pass as full_pass

_ADJOINT_FAILED = (
    "emjax.fit(adjoint=emjax.Implicit()): the adjoint linear system (I − ∂T/∂θ)ᵀ u = v did "
    "not converge, so the gradient would be meaningless. The fitted parameters may sit near "
    "a degenerate point (e.g. two components merging, or one that is empty, where EM's "
    "Jacobian has an eigenvalue near 1); raise Implicit(max_steps=...), try "
    "linear_solver='gmres', or use adjoint=emjax.Unrolled()."
)
_NOT_CONVERGED = (
    "emjax.fit(adjoint=emjax.Implicit()): gradients were requested through a fit that did not "
    "converge (its result is not `converged`), so the implicit-function gradient at its last "
    "iterate would be meaningless. Raise max_steps, loosen rtol, use adjoint=emjax.Unrolled() "
    "to differentiate the iterations actually taken, or pass throw=False to get the "
    "approximate gradient anyway."
)


def _no_gradient(tree):
    """``stop_gradient`` on every array leaf of ``tree``, leaving other leaves alone."""
    return jax.tree.map(lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, tree)


class AbstractAdjoint(eqx.Module):
    """How `emjax.fit` runs the EM loop of each restart, and so how gradients flow through it.

    ``run`` returns ``(params, elbo, num_steps, result, trace)`` for one restart; the
    forward values are the same for every adjoint.
    """

    # Whether the loop length must be a compile-time constant (equal to max_steps + 1).
    static_length: ClassVar[bool]

    @abc.abstractmethod
    def run(self, model, solver, blocks: Blocks, params0, rtol, atol, max_steps, capacity: int,
            throw, progress=None):
        """The EM loop of one restart; ``throw`` is a traced boolean; ``progress`` is None or
        the traced number of a progress reporter (`emjax._progress`)."""


class Unrolled(AbstractAdjoint):
    r"""Differentiate through the EM iterations, one checkpoint per iteration.

    The forward loop runs as a ``lax.scan`` of ``max_steps + 1`` iterations with a
    done-mask: a restart that has converged (or hit a non-finite ELBO) is frozen exactly,
    so the gradient is that of the ``t`` iterations it actually took,
    ``∂θ_t/∂φ = Σ_s (Π_{r>s} ∂T/∂θ|_{θ_r}) ∂T/∂φ|_{θ_s}``, for any ``t`` (converged or not).
    Each iteration is wrapped in ``jax.checkpoint``: the backward pass stores only each
    iteration's carry (the parameters) and recomputes that iteration's E-step, so memory
    is ``O(max_steps · |θ| + one E-step)`` rather than ``O(max_steps · N · K)``, at the cost
    of about one extra E-step per iteration in the backward pass.

    Use it for a few EM steps as a layer inside a network, for fits that stop at
    ``max_steps`` on purpose, and for forward-mode derivatives (``jax.jvp``,
    ``jax.jacfwd``), which `Implicit` does not support.

    Cost of the forward pass: with one restart, iterations after convergence are skipped
    (``lax.cond``); with several restarts computed together (``vmap``), every restart runs
    all ``max_steps + 1`` iterations, the finished ones being discarded. Keep
    ``max_steps`` near the number of steps needed. Each value of ``max_steps`` compiles
    its own program.

    Parameters initialised by the model from ``key`` are treated as constants; pass
    ``params0`` to differentiate with respect to the initial parameters.

    Example:
        >>> import jax, emjax
        >>> X = jax.numpy.asarray(emjax.datasets.load_old_faithful())
        >>> km = emjax.KMeans(2, temperature=4.0)
        >>> p0 = km.make_params(centers=X[jax.numpy.array([0, 1])])
        >>> def loss(X):
        ...     sol = emjax.fit(km, X, params0=p0, solver=emjax.EM(), max_steps=5,
        ...                     adjoint=emjax.Unrolled())
        ...     return (sol.params.centers ** 2).sum()
        >>> jax.grad(loss)(X).shape
        (272, 2)
    """

    static_length: ClassVar[bool] = True

    def run(self, model, solver, blocks, params0, rtol, atol, max_steps, capacity, throw,
            progress=None):
        return run_scan(model, solver, blocks, params0, rtol, atol, max_steps, capacity,
                        progress)


class Implicit(AbstractAdjoint):
    r"""Differentiate the fixed point of EM by the implicit function theorem (the default).

    A converged fit satisfies ``θ* = T(θ*; φ)``, where ``T`` is one step of the solver
    (``T = M ∘ E`` for `emjax.EM`) and ``φ`` the data, sample weights and the model's
    array hyperparameters. Differentiating both sides gives
    ``∂θ*/∂φ = (I − ∂T/∂θ)⁻¹ ∂T/∂φ``. For a cotangent ``v`` of ``θ*`` (plus what flows
    through the ELBO at ``θ*``), the backward pass solves the adjoint system

        (I − ∂T/∂θ)ᵀ u = v,    then    φ̄ = (∂T/∂φ)ᵀ u

    with vector-Jacobian products of one EM step at ``θ*`` (Blondel et al. 2022). At a
    stable fixed point the spectral radius of ``∂T/∂θ`` is EM's rate of convergence
    (below 1), so the Neumann iteration ``u ← v + (∂T/∂θ)ᵀ u`` (``linear_solver="neumann"``)
    converges at EM's own rate; ``"gmres"`` uses restarted GMRES instead, which can be
    faster when EM is slow.

    With a gradient M-step (`emjax.GradientMStep`) there is no closed-form map ``T``, and
    each step also depends on the optimizer's state; the fixed points are then the
    stationary points of the penalised log-likelihood ``ℓ`` in the model's unconstrained
    coordinates ``ψ``, i.e. of ``ψ ↦ ψ + ∇ℓ(ψ)``, whose adjoint system is
    ``−∇²ℓ u = v``: symmetric and positive definite at a strict maximum, solved by
    conjugate gradients (``"cg"``) with Hessian-vector products. The forward pass is the ordinary while-loop, stopping at
    convergence; memory and time of the backward pass do not depend on the number of
    forward iterations. The initial parameters get zero gradient.

    The gradient is only meaningful at a fixed point: fit to a tight tolerance (the error
    of the gradient is of the order of the last step's change of ``θ``). If gradients
    flow back through a restart that did not converge, the backward pass raises (an
    equinox runtime error) when `emjax.fit` was called with ``throw=True``; with
    ``throw=False`` the approximate gradient is returned and ``Solution.result`` says
    the fit did not converge. An adjoint solve that does not converge raises likewise, or
    with ``throw=False`` gives NaN gradients. Only reverse mode (``jax.grad``,
    ``jax.vjp``) is supported; use `Unrolled` for forward mode.

    Args:
        linear_solver: "auto" (default: for closed-form M-steps, the Neumann iteration
            for up to 1,000 steps, then GMRES from there if it has not converged, which
            happens near degenerate fits where EM's rate is close to 1; for gradient
            M-steps, "cg"), "neumann", "neumann+gmres", "gmres" or "cg" (only for
            gradient M-steps, whose adjoint system is symmetric).
        rtol, atol: the adjoint solve stops when its update (Neumann) or residual (GMRES)
            is at most ``atol + rtol·‖u‖`` (max-norm over all parameters); ``rtol`` is
            raised to ``100·eps`` of the dtype (``1.2e-5`` in float32) if below it.
        max_steps: the most iterations of the adjoint solve (GMRES: of its restarts of
            20 Krylov vectors).

    Example:
        >>> import jax, emjax
        >>> X = jax.numpy.asarray(emjax.datasets.load_old_faithful())
        >>> gmm = emjax.GaussianMixture(2)
        >>> def loss(X):
        ...     sol = emjax.fit(gmm, X, key=jax.random.key(0), rtol=1e-10,
        ...                     adjoint=emjax.Implicit())
        ...     return sol.log_likelihood
        >>> jax.grad(loss)(X).shape
        (272, 2)

    References:
        M. Blondel et al., "Efficient and Modular Implicit Differentiation", NeurIPS 2022.
    """

    linear_solver: Literal["auto", "neumann", "neumann+gmres", "gmres", "cg"] = eqx.field(
        default="auto", static=True)
    rtol: float = eqx.field(default=1e-10, static=True)
    atol: float = eqx.field(default=0.0, static=True)
    max_steps: int = eqx.field(default=10_000, static=True)

    static_length: ClassVar[bool] = False

    def __check_init__(self):
        if self.linear_solver not in ("auto", "neumann", "neumann+gmres", "gmres", "cg"):
            raise ValueError(
                "`linear_solver` must be 'auto', 'neumann', 'neumann+gmres', 'gmres' or 'cg'; "
                f"got {self.linear_solver!r}."
            )
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"`{name}` must be a non-negative number; got {value!r}.")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"`max_steps` must be a positive integer; got {self.max_steps!r}.")

    def _resolved(self, automatic: str) -> "Implicit":
        if self.linear_solver != "auto":
            return self
        return dataclasses.replace(self, linear_solver=automatic)

    def run(self, model, solver, blocks, params0, rtol, atol, max_steps, capacity, throw,
            progress=None):
        params, elbo, steps, result, trace = run_while(
            _no_gradient(model), solver, _no_gradient(blocks), _no_gradient(params0),
            rtol, atol, max_steps, capacity, progress,
        )

        converged = result == RESULTS.converged
        if isinstance(solver, EM) and isinstance(solver.m_step, GradientMStep):
            # A gradient M-step has no closed-form map to linearise, and its optimizer state
            # makes each step depend on more than θ. Its fixed points are the stationary
            # points of the penalised log-likelihood ℓ in the unconstrained coordinates ψ,
            # i.e. the fixed points of ψ ↦ ψ + ∇ℓ(ψ), for which I − ∂T/∂ψ = −∇²ℓ is
            # symmetric (positive definite at a strict maximum): conjugate gradients.
            adjoint = self._resolved("cg")
            psi, elbo = _fixed_point((model.unconstrain(params), elbo, (model, blocks)),
                                     _stationarity_map, adjoint, converged, throw)
            return model.constrain(psi), elbo, steps, result, trace

        fixed_point_solver = solver.fixed_point_solver()

        def em_map(theta, phi):
            m, b = phi
            elbo_at, new_theta, _ = fixed_point_solver.step(
                m, b, theta, fixed_point_solver.init(m, b, theta))
            return new_theta, elbo_at

        adjoint = self._resolved("neumann+gmres")
        if adjoint.linear_solver == "cg":
            raise ValueError(
                "Implicit(linear_solver='cg') needs a symmetric adjoint system, which only a "
                "gradient M-step gives (emjax.GradientMStep); EM's map is not symmetric: use "
                "'auto', 'neumann', 'neumann+gmres' or 'gmres'."
            )
        params, elbo = _fixed_point((params, elbo, (model, blocks)), em_map, adjoint, converged,
                                    throw)
        return params, elbo, steps, result, trace


def _stationarity_map(psi, phi):
    """``ψ ↦ ψ + ∇ψ ℓ`` with ``ℓ(ψ)`` the ELBO (= penalised log-likelihood, since the E-step
    is exact) at ``θ = constrain(ψ)``; also returns that ELBO."""
    model, blocks = phi

    def ell(psi):
        elbo = full_pass(model.e_step, model, blocks, model.constrain(psi))[1]
        return elbo.total, elbo

    grad, elbo = jax.grad(ell, has_aux=True)(psi)
    return jax.tree.map(jnp.add, psi, grad), elbo


def _max_norm(tree):
    leaves = [jnp.max(jnp.abs(x), initial=0.0) for x in jax.tree.leaves(tree)]
    return jnp.max(jnp.stack(leaves)) if leaves else jnp.array(0.0)


def _solve_adjoint(apply_jt, v, adjoint: Implicit):
    """Solve ``u − Jᵀu = v`` for ``u``; also say whether the solve converged.

    "neumann+gmres" (what "auto" means for closed-form M-steps) runs the Neumann iteration
    for at most 1,000 steps and, if it has not converged (EM's rate near 1 at a nearly
    degenerate fit, where the gradient can still be well defined), continues from there
    with GMRES.
    """
    sub = lambda a, b: jax.tree.map(jnp.subtract, a, b)  # noqa: E731
    add = lambda a, b: jax.tree.map(jnp.add, a, b)  # noqa: E731
    operator = lambda u: sub(u, apply_jt(u))  # noqa: E731

    # In float32 the products Jᵀu carry rounding errors of order eps·‖u‖; no solve gets below.
    rtol = max(adjoint.rtol, 100 * float(jnp.finfo(_max_norm(v).dtype).eps))

    def tolerance(u):
        return adjoint.atol + rtol * _max_norm(u)

    def krylov(method, x0):
        u, _ = method(operator, v, x0=x0, tol=rtol, atol=adjoint.atol, maxiter=adjoint.max_steps)
        residual = _max_norm(sub(operator(u), v))
        return u, residual <= 10 * (tolerance(u) + rtol * _max_norm(v))

    def neumann(max_steps):
        def cond(carry):
            u, change, k = carry
            return (k < max_steps) & (change > tolerance(u)) & jnp.isfinite(change)

        def body(carry):
            u, _, k = carry
            new = add(v, apply_jt(u))
            return new, _max_norm(sub(new, u)), k + 1

        inf = jnp.array(jnp.inf, _max_norm(v).dtype)
        u, change, _ = jax.lax.while_loop(cond, body, (v, inf, jnp.array(0)))
        return u, change <= tolerance(u)

    kind = adjoint.linear_solver
    if kind == "cg":
        u, ok = krylov(cg, None)
    elif kind == "gmres":
        u, ok = krylov(gmres, None)
    elif kind == "neumann":
        u, ok = neumann(adjoint.max_steps)
    else:  # "neumann+gmres"
        u, ok = neumann(min(adjoint.max_steps, 1000))
        start = jax.tree.map(lambda a, b: jnp.where(jnp.isfinite(_max_norm(u)), a, b), u, v)
        u, ok = jax.lax.cond(ok, lambda: (u, ok), lambda: krylov(gmres, start))
    return u, ok & jnp.isfinite(_max_norm(u))


@eqx.filter_custom_vjp
def _fixed_point(inputs, fn, adjoint, converged, throw):
    """The identity on ``(θ*, ELBO(θ*))``, whose backward pass is the implicit function
    theorem for ``θ* = fn(θ*, φ)[0]`` with ``ELBO(θ*) = fn(θ*, φ)[1]``; ``inputs`` is
    ``(θ*, ELBO, φ)``."""
    theta, elbo, _ = inputs
    return theta, elbo


@_fixed_point.def_fwd
def _fixed_point_fwd(perturbed, inputs, fn, adjoint, converged, throw):
    theta, elbo, _ = inputs
    return (theta, elbo), None


@_fixed_point.def_bwd
def _fixed_point_bwd(residuals, grad_obj, perturbed, inputs, fn, adjoint, converged, throw):
    theta, elbo, phi = inputs
    # Cotangents of the outputs; None (not differentiated) means zero.
    theta_bar, elbo_bar = jax.tree.map(
        lambda g, p: jnp.zeros_like(p) if g is None else g,
        grad_obj, (theta, elbo), is_leaf=lambda g: g is None,
    )
    if getattr(phi[1], "axis_name", None) is not None:  # phi = (model, blocks)
        raise NotImplementedError(
            "Gradients through emjax.fit(..., mesh=...) with the Implicit adjoint are not "
            "supported yet (JAX's Krylov solvers do not keep the parameters replicated "
            "inside shard_map): pass adjoint=emjax.Unrolled(), or fit without mesh=."
        )
    theta_d, theta_s = eqx.partition(theta, eqx.is_inexact_array)
    phi_d, phi_s = eqx.partition(phi, perturbed[2])
    theta_bar = eqx.filter(theta_bar, eqx.is_inexact_array)

    def t_map(th_d, ph_d):
        new, elbo_at = fn(eqx.combine(th_d, theta_s), eqx.combine(ph_d, phi_s))
        return eqx.filter(new, eqx.is_inexact_array), elbo_at

    _, vjp = jax.vjp(t_map, theta_d, phi_d)
    zero_theta = jax.tree.map(jnp.zeros_like, theta_d)
    zero_elbo = jax.tree.map(jnp.zeros_like, elbo_bar)
    # v = θ̄ + (∂ELBO/∂θ)ᵀ ē: what reaches θ* directly and through the ELBO at θ*.
    v = jax.tree.map(jnp.add, theta_bar, vjp((zero_theta, elbo_bar))[0])
    u, ok = _solve_adjoint(lambda u: vjp((u, zero_elbo))[0], v, adjoint)
    _, phi_bar = vjp((u, elbo_bar))

    needed = _max_norm(v) > 0  # a restart whose result is not used gets a zero cotangent
    if_throw = jnp.asarray(throw)
    phi_bar = eqx.error_if(phi_bar, if_throw & needed & ~converged, _NOT_CONVERGED)
    phi_bar = eqx.error_if(phi_bar, if_throw & needed & ~ok, _ADJOINT_FAILED)
    phi_bar = jax.tree.map(lambda g: jnp.where(ok, g, jnp.nan), phi_bar)
    no_grad = lambda tree: jax.tree.map(lambda _: None, tree)  # noqa: E731
    return no_grad(theta), no_grad(elbo), phi_bar
