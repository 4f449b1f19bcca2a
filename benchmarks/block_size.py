"""Sweep emjax's ``block_size`` over shapes: the best rows per block as a function of D, K
and the number of restarts run in parallel (P).

One pass over the data is a ``lax.scan`` over blocks of B rows. A Gaussian-mixture
block holds intermediates of P·K·B·D elements (the differences ``x − μ_k`` of every
restart), so this script measures the cost of one EM step for a range of B, for:

- one restart (P = 1) with (D, K) in {(16, 16), (4, 16), (64, 16), (16, 64), (16, 4)},
  for N = 50,000 rows and 3 steps from fixed initial parameters;
- P = 8 and P = 64 vmapped restarts (D = K = 16, N = 20,000, 2 steps, the same initial
  parameters for every restart), given as a batch of ``params0``.

The numbers are CPU seconds of the process per step (per restart when P > 1), the best
of a few warm calls. CPU seconds are steadier than wall-clock time on a shared machine,
and emjax used one core on the 2-core machine this was written for (CPU time ≈ wall
time). The table marks emjax's current default (``default_block_size``) and the fastest
block size.

Usage (from the repository root)::

    python benchmarks/block_size.py             # both sweeps, ~10 minutes on 2 cores
    python benchmarks/block_size.py --quick     # a smaller sweep, ~1 minute
    python benchmarks/block_size.py --out sweep.json
"""

import argparse
import json
import time
from pathlib import Path

import gmm  # benchmarks/gmm.py: enables float64, puts this checkout's emjax on the path
import jax
import numpy as np

import emjax
from emjax._accumulate import default_block_size


def cpu_seconds(fn, repeats: int) -> float:
    """Best CPU time of ``repeats`` warm calls (after one call that compiles)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def sweep(ct, num_points, d, k, parallel, steps, blocks, repeats):
    x = gmm.make_data(num_points, d, k, seed=0)
    model = emjax.GaussianMixture(k, covariance_type=ct)
    p0 = gmm.emjax_params0(model, gmm.initial_params(x, k, seed=0), np.float64)
    if parallel > 1:
        p0 = jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), (parallel,) + a.shape), p0)
    per_step = {}
    for b in blocks:
        fit = lambda b=b: gmm.run_emjax(model, x, params0=p0, max_steps=steps, block_size=b)  # noqa: E731
        per_step[b] = cpu_seconds(fit, repeats) / (steps + 1) / parallel
    return {
        "covariance_type": ct, "D": d, "K": k, "P": parallel, "N": num_points,
        "default": default_block_size(num_points, k * d, parallel),
        "best": min(per_step, key=per_step.get), "ms_per_step": {b: 1e3 * t for b, t in per_step.items()},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer shapes and block sizes")
    p.add_argument("--out", help="also write the results as JSON to this file")
    args = p.parse_args()

    if args.quick:
        single = [(16, 16)]
        single_blocks, parallel, parallel_blocks = [256, 1024, 4096], [8], [64, 256, 1024]
        cts, n1, n2 = ["full"], 20_000, 5_000
    else:
        single = [(16, 16), (4, 16), (64, 16), (16, 64), (16, 4)]
        single_blocks = [128, 256, 512, 1024, 2048, 4096, 8192, 16384]
        parallel, parallel_blocks = [8, 64], [16, 32, 64, 128, 256, 512, 1024, 2048]
        cts, n1, n2 = ["full", "diag"], 50_000, 20_000

    results = []
    for ct in cts:
        for d, k in single:
            results.append(sweep(ct, n1, d, k, 1, 3, single_blocks, 2))
            print_row(results[-1])
        for num_parallel in parallel:
            results.append(sweep(ct, n2, 16, 16, num_parallel, 2, parallel_blocks, 1))
            print_row(results[-1])
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


def print_row(r):
    cells = []
    for b, t in r["ms_per_step"].items():
        mark = ("*" if b == r["default"] else "") + ("<" if b == r["best"] else "")
        cells.append(f"{b}{mark}:{t:.1f}")
    print(f"{r['covariance_type']:4s} D={r['D']:<3d} K={r['K']:<3d} P={r['P']:<3d} "
          f"ms/step{'/restart' if r['P'] > 1 else ''}: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    print("block size: ms of CPU per step (* = emjax default, < = fastest)")
    main()
