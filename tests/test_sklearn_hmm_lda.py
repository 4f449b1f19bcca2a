"""The estimators `emjax.sklearn.GaussianHMM` (hmmlearn's interface) and
`emjax.sklearn.LatentDirichletAllocation` (scikit-learn's): parity with hmmlearn 0.3 and
scikit-learn in float64 from the same start, scikit-learn's estimator checks, clone,
pickle, pipelines and grid search, and the errors for options emjax cannot honour.

References:

- hmmlearn's ``GaussianHMM`` with its priors set to maximum likelihood (``means_weight=0``,
  ``covars_prior=0``, ``covars_weight=1``) against emjax's with ``min_covar=0``, both from
  the same parameters (``init_params=""``), every one of ``n_iter`` iterations
  (``tol=-inf``), on several sequences of different lengths.
- scikit-learn's ``LatentDirichletAllocation`` from the same ``random_state`` (hence the
  same initial ``λ``: the estimator draws it as scikit-learn does), with the two
  differences that are not the algorithm patched out of scikit-learn as in
  ``tests/test_lda.py``: its random start of each document's ``γ`` during fitting, and its
  approximate digamma.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import ones_init, use_exact_digamma
from hmmlearn import hmm as hl
from sklearn.base import clone
from sklearn.decomposition import LatentDirichletAllocation as SkLDA
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks
from threadpoolctl import threadpool_limits

from emjax.sklearn._hmm import GaussianHMM
from emjax.sklearn._lda import LatentDirichletAllocation

LL_RTOL = 1e-8  # observed: ~1e-14
PARAM_RTOL, PROB_ATOL = 1e-7, 1e-12


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """hmmlearn's many tiny BLAS calls crawl with a multithreaded BLAS on a busy machine."""
    with threadpool_limits(1, user_api="blas"):
        yield


# ====================================================================== GaussianHMM

K = 3
LENGTHS = np.array([1, 40, 25, 60, 2])  # several sequences, one of a single step
_PI0 = np.full(K, 1.0 / K)
_A0 = np.full((K, K), 0.1) + 0.7 * np.eye(K)
_MEANS0 = np.array([[0.8, -0.5], [1.3, 1.1], [-0.5, 2.9]])


def _hmm_data():
    gen = hl.GaussianHMM(K, covariance_type="full")
    gen.startprob_ = np.array([0.5, 0.3, 0.2])
    gen.transmat_ = np.array([[0.90, 0.07, 0.03], [0.05, 0.90, 0.05], [0.04, 0.06, 0.90]])
    gen.means_ = np.array([[0.0, 0.0], [2.0, 0.5], [-1.0, 2.0]])
    gen.covars_ = np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.6, -0.2], [-0.2, 1.2]],
                            [[1.5, 0.4], [0.4, 0.7]]])
    return gen.sample(int(LENGTHS.sum()), random_state=0)[0]


def _covars0(covariance_type):
    return {"full": np.stack([np.diag([2.0, 1.5])] * K), "diag": np.tile([2.0, 1.5], (K, 1)),
            "spherical": np.array([2.0, 1.5, 1.0]), "tied": np.diag([2.0, 1.5])}[covariance_type]


def _set_start(est, covariance_type):
    est.startprob_, est.transmat_ = _PI0.copy(), _A0.copy()
    est.means_, est.covars_ = _MEANS0.copy(), _covars0(covariance_type)
    return est


_HMM_FITS = {}


def _hmm_pair(covariance_type):
    """(X, emjax estimator, hmmlearn model), both fitted from the same start; cached."""
    if covariance_type not in _HMM_FITS:
        X = _hmm_data()
        ours = _set_start(GaussianHMM(K, covariance_type=covariance_type, min_covar=0.0,
                                      init_params="", n_iter=10, tol=-np.inf), covariance_type)
        ours.fit(X, LENGTHS)
        ref = hl.GaussianHMM(K, covariance_type=covariance_type, means_prior=0.0, means_weight=0.0,
                             covars_prior=0.0, covars_weight=1.0, init_params="", n_iter=10,
                             tol=-np.inf, implementation="log")
        ref = _set_start(ref, covariance_type).fit(X, LENGTHS)
        _HMM_FITS[covariance_type] = (X, ours, ref)
    return _HMM_FITS[covariance_type]


COVARIANCE_TYPES = [pytest.param("diag", id="diag")] + [
    pytest.param(c, id=c, marks=pytest.mark.slow) for c in ("full", "spherical", "tied")]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_hmm_fit_matches_hmmlearn(covariance_type):
    X, ours, ref = _hmm_pair(covariance_type)
    # history[t]: log p(X) after t updates, in both (emjax's also holds the final value).
    history = np.asarray(ref.monitor_.history)
    assert ours.n_iter_ == ours.monitor_.iter == 10 and not ours.converged_
    assert history[-1] - history[-2] > 1e-9 * abs(history[-1])  # still moving: all steps count
    np.testing.assert_allclose(ours.monitor_.history[:10], history, rtol=LL_RTOL)
    ll = ref.score(X, LENGTHS)
    np.testing.assert_allclose(ours.monitor_.history[10], ll, rtol=LL_RTOL)
    np.testing.assert_allclose(ours.score(X, LENGTHS), ll, rtol=LL_RTOL)

    np.testing.assert_allclose(ours.startprob_, ref.startprob_, rtol=PARAM_RTOL, atol=PROB_ATOL)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, rtol=PARAM_RTOL, atol=PROB_ATOL)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=PARAM_RTOL)
    # covars_ are (K, D, D) whatever the covariance type, as hmmlearn's.
    assert ours.covars_.shape == (K, 2, 2)
    if covariance_type == "spherical":
        # hmmlearn keeps spherical variances as (K, D) copies after its M-step, and its
        # covars_ property then mis-shapes them; compare the variances themselves.
        np.testing.assert_allclose(ours._covars_, ref._covars_[:, 0], rtol=PARAM_RTOL)
        np.testing.assert_allclose(ours.covars_, ref._covars_[:, :, None] * np.eye(2),
                                   rtol=PARAM_RTOL)
    else:
        np.testing.assert_allclose(ours.covars_, ref.covars_, rtol=PARAM_RTOL)
    # emjax's own parameters keep the compact shape of the covariance type.
    assert ours.params_.emissions.covariances.shape == np.shape(_covars0(covariance_type))


def test_gaussian_hmm_inference_matches_hmmlearn():
    X, ours, ref = _hmm_pair("diag")
    log_prob, path = ours.decode(X, LENGTHS)
    log_prob_ref, path_ref = ref.decode(X, LENGTHS, algorithm="viterbi")
    np.testing.assert_allclose(log_prob, log_prob_ref, rtol=LL_RTOL)
    np.testing.assert_array_equal(path, path_ref)
    assert len(np.unique(path_ref)) == K  # not a degenerate path
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), ref.predict(X, LENGTHS))

    ll, post = ours.score_samples(X, LENGTHS)
    ll_ref, post_ref = ref.score_samples(X, LENGTHS)
    np.testing.assert_allclose(ll, ll_ref, rtol=LL_RTOL)
    np.testing.assert_allclose(post, post_ref, atol=1e-8)
    map_prob, map_path = ours.decode(X, LENGTHS, algorithm="map")
    map_prob_ref, map_path_ref = ref.decode(X, LENGTHS, algorithm="map")
    np.testing.assert_allclose(map_prob, map_prob_ref, rtol=1e-8)
    np.testing.assert_array_equal(map_path, map_path_ref)
    np.testing.assert_allclose(ours.bic(X, LENGTHS), ref.bic(X, LENGTHS), rtol=LL_RTOL)
    np.testing.assert_allclose(ours.aic(X, LENGTHS), ref.aic(X, LENGTHS), rtol=LL_RTOL)


@pytest.mark.slow
def test_gaussian_hmm_sample_follows_the_chain():
    hmm = GaussianHMM(2, covariance_type="spherical")
    hmm.startprob_, hmm.transmat_ = np.array([0.5, 0.5]), np.array([[0.0, 1.0], [1.0, 0.0]])
    hmm.means_, hmm.covars_ = np.array([[0.0, 0.0], [100.0, 100.0]]), np.array([1e-4, 1e-4])
    X, z = hmm.sample(6, random_state=0, currstate=1)
    assert z.tolist() == [1, 0, 1, 0, 1, 0]
    np.testing.assert_allclose(X, hmm.means_[z], atol=0.1)
    X2, z2 = hmm.sample(6, random_state=0, currstate=1)
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(ValueError, match=r"`currstate` must be a state in \[0, 2\)"):
        hmm.sample(3, currstate=2)


@pytest.mark.slow
def test_gaussian_hmm_default_fit_with_restarts():
    """emjax's initialisation, two vmapped restarts, tolerance-based stop: every restart
    ends finite, the kept one is the best, and its history never decreases."""
    X = _hmm_data()
    est = GaussianHMM(K, covariance_type="diag", n_iter=50, tol=1e-4, n_init=2, random_state=0)
    est.fit(X, LENGTHS)
    sol = est.solution_
    assert np.isfinite(sol.restart_elbos).all() and sol.restart_elbos.shape == (2,)
    assert float(sol.log_likelihood) == pytest.approx(sol.restart_elbos.max())
    history = np.asarray(est.monitor_.history)
    assert len(history) == est.n_iter_ + 1 and est.converged_ and est.monitor_.converged
    assert (np.diff(history) > -1e-9 * np.abs(history[1:])).all()
    assert abs(history[-1] - history[-2]) < 1e-4
    np.testing.assert_allclose(est.score(X, LENGTHS), history[-1], rtol=1e-10)
    assert est.n_features == est.n_features_in_ == 2
    assert est.means_.shape == (K, 2) and est.covars_.shape == (K, 2, 2)
    np.testing.assert_allclose(est.transmat_.sum(axis=1), 1.0)
    # A clone refits to the same result (random_state fixes the initialisation).
    again = clone(est).fit(X, LENGTHS)
    np.testing.assert_allclose(again.means_, est.means_, rtol=1e-12)


@pytest.mark.slow
def test_gaussian_hmm_keeps_the_parameters_it_does_not_initialise():
    """init_params="mc": startprob_ and transmat_ come from the attributes, means and
    covariances from emjax's initialisation (different per restart)."""
    X = _hmm_data()
    est = GaussianHMM(K, init_params="mc", n_iter=0, n_init=3, random_state=0)
    est.startprob_ = np.array([0.2, 0.3, 0.5])
    est.transmat_ = _A0
    est.fit(X, LENGTHS)
    np.testing.assert_allclose(est.startprob_, [0.2, 0.3, 0.5])
    np.testing.assert_allclose(est.transmat_, _A0)
    means = est.solution_.restart_params.emissions.means
    assert means.shape == (3, K, 2) and np.ptp(means, axis=0).max() > 1e-3
    # Without the attributes, they are initialised anyway (as hmmlearn does).
    fresh = GaussianHMM(K, init_params="mc", n_iter=0, random_state=0).fit(X, LENGTHS)
    np.testing.assert_allclose(fresh.startprob_, np.full(K, 1 / K))


def test_gaussian_hmm_clone_params_and_pickle():
    X, ours, _ = _hmm_pair("diag")
    params = ours.get_params()
    assert params["covariance_type"] == "diag" and params["n_init"] == 1
    assert params["dtype"] == "float64" and params["implementation"] == "log"
    cloned = clone(ours)
    assert cloned.get_params() == params and not hasattr(cloned, "startprob_")
    cloned.set_params(n_components=4, algorithm="map")
    assert (cloned.n_components, cloned.algorithm) == (4, "map")
    assert ours.n_components == K
    restored = pickle.loads(pickle.dumps(ours))
    np.testing.assert_array_equal(restored.covars_, ours.covars_)
    assert restored.score(X, LENGTHS) == ours.score(X, LENGTHS)
    assert restored.solution_.message == ours.solution_.message


@pytest.mark.parametrize(
    "option, message",
    [
        ({"params": "stm"}, r"`params` must contain all of 's', 't', 'm' and 'c'"),
        ({"covariance_type": "banded"}, r"`covariance_type` must be one of"),
        ({"algorithm": "beam"}, r"`algorithm` must be 'viterbi' or 'map'"),
        ({"implementation": "fast"}, r"`implementation` must be 'log' or 'scaling'"),
        ({"startprob_prior": 0.5}, r"`startprob_prior` must be Dirichlet concentrations >= 1"),
        ({"transmat_prior": np.ones(2)}, r"`transmat_prior` must be a scalar or have shape"),
        ({"n_init": 0}, r"`n_init` must be an integer >= 1"),
        ({"n_iter": -1}, r"`n_iter` must be an integer >= 0"),
        ({"min_covar": -1.0}, r"`min_covar` must be a finite number >= 0"),
        ({"dtype": "int32"}, r"`dtype` must be 'float64' or 'float32'"),
    ],
)
def test_gaussian_hmm_refuses_what_it_cannot_honour(option, message):
    with pytest.raises(ValueError, match=message):
        GaussianHMM(3, **option).fit(np.zeros((10, 2)))


def test_gaussian_hmm_bad_data():
    with pytest.raises(ValueError, match=r"`lengths` sum to 9 but `X` has 10 rows"):
        GaussianHMM(2).fit(np.random.default_rng(0).normal(size=(10, 1)), lengths=[4, 5])
    with pytest.raises(ValueError, match=r"infinity|NaN"):
        GaussianHMM(2).fit(np.array([[0.0], [np.nan], [1.0]]))
    with pytest.raises(ValueError, match=r"`means_` must have shape \(2, 1\)"):
        est = GaussianHMM(2, init_params="")
        est.startprob_, est.transmat_ = np.array([0.5, 0.5]), np.eye(2)
        est.means_, est.covars_ = np.zeros((2, 3)), np.ones((2, 3))
        est.fit(np.zeros((5, 1)))


# ====================================================================== LDA

N_TOPICS = 4


def _corpus(seed=0, num_docs=60, num_words=30, length=50):
    """Documents from LDA's generative process, two of them empty."""
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(num_words, 0.2), N_TOPICS)
    theta = rng.dirichlet(np.full(N_TOPICS, 0.3), num_docs)
    docs = np.stack([rng.multinomial(n, t @ beta)
                     for n, t in zip(rng.poisson(length, num_docs), theta, strict=True)])
    docs[[3, 41]] = 0
    return docs.astype(np.float64)


@pytest.fixture(scope="module")
def counts():
    return _corpus()


@pytest.fixture
def _exact_digamma(monkeypatch):
    """scikit-learn with SciPy's digamma instead of its fast approximation."""
    use_exact_digamma(monkeypatch)


_ones_init = ones_init


def test_lda_batch_fit_matches_sklearn(counts, _exact_digamma):
    """Same random_state, hence the same initial λ; ten batch iterations."""
    ours = LatentDirichletAllocation(N_TOPICS, max_iter=10, random_state=0).fit(counts)
    sk = _ones_init(SkLDA(N_TOPICS, max_iter=10, random_state=0)).fit(counts)
    np.testing.assert_allclose(ours.components_, sk.components_, rtol=1e-10)
    np.testing.assert_allclose(ours.exp_dirichlet_component_, sk.exp_dirichlet_component_,
                               rtol=1e-10)
    np.testing.assert_allclose(ours.bound_, sk.bound_, rtol=1e-10)
    assert (ours.n_iter_, ours.n_batch_iter_) == (sk.n_iter_, sk.n_batch_iter_) == (10, 11)
    assert ours.n_features_in_ == sk.n_features_in_ == counts.shape[1]
    assert (ours.doc_topic_prior_, ours.topic_word_prior_) == (0.25, 0.25)
    np.testing.assert_allclose(ours.score(counts), sk.score(counts), rtol=1e-10)
    np.testing.assert_allclose(ours.perplexity(counts), sk.perplexity(counts), rtol=1e-10)
    np.testing.assert_allclose(ours.perplexity(counts, sub_sampling=True),
                               sk.perplexity(counts, sub_sampling=True), rtol=1e-10)
    np.testing.assert_allclose(ours.transform(counts), sk.transform(counts), atol=1e-10)
    np.testing.assert_allclose(ours.transform(counts, normalize=False),
                               sk.transform(counts, normalize=False), rtol=1e-10)
    # Real-valued counts (tf-idf weights, say) are accepted, as scikit-learn does.
    np.testing.assert_allclose(ours.score(counts * 0.7), sk.score(counts * 0.7), rtol=1e-10)


@pytest.mark.slow
def test_lda_sparse_fit_equals_dense(counts):
    dense = LatentDirichletAllocation(N_TOPICS, max_iter=3, random_state=1).fit(counts)
    csr = sp.csr_matrix(counts)
    sparse = LatentDirichletAllocation(N_TOPICS, max_iter=3, random_state=1).fit(csr)
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-11)
    np.testing.assert_allclose(sparse.bound_, dense.bound_, rtol=1e-12)


def test_lda_partial_fit_matches_sklearn(counts, _exact_digamma):
    """scikit-learn's online update, minibatch by minibatch (the last one shorter), from a
    dense array and then from a sparse matrix."""
    opts = dict(batch_size=25, total_samples=200, learning_offset=5.0, learning_decay=0.6,
                random_state=0)
    ours = LatentDirichletAllocation(N_TOPICS, **opts)
    sk = _ones_init(SkLDA(N_TOPICS, **opts))
    for part in (counts, counts[:30]):
        ours.partial_fit(sp.csr_matrix(part) if part is not counts else part)  # both layouts
        sk.partial_fit(part)
    assert ours.n_batch_iter_ == sk.n_batch_iter_ == 1 + 3 + 2
    np.testing.assert_allclose(ours.components_, sk.components_, rtol=1e-10)
    np.testing.assert_allclose(ours.perplexity(counts), sk.perplexity(counts), rtol=1e-10)
    with pytest.raises(ValueError, match=r"X has 5 features, but LatentDirichletAllocation is "
                                         r"expecting 30 features"):
        ours.partial_fit(np.ones((2, 5)))


@pytest.mark.slow
def test_lda_online_fit_matches_sklearn(counts, _exact_digamma):
    """learning_method="online": minibatches in row order (the last one shorter), scikit-learn's
    schedule, the first update blending in the initial λ: the same topics as scikit-learn."""
    opts = dict(learning_method="online", batch_size=25, max_iter=3, learning_offset=10.0,
                learning_decay=0.7, random_state=0)
    ours = LatentDirichletAllocation(N_TOPICS, **opts).fit(counts)
    sk = _ones_init(SkLDA(N_TOPICS, **opts)).fit(counts)
    assert ours.n_batch_iter_ == sk.n_batch_iter_
    np.testing.assert_allclose(ours.components_, sk.components_, rtol=1e-10)
    np.testing.assert_allclose(ours.perplexity(counts), sk.perplexity(counts), rtol=1e-10)


@pytest.mark.slow
def test_lda_evaluate_every_matches_sklearn(counts, _exact_digamma):
    """Perplexity checked every 2 iterations with perp_tol: the same stopping iteration and
    topics as scikit-learn (whose n_iter_ does not count the iteration that stopped it)."""
    opts = dict(max_iter=40, evaluate_every=2, perp_tol=0.05, random_state=0)
    ours = LatentDirichletAllocation(N_TOPICS, **opts).fit(counts)
    sk = _ones_init(SkLDA(N_TOPICS, **opts)).fit(counts)
    assert ours.n_iter_ < 40
    assert ours.n_iter_ == sk.n_iter_ + 1 == sk.n_batch_iter_ - 1
    np.testing.assert_allclose(ours.components_, sk.components_, rtol=1e-10)
    np.testing.assert_allclose(ours.bound_, sk.bound_, rtol=1e-10)


@pytest.mark.slow
def test_lda_online_fit_recovers_block_topics():
    """scikit-learn's test: three topics with three exclusive words each."""
    block = np.full((3, 3), 3.0)
    X = np.kron(np.eye(3), block).repeat(10, axis=0)  # 90 documents, 9 words
    for method in ("online", "batch"):
        lda = LatentDirichletAllocation(3, learning_method=method, batch_size=10, max_iter=30,
                                        learning_offset=10.0, random_state=0).fit(X)
        top = np.sort(np.argsort(-lda.components_, axis=1)[:, :3], axis=1)
        assert sorted(map(tuple, top)) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)], method
        if method == "online":
            assert (lda.n_iter_, lda.n_batch_iter_) == (30, 1 + 30 * 9)  # 9 minibatches a pass
        else:
            # Batch EM reaches an exact fixed point (the bound stops changing) and stops.
            assert lda.n_iter_ < 30 and lda.n_batch_iter_ == 1 + lda.n_iter_
        assert lda.bound_ == pytest.approx(lda.perplexity(X), rel=1e-8)


_DOCS = [
    "apple banana apple fruit", "banana fruit salad apple", "fruit apple pear banana",
    "pear fruit juice apple", "engine wheel car road", "car engine fuel road",
    "road car wheel tire", "fuel engine car tire", "banana pear fruit juice",
    "tire wheel road car", "apple juice fruit pear", "engine fuel tire wheel",
]


def _themes(theta):
    """Whether the fruit documents and the car documents get disjoint main topics."""
    fruit = [i for i, d in enumerate(_DOCS) if "fruit" in d]
    cars = [i for i, d in enumerate(_DOCS) if "car" in d.split() or "engine" in d]
    return set(theta[fruit].argmax(1)).isdisjoint(theta[cars].argmax(1))


def test_lda_in_pipeline():
    """CountVectorizer (sparse counts) then LDA: the two themes get their own topics; the
    fitted pipeline pickles."""
    pipe = Pipeline([("counts", CountVectorizer()),
                     ("lda", LatentDirichletAllocation(2, max_iter=20, random_state=0))])
    theta = pipe.fit_transform(_DOCS)
    assert theta.shape == (len(_DOCS), 2) and _themes(theta)
    names = pipe.named_steps["lda"].get_feature_names_out()
    assert names.tolist() == ["latentdirichletallocation0", "latentdirichletallocation1"]
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(restored.transform(_DOCS), theta, rtol=1e-12)


@pytest.mark.slow
def test_lda_in_grid_search_over_n_components():
    """The number of topics chosen by the cross-validated bound (``score``)."""
    vocabulary = sorted(set(" ".join(_DOCS).split()))
    pipe = Pipeline([("counts", CountVectorizer(vocabulary=vocabulary)),
                     ("lda", LatentDirichletAllocation(max_iter=20, random_state=0))])
    search = GridSearchCV(pipe, {"lda__n_components": [2, 3]}, cv=2).fit(_DOCS)
    assert set(search.cv_results_["param_lda__n_components"]) == {2, 3}
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    best = search.best_estimator_
    k = best.named_steps["lda"].n_components
    assert k == search.best_params_["lda__n_components"] == [2, 3][int(np.argmax(scores))]
    assert _themes(best.transform(_DOCS))


def test_lda_clone_and_params():
    lda = LatentDirichletAllocation(3, learning_method="online", dtype="float32")
    cloned = clone(lda)
    assert cloned.get_params() == lda.get_params()
    assert cloned.get_params()["doc_topic_prior"] is None
    assert cloned.set_params(n_components=5).n_components == 5


@pytest.mark.parametrize(
    "option, message",
    [
        ({"learning_method": "em"}, r"`learning_method` must be 'batch' or 'online'"),
        ({"n_components": 0}, r"`n_components` must be an integer >= 1"),
        ({"doc_topic_prior": -1.0}, r"`doc_topic_prior` must be None or a positive number"),
        ({"learning_decay": 1.5}, r"`learning_decay` must be a number in \[0, 1\]"),
        ({"learning_offset": 0.5}, r"`learning_offset` must be a number >= 1"),
        ({"mean_change_tol": 0.0}, r"`mean_change_tol` must be a number > 0"),
        ({"max_doc_update_iter": 0}, r"`max_doc_update_iter` must be an integer >= 1"),
        ({"batch_size": 0}, r"`batch_size` must be an integer >= 1"),
        ({"learning_method": "online", "evaluate_every": 2},
         r"`evaluate_every` > 0 is supported with learning_method='batch' only"),
        ({"dtype": "float16"}, r"`dtype` must be 'float64' or 'float32'"),
    ],
)
def test_lda_refuses_bad_options_before_compute(option, message):
    with pytest.raises(ValueError, match=message):
        LatentDirichletAllocation(**option).fit(np.ones((4, 3)))


def test_lda_refuses_negative_counts():
    X = np.ones((4, 3))
    X[1, 2] = -1.0
    with pytest.raises(ValueError, match=r"Negative values in data passed to "
                                         r"LatentDirichletAllocation.fit"):
        LatentDirichletAllocation(2).fit(X)


# ----------------------------------------------------------------- scikit-learn's checks

# Every check of scikit-learn 1.9 passes (none is expected to fail); keep the reasons here
# if one ever has to be listed.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}
# Checks that compile nothing new (no fit, or a fit refused before any compute): the
# default run's subset. The full set (about two minutes of compiling) runs with -m slow.
FAST_CHECKS = {
    "check_estimator_cloneable", "check_estimator_tags_renamed", "check_valid_tag_types",
    "check_estimator_repr", "check_no_attributes_set_in_init", "check_estimators_unfitted",
    "check_do_not_raise_errors_in_init_or_set_params", "check_mixin_order",
    "check_positive_only_tag_during_fit", "check_complex_data",
    "check_estimators_empty_data_messages", "check_transformers_unfitted",
    "check_parameters_default_constructible", "check_get_params_invariance",
    "check_set_params", "check_fit1d", "check_fit_non_negative",
}


def _checked_lda():
    return LatentDirichletAllocation(n_components=2, max_iter=2, random_state=0)


def test_sklearn_estimator_checks_fast_subset():
    ran = set()
    for estimator, check in estimator_checks_generator(
            _checked_lda(), legacy=True, expected_failed_checks=EXPECTED_FAILED_CHECKS):
        name = check.func.__name__
        if name in FAST_CHECKS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check(estimator)
            ran.add(name)
    assert ran == FAST_CHECKS


@pytest.mark.slow
@parametrize_with_checks([_checked_lda()],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ====================================================================== public names


def test_reachable_from_emjax_sklearn():
    import emjax.sklearn

    assert emjax.sklearn.GaussianHMM is GaussianHMM
    assert emjax.sklearn.LatentDirichletAllocation is LatentDirichletAllocation
