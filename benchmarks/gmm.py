"""Benchmark: emjax.GaussianMixture against scikit-learn's GaussianMixture on a CPU.

Both libraries see the same synthetic data (a mixture of K Gaussians with random full
covariances, fixed seed) in the same process. Four things are measured:

1. **Seconds per EM step** for each covariance type ("full", "diag") and dtype
   (float64, float32). Both libraries start from the same parameters (K data points as
   means, the data covariance for every component, equal weights) and run with every
   convergence test off (emjax ``rtol=atol=0``, scikit-learn ``tol=0``), once with ``S``
   and once with ``S0 < S`` steps. The per-step time is the difference of the two fit
   times divided by ``S - S0``, which cancels each fit's fixed cost: input validation,
   scikit-learn's initial parameter estimate and final E-step, emjax's final
   log-likelihood pass and dispatch. emjax's compile time (first call minus a warm call)
   is reported separately; all other emjax times are warm calls.
2. **R restarts** (default 64): ``emjax.fit(..., key=..., num_restarts=R)`` (the restarts
   vmapped in one program) against ``GaussianMixture(n_init=R, init_params="k-means++")``,
   and against R times one single-restart emjax fit (what vmapping gains).
3. **Block sizes for R restarts**: a grid of the ``block_size`` and ``restart_batch_size``
   options of `emjax.fit`, to check the heuristic ``default_block_size`` in
   ``emjax/_accumulate.py``.
4. **Block sizes for one restart** (full covariance, float64, all rows).

Sections 2 and 3 run on the first ``--restart-rows`` rows (the rows are in random order)
with ``--restart-steps`` steps (section 3: 2 steps, only relative times matter there):
64 restarts on 100,000 rows for 20 steps would be about 64 single fits' worth of work, too
much for a run of minutes on a small CPU. scikit-learn runs its inits one after another,
so its time for R inits is extrapolated linearly from 1 and ``--sklearn-inits`` inits
(``--sklearn-inits 64`` measures it directly).

Every time is taken twice: wall-clock seconds, and CPU seconds of this process (all its
threads; ``time.process_time``). On a quiet machine, wall-clock is what a user sees. On a
shared, busy machine wall-clock mostly measures the other jobs, while CPU seconds still
measure the work done; compare the two and the printed load averages before trusting a
wall-clock ratio. scikit-learn's BLAS threads can be limited with ``--sklearn-threads``
(OpenBLAS's spinning threads slow down dramatically when the cores are oversubscribed).

Usage (from the repository root)::

    python benchmarks/gmm.py                      # full run, N = 100,000
    python benchmarks/gmm.py --quick              # N = 20,000, fewer configurations
    python benchmarks/gmm.py --restarts 64 --out results.json
    python benchmarks/gmm.py --sections 1 --configs full-float64 --sklearn-threads 1

Nothing here asserts on a timing: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmark this checkout's emjax
import emjax  # noqa: E402
from emjax._accumulate import default_block_size  # noqa: E402

warnings.filterwarnings("ignore", category=emjax.ConvergenceWarning)
warnings.filterwarnings("ignore", category=SklearnConvergenceWarning)

DTYPES = {"float64": np.float64, "float32": np.float32}
ALL_CONFIGS = [("full", "float64"), ("full", "float32"), ("diag", "float64"), ("diag", "float32")]


# ---------------------------------------------------------------------------- settings
@dataclass
class Settings:
    num_points: int = 100_000
    num_features: int = 16
    num_components: int = 16
    seed: int = 0
    steps: int = 20  # S
    base_steps: int = 5  # S0
    repeats: int = 3  # warm calls per measurement
    stat: str = "median"  # how repeated calls are summarised: "median" or "min"
    configs: list = field(default_factory=lambda: list(ALL_CONFIGS))
    restarts: int = 64
    restart_rows: int = 20_000
    restart_steps: int = 5
    restart_configs: list = field(default_factory=lambda: list(ALL_CONFIGS))
    sklearn_inits: int = 4
    explore_configs: list = field(default_factory=lambda: [("full", "float64"), ("diag", "float64")])
    explore_steps: int = 2
    # (block_size, restart_batch_size); None means emjax's default.
    explore_grid: list = field(default_factory=lambda: [
        (64, None), (None, None), (1024, None), (4096, None),
        (None, 16), (1024, 16), (None, 8),
    ])
    single_block_sizes: list = field(default_factory=lambda: [256, 512, 1024, 2048, 4096, 8192])
    sklearn_threads: int | None = None  # BLAS threads for scikit-learn; None: its default


def quick_settings() -> Settings:
    return Settings(
        num_points=20_000, steps=10, base_steps=3, repeats=1,
        configs=[("full", "float64"), ("diag", "float32")],
        restart_rows=5_000, restart_steps=3, restart_configs=[("full", "float64")],
        sklearn_inits=2,
        explore_configs=[("full", "float64")],
        explore_grid=[(None, None), (1024, None), (None, 16)],
        single_block_sizes=[1024, 4096],
    )


# ---------------------------------------------------------------------------- data
def make_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """``n`` float64 points from a mixture of ``k`` Gaussians in ``d`` dimensions.

    Means are N(0, 1.2²) per coordinate (two means are ≈ 6.8 apart on average); the
    covariances are ``s_k (A_k A_kᵀ / d + 0.2 I)`` with a random ``A_k`` and
    ``s_k ∈ [0.3, 1]``, so the clusters are distinct but overlap enough that EM keeps
    moving for many steps. Rows are in random order: the first rows are a fair subsample.
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=1.2, size=(k, d))
    a = rng.normal(size=(k, d, d)) / np.sqrt(d)
    scales = rng.uniform(0.3, 1.0, size=k)
    chols = np.linalg.cholesky(scales[:, None, None] * (a @ np.swapaxes(a, 1, 2) + 0.2 * np.eye(d)))
    z = rng.choice(k, size=n, p=weights)
    x = np.empty((n, d))
    for j in range(k):
        rows = np.flatnonzero(z == j)
        x[rows] = means[j] + rng.standard_normal((rows.size, d)) @ chols[j].T
    return x


def initial_params(x: np.ndarray, k: int, seed: int) -> dict:
    """The shared starting point of section 1, like scikit-learn's "random_from_data":
    ``k`` distinct data points as means, the data's covariance (full) or variances (diag)
    for every component, equal weights. Float64; cast to the data's dtype when used."""
    rng = np.random.default_rng(seed + 1)
    cov = np.cov(x, rowvar=False)
    return {
        "weights": np.full(k, 1.0 / k),
        "means": x[rng.choice(x.shape[0], size=k, replace=False)],
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
    """The same start for scikit-learn, which takes precisions (inverse covariances)."""
    cov = init[covariance_type]
    precisions = np.linalg.inv(cov) if covariance_type == "full" else 1.0 / cov
    return {"weights_init": init["weights"], "means_init": init["means"],
            "precisions_init": precisions}


# ---------------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Wall-clock and process-CPU seconds of repeated calls."""

    wall: list = field(default_factory=list)
    cpu: list = field(default_factory=list)


def timed(fn, timing: Timing):
    """Call ``fn()``, append its wall and CPU seconds to ``timing``, return its result."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    timing.wall.append(time.perf_counter() - w0)
    timing.cpu.append(time.process_time() - c0)
    return out


def first_and_warm(fn, repeats: int):
    """A first call (compile + run for emjax), then ``repeats`` warm calls."""
    first, warm = Timing(), Timing()
    out = timed(fn, first)
    for _ in range(repeats):
        out = timed(fn, warm)
    return first, warm, out


def summarise(s: Settings, values: list) -> float:
    return min(values) if s.stat == "min" else statistics.median(values)


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


# ---------------------------------------------------------------------------- sections
def bench_per_step(s: Settings, x64: np.ndarray, init: dict) -> list[dict]:
    """Section 1: seconds per EM step from the same initial parameters."""
    S, S0, K = s.steps, s.base_steps, s.num_components
    results = []
    for ct, dt in s.configs:
        x = x64.astype(DTYPES[dt])
        model = emjax.GaussianMixture(K, covariance_type=ct)
        p0 = emjax_params0(model, init, DTYPES[dt])
        row = {"covariance_type": ct, "dtype": dt, "load_before": load()}

        emjax_fit = {n: partial(run_emjax, model, x, params0=p0, max_steps=n) for n in (S, S0)}
        sklearn_fit = {n: partial(run_sklearn, x, ct, K, s.sklearn_threads, max_iter=n,
                                  init_params="random_from_data", **sklearn_init_kwargs(ct, init))
                       for n in (S, S0)}
        first = {n: Timing() for n in (S, S0)}
        for n in (S, S0):  # compile
            timed(emjax_fit[n], first[n])
        # Warm calls of both libraries interleaved, so a change of load hits both alike.
        em_t = {n: Timing() for n in (S, S0)}
        sk_t = {n: Timing() for n in (S, S0)}
        sols, fitted = {}, {}
        for _ in range(s.repeats):
            for n in (S, S0):
                sols[n] = timed(emjax_fit[n], em_t[n])
                fitted[n] = timed(sklearn_fit[n], sk_t[n])
        em = {n: {"first": asdict(first[n]), "warm": asdict(em_t[n]),
                  "num_steps": int(sols[n].num_steps),
                  "mean_loglik": float(sols[n].log_likelihood) / x.shape[0],
                  "param_dtype": str(sols[n].params.means.dtype)} for n in (S, S0)}
        sk = {n: {"times": asdict(sk_t[n]), "n_iter": int(fitted[n].n_iter_)} for n in (S, S0)}
        with threadpool_limits(s.sklearn_threads):  # untimed: did both do the same thing?
            sk[S]["mean_loglik"] = float(fitted[S].score(x))

        row.update(emjax=em, sklearn=sk, load_after=load(),
                   loglik_diff=em[S]["mean_loglik"] - sk[S]["mean_loglik"])
        for clock in ("wall", "cpu"):
            e_fit = summarise(s, em[S]["warm"][clock])
            e_base = summarise(s, em[S0]["warm"][clock])
            k_fit = summarise(s, sk[S]["times"][clock])
            k_base = summarise(s, sk[S0]["times"][clock])
            row[clock] = {
                "emjax_compile_s": em[S]["first"][clock][0] - e_fit,
                "emjax_fit_s": e_fit, "sklearn_fit_s": k_fit,
                "emjax_step_s": (e_fit - e_base) / (S - S0),
                "sklearn_step_s": (k_fit - k_base) / (S - S0),
                # simple estimates for reference: emjax runs S+1 E-steps, sklearn S steps
                # plus an initial M-step and a final E-step
                "emjax_step_simple_s": e_fit / (S + 1),
                "sklearn_step_simple_s": k_fit / S,
            }
            row[clock]["step_ratio"] = row[clock]["sklearn_step_s"] / row[clock]["emjax_step_s"]
        results.append(row)
        w, c = row["wall"], row["cpu"]
        print(f"  {ct}/{dt}: emjax {w['emjax_step_s']:.4f} s/step ({c['emjax_step_s']:.4f} cpu), "
              f"sklearn {w['sklearn_step_s']:.4f} s/step ({c['sklearn_step_s']:.4f} cpu), "
              f"load {row['load_after']}", flush=True)
    return results


def bench_restarts(s: Settings, x64: np.ndarray) -> list[dict]:
    """Section 2: R restarts: emjax (vmapped) vs scikit-learn's n_init vs R single fits."""
    R, S, K = s.restarts, s.restart_steps, s.num_components
    key = jax.random.key(0)
    results = []
    for ct, dt in s.restart_configs:
        x = x64[: s.restart_rows].astype(DTYPES[dt])
        model = emjax.GaussianMixture(K, covariance_type=ct)
        row = {"covariance_type": ct, "dtype": dt, "rows": x.shape[0], "steps": S,
               "restarts": R, "load_before": load(),
               "emjax_block_size": default_block_size(x.shape[0], model.row_cost(x), R)}

        first_r, warm_r, sol_r = first_and_warm(
            partial(run_emjax, model, x, key=key, num_restarts=R, max_steps=S),
            max(1, s.repeats - 1))
        _, warm_1, _ = first_and_warm(
            partial(run_emjax, model, x, key=key, num_restarts=1, max_steps=S), s.repeats)

        inits = sorted({1, min(s.sklearn_inits, R)})
        sk = {}
        for n_init in inits:
            sk[n_init] = Timing()
            timed(partial(run_sklearn, x, ct, K, s.sklearn_threads, max_iter=S, n_init=n_init,
                          init_params="k-means++"), sk[n_init])
        steps_done = np.asarray(sol_r.restart_num_steps)
        row.update(
            emjax_first=asdict(first_r), emjax_warm=asdict(warm_r), emjax_single_warm=asdict(warm_1),
            sklearn_times={str(n): asdict(t) for n, t in sk.items()},
            sklearn_extrapolated=R not in sk,
            emjax_restart_steps=[int(steps_done.min()), int(steps_done.max())],
            emjax_best_mean_loglik=float(sol_r.log_likelihood) / x.shape[0],
            load_after=load(),
        )
        for clock in ("wall", "cpu"):
            if R in sk:
                sk_total = getattr(sk[R], clock)[0]
            else:  # n_init runs its inits one after another: time = a + b * n_init
                lo, hi = inits
                t_lo, t_hi = getattr(sk[lo], clock)[0], getattr(sk[hi], clock)[0]
                sk_total = t_lo + (R - lo) * (t_hi - t_lo) / (hi - lo)
            em_total = summarise(s, getattr(warm_r, clock))
            em_single = summarise(s, getattr(warm_1, clock))
            row[clock] = {
                "emjax_total_s": em_total, "sklearn_total_s": sk_total,
                "ratio": sk_total / em_total,
                "emjax_single_s": em_single, "emjax_single_times_R_s": R * em_single,
                "vmap_gain": R * em_single / em_total,
                "emjax_compile_s": getattr(first_r, clock)[0] - em_total,
            }
        results.append(row)
        w = row["wall"]
        print(f"  {ct}/{dt}: emjax {w['emjax_total_s']:.2f} s, sklearn {w['sklearn_total_s']:.2f} s"
              f"{' (extrapolated)' if row['sklearn_extrapolated'] else ''}, "
              f"{R} x single {w['emjax_single_times_R_s']:.2f} s, load {row['load_after']}",
              flush=True)
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
            effective = block or default_block_size(x.shape[0], model.row_cost(x), parallel)
            first, warm, _ = first_and_warm(
                partial(run_emjax, model, x, key=key, num_restarts=R, max_steps=S,
                        block_size=block, restart_batch_size=batch), 1)
            row = {"covariance_type": ct, "dtype": dt, "block_size": effective,
                   "default_block": block is None, "restart_batch_size": parallel,
                   "wall_s": warm.wall[0], "cpu_s": warm.cpu[0],
                   "compile_s": first.wall[0] - warm.wall[0], "load": load()}
            results.append(row)
            print(f"  {ct}/{dt} block={effective}{'*' if block is None else ''} "
                  f"batch={parallel}: {row['wall_s']:.2f} s ({row['cpu_s']:.2f} cpu), "
                  f"load {row['load']}", flush=True)
    return results


def bench_single_blocks(s: Settings, x64: np.ndarray, init: dict) -> list[dict]:
    """Section 4: block_size for one restart (full, float64, all rows, S0 steps)."""
    K, S = s.num_components, s.base_steps
    model = emjax.GaussianMixture(K, covariance_type="full")
    p0 = emjax_params0(model, init, np.float64)
    default = default_block_size(x64.shape[0], model.row_cost(x64), 1)
    results = []
    for block in sorted(set(s.single_block_sizes) | {default}):
        first, warm, _ = first_and_warm(
            partial(run_emjax, model, x64, params0=p0, max_steps=S, block_size=block), s.repeats)
        wall, cpu = summarise(s, warm.wall), summarise(s, warm.cpu)
        row = {"block_size": block, "default_block": block == default, "steps": S,
               "wall_s": wall, "cpu_s": cpu, "step_s": wall / (S + 1), "cpu_step_s": cpu / (S + 1),
               "compile_s": first.wall[0] - wall, "load": load()}
        results.append(row)
        print(f"  block={block}{'*' if block == default else ''}: {wall:.3f} s ({cpu:.3f} cpu), "
              f"load {row['load']}", flush=True)
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
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "emjax"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " (emjax/ has uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "uname": " ".join(platform.uname()),
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "emjax": f"{emjax.__version__} at {commit}",
        "jax_devices": [str(d) for d in jax.devices()],
        "blas": [f"{i['internal_api']} {i.get('version')} threads={i['num_threads']}"
                 for i in threadpool_info()],
        "load_at_start": load(),
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def report(s: Settings, machine: dict, res: dict) -> str:
    out = ["emjax vs scikit-learn GaussianMixture", ""]
    out += [f"  {k:13s} {v}" for k, v in machine.items()]
    out += ["", f"Data: N={s.num_points:,}, D={s.num_features}, K={s.num_components}, "
            f"seed={s.seed}. Repeated calls summarised by their {s.stat}. scikit-learn BLAS "
            f"threads: {s.sklearn_threads or 'library default'}."]

    if res.get("per_step"):
        S, S0 = s.steps, s.base_steps
        out += ["", f"1. Seconds per EM step (same start; S={S}, S0={S0}; {s.repeats} warm calls each)",
                ""]
        rows = []
        for r in res["per_step"]:
            w, c = r["wall"], r["cpu"]
            steps = f"{r['emjax'][S]['num_steps']}/{r['sklearn'][S]['n_iter']}"
            if r["emjax"][S]["num_steps"] < S:
                steps += " (emjax converged exactly)"
            rows.append([f"{r['covariance_type']}/{r['dtype']}",
                         f"{w['emjax_step_s']:.4f}", f"{w['sklearn_step_s']:.4f}",
                         f"{w['step_ratio']:.2f}",
                         f"{c['emjax_step_s']:.4f}", f"{c['sklearn_step_s']:.4f}",
                         f"{c['step_ratio']:.2f}",
                         f"{w['emjax_fit_s']:.2f}", f"{w['sklearn_fit_s']:.2f}",
                         f"{w['emjax_compile_s']:.1f}", f"{r['loglik_diff']:.1e}", steps,
                         r["load_after"]])
        out.append(table(["config", "emjax s/step", "sklearn s/step", "ratio",
                          "emjax cpu/step", "sklearn cpu/step", "cpu ratio",
                          f"emjax fit({S}) s", f"sklearn fit({S}) s", "compile s",
                          "Δloglik/pt", "steps e/s", "load"], rows))
        out += ["",
                f"  s/step = (fit time at S={S} steps − at S0={S0} steps) / (S − S0), for both",
                "  libraries: this cancels each fit's fixed cost (validation, sklearn's initial M-step",
                "  and final E-step, emjax's final log-likelihood pass and dispatch). The simple",
                f"  estimates, emjax fit/{S + 1} (S+1 E-steps) and sklearn fit/{S}, are in the JSON.",
                "  cpu/step: the same with CPU seconds of the process (all threads).",
                "  ratio = sklearn / emjax (> 1: emjax faster).  fit(S) s: one whole warm fit.",
                "  compile s = emjax first call − warm call.  Δloglik/pt: emjax − sklearn mean",
                "  log-likelihood after S steps from the same start (≈ 0: the same computation)."]

    if res.get("restarts"):
        r0, R = res["restarts"][0], s.restarts
        out += ["", f"2. {R} restarts (first {r0['rows']:,} rows, {r0['steps']} steps, k-means++ "
                "initialisation in both libraries; seconds per whole fit)", ""]
        rows = []
        for r in res["restarts"]:
            w, c, x = r["wall"], r["cpu"], "~" if r["sklearn_extrapolated"] else ""
            rows.append([f"{r['covariance_type']}/{r['dtype']}",
                         f"{w['emjax_total_s']:.2f}", f"{w['sklearn_total_s']:.2f}{x}",
                         f"{w['ratio']:.2f}", f"{w['emjax_single_times_R_s']:.2f}",
                         f"{w['vmap_gain']:.2f}",
                         f"{c['emjax_total_s']:.2f}", f"{c['sklearn_total_s']:.2f}{x}",
                         f"{c['ratio']:.2f}", f"{c['vmap_gain']:.2f}",
                         r["emjax_block_size"], f"{w['emjax_compile_s']:.1f}",
                         "{}-{}".format(*r["emjax_restart_steps"]), r["load_after"]])
        out.append(table(["config", "emjax s", "sklearn s", "ratio", f"{R} x single s",
                          "vmap gain", "emjax cpu", "sklearn cpu", "cpu ratio", "cpu vmap gain",
                          "block", "compile s", "steps", "load"], rows))
        out += ["",
                f"  emjax s: warm fit(num_restarts={R}) at the default block size (column 'block').",
                f"  sklearn s: GaussianMixture(n_init={R}); '~' = extrapolated linearly from",
                f"  n_init=1 and n_init={min(s.sklearn_inits, R)} (its inits run one after another).",
                f"  ratio = sklearn / emjax.  vmap gain = {R} x (warm single-restart emjax fit) /",
                "  emjax s (> 1: the vmapped restarts beat running them one by one)."]

    if res.get("restart_blocks"):
        out += ["", f"3. block_size x restart_batch_size, {s.restarts} restarts "
                f"(first {s.restart_rows:,} rows, {s.explore_steps} steps; one warm fit)", ""]
        rows = [[f"{r['covariance_type']}/{r['dtype']}",
                 f"{r['block_size']}{'*' if r['default_block'] else ''}",
                 r["restart_batch_size"], f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}",
                 f"{r['compile_s']:.1f}", r["load"]] for r in res["restart_blocks"]]
        out.append(table(["config", "block", "restart batch", "wall s", "cpu s", "compile s",
                          "load"], rows))
        out += ["", "  * = emjax's default for that restart batch.  compile s = first − warm call",
                "  (≈ 0 where an earlier section already compiled the same program)."]

    if res.get("single_blocks"):
        S0 = s.base_steps
        out += ["", f"4. block_size for one restart (full/float64, N={s.num_points:,}, {S0} steps "
                f"from the section-1 start; per step = warm fit / {S0 + 1})", ""]
        rows = [[f"{r['block_size']}{'*' if r['default_block'] else ''}", f"{r['wall_s']:.3f}",
                 f"{r['step_s']:.4f}", f"{r['cpu_step_s']:.4f}", f"{r['compile_s']:.1f}",
                 r["load"]] for r in res["single_blocks"]]
        out.append(table(["block", "wall s", "s/step", "cpu s/step", "compile s", "load"], rows))
        out += ["", "  * = emjax's default block size for one restart."]
    return "\n".join(out)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None) -> tuple[Settings, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="N=20,000 and fewer configurations (about a minute on a quiet machine)")
    p.add_argument("--restarts", type=int, help="restarts in sections 2 and 3 (default 64)")
    p.add_argument("--steps", type=int, help="S, the steps of a section-1 fit (default 20)")
    p.add_argument("--repeats", type=int, help="warm calls per measurement (default 3)")
    p.add_argument("--stat", choices=["median", "min"],
                   help="summary of repeated calls (default median; min suits a busy machine)")
    p.add_argument("--restart-steps", type=int, help="steps per restart in section 2 (default 5)")
    p.add_argument("--restart-rows", type=int, help="rows used in sections 2 and 3 (default 20,000)")
    p.add_argument("--sklearn-inits", type=int,
                   help="largest n_init run for scikit-learn before extrapolating (default 4; "
                        "the number of restarts measures it directly)")
    p.add_argument("--sklearn-threads", type=int,
                   help="limit scikit-learn's BLAS threads (default: the library's default)")
    p.add_argument("--configs", help="section-1 configurations, e.g. full-float64,diag-float32 "
                                     "(default: all four)")
    p.add_argument("--sections", default="1,2,3,4", help="comma-separated sections to run")
    p.add_argument("--out", help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    s = quick_settings() if args.quick else Settings()
    for name in ("restarts", "steps", "repeats", "stat", "restart_steps", "restart_rows",
                 "sklearn_inits", "sklearn_threads"):
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
    # One-time costs (thread pools, lazy imports) are paid here, on tiny data.
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
    print(f"\nTotal benchmark time: {total:.0f} s; load average at the end: {load()}")
    if args.out:
        payload = {"settings": asdict(s), "machine": machine, "results": res,
                   "total_seconds": total, "load_at_end": load()}
        Path(args.out).write_text(json.dumps(payload, indent=2, default=str))
        print(f"Results written to {args.out}")


if __name__ == "__main__":
    main()
