"""Package-level promises: no global side effects, documented API, matmul precision."""

import inspect
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import run_fresh_python

import emjax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_run_fresh_python = run_fresh_python


def test_import_does_not_change_jax_config():
    code = (
        "import jax\n"
        "names = ('jax_enable_x64', 'jax_default_matmul_precision', 'jax_debug_nans',"
        " 'jax_platforms', 'jax_default_prng_impl')\n"
        "before = {k: getattr(jax.config, k) for k in names}\n"
        "import emjax\n"
        "after = {k: getattr(jax.config, k) for k in names}\n"
        "assert before == after, (before, after)\n"
        "assert jax.config.jax_enable_x64 is False\n"
        "print('ok')\n"
    )
    assert _run_fresh_python(code) == "ok"


def test_float32_is_the_default_dtype_without_x64():
    code = (
        "import jax, emjax\n"
        "X = emjax.datasets.load_old_faithful()\n"  # float64 NumPy data
        "sol = emjax.fit(emjax.GaussianMixture(2), X, key=jax.random.key(0), max_steps=20)\n"
        "assert sol.params.means.dtype.name == 'float32', sol.params.means.dtype\n"
        "print(float(sol.log_likelihood))\n"
    )
    assert abs(float(_run_fresh_python(code).splitlines()[-1]) + 1130.26) < 0.05


def test_every_public_name_is_documented():
    public = [name for name in dir(emjax) if not name.startswith("_")]
    assert {"fit", "GaussianMixture", "KMeans", "EM", "HardEM", "Solution", "RESULTS", "ELBO",
            "datasets"} <= set(public)
    for name in public:
        obj = getattr(emjax, name)
        if inspect.ismodule(obj) or isinstance(obj, str):
            continue
        assert (obj.__doc__ or "").strip(), f"emjax.{name} has no docstring"
    for cls in (emjax.GaussianMixture, emjax.KMeans):
        for meth in ("fit", "log_likelihood", "log_prob", "predict", "predict_proba",
                     "make_params"):
            if hasattr(cls, meth):
                assert (getattr(cls, meth).__doc__ or "").strip(), f"{cls.__name__}.{meth}"
    for meth in ("bic", "aic", "sample", "num_free_params"):
        assert (getattr(emjax.GaussianMixture, meth).__doc__ or "").strip(), meth
    for meth in ("inertia", "transform"):
        assert (getattr(emjax.KMeans, meth).__doc__ or "").strip(), meth


def test_statistics_matmuls_ask_for_highest_precision():
    """Guards against TF32/bf16 passes on accelerators, checkable on a CPU: every dot in the
    E-step of a full-covariance mixture is lowered with HIGHEST precision."""
    model = emjax.GaussianMixture(3)
    X = jnp.ones((16, 2), jnp.float32)
    params = model.make_params(weights=np.full(3, 1 / 3), means=np.zeros((3, 2)),
                               covariances=np.stack([np.eye(2)] * 3)).__class__(
        jnp.full(3, 1 / 3, jnp.float32), jnp.zeros((3, 2), jnp.float32),
        jnp.broadcast_to(jnp.eye(2, dtype=jnp.float32), (3, 2, 2)))
    text = jax.jit(lambda p, x: model.e_step(p, x, jnp.ones(16, jnp.float32))).lower(params, X).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert dots, "expected matrix products in the E-step"
    for line in dots:
        assert "HIGHEST" in line, line


def test_sample_round_trip():
    model = emjax.GaussianMixture(2, covariance_type="full")
    params = model.make_params(
        weights=np.array([0.3, 0.7]),
        means=np.array([[0.0, 0.0], [5.0, -2.0]]),
        covariances=np.array([[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.3]]]),
    )
    X, z = model.sample(params, 20000, key=jax.random.key(0))
    X, z = np.asarray(X), np.asarray(z)
    np.testing.assert_allclose(np.mean(z == 1), 0.7, atol=0.02)
    for k in range(2):
        np.testing.assert_allclose(X[z == k].mean(0), params.means[k], atol=0.05)
        np.testing.assert_allclose(np.cov(X[z == k].T), params.covariances[k], atol=0.08)
    sol = emjax.fit(model, X, key=jax.random.key(1), num_restarts=4)
    order = np.argsort(np.asarray(sol.params.weights))
    np.testing.assert_allclose(np.asarray(sol.params.weights)[order], [0.3, 0.7], atol=0.02)


def test_throw_raises_only_when_no_restart_is_finite():
    # Values whose squares overflow float64: every E-step is non-finite.
    X = np.array([[1e200, 0.0], [-1e200, 1.0], [3e200, 2.0], [5.0, -1e200]])
    model = emjax.GaussianMixture(2, covariance_type="diag")
    sol = emjax.fit(model, X, key=jax.random.key(0), num_restarts=2, throw=False)
    assert bool(sol.result == emjax.RESULTS.nonfinite)
    assert "non-finite" in sol.message
    try:
        emjax.fit(model, X, key=jax.random.key(0), num_restarts=2)
    except emjax.NonFiniteError as e:
        assert "reg_covar" in str(e)
    else:
        raise AssertionError("expected emjax.NonFiniteError")


def test_fit_program_has_no_host_callback():
    """A host callback would keep fit out of JAX's persistent compilation cache."""
    from emjax import _fit

    model = emjax.GaussianMixture(2)
    X = jnp.ones((8, 2))
    lowered = _fit._fit_impl.lower(
        model, emjax.EM(), X, jnp.ones(8), jax.random.key(0), None, False, 2,
        jnp.asarray(5), 16, jnp.asarray(1e-5), jnp.asarray(0.0), 8, None, emjax.Implicit(),
        jnp.asarray(True),
    )
    assert "callback" not in lowered.as_text()


def test_max_steps_reached_warns_outside_jit_and_is_reported():
    X = emjax.datasets.load_old_faithful()
    model = emjax.GaussianMixture(3)
    with pytest.warns(emjax.ConvergenceWarning, match="max_steps=2"):
        sol = emjax.fit(model, X, key=jax.random.key(0), max_steps=2, rtol=0.0)
    assert bool(sol.result == emjax.RESULTS.max_steps_reached)
    assert int(sol.num_steps) == 2
    assert "maximum number of steps" in sol.message
