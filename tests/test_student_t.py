"""`emjax.StudentTMixture` against an independent NumPy ECM (Peel & McLachlan 2000), float64.

The reference alternates the E-step (responsibilities ``τ_nk`` and latent scales
``u_nk = (ν_k + D)/(ν_k + δ²_nk)``), closed-form weights, means and scale matrices, and a
1-D root search for each ``ν_k`` (``scipy.optimize.brentq``). Both start from the same
parameters on a small heavy-tailed data set and must reach the same optimum.
"""

import jax
import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq
from scipy.special import digamma, gammaln

import emjax


def _t_logpdf(X, mean, scale, nu):
    D = X.shape[1]
    L = np.linalg.cholesky(scale)
    maha = np.sum(np.linalg.solve(L, (X - mean).T) ** 2, axis=0)
    log_norm = gammaln((nu + D) / 2) - gammaln(nu / 2) - D / 2 * np.log(nu * np.pi)
    return log_norm - np.sum(np.log(np.diag(L))) - (nu + D) / 2 * np.log1p(maha / nu), maha


def ecm_t_mixture(X, weights, means, scales, dofs, max_iter=5000, rtol=1e-15):
    """Peel & McLachlan's ECM for a mixture of multivariate t distributions."""
    N, D = X.shape
    w, m, S, nu = (np.array(a, np.float64) for a in (weights, means, scales, dofs))
    K = len(w)
    previous = -np.inf
    for num_iter in range(max_iter):  # noqa: B007 (reported after the loop)
        log_p = np.empty((N, K))
        maha = np.empty((N, K))
        for k in range(K):
            log_p[:, k], maha[:, k] = _t_logpdf(X, m[k], S[k], nu[k])
        log_joint = log_p + np.log(w)
        top = log_joint.max(axis=1, keepdims=True)
        per_point = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
        ll = per_point.sum()
        if abs(ll - previous) <= rtol * abs(ll):
            break
        previous = ll
        tau = np.exp(log_joint - per_point[:, None])
        u = (nu + D) / (nu + maha)
        n_k = tau.sum(axis=0)
        w = n_k / N
        for k in range(K):
            tu = tau[:, k] * u[:, k]
            m[k] = tu @ X / tu.sum()
            d = X - m[k]
            S[k] = (tu[:, None] * d).T @ d / n_k[k]
            const = (1 + tau[:, k] @ (np.log(u[:, k]) - u[:, k]) / n_k[k]
                     + digamma((nu[k] + D) / 2) - np.log((nu[k] + D) / 2))

            def score(v, const=const):
                return -digamma(v / 2) + np.log(v / 2) + const

            nu[k] = brentq(score, 1e-3, 1e4)
    return dict(weights=w, means=m, covariances=S, dofs=nu, log_likelihood=ll, num_iter=num_iter)


def _heavy_tailed(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_t(3, (150, 2)) * [1.0, 0.5]
    b = rng.standard_t(6, (100, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]]) + [5.0, 3.0]
    return np.concatenate([a, b])


X = _heavy_tailed()
MODEL = emjax.StudentTMixture(2, reg_covar=0.0)
P0 = MODEL.make_params(weights=[0.5, 0.5], means=[[0.5, 0.5], [4.0, 2.0]],
                       covariances=np.stack([np.eye(2)] * 2), dofs=[5.0, 5.0])
MAX_STEPS = 500


@pytest.fixture(scope="module")
def reference():
    return ecm_t_mixture(X, P0.weights, P0.means, P0.covariances, P0.dofs)


@pytest.fixture(scope="module")
def fitted():
    return emjax.fit(MODEL, X, params0=P0, max_steps=MAX_STEPS, rtol=1e-14)


def test_reaches_the_ecm_optimum(fitted, reference):
    sol, ref = fitted, reference
    assert ref["num_iter"] < 5000
    rel = (float(sol.log_likelihood) - ref["log_likelihood"]) / abs(ref["log_likelihood"])
    assert abs(rel) < 1e-10, rel
    p = sol.params
    np.testing.assert_allclose(p.weights, ref["weights"], atol=1e-6)
    np.testing.assert_allclose(p.means, ref["means"], atol=1e-5)
    np.testing.assert_allclose(p.covariances, ref["covariances"], atol=1e-5)
    # ν is weakly determined (a flat likelihood direction, where ECM creeps): looser.
    np.testing.assert_allclose(p.dofs, ref["dofs"], rtol=1e-4)
    assert (np.asarray(p.dofs) < 20).all()  # heavy tails found: not the Gaussian limit
    trace = np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]
    assert (np.diff(trace) >= -1e-12 * np.abs(trace[1:])).all()


def test_density_and_per_point_methods_match_scipy(fitted):
    p = fitted.params
    dens = np.stack([stats.multivariate_t(np.asarray(p.means[k]), np.asarray(p.covariances[k]),
                                          df=float(p.dofs[k])).logpdf(X) for k in range(2)], axis=1)
    log_joint = dens + np.log(np.asarray(p.weights))
    expected = np.logaddexp(log_joint[:, 0], log_joint[:, 1])
    np.testing.assert_allclose(MODEL.log_prob(p, X), expected, rtol=1e-10)
    np.testing.assert_allclose(MODEL.log_likelihood(p, X), fitted.log_likelihood, rtol=1e-12)
    proba = np.exp(log_joint - expected[:, None])
    np.testing.assert_allclose(MODEL.predict_proba(p, X), proba, atol=1e-10)
    np.testing.assert_array_equal(MODEL.predict(p, X), proba.argmax(axis=1))


def test_vmapped_restarts_equal_separate_fits():
    shifts = np.array([0.0, 0.3, -0.4])[:, None, None]
    batch = MODEL.make_params(weights=np.tile([0.5, 0.5], (3, 1)),
                              means=np.asarray(P0.means)[None] + shifts,
                              covariances=np.tile(np.eye(2), (3, 2, 1, 1)),
                              dofs=np.tile([5.0, 5.0], (3, 1)))
    together = emjax.fit(MODEL, X, params0=batch, max_steps=MAX_STEPS, rtol=1e-14)
    for r in range(3):
        alone = emjax.fit(MODEL, X, params0=jax.tree.map(lambda a, r=r: a[r], batch),
                          max_steps=MAX_STEPS, rtol=1e-14)
        for a, b in zip(jax.tree.leaves(alone.params),
                        jax.tree.leaves(jax.tree.map(lambda a, r=r: a[r], together.restart_params)),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    assert int(together.best_restart) == int(np.argmax(np.asarray(together.restart_elbos)))


def test_float32_fit_is_finite_and_stays_float32(fitted):
    X32 = X.astype(np.float32)
    p32 = jax.tree.map(lambda a: np.asarray(a, np.float32), P0)
    sol = emjax.fit(MODEL, X32, params0=p32, max_steps=MAX_STEPS)
    for leaf in jax.tree.leaves((sol.params, sol.restart_params)):
        assert leaf.dtype == np.float32
        assert np.isfinite(np.asarray(leaf)).all()
    assert sol.result == emjax.RESULTS.converged
    trace = np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]
    assert np.isfinite(trace).all()
    assert (np.diff(trace) >= -1e-5 * np.abs(trace[1:])).all()
    # The float32 fit ends near the float64 optimum.
    np.testing.assert_allclose(sol.log_likelihood, fitted.log_likelihood, rtol=1e-5)
    np.testing.assert_allclose(sol.params.means, fitted.params.means, atol=1e-2)


def test_fixed_dof_parametrization():
    model = emjax.StudentTMixture(2, dof=3.0, learn_dof=False, reg_covar=1e-4)
    params = model.make_params(weights=[0.4, 0.6], means=np.zeros((2, 2)),
                               covariances=np.stack([np.eye(2), 2 * np.eye(2)]), dofs=[3.0, 3.0])
    psi = model.unconstrain(params)
    assert len(psi) == 3  # the degrees of freedom are not optimised
    back = model.constrain(psi)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    learned = emjax.StudentTMixture(2, reg_covar=1e-4)
    assert len(learned.unconstrain(params)) == 4
    np.testing.assert_allclose(learned.constrain(learned.unconstrain(params)).dofs, [3.0, 3.0])


def test_bad_input_raises_naming_the_argument():
    with pytest.raises(ValueError, match="`covariance_type`"):
        emjax.StudentTMixture(2, covariance_type="tied")
    with pytest.raises(ValueError, match="`dof`"):
        emjax.StudentTMixture(2, dof=0.0)
    with pytest.raises(TypeError, match="`learn_dof`"):
        emjax.StudentTMixture(2, learn_dof="yes")
    with pytest.raises(ValueError, match="`num_components`"):
        emjax.StudentTMixture(0)
    with pytest.raises(ValueError, match="`dofs`"):
        MODEL.make_params(weights=[0.5, 0.5], means=np.zeros((2, 2)),
                          covariances=np.stack([np.eye(2)] * 2), dofs=[5.0, -1.0])
    with pytest.raises(ValueError, match="`dofs`"):
        MODEL.make_params(weights=[0.5, 0.5], means=np.zeros((2, 2)),
                          covariances=np.stack([np.eye(2)] * 2), dofs=[5.0])
    with pytest.raises(ValueError, match="positive definite"):
        MODEL.make_params(weights=[0.5, 0.5], means=np.zeros((2, 2)),
                          covariances=np.stack([-np.eye(2)] * 2), dofs=[5.0, 5.0])
    with pytest.raises(TypeError, match="StudentTMixtureParams"):
        emjax.fit(MODEL, X, params0=emjax.GaussianMixture(2).make_params(
            weights=[0.5, 0.5], means=np.zeros((2, 2)), covariances=np.stack([np.eye(2)] * 2)))
    with pytest.raises(ValueError, match="`X`"):
        emjax.fit(MODEL, X[:, 0], key=jax.random.key(0))
    with pytest.raises(TypeError, match="closed-form M-step"):
        emjax.fit(MODEL, X, key=jax.random.key(0), solver=emjax.EM())
    with pytest.raises(ValueError, match="features"):
        MODEL.predict(P0, np.zeros((3, 3)))
