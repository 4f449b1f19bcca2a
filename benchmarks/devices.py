"""Benchmark: seconds per EM pass against the number of devices (`emjax.fit(..., mesh=...)`).

A float32 Gaussian mixture with full covariances, D = 16 and K = 16, on N points
(10^6 by default) drawn from a mixture of 16 Gaussians (fixed seed). For each device
count (forced host CPU devices by default: 1, 2, 4) a **fresh Python process** starts
with ``JAX_NUM_CPU_DEVICES`` set (the device count is fixed when JAX starts) and fits

- ``mesh``: ``emjax.fit(model, X, params0=..., mesh=jax.make_mesh((devices,), ("data",)))``,
  the rows sharded over the devices, statistics combined by ``psum``;
- ``no mesh`` (in the 1-device process only): the same fit without ``mesh``, the
  reference for what the mesh machinery costs on one device.

Each is timed warm (after a first call that compiles) at ``S`` and ``S0 < S`` EM steps
with every convergence test off; seconds per pass = (time at S − time at S0) / (S − S0),
which cancels the fixed cost of a call (placing the rows, the final pass, dispatch). The
compile time (first call minus a warm call) is reported separately. Times are wall-clock
and CPU seconds of the process (all threads).

Forced host devices share the machine's cores: on a CPU they show the overhead of the
data-parallel program and how the work splits, not a speed-up beyond the core count. On
a GPU machine pass ``--platform gpu`` to use the real devices instead (counts up to the
number of GPUs).

Usage (from the repository root)::

    python benchmarks/devices.py                       # N = 1e6, devices 1 2 4
    python benchmarks/devices.py --n 200000 --devices 1 2
    python benchmarks/devices.py --out results.json

Nothing here asserts on a timing: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

D, K = 16, 16


def make_data(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(K, D))
    scales = rng.uniform(0.5, 1.5, size=(K, D))
    z = rng.integers(0, K, n)
    return (centres[z] + scales[z] * rng.standard_normal((n, D))).astype(np.float32)


def child(args) -> dict:
    """Run in a process whose device count is already fixed: time the fits, return JSON."""
    import jax
    import numpy as np

    import emjax

    warnings.filterwarnings("ignore", category=emjax.ConvergenceWarning)
    devices = jax.devices()
    assert len(devices) == args.child_devices, (len(devices), args.child_devices)
    X = make_data(args.n)
    model = emjax.GaussianMixture(K, covariance_type="full")
    rng = np.random.default_rng(1)
    params0 = model.make_params(
        weights=np.full(K, 1 / K, np.float32), means=X[rng.choice(args.n, K, replace=False)],
        covariances=np.broadcast_to(np.cov(X[:10_000].T).astype(np.float32), (K, D, D)))
    mesh = jax.make_mesh((len(devices),), ("data",))

    def fit(steps, **kw):
        sol = emjax.fit(model, X, params0=params0, max_steps=steps, rtol=0.0, atol=0.0, **kw)
        sol.log_likelihood.block_until_ready()
        return sol

    def timed(steps, **kw):
        w0, c0 = time.perf_counter(), time.process_time()
        sol = fit(steps, **kw)
        return time.perf_counter() - w0, time.process_time() - c0, sol

    out = {"devices": len(devices), "device_kind": devices[0].device_kind, "runs": {}}
    variants = {"mesh": dict(mesh=mesh)}
    if len(devices) == 1:
        variants["no mesh"] = {}
    for name, kw in variants.items():
        first_wall, _, _ = timed(args.steps, **kw)  # compiles (S and S0 share one program)
        walls, cpus = {}, {}
        for steps in (args.steps0, args.steps):
            results = [timed(steps, **kw) for _ in range(args.repeats)]
            walls[steps] = min(r[0] for r in results)
            cpus[steps] = min(r[1] for r in results)
            sol = results[-1][2]
            assert int(sol.num_steps) == steps, (int(sol.num_steps), steps)
        passes = args.steps - args.steps0
        out["runs"][name] = {
            "seconds_per_pass": (walls[args.steps] - walls[args.steps0]) / passes,
            "cpu_seconds_per_pass": (cpus[args.steps] - cpus[args.steps0]) / passes,
            "fit_seconds": walls[args.steps],
            "compile_seconds": first_wall - walls[args.steps],
            "mean_log_likelihood": float(sol.log_likelihood) / args.n,
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of points")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=12, help="S: EM steps of the long fit")
    parser.add_argument("--steps0", type=int, default=2, help="S0: EM steps of the short fit")
    parser.add_argument("--repeats", type=int, default=2, help="warm calls per fit (best taken)")
    parser.add_argument("--platform", default="cpu", help="cpu (forced host devices) or gpu")
    parser.add_argument("--out", help="also write the results as JSON to this file")
    parser.add_argument("--child-devices", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_devices is not None:
        print(json.dumps(child(args)), flush=True)
        return

    print(f"emjax devices benchmark: float32 GMM (full), N={args.n:,}, D={D}, K={K}, "
          f"S={args.steps}, S0={args.steps0}")
    print(f"{platform.platform()}, {os.cpu_count()} CPU cores, load averages "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = []
    for devices in args.devices:
        env = dict(os.environ, JAX_PLATFORMS=args.platform)
        if args.platform == "cpu":
            env["JAX_NUM_CPU_DEVICES"] = str(devices)
        else:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(devices))
        command = [sys.executable, __file__, "--child-devices", str(devices), "--n", str(args.n),
                   "--steps", str(args.steps), "--steps0", str(args.steps0),
                   "--repeats", str(args.repeats)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{devices} device(s): failed\n{done.stderr[-3000:]}")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print(f"\n{'devices':>7}  {'variant':<8} {'s/pass':>8} {'CPU s/pass':>10} "
          f"{'vs 1 dev':>8} {'compile s':>9} {'mean loglik':>12}")
    base = None
    for r in results:
        for name, run in r["runs"].items():
            if r["devices"] == 1 and name == "mesh":
                base = run["seconds_per_pass"]
            ratio = run["seconds_per_pass"] / base if base else float("nan")
            print(f"{r['devices']:>7}  {name:<8} {run['seconds_per_pass']:>8.3f} "
                  f"{run['cpu_seconds_per_pass']:>10.3f} {ratio:>8.2f} "
                  f"{run['compile_seconds']:>9.1f} {run['mean_log_likelihood']:>12.6f}")
    print(f"\nload averages after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"n": args.n, "steps": args.steps, "steps0": args.steps0,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
