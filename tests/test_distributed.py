"""Data-parallel fits (`emjax.fit(..., mesh=...)`): several devices, several processes.

The number of CPU devices is fixed when JAX starts (this test process has one), so the
fits on 4 devices and on 2 processes × 2 devices run in worker processes
(tests/_distributed_worker.py) and report their results as JSON; they are compared with
the same fits on one device. Sums are added in a different order on a different number of
devices, so results agree to floating-point tolerance (float64 here), not bitwise.

Multi-process workers meet on a free localhost port through ``jax.distributed.initialize``
(Gloo CPU collectives); a worker whose peer never arrives is aborted by JAX after its
``initialization_timeout``, and every worker is killed if the test's own time limit
passes, so a test always ends.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from test_contract import CASES, _blobs  # every model and solver of the contract suite

import emjax
from emjax._accumulate import _adds_leafwise

WORKER = pathlib.Path(__file__).with_name("_distributed_worker.py")
TIMEOUT = 240  # seconds for a whole worker run (compiles included), then it is killed


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_NUM_CPU_DEVICES", None)
    if not os.environ.get("EMJAX_TEST_NO_CACHE"):
        env["EMJAX_WORKER_CACHE"] = os.path.join(
            os.path.expanduser("~"), ".cache", "emjax-tests", "jax-workers")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(cases, *, devices, processes=1, reference=False):
    """Run the worker in ``processes`` processes of ``devices`` CPU devices each; return
    every process's results. Fails on a nonzero exit code or after `TIMEOUT` seconds
    (killing every worker)."""
    port = _free_port()
    commands = [
        [sys.executable, str(WORKER), "--devices", str(devices), "--num-processes",
         str(processes), "--process-id", str(i), "--port", str(port), "--cases", ",".join(cases),
         "--timeout", "60"] + (["--reference"] if reference else [])
        for i in range(processes)
    ]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env()) for c in commands]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=TIMEOUT))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        for p in procs:
            p.communicate()
        pytest.fail(f"the workers did not finish within {TIMEOUT} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, (p, (_, err)) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"worker {i} exited with {p.returncode}:\n{err[-4000:]}"
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def assert_same_fit(got, want, rtol=1e-7, atol=1e-9):
    """Two fits' summaries agree to float64 tolerance (sums in a different order)."""
    assert got["one_device"], "the Solution should hold ordinary single-device arrays"
    assert got["num_steps"] == want["num_steps"]
    np.testing.assert_allclose(got["log_likelihood"], want["log_likelihood"], rtol=1e-10)
    np.testing.assert_allclose(got["restart_elbos"], want["restart_elbos"], rtol=1e-10)
    assert len(got["params"]) == len(want["params"])
    for a, b in zip(got["params"], want["params"], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------- in-process
def _one_device_mesh():
    return jax.make_mesh((1,), ("data",))


def test_mesh_argument_errors():
    X = np.random.default_rng(0).normal(size=(50, 2))
    gmm = emjax.GaussianMixture(2)
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="`mesh` must be a jax.sharding.Mesh"):
        emjax.fit(gmm, X, key=key, mesh="data")
    with pytest.raises(ValueError, match="`data_axis`='rows' is not an axis of `mesh`"):
        emjax.fit(gmm, X, key=key, mesh=_one_device_mesh(), data_axis="rows")
    with pytest.raises(TypeError, match="`data_axis` must be the name of a mesh axis"):
        emjax.fit(gmm, X, key=key, mesh=_one_device_mesh(), data_axis=0)
    for solver in (emjax.OnlineEM(batch_size=10), emjax.IncrementalEM()):
        with pytest.raises(ValueError, match="is not supported with mesh= yet"):
            emjax.fit(gmm, X, key=key, mesh=_one_device_mesh(), solver=solver)
    with pytest.raises(ValueError, match="NaN or infinite"):  # the usual checks still run
        emjax.fit(gmm, np.where(X > 2, np.nan, X), key=key, mesh=_one_device_mesh())


def test_statistics_are_combined_by_psum_unless_addition_is_not_leafwise():
    zero = jax.numpy.zeros(())
    assert _adds_leafwise(emjax.ELBO(zero, zero, zero))
    assert _adds_leafwise((jax.numpy.zeros(3), emjax.ELBO(zero, zero, zero)))
    X = np.random.default_rng(0).normal(size=(20, 2))
    km = emjax.KMeans(2)
    p = km.make_params(centers=X[:2])
    soft, _ = jax.eval_shape(km.e_step, p, X, np.ones(20))  # shapes are enough
    hard, _ = jax.eval_shape(km.hard_e_step, p, X, np.ones(20))
    assert _adds_leafwise(soft)
    assert not _adds_leafwise(hard)  # farthest points: kept by a top-k, gathered instead


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_model_steps_on_a_mesh(case):
    """One solver step of every model of the contract suite, traced (not compiled) inside
    ``shard_map`` on a one-device mesh, as `emjax.fit(..., mesh=...)` runs it. Tracing is
    where shard_map checks that what must be the same on every device is (a loop carry
    that starts as a constant but varies with the data is an error there), so this finds
    model code that a multi-device fit would reject, at the cost of a trace."""
    from emjax import _mesh
    from emjax._accumulate import make_blocks

    data = case.model.check_data(case.data(_blobs()))
    rows = jax.tree.leaves(data)[0].shape[0]
    weights = jax.numpy.ones((rows,), jax.numpy.result_type(float))
    mesh = _mesh.auto_mesh(_one_device_mesh())

    def program(data, weights):
        params = case.model.init_params(make_blocks(data, weights, 16), key=jax.random.key(0))

        def one_step(local_rows, params):
            blocks = make_blocks(*local_rows, 16, axis_name="data")
            state = case.solver.init(case.model, blocks, params)
            return case.solver.step(case.model, blocks, params, state)

        return _mesh.shard_rows(one_step, mesh, "data", (data, weights), params)

    elbo, new_params, _ = jax.eval_shape(program, data, weights)
    assert jax.tree.structure(new_params) == jax.tree.structure(
        jax.eval_shape(lambda d, w: case.model.init_params(make_blocks(d, w, 16),
                                                           key=jax.random.key(0)),
                       data, weights))


# ---------------------------------------------------------------------------- 4 devices
def test_four_devices_match_one_device():
    """GMM (full covariance, float64) initialised by k-means++ from the same key (which must
    see the whole data), N = 1,001 rows (not a multiple of 4), sample weights: the fit on a
    mesh of 4 devices equals the fit on one device."""
    result = run_workers(["gmm"], devices=4, reference=True)[0]
    assert_same_fit(result["gmm"]["mesh"], result["gmm"]["reference"])


@pytest.mark.slow
def test_four_devices_other_solvers_models_and_gradients():
    """k-means (HardEM: farthest points gathered, log-likelihood by a final pass), SQUAREM,
    a gradient M-step (Student-t mixture), a hidden Markov model, and gradients through the
    fit (Unrolled adjoint) on 4 devices match one device."""
    cases = ["kmeans", "squarem", "student_t", "hmm", "lda", "bgmm", "unrolled_grad"]
    results = run_workers(cases + ["implicit_grad"], devices=4, reference=True)[0]
    assert "adjoint=emjax.Unrolled()" in results["implicit_grad"]["mesh"]["refused"]
    for case in cases:
        got, want = results[case]["mesh"], results[case]["reference"]
        if case == "unrolled_grad":
            np.testing.assert_allclose(got["grad"], want["grad"], rtol=1e-7, atol=1e-9)
        else:
            assert_same_fit(got, want, rtol=1e-6 if case == "student_t" else 1e-7)


# ---------------------------------------------------------------------------- 2 processes
def test_two_processes_match_one_process():
    """2 processes × 2 devices; each process gives only its own half of the rows as a
    global array (with sample weights), and both get the one-device fit."""
    results = run_workers(["gmm_global"], devices=2, processes=2)
    want = _reference("gmm_global")
    for result in results:
        assert_same_fit(result["gmm_global"]["mesh"], want)


@pytest.mark.slow
def test_two_processes_host_data_match_one_process():
    """2 processes × 2 devices with the same NumPy data on both processes: GMM from a key
    (the initialisation sees the whole data) and k-means (HardEM)."""
    results = run_workers(["gmm", "kmeans"], devices=2, processes=2)
    for case in ("gmm", "kmeans"):
        want = _reference(case)
        for result in results:
            assert_same_fit(result[case]["mesh"], want)


def _reference(case):
    """The worker's case fitted without a mesh, in this process (one device, float64)."""
    sys.path.insert(0, str(WORKER.parent))
    try:
        from _distributed_worker import run_case
    finally:
        sys.path.remove(str(WORKER.parent))
    return run_case(case, None)
