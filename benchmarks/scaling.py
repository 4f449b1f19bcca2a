"""Benchmark: cost of one pass over the data against N, for batch, streamed and online EM.

A float32 Gaussian mixture with full covariances, D = 16 and K = 16, on N points
(10^4 ... 10^7 by default) drawn from a mixture of 16 Gaussians (fixed seed). For each N:

- **batch**: ``emjax.fit(model, X, solver=emjax.EM())`` with the data in memory;
- **streamed**: ``emjax.fit_stream(model, memmap)`` reading a ``.npy`` file through
  ``numpy.memmap`` in chunks of ``--chunk`` rows (default 65,536), statistics on the
  device;
- **online**: ``emjax.fit(model, X, solver=emjax.OnlineEM(batch_size=--batch))``, one step
  being one pass in minibatches.

Each is timed warm (after a first call that compiles) at ``S`` and ``S0 < S`` steps with
every convergence test off; seconds per pass = (time at S − time at S0) / (S − S0), which
cancels the fixed cost of a call. The slope of log(seconds per pass) against log(N) over
the sizes ``>= 10^5`` is printed per method: 1 means linear growth.

Usage (from the repository root)::

    python benchmarks/scaling.py                         # N = 1e4, 1e5, 1e6, 1e7
    python benchmarks/scaling.py --sizes 10000 100000    # quicker
    python benchmarks/scaling.py --out results.json

Nothing here asserts on a timing: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings

import jax
import numpy as np

import emjax

D, K = 16, 16


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(K, D))
    z = rng.integers(0, K, n)
    X = np.empty((n, D), np.float32)
    step = 1_000_000
    for i in range(0, n, step):  # in pieces, to bound the float64 temporaries
        zi = z[i:i + step]
        X[i:i + step] = centres[zi] + rng.normal(size=(len(zi), D))
    return X


def initial_params(model, X):
    cov = np.cov(X[:10_000].T).astype(np.float32)
    return model.make_params(weights=np.full(K, 1 / K, np.float32), means=X[:K],
                             covariances=np.stack([cov] * K))


def timed(fn):
    tick = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - tick


def per_pass(call, steps, steps0):
    call(steps0)  # compile (one program serves every number of steps)
    t = timed(lambda: call(steps))
    t0 = timed(lambda: call(steps0))
    return (t - t0) / (steps - steps0), t


def measure(model, n, tmp, args):
    X = make_data(n)
    path = os.path.join(tmp, f"x{n}.npy")
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    p0 = initial_params(model, X)
    key = jax.random.key(0)

    def batch(s):
        return emjax.fit(model, X, params0=p0, max_steps=s, rtol=0.0)

    def stream(s):
        return emjax.fit_stream(model, mm, params0=p0, max_passes=s, rtol=0.0,
                                chunk_size=min(args.chunk, n))

    def online(s):
        return emjax.fit(model, X, params0=p0, key=key, max_steps=s, rtol=0.0,
                         solver=emjax.OnlineEM(batch_size=min(args.batch, n)))

    row = {"n": n}
    for name, call in (("batch", batch), ("streamed", stream), ("online", online)):
        row[name], row[name + "_total"] = per_pass(call, args.steps, args.steps0)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--steps0", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=65_536)
    parser.add_argument("--batch", type=int, default=8_192)
    parser.add_argument("--out")
    args = parser.parse_args()
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, jax {jax.__version__}, "
          f"backend {jax.default_backend()}; GMM full, D={D}, K={K}, float32")
    model = emjax.GaussianMixture(K, "full")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", emjax.ConvergenceWarning)
        for n in args.sizes:
            row = measure(model, n, tmp, args)
            rows.append(row)
            print(f"N={n:>10,}  s/pass: batch {row['batch']:.4f}  streamed {row['streamed']:.4f}"
                  f"  online {row['online']:.4f}", flush=True)
    big = [r for r in rows if r["n"] >= 100_000] or rows
    print(f"\n{'N':>12} {'batch s/pass':>13} {'streamed':>10} {'online':>10}"
          f" {'streamed/batch':>15} {'online/batch':>13}")
    for r in rows:
        print(f"{r['n']:>12,} {r['batch']:>13.4f} {r['streamed']:>10.4f} {r['online']:>10.4f}"
              f" {r['streamed'] / r['batch']:>15.2f} {r['online'] / r['batch']:>13.2f}")
    if len(big) >= 2:
        logn = np.log([r["n"] for r in big])
        for name in ("batch", "streamed", "online"):
            slope = np.polyfit(logn, np.log([r[name] for r in big]), 1)[0]
            print(f"slope of log(s/pass) vs log(N), N >= {big[0]['n']:,}, {name}: {slope:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
