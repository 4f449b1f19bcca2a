"""`emjax.plot`: every function renders (Agg backend) to a PNG and draws the expected artists."""

import sys

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

import emjax  # noqa: E402
from emjax import plot  # noqa: E402
from emjax._select import Selection, SelectionRow  # noqa: E402

FAITHFUL = emjax.datasets.load_old_faithful()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _save(fig_or_ax, tmp_path, name):
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return path


def _ellipses(ax):
    return [p for p in ax.patches if isinstance(p, Ellipse)]


def _gmm_params(covariance_type="full"):
    gmm = emjax.GaussianMixture(3, covariance_type=covariance_type)
    cov = {"full": np.array([[[0.07, 0.45], [0.45, 12.0]], [[0.2, 0.6], [0.6, 30.0]],
                             [[0.1, 0.1], [0.1, 20.0]]]),
           "tied": np.array([[0.1, 0.6], [0.6, 30.0]])}[covariance_type]
    p = gmm.make_params(weights=np.array([0.35, 0.4, 0.25]),
                        means=np.array([[2.0, 54.0], [4.4, 81.0], [4.0, 76.0]]),
                        covariances=cov)
    return gmm, p


def _solution():
    """A `Solution` of three restarts as `emjax.fit` pads it: NaN after each restart's stop
    (built by hand, to spare a compile; the docstring example plots a real fit)."""
    traces = np.full((3, 9), np.nan)
    traces[0, :4] = [-30.0, -20.0, -19.0, -18.9]
    traces[1, :7] = [-40.0, -25.0, -16.0, -15.2, -15.0, -14.95, -14.94]
    traces[2, :2] = [-50.0, -45.0]  # then non-finite: stopped on its last finite step
    results = jax.vmap(lambda ok: emjax.RESULTS.where(ok, emjax.RESULTS.converged,
                                                       emjax.RESULTS.nonfinite))(
        jnp.array([True, True, False]))
    zero = jnp.zeros(())
    return emjax.Solution(
        params=None, log_likelihood=zero, elbo=emjax.ELBO(zero, zero, zero),
        elbo_trace=jnp.asarray(traces[1]), num_steps=jnp.array(6), result=emjax.RESULTS.converged,
        best_restart=jnp.array(1), restart_params=None,
        restart_elbos=jnp.asarray([-18.9, -14.94, -45.0]), restart_results=results,
        restart_num_steps=jnp.array([3, 6, 1]), restart_elbo_traces=jnp.asarray(traces))


def test_elbo_traces_one_line_per_restart(tmp_path):
    sol = _solution()
    ax = plot.elbo_traces(sol)
    lines = ax.get_lines()
    assert len(lines) == 3
    best = lines[-1]
    assert best.get_label() == "best" and best.get_linewidth() > lines[0].get_linewidth()
    np.testing.assert_array_equal(best.get_ydata(), np.asarray(sol.restart_elbo_traces[1, :7]))
    np.testing.assert_array_equal(best.get_xdata(), np.arange(7))
    assert [len(line.get_xdata()) for line in lines] == [4, 2, 7]  # padding is not drawn
    assert lines[1].get_linestyle() == ":"  # the failed restart
    _save(ax, tmp_path, "elbo")
    with pytest.raises(TypeError, match="Solution"):
        plot.elbo_traces(sol.params)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_mixture_ellipses_per_component(tmp_path, covariance_type):
    gmm, p = _gmm_params(covariance_type)
    fig, ax = plt.subplots()
    out = plot.mixture(gmm, p, FAITHFUL, ax=ax, feature_names=["eruptions", "waiting"])
    assert out is ax
    ellipses = _ellipses(ax)
    assert len(ellipses) == 2 * 3  # 1 and 2 sigma per component
    # The 1-sigma ellipse of component 0 has the covariance's eigenvalues as its half-axes².
    cov0 = np.asarray(p.covariances)[0] if covariance_type == "full" else np.asarray(p.covariances)
    lo, hi = np.linalg.eigvalsh(cov0)
    first = ellipses[0]
    np.testing.assert_allclose(sorted([first.width, first.height]),
                               [2 * np.sqrt(lo), 2 * np.sqrt(hi)], rtol=1e-10)
    np.testing.assert_allclose(first.center, np.asarray(p.means)[0])
    assert len(ax.collections) == 1  # the scatter of the points
    assert len(ax.get_lines()) == 3  # the means
    assert ax.get_xlabel() == "eruptions"
    _save(fig, tmp_path, f"mixture_{covariance_type}")


def test_mixture_bayesian_and_kmeans(tmp_path):
    bgmm = emjax.BayesianGaussianMixture(3, covariance_type="diag",
                                         weight_prior="dirichlet_distribution")
    bp = bgmm.make_params(weight_concentration=np.array([100.0, 150.0, 1e-3]),
                          mean_precision=np.array([100.0, 150.0, 1.0]),
                          means=np.array([[2.0, 54.0], [4.3, 80.0], [3.0, 70.0]]),
                          degrees_of_freedom=np.array([100.0, 150.0, 3.0]),
                          covariances=np.array([[0.07, 34.0], [0.17, 36.0], [1.0, 1.0]]))
    ax = plot.mixture(bgmm, bp, FAITHFUL)
    assert len(_ellipses(ax)) == 4  # the third component's weight is ~1e-5: not drawn
    _save(ax, tmp_path, "bgmm")

    km = emjax.KMeans(2)
    kp = km.make_params(centers=np.array([[2.0, 54.0], [4.3, 80.0]]))
    ax = plot.mixture(km, kp, FAITHFUL, dims=(1, 0))
    assert len(_ellipses(ax)) == 0 and len(ax.get_lines()) == 2
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [54.0])


def test_mixture_errors():
    gmm, p = _gmm_params()
    with pytest.raises(ValueError, match="dims"):
        plot.mixture(gmm, p, FAITHFUL, dims=(0, 0))
    with pytest.raises(ValueError, match="X"):
        plot.mixture(gmm, p, FAITHFUL[:, :1])
    hmm = emjax.HiddenMarkovModel(2)
    with pytest.raises(TypeError, match="GaussianMixture"):
        plot.mixture(hmm, p, FAITHFUL)


def test_mixture_pairs_grid(tmp_path):
    rng = np.random.default_rng(0)
    gmm = emjax.GaussianMixture(2, covariance_type="diag")
    p = gmm.make_params(weights=np.array([0.5, 0.5]), means=np.array([[0.0, 0, 0], [3, 3, 3]]),
                        covariances=np.ones((2, 3)))
    X = np.concatenate([rng.normal(size=(40, 3)), 3 + rng.normal(size=(40, 3))])
    fig = plot.mixture_pairs(gmm, p, X)
    axes = np.array(fig.axes).reshape(3, 3)
    for r in range(3):
        for c in range(3):
            if r == c:
                assert len(_ellipses(axes[r, c])) == 0 and len(axes[r, c].patches) > 0  # bars
                assert len(axes[r, c].get_lines()) == 1  # marginal density
            else:
                assert len(_ellipses(axes[r, c])) == 4
    _save(fig, tmp_path, "pairs")


def _selection():
    rows = []
    bic = {"full": [300.0, 250.0, 260.0], "tied": [300.0, 240.0, float("nan")]}
    for k in (1, 2, 3):
        for ct in ("full", "tied"):
            b = bic[ct][k - 1]
            failed = np.isnan(b)
            rows.append(SelectionRow(k, ct, -b / 2, 3 * k, b, b + 5.0, not failed, 1, 4,
                                     "singular covariance" if failed else None,
                                     emjax.GaussianMixture(k, ct)))
    return Selection(rows, (1, 2, 3), ("full", "tied"), "bic", 100, 2, 1)


def test_bic_curves(tmp_path):
    sel = _selection()
    ax = plot.bic_curves(sel)
    lines = ax.get_lines()
    assert len(lines) == 3  # two covariance types and the star
    np.testing.assert_array_equal(lines[0].get_ydata(), [300.0, 250.0, 260.0])
    assert np.isnan(lines[1].get_ydata()[2])
    star = lines[-1]
    assert star.get_xdata()[0] == 2 and star.get_ydata()[0] == 240.0
    assert "tied (EEE)" in [t.get_text() for t in ax.get_legend().get_texts()]
    _save(ax, tmp_path, "bic")
    ax = plot.bic_curves(sel, criterion="icl")
    assert ax.get_lines()[-1].get_ydata()[0] == 245.0
    with pytest.raises(TypeError, match="Selection"):
        plot.bic_curves({"bic": 1})


def test_hmm_states_bands_follow_viterbi(tmp_path):
    hmm = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("full"))
    p = hmm.make_params(initial=[0.5, 0.5], transition=[[0.9, 0.1], [0.1, 0.9]],
                        means=np.array([[2.0, 54.0], [4.3, 80.0]]),
                        covariances=np.array([[[0.07, 0.4], [0.4, 34.0]],
                                              [[0.17, 0.9], [0.9, 36.0]]]))
    X = FAITHFUL[:60]
    ax = plot.hmm_states(hmm, p, X, dims=[1], feature_names=["eruptions", "waiting"])
    states = np.asarray(hmm.predict(p, X))
    runs = 1 + int(np.sum(np.diff(states) != 0))
    assert len(ax.patches) == runs
    assert len(ax.get_lines()) == 1
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), X[:, 1])
    _save(ax, tmp_path, "hmm")
    with pytest.raises(TypeError, match="HiddenMarkovModel"):
        plot.hmm_states(emjax.KMeans(2), p, X)


def test_lda_top_words(tmp_path):
    lda = emjax.LatentDirichletAllocation(3)
    lam = np.random.default_rng(0).gamma(1.0, 1.0, size=(3, 12)) + 0.1
    p = lda.make_params(topic_word=lam)
    vocab = [f"w{v}" for v in range(12)]
    fig = plot.lda_top_words(lda, p, vocab, num_words=5)
    assert len(fig.axes) == 3
    probs = lam / lam.sum(axis=1, keepdims=True)
    for k, ax in enumerate(fig.axes):
        bars = ax.patches
        assert len(bars) == 5
        widths = [b.get_width() for b in bars]
        np.testing.assert_allclose(widths, np.sort(probs[k])[::-1][:5])
        top_word = ax.get_yticklabels()[0].get_text()
        assert top_word == vocab[int(np.argmax(probs[k]))]
    _save(fig, tmp_path, "lda")
    with pytest.raises(ValueError, match="vocabulary"):
        plot.lda_top_words(lda, p, vocab[:3])
    with pytest.raises(ValueError, match="num_words"):
        plot.lda_top_words(lda, p, vocab, num_words=0)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    gmm, p = _gmm_params()
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot.mixture(gmm, p, FAITHFUL)
