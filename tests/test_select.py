"""`emjax.select`: the mclust-style BIC / ICL grid of Gaussian mixtures.

References: scikit-learn's ``GaussianMixture.bic`` and ``predict_proba`` evaluated on
emjax's fitted parameters (set by hand), and, under ``-m slow``, mclust's choice on Old
Faithful (EEE, i.e. "tied", with 3 components).
"""

import jax
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

import emjax
from emjax._select import Selection, SelectionRow, select

TYPES = ("full", "diag", "spherical", "tied")


def _sklearn_gmm(row: SelectionRow):
    """A scikit-learn GaussianMixture holding emjax's fitted parameters."""
    p = row.params
    sk = SkGaussianMixture(row.components, covariance_type=row.covariance_type)
    sk.weights_ = np.asarray(p.weights, np.float64)
    sk.means_ = np.asarray(p.means, np.float64)
    sk.covariances_ = np.asarray(p.covariances, np.float64)
    sk.precisions_cholesky_ = _compute_precision_cholesky(sk.covariances_, row.covariance_type)
    return sk


@pytest.fixture(scope="module")
def faithful():
    return emjax.datasets.load_old_faithful()


GRID = dict(components=(2,), covariance_types=("spherical", "tied"), num_restarts=2,
            max_steps=25, key=jax.random.key(3))


@pytest.fixture(scope="module")
def small_grid(faithful):
    """K = 2, spherical and tied (two compiled fits; the other cells reuse their programs),
    fitted twice. Every cell of the full grid is checked under -m slow."""
    seen = []
    first = select(faithful, **GRID, progress=seen.append)
    assert [i["done"] for i in seen] == list(range(1, len(first.rows) + 1))
    assert {id(i["row"]) for i in seen} == {id(r) for r in first.rows}
    assert all(i["num_cells"] == len(first.rows) for i in seen)
    return first, select(faithful, **GRID)


def _check_against_sklearn(sel, X, w=None):
    w = np.ones(len(X)) if w is None else w
    for row in sel.rows:
        assert not row.failed, row.error
        sk = _sklearn_gmm(row)
        log_lik = np.sum(w * sk.score_samples(X))
        bic = -2 * log_lik + sk._n_parameters() * np.log(np.sum(w))
        if np.all(w == 1):
            np.testing.assert_allclose(bic, sk.bic(X), rtol=1e-12)
        np.testing.assert_allclose(row.bic, bic, rtol=1e-10)
        assert row.num_params == sk._n_parameters()
        np.testing.assert_allclose(row.log_likelihood, log_lik, rtol=1e-10)
        # ICL = BIC + 2 CE, CE = −Σ_n w_n log max_k t_nk (Biernacki, Celeux & Govaert 2000).
        entropy = -np.sum(w * np.log(sk.predict_proba(X).max(axis=1)))
        np.testing.assert_allclose(row.icl, bic + 2 * entropy, rtol=1e-10)
        assert row.icl >= row.bic


def test_bic_and_icl_match_sklearn_on_emjax_params(small_grid, faithful):
    sel, _ = small_grid
    assert isinstance(sel, Selection) and len(sel) == 2
    _check_against_sklearn(sel, faithful)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("K", [1, 3])
def test_num_params_match_sklearn(covariance_type, K):
    sk = SkGaussianMixture(K, covariance_type=covariance_type)
    sk.means_ = np.zeros((K, 4))
    model = emjax.GaussianMixture(K, covariance_type=covariance_type)
    assert model.num_free_params(4) == sk._n_parameters()


def test_table_views_and_choice(small_grid):
    sel, again = small_grid
    types = GRID["covariance_types"]
    assert sel.bic.shape == sel.icl.shape == (1, 2)
    np.testing.assert_array_equal(sel.bic, again.bic)  # same key, same table
    np.testing.assert_array_equal(sel.icl, again.icl)
    best = sel.best
    assert best.bic == np.nanmin(sel.bic)
    assert best.covariance_type == types[int(np.nanargmin(sel.bic[0]))] == "tied"
    assert isinstance(best.solution, emjax.Solution)
    assert isinstance(best.model, emjax.GaussianMixture)
    assert best.model.covariance_type == best.covariance_type
    np.testing.assert_array_equal(np.asarray(best.params.means),
                                  np.asarray(best.solution.params.means))
    table = sel.to_dict()
    assert table["covariance_type"] == list(types)
    assert table["bic"] == [r.bic for r in sel.rows]
    assert set(table) >= {"components", "covariance_type", "log_likelihood", "num_params", "bic",
                          "icl", "converged"}
    assert [r.bic for r in sel.ranked("bic")] == sorted(r.bic for r in sel.rows)
    text = str(sel)
    assert "mclust reports -BIC" in text and "Top 2" in text and "tied (EEE)" in text
    assert "Chosen by BIC: K=2, covariance_type='tied'" in text
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pandas"):
            sel.to_pandas()
    else:
        frame = sel.to_pandas()
        assert list(frame["bic"]) == table["bic"]


def test_icl_criterion_reuses_rows(small_grid):
    sel, _ = small_grid
    by_icl = Selection(sel.rows, sel.components, sel.covariance_types, "icl", sel.num_points,
                       sel.num_features, sel.num_restarts)
    assert by_icl.best.icl == np.nanmin(sel.icl)


def test_failed_cells_are_recorded_not_raised(small_grid, faithful):
    # Two distinct points, repeated: a spherical component per point collapses (its variance
    # is only reg_covar); 300 components exceed the 272 rows. (Same shapes as small_grid, so
    # no new compile.)
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), len(faithful) // 2, axis=0)
    sel = select(X, **{**GRID, "components": (2, 300), "covariance_types": "spherical"})
    singular, too_many = sel.rows
    assert singular.failed and "singular covariance" in singular.error
    assert too_many.failed and "too few points" in too_many.error
    assert np.isnan(sel.bic).all() and np.isnan(sel.icl).all()
    assert sel.best is None
    assert "Every fit failed" in str(sel) and "NA" in str(sel)


def test_sample_weight_counts_as_replication(small_grid, faithful):
    # N = Σ w in the penalty; the likelihood and the entropy are weighted sums.
    w = np.random.default_rng(0).uniform(0.5, 3.0, len(faithful))
    sel = select(faithful, sample_weight=w, **GRID)
    assert sel.num_points == pytest.approx(w.sum())
    _check_against_sklearn(sel, faithful, w)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(components=(0, 1)), ValueError, "components"),
        (dict(components=(1.5,)), TypeError, "components"),
        (dict(components=()), ValueError, "components"),
        (dict(components=(2, 2)), ValueError, "repeat"),
        (dict(covariance_types=("full", "VVV")), ValueError, "covariance_types"),
        (dict(covariance_types=()), ValueError, "covariance_types"),
        (dict(criterion="aic"), ValueError, "criterion"),
        (dict(num_restarts=0), ValueError, "num_restarts"),
        (dict(key=0), TypeError, "key"),
        (dict(max_steps=-1), ValueError, "max_steps"),
        (dict(rtol=-1.0), ValueError, "rtol"),
        (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
        (dict(max_workers=0), ValueError, "max_workers"),
        (dict(init="nope"), ValueError, "init"),
    ],
)
def test_bad_arguments_raise_before_fitting(kwargs, error, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(error, match=match):
        select(X, **kwargs)


def test_bad_data_raises():
    with pytest.raises(ValueError, match="NaN"):
        select(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="2-D"):
        select(np.zeros(5))


@pytest.mark.slow
def test_old_faithful_chooses_mclusts_model(faithful):
    """mclust's ``Mclust(faithful)`` chooses EEE (emjax's "tied") with 3 components by BIC."""
    sel = select(faithful, key=jax.random.key(0))
    assert sel.bic.shape == (9, 4)
    usable = [r for r in sel.rows if not r.failed]
    assert len(usable) >= 30
    _check_against_sklearn(Selection(usable, (), (), "bic", 272, 2, 10), faithful)
    best = sel.best
    assert (best.components, best.covariance_type) == (3, "tied")
    # The full K=2 cell against scikit-learn's own fit (many restarts): the same optimum.
    sk = SkGaussianMixture(2, covariance_type="full", n_init=10, random_state=0, tol=1e-8)
    sk.fit(faithful)
    np.testing.assert_allclose(sel.bic[1, 0], sk.bic(faithful), rtol=1e-6)
    # Stable: another key on a smaller grid around the choice agrees.
    other = select(faithful, components=range(2, 5), key=jax.random.key(1))
    assert (other.best.components, other.best.covariance_type) == (3, "tied")
    assert abs(other.best.bic - best.bic) < 1e-2
