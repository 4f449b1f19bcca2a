"""float32: emjax computes in the data's dtype, and float32 fits are finite and accurate.

float64 is enabled for the whole session, so float32 data are made explicitly here.
"""

import functools

import equinox as eqx
import jax

jax.config.update("jax_enable_x64", True)  # idempotent; tests/conftest.py does the same

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import emjax  # noqa: E402
from emjax import RESULTS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::emjax.ConvergenceWarning")

COVARIANCE_TYPES = ["full", "diag", "spherical", "tied"]
KEY = jax.random.key(0)

X64 = emjax.datasets.load_old_faithful()
X32 = X64.astype(np.float32)


def assert_tree_finite(tree, what):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if eqx.is_inexact_array(leaf):
            a = np.asarray(leaf)
            assert np.all(np.isfinite(a)), f"{what}{jax.tree_util.keystr(path)} is not finite: {a}"


def assert_finite_fit(sol):
    assert_tree_finite(sol.params, "params")
    assert_tree_finite(sol.restart_params, "restart_params")
    assert not bool(sol.result == RESULTS.nonfinite), sol.message
    assert not np.any(np.asarray(sol.restart_results == RESULTS.nonfinite))
    assert np.isfinite(float(sol.log_likelihood))
    assert np.all(np.isfinite(np.asarray(sol.restart_elbos)))


def assert_float_outputs(sol, dtype):
    """Every floating output of a Solution has the data's dtype."""
    assert sol.log_likelihood.dtype == dtype
    assert sol.elbo.total.dtype == dtype
    assert sol.elbo_trace.dtype == dtype
    assert sol.restart_elbos.dtype == dtype
    assert sol.restart_elbo_traces.dtype == dtype
    for tree in (sol.params, sol.restart_params):
        for leaf in jax.tree.leaves(tree):
            assert leaf.dtype == dtype, (leaf.dtype, dtype)


# Initial parameters for Old Faithful (eruption minutes, waiting minutes): the two modes.
_OF_MEANS = np.array([[2.0, 55.0], [4.5, 80.0]])
_OF_COV = {
    "full": np.stack([np.diag([1.0, 100.0])] * 2),
    "diag": np.array([[1.0, 100.0]] * 2),
    "spherical": np.array([10.0, 10.0]),
    "tied": np.diag([1.0, 100.0]),
}


@functools.cache
def old_faithful_fits(ct):
    """The float64 and float32 fits of Old Faithful from the same (float64) params0."""
    model = emjax.GaussianMixture(2, ct)
    p0 = model.make_params(weights=np.array([0.5, 0.5]), means=_OF_MEANS, covariances=_OF_COV[ct])
    return model, emjax.fit(model, X64, params0=p0), emjax.fit(model, X32, params0=p0)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_old_faithful_float32_matches_float64(ct):
    model, s64, s32 = old_faithful_fits(ct)
    assert_finite_fit(s64)
    assert_finite_fit(s32)
    assert bool(s32.converged) and bool(s64.converged)
    ll32, ll64 = float(s32.log_likelihood), float(s64.log_likelihood)
    assert abs(ll32 - ll64) <= 1e-3 * abs(ll64), (ll32, ll64)
    np.testing.assert_allclose(np.asarray(s32.params.means), np.asarray(s64.params.means), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(s32.params.weights), np.asarray(s64.params.weights),
                               rtol=1e-3)
    # The float32 parameters, evaluated in float64, are as good as the float64 fit's.
    p32_in_64 = jax.tree.map(lambda a: np.asarray(a, np.float64), s32.params)
    assert float(model.log_likelihood(p32_in_64, X64)) == pytest.approx(ll64, rel=1e-5)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_output_dtypes_follow_the_data(ct):
    _, s64, s32 = old_faithful_fits(ct)
    assert_float_outputs(s32, np.float32)
    assert_float_outputs(s64, np.float64)


def test_kmeans_float32_matches_float64():
    km = emjax.KMeans(3)
    centers0 = X64[[0, 1, 2]]  # the same initial centres for both dtypes
    s64 = emjax.fit(km, X64, params0=km.make_params(centers=centers0))
    s32 = emjax.fit(km, X32, params0=km.make_params(centers=centers0))
    assert_finite_fit(s32)
    assert_float_outputs(s32, np.float32)
    assert_float_outputs(s64, np.float64)
    assert bool(s32.converged) and bool(s64.converged)
    i64 = float(km.inertia(s64.params, X64))
    i32 = float(km.inertia(s32.params, X32))
    assert abs(i32 - i64) <= 1e-4 * i64, (i32, i64)
    np.testing.assert_array_equal(np.asarray(km.predict(s32.params, X32)),
                                  np.asarray(km.predict(s64.params, X64)))


# ----------------------------------------------------------------------------- offset data


def _offset_data():
    """Two clusters at 1e4 + (0, 0) and 1e4 + (1, 1), each 1e4 + 0.01·N(0, 1), in float32.

    At 1e4 the float32 spacing is ~1e-3, so a raw second moment E[x²] − E[x]² (≈ 1e8 −
    1e8) cancels to noise; the true variance is 1e-4. scikit-learn 1.9's float32
    GaussianMixture(covariance_type="diag") fails on these data ("ill-defined empirical
    covariance"); emjax shifts its statistics by the current means and must not.
    """
    rng = np.random.default_rng(0)
    n = 2000
    z = rng.integers(0, 2, n)
    centres = np.array([[0.0, 0.0], [1.0, 1.0]])
    X = 1e4 + centres[z] + 0.01 * rng.normal(size=(n, 2))
    return X.astype(np.float32), z, centres


@pytest.mark.parametrize("ct", ["diag", "full"])
def test_offset_data_float32_recovers_tiny_variances(ct):
    X, z, centres = _offset_data()
    model = emjax.GaussianMixture(2, ct)
    cov0 = {"diag": np.full((2, 2), 0.1), "full": np.broadcast_to(0.1 * np.eye(2), (2, 2, 2))}[ct]
    p0 = model.make_params(weights=np.array([0.5, 0.5]), means=1e4 + centres + 0.05,
                           covariances=cov0)
    sol = emjax.fit(model, X, params0=p0)
    assert_finite_fit(sol)
    assert_float_outputs(sol, np.float32)
    assert bool(sol.converged)
    cov = np.asarray(sol.params.covariances, np.float64)
    var = cov if ct == "diag" else np.diagonal(cov, axis1=1, axis2=2)
    np.testing.assert_allclose(var, 1e-4, rtol=0.2)
    np.testing.assert_allclose(np.asarray(sol.params.means, np.float64), 1e4 + centres, atol=2e-3)
    np.testing.assert_allclose(np.asarray(sol.params.weights), np.bincount(z) / len(z), atol=1e-3)
    assert np.array_equal(np.asarray(model.predict(sol.params, X)), z)


# ----------------------------------------------------------------------------- a larger fit


def test_larger_float32_fit_has_no_nan():
    """N=20000, D=8, K=8, 32 restarts with the default (k-means++) initialisation, in
    float32 with full covariances: no restart may produce NaN."""
    rng = np.random.default_rng(1)
    N, D, K = 20000, 8, 8
    mu = 5.0 * rng.normal(size=(K, D))
    scale = rng.uniform(0.2, 2.0, size=(K, D))
    z = rng.integers(0, K, N)
    X = (mu[z] + scale[z] * rng.normal(size=(N, D)) + 100.0).astype(np.float32)
    sol = emjax.fit(emjax.GaussianMixture(K, "full"), X, key=KEY, num_restarts=32, max_steps=5)
    assert_finite_fit(sol)
    assert_float_outputs(sol, np.float32)
    assert sol.restart_params.means.shape == (32, K, D)
    traces = np.asarray(sol.restart_elbo_traces)
    steps = np.asarray(sol.restart_num_steps)
    for r in range(32):
        assert np.all(np.isfinite(traces[r, : steps[r] + 1]))
