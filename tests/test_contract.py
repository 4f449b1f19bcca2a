"""The shared contract every emjax model meets, run over every model and solver.

- the ELBO never decreases under exact M-steps (and hard EM's classification likelihood
  never decreases under hard EM);
- statistics and ELBO are additive over a split of the data;
- jit == no jit, vmap over restarts == a Python loop, no retrace for the same shapes,
  the same key gives the same result;
- sample weights of 2 equal duplicated rows; weight 0 equals a removed row.

Later model families join by adding a `Case` to CASES.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import emjax
from emjax import _fit


def _blobs(seed=0, n=60, d=2, k=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    return np.concatenate([rng.normal(size=(n, d)) * (0.5 + i * 0.3) + centres[i] for i in range(k)])


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    model: Any
    solver: Any
    to_data: Any = None  # builds the model's data from the (N, 2) test matrix, if not X itself
    # Gradient M-steps amplify rounding differences (a line search's accept/reject decisions,
    # Adam's normalisation of near-zero gradients): results that are equal in exact
    # arithmetic are compared to this relative tolerance instead of ~1e-10.
    tol: float = 0.0
    # Integer data (symbols) carry no float dtype: computation uses JAX's default float.
    integer_data: bool = False

    def __str__(self):
        return self.name

    def data(self, X):
        return X if self.to_data is None else self.to_data(X)


def _laplace_log_prob(phi, x):
    scale = jnp.exp(phi["log_scale"])
    return jnp.sum(-jnp.abs(x - phi["loc"]) / scale - jnp.log(2 * scale))


def _laplace_init(seeds, X, w):
    return {"loc": seeds, "log_scale": jnp.zeros_like(seeds)}


# With the degrees of freedom learned, these Gaussian blobs would send ν towards infinity
# (no maximum), and separable experts would send the gate's weights there: directions in
# which no two rounding paths agree. Fixed ν and a prior on the gate keep the optima
# finite; learned ν and the unpenalised gate are checked in tests/test_student_t.py and
# tests/test_experts.py.
_STUDENT_T = emjax.StudentTMixture(3, dof=5.0, learn_dof=False, reg_covar=0.0)
_LAPLACE = emjax.DensityMixture(3, _laplace_log_prob, _laplace_init)
_EXPERTS = emjax.MixtureOfExperts(3, gate_l2=1.0)


def _sequences(X):
    """Each row of X becomes one short sequence (1 to 4 steps, padded to 4) that drifts
    from it, so that slicing, weighting or duplicating rows does the same to sequences."""
    X = jnp.asarray(X)
    steps = jnp.arange(4, dtype=X.dtype)[None, :, None] * jnp.array([1.5, -1.0], X.dtype)
    lengths = (jnp.floor(jnp.abs(X[:, 0]) * 7) % 4 + 1).astype(jnp.int32)
    return emjax.hmm.Sequences(X[:, None, :] + steps, lengths)


def _symbol_sequences(X):
    seqs = _sequences(X)
    symbols = (jnp.floor(jnp.abs(seqs.observations[..., 0])) % 5).astype(jnp.int32)
    return emjax.hmm.Sequences(symbols, seqs.lengths, num_symbols=5)


def _count_sequences(X):
    seqs = _sequences(X)
    return emjax.hmm.Sequences(jnp.floor(jnp.abs(seqs.observations)), seqs.lengths)


_HMM = emjax.HiddenMarkovModel(3, emissions=emjax.GaussianEmissions("full", reg_covar=0.0))
_HMM_CAT = emjax.HiddenMarkovModel(3, emissions=emjax.CategoricalEmissions(5))


def _word_counts(X):
    """Each row of X becomes a document of 8 word counts (from the digits of its scaled
    coordinates), so that slicing, weighting or duplicating rows does the same to documents.
    Some documents are empty."""
    X = jnp.asarray(X)
    scales = jnp.array([1.0, 1.7, 2.9, 4.3], X.dtype)
    return (jnp.floor(jnp.abs(X)[:, :, None] * scales) % 5).reshape(X.shape[0], 8)


# LDA's E-step restarts every document's inner loop from γ = 1 and stops it at a tolerance
# or a sweep limit, so its ELBO is monotone only as far as each document gets back to the
# same optimum: not guaranteed (see the model's docstring), but true for these data and
# keys. At most 20 sweeps keep the eager (disable_jit) test affordable.
_LDA = emjax.LatentDirichletAllocation(3, max_doc_update_iter=20)

# Gradient M-steps compile programs 2-4 times larger than closed-form ones (an optimizer
# loop around a differentiated pass over the data): these cases run with `-m slow`.
_slow = pytest.mark.slow

CASES = [
    *[Case(f"gmm-{ct}", emjax.GaussianMixture(3, covariance_type=ct, reg_covar=0.0), emjax.EM())
      for ct in ("full", "diag")],
    # The suite's time budget: two covariance types by default (all four are checked
    # against scikit-learn by default in test_parity_sklearn.py).
    *[pytest.param(Case(f"gmm-{ct}", emjax.GaussianMixture(3, covariance_type=ct, reg_covar=0.0),
                        emjax.EM()), marks=_slow)
      for ct in ("spherical", "tied")],
    Case("gmm-full-hard", emjax.GaussianMixture(3, reg_covar=0.0), emjax.HardEM()),
    # Mean-field CAVI is EM on the variational parameters (the default solver).
    pytest.param(Case("bgmm-full-dp", emjax.BayesianGaussianMixture(3), emjax.EM()), marks=_slow),
    Case("kmeans", emjax.KMeans(3), emjax.HardEM()),
    pytest.param(Case("soft-kmeans", emjax.KMeans(3, temperature=2.0), emjax.EM()), marks=_slow),
    # HMM cases run with -m slow (the suite's time budget; tests/test_hmm*.py cover HMMs).
    pytest.param(Case("hmm-categorical", _HMM_CAT, emjax.EM(), to_data=_symbol_sequences,
                      integer_data=True), marks=_slow),
    pytest.param(Case("lda", _LDA, emjax.EM(), to_data=_word_counts), marks=_slow),
    pytest.param(Case("hmm-full", _HMM, emjax.EM(), to_data=_sequences), marks=_slow),
    pytest.param(Case("hmm-viterbi", _HMM, emjax.HardEM(), to_data=_sequences), marks=_slow),
    pytest.param(Case("hmm-poisson", emjax.HiddenMarkovModel(2, emissions=emjax.PoissonEmissions()),
                      emjax.EM(), to_data=_count_sequences),
                 marks=_slow),
    pytest.param(Case("gmm-diag-gradient", emjax.GaussianMixture(3, "diag", reg_covar=0.0),
                      emjax.EM(m_step=emjax.GradientMStep(optax.adam(0.05), num_steps=10))),
                 marks=_slow),
    # L-BFGS's line search makes accept/reject decisions that rounding can flip: these
    # cases compare "equal" results to 1e-6 (the Laplace density is not smooth: 1e-4).
    pytest.param(Case("student-t", _STUDENT_T, _STUDENT_T.default_solver(), tol=1e-6),
                 marks=_slow),
    pytest.param(Case("density-laplace", _LAPLACE, _LAPLACE.default_solver(), tol=1e-4),
                 marks=_slow),
    pytest.param(Case("experts", _EXPERTS, _EXPERTS.default_solver(),
                      to_data=lambda X: (X[:, :1], X[:, 1]), tol=1e-6), marks=_slow),
]


@pytest.fixture(params=CASES, ids=str)
def case(request):
    return request.param


@pytest.fixture(scope="module")
def X():
    return _blobs()


def _params0(case, X, key=0, num_restarts=None):
    """Initial parameters from the model's own initialisation (one fit step of zero length)."""
    sol = emjax.fit(case.model, case.data(X), key=jax.random.key(key), solver=case.solver, max_steps=0,
                    num_restarts=num_restarts or 1)
    return sol.restart_params if num_restarts else sol.params


def _tol(case, tol):
    return max(tol, case.tol)


def _assert_trees_close(a, b, rtol=1e-10, atol=1e-12):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_elbo_never_decreases(case, X):
    sol = emjax.fit(case.model, case.data(X), key=jax.random.key(1), solver=case.solver, num_restarts=3,
                    max_steps=150, rtol=0.0, throw=False)
    for r in range(3):
        trace = np.asarray(sol.restart_elbo_traces[r])
        trace = trace[: int(sol.restart_num_steps[r]) + 1]
        assert np.isfinite(trace).all()
        steps = np.diff(trace)
        assert (steps >= -1e-10 * np.abs(trace[1:])).all(), steps.min()


def test_statistics_and_elbo_are_additive(case, X):
    params = _params0(case, X)
    w = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0]))
    e_step = case.model.e_step if isinstance(case.solver, emjax.EM) else case.model.hard_e_step
    whole_stats, whole_elbo = e_step(params, case.data(jnp.asarray(X)), w)
    cut = 77
    sa, ea = e_step(params, case.data(jnp.asarray(X[:cut])), w[:cut])
    sb, eb = e_step(params, case.data(jnp.asarray(X[cut:])), w[cut:])
    stats, elbo = sa + sb, ea + eb
    if isinstance(whole_stats, emjax.KMeansStats):
        # The relocation candidates combine by "farthest wins", not by summation.
        whole_stats, stats = whole_stats.counts, stats.counts
    _assert_trees_close(stats, whole_stats)
    _assert_trees_close(elbo, whole_elbo)


def test_blocked_fit_equals_single_block_fit(case, X):
    params = _params0(case, X)
    one = emjax.fit(case.model, case.data(X), params0=params, solver=case.solver, max_steps=20, rtol=0.0,
                    block_size=X.shape[0], throw=False)
    many = emjax.fit(case.model, case.data(X), params0=params, solver=case.solver, max_steps=20, rtol=0.0,
                     block_size=16, throw=False)
    _assert_trees_close(one.params, many.params, rtol=_tol(case, 1e-9), atol=_tol(case, 1e-9))
    np.testing.assert_allclose(one.log_likelihood, many.log_likelihood, rtol=_tol(case, 1e-10))


def test_jit_equals_no_jit(case, X):
    params = _params0(case, X)
    kwargs = dict(params0=params, solver=case.solver, max_steps=5, rtol=0.0, throw=False)
    jitted = emjax.fit(case.model, case.data(X), **kwargs)
    with jax.disable_jit():
        eager = emjax.fit(case.model, case.data(X), **kwargs)
    _assert_trees_close(jitted.params, eager.params, rtol=_tol(case, 1e-9), atol=_tol(case, 1e-9))
    np.testing.assert_allclose(jitted.elbo_trace, eager.elbo_trace, rtol=_tol(case, 1e-10))
    assert int(jitted.num_steps) == int(eager.num_steps)


def test_fit_under_user_jit(case, X):
    """fit can be called inside a user's jax.jit (validation of values is then skipped)."""
    params = _params0(case, X)

    @jax.jit
    def run(data):
        return emjax.fit(case.model, case.data(data), params0=params, solver=case.solver, max_steps=10,
                         rtol=0.0, throw=False).log_likelihood

    direct = emjax.fit(case.model, case.data(X), params0=params, solver=case.solver, max_steps=10, rtol=0.0,
                       throw=False).log_likelihood
    np.testing.assert_allclose(run(jnp.asarray(X)), direct, rtol=_tol(case, 1e-12))


def test_vmapped_restarts_equal_a_python_loop(case, X):
    R = 3
    batch = _params0(case, X, key=2, num_restarts=R)
    kwargs = dict(solver=case.solver, max_steps=25, rtol=1e-8, throw=False)
    together = emjax.fit(case.model, case.data(X), params0=batch, **kwargs)
    chunked = emjax.fit(case.model, case.data(X), params0=batch, restart_batch_size=2, **kwargs)
    for r in range(R):
        take = lambda tree, r=r: jax.tree.map(lambda a: a[r], tree)  # noqa: E731
        alone = emjax.fit(case.model, case.data(X), params0=take(batch), **kwargs)
        _assert_trees_close(take(together.restart_params), alone.params, rtol=_tol(case, 1e-9),
                            atol=_tol(case, 1e-9))
        assert int(together.restart_num_steps[r]) == int(alone.num_steps)
        np.testing.assert_allclose(together.restart_elbo_traces[r], alone.elbo_trace,
                                   rtol=_tol(case, 1e-10))
    _assert_trees_close(together.restart_params, chunked.restart_params, rtol=_tol(case, 1e-12),
                        atol=_tol(case, 1e-12))
    best = int(np.nanargmax(np.asarray(together.restart_elbos)))
    assert int(together.best_restart) == best


def test_no_retrace_for_same_shapes(case, X):
    kwargs = dict(solver=case.solver, num_restarts=3)
    emjax.fit(case.model, case.data(X), key=jax.random.key(0), rtol=1e-4, max_steps=7, throw=False, **kwargs)
    before = _fit.trace_count
    # Other data values, key, tolerances, max_steps (within a power of two), throw and sample
    # weights: the same compiled program.
    emjax.fit(case.model, case.data(X + 1.0), key=jax.random.key(5), rtol=1e-6, atol=1e-3, max_steps=9,
              throw=True, **kwargs)
    emjax.fit(case.model, case.data(X * 2.0), key=jax.random.key(6), rtol=1e-3, max_steps=15, **kwargs)
    # (max_steps given here too: the default, 200, has a longer trace buffer, hence its own
    # program, which this test must not depend on an earlier test having compiled.)
    emjax.fit(case.model, case.data(X), key=jax.random.key(0), rtol=1e-4, sample_weight=np.ones(len(X)),
              max_steps=12, **kwargs)
    assert _fit.trace_count == before


def test_same_key_same_result(case, X):
    kwargs = dict(solver=case.solver, num_restarts=3, max_steps=30, throw=False)
    a = emjax.fit(case.model, case.data(X), key=jax.random.key(11), **kwargs)
    b = emjax.fit(case.model, case.data(X), key=jax.random.key(11), **kwargs)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    c = emjax.fit(case.model, case.data(X), key=jax.random.key(12), **kwargs)
    assert not np.array_equal(np.asarray(a.restart_elbo_traces), np.asarray(c.restart_elbo_traces))


def test_weight_two_equals_duplicated_rows(case, X):
    params = _params0(case, X)
    rng = np.random.default_rng(3)
    dup = rng.choice(X.shape[0], 40, replace=False)
    w = np.ones(X.shape[0])
    w[dup] = 2.0
    extended = np.concatenate([X, X[dup]])
    kwargs = dict(params0=params, solver=case.solver, max_steps=15, rtol=0.0, throw=False)
    weighted = emjax.fit(case.model, case.data(X), sample_weight=w, **kwargs)
    duplicated = emjax.fit(case.model, case.data(extended), **kwargs)
    _assert_trees_close(weighted.params, duplicated.params, rtol=_tol(case, 1e-9),
                        atol=_tol(case, 1e-9))
    np.testing.assert_allclose(weighted.log_likelihood, duplicated.log_likelihood,
                               rtol=_tol(case, 1e-10))
    # Weight 0 is the same as leaving the row out (here: rows shifted far away, weight 0).
    garbage = np.concatenate([X, X[dup] + 1e3])
    zero = np.concatenate([np.ones(X.shape[0]), np.zeros(len(dup))])
    zeroed = emjax.fit(case.model, case.data(garbage), sample_weight=zero, **kwargs)
    removed = emjax.fit(case.model, case.data(X), **kwargs)
    _assert_trees_close(zeroed.params, removed.params, rtol=_tol(case, 1e-9), atol=_tol(case, 1e-9))
    np.testing.assert_allclose(zeroed.log_likelihood, removed.log_likelihood, rtol=_tol(case, 1e-10))


def test_log_likelihood_is_reported_at_the_returned_params(case, X):
    sol = emjax.fit(case.model, case.data(X), key=jax.random.key(4), solver=case.solver, num_restarts=3,
                    max_steps=40, throw=False)
    np.testing.assert_allclose(sol.log_likelihood, case.model.log_likelihood(sol.params, case.data(X)),
                               rtol=1e-12)
    n = int(sol.num_steps)
    np.testing.assert_allclose(sol.elbo_trace[n], sol.elbo.total, rtol=1e-12)
    assert np.isnan(np.asarray(sol.elbo_trace[n + 1:])).all()
    if isinstance(case.solver, emjax.EM):
        # The exact E-step makes the bound tight: ELBO == log-likelihood + log prior.
        np.testing.assert_allclose(sol.elbo.total - sol.elbo.log_prior, sol.log_likelihood,
                                   rtol=1e-10)
    else:
        assert float(sol.elbo.entropy) == 0.0


def test_float64_follows_x64_and_float32_stays_float32(case, X):
    for dtype in (np.float32, np.float64):
        sol = emjax.fit(case.model, case.data(X.astype(dtype)), key=jax.random.key(0), solver=case.solver,
                        max_steps=10, throw=False)
        if case.integer_data:
            dtype = jnp.result_type(float)
        for leaf in jax.tree.leaves(sol.params):
            assert leaf.dtype == dtype
        assert sol.log_likelihood.dtype == dtype
