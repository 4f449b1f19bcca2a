"""Gradients through `emjax.fit`: the `Unrolled` and `Implicit` adjoints (float64).

Both adjoints are checked against each other and against central finite differences of
the fit itself, with respect to the data, the sample weights and the model's array
hyperparameters; the unrolled adjoint's done-mask is checked to be exact for restarts
that stop early (alone and under vmap); the envelope theorem gives an independent check
of the implicit gradient of the log-likelihood; and the memory of the unrolled gradient is
checked not to grow with the number of steps.
"""

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax

STEPS = 300  # enough for these well-separated blobs to converge to machine precision


def _blobs(seed=0, n=30):
    rng = np.random.default_rng(seed)
    centres = ([0.0, 0.0], [7.0, 2.0], [2.0, 8.0])
    return jnp.asarray(np.concatenate([rng.normal(size=(n, 2)) * s + c
                                       for s, c in zip((0.7, 1.0, 1.3), centres, strict=True)]))


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    model: Any
    solver: Any
    hyper: str  # the array hyperparameter to differentiate

    def __str__(self):
        return self.name


CASES = [
    Case("gmm-full", emjax.GaussianMixture(3, reg_covar=1e-2), emjax.EM(), "reg_covar"),
    Case("gmm-diag", emjax.GaussianMixture(3, covariance_type="diag", reg_covar=0.0), emjax.EM(),
         "reg_covar"),
    Case("soft-kmeans", emjax.KMeans(3, temperature=1.0), emjax.EM(), "temperature"),
]


@pytest.fixture(scope="module")
def X():
    return _blobs()


def _params0(case, X):
    return emjax.fit(case.model, X, key=jax.random.key(0), solver=case.solver, max_steps=0,
                     throw=False).params


def _summary(model, sol):
    """A scalar that depends on every fitted parameter and on the log-likelihood."""
    leaves = jax.tree.leaves(sol.params)
    return sol.log_likelihood + sum(jnp.sum(jnp.sin(leaf)) for leaf in leaves)


def _loss(case, params0, adjoint):
    def loss(X, w, h):
        model = eqx.tree_at(lambda m: getattr(m, case.hyper), case.model, h)
        sol = emjax.fit(model, X, params0=params0, sample_weight=w, solver=case.solver,
                        max_steps=STEPS, rtol=0.0, adjoint=adjoint)
        return _summary(model, sol)

    return loss


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_both_adjoints_agree_with_finite_differences(case, X):
    params0 = _params0(case, X)
    w = jnp.ones(X.shape[0])
    h = getattr(case.model, case.hyper)
    grads = {}
    for adjoint in (emjax.Implicit(), emjax.Unrolled()):
        grads[type(adjoint).__name__] = jax.grad(_loss(case, params0, adjoint), argnums=(0, 1, 2))(X, w, h)

    loss = jax.jit(_loss(case, params0, emjax.Implicit()))
    rng = np.random.default_rng(1)
    directions = (jnp.asarray(rng.normal(size=X.shape)), jnp.asarray(rng.uniform(-1, 1, size=w.shape)),
                  jnp.ones_like(h))
    eps = 1e-5
    for i, d in enumerate(directions):
        shift = [jnp.zeros_like(a) for a in (X, w, h)]
        shift[i] = eps * d
        plus = loss(X + shift[0], w + shift[1], h + shift[2])
        minus = loss(X - shift[0], w - shift[1], h - shift[2])
        fd = (plus - minus) / (2 * eps)
        for name, g in grads.items():
            directional = jnp.vdot(g[i], d)
            assert _rel(directional, fd) <= 1e-6, (case.name, name, i, float(directional), float(fd))
        assert _rel(jnp.vdot(grads["Implicit"][i], d), jnp.vdot(grads["Unrolled"][i], d)) <= 1e-6


@pytest.mark.slow  # the GMRES path also runs in the fallback test below
def test_implicit_gmres_equals_neumann(X):
    case = CASES[1]
    params0 = _params0(case, X)
    w = jnp.ones(X.shape[0])
    h = case.model.reg_covar
    a = jax.grad(_loss(case, params0, emjax.Implicit()))(X, w, h)
    b = jax.grad(_loss(case, params0, emjax.Implicit(linear_solver="gmres")))(X, w, h)
    np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9)


def test_implicit_log_likelihood_gradient_obeys_the_envelope_theorem(X):
    """At a maximum-likelihood fit (reg_covar = 0), d log p(X | θ*(X)) / dX equals the partial
    derivative at fixed θ*, since ∂ log p / ∂θ = 0 there."""
    case = CASES[1]
    params0 = _params0(case, X)

    def fitted_ll(X):
        return emjax.fit(case.model, X, params0=params0, max_steps=STEPS, rtol=0.0).log_likelihood

    g = jax.grad(fitted_ll)(X)
    theta = emjax.fit(case.model, X, params0=params0, max_steps=STEPS, rtol=0.0).params
    partial = jax.grad(lambda X: case.model.log_likelihood(theta, X))(X)
    np.testing.assert_allclose(g, partial, rtol=1e-7, atol=1e-9)


@pytest.mark.slow  # suite time budget; runs with -m slow
def test_unrolled_done_mask_is_exact_alone_and_under_vmap(X):
    """A restart that stops early has the gradient of the steps it took: the same as a fit
    stopped there by max_steps, whether it runs alone (skipped iterations) or batched with
    slower restarts (masked iterations)."""
    model = CASES[1].model
    starts = emjax.fit(model, X, key=jax.random.key(3), num_restarts=3, max_steps=0,
                       throw=False).restart_params
    total = lambda params: sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(params))  # noqa: E731

    def batched(X):
        sol = emjax.fit(model, X, params0=starts, max_steps=40, rtol=1e-6, adjoint=emjax.Unrolled())
        return total(sol.restart_params), sol

    (_, sol), g_batched = jax.value_and_grad(batched, has_aux=True)(X)
    steps = np.asarray(sol.restart_num_steps)
    assert len(set(steps.tolist())) > 1, steps  # restarts stop at different steps

    def single(X, p0, max_steps, rtol):
        sol = emjax.fit(model, X, params0=p0, max_steps=max_steps, rtol=rtol,
                        adjoint=emjax.Unrolled(), throw=False)
        return total(sol.params)

    g_single = 0.0
    for r in range(3):
        p0 = jax.tree.map(lambda a, r=r: a[r], starts)
        g_single = g_single + jax.grad(single)(X, p0, 40, 1e-6)
    np.testing.assert_allclose(g_batched, g_single, rtol=1e-9, atol=1e-11)
    # Stopped by convergence at step t == stopped by max_steps = t.
    r = int(np.argmin(steps))
    p0 = jax.tree.map(lambda a: a[r], starts)
    with pytest.warns(emjax.ConvergenceWarning):
        g_stopped = jax.grad(single)(X, p0, int(steps[r]), 0.0)
    np.testing.assert_allclose(g_stopped, jax.grad(single)(X, p0, 40, 1e-6), rtol=1e-10, atol=1e-12)


def test_unrolled_forward_equals_the_while_loop(X):
    case = CASES[1]
    kwargs = dict(key=jax.random.key(5), num_restarts=3, max_steps=40, rtol=1e-7, throw=False)
    a = emjax.fit(case.model, X, adjoint=emjax.Implicit(), **kwargs)
    b = emjax.fit(case.model, X, adjoint=emjax.Unrolled(), **kwargs)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12, atol=1e-12)


def test_unrolled_supports_forward_mode(X):
    case = CASES[2]
    params0 = _params0(case, X)
    w = jnp.ones(X.shape[0])
    h = case.model.temperature
    loss = _loss(case, params0, emjax.Unrolled())
    d = jnp.asarray(np.random.default_rng(2).normal(size=X.shape))
    _, tangent = jax.jvp(lambda X: loss(X, w, h), (X,), (d,))
    g = jax.grad(loss)(X, w, h)
    assert _rel(tangent, jnp.vdot(g, d)) <= 1e-9


@pytest.mark.slow  # suite time budget; runs with -m slow
def test_implicit_refuses_a_fit_that_did_not_converge(X):
    model = CASES[1].model

    def loss(X, throw):
        return emjax.fit(model, X, key=jax.random.key(0), max_steps=1, rtol=0.0,
                         throw=throw).log_likelihood

    with pytest.raises(Exception, match="did not\\s+converge"):
        jax.block_until_ready(jax.grad(loss)(X, True))
    g = jax.grad(loss)(X, False)  # the approximate gradient, on request
    assert np.isfinite(np.asarray(g)).all()
    # Unrolled differentiates the step taken, converged or not.
    g3 = jax.grad(lambda X: emjax.fit(model, X, key=jax.random.key(0), max_steps=1, rtol=0.0,
                                      adjoint=emjax.Unrolled(), throw=False).log_likelihood)(X)
    assert np.isfinite(np.asarray(g3)).all()


def test_gradient_under_jit_and_vmap_over_datasets(X):
    case = CASES[2]
    params0 = _params0(case, X)
    w = jnp.ones(X.shape[0])
    loss = _loss(case, params0, emjax.Implicit())
    grad = jax.grad(loss)
    batch = jnp.stack([X, X * 1.1, X + 0.5])
    vmapped = jax.jit(jax.vmap(grad, in_axes=(0, None, None)))(batch, w, case.model.temperature)
    for i in range(3):
        np.testing.assert_allclose(vmapped[i], grad(batch[i], w, case.model.temperature),
                                   rtol=1e-8, atol=1e-10)


@pytest.mark.slow  # suite time budget; runs with -m slow
def test_float32_gradients_are_finite_and_close_to_float64(X):
    case = CASES[1]
    params0 = _params0(case, X)

    def loss(X, adjoint):
        sol = emjax.fit(case.model, X, params0=jax.tree.map(lambda a: a.astype(X.dtype), params0),
                        max_steps=STEPS, rtol=1e-7, adjoint=adjoint)
        return _summary(case.model, sol)

    for adjoint in (emjax.Implicit(),):  # Unrolled in float32: the notebooks and test_gem
        g64 = jax.grad(loss)(X, adjoint)
        g32 = jax.grad(loss)(X.astype(jnp.float32), adjoint)
        assert g32.dtype == jnp.float32 and np.isfinite(np.asarray(g32)).all()
        np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-3 * float(jnp.abs(g64).max()))


def test_unrolled_gradient_memory_does_not_grow_with_steps():
    """The compiled gradient's temporary memory at 256 steps is within a small factor of
    that at 16 steps: each step keeps only its parameters, not its N x K intermediates."""
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(4096, 4)))
    model = emjax.GaussianMixture(4, covariance_type="diag")
    params0 = model.make_params(weights=jnp.full(4, 0.25), means=X[:4], covariances=jnp.ones((4, 4)))

    def memory(steps):
        def loss(X):
            sol = emjax.fit(model, X, params0=params0, max_steps=steps, rtol=0.0,
                            adjoint=emjax.Unrolled(), block_size=4096, throw=False)
            return sol.log_likelihood

        compiled = jax.jit(jax.grad(loss)).lower(X).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    m16, m256 = memory(16), memory(256)
    per_step_intermediates = X.size * 4 * 8  # one E-step's N x K x D differences, float64
    assert m16 > per_step_intermediates  # the backward pass holds one step's intermediates
    assert m256 <= 1.5 * m16, (m16, m256)


@pytest.mark.slow  # suite time budget; runs with -m slow
def test_implicit_through_a_gradient_m_step_matches_the_closed_form_fixed_point(X):
    """GEM with L-BFGS partial M-steps converges to the closed-form EM optimum (reg_covar = 0,
    both maximum likelihood); the implicit gradient of the GEM fit (stationarity of ℓ in the
    unconstrained coordinates, conjugate gradients) equals that of the closed-form fit."""
    optax = pytest.importorskip("optax")
    model = CASES[1].model
    params0 = _params0(CASES[1], X)
    gem = emjax.EM(m_step=emjax.GradientMStep(optax.lbfgs(), num_steps=20))

    def loss(X, solver):
        sol = emjax.fit(model, X, params0=params0, solver=solver, max_steps=STEPS, rtol=0.0)
        return _summary(model, sol)

    g_closed = jax.grad(loss)(X, emjax.EM())
    g_gem = jax.grad(loss)(X, gem)
    np.testing.assert_allclose(g_gem, g_closed, rtol=1e-6, atol=1e-7 * float(jnp.abs(g_closed).max()))


@pytest.mark.slow  # suite time budget; runs with -m slow
def test_unrolled_through_a_gradient_m_step_matches_finite_differences(X):
    """Reverse mode through EM iterations whose M-step is itself a loop of Adam steps."""
    optax = pytest.importorskip("optax")
    model = CASES[1].model
    # A start away from the optimum, so that every Adam step improves Q.
    params0 = model.make_params(weights=jnp.full(3, 1 / 3), means=X[jnp.array([0, 30, 60])] + 1.0,
                                covariances=jnp.full((3, 2), 2.0))
    gem = emjax.EM(m_step=emjax.GradientMStep(optax.adam(1e-2), num_steps=3))

    def loss(X):
        sol = emjax.fit(model, X, params0=params0, solver=gem, max_steps=4, rtol=0.0,
                        adjoint=emjax.Unrolled(), throw=False)
        return _summary(model, sol)

    sol = emjax.fit(model, X, params0=params0, solver=gem, max_steps=4, rtol=0.0,
                    adjoint=emjax.Unrolled(), throw=False)
    assert int(sol.num_steps) == 4 and float(sol.elbo_trace[4]) > float(sol.elbo_trace[0])
    g = jax.grad(loss)(X)
    d = jnp.asarray(np.random.default_rng(4).normal(size=X.shape))
    eps = 1e-5
    fd = (loss(X + eps * d) - loss(X - eps * d)) / (2 * eps)
    assert _rel(jnp.vdot(g, d), fd) <= 1e-6


def test_implicit_auto_falls_back_to_gmres_when_neumann_stalls(X):
    """With too few Neumann steps (as at a nearly degenerate fit, where EM's rate is near 1)
    the Neumann solve alone fails loudly; "auto" continues with GMRES and gets the answer."""
    case = CASES[1]
    params0 = _params0(case, X)
    w = jnp.ones(X.shape[0])
    h = case.model.reg_covar
    reference = jax.grad(_loss(case, params0, emjax.Implicit()))(X, w, h)
    with pytest.raises(Exception, match="adjoint linear system"):
        jax.block_until_ready(
            jax.grad(_loss(case, params0, emjax.Implicit(linear_solver="neumann", max_steps=1)))(X, w, h))
    fallback = jax.grad(_loss(case, params0, emjax.Implicit(max_steps=1)))(X, w, h)
    np.testing.assert_allclose(fallback, reference, rtol=1e-7, atol=1e-9)


def test_adjoint_options_are_checked(X):
    with pytest.raises(ValueError, match="linear_solver"):
        emjax.Implicit(linear_solver="lu")
    with pytest.raises(ValueError, match="max_steps"):
        emjax.Implicit(max_steps=0)
    with pytest.raises(TypeError, match="adjoint"):
        emjax.fit(CASES[1].model, X, key=jax.random.key(0), adjoint="implicit")
    with pytest.raises(ValueError, match="symmetric"):
        jax.grad(lambda X: emjax.fit(CASES[1].model, X, key=jax.random.key(0),
                                     adjoint=emjax.Implicit(linear_solver="cg")).log_likelihood)(X)
