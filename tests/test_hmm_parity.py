"""Parity of `emjax.HiddenMarkovModel` with hmmlearn in float64, from the same initial
parameters.

The hmmlearn models are configured so that their M-step is plain maximum likelihood (the
Dirichlet priors at 1, the Gaussian and Poisson priors switched off), start from the given
parameters (``init_params=""``), run every one of ``n_iter`` iterations (``tol=-inf``) and
use the log-space forward–backward (``implementation="log"``). emjax's Gaussian emissions
run without covariance regularisation (``reg_covar=0``).

hmmlearn's ``monitor_.history[t]`` is the log-likelihood computed in the E-step of
iteration ``t``, i.e. at the parameters after ``t`` updates: it is emjax's
``elbo_trace[t]`` (the ELBO of an HMM is its log-likelihood). After ``N`` iterations both
hold the parameters of ``N`` updates, and emjax's ``log_likelihood`` (``elbo_trace[N]``) is
hmmlearn's ``score`` there.

Tolerances: log-likelihoods to 1e-8 relative, parameters to 1e-7 relative (absolute 1e-12
for probabilities that EM drives towards 0), posteriors to 1e-8 absolute; the largest
observed differences are 2e-13, 3e-11 and 1e-11 (one long sequence; 1e-15, 5e-14 and 5e-14
for the short sequences).

hmmlearn's ``GMMHMM`` is not maximum likelihood whatever its priors: it accumulates its
covariance statistics around the previous iteration's means (``X - self.means_`` in
``_accumulate_sufficient_statistics``, before the M-step), so its covariances exceed the
maximum-likelihood ones by ``(μ_new − μ_old)(μ_new − μ_old)ᵀ``. One step is compared with
that correction (a slow test: it compiles one more fit).
"""

import functools

import numpy as np
import pytest
from hmmlearn import hmm as hl
from threadpoolctl import threadpool_limits

import emjax

K = 3
N_STEPS = 10  # EM is still moving at step 10 in every case (no fixed point reached)
# 60 sequences of 1 to 90 steps: the long sequence cut into pieces.
SHORT_LENGTHS = np.r_[1, np.random.default_rng(7).integers(10, 91, size=58), 2]
T_LONG = int(SHORT_LENGTHS.sum())  # 3,138

LL_RTOL = 1e-8
PARAM_RTOL, PROB_ATOL = 1e-7, 1e-12

_PI = np.array([0.5, 0.3, 0.2])
_A = np.array([[0.90, 0.07, 0.03], [0.05, 0.90, 0.05], [0.04, 0.06, 0.90]])
_PI0 = np.full(K, 1.0 / K)
_A0 = np.full((K, K), 0.1) + 0.7 * np.eye(K)

_MEANS = np.array([[0.0, 0.0], [2.0, 0.5], [-1.0, 2.0]])
_COVS = np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.6, -0.2], [-0.2, 1.2]], [[1.5, 0.4], [0.4, 0.7]]])
_MEANS0 = _MEANS + np.array([[0.8, -0.5], [-0.7, 0.6], [0.5, 0.9]])

_PROBS = np.array([[0.70, 0.15, 0.10, 0.05], [0.10, 0.60, 0.10, 0.20], [0.05, 0.10, 0.25, 0.60]])
_PROBS0 = np.array([[0.4, 0.2, 0.2, 0.2], [0.2, 0.4, 0.2, 0.2], [0.2, 0.2, 0.3, 0.3]])

_RATES = np.array([[1.0, 4.0], [4.0, 1.5], [5.0, 6.0]])
_RATES0 = np.array([[3.0, 3.0], [3.5, 3.0], [4.0, 3.5]])

_COMMON = dict(startprob_prior=1.0, transmat_prior=1.0, init_params="", n_iter=N_STEPS,
               tol=-np.inf, implementation="log")


def _emission_family(name):
    return "gaussian" if name.startswith("gaussian") else name


@functools.cache
def _sample(family):
    """One sequence of ``T_LONG`` steps from the generating model, with a fixed seed."""
    if family == "gaussian":
        gen = hl.GaussianHMM(K, covariance_type="full")
        gen.means_, gen.covars_ = _MEANS, _COVS
    elif family == "categorical":
        gen = hl.CategoricalHMM(K, n_features=_PROBS.shape[1])
        gen.emissionprob_ = _PROBS
    else:
        gen = hl.PoissonHMM(K)
        gen.lambdas_ = _RATES
    gen.startprob_, gen.transmat_ = _PI, _A
    return gen.sample(T_LONG, random_state=0)[0]


def _data(name, layout):
    """``(X, lengths)`` in hmmlearn's concatenated layout; ``lengths`` is None for one
    sequence, else the long sequence is cut into ``SHORT_LENGTHS`` pieces."""
    X = _sample(_emission_family(name))
    return (X, None) if layout == "one_long_sequence" else (X, SHORT_LENGTHS.copy())


def _case(name):
    """(reference hmmlearn model at the initial parameters, emjax model, emjax initial
    parameters)."""
    if name in ("gaussian_full", "gaussian_diag"):
        ct = name.split("_")[1]
        # Exactly ML: the covariance denominators are max(covars_weight - D, 0) + N_k
        # (full) and max(covars_weight - 1, 0) + N_k (diag).
        ref = hl.GaussianHMM(K, covariance_type=ct, means_prior=0.0, means_weight=0.0,
                             covars_prior=0.0, covars_weight=1.0, params="stmc", **_COMMON)
        c0 = np.stack([np.diag([2.0, 1.5])] * K)
        c0 = c0 if ct == "full" else np.stack([np.diag(c) for c in c0])
        ref.means_, ref.covars_ = _MEANS0, c0
        model = emjax.HiddenMarkovModel(K, emissions=emjax.GaussianEmissions(ct, reg_covar=0.0))
        params0 = model.make_params(initial=_PI0, transition=_A0, means=_MEANS0, covariances=c0)
    elif name == "categorical":
        V = _PROBS.shape[1]
        ref = hl.CategoricalHMM(K, n_features=V, emissionprob_prior=1.0, params="ste",
                                **_COMMON)
        ref.emissionprob_ = _PROBS0
        model = emjax.HiddenMarkovModel(K, emissions=emjax.CategoricalEmissions(V))
        params0 = model.make_params(initial=_PI0, transition=_A0, probs=_PROBS0)
    elif name == "poisson":
        ref = hl.PoissonHMM(K, lambdas_prior=0.0, lambdas_weight=0.0, params="stl", **_COMMON)
        ref.lambdas_ = _RATES0
        model = emjax.HiddenMarkovModel(K, emissions=emjax.PoissonEmissions())
        params0 = model.make_params(initial=_PI0, transition=_A0, rates=_RATES0)
    else:
        raise AssertionError(name)
    ref.startprob_, ref.transmat_ = _PI0, _A0
    return ref, model, params0


def _emjax_data(X, lengths):
    return X if lengths is None else (X, lengths)


@functools.cache
def _fitted(name, layout):
    ref, model, params0 = _case(name)
    X, lengths = _data(name, layout)
    ref.fit(X, lengths)
    sol = emjax.fit(model, _emjax_data(X, lengths), params0=params0, max_steps=N_STEPS,
                    rtol=0.0, throw=False)
    return X, lengths, ref, model, sol


def _param_pairs(name, params, ref):
    pairs = [("initial", params.initial, ref.startprob_, PROB_ATOL),
             ("transition", params.transition, ref.transmat_, PROB_ATOL)]
    em = params.emissions
    if name == "gaussian_full":
        pairs += [("means", em.means, ref.means_, 0.0),
                  ("covariances", em.covariances, ref.covars_, 0.0)]
    elif name == "gaussian_diag":
        # hmmlearn's covars_ are full matrices whatever the covariance type.
        pairs += [("means", em.means, ref.means_, 0.0),
                  ("covariances", em.covariances, np.diagonal(ref.covars_, axis1=1, axis2=2),
                   0.0)]
    elif name == "categorical":
        pairs += [("probs", em.probs, ref.emissionprob_, PROB_ATOL)]
    else:
        pairs += [("rates", em.rates, ref.lambdas_, 0.0)]
    return pairs


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """hmmlearn makes thousands of tiny BLAS calls (a triangular solve per state and
    sequence): with a multithreaded BLAS on a busy 2-core machine each costs milliseconds
    (measured: 10.8 s for one fit instead of 0.8 s)."""
    with threadpool_limits(1, user_api="blas"):
        yield


CASES = ["gaussian_full", "gaussian_diag", "categorical", "poisson"]
LAYOUTS = ["one_long_sequence", "many_short_sequences"]
# Each model in one layout by default (the suite's time budget); all eight with -m slow.
_DEFAULT = {("gaussian_full", "one_long_sequence"), ("gaussian_diag", "many_short_sequences"),
            ("categorical", "many_short_sequences"), ("poisson", "one_long_sequence")}
COMBOS = [pytest.param(n, lay, id=f"{n}-{lay}",
                       marks=() if (n, lay) in _DEFAULT else pytest.mark.slow)
          for n in CASES for lay in LAYOUTS]


@pytest.mark.parametrize(("name", "layout"), COMBOS)
def test_baum_welch_matches_hmmlearn(name, layout):
    X, lengths, ref, model, sol = _fitted(name, layout)
    history = np.asarray(ref.monitor_.history)
    assert history.shape == (N_STEPS,)
    # Every step was taken: the log-likelihood still increases at the last one.
    assert int(sol.num_steps) == N_STEPS
    assert history[-1] - history[-2] > 1e-9 * abs(history[-1])

    # elbo_trace[t] and history[t] are both log p(X) at the parameters after t updates.
    trace = np.asarray(sol.elbo_trace)
    np.testing.assert_allclose(trace[:N_STEPS], history, rtol=LL_RTOL)
    ll_ref = ref.score(X, lengths)
    np.testing.assert_allclose(float(sol.log_likelihood), ll_ref, rtol=LL_RTOL)
    np.testing.assert_allclose(trace[N_STEPS], ll_ref, rtol=LL_RTOL)
    np.testing.assert_allclose(
        float(model.log_likelihood(sol.params, _emjax_data(X, lengths))), ll_ref, rtol=LL_RTOL)

    for what, got, want, atol in _param_pairs(name, sol.params, ref):
        np.testing.assert_allclose(np.asarray(got), want, rtol=PARAM_RTOL, atol=atol,
                                   err_msg=what)


@pytest.mark.parametrize(("name", "layout"), COMBOS)
def test_inference_matches_hmmlearn(name, layout):
    """Viterbi path and log-probability, smoothed posteriors, BIC/AIC at the fitted
    parameters, in the layout of the data."""
    X, lengths, ref, model, sol = _fitted(name, layout)
    data, p = _emjax_data(X, lengths), sol.params

    log_prob_ref, path_ref = ref.decode(X, lengths, algorithm="viterbi")
    log_prob, path = model.decode(p, data)
    np.testing.assert_allclose(float(log_prob), log_prob_ref, rtol=LL_RTOL)
    np.testing.assert_array_equal(np.asarray(path), path_ref)
    np.testing.assert_array_equal(np.asarray(model.predict(p, data)), ref.predict(X, lengths))
    # Not a degenerate path: every state is visited.
    assert len(np.unique(path_ref)) == K

    np.testing.assert_allclose(np.asarray(model.predict_proba(p, data)),
                               ref.predict_proba(X, lengths), rtol=0, atol=1e-8)

    nf = ref.n_features
    assert model.num_free_params(nf) == sum(ref._get_n_fit_scalars_per_param().values())
    np.testing.assert_allclose(float(model.bic(p, data)), ref.bic(X, lengths), rtol=LL_RTOL)
    np.testing.assert_allclose(float(model.aic(p, data)), ref.aic(X, lengths), rtol=LL_RTOL)


@pytest.mark.slow
def test_gmm_hmm_one_step_matches_hmmlearn_up_to_its_covariance_centering():
    X = _sample("gaussian")
    M, D = 2, X.shape[1]
    w0 = np.full((K, M), 1.0 / M)
    m0 = _MEANS0[:, None, :] + np.random.default_rng(0).normal(0.0, 0.3, (K, M, D))
    c0 = np.broadcast_to(np.eye(D), (K, M, D, D)).copy()
    # The default priors of a full-covariance GMMHMM give ML weights, means and (up to the
    # centring) covariances: weights_prior=1, means_weight=0, covars_prior=0,
    # covars_weight=-(D + 2).
    ref = hl.GMMHMM(K, M, covariance_type="full", params="stmcw", **{**_COMMON, "n_iter": 1})
    ref.startprob_, ref.transmat_ = _PI0, _A0
    ref.weights_, ref.means_, ref.covars_ = w0, m0, c0
    ref.fit(X)

    model = emjax.HiddenMarkovModel(
        K, emissions=emjax.GaussianMixtureEmissions(M, "full", reg_covar=0.0))
    params0 = model.make_params(initial=_PI0, transition=_A0, weights=w0, means=m0,
                                covariances=c0)
    sol = emjax.fit(model, X, params0=params0, max_steps=1, rtol=0.0, throw=False)
    p, e = sol.params, sol.params.emissions
    np.testing.assert_allclose(float(sol.elbo_trace[0]), ref.monitor_.history[0], rtol=LL_RTOL)
    np.testing.assert_allclose(np.asarray(p.initial), ref.startprob_, rtol=PARAM_RTOL)
    np.testing.assert_allclose(np.asarray(p.transition), ref.transmat_, rtol=PARAM_RTOL)
    np.testing.assert_allclose(np.asarray(e.weights), ref.weights_, rtol=PARAM_RTOL)
    np.testing.assert_allclose(np.asarray(e.means), ref.means_, rtol=PARAM_RTOL)
    shift = np.asarray(e.means) - m0
    np.testing.assert_allclose(np.asarray(e.covariances) + shift[..., :, None] * shift[..., None, :],
                               ref.covars_, rtol=PARAM_RTOL)
    # The correction is not negligible: without it the covariances differ.
    assert np.abs(np.asarray(e.covariances) - ref.covars_).max() > 1e-2
