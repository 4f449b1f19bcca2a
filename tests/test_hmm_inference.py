"""HMM inference (emjax.hmm) against brute-force enumeration of every state path.

On tiny models (K <= 3 states, T <= 6 steps) every quantity has a closed form as a sum over
the K^T paths: the log-likelihood, the smoothed and filtered marginals, the expected
transition counts, the Viterbi path. The sequential and the parallel (associative-scan)
forward-backward must both equal them to 1e-10 in float64.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax import hmm


def _log(p):
    with np.errstate(divide="ignore"):
        return np.log(p)


def _enumerate(pi, A, ll):
    """Every path's log p(x, z), and the exact posterior quantities from them."""
    T, K = ll.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    log_joint = _log(pi)[paths[:, 0]] + ll[0, paths[:, 0]]
    for t in range(1, T):
        log_joint = log_joint + _log(A)[paths[:, t - 1], paths[:, t]] + ll[t, paths[:, t]]
    log_z = np.logaddexp.reduce(log_joint)
    w = np.exp(log_joint - log_z)
    smoothed = np.zeros((T, K))
    counts = np.zeros((K, K))
    for path, wi in zip(paths, w, strict=True):
        smoothed[np.arange(T), path] += wi
        for t in range(T - 1):
            counts[path[t], path[t + 1]] += wi
    filtered = np.zeros((T, K))
    for t in range(T):
        # p(z_t | x_{1:t}): enumerate the prefix only.
        prefix = np.array(list(itertools.product(range(K), repeat=t + 1)))
        lj = _log(pi)[prefix[:, 0]] + ll[0, prefix[:, 0]]
        for s in range(1, t + 1):
            lj = lj + _log(A)[prefix[:, s - 1], prefix[:, s]] + ll[s, prefix[:, s]]
        pw = np.exp(lj - np.logaddexp.reduce(lj))
        np.add.at(filtered[t], prefix[:, t], pw)
    best = int(np.argmax(log_joint))
    return log_z, smoothed, counts, filtered, paths[best], log_joint[best]


def _problem(seed, K, T, zeros=False):
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    if zeros:  # left-to-right: start in 0, never go back
        pi = np.eye(K)[0]
        A = np.triu(A)
        A = A / A.sum(1, keepdims=True)
    ll = rng.normal(scale=2.0, size=(T, K))
    return pi, A, ll


PROBLEMS = [(0, 2, 5, False), (1, 3, 6, False), (2, 3, 1, False), (3, 2, 2, False),
            (4, 3, 6, True), (5, 3, 4, True)]


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"seed{p[0]}-K{p[1]}-T{p[2]}{'-lr' if p[3] else ''}")
def test_forward_backward_equals_enumeration(problem, parallel):
    pi, A, ll = _problem(*problem)
    log_z, smoothed, counts, filtered, _, _ = _enumerate(pi, A, ll)
    post = hmm.forward_backward(pi, A, ll, parallel=parallel)
    np.testing.assert_allclose(post.log_likelihood, log_z, rtol=1e-10)
    np.testing.assert_allclose(post.smoothed_probs, smoothed, atol=1e-10)
    np.testing.assert_allclose(post.transition_counts, counts, atol=1e-10)
    np.testing.assert_allclose(post.filtered_probs, filtered, atol=1e-10)
    log_p, filt = hmm.filter(pi, A, ll, parallel=parallel)
    np.testing.assert_allclose(log_p, log_z, rtol=1e-10)
    np.testing.assert_allclose(filt, filtered, atol=1e-10)
    if problem[3]:  # structural zeros: exactly zero posterior mass on forbidden moves
        assert np.all(np.asarray(post.transition_counts)[np.asarray(A) == 0] == 0.0)


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"seed{p[0]}")
def test_viterbi_equals_enumerated_argmax(problem):
    pi, A, ll = _problem(*problem)
    *_, best_path, best_log = _enumerate(pi, A, ll)
    path, log_prob = hmm.viterbi(pi, A, ll, return_log_prob=True)
    np.testing.assert_array_equal(path, best_path)
    np.testing.assert_allclose(log_prob, best_log, rtol=1e-12)


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_padding_is_ignored(parallel):
    pi, A, ll = _problem(7, 3, 5)
    log_z, smoothed, counts, filtered, best_path, _ = _enumerate(pi, A, ll)
    padded = np.concatenate([ll, np.full((4, 3), 1e3)])  # garbage beyond the end
    post = hmm.forward_backward(pi, A, padded, 5, parallel=parallel)
    np.testing.assert_allclose(post.log_likelihood, log_z, rtol=1e-10)
    np.testing.assert_allclose(post.smoothed_probs[:5], smoothed, atol=1e-10)
    np.testing.assert_array_equal(post.smoothed_probs[5:], 0.0)
    np.testing.assert_array_equal(post.filtered_probs[5:], 0.0)
    np.testing.assert_allclose(post.transition_counts, counts, atol=1e-10)
    path = hmm.viterbi(pi, A, padded, 5)
    np.testing.assert_array_equal(path[:5], best_path)
    np.testing.assert_array_equal(path[5:], -1)
    # A traced length, vmapped over a batch of sequences.
    lengths = jnp.array([5, 2, 9])
    batch = jnp.stack([padded] * 3)
    out = jax.vmap(lambda lk, n: hmm.forward_backward(pi, A, lk, n, parallel=parallel))(batch, lengths)
    np.testing.assert_allclose(out.log_likelihood[0], log_z, rtol=1e-10)
    two = _enumerate(pi, A, ll[:2])[0]
    np.testing.assert_allclose(out.log_likelihood[1], two, rtol=1e-10)


def test_wikipedia_example():
    """The example of hmmlearn's TestBaseAgainstWikipedia: healthy/fever, 5 observations."""
    pi = np.array([0.6, 0.4])
    A = np.array([[0.7, 0.3], [0.4, 0.6]])
    B = np.array([[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    x = np.array([0, 1, 2, 1, 0])
    ll = np.log(B[:, x].T)
    log_z, smoothed, *_ , best_path, best_log = _enumerate(pi, A, ll)
    post = hmm.forward_backward(pi, A, ll)
    np.testing.assert_allclose(post.log_likelihood, log_z, rtol=1e-12)
    path, log_prob = hmm.viterbi(pi, A, ll, return_log_prob=True)
    assert path.tolist() == [0, 0, 1, 0, 0] == best_path.tolist()
    np.testing.assert_allclose(log_prob, best_log, rtol=1e-12)


def test_smoothing_is_the_gradient_of_the_log_likelihood():
    """Forward-backward is backprop (Eisner 2016): γ_t = ∂ log p / ∂ℓ_t and
    Σ_t ξ_t = A ⊙ ∂ log p / ∂A, through the sequential pass's own autodiff."""
    pi, A, ll = _problem(8, 3, 30)
    post = hmm.forward_backward(pi, A, ll)
    d_ll = jax.grad(lambda lk: hmm.forward_backward(pi, A, lk).log_likelihood)(jnp.asarray(ll))
    d_A = jax.grad(lambda a: hmm.forward_backward(pi, a, ll).log_likelihood)(jnp.asarray(A))
    np.testing.assert_allclose(d_ll, post.smoothed_probs, atol=1e-12)
    np.testing.assert_allclose(A * d_A, post.transition_counts, atol=1e-12)


def test_gradients_are_finite_with_structural_zeros():
    pi, A, ll = _problem(9, 3, 8, zeros=True)
    for parallel in (False, True):
        g = jax.grad(lambda a, p=parallel: hmm.forward_backward(pi, a, ll, parallel=p).log_likelihood)(
            jnp.asarray(A))
        assert np.isfinite(np.asarray(g)).all()


def test_parallel_equals_sequential_on_a_long_sequence():
    rng = np.random.default_rng(10)
    K, T = 4, 1000
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K) * 0.5, size=K)
    ll = rng.normal(scale=3.0, size=(T, K))
    seq = hmm.forward_backward(pi, A, ll)
    par = hmm.forward_backward(pi, A, ll, parallel=True)
    np.testing.assert_allclose(par.log_likelihood, seq.log_likelihood, rtol=1e-11)
    np.testing.assert_allclose(par.smoothed_probs, seq.smoothed_probs, atol=1e-9)
    np.testing.assert_allclose(par.transition_counts, seq.transition_counts, rtol=1e-9, atol=1e-9)
    # float32 on the same problem: finite, rows of probabilities summing to 1.
    seq32 = hmm.forward_backward(*(jnp.asarray(a, jnp.float32) for a in (pi, A, ll)))
    par32 = hmm.forward_backward(*(jnp.asarray(a, jnp.float32) for a in (pi, A, ll)), parallel=True)
    for p in (seq32, par32):
        assert np.isfinite(np.asarray(p.smoothed_probs)).all()
        np.testing.assert_allclose(np.asarray(p.smoothed_probs).sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(par32.smoothed_probs, seq32.smoothed_probs, atol=1e-4)


def test_log_space_survives_outliers_in_float32():
    """An outlier 1e4 standard deviations out makes every emission likelihood underflow in
    probability space (hmmlearn's 'scaling' raises); log space does not notice."""
    ll = np.zeros((50, 2), np.float32)
    ll[:, 1] = -1.0
    ll[25] = [-5e7, -4.9e7]
    post = hmm.forward_backward(jnp.array([0.5, 0.5], jnp.float32),
                                jnp.array([[0.9, 0.1], [0.1, 0.9]], jnp.float32), jnp.asarray(ll))
    assert np.isfinite(float(post.log_likelihood))
    assert np.isfinite(np.asarray(post.smoothed_probs)).all()
    np.testing.assert_allclose(np.asarray(post.smoothed_probs)[25], [0.0, 1.0], atol=1e-6)


def test_sampling():
    pi = jnp.array([1.0, 0.0, 0.0])
    A = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert hmm.sample(jax.random.key(0), pi, A, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    # Posterior samples: their frequencies match the smoothed marginals.
    p, A2, ll = _problem(11, 3, 6)
    keys = jax.random.split(jax.random.key(1), 4000)
    paths = jax.vmap(lambda k: hmm.sample_posterior(k, p, A2, ll))(keys)
    freq = np.stack([(np.asarray(paths) == k).mean(0) for k in range(3)], axis=1)
    smoothed = hmm.forward_backward(p, A2, ll).smoothed_probs
    np.testing.assert_allclose(freq, smoothed, atol=0.035)
    # Padded steps are -1.
    assert (hmm.sample_posterior(jax.random.key(2), p, A2, np.concatenate([ll, ll]), 6)[6:] == -1).all()


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="transition_matrix"):
        hmm.forward_backward(np.ones(2) / 2, np.eye(3), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="log_likelihoods"):
        hmm.viterbi(np.ones(2) / 2, np.eye(2), np.zeros((4, 3)))


def test_model_posterior_matches_the_functions():
    """The model's E-step statistics are the functions' outputs (one sequence)."""
    model = emjax.HiddenMarkovModel(2, emissions=emjax.CategoricalEmissions(3))
    p = model.make_params(initial=[0.6, 0.4], transition=[[0.7, 0.3], [0.4, 0.6]],
                          probs=[[0.5, 0.4, 0.1], [0.1, 0.3, 0.6]])
    x = np.array([0, 1, 2, 1, 0])
    ll = model.emission_log_likelihoods(p, x)
    np.testing.assert_allclose(ll, np.log(np.asarray(p.emissions.probs)[:, x].T), rtol=1e-12)
    post = hmm.forward_backward(p.initial, p.transition, ll)
    np.testing.assert_allclose(model.predict_proba(p, x), post.smoothed_probs, atol=1e-12)
    np.testing.assert_allclose(model.log_likelihood(p, x), post.log_likelihood, rtol=1e-12)
    assert model.predict(p, x).tolist() == [0, 0, 1, 0, 0]
