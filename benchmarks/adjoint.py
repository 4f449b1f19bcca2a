"""Benchmark: the cost of a gradient through `emjax.fit`, relative to the fit itself.

For a Gaussian mixture (the data of ``benchmarks/gmm.py``: N points from a mixture of
K = 16 overlapping Gaussians in D = 16 dimensions), from fixed initial parameters, this
measures the **forward fit** (``emjax.fit``, a while-loop; warm) and the **gradient**
(``jax.grad`` of ``loss = log-likelihood + Σ means`` with respect to the data X and
``reg_covar``) with each adjoint:

- fits cut at exactly S steps (every convergence test off), S = 50 and 200 by default:
  ``adjoint=emjax.Unrolled()`` (reverse mode through the S steps, one checkpoint per step).
  The implicit adjoint is not run there: a fit cut before convergence is not at a fixed
  point, where its gradient is meaningless (and its adjoint solve typically diverges);
- a fit run to convergence (``--rtol``, default 1e-7, within ``--converged-max-steps``,
  default 100; the unrolled adjoint scans all of them, so keep it near what is needed): both
  ``adjoint=emjax.Implicit()`` (the fixed-point adjoint at the last iterate; its cost does
  not depend on the number of forward steps) and ``adjoint=emjax.Unrolled()``.

It reports the time ratio gradient / forward and the memory of each compiled program
(XLA's ``memory_analysis``: temporaries + arguments + outputs, the program's peak
allocation, not the process' resident memory).

Every time is the median of ``--repeats`` warm calls (compile excluded, reported apart),
with ``block_until_ready``. Nothing here asserts on a timing.

Usage (from the repository root)::

    python benchmarks/adjoint.py                     # N = 100,000, float32, S = 50, 200
    python benchmarks/adjoint.py --n 20000 --steps 20 50 --dtype float64 --rtol 1e-10
    python benchmarks/adjoint.py --out adjoint.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # float64 available; float32 runs use float32 data

import emjax  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from gmm import machine_description, make_data  # noqa: E402


def program_bytes(fn, *args) -> int:
    compiled = jax.jit(fn).lower(*args).compile()
    m = compiled.memory_analysis()
    return int(m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes)


def timed(fn, *args, repeats: int) -> tuple[float, float]:
    """(first call seconds, median warm seconds)."""
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        warm.append(time.perf_counter() - t)
    return first, statistics.median(warm)


def bench(n: int, d: int, k: int, steps: list[int], dtype, repeats: int, covariance_type: str,
          tol: float, converged_max_steps: int):
    x = jnp.asarray(make_data(n, d, k, seed=0), dtype)
    model = emjax.GaussianMixture(k, covariance_type=covariance_type, reg_covar=1e-6)
    rng = np.random.default_rng(1)
    means = x[rng.choice(n, size=k, replace=False)]
    cov = jnp.cov(x.T).astype(dtype)
    covariances = {"full": jnp.broadcast_to(cov, (k, d, d)), "diag": jnp.broadcast_to(jnp.diag(cov), (k, d))}
    params0 = model.make_params(weights=jnp.full((k,), 1.0 / k, dtype), means=means,
                                covariances=covariances[covariance_type])
    reg = jnp.asarray(1e-6, dtype)
    rows = []

    def fit(x, reg, adjoint, max_steps, rtol):
        m = emjax.GaussianMixture(k, covariance_type=covariance_type, reg_covar=reg)
        return emjax.fit(m, x, params0=params0, max_steps=max_steps, rtol=rtol, atol=0.0,
                         adjoint=adjoint, throw=False)

    def loss(x, reg, adjoint, max_steps, rtol):
        sol = fit(x, reg, adjoint, max_steps, rtol)
        return sol.log_likelihood + jnp.sum(sol.params.means)

    cases = [(s, 0.0, ("unrolled",)) for s in steps]
    cases += [(converged_max_steps, tol, ("unrolled", "implicit"))] if converged_max_steps else []
    for max_steps, rtol, adjoints in cases:
        fwd = lambda x, reg, n=max_steps, t=rtol: loss(x, reg, emjax.Implicit(), n, t)  # noqa: E731
        first, t_fwd = timed(jax.jit(fwd), x, reg, repeats=repeats)
        sol = fit(x, reg, emjax.Implicit(), max_steps, rtol)
        row = {"max_steps": max_steps, "rtol": rtol, "steps_run": int(sol.num_steps),
               "converged": bool(sol.converged), "forward_s": t_fwd,
               "forward_compile_s": first - t_fwd, "forward_bytes": program_bytes(fwd, x, reg)}
        for name in adjoints:
            adjoint = {"unrolled": emjax.Unrolled(), "implicit": emjax.Implicit()}[name]
            grad = jax.grad(lambda x, reg, a=adjoint, n=max_steps, t=rtol: loss(x, reg, a, n, t),
                            argnums=(0, 1))
            first, t_grad = timed(jax.jit(grad), x, reg, repeats=repeats)
            g = jax.jit(grad)(x, reg)
            row[f"{name}_s"] = t_grad
            row[f"{name}_compile_s"] = first - t_grad
            row[f"{name}_ratio"] = t_grad / t_fwd
            row[f"{name}_bytes"] = program_bytes(grad, x, reg)
            row[f"{name}_finite"] = bool(np.isfinite(np.asarray(g[0])).all() and np.isfinite(float(g[1])))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def report(rows, args, machine) -> str:
    mib = lambda b: f"{b / 2**20:.0f}"  # noqa: E731
    lines = [
        f"N = {args.n:,}, D = {args.d}, K = {args.k}, {args.covariance_type} covariances, "
        f"{args.dtype}; median of {args.repeats} warm calls",
        f"machine: {machine}",
        "",
        "| fit | steps run | forward s | unrolled grad s (×fwd) | implicit grad s (×fwd) "
        "| forward MiB | unrolled MiB | implicit MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        what = (f"cut at {r['max_steps']} steps" if r["rtol"] == 0 else
                f"to rtol={r['rtol']:g}" + ("" if r["converged"] else " (not converged)"))
        cell = lambda name, r=r: (f"{r[name + '_s']:.2f} ({r[name + '_ratio']:.1f}×)"  # noqa: E731
                             + ("" if r[name + "_finite"] else " non-finite")
                             if name + "_s" in r else "n/a")
        size = lambda name, r=r: mib(r[name + "_bytes"]) if name + "_bytes" in r else "n/a"  # noqa: E731
        lines.append(
            f"| {what} | {r['steps_run']} | {r['forward_s']:.2f} | {cell('unrolled')} "
            f"| {cell('implicit')} | {mib(r['forward_bytes'])} | {size('unrolled')} "
            f"| {size('implicit')} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--steps", type=int, nargs="+", default=[50, 200])
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--covariance-type", choices=["full", "diag"], default="full")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rtol", type=float, default=1e-7, help="tolerance of the converged fit")
    p.add_argument("--converged-max-steps", type=int, default=100,
                   help="max_steps of the converged fit (Unrolled scans max_steps + 1 steps, "
                        "so keep it near the steps needed); 0 skips that fit")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    machine = machine_description()
    rows = bench(args.n, args.d, args.k, args.steps, jnp.dtype(args.dtype), args.repeats,
                 args.covariance_type, args.rtol, args.converged_max_steps)
    print(report(rows, args, machine))
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                        "machine": machine, "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
