"""Benchmark: emjax.GaussianMixture against scikit-learn's GaussianMixture on a CPU.

Both libraries see the same synthetic data (a mixture of K Gaussians with random full
covariances, fixed seed) in the same process, and start from the same initial parameters,
so both do the same arithmetic. Four things are measured:

1. **Seconds per EM step** for each covariance type ("full", "diag") and dtype
   (float64, float32). Each library fits with ``S`` and with ``S0 < S`` steps, with every
   convergence test switched off (emjax: ``rtol=atol=0``; scikit-learn: ``tol=0``), and
   the per-step time is the difference of the two (median) fit times divided by
   ``S - S0``. That cancels the fixed work of one fit: input validation, scikit-learn's
   initial parameter estimate and its final E-step, emjax's final log-likelihood pass and
   its dispatch. emjax's compile time (first call minus a warm call) is reported apart.
2. **64 restarts**: ``emjax.fit(..., key=..., num_restarts=64)`` (restarts vmapped in one
   program) against ``GaussianMixture(n_init=64, init_params="k-means++")``, and against
   64 times one emjax fit with a single restart (the gain from vmapping).
3. **Block sizes for 64 restarts**: a grid of ``block_size`` x ``restart_batch_size``
   options of `emjax.fit`, to check the heuristic in ``emjax/_accumulate.py``.
4. **Block sizes for one restart** (full covariance, float64).

Sections 2 and 3 use a subsample (the first ``--restart-rows`` rows) and fewer steps
(``--restart-steps``; section 3 uses 2, as only relative times matter): 64 restarts on 100,000 rows for 20 steps is ~64 times the work of
one fit, too much for a run of a few minutes on a small CPU. scikit-learn's restarts run
one after another, so its time for 64 inits is extrapolated linearly from 1 and
``--sklearn-inits`` inits (pass ``--sklearn-inits 64`` to measure it directly).

Usage (from the repository root)::

    python benchmarks/gmm.py                # full run (N=100,000), several minutes
    python benchmarks/gmm.py --quick        # N=20,000, fewer configurations, ~1 minute
    python benchmarks/gmm.py --restarts 64 --out results.json

Timings on a shared machine are noisy: the load average is printed with each section.
No timing is asserted; this script only measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import jax
import jaxlib

jax.config.update("jax_enable_x64", True)  # float64 runs need it; float32 data stay float32

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SklearnGMM  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # use this checkout's emjax
import emjax  # noqa: E402
from emjax._accumulate import default_block_size  # noqa: E402

warnings.filterwarnings("ignore", category=emjax.ConvergenceWarning)
warnings.filterwarnings("ignore", category=SklearnConvergenceWarning)

DTYPES = {"float64": np.float64, "float32": np.float32}


# ---------------------------------------------------------------------------- settings
@dataclass
class Settings:
    num_points: int = 100_000
    num_features: int = 16
    num_components: int = 16
    seed: int = 0
    steps: int = 20  # S
    base_steps: int = 5  # S0
    repeats: int = 2  # warm calls per measurement (median taken)
    configs: list = field(default_factory=lambda: [
        ("full", "float64"), ("full", "float32"), ("diag", "float64"), ("diag", "float32"),
    ])
    restarts: int = 64
    restart_rows: int = 20_000
    restart_steps: int = 5
    restart_configs: list = field(default_factory=lambda: [
        ("full", "float64"), ("full", "float32"), ("diag", "float64"), ("diag", "float32"),
    ])
    sklearn_inits: int = 4
    explore_configs: list = field(default_factory=lambda: [("full", "float64"), ("diag", "float64")])
    explore_steps: int = 2  # only relative times matter here
    # (block_size, restart_batch_size); None means emjax's default.
    explore_grid: list = field(default_factory=lambda: [
        (64, None), (None, None), (1024, None), (4096, None),
        (None, 16), (1024, 16), (4096, 16),
        (None, 8), (4096, 8),
    ])
    single_block_sizes: list = field(default_factory=lambda: [256, 512, 1024, 2048, 4096, 8192])
    sklearn_threads: int | None = None  # BLAS threads for scikit-learn; None: its default


def quick_settings() -> Settings:
    return Settings(
        num_points=20_000, steps=10, base_steps=3, repeats=1,
        configs=[("full", "float64"), ("diag", "float32")],
        restart_rows=5_000, restart_steps=3,
        restart_configs=[("full", "float64")],
        sklearn_inits=2,
        explore_configs=[("full", "float64")], explore_steps=2,
        explore_grid=[(None, None), (1024, None), (None, 16)],
        single_block_sizes=[1024, 4096],
    )


# ---------------------------------------------------------------------------- data
def make_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """``n`` points from a mixture of ``k`` Gaussians in ``d`` dimensions (float64).

    Means are N(0, 1.2²) per coordinate (typical distance between two means ≈ 6.8),
    covariances ``s_k (A_k A_kᵀ / d + 0.2 I)`` with random ``A_k`` and ``s_k ∈ [0.3, 1]``:
    clusters are distinct but overlap enough that EM keeps moving for many steps.
    Rows are in random order, so the first rows are a fair subsample.
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=1.2, size=(k, d))
    a = rng.normal(size=(k, d, d)) / np.sqrt(d)
    scales = rng.uniform(0.3, 1.0, size=k)
    covs = scales[:, None, None] * (a @ np.swapaxes(a, 1, 2) + 0.2 * np.eye(d))
    chols = np.linalg.cholesky(covs)
    z = rng.choice(k, size=n, p=weights)
    x = np.empty((n, d))
    for j in range(k):
        rows = np.flatnonzero(z == j)
        x[rows] = means[j] + rng.standard_normal((rows.size, d)) @ chols[j].T
    return x


def initial_params(x: np.ndarray, k: int, seed: int) -> dict:
    """Shared starting point, like scikit-learn's "random_from_data": ``k`` distinct data
    points as means, the data's covariance (or variances) for every component, equal
    weights. Returned in float64 for both covariance types."""
    rng = np.random.default_rng(seed + 1)
    means = x[rng.choice(x.shape[0], size=k, replace=False)]
    cov = np.cov(x, rowvar=False)
    return {
        "weights": np.full(k, 1.0 / k),
        "means": means,
        "full": np.broadcast_to(cov, (k,) + cov.shape).copy(),
        "diag": np.broadcast_to(np.diag(cov), (k, cov.shape[0])).copy(),
    }


def emjax_params0(model: emjax.GaussianMixture, init: dict, dtype):
    return model.make_params(
        weights=init["weights"].astype(dtype),
        means=init["means"].astype(dtype),
        covariances=init[model.covariance_type].astype(dtype),
    )


def sklearn_init_kwargs(covariance_type: str, init: dict) -> dict:
    cov = init[covariance_type]
    precisions = np.linalg.inv(cov) if covariance_type == "full" else 1.0 / cov
    return {"weights_init": init["weights"], "means_init": init["means"], "precisions_init": precisions}


# ---------------------------------------------------------------------------- timing
def timed(fn):
    """``(seconds, result)`` of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def first_and_warm(fn, repeats: int):
    """Time a first call (compile + run for emjax), then ``repeats`` warm calls."""
    first, out = timed(fn)
    warm = []
    for _ in range(repeats):
        t, out = timed(fn)
        warm.append(t)
    return first, warm, out


def run_emjax(model, x, **kwargs):
    sol = emjax.fit(model, x, rtol=0.0, atol=0.0, throw=False, **kwargs)
    jax.block_until_ready(sol.params)
    return sol


def run_sklearn(x, covariance_type, k, threads, **kwargs):
    gm = SklearnGMM(k, covariance_type=covariance_type, tol=0.0, random_state=0, **kwargs)
    with threadpool_limits(threads):
        gm.fit(x)
    return gm


def load() -> str:
    return "{:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


def median(xs):
    return statistics.median(xs)


# ---------------------------------------------------------------------------- sections
def bench_per_step(s: Settings, x64: np.ndarray, init: dict) -> list[dict]:
    """Section 1: seconds per EM step, from the same initial parameters."""
    S, S0, K = s.steps, s.base_steps, s.num_components
    results = []
    for ct, dt in s.configs:
        x = x64.astype(DTYPES[dt])
        model = emjax.GaussianMixture(K, covariance_type=ct)
        p0 = emjax_params0(model, init, DTYPES[dt])
        row = {"covariance_type": ct, "dtype": dt, "load_before": load()}

        em = {}
        for steps in (S, S0):
            fit = partial(run_emjax, model, x, params0=p0, max_steps=steps)
            first, warm, sol = first_and_warm(fit, s.repeats)
            em[steps] = {"first_s": first, "warm_s": warm, "num_steps": int(sol.num_steps),
                         "mean_loglik": float(sol.log_likelihood) / x.shape[0],
                         "param_dtype": str(sol.params.means.dtype)}

        sk_kw = sklearn_init_kwargs(ct, init)
        sk, fitted = {}, {}
        for steps in (S, S0):
            fit = partial(run_sklearn, x, ct, K, s.sklearn_threads, max_iter=steps,
                          init_params="random_from_data", **sk_kw)
            times = []
            for _ in range(s.repeats):
                t, fitted[steps] = timed(fit)
                times.append(t)
            sk[steps] = {"times_s": times, "n_iter": int(fitted[steps].n_iter_)}
        with threadpool_limits(s.sklearn_threads):  # untimed check that both did the same
            sk[S]["mean_loglik"] = float(fitted[S].score(x))

        e_fit, e_base = median(em[S]["warm_s"]), median(em[S0]["warm_s"])
        k_fit, k_base = median(sk[S]["times_s"]), median(sk[S0]["times_s"])
        row.update(
            emjax=em, sklearn=sk,
            emjax_compile_s=em[S]["first_s"] - e_fit,
            emjax_fit_s=e_fit, sklearn_fit_s=k_fit,
            emjax_step_s=(e_fit - e_base) / (S - S0),
            sklearn_step_s=(k_fit - k_base) / (S - S0),
            # the simple estimates, for reference: emjax does S+1 E-steps, sklearn S steps
            # (plus an initial M-step and a final E-step)
            emjax_step_simple_s=e_fit / (S + 1),
            sklearn_step_simple_s=k_fit / S,
            loglik_diff=em[S]["mean_loglik"] - sk[S]["mean_loglik"],
            load_after=load(),
        )
        row["step_ratio"] = row["sklearn_step_s"] / row["emjax_step_s"]
        row["fit_ratio"] = k_fit / e_fit
        results.append(row)
        print(f"  per-step {ct}/{dt}: emjax {row['emjax_step_s']:.4f} s/step, "
              f"sklearn {row['sklearn_step_s']:.4f} s/step (load {row['load_after']})", flush=True)
    return results


def bench_restarts(s: Settings, x64: np.ndarray) -> list[dict]:
    """Section 2: R restarts, emjax (vmapped) vs scikit-learn's n_init vs R single fits."""
    R, S, K = s.restarts, s.restart_steps, s.num_components
    key = jax.random.key(0)
    results = []
    for ct, dt in s.restart_configs:
        x = x64[: s.restart_rows].astype(DTYPES[dt])
        model = emjax.GaussianMixture(K, covariance_type=ct)
        row = {"covariance_type": ct, "dtype": dt, "load_before": load()}

        fit_r = partial(run_emjax, model, x, key=key, num_restarts=R, max_steps=S)
        first_r, warm_r, sol_r = first_and_warm(fit_r, max(1, s.repeats - 1))
        fit_1 = partial(run_emjax, model, x, key=key, num_restarts=1, max_steps=S)
        first_1, warm_1, _ = first_and_warm(fit_1, s.repeats)

        inits = sorted({1, min(s.sklearn_inits, R)})
        sk_times = {}
        for n_init in inits:
            sk_times[n_init], _ = timed(partial(
                run_sklearn, x, ct, K, s.sklearn_threads, max_iter=S, n_init=n_init,
                init_params="k-means++"))
        if R in sk_times:
            sk_total, extrapolated = sk_times[R], False
        else:
            lo, hi = inits
            per_init = (sk_times[hi] - sk_times[lo]) / (hi - lo)
            sk_total, extrapolated = sk_times[lo] + (R - lo) * per_init, True

        em_total, em_single = median(warm_r), median(warm_1)
        steps_done = np.asarray(sol_r.restart_num_steps)
        row.update(
            rows=x.shape[0], steps=S, restarts=R,
            emjax_block_size=default_block_size(x.shape[0], x.shape[1], R),
            emjax_first_s=first_r, emjax_warm_s=warm_r, emjax_compile_s=first_r - em_total,
            emjax_total_s=em_total,
            emjax_single_warm_s=warm_1, emjax_single_s=em_single,
            emjax_single_times_R_s=R * em_single,
            vmap_gain=R * em_single / em_total,
            sklearn_times_s={str(n): t for n, t in sk_times.items()},
            sklearn_total_s=sk_total, sklearn_extrapolated=extrapolated,
            ratio=sk_total / em_total,
            emjax_restart_steps=[int(steps_done.min()), int(steps_done.max())],
            emjax_best_mean_loglik=float(sol_r.log_likelihood) / x.shape[0],
            load_after=load(),
        )
        results.append(row)
        print(f"  restarts {ct}/{dt}: emjax {em_total:.2f} s, sklearn {sk_total:.2f} s"
              f"{' (extrapolated)' if extrapolated else ''}, {R} x single {R * em_single:.2f} s "
              f"(load {row['load_after']})", flush=True)
    return results


def bench_restart_blocks(s: Settings, x64: np.ndarray) -> list[dict]:
    """Section 3: block_size x restart_batch_size for R vmapped restarts."""
    R, S, K = s.restarts, s.explore_steps, s.num_components
    key = jax.random.key(0)
    results = []
    for ct, dt in s.explore_configs:
        x = x64[: s.restart_rows].astype(DTYPES[dt])
        model = emjax.GaussianMixture(K, covariance_type=ct)
        for block, batch in s.explore_grid:
            parallel = min(R, batch or R)
            effective = block or default_block_size(x.shape[0], x.shape[1], parallel)
            fit = partial(run_emjax, model, x, key=key, num_restarts=R, max_steps=S,
                          block_size=block, restart_batch_size=batch)
            first, warm, _ = first_and_warm(fit, 1)
            row = {"covariance_type": ct, "dtype": dt, "block_size": effective,
                   "default_block": block is None, "restart_batch_size": batch or R,
                   "first_s": first, "warm_s": median(warm), "compile_s": first - median(warm),
                   "load": load()}
            results.append(row)
            print(f"  blocks {ct}/{dt} block={effective}{'*' if block is None else ''} "
                  f"batch={batch or R}: {row['warm_s']:.2f} s (load {row['load']})", flush=True)
    return results


def bench_single_blocks(s: Settings, x64: np.ndarray, init: dict) -> list[dict]:
    """Section 4: block_size for one restart, full covariance, float64, all rows."""
    K, S = s.num_components, s.base_steps
    model = emjax.GaussianMixture(K, covariance_type="full")
    p0 = emjax_params0(model, init, np.float64)
    default = default_block_size(x64.shape[0], x64.shape[1], 1)
    results = []
    for block in sorted(set(s.single_block_sizes) | {default}):
        fit = partial(run_emjax, model, x64, params0=p0, max_steps=S, block_size=block)
        first, warm, _ = first_and_warm(fit, s.repeats)
        w = median(warm)
        row = {"block_size": block, "default_block": block == default, "steps": S,
               "warm_s": w, "step_s": w / (S + 1), "compile_s": first - w, "load": load()}
        results.append(row)
        print(f"  single block={block}{'*' if block == default else ''}: {w:.3f} s "
              f"(load {row['load']})", flush=True)
    return results


# ---------------------------------------------------------------------------- reporting
def machine_description() -> dict:
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "uname": " ".join(platform.uname()),
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "emjax": emjax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "blas": [f"{i['internal_api']} {i.get('version')} threads={i['num_threads']}"
                 for i in threadpool_info()],
        "load_at_start": load(),
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def report(s: Settings, machine: dict, res: dict) -> str:
    out = ["emjax vs scikit-learn GaussianMixture", ""]
    out += [f"  {k:13s} {v}" for k, v in machine.items()]
    out += ["", f"Data: N={s.num_points:,}, D={s.num_features}, K={s.num_components}, seed={s.seed}; "
            f"scikit-learn BLAS threads: {s.sklearn_threads or 'default'}"]

    if res.get("per_step"):
        S, S0 = s.steps, s.base_steps
        out += ["", f"1. Seconds per EM step (same initial parameters, S={S} and S0={S0} steps, "
                f"median of {s.repeats} warm calls)", ""]
        rows = []
        for r in res["per_step"]:
            steps = f"{r['emjax'][S]['num_steps']}/{r['sklearn'][S]['n_iter']}"
            if r["emjax"][S]["num_steps"] < S:
                steps += " (emjax converged exactly)"
            rows.append([f"{r['covariance_type']}/{r['dtype']}", f"{r['emjax_step_s']:.4f}",
                         f"{r['sklearn_step_s']:.4f}", f"{r['step_ratio']:.2f}",
                         f"{r['emjax_fit_s']:.2f}", f"{r['sklearn_fit_s']:.2f}",
                         f"{r['fit_ratio']:.2f}", f"{r['emjax_compile_s']:.1f}",
                         f"{r['loglik_diff']:.1e}", steps, r["load_after"]])
        out.append(table(["config", "emjax s/step", "sklearn s/step", "ratio",
                          f"emjax fit({S})", f"sklearn fit({S})", "ratio", "compile s",
                          "Δloglik/pt", "steps e/s", "load"], rows))
        out += ["",
                "  s/step = (median fit time at S steps − at S0 steps) / (S − S0), for both libraries;",
                "  this removes each fit's fixed cost (validation, sklearn's initial M-step and final",
                f"  E-step, emjax's final log-likelihood pass). fit({S}) = whole warm fit at S steps.",
                "  ratio = sklearn / emjax (> 1: emjax faster). compile s = first call − warm call.",
                "  Δloglik/pt: emjax − sklearn mean log-likelihood after S steps (same start).",
                "  Simple estimates (emjax fit/(S+1), sklearn fit/S) are in the JSON output."]

    if res.get("restarts"):
        r0 = res["restarts"][0]
        out += ["", f"2. {s.restarts} restarts (first {r0['rows']:,} rows, {r0['steps']} steps each, "
                "k-means++ initialisation in both libraries)", ""]
        rows = [[f"{r['covariance_type']}/{r['dtype']}", f"{r['emjax_total_s']:.2f}",
                 f"{r['sklearn_total_s']:.2f}{'~' if r['sklearn_extrapolated'] else ''}",
                 f"{r['ratio']:.2f}", f"{r['emjax_single_times_R_s']:.2f}",
                 f"{r['vmap_gain']:.2f}", r["emjax_block_size"], f"{r['emjax_compile_s']:.1f}",
                 "{}-{}".format(*r["emjax_restart_steps"]), r["load_after"]]
                for r in res["restarts"]]
        out.append(table(["config", "emjax s", "sklearn s", "ratio", f"{s.restarts} x single s",
                          "vmap gain", "block", "compile s", "steps", "load"], rows))
        out += ["",
                f"  emjax s: one warm fit(num_restarts={s.restarts}) at the default block size;",
                f"  sklearn s: GaussianMixture(n_init={s.restarts}); '~' = extrapolated linearly from "
                f"n_init=1 and {s.sklearn_inits}",
                "  (its inits run one after another). ratio = sklearn / emjax.",
                f"  vmap gain = {s.restarts} x (warm single-restart emjax fit) / emjax s (> 1: vmapping helps)."]

    if res.get("restart_blocks"):
        out += ["", f"3. block_size x restart_batch_size for {s.restarts} restarts "
                f"(rows as in section 2, {s.explore_steps} steps; warm seconds; * = emjax's "
                "default block size)", ""]
        rows = [[f"{r['covariance_type']}/{r['dtype']}", f"{r['block_size']}{'*' if r['default_block'] else ''}",
                 r["restart_batch_size"], f"{r['warm_s']:.2f}", f"{r['compile_s']:.1f}", r["load"]]
                for r in res["restart_blocks"]]
        out.append(table(["config", "block", "restart batch", "warm s", "compile s", "load"], rows))
        out += ["", "  compile s = first call − warm call (≈ 0 where an earlier section compiled the same program)."]

    if res.get("single_blocks"):
        S0 = s.base_steps
        out += ["", f"4. block_size for one restart (full/float64, N={s.num_points:,}, {S0} steps, "
                f"params0; s/step = warm fit / {S0 + 1}; * = default)", ""]
        rows = [[f"{r['block_size']}{'*' if r['default_block'] else ''}", f"{r['warm_s']:.3f}",
                 f"{r['step_s']:.4f}", f"{r['compile_s']:.1f}", r["load"]] for r in res["single_blocks"]]
        out.append(table(["block", "warm s", "s/step", "compile s", "load"], rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None) -> tuple[Settings, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N=20,000 and fewer configurations (~1 min)")
    p.add_argument("--restarts", type=int, help="number of restarts in sections 2-3 (default 64)")
    p.add_argument("--steps", type=int, help="S, steps per fit in section 1 (default 20)")
    p.add_argument("--restart-steps", type=int, help="steps per restart in sections 2-3 (default 5)")
    p.add_argument("--restart-rows", type=int, help="rows used in sections 2-3 (default 20,000)")
    p.add_argument("--sklearn-inits", type=int,
                   help="n_init measured for scikit-learn before extrapolating (default 4; "
                        "give the number of restarts to measure it directly)")
    p.add_argument("--sklearn-threads", type=int,
                   help="limit scikit-learn's BLAS threads (default: the library's default)")
    p.add_argument("--configs", help="section-1 configurations, e.g. full-float64,diag-float32 "
                                     "(default: all four)")
    p.add_argument("--sections", default="1,2,3,4", help="comma-separated sections to run")
    p.add_argument("--out", help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    s = quick_settings() if args.quick else Settings()
    for name in ("restarts", "steps", "restart_steps", "restart_rows", "sklearn_inits",
                 "sklearn_threads"):
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    if args.configs:
        s.configs = [tuple(c.split("-")) for c in args.configs.split(",")]
    s.base_steps = min(s.base_steps, s.steps - 1)
    s.restart_rows = min(s.restart_rows, s.num_points)
    return s, args


def main(argv=None) -> None:
    s, args = parse_args(argv)
    sections = {int(x) for x in args.sections.split(",") if x}
    machine = machine_description()
    print("\n".join(f"{k:13s} {v}" for k, v in machine.items()), flush=True)

    t_start = time.perf_counter()
    x = make_data(s.num_points, s.num_features, s.num_components, s.seed)
    init = initial_params(x, s.num_components, s.seed)
    # Warm up scikit-learn's and JAX's one-time costs (imports, thread pools) on tiny data.
    run_sklearn(x[:500], "diag", 2, s.sklearn_threads, max_iter=2)
    run_emjax(emjax.GaussianMixture(2, covariance_type="diag"), x[:500], key=jax.random.key(0),
              max_steps=2)

    res: dict = {}
    if 1 in sections:
        print("\nSection 1: seconds per step", flush=True)
        res["per_step"] = bench_per_step(s, x, init)
    if 2 in sections:
        print(f"\nSection 2: {s.restarts} restarts", flush=True)
        res["restarts"] = bench_restarts(s, x)
    if 3 in sections:
        print("\nSection 3: block sizes for restarts", flush=True)
        res["restart_blocks"] = bench_restart_blocks(s, x)
    if 4 in sections:
        print("\nSection 4: block sizes for one restart", flush=True)
        res["single_blocks"] = bench_single_blocks(s, x, init)
    total = time.perf_counter() - t_start

    print("\n" + report(s, machine, res))
    print(f"\nTotal benchmark time: {total:.0f} s; load average at the end {load()}")
    if args.out:
        payload = {"settings": asdict(s), "machine": machine, "results": res,
                   "total_seconds": total, "load_at_end": load()}
        Path(args.out).write_text(json.dumps(payload, indent=2, default=str))
        print(f"Results written to {args.out}")


if __name__ == "__main__":
    main()
