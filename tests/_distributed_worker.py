"""Worker for tests/test_distributed.py: emjax fits on a mesh of CPU devices, in its own process.

The number of CPU devices must be set before JAX starts, so each configuration runs in a
fresh process:

    python tests/_distributed_worker.py --devices 4 --cases gmm,kmeans --reference
    python tests/_distributed_worker.py --devices 2 --num-processes 2 --process-id 0 \\
        --port 12355 --cases gmm_global        # and the same with --process-id 1

Every case fits on a mesh over all the devices of all the processes; ``--reference`` also
runs it without a mesh (on one device). The last line of stdout is a JSON object
``{case: {"mesh": result, "reference": result}}`` of plain lists and numbers; timings go
to stderr.
"""

import argparse
import json
import os
import sys
import time
import warnings

CASES = ("gmm", "gmm_global", "kmeans", "squarem", "student_t", "hmm", "lda", "bgmm",
         "unrolled_grad", "implicit_grad")


def problem():
    """Three overlapping Gaussian clusters in 3-D, N = 1,001 rows (not a multiple of any
    device count used here), uneven sample weights, and initial parameters for the
    ``params0`` cases. NumPy only: the same on every process."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1.0, (n, 3)) for m, n in ((-2, 400), (0, 300), (2, 301))])
    X = X[rng.permutation(len(X))]
    w = rng.uniform(0.2, 2.0, len(X))
    means0 = X[[0, 1, 2]]
    return X, w, means0


def run_case(case, mesh):
    """Fit ``case`` on ``mesh`` (None: one device); return a JSON-ready summary."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import emjax

    X, w, means0 = problem()
    gmm = emjax.GaussianMixture(3, covariance_type="full")
    p0 = gmm.make_params(weights=np.full(3, 1 / 3), means=means0,
                         covariances=np.stack([np.eye(3)] * 3))
    steps = dict(max_steps=10, rtol=0.0, block_size=64)  # 10 updates exactly: no early stop
    kw = {} if mesh is None else dict(mesh=mesh)

    if case == "gmm":  # key initialisation on the whole data, sample weights, N % devices != 0
        sol = emjax.fit(gmm, X, key=jax.random.key(0), num_restarts=2, sample_weight=w,
                        **steps, **kw)
    elif case == "gmm_global":  # each process gives only its own rows, as global arrays
        if mesh is None:
            sol = emjax.fit(gmm, X, params0=p0, sample_weight=w, **steps)
        else:
            from jax.sharding import NamedSharding, PartitionSpec

            sharding = NamedSharding(mesh, PartitionSpec("data"))
            pad = -len(X) % jax.device_count()  # the user pads with weight-0 rows
            Xp = np.concatenate([X, np.repeat(X[-1:], pad, axis=0)])
            wp = np.concatenate([w, np.zeros(pad)])
            per = len(Xp) // jax.process_count()
            mine = slice(jax.process_index() * per, (jax.process_index() + 1) * per)
            Xg = jax.make_array_from_process_local_data(sharding, Xp[mine])
            wg = jax.make_array_from_process_local_data(sharding, wp[mine])
            # Initial parameters committed to one device (like an earlier fit's result).
            p0 = jax.device_put(p0, jax.local_devices()[-1])
            sol = emjax.fit(gmm, Xg, params0=p0, sample_weight=wg, **steps, mesh=mesh)
    elif case == "kmeans":  # HardEM: k-means' farthest points and a final log-likelihood pass
        sol = emjax.fit(emjax.KMeans(4), X, key=jax.random.key(1), num_restarts=3, **kw)
    elif case == "squarem":
        sol = emjax.fit(gmm, X, params0=p0, solver=emjax.SQUAREM(), **steps, **kw)
    elif case == "student_t":  # a gradient M-step
        sol = emjax.fit(emjax.StudentTMixture(3), X, key=jax.random.key(2), max_steps=5,
                        rtol=0.0, **kw)
    elif case == "hmm":
        rng = np.random.default_rng(1)
        seqs = rng.normal(size=(10, 40, 2)) + 3.0 * rng.integers(0, 2, size=(10, 40, 1))
        sol = emjax.fit(emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions()),
                        seqs, key=jax.random.key(3), max_steps=5, rtol=0.0, **kw)
    elif case == "lda":  # the E-step's inner while_loop runs per device
        rng = np.random.default_rng(4)
        counts = rng.poisson(rng.dirichlet(np.full(30, 0.3), size=(101,)) * 40.0).astype(float)
        sol = emjax.fit(emjax.LatentDirichletAllocation(3), counts, key=jax.random.key(4),
                        max_steps=5, rtol=0.0, **kw)
    elif case == "bgmm":
        sol = emjax.fit(emjax.BayesianGaussianMixture(4), X, key=jax.random.key(5),
                        sample_weight=w, **steps, **kw)
    elif case in ("unrolled_grad", "implicit_grad"):
        def loss(X):
            if case == "unrolled_grad":
                s = emjax.fit(gmm, X, params0=p0, max_steps=5, rtol=0.0,
                              adjoint=emjax.Unrolled(), **kw)
            else:
                s = emjax.fit(gmm, X, params0=p0, max_steps=500, rtol=1e-12, **kw)
            return s.log_likelihood + jnp.sum(s.params.means ** 2)

        if mesh is not None and case == "implicit_grad":  # refused, with a clear message
            try:
                jax.grad(loss)(jnp.asarray(X))
            except NotImplementedError as e:
                return {"refused": str(e)}
            return {"refused": None}
        grad = jax.grad(loss)(jnp.asarray(X))
        return {"grad": np.asarray(grad).tolist()}
    else:
        raise ValueError(f"unknown case {case!r}; one of {CASES}")

    leaves = jax.tree.leaves(sol.params)
    return {
        "params": [np.asarray(a).tolist() for a in leaves],
        "log_likelihood": float(sol.log_likelihood),
        "num_steps": int(sol.num_steps),
        "restart_elbos": np.asarray(sol.restart_elbos).tolist(),
        "one_device": all(len(a.sharding.device_set) == 1 for a in leaves),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, required=True, help="CPU devices per process")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0, help="the coordinator's port")
    parser.add_argument("--cases", default="gmm", help=f"comma-separated, from {CASES}")
    parser.add_argument("--reference", action="store_true", help="also fit without a mesh")
    parser.add_argument("--timeout", type=int, default=60, help="seconds to wait for peers")
    args = parser.parse_args()
    begin = time.perf_counter()

    import jax

    jax.config.update("jax_num_cpu_devices", args.devices)  # before the backend starts
    jax.config.update("jax_enable_x64", True)
    cache = os.environ.get("EMJAX_WORKER_CACHE")
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    if args.num_processes > 1:
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{args.port}",
            num_processes=args.num_processes,
            process_id=args.process_id,
            initialization_timeout=args.timeout,
        )

    import emjax

    warnings.filterwarnings("ignore", category=emjax.ConvergenceWarning)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))  # Explicit axes: JAX's default
    log = lambda msg: print(f"process {args.process_id}: {msg}", file=sys.stderr)  # noqa: E731
    log(f"{jax.process_count()} process(es), {jax.device_count()} devices, "
        f"started in {time.perf_counter() - begin:.1f} s")

    results = {}
    for case in args.cases.split(","):
        start = time.perf_counter()
        results[case] = {"mesh": run_case(case, mesh)}
        middle = time.perf_counter()
        if args.reference:
            results[case]["reference"] = run_case(case, None)
        log(f"{case}: {middle - start:.1f} s on the mesh, "
            f"{time.perf_counter() - middle:.1f} s without")
    if args.num_processes > 1:
        jax.distributed.shutdown()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
