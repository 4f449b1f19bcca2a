"""Degenerate data: fits finish with finite parameters, and sample weights mean what they say.

Compiles dominate the run time on a CPU (a few seconds per distinct program), so the
tests share programs where they can: the same model structure, data shape and way of
initialising give the same program (``reg_covar``, ``rtol``, ``max_steps`` and ``throw``
are traced values).
"""

import re

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
MAX_STEPS = 10

# Two blobs of 60 points, at (0, 0) and (6, 0): the base of several tests.
_rng = np.random.default_rng(0)
X_BASE = np.concatenate([_rng.normal(size=(60, 2)), _rng.normal(size=(60, 2)) + [6.0, 0.0]])

# 40 copies of each of 3 distinct points (as many rows as X_BASE, to share programs).
DISTINCT = np.array([[0.0, 0.0], [1.0, 2.0], [-3.0, 1.0]])
X_DUP = np.repeat(DISTINCT, 40, axis=0)

X3 = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 3.0]])


# ----------------------------------------------------------------------------- helpers


def assert_tree_finite(tree, what):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if eqx.is_inexact_array(leaf):
            a = np.asarray(leaf)
            assert np.all(np.isfinite(a)), f"{what}{jax.tree_util.keystr(path)} is not finite: {a}"


def assert_finite_fit(sol, *, allow_nonfinite_result=False):
    """Every parameter of every restart is finite; unless allowed, no restart failed."""
    assert_tree_finite(sol.params, "params")
    assert_tree_finite(sol.restart_params, "restart_params")
    if not allow_nonfinite_result:
        assert not bool(sol.result == RESULTS.nonfinite), sol.message
        assert not np.any(np.asarray(sol.restart_results == RESULTS.nonfinite))
        assert np.isfinite(float(sol.log_likelihood))
        assert np.isfinite(float(sol.elbo.total))


def identity_covariances(ct, k, d, scale=1.0):
    return {
        "full": np.broadcast_to(scale * np.eye(d), (k, d, d)).copy(),
        "diag": np.full((k, d), scale),
        "spherical": np.full(k, scale),
        "tied": scale * np.eye(d),
    }[ct]


def gmm_params0(model, means, weights=None):
    means = np.asarray(means, float)
    k, d = means.shape
    weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, float)
    return model.make_params(
        weights=weights, means=means,
        covariances=identity_covariances(model.covariance_type, k, d),
    )


def variances(model, params):
    """Per-component, per-feature variances ``(K, D)`` whatever the covariance type."""
    c = np.asarray(params.covariances)
    k, d = params.means.shape
    return {
        "full": lambda: np.diagonal(c, axis1=1, axis2=2),
        "diag": lambda: c,
        "spherical": lambda: np.repeat(c[:, None], d, axis=1),
        "tied": lambda: np.broadcast_to(np.diag(c), (k, d)),
    }[model.covariance_type]()


def assert_trees_close(a, b, rtol=1e-10, atol=1e-10):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol,
                                   err_msg=jax.tree_util.keystr(path))


# ----------------------------------------------------------------------------- duplicates


def test_gmm_duplicate_points_as_many_components_as_distinct_points():
    """K = 3 components on 3 distinct points (40 copies each), started near them: every
    covariance collapses to reg_covar·I and the fit stays finite."""
    model = emjax.GaussianMixture(3, "full")
    p0 = gmm_params0(model, DISTINCT + 0.1)
    sol = emjax.fit(model, X_DUP, params0=p0, max_steps=MAX_STEPS)
    assert_finite_fit(sol)
    np.testing.assert_allclose(np.sort(np.asarray(sol.params.means), axis=0),
                               np.sort(DISTINCT, axis=0), atol=1e-9)
    np.testing.assert_allclose(np.asarray(sol.params.covariances),
                               np.broadcast_to(1e-6 * np.eye(2), (3, 2, 2)), rtol=1e-6, atol=1e-12)
    assert float(sol.log_likelihood) > 0


def test_gmm_duplicate_points_more_components_than_distinct_points():
    """K = 5 > 3 distinct points, default (k-means++) initialisation: the seeding runs out
    of distinct points and must still give a finite fit."""
    model = emjax.GaussianMixture(5, "full")
    sol = emjax.fit(model, X_DUP, key=KEY, num_restarts=2, max_steps=MAX_STEPS)
    assert_finite_fit(sol)
    means = np.asarray(sol.params.means)
    for p in DISTINCT:
        assert np.min(np.linalg.norm(means - p, axis=1)) < 1e-6
    assert float(sol.log_likelihood) > 0


def test_kmeans_more_clusters_than_distinct_points():
    """sklearn warns ("Number of distinct clusters (3) found smaller than n_clusters (5)");
    emjax must finish with finite centres, every distinct point being a centre (the empty
    clusters cannot be relocated: every point sits on its centre)."""
    km = emjax.KMeans(5, init="random")
    sol = emjax.fit(km, X_DUP, key=KEY, num_restarts=2)
    assert_finite_fit(sol)
    centers = np.asarray(sol.params.centers)
    for p in DISTINCT:
        assert np.min(np.linalg.norm(centers - p, axis=1)) < 1e-12
    assert float(km.inertia(sol.params, X_DUP)) == pytest.approx(0.0, abs=1e-20)


# ----------------------------------------------------------------------------- lost component


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_component_that_loses_all_its_points(ct):
    """A component started at (1e3, 1e3) gets zero responsibility for every point; its
    weight must go to ~0 and everything must stay finite (no 0/0 in its M-step)."""
    model = emjax.GaussianMixture(3, ct)
    p0 = gmm_params0(model, [[0.0, 0.0], [6.0, 0.0], [1e3, 1e3]], weights=[0.45, 0.45, 0.1])
    sol = emjax.fit(model, X_BASE, params0=p0, max_steps=MAX_STEPS)
    assert_finite_fit(sol)
    w = np.asarray(sol.params.weights)
    assert w[2] < 1e-10
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(w[:2], [0.5, 0.5], atol=0.05)
    assert np.all(variances(model, sol.params) > 0)
    assert not np.any(np.asarray(model.predict(sol.params, X_BASE)) == 2)
    assert float(sol.log_likelihood) == pytest.approx(
        float(model.log_likelihood(sol.params, X_BASE)), rel=1e-12
    )
    # The ELBO trace is finite and never decreases (EM's monotonicity survives the empty
    # component).
    trace = np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]
    assert np.all(np.isfinite(trace))
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


# ----------------------------------------------------------------------------- constant feature


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_constant_feature_column(ct):
    X = X_BASE.copy()
    X[:, 1] = 5.0
    model = emjax.GaussianMixture(3, ct)
    p0 = gmm_params0(model, [[0.0, 5.0], [6.0, 5.0], [3.0, 5.0]])
    sol = emjax.fit(model, X, params0=p0, max_steps=MAX_STEPS)
    assert_finite_fit(sol)
    np.testing.assert_allclose(np.asarray(sol.params.means)[:, 1], 5.0, rtol=1e-12)
    if ct != "spherical":  # spherical averages the zero variance with the other feature's
        np.testing.assert_allclose(variances(model, sol.params)[:, 1], 1e-6, rtol=1e-6)


def test_kmeans_constant_feature_column():
    X = X_BASE.copy()
    X[:, 1] = 5.0
    km = emjax.KMeans(3)
    sol = emjax.fit(km, X, params0=km.make_params(centers=[[0.0, 5.0], [6.0, 5.0], [3.0, 5.0]]))
    assert_finite_fit(sol)
    np.testing.assert_allclose(np.asarray(sol.params.centers)[:, 1], 5.0, rtol=1e-12)


# ----------------------------------------------------------------------------- tiny data


@pytest.mark.parametrize("ct", ["full", "spherical"])
def test_one_component_on_three_points(ct):
    model = emjax.GaussianMixture(1, ct)
    sol = emjax.fit(model, X3, key=KEY)
    assert_finite_fit(sol)
    np.testing.assert_allclose(np.asarray(sol.params.weights), [1.0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sol.params.means), X3.mean(0, keepdims=True), rtol=1e-12)
    cov = np.cov(X3.T, bias=True) + 1e-6 * np.eye(2)  # the ML estimate + reg_covar
    expected = {
        "full": cov[None], "tied": cov, "diag": np.diag(cov)[None],
        "spherical": np.array([np.trace(cov) / 2]),
    }[ct]
    np.testing.assert_allclose(np.asarray(sol.params.covariances), expected, rtol=1e-9, atol=1e-12)
    assert bool(sol.converged)


@pytest.mark.parametrize("ct", ["full", "tied"])
@pytest.mark.parametrize("X", [X3, np.ones((3, 2))], ids=["distinct", "identical"])
def test_gmm_as_many_components_as_points(ct, X):
    """N == K: every component gets one point (or, for identical points, the same one)."""
    model = emjax.GaussianMixture(3, ct, init="random_from_data")
    sol = emjax.fit(model, X, key=KEY, num_restarts=2)
    assert_finite_fit(sol)
    np.testing.assert_allclose(np.asarray(sol.params.weights).sum(), 1.0, rtol=1e-12)
    assert np.all(variances(model, sol.params) > 0)


@pytest.mark.parametrize("X", [X3, np.ones((3, 2))], ids=["distinct", "identical"])
def test_kmeans_as_many_clusters_as_points(X):
    km = emjax.KMeans(3)
    sol = emjax.fit(km, X, key=KEY, num_restarts=2)
    assert_finite_fit(sol)
    assert float(km.inertia(sol.params, X)) == pytest.approx(0.0, abs=1e-20)


# ----------------------------------------------------------------------------- k-means relocation


def test_kmeans_relocates_empty_cluster():
    """scikit-learn's test_kmeans_relocated_clusters: the second centre starts far away and
    gets no points; it must take the farthest point, and Lloyd then reaches inertia 0.25."""
    X = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [1.0, 1.0]])
    km = emjax.KMeans(2)
    sol = emjax.fit(km, X, params0=km.make_params(centers=[[0.5, 0.5], [3.0, 3.0]]))
    assert_finite_fit(sol)
    assert bool(sol.converged)
    assert float(km.inertia(sol.params, X)) == pytest.approx(0.25, rel=1e-12)
    labels = np.asarray(km.predict(sol.params, X))
    # Ties between equally far points may be broken differently from scikit-learn (whose
    # labels are [0, 0, 1, 1]); the partition and the centres are the same.
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]
    centers = np.asarray(sol.params.centers)[np.argsort(np.asarray(sol.params.centers)[:, 0])]
    np.testing.assert_allclose(centers, [[0.25, 0.0], [0.75, 1.0]], atol=1e-12)
    # The classification ELBO: −inertia/(2T) − N log K − (N D / 2) log 2π with T = 1.
    expected = -0.25 / 2 - 4 * np.log(2) - 4 * np.log(2 * np.pi)
    assert float(sol.elbo.total) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- collapse


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_singleton_cluster_without_reg_covar(ct):
    """reg_covar=0 and a component alone on an outlier: its covariance would be 0. The fit
    must not return NaN parameters: either it reports `nonfinite` (throw=False) with finite
    parameters, or it is a finite fit."""
    X = X_BASE.copy()
    X[-1] = [100.0, 100.0]
    model = emjax.GaussianMixture(3, ct, reg_covar=0.0)
    p0 = gmm_params0(model, [[0.0, 0.0], [6.0, 0.0], [100.0, 100.0]])
    sol = emjax.fit(model, X, params0=p0, max_steps=MAX_STEPS, throw=False)
    nonfinite = bool(sol.result == RESULTS.nonfinite)
    assert_finite_fit(sol, allow_nonfinite_result=nonfinite)
    if not nonfinite:
        assert np.all(variances(model, sol.params) > 0)


def test_singleton_cluster_without_reg_covar_throw():
    X = X_BASE.copy()
    X[-1] = [100.0, 100.0]
    model = emjax.GaussianMixture(3, "full", reg_covar=0.0)
    p0 = gmm_params0(model, [[0.0, 0.0], [6.0, 0.0], [100.0, 100.0]])
    try:
        sol = emjax.fit(model, X, params0=p0, max_steps=MAX_STEPS, throw=True)
    except emjax.NonFiniteError as e:
        assert re.search(r"reg_covar|non-finite", str(e)), str(e)
    else:
        assert_finite_fit(sol)


# ----------------------------------------------------------------------------- sample weights

_W12 = np.random.default_rng(1).integers(1, 3, size=len(X_BASE)).astype(float)  # 1s and 2s
_W01 = np.ones(len(X_BASE))
_W01[::4] = 0.0
GMM_MEANS0 = [[0.5, 0.5], [5.0, -0.5], [3.0, 0.0]]
KM_CENTERS0 = [[0.5, 0.5], [5.0, -0.5], [3.0, 0.0]]


@pytest.mark.parametrize("ct", ["full"])
def test_gmm_weight_two_equals_duplicated_row(ct):
    model = emjax.GaussianMixture(3, ct)
    p0 = gmm_params0(model, GMM_MEANS0)
    X_rep = np.repeat(X_BASE, _W12.astype(int), axis=0)
    # rtol=0: both run exactly MAX_STEPS steps (EM is still moving), so the steps match.
    a = emjax.fit(model, X_BASE, params0=p0, sample_weight=_W12, max_steps=MAX_STEPS, rtol=0.0)
    b = emjax.fit(model, X_rep, params0=p0, max_steps=MAX_STEPS, rtol=0.0)
    assert int(a.num_steps) == int(b.num_steps) == MAX_STEPS
    assert float(a.log_likelihood) == pytest.approx(float(b.log_likelihood), rel=1e-10)
    np.testing.assert_allclose(np.asarray(a.elbo_trace), np.asarray(b.elbo_trace), rtol=1e-10)
    assert_trees_close(a.params, b.params)
    assert float(model.log_likelihood(a.params, X_BASE, _W12)) == pytest.approx(
        float(model.log_likelihood(a.params, X_rep)), rel=1e-12
    )


def test_gmm_weight_zero_equals_removed_row():
    model = emjax.GaussianMixture(3, "full")
    p0 = gmm_params0(model, GMM_MEANS0)
    a = emjax.fit(model, X_BASE, params0=p0, sample_weight=_W01, max_steps=MAX_STEPS, rtol=0.0)
    b = emjax.fit(model, X_BASE[_W01 > 0], params0=p0, max_steps=MAX_STEPS, rtol=0.0)
    assert int(a.num_steps) == int(b.num_steps)
    assert float(a.log_likelihood) == pytest.approx(float(b.log_likelihood), rel=1e-10)
    assert_trees_close(a.params, b.params)


@pytest.mark.parametrize(
    "case",
    ["gmm-full-EM", "gmm-diag-HardEM", "kmeans-soft-EM"],
)
def test_weight_zero_row_with_extreme_values_is_ignored(case):
    """A zero-weight row is removed even when its values are huge but finite.

    Regression: its squared distances overflow to inf, and 0·inf made the statistics NaN;
    the M-step guards then froze every component and the fit reported `converged` at
    params0. E-steps now replace zero-weight rows by a harmless point, and NaN statistics
    end a fit as `nonfinite`.
    """
    model_name, ct_or_none, solver_name = case.split("-")
    solver = {"EM": emjax.EM(), "HardEM": emjax.HardEM()}[solver_name]
    if model_name == "gmm":
        model = emjax.GaussianMixture(3, ct_or_none)
        p0 = gmm_params0(model, GMM_MEANS0)
    else:
        model = emjax.KMeans(3, temperature=1.0)
        p0 = model.make_params(centers=KM_CENTERS0)
    X = X_BASE.copy()
    assert _W01[0] == 0.0
    X[0] = [1e200, 1e200]
    kw = dict(params0=p0, solver=solver, max_steps=MAX_STEPS, rtol=0.0, throw=False)
    a = emjax.fit(model, X, sample_weight=_W01, **kw)
    b = emjax.fit(model, X_BASE[_W01 > 0], **kw)
    assert not bool(a.result == RESULTS.nonfinite), a.message
    assert int(a.num_steps) == int(b.num_steps)
    assert float(a.elbo.total) == pytest.approx(float(b.elbo.total), rel=1e-10)
    assert_trees_close(a.params, b.params)


def test_kmeans_weight_two_equals_duplicated_row():
    km = emjax.KMeans(3)
    p0 = km.make_params(centers=KM_CENTERS0)
    X_rep = np.repeat(X_BASE, _W12.astype(int), axis=0)
    a = emjax.fit(km, X_BASE, params0=p0, sample_weight=_W12)
    b = emjax.fit(km, X_rep, params0=p0)
    assert bool(a.converged) and bool(b.converged)
    assert int(a.num_steps) == int(b.num_steps)
    assert_trees_close(a.params, b.params)
    assert float(a.elbo.total) == pytest.approx(float(b.elbo.total), rel=1e-10)
    assert float(a.log_likelihood) == pytest.approx(float(b.log_likelihood), rel=1e-10)
    assert float(km.inertia(a.params, X_BASE, _W12)) == pytest.approx(
        float(km.inertia(b.params, X_rep)), rel=1e-10
    )


def test_kmeans_weight_zero_equals_removed_row():
    km = emjax.KMeans(3)
    p0 = km.make_params(centers=KM_CENTERS0)
    X = X_BASE.copy()
    X[0] = [1e200, 1e200]  # a zero-weight row, however far, is ignored
    assert _W01[0] == 0.0
    a = emjax.fit(km, X, params0=p0, sample_weight=_W01)
    b = emjax.fit(km, X_BASE[_W01 > 0], params0=p0)
    assert_finite_fit(a)
    assert int(a.num_steps) == int(b.num_steps)
    assert_trees_close(a.params, b.params)
    assert float(a.elbo.total) == pytest.approx(float(b.elbo.total), rel=1e-10)
