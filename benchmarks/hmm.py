"""Benchmark: Baum–Welch for Gaussian hidden Markov models, emjax vs hmmlearn vs dynamax.

All libraries fit the same synthetic data (drawn from a known K = 8 state HMM with D = 4
Gaussian emissions that overlap, fixed seed) from the same initial parameters, in one
process, for covariance types "full" and "diag":

(a) **one long sequence** of T = 100,000 steps;
(b) **100 sequences** of 1,000 steps (hmmlearn: concatenated with ``lengths``; emjax: an
    ``emjax.hmm.Sequences`` padded batch; dynamax: an ``(S, T, D)`` array);
(c) **R = 64 restarts** of emjax on (a) and (b), vmapped in one program (a batch of
    ``params0`` with a leading restart axis). hmmlearn and dynamax have no batched
    restarts: their figure is the single-fit time × R, the cost of running the restarts
    one after another (the serial equivalent), which the script labels as such.

**Seconds per iteration.** Every convergence test is off (emjax ``rtol=atol=0``, hmmlearn
``tol=-inf``), each fit runs exactly ``n0`` and ``n1`` iterations, and the per-iteration
time is ``(t(n1) − t(n0)) / (n1 − n0)``, where ``t(n)`` is the best (smallest) of
``--repeats`` warm calls. The subtraction cancels each library's fixed cost: input checks
and conversions, dispatch, emjax's E-step at the final parameters (``max_steps = n`` runs
``n + 1`` E-steps) and, for hmmlearn, its Python set-up. That fixed cost is reported
apart (``t(n1) − n1 · s/iter``), and so is the compile time (first call − warm call).
emjax's ``n0`` and ``n1`` share one compiled program (``max_steps`` is traced, the ELBO
trace buffer is a power of two ``>= max_steps + 1``: ``_trace_capacity`` in
``emjax/_fit.py``); dynamax's ``fit_em`` is wrapped in an outer ``jax.jit`` (one program
per ``num_iters``: its scan length is static) and warmed up for each. Warm calls of all
libraries are interleaved, so a change of machine load affects them alike.

- **emjax**: ``emjax.fit(HiddenMarkovModel(K, GaussianEmissions(cov, reg_covar=0)),
  data, params0=..., max_steps=n, rtol=0)``; float64 (the same arithmetic as hmmlearn) and
  float32; with ``--parallel`` also ``HiddenMarkovModel(..., parallel=True)`` (the
  associative-scan forward–backward, meant for accelerators).
- **hmmlearn**: ``GaussianHMM(K, cov, n_iter=n, tol=-inf, init_params="",
  covars_prior=0, covars_weight=1)`` with ``implementation="log"`` (log-space recursions,
  like emjax) and ``"scaling"`` (scaled probabilities, hmmlearn's faster mode). With
  ``covars_prior=0`` hmmlearn's M-step is maximum likelihood, as emjax's with
  ``reg_covar=0`` (its default adds 0.01 to every covariance entry). hmmlearn computes in
  float64; its BLAS is limited to ``--blas-threads`` threads (default 1).
- **dynamax**: ``GaussianHMM`` (full) / ``DiagonalGaussianHMM`` (diag), ``fit_em`` with its
  default priors: Dirichlet(1.1) on the initial and transition probabilities and a weak
  normal-inverse-Wishart (full) / normal-inverse-gamma (diag) prior on the emissions, so
  its M-step is a MAP estimate and its iterates differ slightly from the other two.
  float64.

**Agreement check.** After ``n1`` iterations from the same start, the log-likelihood of
every library's parameters is evaluated by one function (emjax's
``HiddenMarkovModel.log_likelihood`` in float64) and compared with emjax float64's:
hmmlearn should agree to about 1e-8 relative or better (the same algorithm), dynamax
differs by its prior. The vmapped restart 0 (same start as the single fit) is compared
with a single fit of the same length.

Every time is taken as wall-clock seconds and as CPU seconds of this process (all its
threads, ``time.process_time``; not meaningful for work on a GPU). Nothing here asserts on
a timing. hmmlearn and dynamax are imported lazily: a missing one is skipped.

Usage (from the repository root)::

    python benchmarks/hmm.py                          # full run (tens of minutes on 2 cores)
    python benchmarks/hmm.py --quick                  # small data, smoke test (< 1 min)
    python benchmarks/hmm.py --parallel --no-hmmlearn --out hmm.json   # e.g. on a GPU
    python benchmarks/hmm.py --help                   # every option
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # float64 runs need it; float32 data stay float32

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmark this checkout's emjax
import emjax  # noqa: E402
from emjax._fit import _trace_capacity  # noqa: E402

warnings.filterwarnings("ignore", category=emjax.ConvergenceWarning)
logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # "not converging" with tol=-inf

DTYPES = {"float64": np.float64, "float32": np.float32}


# ---------------------------------------------------------------------------- settings
@dataclass
class Settings:
    num_states: int = 8  # K
    num_features: int = 4  # D
    long_length: int = 100_000  # (a): one sequence of T steps
    num_sequences: int = 100  # (b): S sequences ...
    sequence_length: int = 1_000  # ... of this many steps
    seed: int = 0
    steps: tuple = (17, 31)  # (n0, n1) of a single fit
    restart_steps: tuple = (2, 6)  # (n0, n1) of the R-restart fits
    repeats: int = 3  # warm calls per measurement (the best is kept)
    restart_repeats: int = 2
    restarts: int = 64  # R
    covariance_types: list = field(default_factory=lambda: ["full", "diag"])
    datasets: list = field(default_factory=lambda: ["long", "sequences"])
    emjax_dtypes: list = field(default_factory=lambda: ["float64", "float32"])
    parallel: bool = False  # also HiddenMarkovModel(..., parallel=True)
    sequential: bool = True  # HiddenMarkovModel(...) (the default, sequential scans)
    hmmlearn: bool = True
    hmmlearn_implementations: list = field(default_factory=lambda: ["log", "scaling"])
    dynamax: bool = True
    restarts_section: bool = True
    blas_threads: int | None = 1  # hmmlearn's BLAS threads (None: the library's default)
    block_size: int | None = None  # emjax.fit(block_size=...): sequences per block


def quick_settings() -> Settings:
    return Settings(long_length=3_000, num_sequences=10, sequence_length=300, steps=(2, 10),
                    restart_steps=(1, 5), repeats=2, restart_repeats=2, restarts=8,
                    covariance_types=["diag"], emjax_dtypes=["float64"])


# ---------------------------------------------------------------------------- data
def true_hmm(K: int, D: int, seed: int) -> dict:
    """The generating HMM: sticky transitions (0.85 on the diagonal + a random spread),
    means ~ N(0, 1.5²) per coordinate, covariances ``s_k (A_k A_kᵀ / D + 0.3 I)`` with
    ``s_k ∈ [0.3, 1]``: neighbouring states overlap, so EM is still moving after tens of
    iterations from a rough start."""
    rng = np.random.default_rng(seed)
    initial = rng.dirichlet(np.full(K, 5.0))
    transition = 0.85 * np.eye(K) + 0.15 * rng.dirichlet(np.ones(K), size=K)
    means = rng.normal(scale=1.5, size=(K, D))
    a = rng.normal(size=(K, D, D))
    scales = rng.uniform(0.3, 1.0, size=K)
    covs = scales[:, None, None] * (a @ np.swapaxes(a, 1, 2) / D + 0.3 * np.eye(D))
    return {"initial": initial, "transition": transition, "means": means, "covariances": covs}


def sample_hmm(hmm: dict, num_sequences: int, length: int, rng) -> np.ndarray:
    """``(S, T, D)`` float64 observations, all sequences stepped together."""
    cum_init = np.cumsum(hmm["initial"])
    cum_trans = np.cumsum(hmm["transition"], axis=1)
    K = cum_init.size
    u = rng.random((length, num_sequences))
    z = np.empty((num_sequences, length), np.int64)
    z[:, 0] = np.minimum(np.searchsorted(cum_init, u[0]), K - 1)
    for t in range(1, length):
        rows = cum_trans[z[:, t - 1]]
        z[:, t] = np.minimum((rows < u[t][:, None]).sum(axis=1), K - 1)
    chols = np.linalg.cholesky(hmm["covariances"])
    eps = rng.standard_normal(z.shape + (hmm["means"].shape[1],))
    return hmm["means"][z] + np.einsum("stij,stj->sti", chols[z], eps)


def make_datasets(s: Settings) -> dict:
    hmm = true_hmm(s.num_states, s.num_features, s.seed)
    rng = np.random.default_rng(s.seed + 1)
    long = sample_hmm(hmm, 1, s.long_length, rng)[0]
    seqs = sample_hmm(hmm, s.num_sequences, s.sequence_length, rng)
    return {"long": long, "sequences": seqs}


def frames(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1])


def initial_params(x: np.ndarray, K: int, seed: int) -> dict:
    """A rough start, shared by all libraries: uniform initial probabilities, transitions
    ``0.5 I + 0.5·Dirichlet(1)`` rows (as emjax's own initialisation), ``K`` distinct
    random frames as means, the data covariance (full) or variances (diag) for every
    state. ``seed`` picks the restart (restart 0 of the batch is the single fit's start)."""
    f = frames(x)
    rng = np.random.default_rng(seed)
    cov = np.cov(f, rowvar=False)
    return {
        "initial": np.full(K, 1.0 / K),
        "transition": 0.5 * np.eye(K) + 0.5 * rng.dirichlet(np.ones(K), size=K),
        "means": f[rng.choice(f.shape[0], size=K, replace=False)],
        "full": np.broadcast_to(cov, (K,) + cov.shape).copy(),
        "diag": np.broadcast_to(np.diag(cov), (K, cov.shape[0])).copy(),
    }


def batch_initial_params(x: np.ndarray, K: int, seed: int, R: int) -> dict:
    parts = [initial_params(x, K, seed + 1000 * r) for r in range(R)]
    return {k: np.stack([p[k] for p in parts]) for k in parts[0]}


# ---------------------------------------------------------------------------- timing
def timed(fn):
    """``fn()``'s result and its (wall, CPU) seconds."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


@dataclass
class Variant:
    """One library/configuration: ``run(n)`` fits ``n`` iterations (blocking) and returns
    ``(final params as a dict of float64 arrays, iterations run)``."""

    name: str
    run: object
    steps: tuple
    shared_program: bool = False  # both step counts run one compiled program (emjax)
    results: dict = field(default_factory=dict)
    first: dict = field(default_factory=dict)
    wall: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)


def measure(variants: list[Variant], repeats: int, label: str) -> None:
    """First calls (compile), then ``repeats`` rounds of warm calls, each round visiting
    every variant and both step counts in turn (interleaved)."""
    for v in variants:
        for i, n in enumerate(v.steps):
            out, w, c = timed(lambda v=v, n=n: v.run(n))
            v.first[n] = w
            v.results[n] = out
            # With one shared program, only the variant's very first call compiles.
            v.wall[n], v.cpu[n] = ([w], [c]) if v.shared_program and i > 0 else ([], [])
            if out[1] != n:
                print(f"  note {label} {v.name}: ran {out[1]} iterations, asked {n} (s/iter uses "
                      "the iterations run)", flush=True)
    for _ in range(repeats):
        for v in variants:
            for n in v.steps:
                _, w, c = timed(lambda v=v, n=n: v.run(n))
                v.wall[n].append(w)
                v.cpu[n].append(c)
    for v in variants:
        print(f"  {label} {v.name}: {summary(v)['s_per_iter']:.4g} s/iter, load {load()}",
              flush=True)


def summary(v: Variant) -> dict:
    n0, n1 = v.steps
    # Iterations actually run: with rtol = 0 a float32 fit can still stop early, when its
    # ELBO stops changing at all (emjax counts that as converged).
    i0, i1 = v.results[n0][1], v.results[n1][1]
    w0, w1 = min(v.wall[n0]), min(v.wall[n1])
    c0, c1 = min(v.cpu[n0]), min(v.cpu[n1])
    per = (w1 - w0) / (i1 - i0) if i1 > i0 else float("nan")
    return {
        "s_per_iter": per,
        "cpu_s_per_iter": (c1 - c0) / (i1 - i0) if i1 > i0 else float("nan"),
        "fit_s": w1,
        "fixed_s": w1 - i1 * per,
        "compile_s": v.first[n0] - w0,  # the first call of all (dynamax: of the n0 program)
        "steps": (n0, n1),
        "iterations": (i0, i1),
    }


def load() -> str:
    try:
        return "{:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


# ---------------------------------------------------------------------------- libraries
def optional(module: str):
    try:
        return importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 (missing, or broken by its own dependencies)
        print(f"  ({module} not available: {type(e).__name__}: {e}; skipped)", flush=True)
        return None


def emjax_modes(s: Settings) -> list[bool]:
    """The values of ``HiddenMarkovModel(parallel=...)`` to time."""
    return [False] * s.sequential + [True] * s.parallel


def emjax_model(K: int, cov: str, parallel: bool = False):
    return emjax.HiddenMarkovModel(
        K, emissions=emjax.GaussianEmissions(cov, reg_covar=0.0), parallel=parallel)


def emjax_data(x: np.ndarray, dtype):
    """Device arrays: one ``(T, D)`` sequence, or an ``emjax.hmm.Sequences`` batch."""
    if x.ndim == 2:
        return jnp.asarray(x, dtype)
    return emjax.hmm.Sequences(jnp.asarray(x, dtype),
                               jnp.full((x.shape[0],), x.shape[1], jnp.int32))


def emjax_params(model, init: dict, cov: str, dtype):
    return model.make_params(initial=init["initial"].astype(dtype),
                             transition=init["transition"].astype(dtype),
                             means=init["means"].astype(dtype),
                             covariances=init[cov].astype(dtype))


def emjax_run(model, data, params0, block_size=None):
    def run(n):
        sol = emjax.fit(model, data, params0=params0, max_steps=n, rtol=0.0, atol=0.0,
                        throw=False, block_size=block_size)
        jax.block_until_ready(sol.params)
        p = sol.params
        out = {"initial": p.initial, "transition": p.transition, "means": p.emissions.means,
               "covariances": p.emissions.covariances,
               "restart_log_likelihoods": sol.restart_elbos}
        return {k: np.asarray(a, np.float64) for k, a in out.items()}, int(sol.num_steps)
    return run


def hmmlearn_run(hmm_module, x: np.ndarray, init: dict, cov: str, impl: str, threads):
    from threadpoolctl import threadpool_limits

    K = init["initial"].size
    if x.ndim == 2:
        X, lengths = x, None
    else:
        X, lengths = frames(x), np.full(x.shape[0], x.shape[1])

    def run(n):
        h = hmm_module.GaussianHMM(K, covariance_type=cov, n_iter=n, tol=-np.inf,
                                   init_params="", params="stmc", implementation=impl,
                                   covars_prior=0.0, covars_weight=1.0)
        h.startprob_ = init["initial"].copy()
        h.transmat_ = init["transition"].copy()
        h.means_ = init["means"].copy()
        h.covars_ = init[cov].copy()
        with threadpool_limits(threads):
            h.fit(X, lengths)
        out = {"initial": h.startprob_, "transition": h.transmat_, "means": h.means_,
               "covariances": h._covars_}  # covars_ would expand diag to full matrices
        return {k: np.asarray(a, np.float64) for k, a in out.items()}, int(h.monitor_.iter)
    return run


def dynamax_run(dhmm, x: np.ndarray, init: dict, cov: str):
    K, D = init["means"].shape
    if cov == "full":
        model = dhmm.GaussianHMM(K, D)
        extra = {"emission_covariances": jnp.asarray(init["full"])}
    else:
        model = dhmm.DiagonalGaussianHMM(K, D)
        extra = {"emission_scale_diags": jnp.sqrt(jnp.asarray(init["diag"]))}
    params, props = model.initialize(
        jax.random.key(0), initial_probs=jnp.asarray(init["initial"]),
        transition_matrix=jnp.asarray(init["transition"]),
        emission_means=jnp.asarray(init["means"]), **extra)
    data = jnp.asarray(x)  # (T, D) or (S, T, D)
    programs = {}

    def run(n):
        if n not in programs:  # plain fit_em would re-trace and re-compile on every call
            programs[n] = jax.jit(
                lambda p, x, n=n: model.fit_em(p, props, x, num_iters=n, verbose=False))
        p, _ = jax.block_until_ready(programs[n](params, data))
        covs = p.emissions.covs if cov == "full" else p.emissions.scale_diags ** 2
        out = {"initial": p.initial.probs, "transition": p.transitions.transition_matrix,
               "means": p.emissions.means, "covariances": covs}
        return {k: np.asarray(a, np.float64) for k, a in out.items()}, n
    return run


def log_likelihood(K: int, cov: str, x: np.ndarray, p: dict) -> float:
    """Total float64 log-likelihood of ``p`` (any library's result) by emjax."""
    model = emjax_model(K, cov)
    transition = p["transition"] / p["transition"].sum(axis=1, keepdims=True)
    params = model.make_params(initial=p["initial"] / p["initial"].sum(), transition=transition,
                               means=p["means"], covariances=p["covariances"])
    return float(model.log_likelihood(params, emjax_data(x, np.float64)))


# ---------------------------------------------------------------------------- sections
def bench_single(s: Settings, data: dict, libs: dict) -> list[dict]:
    K = s.num_states
    shared = _trace_capacity(s.steps[0]) == _trace_capacity(s.steps[1])
    rows = []
    for dname in s.datasets:
        x = data[dname]
        init = initial_params(x, K, s.seed + 2)
        for cov in s.covariance_types:
            variants = []
            for par in emjax_modes(s):
                for dt in s.emjax_dtypes:
                    model = emjax_model(K, cov, par)
                    run = emjax_run(model, emjax_data(x, DTYPES[dt]),
                                    emjax_params(model, init, cov, DTYPES[dt]), s.block_size)
                    name = f"emjax{' parallel' if par else ''} {dt}"
                    variants.append(Variant(name, run, s.steps, shared_program=shared))
            if libs.get("hmmlearn"):
                for impl in s.hmmlearn_implementations:
                    variants.append(Variant(
                        f"hmmlearn {impl}",
                        hmmlearn_run(libs["hmmlearn"], x, init, cov, impl, s.blas_threads),
                        s.steps))
            if libs.get("dynamax"):
                variants.append(Variant("dynamax float64",
                                        dynamax_run(libs["dynamax"], x, init, cov), s.steps))
            label = f"{dname}/{cov}"
            measure(variants, s.repeats, label)

            n0, n1 = s.steps
            ref = next((v for v in variants if v.name == "emjax float64"), variants[0])
            ll_ref = log_likelihood(K, cov, x, ref.results[n1][0])
            ll_ref0 = log_likelihood(K, cov, x, ref.results[n0][0])
            ref_t = summary(ref)["s_per_iter"]
            for v in variants:
                ll = ll_ref if v is ref else log_likelihood(K, cov, x, v.results[n1][0])
                row = {"data": dname, "covariance_type": cov, "variant": v.name,
                       **summary(v), "vs_reference": summary(v)["s_per_iter"] / ref_t,
                       "reference": ref.name, "log_likelihood": ll,
                       "rel_diff_log_likelihood": (ll - ll_ref) / abs(ll_ref),
                       "reference_log_likelihood_gain_n0_to_n1": ll_ref - ll_ref0,
                       "iterations_run": [v.results[n][1] for n in v.steps],
                       "wall_s": v.wall, "cpu_s": v.cpu, "first_s": v.first, "load": load()}
                rows.append(row)
                print(f"    {v.name:24s} logL({n1}) = {ll:.10g} "
                      f"(rel. diff {row['rel_diff_log_likelihood']:+.1e})", flush=True)
    return rows


def bench_restarts(s: Settings, data: dict, single: list[dict]) -> list[dict]:
    K, R = s.num_states, s.restarts
    shared = _trace_capacity(s.restart_steps[0]) == _trace_capacity(s.restart_steps[1])
    rows = []
    for dname in s.datasets:
        x = data[dname]
        init = batch_initial_params(x, K, s.seed + 2, R)
        init0 = {k: v[0] for k, v in init.items()}
        for cov in s.covariance_types:
            variants = []
            for par in emjax_modes(s):
                for dt in s.emjax_dtypes:
                    model = emjax_model(K, cov, par)
                    run = emjax_run(model, emjax_data(x, DTYPES[dt]),
                                    emjax_params(model, init, cov, DTYPES[dt]), s.block_size)
                    variants.append(Variant(f"emjax{' parallel' if par else ''} {dt}", run,
                                            s.restart_steps, shared_program=shared))
            label = f"{dname}/{cov} x{R}"
            measure(variants, s.restart_repeats, label)

            # Restart 0 of the batch starts where the single fit starts: same result?
            n1 = s.restart_steps[1]
            model = emjax_model(K, cov)
            one = emjax_run(model, emjax_data(x, np.float64),
                            emjax_params(model, init0, cov, np.float64), s.block_size)(n1)[0]
            ll_one = log_likelihood(K, cov, x, one)
            ref = variants[0]
            ref_t = summary(ref)["s_per_iter"]
            for v in variants:
                sm = summary(v)
                ll0 = float(v.results[n1][0]["restart_log_likelihoods"][0])
                rows.append({"data": dname, "covariance_type": cov, "variant": v.name,
                             "measured": True, **sm, "per_restart_s": sm["s_per_iter"] / R,
                             "vs_reference": sm["s_per_iter"] / ref_t, "reference": ref.name,
                             "restart0_rel_diff_vs_single": (ll0 - ll_one) / abs(ll_one),
                             "wall_s": v.wall, "cpu_s": v.cpu, "first_s": v.first,
                             "load": load()})
                print(f"    {v.name:24s} restart 0 logL({n1}) vs a single fit: rel. diff "
                      f"{rows[-1]['restart0_rel_diff_vs_single']:+.1e}", flush=True)
            for r in single:
                same = (r["data"], r["covariance_type"]) == (dname, cov)
                if not same or r["variant"].startswith("emjax"):
                    continue
                t = r["s_per_iter"] * R
                rows.append({"data": dname, "covariance_type": cov, "variant": r["variant"],
                             "measured": False, "s_per_iter": t,
                             "cpu_s_per_iter": r["cpu_s_per_iter"] * R,
                             "per_restart_s": r["s_per_iter"], "vs_reference": t / ref_t,
                             "reference": ref.name})
    return rows


# ---------------------------------------------------------------------------- reporting
def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_description(libs: dict) -> dict:
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(line.split(":", 1)[1].strip() for line in f
                             if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = _cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]) or "unknown"
    if _cmd(["git", "-C", str(REPO), "status", "--porcelain", "emjax"]):
        commit += " (emjax/ has uncommitted changes)"
    try:
        import jaxlib
        jaxlib_version = jaxlib.__version__
    except Exception:  # noqa: BLE001
        jaxlib_version = "?"
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    devices = jax.devices()
    out = {
        "uname": " ".join(platform.uname()),
        "cpu": f"{cpu_model}, os.cpu_count() = {os.cpu_count()}, {mem:.0f} GiB RAM",
        "python": platform.python_version(),
        "jax": f"{jax.__version__} / jaxlib {jaxlib_version}; backend {jax.default_backend()}; "
               f"devices {[f'{d} ({d.device_kind})' for d in devices]}",
        "numpy": np.__version__,
        "emjax": f"{emjax.__version__} at {commit}",
    }
    gpu = _cmd(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader"])
    if gpu:
        out["gpu"] = gpu
    for name in ("hmmlearn", "dynamax"):
        mod = libs.get(name + "_package")
        out[name] = getattr(mod, "__version__", "?") if mod else "not used"
    out["load_at_start"] = load()
    return out


def md_table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in cells])


def fmt(t: float) -> str:
    if not math.isfinite(t):
        return "n/a"
    return f"{t:.3g}" if t < 100 else f"{t:.0f}"


def data_name(s: Settings, d: str) -> str:
    return (f"1 × {s.long_length:,}" if d == "long"
            else f"{s.num_sequences} × {s.sequence_length:,}")


def report(s: Settings, machine: dict, res: dict) -> str:
    K, D, R = s.num_states, s.num_features, s.restarts
    n0, n1 = s.steps
    out = ["## emjax vs hmmlearn vs dynamax: Gaussian HMM, Baum–Welch", "", "```"]
    out += [f"{k:13s} {v}" for k, v in machine.items()]
    out += ["```", "",
            f"K = {K} states, D = {D}, seed {s.seed}; hmmlearn BLAS threads: "
            f"{s.blas_threads or 'library default'}; emjax block_size: "
            f"{s.block_size or 'default'}.", ""]
    ref = (res.get("single") or [{}])[0].get("reference", "emjax float64")
    short = ref.replace("float", "f")
    if res.get("single"):
        out += [f"### One fit: seconds per iteration (n0 = {n0}, n1 = {n1}; best of "
                f"{s.repeats} warm calls)", ""]
        rows = [[data_name(s, r["data"]), r["covariance_type"], r["variant"],
                 "{}/{}".format(*r["iterations"]),
                 f"{r['s_per_iter']:.4f}", f"{r['cpu_s_per_iter']:.4f}",
                 f"{r['vs_reference']:.2f}", fmt(r["fit_s"]), fmt(r["fixed_s"]),
                 fmt(r["compile_s"]), f"{r['log_likelihood']:.6f}",
                 f"{r['rel_diff_log_likelihood']:+.1e}"] for r in res["single"]]
        out.append(md_table(["data (S × T)", "cov", "library", "iters", "s/iter", "cpu s/iter",
                             f"× {short}", f"fit({n1}) s", "fixed s", "compile s",
                             f"logL after {n1}", "rel. diff"], rows))
        gains = {(r["data"], r["covariance_type"]): r["reference_log_likelihood_gain_n0_to_n1"]
                 for r in res["single"]}
        out += ["",
                f"iters: iterations run by the fits asked for {n0} and {n1} (fewer: the fit "
                "stopped because its ELBO did not change at all, which emjax counts as converged "
                "even with rtol = 0). "
                f"s/iter = (t({n1}) − t({n0})) / (iterations between them), t = best warm "
                "wall-clock time; cpu "
                f"s/iter: the same with process CPU seconds (all threads). × {short} = s/iter ÷ "
                f"{ref}'s (> 1: slower than {ref}). fit s: one whole warm fit; "
                "fixed s = t(n1) − (its iterations)·s/iter (validation, conversions, dispatch, "
                "emjax's E-step at the final parameters); compile s = first call − warm call. logL: total "
                "float64 log-likelihood (emjax's function) of each library's parameters after "
                f"{n1} iterations from the same start; rel. diff vs {ref}. "
                "EM was still moving: emjax's logL rose by "
                + ", ".join(f"{g:.3g} ({data_name(s, d)}, {c})" for (d, c), g in gains.items())
                + f" from iteration {n0} to {n1}.", ""]
    if res.get("restarts"):
        r0, r1 = s.restart_steps
        out += [f"### {R} restarts: seconds per iteration for all {R} together "
                f"(emjax: n0 = {r0}, n1 = {r1}, best of {s.restart_repeats})", ""]
        rows = [[data_name(s, r["data"]), r["covariance_type"],
                 r["variant"] + ("" if r["measured"] else f" (serial: {R} × one fit)"),
                 f"{r['s_per_iter']:.3f}", f"{r['per_restart_s']:.4f}",
                 f"{r['vs_reference']:.2f}",
                 fmt(r.get("fit_s", float("nan"))), fmt(r.get("fixed_s", float("nan"))),
                 fmt(r.get("compile_s", float("nan"))),
                 f"{r['restart0_rel_diff_vs_single']:+.1e}" if r["measured"] else ""]
                for r in res["restarts"]]
        out.append(md_table(["data (S × T)", "cov", "library", f"s/iter (all {R})",
                             "s/iter per restart", f"× {short}", f"fit({r1}) s", "fixed s",
                             "compile s", "restart 0 vs single"], rows))
        out += ["",
                f"emjax: one `emjax.fit` with a batch of {R} `params0` (vmapped). hmmlearn and "
                f"dynamax have no batched restarts: their rows are NOT measured here but are "
                f"{R} × their single-fit s/iter from the table above (the restarts run one "
                "after another). restart 0 vs single: relative difference between the final "
                "log-likelihood of the batch's restart 0 and a single fit from the same start.",
                ""]
    if res.get("single") and len({r["variant"] for r in res["single"]}) > 1:
        out += [f"### Ratios (library s/iter ÷ {ref} s/iter; > 1: {ref} is faster)", ""]
        peers = [v for v in dict.fromkeys(r["variant"] for r in res["single"]) if v != ref]
        sections = [x for x in ("single", "restarts") if res.get(x)]
        rows = []
        for dname in s.datasets:
            for cov in s.covariance_types:
                row = [data_name(s, dname), cov]
                for section in sections:
                    for peer in peers:
                        m = [r for r in res.get(section) or [] if r["data"] == dname
                             and r["covariance_type"] == cov and r["variant"] == peer]
                        row.append(f"{m[0]['vs_reference']:.2f}" if m else "")
                rows.append(row)
        heads = [f"{p} ÷ {short}" for p in peers]
        out.append(md_table(["data", "cov"] + [f"{h} (1 fit)" for h in heads]
                            + [f"{h} ({R} restarts)" for h in heads if "restarts" in sections],
                            rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None) -> tuple[Settings, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="T = 3,000, 10 × 300, 8 restarts, float64 only (a smoke test, < 1 min)")
    p.add_argument("--parallel", action="store_true",
                   help="also time HiddenMarkovModel(..., parallel=True) (for accelerators)")
    p.add_argument("--no-sequential", action="store_true",
                   help="with --parallel: time only the parallel emjax model (the reference "
                        "for ratios is then emjax parallel)")
    p.add_argument("--no-hmmlearn", action="store_true", help="skip hmmlearn")
    p.add_argument("--no-dynamax", action="store_true", help="skip dynamax")
    p.add_argument("--no-restarts", action="store_true", help="skip the restarts section")
    p.add_argument("--covariance", help="comma-separated covariance types (default full,diag)")
    p.add_argument("--data", help="comma-separated data sets: long,sequences (default both)")
    p.add_argument("--dtypes", help="emjax dtypes (default float64,float32)")
    p.add_argument("--hmmlearn-impl", help="hmmlearn implementations (default log,scaling)")
    p.add_argument("--length", type=int, help="T of the long sequence (default 100,000)")
    p.add_argument("--sequences", type=int, nargs=2, metavar=("S", "T"),
                   help="number and length of the short sequences (default 100 1000)")
    p.add_argument("--steps", type=int, nargs=2, metavar=("N0", "N1"),
                   help="iterations of the two single fits (default 17 31)")
    p.add_argument("--restart-steps", type=int, nargs=2, metavar=("N0", "N1"),
                   help="iterations of the two restart fits (default 2 6)")
    p.add_argument("--restarts", type=int, help="R (default 64)")
    p.add_argument("--repeats", type=int, help="warm calls per single-fit time (default 3)")
    p.add_argument("--restart-repeats", type=int, help="warm calls per restart time (default 2)")
    p.add_argument("--blas-threads", type=int,
                   help="hmmlearn's BLAS threads (default 1; 0: the library's default)")
    p.add_argument("--block-size", type=int,
                   help="emjax.fit's block_size, in sequences (default: emjax's default, "
                        "16 sequences of 1,000 steps here; one long sequence is one block)")
    p.add_argument("--out", help="also write every raw time as JSON to this file")
    args = p.parse_args(argv)
    s = quick_settings() if args.quick else Settings()
    s.parallel = args.parallel
    s.sequential = not (args.no_sequential and args.parallel)
    s.hmmlearn = not args.no_hmmlearn
    s.dynamax = not args.no_dynamax
    s.restarts_section = not args.no_restarts
    if args.covariance:
        s.covariance_types = args.covariance.split(",")
    if args.data:
        s.datasets = args.data.split(",")
    if args.dtypes:
        s.emjax_dtypes = args.dtypes.split(",")
    if args.hmmlearn_impl:
        s.hmmlearn_implementations = args.hmmlearn_impl.split(",")
    if args.length:
        s.long_length = args.length
    if args.sequences:
        s.num_sequences, s.sequence_length = args.sequences
    if args.steps:
        s.steps = tuple(args.steps)
    if args.restart_steps:
        s.restart_steps = tuple(args.restart_steps)
    for name in ("restarts", "repeats", "restart_repeats", "block_size"):
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    if args.blas_threads is not None:
        s.blas_threads = args.blas_threads or None
    for a, b in (s.steps, s.restart_steps):
        if not 0 <= a < b:
            p.error("step counts must satisfy 0 <= N0 < N1")
        if _trace_capacity(a) != _trace_capacity(b):
            print(f"note: max_steps {a} and {b} compile two emjax programs "
                  f"(trace capacities {_trace_capacity(a)}, {_trace_capacity(b)})")
    return s, args


def main(argv=None) -> None:
    s, args = parse_args(argv)
    libs: dict = {}
    if s.hmmlearn:
        mod = optional("hmmlearn.hmm")
        if mod is not None and optional("threadpoolctl") is not None:
            libs["hmmlearn"], libs["hmmlearn_package"] = mod, optional("hmmlearn")
    if s.dynamax:
        mod = optional("dynamax.hidden_markov_model")
        if mod is not None:
            libs["dynamax"], libs["dynamax_package"] = mod, optional("dynamax")
    machine = machine_description(libs)
    print("\n".join(f"{k:13s} {v}" for k, v in machine.items()), flush=True)

    t_start = time.perf_counter()
    data = make_datasets(s)
    res: dict = {}
    print("\nOne fit: seconds per iteration", flush=True)
    res["single"] = bench_single(s, data, libs)
    if s.restarts_section:
        print(f"\n{s.restarts} restarts", flush=True)
        res["restarts"] = bench_restarts(s, data, res["single"])
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
