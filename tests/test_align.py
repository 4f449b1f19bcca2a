"""Label switching: the NumPy Hungarian solver against SciPy, label and component alignment
against brute force, and likelihood invariance under the permutation."""

import itertools

import jax
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

import emjax
from emjax._align import (
    align_components,
    align_labels,
    linear_sum_assignment,
    match_components,
    permute_components,
)

RNG = np.random.default_rng(20240611)


# --------------------------------------------------------------------------- assignment
@pytest.mark.parametrize("maximize", [False, True])
def test_assignment_matches_scipy(maximize):
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, m = rng.integers(1, 9, size=2)
        if trial % 3 == 0:
            cost = rng.normal(size=(n, m))
        elif trial % 3 == 1:
            cost = rng.integers(0, 4, size=(n, m))  # many ties
        else:
            cost = rng.exponential(size=(n, m)) * 1e6
        rows, cols = linear_sum_assignment(cost, maximize=maximize)
        ref_rows, ref_cols = scipy_lsa(cost, maximize=maximize)
        assert len(rows) == len(ref_rows) == min(n, m)
        np.testing.assert_allclose(cost[rows, cols].sum(), cost[ref_rows, ref_cols].sum(),
                                   rtol=1e-12, atol=1e-9)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        assert np.all(np.diff(rows) > 0)
        if trial % 3 != 1:  # continuous costs: the optimum is unique, so is the answer
            np.testing.assert_array_equal(rows, ref_rows)
            np.testing.assert_array_equal(cols, ref_cols)


def test_assignment_large_and_edge_cases():
    cost = np.random.default_rng(1).normal(size=(60, 45))
    rows, cols = linear_sum_assignment(cost)
    ref = scipy_lsa(cost)
    np.testing.assert_allclose(cost[rows, cols].sum(), cost[ref].sum(), rtol=1e-12)
    rows, cols = linear_sum_assignment(np.zeros((0, 3)))
    assert rows.size == cols.size == 0
    with pytest.raises(ValueError, match="finite"):
        linear_sum_assignment(np.array([[0.0, np.inf], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="2-D"):
        linear_sum_assignment(np.zeros(3))


# --------------------------------------------------------------------------- labels
def test_align_labels_recovers_a_renaming_exactly():
    ref = RNG.integers(0, 5, size=200)
    sigma = RNG.permutation(5)
    renamed = sigma[ref]  # labels of the same clustering under other names
    perm, relabelled = align_labels(ref, renamed)
    np.testing.assert_array_equal(relabelled, ref)
    np.testing.assert_array_equal(perm[sigma], np.arange(5))


def test_align_labels_maximises_agreement_brute_force():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        ref = rng.integers(0, 4, size=50)
        noisy = np.where(rng.uniform(size=50) < 0.4, rng.integers(0, 4, size=50), ref)
        labels = rng.permutation(4)[noisy]
        perm, relabelled = align_labels(ref, labels, num_labels=4)
        best = max(np.sum(np.asarray(p)[labels] == ref)
                   for p in itertools.permutations(range(4)))
        assert np.sum(relabelled == ref) == best
        np.testing.assert_array_equal(relabelled, perm[labels])
        assert sorted(perm.tolist()) == [0, 1, 2, 3]


def test_align_labels_different_label_counts_and_errors():
    perm, relabelled = align_labels([0, 0, 1, 1], [2, 2, 0, 0])
    assert perm.shape == (3,) and relabelled.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="same length"):
        align_labels([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="labels >= 0"):
        align_labels([0, -1], [0, 1])
    with pytest.raises(ValueError, match="integer"):
        align_labels([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="num_labels"):
        align_labels([0, 3], [0, 1], num_labels=2)
    with pytest.raises(ValueError, match="1-D"):
        align_labels(np.zeros((2, 2), int), np.zeros((2, 2), int))


# --------------------------------------------------------------------------- components
def _spd(K, D, rng):
    a = rng.normal(size=(K, D, D))
    return a @ np.swapaxes(a, 1, 2) + D * np.eye(D)


def _gmm_params(covariance_type, K=4, D=3, rng=RNG):
    model = emjax.GaussianMixture(K, covariance_type=covariance_type)
    cov = {"full": _spd(K, D, rng), "diag": rng.uniform(0.5, 2.0, (K, D)),
           "spherical": rng.uniform(0.5, 2.0, K), "tied": _spd(1, D, rng)[0]}[covariance_type]
    w = rng.dirichlet(np.ones(K))
    params = model.make_params(weights=w, means=rng.normal(scale=5.0, size=(K, D)),
                               covariances=cov)
    return model, params


def _assert_tree_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_gmm_permuted_copy_recovered_and_likelihood_invariant(covariance_type):
    model, params = _gmm_params(covariance_type)
    sigma = np.array([2, 0, 3, 1])
    shuffled = permute_components(params, sigma)
    np.testing.assert_array_equal(np.asarray(shuffled.means), np.asarray(params.means)[sigma])
    if covariance_type == "tied":
        np.testing.assert_array_equal(np.asarray(shuffled.covariances),
                                      np.asarray(params.covariances))
    else:
        np.testing.assert_array_equal(np.asarray(shuffled.covariances),
                                      np.asarray(params.covariances)[sigma])
    perm = match_components(params, shuffled)
    np.testing.assert_array_equal(sigma[perm], np.arange(4))
    for cost in ("means", "params"):
        _assert_tree_equal(align_components(params, shuffled, cost=cost), params)
    X = RNG.normal(scale=4.0, size=(30, 3))
    np.testing.assert_allclose(model.log_likelihood(shuffled, X), model.log_likelihood(params, X),
                               rtol=1e-12)
    # Labels predicted with the shuffled parameters map back through sigma = argsort(perm).
    z_ref = np.asarray(model.predict(params, X))
    z_new = np.asarray(model.predict(shuffled, X))
    np.testing.assert_array_equal(sigma[z_new], z_ref)
    np.testing.assert_array_equal(np.argsort(perm)[z_new], z_ref)


def test_ambiguous_covariances_need_the_model():
    # K == D: (2, 2) covariances could be "diag" rows or one "tied" matrix.
    for ct in ("diag", "tied"):
        model, params = _gmm_params(ct, K=2, D=2)
        shuffled = permute_components(params, [1, 0], model=model)
        with pytest.raises(ValueError, match="model="):
            align_components(params, shuffled)
        _assert_tree_equal(align_components(params, shuffled, model=model), params)


def test_batch_of_restarts_aligned_each_on_its_own():
    model, params = _gmm_params("full")
    sigmas = np.array([RNG.permutation(4) for _ in range(5)])
    batch = jax.tree.map(lambda *a: np.stack(a),
                         *[permute_components(params, s) for s in sigmas])
    perms = match_components(params, batch)
    assert perms.shape == (5, 4)
    for s, p in zip(sigmas, perms, strict=True):
        np.testing.assert_array_equal(s[p], np.arange(4))
    aligned = align_components(params, batch)
    for r in range(5):
        _assert_tree_equal(jax.tree.map(lambda a, r=r: a[r], aligned), params)
    # one permutation for every restart
    same = permute_components(batch, np.arange(4))
    _assert_tree_equal(same, batch)


def test_kmeans_and_bayesian_gmm():
    km = emjax.KMeans(3)
    centres = RNG.normal(scale=5.0, size=(3, 2))
    p = km.make_params(centers=centres)
    _assert_tree_equal(align_components(p, permute_components(p, [1, 2, 0])), p)

    bgmm = emjax.BayesianGaussianMixture(3, covariance_type="diag",
                                         weight_prior="dirichlet_distribution",
                                         mean_prior=np.zeros(2), covariance_prior=np.ones(2))
    bp = bgmm.make_params(weight_concentration=np.array([3.0, 5.0, 9.0]),
                          mean_precision=np.array([3.0, 5.0, 9.0]),
                          means=centres, degrees_of_freedom=np.array([4.0, 6.0, 10.0]),
                          covariances=RNG.uniform(0.5, 2.0, (3, 2)))
    shuffled = permute_components(bp, [2, 0, 1])
    np.testing.assert_array_equal(np.asarray(shuffled.degrees_of_freedom), [10.0, 4.0, 6.0])
    _assert_tree_equal(align_components(bp, shuffled), bp)
    X = RNG.normal(scale=4.0, size=(20, 2))
    np.testing.assert_allclose(bgmm.log_likelihood(shuffled, X), bgmm.log_likelihood(bp, X),
                               rtol=1e-12)
    # Stick-breaking (2, K) Beta parameters are permuted along K.
    dp = emjax.BayesianGaussianMixture(3, covariance_type="spherical",
                                       mean_prior=np.zeros(2), covariance_prior=1.0)
    dpp = dp.make_params(weight_concentration=np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
                         mean_precision=np.ones(3), means=centres,
                         degrees_of_freedom=np.full(3, 3.0), covariances=np.ones(3))
    np.testing.assert_array_equal(
        np.asarray(permute_components(dpp, [2, 0, 1]).weight_concentration),
        [[3.0, 1.0, 2.0], [6.0, 4.0, 5.0]])


def test_hmm_states_permute_transition_rows_and_columns():
    hmm = emjax.HiddenMarkovModel(3, emissions=emjax.GaussianEmissions("diag"))
    A = RNG.dirichlet(np.ones(3), size=3)
    p = hmm.make_params(initial=RNG.dirichlet(np.ones(3)), transition=A,
                        means=RNG.normal(scale=5.0, size=(3, 2)),
                        covariances=RNG.uniform(0.5, 2.0, (3, 2)))
    sigma = np.array([1, 2, 0])
    q = permute_components(p, sigma)
    np.testing.assert_array_equal(np.asarray(q.transition), A[np.ix_(sigma, sigma)])
    np.testing.assert_array_equal(np.asarray(q.initial), np.asarray(p.initial)[sigma])
    _assert_tree_equal(align_components(p, q), p)
    _assert_tree_equal(align_components(p, q, cost="params"), p)
    X = RNG.normal(scale=4.0, size=(25, 2))
    np.testing.assert_allclose(hmm.log_likelihood(q, X), hmm.log_likelihood(p, X), rtol=1e-12)
    np.testing.assert_array_equal(sigma[np.asarray(hmm.predict(q, X))],
                                  np.asarray(hmm.predict(p, X)))

    cat = emjax.HiddenMarkovModel(3, emissions=emjax.CategoricalEmissions(4))
    cp = cat.make_params(initial=np.ones(3) / 3, transition=A,
                         probs=RNG.dirichlet(np.ones(4), size=3))
    _assert_tree_equal(align_components(cp, permute_components(cp, sigma)), cp)


def test_component_alignment_errors():
    _, p = _gmm_params("full")
    km = emjax.KMeans(4).make_params(centers=np.zeros((4, 3)))
    with pytest.raises(TypeError, match="same kind"):
        align_components(p, km)
    _, p3 = _gmm_params("full", K=3)
    with pytest.raises(ValueError, match="as many"):
        align_components(p, p3)
    with pytest.raises(ValueError, match="cost"):
        align_components(p, p, cost="kl")
    with pytest.raises(ValueError, match="shape"):
        align_components(p, p, cost=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="permutation"):
        permute_components(p, [0, 0, 1, 2])
    with pytest.raises(TypeError, match="Unsupported"):
        permute_components({"means": np.zeros((2, 2))}, [1, 0])
    # an explicit cost matrix
    cost = np.ones((4, 4)) - np.eye(4)[[3, 2, 1, 0]]
    assert match_components(p, p, cost=cost).tolist() == [3, 2, 1, 0]
