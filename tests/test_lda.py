"""Latent Dirichlet allocation: parity with scikit-learn, sparse = dense, online = batch,
validation, float32, gradients, learned priors, and a gensim smoke comparison.

scikit-learn's batch LDA differs from emjax's in two places that are not the algorithm:

- during ``fit`` its E-step starts every document's γ from a random ``Gamma(100, 1/100)``
  draw (``random_init=True``); emjax (like scikit-learn's ``transform``, ``score`` and
  ``perplexity``) starts from γ = 1. Early in a fit the topics are nearly identical and a
  document's inner loop can end at another of its optima, so the two fits do not agree
  unless scikit-learn's E-step is given γ = 1 too (`_ones_init`).
- its digamma (``_online_lda_fast.psi``) is an asymptotic series "optimized for speed, not
  accuracy" with errors of about 2e-9; emjax uses ``jax.scipy.special.digamma``.
  `_exact_digamma` swaps in SciPy's, after which the fits agree to rounding (~1e-12).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.decomposition._lda as sk_lda_module
from _helpers import exact_dirichlet_expectation_2d, ones_init, use_exact_digamma
from sklearn.decomposition import LatentDirichletAllocation as SkLDA

import emjax

K = 4


def _corpus(seed=0, num_docs=120, num_words=40, num_topics=K, length=60, eta=0.2, alpha=0.3):
    """Documents drawn from LDA's generative process (a few empty ones appended)."""
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(num_words, eta), num_topics)
    theta = rng.dirichlet(np.full(num_topics, alpha), num_docs)
    lengths = rng.poisson(length, num_docs)
    docs = np.stack([rng.multinomial(n, t @ beta) for n, t in zip(lengths, theta, strict=True)])
    return docs.astype(np.float64)


@pytest.fixture(scope="module")
def X():
    X = _corpus()
    X[[5, 77]] = 0.0  # empty documents are valid
    return X


def _sklearn_init(num_words, seed=0, num_topics=K):
    """scikit-learn's initial λ (components_ before its first iteration)."""
    sk = SkLDA(num_topics, random_state=seed)
    sk._init_latent_vars(num_words, np.float64)
    return sk.components_.copy()


_ones_init = ones_init
_exact_2d = exact_dirichlet_expectation_2d


@pytest.fixture
def _exact_digamma(monkeypatch):
    use_exact_digamma(monkeypatch)


def _fit(model, data, lam0, steps, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        return emjax.fit(model, data, params0=model.make_params(topic_word=lam0),
                         max_steps=steps, rtol=0.0, **kwargs)


# ----------------------------------------------------------------------------- parity


def test_batch_matches_sklearn(X, _exact_digamma):
    """Same λ0, same settings, ten EM iterations: the same components, bound, perplexity
    and document–topic distributions (scikit-learn with SciPy's digamma and γ0 = 1)."""
    lam0 = _sklearn_init(X.shape[1])
    model = emjax.LatentDirichletAllocation(num_topics=K)
    sol = _fit(model, X, lam0, 10)
    sk = _ones_init(SkLDA(K, learning_method="batch", max_iter=10, random_state=0)).fit(X)
    np.testing.assert_allclose(sol.params.topic_word, sk.components_, rtol=1e-10)
    np.testing.assert_allclose(float(model.perplexity(sol.params, X)), sk.perplexity(X), rtol=1e-12)
    np.testing.assert_allclose(float(model.score(sol.params, X)), sk.score(X), rtol=1e-12)
    # The fit's ELBO at its last iterate is scikit-learn's bound there.
    np.testing.assert_allclose(float(sol.elbo.total), sk.score(X), rtol=1e-12)
    np.testing.assert_allclose(model.transform(sol.params, X), sk.transform(X), atol=1e-12)
    np.testing.assert_allclose(model.topic_word_distributions(sol.params),
                               sk.components_ / sk.components_.sum(1, keepdims=True), rtol=1e-10)


@pytest.mark.slow
def test_batch_matches_unpatched_sklearn_digamma(X):
    """With scikit-learn's own (approximate) digamma, only γ0 aligned: agreement to the
    accuracy of that digamma; perplexity of the same λ agrees with no patch at all."""
    lam0 = _sklearn_init(X.shape[1])
    model = emjax.LatentDirichletAllocation(num_topics=K)
    sol = _fit(model, X, lam0, 10)
    sk = _ones_init(SkLDA(K, max_iter=10, random_state=0)).fit(X)
    np.testing.assert_allclose(sol.params.topic_word, sk.components_, rtol=2e-7)
    np.testing.assert_allclose(float(model.perplexity(sol.params, X)), sk.perplexity(X), rtol=1e-8)
    # scikit-learn's perplexity (γ0 = 1 there) of emjax's own λ: nothing patched.
    plain = SkLDA(K, max_iter=0, random_state=0).fit(X)
    plain.components_ = np.asarray(sol.params.topic_word)
    plain.exp_dirichlet_component_ = np.exp(sk_lda_module._dirichlet_expectation_2d(plain.components_))
    np.testing.assert_allclose(float(model.perplexity(sol.params, X)), plain.perplexity(X),
                               rtol=1e-8)


@pytest.mark.slow
def test_online_matches_sklearn_online(X, _exact_digamma):
    """The whole corpus as the minibatch: emjax.OnlineEM (ρ_t = (t + 1)^−0.7, first ρ = 1)
    equals scikit-learn's online update with learning_offset = 0. scikit-learn's fit
    refuses learning_offset < 1 (its first ρ is then < 1, blending in the random λ0, which
    OnlineEM never does), so its own update is driven through ``_em_step``."""
    M, V = X.shape
    lam0 = _sklearn_init(V)
    model = emjax.LatentDirichletAllocation(num_topics=K)
    online = emjax.OnlineEM(batch_size=M, offset=1.0, decay=0.7)
    sol = _fit(model, X, lam0, 8, solver=online, key=jax.random.key(0))
    sk = _ones_init(SkLDA(K, learning_method="online", learning_decay=0.7, random_state=0))
    sk._init_latent_vars(V, np.float64)
    sk.learning_offset = 0.0
    for _ in range(8):
        sk._em_step(X, total_samples=M, batch_update=False)
    np.testing.assert_allclose(sol.params.topic_word, sk.components_, rtol=1e-10)


def test_online_minibatches_match_sklearn_online_fit(X, _exact_digamma):
    """scikit-learn's own online fit (minibatches of 32 documents in order; its update count
    starts at 1, so ρ_t = (10 + 1 + t)^−0.7 and its first ρ < 1 blends in the initial λ):
    OnlineEM(shuffle=False, offset=11) from the same λ0 starts its running statistics at
    λ0 − η (`stats_from_params`) and gives the same λ."""
    M, V = X.shape
    lam0 = _sklearn_init(V)
    model = emjax.LatentDirichletAllocation(num_topics=K)
    online = emjax.OnlineEM(batch_size=32, offset=11.0, decay=0.7, shuffle=False)
    sol = _fit(model, X, lam0, 3, solver=online, key=jax.random.key(0))
    sk = _ones_init(SkLDA(K, learning_method="online", batch_size=32, learning_offset=10.0,
                          learning_decay=0.7, max_iter=3, random_state=0))
    sk.fit(X)
    np.testing.assert_allclose(sol.params.topic_word, sk.components_, rtol=1e-10)
    # Without the initial statistics (ρ_0 = 1 would discard λ0) the answer differs.
    assert not np.allclose(sol.params.topic_word, _fit(
        model, X, lam0, 3, key=jax.random.key(0),
        solver=emjax.OnlineEM(batch_size=32, offset=1.0, decay=0.7, shuffle=False),
    ).params.topic_word, rtol=1e-3)


@pytest.mark.slow
def test_online_with_whole_corpus_and_unit_step_is_batch(X):
    """SVI with the whole corpus as the minibatch and ρ = 1 is batch variational EM."""
    lam0 = _sklearn_init(X.shape[1])
    model = emjax.LatentDirichletAllocation(num_topics=K)
    batch = _fit(model, X, lam0, 6)
    online = _fit(model, X, lam0, 6, solver=emjax.OnlineEM(batch_size=X.shape[0], step_size=1.0),
                  key=jax.random.key(3))
    np.testing.assert_allclose(online.params.topic_word, batch.params.topic_word, rtol=1e-10)


# ----------------------------------------------------------------------------- data layouts


def test_sparse_equals_dense_and_empty_documents_contribute_nothing(X):
    lam0 = _sklearn_init(X.shape[1])
    model = emjax.LatentDirichletAllocation(num_topics=K)
    dense = _fit(model, X, lam0, 5)
    sparse = _fit(model, emjax.lda.SparseCounts.from_dense(X), lam0, 5)
    np.testing.assert_allclose(sparse.params.topic_word, dense.params.topic_word, rtol=1e-11)
    np.testing.assert_allclose(sparse.elbo_trace, dense.elbo_trace, rtol=1e-12)
    corpus = emjax.lda.SparseCounts.from_dense(X)
    np.testing.assert_allclose(model.transform(dense.params, corpus),
                               model.transform(dense.params, X), atol=1e-12)
    np.testing.assert_allclose(model.perplexity(dense.params, corpus),
                               model.perplexity(dense.params, X), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(corpus.todense()), X)

    # Empty documents: zero statistics and zero ELBO terms (computed in one E-step).
    params = dense.params
    w = jnp.ones(3)
    stats, elbo = model.e_step(params, jnp.zeros((3, X.shape[1])), w)
    assert float(jnp.abs(stats.topic_word).max()) == 0.0
    assert abs(float(elbo.total)) < 1e-12


@pytest.mark.slow
def test_from_scipy_matches_from_dense(X):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    a = emjax.lda.SparseCounts.from_scipy(scipy_sparse.csr_matrix(X))
    b = emjax.lda.SparseCounts.from_dense(X)
    np.testing.assert_array_equal(np.asarray(a.todense()), np.asarray(b.todense()))
    assert a.num_words == b.num_words == X.shape[1]


@pytest.mark.slow
def test_float32_runs_without_nans(X):
    """Small priors make many E log β very negative (ψ(0.01) ≈ −100: exp underflows in
    float32); the fit stays finite, and agrees with float64 from the same λ."""
    X32 = X.astype(np.float32)
    model = emjax.LatentDirichletAllocation(num_topics=K, topic_word_prior=0.01,
                                            doc_topic_prior=0.05)
    sol = emjax.fit(model, X32, key=jax.random.key(0), max_steps=40)
    assert sol.params.topic_word.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(sol.params.topic_word)))
    assert np.isfinite(np.asarray(sol.elbo_trace[: int(sol.num_steps) + 1])).all()
    p = model.perplexity(sol.params, X32)
    assert p.dtype == jnp.float32 and np.isfinite(float(p))
    # float32 agrees with float64 from the same λ (scikit-learn's numerical-consistency test)
    p64 = jax.tree.map(lambda a: a.astype(jnp.float64), sol.params)
    np.testing.assert_allclose(float(p), float(model.perplexity(p64, X)), rtol=1e-4)


# ----------------------------------------------------------------------------- fitted API


def test_top_words_and_topic_word_distributions():
    model = emjax.LatentDirichletAllocation(num_topics=2)
    params = model.make_params(topic_word=np.array([[1.0, 9.0, 3.0, 2.0], [6.0, 1.0, 1.0, 7.0]]))
    vocab = ["a", "b", "c", "d"]
    assert model.top_words(params, vocab, 3) == [["b", "c", "d"], ["d", "a", "b"]]
    assert model.top_words(params, vocab, 10) == [["b", "c", "d", "a"], ["d", "a", "b", "c"]]
    np.testing.assert_allclose(model.topic_word_distributions(params).sum(1), 1.0)
    with pytest.raises(ValueError, match=r"`vocabulary` has 3 words but the parameters have 4"):
        model.top_words(params, vocab[:3])


@pytest.mark.slow
def test_recovers_block_topics():
    """scikit-learn's test: 3 topics with 3 exclusive words each are recovered."""
    n = 3
    block = np.full((n, n), n, np.float64)
    X = np.kron(np.eye(n), block).repeat(10, axis=0)  # 90 documents, 9 words
    model = emjax.LatentDirichletAllocation(num_topics=n)
    for solver in (emjax.EM(), emjax.OnlineEM(batch_size=30, offset=10.0, decay=0.7)):
        sol = emjax.fit(model, X, key=jax.random.key(0), solver=solver, max_steps=50)
        top = np.sort(np.argsort(-np.asarray(sol.params.topic_word), axis=1)[:, :n], axis=1)
        assert sorted(map(tuple, top)) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]


# ----------------------------------------------------------------------------- validation


def _model():
    return emjax.LatentDirichletAllocation(num_topics=2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (-1.0, r"`counts` must hold non-negative word counts; got -1.0 at index \(1, 2\)"),
        (0.5, r"`counts` must hold integer word counts; got 0.5 at index \(1, 2\)"),
        (np.nan, r"`counts` contains NaN or infinite values \(at index \(1, 2\)\)"),
        (np.inf, r"`counts` contains NaN or infinite values"),
    ],
)
def test_bad_counts_are_refused_before_compute(bad, message):
    X = np.ones((4, 5))
    X[1, 2] = bad
    with pytest.raises(ValueError, match=message):
        emjax.fit(_model(), X, key=jax.random.key(0))
    corpus = emjax.lda.SparseCounts(jnp.zeros((4, 5), jnp.int32) + jnp.arange(5), jnp.asarray(X), 5)
    with pytest.raises(ValueError, match=message):
        emjax.fit(_model(), corpus, key=jax.random.key(0))


def test_real_valued_counts_need_integer_counts_false(X, _exact_digamma):
    """tf-idf-like weights: refused by default (a likely mistake), accepted on request, and
    then transformed as scikit-learn transforms them (the updates never assume integers)."""
    model = emjax.LatentDirichletAllocation(num_topics=K)
    frac = X * 0.37
    with pytest.raises(ValueError, match="integer_counts=False"):
        model.check_data(frac)
    real = emjax.LatentDirichletAllocation(num_topics=K, integer_counts=False)
    lam0 = _sklearn_init(X.shape[1])
    sk = SkLDA(K, random_state=0)
    sk._init_latent_vars(X.shape[1], np.float64)
    sk.components_, sk.exp_dirichlet_component_ = lam0, np.exp(_exact_2d(lam0))
    got = real.transform(real.make_params(topic_word=lam0), frac)
    np.testing.assert_allclose(got, sk.transform(frac), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        real.check_data(-frac)


def test_bad_shapes_and_vocabulary_mismatch():
    model = _model()
    with pytest.raises(ValueError, match=r"`counts` must be a 2-D"):
        emjax.fit(model, np.ones(5), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"at least one document and one word"):
        emjax.fit(model, np.ones((0, 5)), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"`ids` of SparseCounts must lie in \[0, num_words=5\)"):
        emjax.fit(model, emjax.lda.SparseCounts(jnp.array([[1, 7]]), jnp.array([[1.0, 2.0]]), 5),
                  key=jax.random.key(0))
    params = model.make_params(topic_word=np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"vocabulary of 6 words but the parameters have 5"):
        model.transform(params, np.ones((3, 6)))
    with pytest.raises(ValueError, match=r"vocabulary of 6 words but the parameters have 5"):
        model.perplexity(params, emjax.lda.SparseCounts.from_dense(np.ones((3, 6))))
    with pytest.raises(ValueError, match=r"`topic_word` has 5 words but the data have a vocabulary of 6"):
        emjax.fit(model, np.ones((3, 6)), params0=params)
    with pytest.raises(ValueError, match=r"`topic_word` must have shape \(num_topics=2, V\)"):
        model.make_params(topic_word=np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"`topic_word` \(λ, Dirichlet parameters\) must be positive"):
        model.make_params(topic_word=np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"holds no words"):
        model.perplexity(params, np.zeros((2, 5)))
    with pytest.raises(TypeError, match=r"`params0` must be LDAParams"):
        emjax.fit(model, np.ones((3, 5)), params0=np.ones((2, 5)))


def test_sparse_padding_ids_are_ignored():
    corpus = emjax.lda.SparseCounts(jnp.array([[1, -3], [4, 99]]), jnp.array([[2.0, 0.0], [1.0, 0.0]]), 5)
    checked = _model().check_data(corpus)
    assert checked.ids.tolist() == [[1, 0], [4, 0]]


@pytest.mark.parametrize("name", ["doc_topic_prior", "topic_word_prior", "mean_change_tol"])
@pytest.mark.parametrize("value", [0.0, -0.5, np.nan, np.inf])
def test_priors_must_be_positive(name, value):
    with pytest.raises(ValueError, match=rf"`{name}` must be"):
        emjax.LatentDirichletAllocation(num_topics=3, **{name: value})


def test_other_bad_options():
    with pytest.raises(ValueError, match=r"`doc_topic_prior` must be a scalar or have shape \(3,\)"):
        emjax.LatentDirichletAllocation(3, doc_topic_prior=np.ones(2))
    with pytest.raises(ValueError, match=r"`doc_topic_prior` must be positive"):
        emjax.LatentDirichletAllocation(3, doc_topic_prior=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"`num_topics` must be an integer >= 1"):
        emjax.LatentDirichletAllocation(0)
    with pytest.raises(TypeError, match=r"`learn_doc_topic_prior` must be True or False"):
        emjax.LatentDirichletAllocation(2, learn_doc_topic_prior="yes")
    with pytest.raises(ValueError, match=r"differs from the model's"):
        emjax.LatentDirichletAllocation(2).make_params(topic_word=np.ones((2, 3)),
                                                       doc_topic_prior=0.1)
    with pytest.raises(TypeError, match=r"HardEM\(\) needs a model with a hard E-step"):
        emjax.fit(_model(), np.ones((3, 4)), key=jax.random.key(0), solver=emjax.HardEM())


# ----------------------------------------------------------------------------- gradients


@pytest.mark.slow
def test_elbo_gradients_match_finite_differences(X):
    """The ELBO (E-step at its inner fixed point, plus the topic–word term) is smooth in
    α, η and λ; its gradient matches central differences (float64). The inner fixed point
    γ* is differentiated implicitly; by the envelope theorem its contribution vanishes."""
    Xs = jnp.asarray(X[:30])
    w = jnp.ones(Xs.shape[0])
    lam = jnp.asarray(_sklearn_init(X.shape[1])) * 3.0

    def elbo(alpha, eta, lam):
        m = emjax.LatentDirichletAllocation(num_topics=K, doc_topic_prior=alpha,
                                            topic_word_prior=eta, mean_change_tol=1e-13,
                                            max_doc_update_iter=5000)
        p = emjax.LDAParams(lam, m.doc_topic_prior, m.topic_word_prior)
        return m.e_step(p, Xs, w)[1].total + m.log_prior(p)

    args = (jnp.asarray(0.3), jnp.asarray(0.2), lam)
    grads = jax.jit(jax.grad(elbo, argnums=(0, 1, 2)))(*args)
    f = jax.jit(elbo)
    h = 1e-6
    for i, g in enumerate(grads[:2]):
        up = list(args)
        down = list(args)
        up[i] = args[i] + h
        down[i] = args[i] - h
        np.testing.assert_allclose(float(g), (float(f(*up)) - float(f(*down))) / (2 * h), rtol=1e-5)
    direction = jnp.asarray(np.random.default_rng(0).normal(size=lam.shape))
    fd = (float(f(args[0], args[1], lam + h * direction)) - float(f(args[0], args[1], lam - h * direction))) / (2 * h)
    np.testing.assert_allclose(float(jnp.sum(grads[2] * direction)), fd, rtol=1e-5)


@pytest.mark.slow
def test_one_em_step_and_fit_gradients_match_finite_differences(X):
    """The statistics need dγ*/dλ (the implicit K × K solve per document): one EM step's
    Jacobian (reverse and forward mode), and the gradient through a converged fit (the
    Implicit adjoint), match finite differences."""
    Xs = jnp.asarray(X[:40])
    w = jnp.ones(Xs.shape[0])
    model = emjax.LatentDirichletAllocation(num_topics=3, mean_change_tol=1e-13,
                                            max_doc_update_iter=5000)
    lam0 = jnp.asarray(_sklearn_init(X.shape[1], num_topics=3))
    lam = emjax.fit(model, Xs, params0=model.make_params(topic_word=lam0), max_steps=5,
                    rtol=0.0, throw=False).params.topic_word

    def one_step(alpha, lam):
        m = emjax.LatentDirichletAllocation(3, doc_topic_prior=alpha, mean_change_tol=1e-13,
                                            max_doc_update_iter=5000)
        p = emjax.LDAParams(lam, m.doc_topic_prior, m.topic_word_prior)
        new = m.m_step(p, m.e_step(p, Xs, w)[0])
        return jnp.sum(jnp.log(new.topic_word) * jnp.arange(new.topic_word.size).reshape(new.topic_word.shape) / 100)

    from jax.test_util import check_grads

    check_grads(jax.jit(one_step), (jnp.asarray(0.4), lam), order=1, modes=["rev", "fwd"],
                rtol=1e-5, eps=1e-6)

    def through_fit(alpha, adjoint):
        m = emjax.LatentDirichletAllocation(3, doc_topic_prior=alpha, mean_change_tol=1e-13,
                                            max_doc_update_iter=5000)
        sol = emjax.fit(m, Xs, params0=m.make_params(topic_word=lam0), max_steps=400,
                        rtol=1e-13, adjoint=adjoint, throw=False)
        return sol.elbo.total

    a = jnp.asarray(0.4)
    g_imp = jax.grad(through_fit)(a, emjax.Implicit())
    h = 1e-5
    fd = (float(through_fit(a + h, emjax.Implicit())) - float(through_fit(a - h, emjax.Implicit()))) / (2 * h)
    np.testing.assert_allclose(float(g_imp), fd, rtol=1e-4)


# ----------------------------------------------------------------------------- learned priors


@pytest.mark.slow
@pytest.mark.parametrize("asymmetric", [False, True])
def test_learned_priors_increase_the_elbo_and_recover_alpha(asymmetric):
    true_alpha = 0.2
    X = _corpus(seed=7, num_docs=400, num_words=60, length=80, alpha=true_alpha, eta=0.1)
    start = np.full(K, 1.0) if asymmetric else 1.0
    model = emjax.LatentDirichletAllocation(num_topics=K, doc_topic_prior=start,
                                            topic_word_prior=1.0, learn_doc_topic_prior=True,
                                            learn_topic_word_prior=True, mean_change_tol=1e-8,
                                            max_doc_update_iter=1000)
    fixed = emjax.LatentDirichletAllocation(num_topics=K, doc_topic_prior=start,
                                            topic_word_prior=1.0, mean_change_tol=1e-8,
                                            max_doc_update_iter=1000)
    lam0 = _sklearn_init(X.shape[1])
    learned = emjax.fit(model, X, params0=model.make_params(topic_word=lam0), max_steps=300)
    kept = emjax.fit(fixed, X, params0=fixed.make_params(topic_word=lam0), max_steps=300)
    assert float(learned.elbo.total) > float(kept.elbo.total)
    trace = np.asarray(learned.elbo_trace[: int(learned.num_steps) + 1])
    assert (np.diff(trace) >= -1e-6 * np.abs(trace[1:])).all()
    alpha = np.asarray(learned.params.doc_topic_prior)
    assert alpha.shape == ((K,) if asymmetric else ())
    np.testing.assert_allclose(alpha.mean(), true_alpha, rtol=0.5)
    assert 0.02 < float(learned.params.topic_word_prior) < 0.5


# ----------------------------------------------------------------------------- gensim


@pytest.mark.slow
def test_held_out_perplexity_in_gensims_range():
    """Same corpus, same K, same priors: gensim's LdaModel topics (its λ) and emjax's give
    held-out perplexities (scikit-learn's definition, for both) in the same range."""
    gensim = pytest.importorskip("gensim")
    X = _corpus(seed=11, num_docs=600, num_words=200, num_topics=8, length=100, eta=0.05,
                alpha=0.2)
    train, test = X[:500], X[500:]
    model = emjax.LatentDirichletAllocation(num_topics=8)
    sol = emjax.fit(model, train, key=jax.random.key(0), max_steps=100, num_restarts=2)
    ours = float(model.perplexity(sol.params, test))

    corpus = [[(int(v), int(c)) for v in np.flatnonzero(row) for c in [row[v]]] for row in train]
    gm = gensim.models.LdaModel(corpus, num_topics=8, id2word={i: str(i) for i in range(200)},
                                alpha=np.full(8, 1 / 8), eta=1 / 8, passes=30, iterations=200,
                                random_state=0)
    theirs = float(model.perplexity(model.make_params(topic_word=gm.state.get_lambda()), test))
    sk = SkLDA(8, max_iter=100, random_state=0).fit(train)
    sk_perp = sk.perplexity(test)
    for other in (theirs, sk_perp):
        assert 0.8 < ours / other < 1.25, (ours, theirs, sk_perp)
