"""Saving and loading models (`emjax._io`: save, load, read_metadata).

Every model family that can be saved makes a round trip in float32 and float64: the loaded
model and parameters are the same pytrees (static configuration, every array bit for bit,
dtypes) and give the same log-likelihoods and predictions. Parameters are built with
``make_params`` (no fit), so the default run compiles only the evaluation programs.
"""

import json
import zipfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax._io import load, read_metadata, save

RNG = np.random.default_rng(0)
D = 2


def _spd(K, D):
    a = RNG.normal(size=(K, D, D))
    return a @ np.swapaxes(a, 1, 2) + D * np.eye(D)


def _gmm(ct):
    K = 3
    cov = {"full": _spd(K, D), "diag": RNG.uniform(0.5, 2, (K, D)),
           "spherical": RNG.uniform(0.5, 2, K), "tied": _spd(1, D)[0]}[ct]
    model = emjax.GaussianMixture(K, covariance_type=ct, reg_covar=1e-4)
    return model, model.make_params(weights=[0.2, 0.3, 0.5], means=RNG.normal(size=(K, D)),
                                    covariances=cov)


def _bgmm(ct, weight_prior="dirichlet_process"):
    K = 2
    cov = {"full": _spd(K, D), "diag": RNG.uniform(0.5, 2, (K, D)),
           "spherical": RNG.uniform(0.5, 2, K)}[ct]
    model = emjax.BayesianGaussianMixture(K, ct, weight_prior, mean_prior=[0.5, -0.5],
                                          degrees_of_freedom_prior=3.0)
    wc = [[3.0, 4.0], [2.0, 1.0]] if weight_prior == "dirichlet_process" else [3.0, 4.0]
    return model, model.make_params(weight_concentration=wc, mean_precision=[3.0, 4.0],
                                    means=RNG.normal(size=(K, D)),
                                    degrees_of_freedom=[5.0, 6.0], covariances=cov)


def _hmm(kind):
    K = 2
    init, trans = [0.6, 0.4], [[0.9, 0.1], [0.25, 0.75]]
    if kind == "gaussian":
        model = emjax.HiddenMarkovModel(K, emissions=emjax.GaussianEmissions("diag"),
                                        transition_prior=1.5)
        return model, model.make_params(initial=init, transition=trans,
                                        means=RNG.normal(size=(K, D)),
                                        covariances=RNG.uniform(0.5, 2, (K, D)))
    if kind == "gaussian_mixture":
        model = emjax.HiddenMarkovModel(K, emissions=emjax.GaussianMixtureEmissions(2, "full"))
        return model, model.make_params(initial=init, transition=trans,
                                        weights=[[0.5, 0.5], [0.3, 0.7]],
                                        means=RNG.normal(size=(K, 2, D)),
                                        covariances=np.stack([_spd(2, D), _spd(2, D)]))
    if kind == "categorical":
        model = emjax.HiddenMarkovModel(K, emissions=emjax.CategoricalEmissions(num_symbols=4))
        return model, model.make_params(initial=init, transition=trans,
                                        probs=[[0.1, 0.2, 0.3, 0.4], [0.4, 0.4, 0.1, 0.1]])
    model = emjax.HiddenMarkovModel(K, emissions=emjax.PoissonEmissions())
    return model, model.make_params(initial=init, transition=trans, rates=[[1.0, 2.0], [5.0, 9.0]])


def _lda():
    model = emjax.LatentDirichletAllocation(2, doc_topic_prior=[0.3, 0.6],
                                            learn_topic_word_prior=True)
    return model, model.make_params(topic_word=RNG.uniform(0.5, 3.0, (2, 6)),
                                    topic_word_prior=0.2)


def _student_t():
    model = emjax.StudentTMixture(2, "full", dof=4.0, learn_dof=False)
    return model, model.make_params(weights=[0.4, 0.6], means=RNG.normal(size=(2, D)),
                                    covariances=_spd(2, D), dofs=[4.0, 7.0])


def _experts():
    model = emjax.MixtureOfExperts(2, reg_variance=1e-3)
    return model, model.make_params(gate_weights=RNG.normal(size=(2, D)), gate_bias=[0.0, 0.3],
                                    coefs=RNG.normal(size=(2, D)), intercepts=[0.1, -0.2],
                                    variances=[0.5, 2.0])


CASES = {
    **{f"gmm-{ct}": (lambda ct=ct: _gmm(ct)) for ct in ("full", "diag", "spherical", "tied")},
    "kmeans": lambda: (emjax.KMeans(3, init="random", temperature=2.0),
                       emjax.KMeans(3).make_params(centers=RNG.normal(size=(3, D)))),
    **{f"bgmm-{ct}": (lambda ct=ct: _bgmm(ct)) for ct in ("full", "diag", "spherical")},
    "bgmm-dirichlet": lambda: _bgmm("diag", "dirichlet_distribution"),
    **{f"hmm-{k}": (lambda k=k: _hmm(k))
       for k in ("gaussian", "gaussian_mixture", "categorical", "poisson")},
    "lda": _lda,
    "student_t": _student_t,
    "experts": _experts,
}


def _data(name, dtype):
    rng = np.random.default_rng(1)
    if name == "lda":
        return rng.poisson(2.0, size=(7, 6)).astype(dtype)
    if name == "hmm-categorical":
        return rng.integers(0, 4, size=20)
    if name == "hmm-poisson":
        return rng.poisson(3.0, size=(20, D)).astype(dtype)
    if name == "experts":
        return rng.normal(size=(12, D)).astype(dtype), rng.normal(size=12).astype(dtype)
    if name.startswith("hmm"):
        return rng.normal(size=(20, D)).astype(dtype)
    return rng.normal(size=(12, D)).astype(dtype)


def _cast(tree, dtype):
    return jax.tree.map(
        lambda a: a.astype(dtype) if eqx.is_array(a) and jnp.issubdtype(a.dtype, jnp.floating)
        else a, tree)


def _case(name, dtype):
    model, params = CASES[name]()
    return _cast(model, dtype), _cast(params, dtype)


def _outputs(name, model, params, data):
    """What the loaded model must reproduce: log-likelihood and predictions."""
    out = {"log_likelihood": model.log_likelihood(params, data)}
    if name == "lda":
        out["transform"] = model.transform(params, data)
    else:
        out["predict"] = model.predict(params, data)
        out["predict_proba"] = model.predict_proba(params, data)
    return {k: np.asarray(v) for k, v in out.items()}


def _same_pytree(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb  # the classes and every static field
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_gives_the_same_pytrees(tmp_path, name, dtype):
    model, params = _case(name, dtype)
    path = save(tmp_path / "m.npz", model, params, metadata={"name": name, "k": [1, 2.5]})
    loaded_model, loaded_params, header = load(path, return_metadata=True)
    _same_pytree(loaded_model, model)
    _same_pytree(loaded_params, params)
    assert type(loaded_model) is type(model) and type(loaded_params) is type(params)
    assert header["metadata"] == {"name": name, "k": [1, 2.5]}
    assert header["dtype"] == dtype
    assert header["model_class"] == type(model).__name__
    # The file is a plain archive of arrays and one JSON text: nothing pickled.
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[k].dtype != object for k in archive.files)


# The numerical check of every model and dtype (a few compiles each) runs with -m slow;
# the default run checks a few (time budget). The pytree test above covers every case.
_QUICK = {("gmm-full", "float32"), ("gmm-full", "float64"), ("hmm-gaussian", "float64")}


@pytest.mark.parametrize("name, dtype", [
    (n, d) if (n, d) in _QUICK else pytest.param(n, d, marks=pytest.mark.slow)
    for n in CASES for d in ("float32", "float64")])
def test_round_trip_gives_the_same_results(tmp_path, name, dtype):
    model, params = _case(name, dtype)
    data = _data(name, dtype)
    before = _outputs(name, model, params, data)
    save(tmp_path / "m.npz", model, params)
    model2, params2 = load(tmp_path / "m.npz")
    after = _outputs(name, model2, params2, data)
    for key, value in before.items():
        assert after[key].dtype == value.dtype
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    assert np.isfinite(before["log_likelihood"])


@pytest.mark.slow
def test_round_trip_of_a_fitted_model(tmp_path):
    X = emjax.datasets.load_old_faithful()
    gmm = emjax.GaussianMixture(2, "tied")
    sol = emjax.fit(gmm, X, key=jax.random.key(0), num_restarts=2, max_steps=20)
    save(tmp_path / "fit.npz", gmm, sol.params)
    model, params = load(tmp_path / "fit.npz")
    assert float(model.log_likelihood(params, X)) == float(gmm.log_likelihood(sol.params, X))
    # scikit-learn scores the same parameters identically (an independent reference).
    from sklearn.mixture import GaussianMixture

    sk = GaussianMixture(2, covariance_type="tied")
    sk.weights_, sk.means_ = np.asarray(params.weights), np.asarray(params.means)
    sk.covariances_ = np.asarray(params.covariances)
    sk.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(sk.covariances_))
    assert sk.score(X) * X.shape[0] == pytest.approx(float(sol.log_likelihood), rel=1e-10)
    np.testing.assert_array_equal(sk.predict(X), np.asarray(model.predict(params, X)))


def test_read_metadata_and_config(tmp_path):
    model, params = _hmm("gaussian")
    save(tmp_path / "h.npz", model, params, metadata={"columns": ["a", "b"]})
    meta = read_metadata(tmp_path / "h.npz")
    assert meta["format"] == "emjax-model" and meta["format_version"] == 1
    assert meta["emjax_version"] == emjax.__version__
    assert meta["config"] == {"class": "HiddenMarkovModel", "num_states": 2, "parallel": "auto",
                              "emissions": {"class": "GaussianEmissions",
                                            "covariance_type": "diag", "init": "kmeans++"}}
    assert meta["metadata"] == {"columns": ["a", "b"]}
    assert meta["dtype"] == "float64"


def test_save_overwrites_and_writes_the_exact_path(tmp_path):
    model, params = _gmm("diag")
    path = tmp_path / "model.bin"  # no .npz appended
    save(path, model, params)
    save(path, model, params, metadata={"second": True})
    assert read_metadata(path)["metadata"] == {"second": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]  # no temporary left


# --------------------------------------------------------------------------- save errors
def test_models_with_python_functions_cannot_be_saved(tmp_path):
    def log_density(params, x):
        return -0.5 * jnp.sum((x - params) ** 2, axis=-1)

    density = emjax.DensityMixture(2, log_density, lambda key, x: x[:2])
    with pytest.raises(TypeError, match="DensityMixture holds a Python function"):
        save(tmp_path / "d.npz", density, None)
    hmm = emjax.HiddenMarkovModel(2, emissions=emjax.DensityEmissions(log_density, lambda *a: 0))
    with pytest.raises(TypeError, match="DensityEmissions cannot be saved"):
        save(tmp_path / "d.npz", hmm, None)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_bad_arguments(tmp_path):
    model, params = _gmm("full")
    with pytest.raises(TypeError, match="`params` of a GaussianMixture must be GaussianMixtureParams"):
        save(tmp_path / "x.npz", model, emjax.KMeans(2).make_params(centers=np.zeros((2, 2))))
    with pytest.raises(TypeError, match="`model` must be one of the emjax models"):
        save(tmp_path / "x.npz", emjax.EM(), params)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        save(tmp_path / "x.npz", model, params, metadata={"a": object()})
    with pytest.raises(TypeError, match="dict with string keys"):
        save(tmp_path / "x.npz", model, params, metadata=[1, 2])
    with pytest.raises(ValueError, match="does not exist"):
        save(tmp_path / "no" / "x.npz", model, params)
    with pytest.raises(ValueError, match="is a directory"):
        save(tmp_path, model, params)


# --------------------------------------------------------------------------- load errors
def _rewrite(path, edit_header=None, arrays=None):
    """Rewrite a saved file with its header edited and/or arrays replaced."""
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    header = json.loads(str(entries.pop("__emjax__")))
    if edit_header is not None:
        edit_header(header)
    entries.update(arrays or {})
    np.savez(path, __emjax__=np.array(json.dumps(header)), **entries)


@pytest.fixture
def saved(tmp_path):
    model, params = _gmm("full")
    return save(tmp_path / "gmm.npz", model, params)


def test_load_refuses_files_that_are_not_model_files(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"text\.npz is not an emjax model file \(not a .npz"):
        load(text)
    one = tmp_path / "one.npy"
    np.save(one, np.ones(3))
    with pytest.raises(ValueError, match=r"one\.npy is not an emjax model file \(a single"):
        load(one)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.ones(3))
    with pytest.raises(ValueError, match=r"other\.npz is not an emjax model file .*__emjax__"):
        load(other)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="is a directory"):
        read_metadata(tmp_path)


def test_load_never_unpickles(saved):
    # An object array (which only pickle can read) in place of an array of parameters.
    with np.load(saved, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    entries["params.means"] = np.array([{"not": "numbers"}], dtype=object)
    np.savez(saved, **entries)
    with pytest.raises(ValueError, match=r"gmm\.npz: an array in the file cannot be read"):
        load(saved)


@pytest.mark.parametrize("edit, message", [
    (lambda h: h["model"].update({"class": "os.system"}),
     r"names the class 'os\.system', which is not an emjax class"),
    (lambda h: h["params"].update({"class": "DensityMixture"}),
     r"names the class 'DensityMixture'"),
    (lambda h: h["model"]["fields"].pop("reg_covar"), r"must have the fields"),
    (lambda h: h["model"]["fields"]["covariance_type"].update({"value": "bogus"}),
     r"saved configuration of model \(GaussianMixture\) is invalid: .*covariance_type"),
    (lambda h: h["model"]["fields"]["num_components"].update({"value": 5}),
     r"saved parameters do not fit the saved GaussianMixture"),
    (lambda h: h["params"]["fields"]["means"].update({"array": "params.nothing"}),
     r"the array 'params\.nothing' of params\.means is missing"),
    (lambda h: h.update({"format_version": 99}), r"format version 99 .* upgrade emjax"),
    (lambda h: h.update({"format": "something-else"}), r"not an emjax model file"),
    (lambda h: h.pop("params"), r"the header has no 'params'"),
    (lambda h: h["model"]["fields"]["num_components"].update({"value": {"x": 1}}),
     r"malformed value at model\.num_components"),
])
def test_load_refuses_malformed_headers(saved, edit, message):
    _rewrite(saved, edit_header=edit)
    with pytest.raises(ValueError, match=message) as info:
        load(saved)
    assert str(saved) in str(info.value)  # the message names the file


def test_load_validates_the_parameters(saved):
    # Weights that do not sum to one fail GaussianMixture.make_params' check.
    _rewrite(saved, arrays={"params.weights": np.array([0.5, 0.5, 0.5])})
    with pytest.raises(ValueError, match=r"gmm\.npz: .*do not fit the saved GaussianMixture"):
        load(saved)


def test_load_refuses_unexpected_arrays(saved):
    _rewrite(saved, arrays={"params.extra": np.ones(2)})
    with pytest.raises(ValueError, match=r"unexpected arrays \['params\.extra'\]"):
        load(saved)


def test_header_is_plain_json(saved):
    with zipfile.ZipFile(saved) as z:
        assert "__emjax__.npy" in z.namelist()
    header = read_metadata(saved)
    json.dumps(header)  # round-trips as JSON
    assert header["model"]["fields"]["reg_covar"] == {"array": "model.reg_covar"}
