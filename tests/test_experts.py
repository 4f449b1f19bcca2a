"""`emjax.MixtureOfExperts` (float64).

- with a constant gate it is a mixture of linear regressions: from the same start, it
  reaches the optimum of an independent NumPy EM (weighted least squares and weighted
  variances per expert);
- with the softmax gate it recovers a planted piecewise-linear function;
- bad input raises at once, naming the argument.
"""

import jax
import numpy as np
import pytest

import emjax


def em_linear_regressions(X, y, weights, coefs, intercepts, variances, max_iter=5000, rtol=1e-15):
    """Closed-form EM for a mixture of linear regressions with constant mixing weights."""
    N, D = X.shape
    A = np.hstack([X, np.ones((N, 1))])
    beta = np.hstack([coefs, np.asarray(intercepts)[:, None]])
    pi, var = np.array(weights, np.float64), np.array(variances, np.float64)
    previous = -np.inf
    for num_iter in range(max_iter):  # noqa: B007 (reported after the loop)
        log_joint = np.log(pi) - 0.5 * (np.log(2 * np.pi * var) + (y[:, None] - A @ beta.T) ** 2 / var)
        top = log_joint.max(axis=1, keepdims=True)
        per_point = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
        ll = per_point.sum()
        if abs(ll - previous) <= rtol * abs(ll):
            break
        previous = ll
        r = np.exp(log_joint - per_point[:, None])
        n_k = r.sum(axis=0)
        pi = n_k / N
        for k in range(len(pi)):
            Ar = A * r[:, k : k + 1]
            beta[k] = np.linalg.solve(Ar.T @ A, Ar.T @ y)
            var[k] = r[:, k] @ (y - A @ beta[k]) ** 2 / n_k[k]
    return dict(weights=pi, coefs=beta[:, :D], intercepts=beta[:, D], variances=var,
                log_likelihood=ll, num_iter=num_iter)


def _two_lines(seed=1, n=200):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    first = rng.random(n) < 0.4
    y = np.where(first, X @ [1.0, -2.0] + 1.0, X @ [-1.5, 0.5] - 1.0)
    return X, y + rng.normal(size=n) * np.where(first, 0.3, 0.6)


def test_constant_gate_reaches_the_linear_regression_mixture_optimum():
    X, y = _two_lines()
    model = emjax.MixtureOfExperts(2, gating="constant", reg_variance=0.0)
    p0 = model.make_params(gate_weights=np.zeros((2, 2)), gate_bias=np.log([0.5, 0.5]),
                           coefs=[[0.5, -1.0], [-1.0, 0.0]], intercepts=[0.5, -0.5],
                           variances=[1.0, 1.0])
    ref = em_linear_regressions(X, y, [0.5, 0.5], np.asarray(p0.coefs), p0.intercepts,
                                p0.variances)
    sol = emjax.fit(model, (X, y), params0=p0, max_steps=300, rtol=1e-14)
    rel = (float(sol.log_likelihood) - ref["log_likelihood"]) / abs(ref["log_likelihood"])
    assert abs(rel) < 1e-10, rel
    p = sol.params
    np.testing.assert_allclose(jax.nn.softmax(p.gate_bias), ref["weights"], atol=1e-6)
    np.testing.assert_allclose(p.coefs, ref["coefs"], atol=1e-6)
    np.testing.assert_allclose(p.intercepts, ref["intercepts"], atol=1e-6)
    np.testing.assert_allclose(p.variances, ref["variances"], rtol=1e-5)
    np.testing.assert_array_equal(p.gate_weights, 0.0)
    trace = np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]
    assert (np.diff(trace) >= -1e-12 * np.abs(trace[1:])).all()
    # log p(y | x) and the posterior over experts from the same engine as every mixture.
    np.testing.assert_allclose(model.log_prob(p, (X, y)).sum(), sol.log_likelihood, rtol=1e-12)
    proba = np.asarray(model.predict_proba(p, (X, y)))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


def test_softmax_gate_recovers_a_planted_piecewise_linear_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (300, 1))
    truth = np.where(X[:, 0] < 0, 1 + 2 * X[:, 0], 1 - X[:, 0])
    y = truth + 0.1 * rng.normal(size=300)
    model = emjax.MixtureOfExperts(2)
    sol = emjax.fit(model, (X, y), key=jax.random.key(0))
    p = sol.params
    order = np.argsort(np.asarray(p.coefs[:, 0]))
    np.testing.assert_allclose(np.asarray(p.coefs[:, 0])[order], [-1.0, 2.0], atol=0.05)
    np.testing.assert_allclose(np.asarray(p.intercepts)[order], [1.0, 1.0], atol=0.05)
    np.testing.assert_allclose(np.sqrt(np.asarray(p.variances)), 0.1, rtol=0.2)
    grid = np.linspace(-2.5, 2.5, 11)[:, None]
    expected = np.where(grid[:, 0] < 0, 1 + 2 * grid[:, 0], 1 - grid[:, 0])
    away = np.abs(grid[:, 0]) > 0.4  # the gate is soft near the kink
    np.testing.assert_allclose(np.asarray(model.predict_mean(p, grid))[away], expected[away],
                               atol=0.05)
    gate = np.asarray(model.gate_proba(p, grid))
    # The gate routes each side of the kink to the expert with that slope.
    np.testing.assert_array_equal(gate[grid[:, 0] < -0.5].argmax(1), order[1])
    np.testing.assert_array_equal(gate[grid[:, 0] > 0.5].argmax(1), order[0])


def test_bad_input_raises_naming_the_argument():
    X, y = _two_lines()
    model = emjax.MixtureOfExperts(2)
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="tuple"):
        emjax.fit(model, X, key=key)
    with pytest.raises(ValueError, match="`y`"):
        emjax.fit(model, (X, y[:-1]), key=key)
    with pytest.raises(ValueError, match="`y`"):
        emjax.fit(model, (X, np.where(np.arange(len(y)) == 3, np.nan, y)), key=key)
    with pytest.raises(ValueError, match="`X`"):
        emjax.fit(model, (X[:, 0], y), key=key)
    with pytest.raises(ValueError, match="`num_experts`"):
        emjax.MixtureOfExperts(0)
    with pytest.raises(ValueError, match="`gating`"):
        emjax.MixtureOfExperts(2, gating="tree")
    with pytest.raises(ValueError, match="`gate_l2`"):
        emjax.MixtureOfExperts(2, gate_l2=-1.0)
    constant = emjax.MixtureOfExperts(2, gating="constant")
    with pytest.raises(ValueError, match="`gate_weights`"):
        constant.make_params(gate_weights=np.ones((2, 2)), gate_bias=np.zeros(2),
                             coefs=np.zeros((2, 2)), intercepts=np.zeros(2), variances=np.ones(2))
    with pytest.raises(ValueError, match="`variances`"):
        model.make_params(gate_weights=np.zeros((2, 2)), gate_bias=np.zeros(2),
                          coefs=np.zeros((2, 2)), intercepts=np.zeros(2), variances=np.zeros(2))
    with pytest.raises(ValueError, match="`coefs`"):
        emjax.fit(model, (X, y), params0=model.make_params(
            gate_weights=np.zeros((2, 3)), gate_bias=np.zeros(2), coefs=np.zeros((2, 3)),
            intercepts=np.zeros(2), variances=np.ones(2)))
    with pytest.raises(TypeError, match="MixtureOfExpertsParams"):
        emjax.fit(model, (X, y), params0=(1, 2))
    with pytest.raises(TypeError, match="closed-form M-step"):
        emjax.fit(model, (X, y), key=key, solver=emjax.HardEM())
    params = model.make_params(gate_weights=np.zeros((2, 2)), gate_bias=np.zeros(2),
                               coefs=np.zeros((2, 2)), intercepts=np.zeros(2), variances=np.ones(2))
    with pytest.raises(ValueError, match="features"):
        model.predict_mean(params, np.zeros((3, 3)))
