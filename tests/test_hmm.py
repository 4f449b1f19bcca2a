"""HiddenMarkovModel: data layouts, structural zeros, priors, Viterbi training, generalized
EM with a user density, the parallel E-step, float32, gradients and bad input.

Parity with hmmlearn is in test_hmm_parity.py, inference against brute force in
test_hmm_inference.py, and the shared contract suite covers the model in test_contract.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax

K, D = 3, 2


@pytest.fixture(scope="module")
def truth():
    model = emjax.HiddenMarkovModel(K, emissions=emjax.GaussianEmissions("diag", reg_covar=0.0))
    params = model.make_params(
        initial=[0.6, 0.3, 0.1],
        transition=[[0.90, 0.08, 0.02], [0.05, 0.90, 0.05], [0.10, 0.10, 0.80]],
        means=[[0.0, 0.0], [3.0, 1.0], [0.0, 4.0]],
        covariances=[[1.0, 0.5], [0.7, 1.0], [1.0, 1.0]],
    )
    return model, params


@pytest.fixture(scope="module")
def seqs(truth):
    model, params = truth
    keys = jax.random.split(jax.random.key(0), 3)
    return [np.asarray(model.sample(params, n, key=k)[0]) for n, k in zip((120, 80, 50), keys, strict=True)]


def test_every_data_layout_gives_the_same_fit(truth, seqs):
    model, params = truth
    lengths = np.array([len(s) for s in seqs])
    concatenated = np.concatenate(seqs)
    padded = np.zeros((3, 120, D))
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    padded[1, 80:] = np.nan  # whatever the padding holds is ignored
    kw = dict(params0=params, max_steps=8, rtol=0.0, throw=False)
    ref = emjax.fit(model, seqs, **kw)
    for data in ((concatenated, lengths), (padded, lengths),
                 emjax.hmm.Sequences(np.nan_to_num(padded), lengths)):
        sol = emjax.fit(model, data, **kw)
        np.testing.assert_allclose(sol.log_likelihood, ref.log_likelihood, rtol=1e-12)
        np.testing.assert_allclose(sol.params.transition, ref.params.transition, rtol=1e-10)
    # Outputs come back in the layout of the input.
    p = ref.params
    paths = model.predict(p, seqs)
    assert [a.shape for a in paths] == [(120,), (80,), (50,)]
    flat = model.predict(p, (concatenated, lengths))
    np.testing.assert_array_equal(flat, np.concatenate(paths))
    grid = model.predict(p, (padded, lengths))
    assert grid.shape == (3, 120) and (np.asarray(grid[2, 50:]) == -1).all()
    np.testing.assert_array_equal(model.predict(p, seqs[0]), paths[0])
    np.testing.assert_allclose(model.log_prob(p, seqs), [model.log_prob(p, s) for s in seqs],
                               rtol=1e-12)


def test_fit_recovers_the_generating_model(truth):
    model, params = truth
    X, _ = model.sample(params, 3000, key=jax.random.key(1))
    sol = emjax.fit(model, X, key=jax.random.key(2), num_restarts=8)
    assert bool(sol.converged)
    order = np.argsort(np.asarray(sol.params.emissions.means)[:, 1] * 10
                       + np.asarray(sol.params.emissions.means)[:, 0])
    want = np.argsort(np.asarray(params.emissions.means)[:, 1] * 10
                      + np.asarray(params.emissions.means)[:, 0])
    A = np.asarray(sol.params.transition)[np.ix_(order, order)]
    np.testing.assert_allclose(A, np.asarray(params.transition)[np.ix_(want, want)], atol=0.05)
    np.testing.assert_allclose(np.asarray(sol.params.emissions.means)[order],
                               np.asarray(params.emissions.means)[want], atol=0.15)
    # The fit is at least as good as the truth, and the ELBO equals the log-likelihood.
    assert sol.log_likelihood >= model.log_likelihood(params, X) - 1e-6
    np.testing.assert_allclose(sol.elbo.total, sol.log_likelihood, rtol=1e-12)


def test_structural_zeros_stay_zero_and_priors_are_map(seqs):
    model = emjax.HiddenMarkovModel(K, emissions=emjax.GaussianEmissions("diag"),
                                    transition_prior=3.0, initial_prior=2.0)
    p0 = model.make_params(
        initial=[1.0, 0.0, 0.0], transition=[[0.8, 0.2, 0.0], [0.0, 0.8, 0.2], [0.0, 0.0, 1.0]],
        means=[[0.0, 0.0], [3.0, 1.0], [0.0, 4.0]], covariances=np.ones((K, D)))
    sol = emjax.fit(model, seqs, params0=p0, max_steps=60, rtol=0.0, throw=False)
    A = np.asarray(sol.params.transition)
    assert (A[np.asarray(p0.transition) == 0] == 0).all()
    assert (np.asarray(sol.params.initial)[1:] == 0).all()
    np.testing.assert_allclose(A.sum(1), 1.0, rtol=1e-12)
    # MAP-EM: the penalised log-likelihood never decreases, and the bound is tight.
    trace = np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]
    assert (np.diff(trace) >= -1e-9 * np.abs(trace[1:])).all()
    np.testing.assert_allclose(sol.elbo.total - sol.elbo.log_prior, sol.log_likelihood, rtol=1e-12)
    # One M-step by hand: rows of (counts + α − 1) normalised on the support.
    data = model.check_data(seqs)
    stats, _ = model.e_step(sol.params, data, jnp.ones(3))
    new = model.m_step(sol.params, stats)
    counts = np.asarray(stats.transition) + 2.0
    counts[np.asarray(p0.transition) == 0] = 0.0
    np.testing.assert_allclose(new.transition, counts / counts.sum(1, keepdims=True), rtol=1e-12)
    lp = 2.0 * np.log(A[A > 0]).sum() + 1.0 * np.log(np.asarray(sol.params.initial)[0])
    np.testing.assert_allclose(model.log_prior(sol.params), lp, rtol=1e-12)


def test_viterbi_training_is_hard_em(truth, seqs):
    model, params = truth
    sol = emjax.fit(model, seqs, params0=params, solver=emjax.HardEM(), max_steps=30, throw=False)
    trace = np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]
    assert (np.diff(trace) >= -1e-9 * np.abs(trace[1:])).all()
    # The ELBO of hard EM is log p(x, z*) at the returned parameters: the Viterbi score.
    np.testing.assert_allclose(sol.elbo.total, model.decode(sol.params, seqs)[0], rtol=1e-10)
    assert float(sol.elbo.entropy) == 0.0


def test_user_density_by_gradient_m_step_matches_closed_form(truth, seqs):
    """DensityEmissions with a diagonal Gaussian log-density, fitted by generalized EM
    (L-BFGS on Q), reaches the closed-form Baum-Welch optimum."""
    model, params = truth

    def log_normal(phi, x):
        return jnp.sum(-0.5 * (x - phi["mean"]) ** 2 * jnp.exp(-phi["log_var"])
                       - 0.5 * phi["log_var"] - 0.5 * jnp.log(2 * jnp.pi))

    em = emjax.DensityEmissions(log_normal, lambda s, X, w: {"mean": s, "log_var": jnp.zeros_like(s)})
    dens = emjax.HiddenMarkovModel(K, emissions=em)
    p0 = dens.make_params(initial=params.initial, transition=params.transition,
                          emissions={"mean": params.emissions.means,
                                     "log_var": jnp.log(params.emissions.covariances)})
    closed = emjax.fit(model, seqs, params0=params, max_steps=500, rtol=1e-12, throw=False)
    gem = emjax.fit(dens, seqs, params0=p0, max_steps=500, rtol=1e-12, throw=False)
    # The initial and transition probabilities are updated in closed form (ECM), the
    # emissions by L-BFGS: the same optimum, in about as many EM steps.
    assert bool(closed.converged) and bool(gem.converged)
    assert int(gem.num_steps) <= 2 * int(closed.num_steps)
    np.testing.assert_allclose(gem.log_likelihood, closed.log_likelihood, rtol=1e-10)
    np.testing.assert_allclose(gem.params.emissions["mean"], closed.params.emissions.means, atol=1e-5)
    np.testing.assert_allclose(gem.params.transition, closed.params.transition, atol=1e-6)
    with pytest.raises(TypeError, match="closed-form"):
        emjax.fit(dens, seqs, params0=p0, solver=emjax.EM())


def test_parallel_e_step_and_mixture_emissions_agree(truth, seqs):
    model, params = truth
    kw = dict(params0=params, max_steps=10, rtol=0.0, throw=False)
    seq = emjax.fit(model, seqs, **kw)
    par_model = emjax.HiddenMarkovModel(K, emissions=model.emissions, parallel=True)
    par = emjax.fit(par_model, seqs, **kw)
    np.testing.assert_allclose(par.log_likelihood, seq.log_likelihood, rtol=1e-11)
    np.testing.assert_allclose(par.params.emissions.means, seq.params.emissions.means, rtol=1e-9)
    # A mixture of one Gaussian per state is the Gaussian HMM.
    gm = emjax.HiddenMarkovModel(K, emissions=emjax.GaussianMixtureEmissions(1, "diag", reg_covar=0.0))
    p1 = gm.make_params(initial=params.initial, transition=params.transition,
                        weights=np.ones((K, 1)), means=params.emissions.means[:, None],
                        covariances=params.emissions.covariances[:, None])
    one = emjax.fit(gm, seqs, params0=p1, max_steps=10, rtol=0.0, throw=False)
    np.testing.assert_allclose(one.log_likelihood, seq.log_likelihood, rtol=1e-11)
    np.testing.assert_allclose(one.params.emissions.means[:, 0], seq.params.emissions.means, rtol=1e-9)


def test_float32_fit_is_finite_and_close_to_float64():
    """Offset data (1e4 + small noise) in float32, with an outlier: shifted statistics
    and log-space messages keep the fit finite and close to float64."""
    X = np.asarray(emjax.datasets.load_old_faithful(), np.float64) + 1e4
    X[100] += 500.0
    model = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("full"))
    sol64 = emjax.fit(model, X, key=jax.random.key(0), num_restarts=4)
    sol32 = emjax.fit(model, X.astype(np.float32), params0=jax.tree.map(
        lambda a: np.asarray(a, np.float32), sol64.params), max_steps=50)
    assert sol32.params.emissions.means.dtype == np.float32
    for leaf in jax.tree.leaves(sol32.params):
        assert np.isfinite(np.asarray(leaf)).all()
    np.testing.assert_allclose(sol32.log_likelihood, sol64.log_likelihood, rtol=1e-5)


@pytest.mark.slow
def test_gradient_through_fit_matches_finite_differences(truth, seqs):
    model, params = truth
    X = seqs[0]

    def loss(scale):
        sol = emjax.fit(model, X * scale, params0=params, max_steps=300, rtol=1e-13, throw=False)
        return sol.log_likelihood

    g = jax.grad(loss)(1.0)
    h = 1e-5
    fd = (loss(1.0 + h) - loss(1.0 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    unrolled = jax.grad(lambda s: emjax.fit(model, X * s, params0=params, max_steps=300,
                                            rtol=1e-13, throw=False,
                                            adjoint=emjax.Unrolled()).log_likelihood)(1.0)
    np.testing.assert_allclose(unrolled, g, rtol=1e-6)


def test_bad_input_raises_before_compute(truth, seqs):
    model, params = truth
    X = seqs[0]
    cat = emjax.HiddenMarkovModel(2, emissions=emjax.CategoricalEmissions())
    with pytest.raises(ValueError, match="stochastic"):
        model.make_params(initial=[0.5, 0.5, 0.0], transition=[[0.5, 0.6, 0.0]] * 3,
                          means=np.zeros((K, D)), covariances=np.ones((K, D)))
    with pytest.raises(ValueError, match="non-negative"):
        model.make_params(initial=[1.5, -0.5, 0.0], transition=np.eye(K),
                          means=np.zeros((K, D)), covariances=np.ones((K, D)))
    with pytest.raises(ValueError, match="non-negative integer"):
        emjax.fit(cat, np.array([0, 1, -2, 1]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="integer symbols"):
        emjax.fit(cat, np.array([0.0, 1.5, 2.0]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="num_symbols=2"):
        emjax.fit(emjax.HiddenMarkovModel(2, emissions=emjax.CategoricalEmissions(2)),
                  np.array([0, 1, 2]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="sum to 249 but `X` has 250 rows"):
        emjax.fit(model, (np.concatenate(seqs), [120, 80, 49]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="between 1 and the padded length"):
        emjax.fit(model, (np.zeros((2, 5, D)), [5, 6]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="one length per sequence"):
        emjax.fit(model, (np.zeros((2, 5, D)), [5, 5, 5]), key=jax.random.key(0))
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        emjax.fit(model, bad, key=jax.random.key(0))
    with pytest.raises(ValueError, match="non-negative integer counts"):
        emjax.fit(emjax.HiddenMarkovModel(2, emissions=emjax.PoissonEmissions()), X,
                  key=jax.random.key(0))
    with pytest.raises(ValueError, match="2 features but the parameters have 3"):
        model.log_likelihood(model.make_params(initial=params.initial, transition=params.transition,
                                               means=np.zeros((K, 3)), covariances=np.ones((K, 3))), X)
    with pytest.raises(ValueError, match="off-diagonal"):
        model.make_params(initial=params.initial, transition=params.transition,
                          means=np.zeros((K, D)), covariances=np.ones((K, D, D)))
    # hmmlearn's (K, D, D) form of diagonal covariances is accepted.
    full_form = model.make_params(initial=params.initial, transition=params.transition,
                                  means=np.zeros((K, D)), covariances=np.stack([np.diag([1.0, 2.0])] * K))
    np.testing.assert_array_equal(full_form.emissions.covariances, [[1.0, 2.0]] * K)
    with pytest.raises(ValueError, match="concentrations >= 1"):
        emjax.HiddenMarkovModel(2, transition_prior=0.5)
    with pytest.raises(TypeError, match="emission model"):
        emjax.HiddenMarkovModel(2, emissions="gaussian")
    with pytest.raises(ValueError, match="at least as many steps as states"):
        emjax.fit(model, X[:2], key=jax.random.key(0))
    with pytest.raises(ValueError, match="one sequence of shape"):
        emjax.fit(model, np.zeros(5), key=jax.random.key(0))


def test_sample_bic_and_free_parameters(truth):
    model, params = truth
    X, z = model.sample(params, 500, key=jax.random.key(3))
    assert X.shape == (500, D) and z.shape == (500,)
    p = K - 1 + K * (K - 1) + 2 * K * D
    assert model.num_free_params(D) == p
    ll = model.log_likelihood(params, X)
    np.testing.assert_allclose(model.bic(params, X), -2 * ll + p * np.log(500), rtol=1e-12)
    np.testing.assert_allclose(model.aic(params, X), -2 * ll + 2 * p, rtol=1e-12)
