"""Generalized EM: `emjax.GradientMStep` and user-defined `emjax.DensityMixture` (float64).

- the ELBO never decreases under a gradient M-step, for a good optimizer, a line-search
  optimizer and a learning rate far too large (where the ascent check must hold it);
- a non-finite step is never taken;
- on a Gaussian mixture, the gradient M-step reaches the closed-form M-step's optimum,
  and so does a Gaussian component written as a log-density in a `DensityMixture`;
- reusing the optimizer object reuses the compiled program;
- bad options raise at once, naming the argument.

Programs are compiled once per solver and shared through module-level fixtures.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import emjax
from emjax import _fit

X = emjax.datasets.load_old_faithful()  # (272, 2) float64
GMM = emjax.GaussianMixture(2, covariance_type="full", reg_covar=0.0)
P0 = GMM.make_params(
    weights=np.array([0.5, 0.5]),
    means=np.array([[2.0, 55.0], [4.5, 80.0]]),
    covariances=np.stack([np.diag([1.0, 100.0])] * 2),
)
ADAM = optax.adam(0.05)
SOLVERS = {
    "adam": emjax.EM(m_step=emjax.GradientMStep(ADAM, num_steps=10)),
    "lbfgs": emjax.EM(m_step=emjax.GradientMStep(optax.lbfgs(), num_steps=5, reset=True)),
    # Normalised objective, so this step is ~1e4 times too long: every iterate is worse
    # (or not finite), and the ascent check must keep θ_t.
    "sgd-too-large": emjax.EM(m_step=emjax.GradientMStep(optax.sgd(1e4), num_steps=3)),
}
MAX_STEPS = 60


@pytest.fixture(scope="module")
def fits():
    return {name: emjax.fit(GMM, X, params0=P0, solver=solver, max_steps=MAX_STEPS, rtol=1e-14,
                            throw=False)
            for name, solver in SOLVERS.items()}


@pytest.fixture(scope="module")
def closed_form():
    return emjax.fit(GMM, X, params0=P0, max_steps=500, rtol=1e-14)


def _trace(sol):
    return np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]


def _assert_finite(tree):
    for leaf in jax.tree.leaves(tree):
        assert np.isfinite(np.asarray(leaf)).all()


@pytest.mark.parametrize("name", list(SOLVERS))
def test_elbo_never_decreases(fits, name):
    sol = fits[name]
    trace = _trace(sol)
    assert np.isfinite(trace).all()
    assert (np.diff(trace) >= -1e-12 * np.abs(trace[1:])).all(), np.diff(trace).min()
    _assert_finite(sol.params)
    assert sol.result != emjax.RESULTS.nonfinite
    # The exact E-step keeps the bound tight: the reported ELBO is the log-likelihood.
    np.testing.assert_allclose(GMM.log_likelihood(sol.params, X), sol.log_likelihood, rtol=1e-12)


def test_a_step_that_lowers_q_is_not_taken(fits):
    sol = fits["sgd-too-large"]
    # No iterate improves on θ_0, so the M-step returns it (bit for bit; the fit's output
    # may pass through constrain∘unconstrain in the implicit adjoint) and the fit stops.
    for a, b in zip(jax.tree.leaves(sol.params), jax.tree.leaves(P0), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13)
    assert int(sol.num_steps) == 1 and sol.result == emjax.RESULTS.converged
    assert _trace(sol)[0] == _trace(sol)[1]


@pytest.mark.parametrize("name", ["adam", "lbfgs"])
def test_gradient_m_step_reaches_the_closed_form_optimum(fits, closed_form, name):
    sol = fits[name]
    np.testing.assert_allclose(sol.log_likelihood, closed_form.log_likelihood, rtol=1e-9)
    np.testing.assert_allclose(sol.params.weights, closed_form.params.weights, atol=1e-5)
    np.testing.assert_allclose(sol.params.means, closed_form.params.means, rtol=1e-5)
    np.testing.assert_allclose(sol.params.covariances, closed_form.params.covariances,
                               rtol=1e-4, atol=1e-6)


def test_reusing_the_optimizer_does_not_recompile(fits):
    before = _fit.trace_count
    # A new solver and M-step around the same optimizer object: the same program.
    solver = emjax.EM(m_step=emjax.GradientMStep(ADAM, num_steps=10))
    emjax.fit(GMM, X * 1.01, params0=P0, solver=solver, max_steps=MAX_STEPS - 10, throw=False)
    assert _fit.trace_count == before


def test_gmm_parametrization_round_trips():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2, 3, 3))
    full = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(3)
    covariances = {"full": full, "tied": full[0], "diag": rng.uniform(0.1, 2.0, (2, 3)),
                   "spherical": rng.uniform(0.1, 2.0, 2)}
    for ct, cov in covariances.items():
        model = emjax.GaussianMixture(2, covariance_type=ct, reg_covar=1e-3)
        params = model.make_params(weights=[0.3, 0.7], means=rng.normal(size=(2, 3)),
                                   covariances=cov)
        back = jax.jit(lambda p, m=model: m.constrain(m.unconstrain(p)))(params)
        for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(model.unconstrain(params)))


# ---------------------------------------------------------------- density mixtures
def gaussian_log_prob(phi, x):
    """A full-covariance Gaussian, unconstrained by a Cholesky factor with a log-diagonal."""
    chol = jnp.tril(phi["chol"], -1) + jnp.diag(jnp.exp(jnp.diag(phi["chol"])))
    z = jax.scipy.linalg.solve_triangular(chol, x - phi["mean"], lower=True)
    return -0.5 * z @ z - jnp.sum(jnp.diag(phi["chol"])) - 0.5 * x.shape[0] * jnp.log(2 * jnp.pi)


def gaussian_init(seeds, X, w):
    K, D = seeds.shape
    return {"mean": seeds, "chol": jnp.broadcast_to(jnp.diag(jnp.log(jnp.std(X, axis=0))), (K, D, D))}


GAUSSIAN_DENSITY = emjax.DensityMixture(2, gaussian_log_prob, gaussian_init)


def test_gaussian_log_density_reaches_the_gaussian_mixture_optimum(closed_form):
    chol = np.stack([np.diag(np.log(np.sqrt(np.diag(c)))) for c in np.asarray(P0.covariances)])
    q0 = GAUSSIAN_DENSITY.make_params(weights=P0.weights, components={"mean": P0.means, "chol": chol})
    sol = emjax.fit(GAUSSIAN_DENSITY, X, params0=q0, max_steps=200, rtol=1e-14)
    np.testing.assert_allclose(sol.log_likelihood, closed_form.log_likelihood, rtol=1e-9)
    np.testing.assert_allclose(sol.params.weights, closed_form.params.weights, atol=1e-6)
    np.testing.assert_allclose(sol.params.components["mean"], closed_form.params.means, rtol=1e-6)
    L = np.tril(np.asarray(sol.params.components["chol"]), -1)
    L = L + np.stack([np.diag(np.exp(np.diag(c))) for c in np.asarray(sol.params.components["chol"])])
    np.testing.assert_allclose(L @ np.swapaxes(L, 1, 2), closed_form.params.covariances, rtol=1e-5)
    trace = _trace(sol)
    assert (np.diff(trace) >= -1e-12 * np.abs(trace[1:])).all()
    # Every per-point method of a mixture works on a density mixture.
    proba = np.asarray(GAUSSIAN_DENSITY.predict_proba(sol.params, X))
    np.testing.assert_allclose(proba, np.asarray(GMM.predict_proba(closed_form.params, X)), atol=1e-5)
    np.testing.assert_array_equal(GAUSSIAN_DENSITY.predict(sol.params, X), proba.argmax(1))
    np.testing.assert_allclose(GAUSSIAN_DENSITY.log_prob(sol.params, X).sum(), sol.log_likelihood,
                               rtol=1e-12)


NEGATIVE_SCALES = []


def _count_negative(scale):
    NEGATIVE_SCALES.append(bool((np.asarray(scale) <= 0).any()))


def _raw_scale_log_prob(phi, x):
    # A scale used as is (not through exp): negative scales give NaN, as a careless user's
    # parametrization would. The gradient M-step must never take such a step.
    jax.debug.callback(_count_negative, phi["scale"])
    return jnp.sum(-0.5 * jnp.square((x - phi["loc"]) / phi["scale"]) - jnp.log(phi["scale"]))


def _raw_scale_init(seeds, X, w):
    return {"loc": seeds, "scale": jnp.ones_like(seeds)}


def test_nonfinite_steps_are_never_taken():
    model = emjax.DensityMixture(2, _raw_scale_log_prob, _raw_scale_init)
    # Adam's steps of 0.5 on standardised data drive some scales below zero.
    solver = emjax.EM(m_step=emjax.GradientMStep(optax.adam(0.5), num_steps=5))
    Z = (X - X.mean(0)) / X.std(0)
    NEGATIVE_SCALES.clear()
    sol = emjax.fit(model, Z, key=jax.random.key(0), solver=solver, max_steps=30, throw=False)
    assert any(NEGATIVE_SCALES)  # NaN log-densities were met ...
    _assert_finite(sol.params)  # ... and never taken
    assert (np.asarray(sol.params.components["scale"]) > 0).all()
    trace = _trace(sol)
    assert np.isfinite(trace).all()
    assert (np.diff(trace) >= -1e-12 * np.abs(trace[1:])).all()
    assert trace[-1] > trace[0] + 100  # and it still made progress


# ---------------------------------------------------------------- errors
def test_bad_options_raise_naming_the_argument():
    with pytest.raises(TypeError, match="`optimizer`"):
        emjax.GradientMStep("adam", num_steps=5)
    with pytest.raises(ValueError, match="`num_steps`"):
        emjax.GradientMStep(ADAM, num_steps=0)
    with pytest.raises(TypeError, match="`num_steps`"):
        emjax.GradientMStep(ADAM, num_steps=2.5)
    with pytest.raises(TypeError, match="`reset`"):
        emjax.GradientMStep(ADAM, num_steps=2, reset=1)
    with pytest.raises(TypeError, match="`m_step`"):
        emjax.EM(m_step=ADAM)
    km = emjax.KMeans(2)
    with pytest.raises(TypeError, match="unconstrained"):
        emjax.fit(km, X, key=jax.random.key(0), solver=SOLVERS["adam"])
    for solver in (emjax.EM(), emjax.HardEM()):
        with pytest.raises(TypeError, match="closed-form M-step"):
            emjax.fit(GAUSSIAN_DENSITY, X, key=jax.random.key(0), solver=solver)


def test_density_mixture_checks_the_user_functions():
    with pytest.raises(TypeError, match="`component_log_prob`"):
        emjax.DensityMixture(2, "not a function", gaussian_init)
    with pytest.raises(ValueError, match="`num_components`"):
        emjax.DensityMixture(0, gaussian_log_prob, gaussian_init)
    with pytest.raises(ValueError, match="`init`"):
        emjax.DensityMixture(2, gaussian_log_prob, gaussian_init, init="random")
    bad_init = emjax.DensityMixture(2, gaussian_log_prob, lambda s, X, w: {"mean": s[:1]})
    with pytest.raises(ValueError, match="leading axis"):
        emjax.fit(bad_init, X, key=jax.random.key(0))
    vector = emjax.DensityMixture(2, lambda phi, x: phi["mean"] - x, gaussian_init)
    with pytest.raises(ValueError, match="scalar"):
        emjax.fit(vector, X, key=jax.random.key(0))
    broken = emjax.DensityMixture(2, lambda phi, x: phi["missing"], gaussian_init)
    with pytest.raises(TypeError, match="component_log_prob"):
        emjax.fit(broken, X, key=jax.random.key(0))
    with pytest.raises(TypeError, match="MixtureParams"):
        emjax.fit(GAUSSIAN_DENSITY, X, params0=P0)
    with pytest.raises(ValueError, match="`weights`"):
        GAUSSIAN_DENSITY.make_params(weights=[0.2, 0.2], components={"mean": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="leading axis"):
        GAUSSIAN_DENSITY.make_params(weights=[0.5, 0.5], components={"mean": np.zeros((3, 2))})
