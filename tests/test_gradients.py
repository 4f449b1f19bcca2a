"""Gradients of the E-step ELBO and of one EM update, against finite differences (float64).

These pin down that the building blocks of a fit are smooth and that the array
hyperparameters (`reg_covar`, `temperature`) are differentiable leaves; gradients through
a whole `fit` (the `adjoint=` option) are tested in test_adjoint.py.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import emjax


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(np.concatenate([rng.normal(size=(30, 2)) + c for c in ([0, 0], [4, 1], [1, 5])]))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_gmm_elbo_and_one_em_step_gradients(covariance_type):
    X = _data()
    w = jnp.ones(X.shape[0])
    model = emjax.GaussianMixture(3, covariance_type=covariance_type, reg_covar=1e-3)
    params = emjax.fit(model, X, key=jax.random.key(0), max_steps=3, throw=False).params

    def elbo(p, x):
        return model.e_step(p, x, w)[1].total

    def one_step(p, x, reg):
        m = eqx.tree_at(lambda m: m.reg_covar, model, reg)
        new = m.m_step(p, m.e_step(p, x, w)[0])
        return jnp.sum(new.means ** 2) + jnp.sum(new.covariances) + jnp.sum(jnp.log(new.weights))

    check_grads(jax.jit(elbo), (params, X), order=1, modes=["rev", "fwd"], rtol=1e-5)
    check_grads(jax.jit(one_step), (params, X, model.reg_covar), order=1, modes=["rev"], rtol=1e-5)


def test_log_likelihood_gradient_matches_fisher_identity():
    """∇θ log p(X | θ) equals ∇θ of the expected complete-data log-likelihood at fixed q."""
    X = _data(1)
    w = jnp.ones(X.shape[0])
    model = emjax.GaussianMixture(3)
    params = emjax.fit(model, X, key=jax.random.key(1), max_steps=2, throw=False).params
    g_marginal = jax.grad(lambda p: model.log_likelihood(p, X))(params)

    def q_term(p):
        # responsibilities held fixed at `params`: E_q[log p(x, z | p)]
        resp = jax.lax.stop_gradient(model.predict_proba(params, X))
        return jnp.sum(w[:, None] * resp * model.log_joint(p, X))

    g_q = jax.grad(q_term)(params)
    for a, b in zip(jax.tree.leaves(g_marginal), jax.tree.leaves(g_q), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_soft_kmeans_is_differentiable_in_data_centres_and_temperature():
    X = _data(2)
    w = jnp.ones(X.shape[0])
    model = emjax.KMeans(3, temperature=2.0)
    params = model.make_params(centers=X[jnp.array([0, 35, 70])])

    def one_step(p, x, temperature):
        m = eqx.tree_at(lambda m: m.temperature, model, temperature)
        new = m.m_step(p, m.e_step(p, x, w)[0])
        return jnp.sum(new.centers ** 2) + m.log_likelihood(new, x)

    check_grads(jax.jit(one_step), (params, X, model.temperature), order=1, modes=["rev", "fwd"], rtol=1e-5)
    g = jax.grad(one_step, argnums=2)(params, X, model.temperature)
    assert np.isfinite(g) and g != 0
