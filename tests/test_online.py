"""SQUAREM, online EM, incremental EM and streamed fits (float64).

Independent references: NumPy implementations of online and incremental EM for Gaussian
mixtures with plain (uncentred) statistics, which emjax's centred statistics and their
``rebase_stats`` must reproduce; plain EM for the fixed points; the in-memory fit for the
streamed one.
"""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax


def _overlapping(n=1000, seed=0):
    """The slowly-converging problem of the SQUAREM reference: two unit-variance 1-D
    Gaussians with means 0 and 1, equally weighted."""
    rng = np.random.default_rng(seed)
    z = rng.random(n) < 0.5
    return (np.where(z, 0.0, 1.0) + rng.normal(size=n))[:, None]


def _blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-3.0, 0.0], [0.0, 3.0], [3.0, -1.0]])
    X = centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 2)) * np.array([1.0, 0.6])
    return X + 10.0  # offset data: centred statistics matter


def _trace(sol):
    return np.asarray(sol.elbo_trace)[: int(sol.num_steps) + 1]


def _p0(gmm, X, idx=(0, 1, 2)):
    K = gmm.num_components
    D = X.shape[1]
    ct = gmm.covariance_type
    cov = {"full": np.stack([np.eye(D)] * K), "diag": np.ones((K, D)),
           "spherical": np.ones(K), "tied": np.eye(D)}[ct]
    return gmm.make_params(weights=np.full(K, 1 / K), means=X[list(idx[:K])], covariances=cov)


# ----------------------------------------------------------------------------- rebase


@pytest.mark.parametrize("ct", ["full", pytest.param("diag", marks=pytest.mark.slow),
                                "spherical", pytest.param("tied", marks=pytest.mark.slow)])
def test_rebase_stats_equals_statistics_recentred_by_hand(ct):
    X = _blobs(200)
    gmm = emjax.GaussianMixture(3, ct)
    p = _p0(gmm, X)
    q = emjax.GaussianMixtureParams(p.weights, p.means + np.array([0.3, -0.2]), p.covariances)
    stats, _ = gmm.e_step(p, jnp.asarray(X), jnp.ones(len(X)))
    moved = gmm.rebase_stats(stats, p, q)
    r = np.asarray(gmm.predict_proba(p, X))
    d = X[None] - np.asarray(q.means)[:, None]  # (K, N, D)
    np.testing.assert_allclose(moved.shifted_sum, np.einsum("nk,knd->kd", r, d), rtol=1e-12)
    full = np.einsum("nk,knd,kne->kde", r, d, d)
    expected = {"full": full, "tied": full.sum(0),
                "diag": np.einsum("kdd->kd", full), "spherical": np.einsum("kdd->kd", full)}[ct]
    np.testing.assert_allclose(moved.shifted_scatter, expected, rtol=1e-12, atol=1e-9)


# ----------------------------------------------------------------------------- SQUAREM


@pytest.fixture(scope="module")
def slow_problem():
    X = _overlapping()
    gmm = emjax.GaussianMixture(2, "diag", reg_covar=0.0)
    p0 = gmm.make_params(weights=[0.5, 0.5], means=[[-0.5], [1.5]], covariances=[[1.0], [1.0]])
    em = emjax.fit(gmm, X, params0=p0, max_steps=20_000, rtol=1e-13)
    sq = emjax.fit(gmm, X, params0=p0, max_steps=2_000, rtol=1e-13, solver=emjax.SQUAREM())
    return gmm, X, p0, em, sq


def test_squarem_reaches_em_optimum_in_far_fewer_e_steps(slow_problem):
    gmm, X, p0, em, sq = slow_problem
    assert bool(em.converged) and bool(sq.converged)
    np.testing.assert_allclose(sq.log_likelihood, em.log_likelihood, rtol=1e-10)
    # EM's tiny last steps stop it short of the optimum; SQUAREM gets closer.
    assert float(sq.log_likelihood) >= float(em.log_likelihood) - 1e-9
    np.testing.assert_allclose(sq.params.means, em.params.means, atol=2e-3)
    em_passes = int(em.num_steps) + 1
    sq_passes = 3 * (int(sq.num_steps) + 1)
    assert sq_passes * 5 < em_passes, (sq_passes, em_passes)


def test_squarem_elbo_never_decreases(slow_problem):
    *_, sq = slow_problem
    trace = _trace(sq)
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:]))


@pytest.mark.slow
def test_squarem_with_a_large_first_step_bound_stays_valid():
    # Step lengths up to 1e3 from the first cycle: extrapolations leave the parameter space
    # (negative weights or variances) and the safeguard must fall back to plain EM steps.
    X = _blobs(300)
    gmm = emjax.GaussianMixture(3, "full", reg_covar=0.0)
    p0 = _p0(gmm, X)
    ref = emjax.fit(gmm, X, params0=p0, max_steps=3000, rtol=1e-12)
    sol = emjax.fit(gmm, X, params0=p0, max_steps=500, rtol=1e-12,
                    solver=emjax.SQUAREM(step_max0=1e3))
    trace = _trace(sol)
    assert np.isfinite(trace).all()
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))
    np.testing.assert_allclose(sol.log_likelihood, ref.log_likelihood, rtol=1e-9)


@pytest.mark.slow
def test_squarem_implicit_gradient_equals_em_gradient():
    # SQUAREM's fixed points are EM's, so `emjax.Implicit` linearises the EM map there.
    X = jnp.asarray(_blobs(150))
    gmm = emjax.GaussianMixture(3, "full", reg_covar=0.0)
    p0 = _p0(gmm, np.asarray(X))

    def loss(X, solver):
        sol = emjax.fit(gmm, X, params0=p0, max_steps=1000, rtol=1e-13, solver=solver)
        return sol.log_likelihood + jnp.sum(sol.params.means ** 2)

    g_em = jax.grad(loss)(X, emjax.EM())
    g_sq = jax.grad(loss)(X, emjax.SQUAREM())
    np.testing.assert_allclose(g_sq, g_em, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- online EM


def _np_estep(X, weights, means, covs, ct):
    """Responsibilities and plain statistics (N_k, Σ r x, Σ r x xᵀ) of a Gaussian mixture."""
    K, D = means.shape
    logp = np.empty((X.shape[0], K))
    for k in range(K):
        c = covs[k] if ct == "full" else np.diag(covs[k])
        diff = X - means[k]
        sol = np.linalg.solve(c, diff.T).T
        logp[:, k] = (np.log(weights[k]) - 0.5 * np.sum(diff * sol, 1)
                      - 0.5 * np.linalg.slogdet(2 * np.pi * c)[1])
    m = logp.max(1, keepdims=True)
    r = np.exp(logp - m)
    r /= r.sum(1, keepdims=True)
    return r, (r.sum(0), r.T @ X, np.einsum("nk,nd,ne->kde", r, X, X))


def _np_mstep(stats, ct, reg):
    n, s1, s2 = stats
    means = s1 / n[:, None]
    cov = s2 / n[:, None, None] - np.einsum("kd,ke->kde", means, means)
    D = means.shape[1]
    cov = cov + reg * np.eye(D) if ct == "full" else np.einsum("kdd->kd", cov) + reg
    return n / n.sum(), means, cov


@pytest.mark.parametrize("ct", ["full", pytest.param("diag", marks=pytest.mark.slow)])
def test_online_em_equals_a_numpy_reference(ct):
    # One minibatch of all N rows (so the order of rows is irrelevant), a constant step
    # ρ = 0.5 (the running statistics mix iterations, so `rebase_stats` matters), a burn-in
    # and Polyak averaging.
    X = _blobs(300)
    gmm = emjax.GaussianMixture(3, ct, reg_covar=1e-6)
    p0 = _p0(gmm, X)
    steps, rho, burn_in, average_after = 7, 0.5, 2, 3
    solver = emjax.OnlineEM(batch_size=len(X), step_size=rho, burn_in=burn_in,
                            average_after=average_after)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        sol = emjax.fit(gmm, X, params0=p0, key=jax.random.key(0), solver=solver,
                        max_steps=steps, rtol=0.0)

    w, mu, cov = (np.asarray(a) for a in (p0.weights, p0.means, p0.covariances))
    s = None
    avg, n_avg = None, 0
    for t in range(steps):
        _, shat = _np_estep(X, w, mu, cov, ct)
        s = shat if s is None else tuple((1 - rho) * a + rho * b for a, b in zip(s, shat, strict=True))
        if t + 1 > burn_in:
            w, mu, cov = _np_mstep(s, ct, 1e-6)
            if t + 1 > average_after:
                n_avg += 1
                avg = (w, mu, cov) if avg is None else tuple(
                    a + (b - a) / n_avg for a, b in zip(avg, (w, mu, cov), strict=True))
    for got, want in zip((sol.params.weights, sol.params.means, sol.params.covariances), avg,
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(
    "solver", [emjax.OnlineEM(batch_size=300, step_size=1.0), emjax.IncrementalEM(num_batches=1)],
    ids=["online-full-batch-unit-steps", "incremental-one-batch"])
def test_degenerate_settings_are_plain_em(solver):
    # One minibatch of all the rows and ρ = 1 (online), or one minibatch (incremental): EM.
    X = _blobs(300)
    gmm = emjax.GaussianMixture(3, "full")
    p0 = _p0(gmm, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        em = emjax.fit(gmm, X, params0=p0, max_steps=6, rtol=0.0)
        other = emjax.fit(gmm, X, params0=p0, key=jax.random.key(3), max_steps=6, rtol=0.0,
                          solver=solver)
    np.testing.assert_allclose(other.params.means, em.params.means, rtol=1e-10)
    np.testing.assert_allclose(other.params.covariances, em.params.covariances, rtol=1e-9)
    np.testing.assert_allclose(other.log_likelihood, em.log_likelihood, rtol=1e-11)
    if isinstance(solver, emjax.OnlineEM):  # its pass's ELBO is EM's when B = N
        np.testing.assert_allclose(_trace(other), _trace(em), rtol=1e-11)


def test_online_em_with_minibatches_reaches_the_em_optimum():
    X = _blobs(4000, seed=1)
    gmm = emjax.GaussianMixture(3, "full")
    p0 = _p0(gmm, X)
    em = emjax.fit(gmm, X, params0=p0, max_steps=500, rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        on = emjax.fit(gmm, X, params0=p0, key=jax.random.key(0), max_steps=30,
                       solver=emjax.OnlineEM(batch_size=200, average_after=200))
    order = np.argsort(np.asarray(on.params.means)[:, 0])
    ref = np.argsort(np.asarray(em.params.means)[:, 0])
    np.testing.assert_allclose(np.asarray(on.params.means)[order],
                               np.asarray(em.params.means)[ref], atol=0.03)
    np.testing.assert_allclose(on.log_likelihood, em.log_likelihood, rtol=2e-5)


@pytest.mark.slow
def test_online_em_is_driven_by_the_key():
    X = _blobs(300)
    gmm = emjax.GaussianMixture(3, "diag")
    p0 = _p0(gmm, X)
    solver = emjax.OnlineEM(batch_size=32)
    fit = lambda k: emjax.fit(gmm, X, params0=p0, key=jax.random.key(k), max_steps=3,  # noqa: E731
                              rtol=0.0, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        a, b, c = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(a.params.means, b.params.means)
    assert not np.allclose(a.params.means, c.params.means)


@pytest.mark.parametrize("solver", [pytest.param(emjax.SQUAREM(), marks=pytest.mark.slow),
                                    emjax.OnlineEM(batch_size=50),
                                    pytest.param(emjax.IncrementalEM(num_batches=3),
                                                 marks=pytest.mark.slow)],
                         ids=lambda s: type(s).__name__)
def test_vmapped_restarts_equal_one_after_another(solver):
    X = _blobs(200)
    gmm = emjax.GaussianMixture(3, "diag")
    p = _p0(gmm, X)
    batch = jax.tree.map(lambda a: jnp.stack([a, a]), p)
    batch = eqx.tree_at(lambda b: b.means, batch, batch.means.at[1].add(0.5))
    kw = dict(params0=batch, key=jax.random.key(0), max_steps=4, rtol=0.0, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        together = emjax.fit(gmm, X, **kw)
        apart = emjax.fit(gmm, X, restart_batch_size=1, **kw)
    np.testing.assert_allclose(together.restart_params.means, apart.restart_params.means,
                               rtol=1e-11)


@pytest.mark.parametrize("solver", [emjax.SQUAREM(),
                                    pytest.param(emjax.OnlineEM(batch_size=100),
                                                 marks=pytest.mark.slow),
                                    pytest.param(emjax.IncrementalEM(num_batches=4),
                                                 marks=pytest.mark.slow)],
                         ids=lambda s: type(s).__name__)
def test_float32_fits_stay_finite_and_float32(solver):
    X = (_blobs(800, seed=4) + 1000.0).astype(np.float32)  # a large offset, in float32
    gmm = emjax.GaussianMixture(3, "full")
    ref = emjax.fit(gmm, X, key=jax.random.key(0), max_steps=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        sol = emjax.fit(gmm, X, key=jax.random.key(0), max_steps=60, solver=solver)
    assert sol.params.covariances.dtype == np.float32
    for leaf in jax.tree.leaves(sol.params):
        assert np.isfinite(np.asarray(leaf)).all()
    np.testing.assert_allclose(sol.log_likelihood, ref.log_likelihood, rtol=1e-4)


# ----------------------------------------------------------------------------- incremental


def test_incremental_em_equals_a_numpy_reference_whose_free_energy_never_decreases():
    X = _blobs(240)
    ct, M, sweeps = "full", 4, 3
    gmm = emjax.GaussianMixture(3, ct, reg_covar=0.0)
    p0 = _p0(gmm, X)
    key = jax.random.key(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        sol = emjax.fit(gmm, X, params0=p0, key=key, max_steps=sweeps, rtol=0.0,
                        solver=emjax.IncrementalEM(num_batches=M))
    # The partition emjax draws: a permutation from the restart's solver key, in M parts.
    solver_key = jax.random.split(jax.random.fold_in(key, 1), 1)[0]
    order = np.asarray(jax.random.permutation(solver_key, len(X)))
    parts = np.array_split(order, M)

    w, mu, cov = (np.asarray(a) for a in (p0.weights, p0.means, p0.covariances))
    resp = [None] * M
    stats = []
    for i, idx in enumerate(parts):
        resp[i], s = _np_estep(X[idx], w, mu, cov, ct)
        stats.append(s)

    def free_energy(w, mu, cov):
        # F(q, θ) = Σ_i Σ_n Σ_k r_nk [log p(x_n, k | θ) − log r_nk] with the stored q.
        total = 0.0
        for i, idx in enumerate(parts):
            r = resp[i]
            _, _ = _np_estep(X[idx], w, mu, cov, ct)
            K = len(w)
            logp = np.stack([np.log(w[k]) - 0.5 * np.sum((X[idx] - mu[k]) * np.linalg.solve(
                cov[k], (X[idx] - mu[k]).T).T, 1) - 0.5 * np.linalg.slogdet(2 * np.pi * cov[k])[1]
                for k in range(K)], 1)
            total += np.sum(r * (logp - np.log(np.maximum(r, 1e-300))))
        return total

    energies = [free_energy(w, mu, cov)]
    for _ in range(sweeps):
        for i, idx in enumerate(parts):
            resp[i], stats[i] = _np_estep(X[idx], w, mu, cov, ct)
            energies.append(free_energy(w, mu, cov))
            total = tuple(sum(s[j] for s in stats) for j in range(3))
            w, mu, cov = _np_mstep(total, ct, 0.0)
            energies.append(free_energy(w, mu, cov))
    assert np.all(np.diff(energies) >= -1e-9 * np.abs(energies[1:]))
    np.testing.assert_allclose(sol.params.weights, w, rtol=1e-9)
    np.testing.assert_allclose(sol.params.means, mu, rtol=1e-9)
    np.testing.assert_allclose(sol.params.covariances, cov, rtol=1e-8)


# ----------------------------------------------------------------------------- streaming


@pytest.fixture(scope="module")
def memmap_data(tmp_path_factory):
    X = _blobs(1000, seed=2)
    path = tmp_path_factory.mktemp("stream") / "x.npy"
    np.save(path, X)
    return X, np.load(path, mmap_mode="r")


def test_streamed_em_from_a_memmap_equals_the_in_memory_fit(memmap_data):
    X, mm = memmap_data
    gmm = emjax.GaussianMixture(3, "full")
    p0 = _p0(gmm, X)
    a = emjax.fit(gmm, X, params0=p0, max_steps=200, rtol=1e-9, block_size=128)
    b = emjax.fit_stream(gmm, mm, params0=p0, max_passes=200, rtol=1e-9, chunk_size=128)
    assert int(a.num_steps) == int(b.num_steps)
    np.testing.assert_allclose(b.params.means, a.params.means, rtol=1e-13)
    np.testing.assert_allclose(b.params.covariances, a.params.covariances, rtol=1e-12)
    np.testing.assert_allclose(_trace(b), _trace(a), rtol=1e-13)
    np.testing.assert_allclose(b.log_likelihood, a.log_likelihood, rtol=1e-13)


@pytest.mark.parametrize("solver", [pytest.param(emjax.SQUAREM(), marks=pytest.mark.slow),
                                    pytest.param(emjax.OnlineEM(batch_size=100),
                                                 marks=pytest.mark.slow),
                                    emjax.IncrementalEM(batch_size=200)],
                         ids=lambda s: type(s).__name__)
def test_streamed_solvers_reach_the_em_optimum(memmap_data, solver):
    X, mm = memmap_data
    gmm = emjax.GaussianMixture(3, "full")
    p0 = _p0(gmm, X)
    ref = emjax.fit(gmm, X, params0=p0, max_steps=1000, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        sol = emjax.fit_stream(gmm, mm, params0=p0, key=jax.random.key(0), solver=solver,
                               max_passes=60, rtol=1e-10)
    tol = 1e-4 if isinstance(solver, emjax.OnlineEM) else 1e-9
    np.testing.assert_allclose(sol.log_likelihood, ref.log_likelihood, rtol=tol)
    np.testing.assert_allclose(
        sol.log_likelihood, gmm.log_likelihood(sol.params, X), rtol=1e-12)


def test_streamed_chunks_from_a_function_with_sample_weights():
    X = _blobs(500, seed=3)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    gmm = emjax.GaussianMixture(3, "diag")
    p0 = _p0(gmm, X)

    def chunks():
        for i in range(0, len(X), 150):  # the last chunk is short: padded with weight 0
            yield {"data": X[i:i + 150], "sample_weight": w[i:i + 150]}

    a = emjax.fit(gmm, X, params0=p0, sample_weight=w, max_steps=300, rtol=1e-10)
    b = emjax.fit_stream(gmm, chunks, params0=p0, max_passes=300, rtol=1e-10)
    np.testing.assert_allclose(b.params.means, a.params.means, rtol=1e-10)
    np.testing.assert_allclose(b.log_likelihood, a.log_likelihood, rtol=1e-12)


def test_streamed_fit_reports_progress_and_survives_an_interrupt(capsys):
    X = _blobs(300)
    gmm = emjax.GaussianMixture(3, "diag")
    p0 = _p0(gmm, X)
    passes = []

    def chunks():
        # Called once to check params0 against the first chunk, then once per pass: the
        # fourth pass (pass 3) is interrupted.
        if len(passes) == 4:
            raise KeyboardInterrupt
        passes.append(1)
        yield X

    seen = []
    with pytest.warns(emjax.ConvergenceWarning, match="interrupted"):
        sol = emjax.fit_stream(gmm, chunks, params0=p0, max_passes=50, verbose=True,
                               callback=lambda info: seen.append(info["pass"]))
    assert seen == [0, 1, 2]
    assert "pass 2: ELBO" in capsys.readouterr().err
    # Pass 3 was interrupted before θ_3 got its ELBO: the result stands on θ_2.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        ref = emjax.fit(gmm, X, params0=p0, max_steps=2, rtol=0.0)
    assert int(sol.num_steps) == 2
    np.testing.assert_allclose(sol.params.means, ref.params.means, rtol=1e-12)
    np.testing.assert_allclose(sol.log_likelihood, ref.log_likelihood, rtol=1e-12)


def test_a_bad_chunk_is_named():
    X = _blobs(300)
    bad = X.copy()
    bad[5, 1] = np.nan
    gmm = emjax.GaussianMixture(3, "diag")
    with pytest.raises(ValueError, match="chunk 1 of the source.*NaN"):
        emjax.fit_stream(gmm, [X, bad], params0=_p0(gmm, X))


# ----------------------------------------------------------------------------- bad input


def test_bad_solver_options_and_uses_raise_before_compute():
    X = _blobs(100)
    gmm = emjax.GaussianMixture(3)
    p0 = _p0(gmm, X)
    with pytest.raises(ValueError, match="`key` is required by OnlineEM"):
        emjax.fit(gmm, X, params0=p0, solver=emjax.OnlineEM(batch_size=10))
    with pytest.raises(ValueError, match="`key` is required by IncrementalEM"):
        emjax.fit(gmm, X, params0=p0, solver=emjax.IncrementalEM())
    with pytest.raises(ValueError, match="batch_size"):
        emjax.OnlineEM(batch_size=0)
    with pytest.raises(ValueError, match="decay"):
        emjax.OnlineEM(batch_size=10, decay=1.5)
    with pytest.raises(ValueError, match="step_size"):
        emjax.OnlineEM(batch_size=10, step_size=2.0)
    with pytest.raises(ValueError, match="not both"):
        emjax.IncrementalEM(batch_size=10, num_batches=3)
    with pytest.raises(ValueError, match="step_max0"):
        emjax.SQUAREM(step_max0=0.5)
    student = emjax.StudentTMixture(2)
    for solver in (emjax.SQUAREM(), emjax.OnlineEM(batch_size=10), emjax.IncrementalEM()):
        with pytest.raises(TypeError, match="closed-form M-step"):
            emjax.fit(student, X, key=jax.random.key(0), solver=solver)
    with pytest.raises(ValueError, match="num_rows"):
        emjax.fit_stream(gmm, [X], params0=p0, key=jax.random.key(0),
                         solver=emjax.OnlineEM(batch_size=10))
    with pytest.raises(TypeError, match="source"):
        emjax.fit_stream(gmm, 3, params0=p0)


# ----------------------------------------------------------------------------- other models


@pytest.mark.slow
def test_hidden_markov_model_with_every_solver_and_streamed_sequences():
    # Minibatches are sequences; Gaussian emission statistics are centred on the means, so
    # online and incremental EM rely on the HMM's `rebase_stats`.
    model = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("diag"))
    truth = model.make_params(initial=[0.5, 0.5], transition=[[0.9, 0.1], [0.1, 0.9]],
                              means=[[0.0], [2.0]], covariances=[[1.0], [1.0]])
    seqs = [np.asarray(model.sample(truth, 100, key=jax.random.key(i))[0]) for i in range(40)]
    p0 = model.make_params(initial=[0.5, 0.5], transition=[[0.8, 0.2], [0.2, 0.8]],
                           means=[[-0.5], [1.5]], covariances=[[1.0], [1.0]])
    ref = emjax.fit(model, seqs, params0=p0, max_steps=500, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        for solver, tol in ((emjax.SQUAREM(), 1e-10), (emjax.IncrementalEM(num_batches=5), 1e-9),
                            (emjax.OnlineEM(batch_size=8, average_after=50), 1e-6)):
            sol = emjax.fit(model, seqs, params0=p0, key=jax.random.key(0), solver=solver,
                            max_steps=100, rtol=1e-12)
            np.testing.assert_allclose(sol.log_likelihood, ref.log_likelihood, rtol=tol)
    streamed = emjax.fit_stream(model, [seqs[i:i + 10] for i in range(0, 40, 10)], params0=p0,
                                max_passes=500, rtol=1e-12)
    np.testing.assert_allclose(streamed.params.transition, ref.params.transition, rtol=1e-10)
    np.testing.assert_allclose(streamed.log_likelihood, ref.log_likelihood, rtol=1e-12)


@pytest.mark.slow
def test_online_em_on_kmeans_reaches_lloyds_inertia():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 2)) + np.repeat(np.array([[0, 0], [5, 5], [0, 5]]), 1000, 0)
    km = emjax.KMeans(3)
    lloyd = emjax.fit(km, X, key=jax.random.key(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        online = emjax.fit(km, X, key=jax.random.key(0), solver=emjax.OnlineEM(batch_size=100),
                           max_steps=20)
    np.testing.assert_allclose(km.inertia(online.params, X), km.inertia(lloyd.params, X),
                               rtol=1e-3)
