"""Bad input to `emjax.fit` and the models raises at once, naming the argument.

Every test in this module runs with ``emjax._fit._fit_impl`` (the jitted program that does
all the compute) replaced by a function that fails loudly, so each test also shows that
the error comes from validation *before* any compute. `test_valid_input_reaches_compute`
checks that the replacement is really in the path.
"""

import importlib

import jax

jax.config.update("jax_enable_x64", True)  # idempotent; tests/conftest.py does the same

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import emjax  # noqa: E402

_fit_module = importlib.import_module("emjax._fit")

# JAX's own dtype probe of string input warns about NumPy's deprecated 'a' alias.
pytestmark = pytest.mark.filterwarnings("ignore:Data type alias 'a':DeprecationWarning")

KEY = jax.random.key(0)


class ComputeReached(AssertionError):
    """Raised by the stand-in for `_fit_impl`: validation let the input through."""


@pytest.fixture(autouse=True)
def compute_calls(monkeypatch):
    """Replace the compute with a stand-in that records its inputs and raises."""
    calls = []

    def fake_fit_impl(*args, **kwargs):
        calls.append((args, kwargs))
        raise ComputeReached("emjax._fit._fit_impl was called: the input was not rejected first")

    monkeypatch.setattr(_fit_module, "_fit_impl", fake_fit_impl)
    return calls


def _data(n=20, d=2, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


def gmm(k=3, **kw):
    return emjax.GaussianMixture(k, **kw)


def kmeans(k=3, **kw):
    return emjax.KMeans(k, **kw)


MODELS = [
    pytest.param(gmm, "num_components", id="gmm"),
    pytest.param(kmeans, "num_clusters", id="kmeans"),
]


def _gmm_params(model, k=3, d=2, **overrides):
    ct = model.covariance_type
    cov = {
        "full": np.broadcast_to(np.eye(d), (k, d, d)).copy(),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
        "tied": np.eye(d),
    }[ct]
    arrays = dict(weights=np.full(k, 1.0 / k), means=np.arange(k * d, dtype=float).reshape(k, d),
                  covariances=cov)
    arrays.update(overrides)
    return arrays


# ----------------------------------------------------------------------------- sanity


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_valid_input_reaches_compute(make_model, _name, compute_calls):
    """The stand-in is in the path: valid input gets past validation to it."""
    with pytest.raises(ComputeReached):
        emjax.fit(make_model(), _data(), key=KEY)
    assert len(compute_calls) == 1


def test_valid_params0_reaches_compute(compute_calls):
    model = gmm()
    p0 = model.make_params(**_gmm_params(model))
    with pytest.raises(ComputeReached):
        emjax.fit(model, _data(), params0=p0)
    km = kmeans()
    with pytest.raises(ComputeReached):
        emjax.fit(km, _data(), params0=km.make_params(centers=np.zeros((3, 2))))
    assert len(compute_calls) == 2


def test_legacy_uint32_key_is_accepted(compute_calls):
    with pytest.raises(ComputeReached):
        emjax.fit(gmm(), _data(), key=jax.random.PRNGKey(0))


# ----------------------------------------------------------------------------- X


@pytest.mark.parametrize("make_model, _name", MODELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_in_X(make_model, _name, dtype):
    X = _data(dtype=dtype)
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"`X` contains NaN or infinite values \(at index \(4, 1\)\)"):
        emjax.fit(make_model(), X, key=KEY)


@pytest.mark.parametrize("make_model, _name", MODELS)
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_X(make_model, _name, value):
    X = _data()
    X[7, 0] = value
    with pytest.raises(ValueError, match=r"`X` contains NaN or infinite values \(at index \(7, 0\)\)"):
        emjax.fit(make_model(), X, key=KEY)


def test_many_nonfinite_values_are_summarised():
    X = _data()
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"`X` contains NaN.*\(0, 1\), \(1, 1\).* and 15 more"):
        emjax.fit(gmm(), X, key=KEY)


def test_nan_in_jax_array_X():
    X = jnp.asarray(_data()).at[2, 0].set(jnp.nan)
    with pytest.raises(ValueError, match=r"`X` contains NaN.*\(2, 0\)"):
        emjax.fit(gmm(), X, key=KEY)


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_1d_X(make_model, _name):
    with pytest.raises(ValueError, match=r"`X` must be a 2-D array.*got 1-D shape \(20,\)"):
        emjax.fit(make_model(), _data()[:, 0], key=KEY)


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_3d_X(make_model, _name):
    X = _data().reshape(2, 10, 2)
    with pytest.raises(ValueError, match=r"`X` must be a 2-D array.*got 3-D shape \(2, 10, 2\)"):
        emjax.fit(make_model(), X, key=KEY)


@pytest.mark.parametrize("shape", [(0, 2), (5, 0)])
def test_empty_X(shape):
    with pytest.raises(ValueError, match=r"`X` must have at least one row and one column"):
        emjax.fit(gmm(1), np.zeros(shape), key=KEY)


@pytest.mark.parametrize("make_model, name", MODELS)
def test_fewer_points_than_components(make_model, name):
    with pytest.raises(ValueError, match=rf"`X` has 4 rows but {name}=5"):
        emjax.fit(make_model(5), _data(n=4), key=KEY)


@pytest.mark.parametrize("make_model, _name", MODELS)
@pytest.mark.parametrize(
    "X",
    [
        [["a", "b"], ["c", "d"], ["e", "f"]],
        np.array([["a", "b"], ["c", "d"], ["e", "f"]]),
        None,
        [[1.0, 2.0], [3.0]],  # ragged
    ],
    ids=["list-of-str", "str-array", "None", "ragged"],
)
def test_non_numeric_X(make_model, _name, X):
    with pytest.raises(TypeError, match=r"`X` must be a numeric array"):
        emjax.fit(make_model(1), X, key=KEY)


def test_complex_X():
    with pytest.raises(TypeError, match=r"`X` must hold real numbers; got dtype complex"):
        emjax.fit(gmm(), _data() + 1j, key=KEY)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_X_is_rejected_or_upcast(dtype, compute_calls):
    """emjax computes in float32 or float64: half-precision data cannot be fitted as is
    (on CPU its Cholesky raises NotImplementedError deep inside the jitted program). It must
    be rejected up front with an error naming `X`, or be upcast before the compute."""
    X = jnp.asarray(_data(), dtype=dtype)
    try:
        emjax.fit(gmm(), X, key=KEY)
    except (TypeError, ValueError) as e:
        assert "`X`" in str(e)
        return
    except ComputeReached:
        (args, _kwargs), = compute_calls
        dtype = args[2].dtype
        assert dtype in (jnp.float32, jnp.float64), (
            f"half-precision X (dtype {dtype}) went through validation unchanged into the compute"
        )


# ----------------------------------------------------------------------------- model options


@pytest.mark.parametrize("make_model, name", MODELS)
@pytest.mark.parametrize("k", [0, -1])
def test_num_components_not_positive(make_model, name, k):
    with pytest.raises(ValueError, match=rf"`{name}` must be an integer >= 1; got {k}"):
        make_model(k)


@pytest.mark.parametrize("make_model, name", MODELS)
@pytest.mark.parametrize("k", [2.5, True, "3", None], ids=["2.5", "True", "str", "None"])
def test_num_components_not_an_int(make_model, name, k):
    with pytest.raises((TypeError, ValueError), match=rf"`{name}` must be an integer >= 1"):
        make_model(k)


def test_numpy_int_num_components_is_accepted():
    assert gmm(np.int64(2)).num_components == 2
    assert kmeans(np.int32(2)).num_clusters == 2


@pytest.mark.parametrize("ct", ["fulll", "Full", "diagonal", None, ""])
def test_unknown_covariance_type(ct):
    with pytest.raises(
        ValueError,
        match=r"`covariance_type` must be one of 'full', 'diag', 'spherical', 'tied'; got",
    ):
        gmm(covariance_type=ct)


def test_unknown_gmm_init():
    with pytest.raises(
        ValueError,
        match=r"`init` must be one of 'kmeans\+\+', 'kmeans', 'random', 'random_from_data'; "
        r"got 'kmeans\+'",
    ):
        gmm(init="kmeans+")


def test_unknown_kmeans_init():
    with pytest.raises(ValueError, match=r"`init` must be one of 'kmeans\+\+', 'random'; got 'kmeans'"):
        kmeans(init="kmeans")


@pytest.mark.parametrize("reg", [-1e-3, np.nan, np.inf])
def test_bad_reg_covar(reg):
    with pytest.raises(ValueError, match=r"`reg_covar` must be a finite number >= 0"):
        gmm(reg_covar=reg)


def test_non_scalar_reg_covar():
    with pytest.raises(ValueError, match=r"`reg_covar` must be a scalar; got shape \(2,\)"):
        gmm(reg_covar=np.ones(2))


@pytest.mark.parametrize("temperature", [0.0, np.nan, np.inf])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number"):
        kmeans(temperature=temperature)


def test_negative_temperature_message_states_the_requirement():
    """The message for a strictly positive argument says "> 0" (regression: it said ">= 0")."""
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number > 0"):
        kmeans(temperature=-1.0)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: gmm(reg_covar="big"), id="reg_covar-str"),
        pytest.param(lambda: gmm(reg_covar=None), id="reg_covar-None"),
        pytest.param(lambda: kmeans(temperature=None), id="temperature-None"),
        pytest.param(lambda: kmeans(temperature="hot"), id="temperature-str"),
        pytest.param(lambda: emjax.fit(gmm(), _data(), key=KEY, rtol="tight"), id="rtol-str"),
        pytest.param(lambda: emjax.fit(gmm(), _data(), key=KEY, atol=None), id="atol-None"),
    ],
)
def test_non_numeric_scalar_option_names_the_argument(build, request):
    """A string or None for reg_covar / temperature / rtol / atol names the argument
    (regression: JAX's own conversion error, which names none)."""
    name = request.node.callspec.id.split("-")[0]
    with pytest.raises((TypeError, ValueError), match=rf"`{name}`"):
        build()


# ----------------------------------------------------------------------------- fit options


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_missing_key(make_model, _name):
    with pytest.raises(ValueError, match=r"`key` is required"):
        emjax.fit(make_model(), _data())


@pytest.mark.parametrize("make_model, _name", MODELS)
@pytest.mark.parametrize("key", [0, 42, "key"])
def test_key_not_a_prng_key(make_model, _name, key):
    with pytest.raises(TypeError, match=r"`key` must be a JAX PRNG key"):
        emjax.fit(make_model(), _data(), key=key)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda: jax.random.split(jax.random.key(0), 3), id="batch-of-keys"),
        pytest.param(lambda: jnp.array(1.0), id="float-array"),
        pytest.param(lambda: jnp.zeros((3, 2), jnp.uint32), id="batch-of-raw-keys"),
    ],
)
def test_key_array_that_is_not_one_key(key):
    """A batch of keys or a float array is rejected before compute, naming `key`
    (regression: it failed inside the jitted program without naming it)."""
    with pytest.raises((TypeError, ValueError), match=r"`key`"):
        emjax.fit(gmm(), _data(), key=key())


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_num_restarts_zero(make_model, _name):
    with pytest.raises(ValueError, match=r"`num_restarts` must be an integer >= 1; got 0"):
        emjax.fit(make_model(), _data(), key=KEY, num_restarts=0)


def test_num_restarts_float():
    with pytest.raises(TypeError, match=r"`num_restarts` must be an integer >= 1; got 2.0"):
        emjax.fit(gmm(), _data(), key=KEY, num_restarts=2.0)


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_max_steps_negative(make_model, _name):
    with pytest.raises(ValueError, match=r"`max_steps` must be an integer >= 0; got -1"):
        emjax.fit(make_model(), _data(), key=KEY, max_steps=-1)


def test_max_steps_beyond_int32():
    """A huge max_steps is rejected naming `max_steps` (regression: an int32 OverflowError;
    the ELBO trace keeps one value per step, so the bound also prevents a memory trap)."""
    with pytest.raises(ValueError, match=r"`max_steps`"):
        emjax.fit(gmm(), _data(), key=KEY, max_steps=2**31)


def test_max_steps_float():
    with pytest.raises(TypeError, match=r"`max_steps` must be an integer >= 0; got 10.0"):
        emjax.fit(gmm(), _data(), key=KEY, max_steps=10.0)


@pytest.mark.parametrize("name", ["rtol", "atol"])
@pytest.mark.parametrize("value", [-1e-3, np.nan, np.inf])
def test_bad_tolerance(name, value):
    with pytest.raises(ValueError, match=rf"`{name}` must be a finite number >= 0"):
        emjax.fit(gmm(), _data(), key=KEY, **{name: value})


def test_non_scalar_tolerance():
    with pytest.raises(ValueError, match=r"`rtol` must be a scalar"):
        emjax.fit(gmm(), _data(), key=KEY, rtol=np.ones(2))


def test_throw_not_bool():
    with pytest.raises(TypeError, match=r"`throw` must be True or False"):
        emjax.fit(gmm(), _data(), key=KEY, throw=1)


@pytest.mark.parametrize("name", ["block_size", "restart_batch_size"])
def test_bad_block_sizes(name):
    with pytest.raises(ValueError, match=rf"`{name}` must be an integer >= 1; got 0"):
        emjax.fit(gmm(), _data(), key=KEY, **{name: 0})


# ----------------------------------------------------------------------------- sample_weight


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_negative_sample_weight(make_model, _name):
    w = np.ones(20)
    w[5] = -0.5
    with pytest.raises(ValueError, match=r"`sample_weight` must be non-negative; got 1 negative"):
        emjax.fit(make_model(), _data(), key=KEY, sample_weight=w)


@pytest.mark.parametrize("make_model, _name", MODELS)
def test_all_zero_sample_weight(make_model, _name):
    with pytest.raises(ValueError, match=r"`sample_weight` must have at least one positive entry"):
        emjax.fit(make_model(), _data(), key=KEY, sample_weight=np.zeros(20))


@pytest.mark.parametrize("make_model, _name", MODELS)
@pytest.mark.parametrize("shape", [(19,), (21,), (20, 1), ()])
def test_wrong_shape_sample_weight(make_model, _name, shape):
    with pytest.raises(ValueError, match=r"`sample_weight` must have shape \(20,\).*got shape"):
        emjax.fit(make_model(), _data(), key=KEY, sample_weight=np.ones(shape))


@pytest.mark.parametrize("make_model, _name", MODELS)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nonfinite_sample_weight(make_model, _name, value):
    w = np.ones(20)
    w[3] = value
    with pytest.raises(ValueError, match=r"`sample_weight` contains NaN or infinite values \(at index \(3,\)\)"):
        emjax.fit(make_model(), _data(), key=KEY, sample_weight=w)


def test_sample_weight_overflowing_the_data_dtype():
    """Weights are cast to the data's dtype; 1e300 is inf in float32 and must be caught."""
    w = np.ones(20)
    w[0] = 1e300
    with pytest.raises(ValueError, match=r"`sample_weight` contains NaN or infinite values \(at index \(0,\)\)"):
        emjax.fit(gmm(), _data(dtype=np.float32), key=KEY, sample_weight=w)


def test_non_numeric_sample_weight():
    with pytest.raises(TypeError, match=r"`sample_weight` must be a numeric array"):
        emjax.fit(gmm(), _data(), key=KEY, sample_weight=["a"] * 20)


# ----------------------------------------------------------------------------- model / solver


@pytest.mark.parametrize("model", ["gmm", None, object()], ids=["str", "None", "object"])
def test_model_not_an_emjax_model(model):
    with pytest.raises(TypeError, match=r"`model` must be an emjax model"):
        emjax.fit(model, _data(), key=KEY)


def test_sklearn_model_is_not_an_emjax_model():
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    with pytest.raises(TypeError, match=r"`model` must be an emjax model.*got GaussianMixture"):
        emjax.fit(sklearn_mixture.GaussianMixture(2), _data(), key=KEY)


def test_model_class_instead_of_instance():
    with pytest.raises(TypeError, match=r"`model` must be an emjax model"):
        emjax.fit(emjax.GaussianMixture, _data(), key=KEY)


@pytest.mark.parametrize("solver", ["em", emjax.EM, object()], ids=["str", "class", "object"])
def test_solver_not_a_solver(solver):
    with pytest.raises(TypeError, match=r"`solver` must be an emjax solver"):
        emjax.fit(gmm(), _data(), key=KEY, solver=solver)


# ----------------------------------------------------------------------------- params0


def test_params0_wrong_type_gmm():
    with pytest.raises(TypeError, match=r"`params0` must be GaussianMixtureParams.*got dict"):
        emjax.fit(gmm(), _data(), params0={"weights": np.ones(3) / 3})
    with pytest.raises(TypeError, match=r"`params0` must be GaussianMixtureParams.*got KMeansParams"):
        emjax.fit(gmm(), _data(), params0=emjax.KMeansParams(np.zeros((3, 2))))


def test_params0_wrong_type_kmeans():
    model = gmm()
    p = model.make_params(**_gmm_params(model))
    with pytest.raises(TypeError, match=r"`params0` must be KMeansParams.*got GaussianMixtureParams"):
        emjax.fit(kmeans(), _data(), params0=p)
    with pytest.raises(TypeError, match=r"`params0` must be KMeansParams.*got ndarray"):
        emjax.fit(kmeans(), _data(), params0=np.zeros((3, 2)))


def test_make_params_wrong_weights_shape():
    model = gmm()
    with pytest.raises(ValueError, match=r"`weights` must have shape \(3,\); got \(2,\)"):
        model.make_params(**_gmm_params(model, weights=np.array([0.5, 0.5])))


@pytest.mark.parametrize("weights", [[0.5, 0.3, 0.3], [0.2, 0.2, 0.2]])
def test_make_params_weights_not_summing_to_one(weights):
    model = gmm()
    with pytest.raises(ValueError, match=r"`weights` must be non-negative and sum to 1"):
        model.make_params(**_gmm_params(model, weights=np.array(weights)))


def test_make_params_negative_weight():
    model = gmm()
    with pytest.raises(ValueError, match=r"`weights` must be non-negative"):
        model.make_params(**_gmm_params(model, weights=np.array([-0.5, 0.75, 0.75])))


def test_make_params_wrong_means_shape():
    model = gmm()
    with pytest.raises(ValueError, match=r"`means` must have shape \(3, 'D'\); got \(4, 2\)"):
        model.make_params(**_gmm_params(model, means=np.zeros((4, 2))))


@pytest.mark.parametrize(
    "ct, bad_shape, expected",
    [
        ("full", (3, 2), r"\(3, 2, 2\)"),
        ("diag", (3, 2, 2), r"\(3, 2\)"),
        ("spherical", (3, 2), r"\(3,\)"),
        ("tied", (3, 2, 2), r"\(2, 2\)"),
    ],
)
def test_make_params_wrong_covariance_shape(ct, bad_shape, expected):
    model = gmm(covariance_type=ct)
    with pytest.raises(
        ValueError, match=rf"`covariances` must have shape {expected} for covariance_type='{ct}'"
    ):
        model.make_params(**_gmm_params(model, covariances=np.ones(bad_shape)))


def test_make_params_non_pd_full_covariance():
    model = gmm()
    cov = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    cov[1] = [[1.0, 2.0], [2.0, 1.0]]  # symmetric, eigenvalues 3 and -1
    with pytest.raises(ValueError, match=r"`covariances` must be positive definite"):
        model.make_params(**_gmm_params(model, covariances=cov))


def test_make_params_non_symmetric_full_covariance():
    model = gmm()
    cov = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    cov[2] = [[1.0, 0.5], [0.0, 1.0]]
    with pytest.raises(ValueError, match=r"`covariances` must be symmetric"):
        model.make_params(**_gmm_params(model, covariances=cov))


def test_make_params_non_pd_tied_covariance():
    model = gmm(covariance_type="tied")
    with pytest.raises(ValueError, match=r"`covariances` must be positive definite"):
        model.make_params(**_gmm_params(model, covariances=np.array([[1.0, 2.0], [2.0, 1.0]])))


@pytest.mark.parametrize("ct, cov", [("diag", [[1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]),
                                     ("spherical", [1.0, 0.0, 1.0])])
def test_make_params_non_positive_variances(ct, cov):
    model = gmm(covariance_type=ct)
    with pytest.raises(ValueError, match=r"`covariances` \(variances\) must be positive"):
        model.make_params(**_gmm_params(model, covariances=np.array(cov)))


def test_make_params_nonfinite_means():
    model = gmm()
    means = np.zeros((3, 2))
    means[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"`weights`, `means` and `covariances` must be finite"):
        model.make_params(**_gmm_params(model, means=means))


def test_params0_bypassing_make_params_is_validated():
    """A hand-built GaussianMixtureParams goes through the same checks in `fit`."""
    bad = emjax.GaussianMixtureParams(
        weights=np.full(3, 1 / 3), means=np.zeros((3, 2)),
        covariances=np.stack([np.eye(2), -np.eye(2), np.eye(2)]),
    )
    with pytest.raises(ValueError, match=r"`covariances` must be positive definite"):
        emjax.fit(gmm(), _data(), params0=bad)
    bad_sum = emjax.GaussianMixtureParams(
        weights=np.array([0.5, 0.5, 0.5]), means=np.zeros((3, 2)),
        covariances=np.broadcast_to(np.eye(2), (3, 2, 2)),
    )
    with pytest.raises(ValueError, match=r"`weights` must be non-negative and sum to 1"):
        emjax.fit(gmm(), _data(), params0=bad_sum)


def test_params0_from_python_lists(compute_calls):
    """GaussianMixtureParams built from Python lists are accepted (regression: AttributeError)."""
    p0 = emjax.GaussianMixtureParams(
        weights=[0.5, 0.5], means=[[0.0, 0.0], [1.0, 1.0]],
        covariances=[[[1.0, 0.0], [0.0, 1.0]]] * 2,
    )
    try:
        emjax.fit(gmm(2), _data(), params0=p0)
    except ComputeReached:
        return
    except (TypeError, ValueError) as e:
        assert any(name in str(e) for name in ("params0", "weights", "means", "covariances"))


def test_params0_feature_mismatch():
    model = gmm()
    p = model.make_params(**_gmm_params(model, d=3))
    with pytest.raises(ValueError, match=r"`means` has 3 features but the data have 2"):
        emjax.fit(model, _data(), params0=p)
    km = kmeans()
    with pytest.raises(ValueError, match=r"`centers` have 3 features but the data have 2"):
        emjax.fit(km, _data(), params0=km.make_params(centers=np.zeros((3, 3))))


def test_kmeans_make_params_errors():
    km = kmeans()
    with pytest.raises(ValueError, match=r"`centers` must have shape \(3, D\); got \(2, 2\)"):
        km.make_params(centers=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"`centers` must be finite"):
        km.make_params(centers=np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]))
    with pytest.raises(ValueError, match=r"`centers` must be finite"):
        emjax.fit(km, _data(), params0=emjax.KMeansParams(np.array([[0.0, np.inf], [1, 1], [2, 2]])))


def test_gmm_params0_batch_size_mismatch():
    model = gmm()
    R = 4
    p = model.make_params(
        weights=np.full((R, 3), 1 / 3), means=np.zeros((R, 3, 2)),
        covariances=np.broadcast_to(np.eye(2), (R, 3, 2, 2)),
    )
    with pytest.raises(
        ValueError, match=r"`params0` holds a batch of 4 initial parameter sets but num_restarts=3"
    ):
        emjax.fit(model, _data(), params0=p, num_restarts=3)


def test_gmm_params0_batch_inconsistent_leaves():
    model = gmm()
    with pytest.raises(ValueError, match=r"`weights` must have shape \(4, 3\); got \(3, 3\)"):
        model.make_params(
            weights=np.full((3, 3), 1 / 3), means=np.zeros((4, 3, 2)),
            covariances=np.broadcast_to(np.eye(2), (4, 3, 2, 2)),
        )


def test_kmeans_params0_batch_size_mismatch():
    km = kmeans()
    p = km.make_params(centers=np.zeros((4, 3, 2)))
    with pytest.raises(
        ValueError, match=r"`params0` holds a batch of 4 initial parameter sets but num_restarts=5"
    ):
        emjax.fit(km, _data(), params0=p, num_restarts=5)


@pytest.mark.parametrize("num_restarts", [1, 4])
def test_params0_batch_matching_num_restarts_is_accepted(num_restarts, compute_calls):
    km = kmeans()
    with pytest.raises(ComputeReached):
        emjax.fit(km, _data(), params0=km.make_params(centers=np.zeros((4, 3, 2))),
                  num_restarts=num_restarts)
    (args, _kwargs), = compute_calls
    assert args[6] is True and args[7] == 4  # params0_batched, num_restarts
