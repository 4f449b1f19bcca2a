"""`emjax.fit(..., progress=fn)`: host reports from inside the compiled loop."""

import io

import jax
import numpy as np
import pytest

import emjax
from emjax import _fit

X = emjax.datasets.load_old_faithful()
MODEL = emjax.GaussianMixture(num_components=2, covariance_type="diag")


def _fit_with(progress, num_restarts=3, **kw):
    return emjax.fit(MODEL, X, key=jax.random.key(0), num_restarts=num_restarts,
                     progress=progress, **kw)


def test_final_report_matches_the_solution_and_the_fit_is_unchanged():
    seen = []
    sol = _fit_with(seen.append)
    ref = _fit_with(None)
    assert seen and seen[-1]["final"] and not any(i["final"] for i in seen[:-1])
    last = seen[-1]
    assert last["num_restarts"] == 3 and last["num_running"] == 0
    assert last["num_converged"] == int((sol.restart_results == emjax.RESULTS.converged).sum())
    assert last["step"] == int(sol.restart_num_steps.max())
    np.testing.assert_allclose(last["elbo"], float(np.nanmax(sol.restart_elbos)), rtol=1e-12)
    # Reporting does not change the computation.
    np.testing.assert_array_equal(sol.restart_elbos, ref.restart_elbos)
    np.testing.assert_array_equal(sol.params.means, ref.params.means)


def test_a_new_function_does_not_recompile_and_single_restart_works():
    _fit_with(lambda info: None, num_restarts=1)
    before = _fit.trace_count
    seen = []
    sol = _fit_with(lambda info: seen.append(info), num_restarts=1)
    assert _fit.trace_count == before
    assert seen[-1]["step"] == int(sol.num_steps) and seen[-1]["num_restarts"] == 1


def test_an_error_in_the_function_is_raised_after_the_fit():
    def broken(info):
        raise RuntimeError("progress display failed")

    with pytest.raises(RuntimeError, match="progress display failed"):
        _fit_with(broken)


def test_bad_progress_and_traced_calls_are_refused():
    with pytest.raises(TypeError, match="`progress` must be a function"):
        _fit_with("yes")

    @jax.jit
    def inside(x):
        return emjax.fit(MODEL, x, key=jax.random.key(0), progress=print).log_likelihood

    with pytest.raises(ValueError, match="outside jit"):
        inside(X)


def test_print_progress_writes_one_line():
    buf = io.StringIO()
    _fit_with(lambda info: emjax.print_progress(info, buf), max_steps=2)
    lines = buf.getvalue().splitlines()
    assert lines and all(line.startswith("step ") and "converged" in line for line in lines)
