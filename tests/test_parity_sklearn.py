"""Parity with scikit-learn in float64, from the same initial parameters."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emjax

COVARIANCE_TYPES = ["full", "diag", "spherical", "tied"]


def _blobs(seed=0, n=250, d=3, k=3, spread=3.5):
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(k):
        a = rng.normal(size=(d, d))
        parts.append(rng.normal(size=(n, d)) @ a + spread * i * np.ones(d) + rng.normal(size=d))
    return np.concatenate(parts)


def _initial(X, ct, k, seed):
    """Initial parameters from one scikit-learn step from random data points."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk0 = SkGaussianMixture(k, covariance_type=ct, max_iter=1, tol=0, random_state=seed,
                                init_params="random_from_data").fit(X)
    return sk0.weights_, sk0.means_, sk0.covariances_, sk0.precisions_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset", ["blobs", "old_faithful"])
def test_gaussian_mixture_matches_sklearn(covariance_type, dataset):
    if dataset == "blobs":
        X, k, steps = _blobs(), 3, 30
    else:
        X, k, steps = emjax.datasets.load_old_faithful(), 3, 40
    w0, m0, c0, p0 = _initial(X, covariance_type, k, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk = SkGaussianMixture(k, covariance_type=covariance_type, max_iter=steps, tol=0,
                               weights_init=w0, means_init=m0, precisions_init=p0).fit(X)

    model = emjax.GaussianMixture(k, covariance_type=covariance_type)
    params0 = model.make_params(weights=w0, means=m0, covariances=c0)
    sol = emjax.fit(model, X, params0=params0, max_steps=steps, rtol=0.0, atol=0.0)

    # tol=0 in both: emjax stops early only if the ELBO repeats exactly (a fixed point).
    assert int(sol.num_steps) == steps or bool(sol.converged)
    ll_sk = sk.score(X) * X.shape[0]
    np.testing.assert_allclose(float(sol.log_likelihood), ll_sk, rtol=1e-8)
    np.testing.assert_allclose(float(model.log_likelihood(sol.params, X)), ll_sk, rtol=1e-8)
    np.testing.assert_allclose(sol.params.weights, sk.weights_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(sol.params.means, sk.means_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(sol.params.covariances, sk.covariances_, rtol=1e-6, atol=1e-10)
    # Per-point quantities and criteria agree too.
    np.testing.assert_allclose(model.log_prob(sol.params, X), sk.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(model.predict_proba(sol.params, X), sk.predict_proba(X), atol=1e-8)
    np.testing.assert_array_equal(model.predict(sol.params, X), sk.predict(X))
    np.testing.assert_allclose(float(model.bic(sol.params, X)), sk.bic(X), rtol=1e-8)
    np.testing.assert_allclose(float(model.aic(sol.params, X)), sk.aic(X), rtol=1e-8)
    assert model.num_free_params(X.shape[1]) == sk._n_parameters()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_elbo_trace_matches_sklearn_lower_bounds(covariance_type):
    """Each step's ELBO is the log-likelihood scikit-learn reports (as a per-sample mean)."""
    X = _blobs(seed=3)
    w0, m0, c0, p0 = _initial(X, covariance_type, 3, seed=2)
    steps = 12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk = SkGaussianMixture(3, covariance_type=covariance_type, max_iter=steps, tol=0,
                               weights_init=w0, means_init=m0, precisions_init=p0).fit(X)
    model = emjax.GaussianMixture(3, covariance_type=covariance_type)
    sol = emjax.fit(model, X, params0=model.make_params(weights=w0, means=m0, covariances=c0),
                    max_steps=steps, rtol=0.0)
    n = int(sol.num_steps)
    # sklearn's lower_bounds_[t] is the mean log-likelihood at the parameters after t steps.
    np.testing.assert_allclose(np.asarray(sol.elbo_trace[:n]) / X.shape[0],
                               np.asarray(sk.lower_bounds_[:n]), rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_matches_sklearn_lloyd(seed):
    X = _blobs(seed=seed, k=4, spread=2.5)
    rng = np.random.default_rng(seed)
    c0 = X[rng.choice(X.shape[0], 4, replace=False)]
    sk = SkKMeans(4, init=c0, n_init=1, algorithm="lloyd", tol=0, max_iter=500).fit(X)
    km = emjax.KMeans(4)
    sol = emjax.fit(km, X, params0=km.make_params(centers=c0), rtol=0.0, atol=0.0, max_steps=500)
    assert bool(sol.converged)
    np.testing.assert_allclose(sol.params.centers, sk.cluster_centers_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(float(km.inertia(sol.params, X)), sk.inertia_, rtol=1e-10)
    np.testing.assert_array_equal(km.predict(sol.params, X), sk.labels_)
    np.testing.assert_allclose(km.transform(sol.params, X), sk.transform(X), rtol=1e-9, atol=1e-9)


def test_kmeans_matches_sklearn_with_sample_weight():
    X = _blobs(seed=5, k=3)
    w = np.random.default_rng(5).uniform(0.1, 3.0, X.shape[0])
    c0 = X[[0, 300, 600]]
    sk = SkKMeans(3, init=c0, n_init=1, algorithm="lloyd", tol=0, max_iter=500).fit(X, sample_weight=w)
    km = emjax.KMeans(3)
    sol = emjax.fit(km, X, params0=km.make_params(centers=c0), sample_weight=w, rtol=0.0, max_steps=500)
    np.testing.assert_allclose(sol.params.centers, sk.cluster_centers_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(float(km.inertia(sol.params, X, sample_weight=w)), sk.inertia_, rtol=1e-10)


def test_kmeans_relocates_empty_clusters_like_sklearn():
    # scikit-learn's test_kmeans_relocated_clusters: the far centre must take a point.
    X = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [1.0, 1.0]])
    init = np.array([[0.5, 0.5], [3.0, 3.0]])
    sk = SkKMeans(2, init=init, n_init=1, algorithm="lloyd").fit(X)
    km = emjax.KMeans(2)
    sol = emjax.fit(km, X, params0=km.make_params(centers=init), rtol=0.0)
    assert float(km.inertia(sol.params, X)) == pytest.approx(0.25)
    assert sk.inertia_ == pytest.approx(0.25)
    got = sorted(map(tuple, np.asarray(sol.params.centers)))
    want = sorted(map(tuple, sk.cluster_centers_))
    np.testing.assert_allclose(got, want)


def test_kmeans_plusplus_fit_is_as_good_as_sklearn_on_old_faithful():
    """Independent restarts: emjax's best of 16 is no worse than sklearn's best of 16."""
    X = emjax.datasets.load_old_faithful()
    km = emjax.KMeans(3)
    sol = emjax.fit(km, X, key=jax.random.key(0), num_restarts=16, rtol=0.0, max_steps=300)
    sk = SkKMeans(3, n_init=16, random_state=0, algorithm="lloyd").fit(X)
    assert float(km.inertia(sol.params, X)) <= sk.inertia_ * (1 + 1e-9)
