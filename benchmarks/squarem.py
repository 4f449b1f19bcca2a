"""Benchmark: SQUAREM against plain EM, in E-steps (passes over the data) and seconds.

Three slowly-converging problems, each fitted from the same initial parameters by
``emjax.EM()`` and ``emjax.SQUAREM()`` to a tight tolerance (``rtol=1e-12`` on the change
of the ELBO; float64):

1. **overlap-1d**: two unit-variance 1-D Gaussians with means 0 and 1, N = 1,000 (the
   problem of Varadhan & Roland's R package examples and of
   ``shared/reference/methods.md`` §9.1);
2. **faithful-k3**: Old Faithful, standardised, three full-covariance components;
3. **hmm-2state**: a two-state Gaussian hidden Markov model with overlapping emissions
   (means 0 and 0.8, unit variances, self-transition 0.95), one sequence of 2,000 steps.

For each it reports the E-steps each solver took (EM: one per step plus the final
evaluation; SQUAREM: three per cycle), their ratio, the final log-likelihoods and the
warm wall-clock seconds (compile excluded). Both stop on the same criterion, so plain EM
stops where its steps become tiny, possibly short of the optimum (its log-likelihood is
then a little lower).

Usage (from the repository root)::

    python benchmarks/squarem.py [--out results.json]

Nothing here asserts on a timing: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import emjax  # noqa: E402


def overlap_1d():
    rng = np.random.default_rng(0)
    z = rng.random(1000) < 0.5
    X = (np.where(z, 0.0, 1.0) + rng.normal(size=1000))[:, None]
    model = emjax.GaussianMixture(2, "diag", reg_covar=0.0)
    p0 = model.make_params(weights=[0.5, 0.5], means=[[-0.5], [1.5]], covariances=[[1.0], [1.0]])
    return model, X, p0


def faithful_k3():
    X = np.asarray(emjax.datasets.load_old_faithful())
    X = (X - X.mean(0)) / X.std(0)
    model = emjax.GaussianMixture(3, "full", reg_covar=0.0)
    p0 = model.make_params(weights=np.full(3, 1 / 3), means=X[[0, 1, 2]],
                           covariances=np.stack([np.eye(2)] * 3))
    return model, X, p0


def hmm_2state():
    model = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("diag", reg_covar=0.0))
    truth = model.make_params(initial=[0.5, 0.5], transition=[[0.95, 0.05], [0.05, 0.95]],
                              means=[[0.0], [0.8]], covariances=[[1.0], [1.0]])
    X, _ = model.sample(truth, 2000, key=jax.random.key(0))
    p0 = model.make_params(initial=[0.5, 0.5], transition=[[0.8, 0.2], [0.2, 0.8]],
                           means=[[-0.5], [1.5]], covariances=[[1.0], [1.0]])
    return model, np.asarray(X), p0


PROBLEMS = {"overlap-1d": overlap_1d, "faithful-k3": faithful_k3, "hmm-2state": hmm_2state}


def run(name, make, max_steps=50_000, rtol=1e-12):
    model, X, p0 = make()
    out = {"problem": name}
    for label, solver, passes_per_step in (("em", emjax.EM(), 1), ("squarem", emjax.SQUAREM(), 3)):
        kw = dict(params0=p0, solver=solver, max_steps=max_steps, rtol=rtol, throw=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emjax.ConvergenceWarning)
            jax.block_until_ready(emjax.fit(model, X, **kw))  # compile
            tick = time.perf_counter()
            sol = jax.block_until_ready(emjax.fit(model, X, **kw))
            seconds = time.perf_counter() - tick
        out[label] = {
            "steps": int(sol.num_steps),
            "e_steps": passes_per_step * (int(sol.num_steps) + 1),
            "log_likelihood": float(sol.log_likelihood),
            "converged": bool(sol.converged),
            "seconds": seconds,
        }
    out["e_step_ratio"] = out["em"]["e_steps"] / out["squarem"]["e_steps"]
    out["time_ratio"] = out["em"]["seconds"] / out["squarem"]["seconds"]
    out["loglik_gain"] = out["squarem"]["log_likelihood"] - out["em"]["log_likelihood"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="also write the results as JSON")
    args = parser.parse_args()
    print(f"# {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"jax {jax.__version__}, backend {jax.default_backend()}")
    rows = [run(name, make) for name, make in PROBLEMS.items()]
    print(f"{'problem':<13} {'EM E-steps':>10} {'SQUAREM E-steps':>16} {'ratio':>6} "
          f"{'EM s':>7} {'SQ s':>7} {'time ratio':>10} {'loglik SQ - EM':>15}")
    for r in rows:
        print(f"{r['problem']:<13} {r['em']['e_steps']:>10} {r['squarem']['e_steps']:>16} "
              f"{r['e_step_ratio']:>6.1f} {r['em']['seconds']:>7.3f} {r['squarem']['seconds']:>7.3f} "
              f"{r['time_ratio']:>10.1f} {r['loglik_gain']:>15.3e}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
