"""Benchmark: emjax.BayesianGaussianMixture against scikit-learn's BayesianGaussianMixture.

Both libraries fit the same synthetic data (`gmm.py`'s mixture of K Gaussians with random
full covariances, fixed seed) in the same process: N = 20,000 points, D = 16, K = 16, the
Dirichlet-process weight prior, covariance types "full" and "diag", float64 and float32.

**Seconds per CAVI iteration.** scikit-learn runs its own initialisation
(``init_params="random_from_data"``, ``random_state=0``) and one iteration; emjax starts
from that state (`BayesianGaussianMixture.make_params` with scikit-learn's fitted
attributes), so both then run the same iterations. Every convergence test is off
(emjax ``rtol=atol=0``, scikit-learn ``tol=0``); each library fits S and S0 < S
iterations, and the per-iteration time is the difference divided by ``S − S0``, which
cancels each fit's fixed cost (validation, scikit-learn's initialisation and final
E-step, emjax's dispatch). emjax's compile time (first call minus a warm call) is shown
separately; all other emjax times are warm calls, interleaved with scikit-learn's so that
a change of machine load hits both alike. The script also prints the largest relative
difference between the two libraries' means and covariances after S iterations (float64:
the same computation, so rounding only). For float32 it compares both float32 fits with
emjax's float64 fit from the same start: scikit-learn's ``BayesianGaussianMixture`` keeps
its parameters in float64 even for float32 input (its priors are float64), so only emjax
computes in float32 there; its float32 iterates drift from the float64 ones by rounding
(about 1e-6 of the largest entry after 15 iterations on these data, more after many, as
the component updates amplify it in their slow directions).

Every time is taken as wall-clock and as CPU seconds of this process (``process_time``):
on a shared machine, compare both and the load averages before trusting a wall-clock ratio.

Usage (from the repository root)::

    python benchmarks/bgmm.py
    python benchmarks/bgmm.py --num-points 100000 --steps 20 --base-steps 5 --out bgmm.json

Nothing here asserts on a timing: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from dataclasses import asdict
from functools import partial
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # float64 runs need it; float32 data stay float32

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning  # noqa: E402
from sklearn.mixture import BayesianGaussianMixture as SklearnBGMM  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmark this checkout's emjax
sys.path.insert(0, str(HERE))
from gmm import Timing, load, make_data, timed  # noqa: E402  (the GMM benchmark's helpers)

import emjax  # noqa: E402

warnings.filterwarnings("ignore", category=emjax.ConvergenceWarning)
warnings.filterwarnings("ignore", category=SklearnConvergenceWarning)

DTYPES = {"float64": np.float64, "float32": np.float32}
CONFIGS = [("full", "float64"), ("full", "float32"), ("diag", "float64"), ("diag", "float32")]
WEIGHT_PRIOR = "dirichlet_process"


def run_sklearn(x, covariance_type, k, threads, max_iter):
    model = SklearnBGMM(n_components=k, covariance_type=covariance_type,
                        weight_concentration_prior_type=WEIGHT_PRIOR, tol=0.0, max_iter=max_iter,
                        init_params="random_from_data", random_state=0)
    with threadpool_limits(threads):
        model.fit(x)
    return model


def run_emjax(model, x, params0, max_steps):
    sol = emjax.fit(model, x, params0=params0, max_steps=max_steps, rtol=0.0, atol=0.0,
                    throw=False)
    jax.block_until_ready(sol.params)
    return sol


def rel(a, b):
    """The largest difference of ``a`` from ``b``, relative to the largest entry of ``b``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def median(values):
    return float(np.median(values))


def bench(args) -> list[dict]:
    x64 = make_data(args.num_points, args.num_features, args.num_components, args.seed)
    S, S0, K = args.steps, args.base_steps, args.num_components
    rows = []
    for ct, dt in CONFIGS:
        x = x64.astype(DTYPES[dt])
        model = emjax.BayesianGaussianMixture(K, ct, WEIGHT_PRIOR, reg_covar=1e-6)
        sk1 = run_sklearn(x, ct, K, args.sklearn_threads, 1)
        p0 = model.make_params(
            weight_concentration=sk1.weight_concentration_, mean_precision=sk1.mean_precision_,
            means=sk1.means_, degrees_of_freedom=sk1.degrees_of_freedom_,
            covariances=sk1.covariances_)
        p0 = jax.tree.map(lambda a, dtype=DTYPES[dt]: a.astype(dtype), p0)
        row = {"covariance_type": ct, "dtype": dt, "load_before": load()}
        # emjax continues from scikit-learn's state after 1 iteration: n steps = n + 1 there.
        em_fit = {n: partial(run_emjax, model, x, p0, n - 1) for n in (S, S0)}
        sk_fit = {n: partial(run_sklearn, x, ct, K, args.sklearn_threads, n) for n in (S, S0)}
        first = {n: Timing() for n in (S, S0)}
        for n in (S, S0):
            timed(em_fit[n], first[n])  # compile + run
        em_t = {n: Timing() for n in (S, S0)}
        sk_t = {n: Timing() for n in (S, S0)}
        sols, fitted = {}, {}
        for _ in range(args.repeats):
            for n in (S, S0):
                sols[n] = timed(em_fit[n], em_t[n])
                fitted[n] = timed(sk_fit[n], sk_t[n])
        sol, sk = sols[S], fitted[S]

        if dt == "float32":
            # Accuracy: both float32 fits against emjax in float64 from the same start.
            ref = run_emjax(model, x.astype(np.float64),
                            jax.tree.map(lambda a: a.astype(np.float64), p0), S - 1).params
            row.update(
                sklearn_param_dtype=str(sk.means_.dtype),
                emjax32_vs_float64_means=rel(sol.params.means, ref.means),
                sklearn32_vs_float64_means=rel(sk.means_, ref.means),
                emjax32_vs_float64_covariances=rel(sol.params.covariances, ref.covariances),
                sklearn32_vs_float64_covariances=rel(sk.covariances_, ref.covariances),
            )
            print(f"  float32 vs emjax float64 (max diff / max entry): means emjax "
                  f"{row['emjax32_vs_float64_means']:.1e}, sklearn "
                  f"{row['sklearn32_vs_float64_means']:.1e}; covariances emjax "
                  f"{row['emjax32_vs_float64_covariances']:.1e}, sklearn "
                  f"{row['sklearn32_vs_float64_covariances']:.1e} (scikit-learn's parameters are "
                  f"{row['sklearn_param_dtype']})", flush=True)
        row.update(
            emjax_steps=int(sol.num_steps) + 1, sklearn_steps=int(sk.n_iter_),
            max_rel_diff_means=rel(sol.params.means, sk.means_),
            max_rel_diff_covariances=rel(sol.params.covariances, sk.covariances_),
            max_abs_diff_weights=float(np.max(np.abs(
                np.asarray(model.expected_weights(sol.params), np.float64) - sk.weights_))),
            load_after=load(),
        )
        for clock in ("wall", "cpu"):
            e_fit, e_base = median(getattr(em_t[S], clock)), median(getattr(em_t[S0], clock))
            k_fit, k_base = median(getattr(sk_t[S], clock)), median(getattr(sk_t[S0], clock))
            row[clock] = {
                "emjax_compile_s": getattr(first[S], clock)[0] - e_fit,
                "emjax_step_s": (e_fit - e_base) / (S - S0),
                "sklearn_step_s": (k_fit - k_base) / (S - S0),
            }
            row[clock]["ratio"] = row[clock]["sklearn_step_s"] / row[clock]["emjax_step_s"]
        row["timings"] = {"emjax": {n: asdict(t) for n, t in em_t.items()},
                          "sklearn": {n: asdict(t) for n, t in sk_t.items()}}
        rows.append(row)
        w, c = row["wall"], row["cpu"]
        print(f"{ct:5s} {dt}: emjax {w['emjax_step_s']:.4f} s/it ({c['emjax_step_s']:.4f} cpu), "
              f"sklearn {w['sklearn_step_s']:.4f} s/it ({c['sklearn_step_s']:.4f} cpu), "
              f"ratio {w['ratio']:.1f}x wall ({c['ratio']:.1f}x cpu), compile "
              f"{w['emjax_compile_s']:.1f} s, emjax vs sklearn (max diff / max entry): means "
              f"{row['max_rel_diff_means']:.1e}, covariances "
              f"{row['max_rel_diff_covariances']:.1e}, load {row['load_after']}",
              flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-points", type=int, default=20_000)
    parser.add_argument("--num-features", type=int, default=16)
    parser.add_argument("--num-components", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=15, help="S")
    parser.add_argument("--base-steps", type=int, default=5, help="S0")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sklearn-threads", type=int, default=None)
    parser.add_argument("--out", type=str, default=None, help="save every raw time as JSON")
    args = parser.parse_args(argv)
    print(f"emjax {emjax.__version__}, jax {jax.__version__}, scikit-learn {sklearn.__version__}, "
          f"{platform.processor() or platform.machine()}, N={args.num_points}, "
          f"D={args.num_features}, K={args.num_components}, S={args.steps}, S0={args.base_steps}, "
          f"load {load()}", flush=True)
    rows = bench(args)
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": vars(args), "results": rows}, indent=1))


if __name__ == "__main__":
    main()
