"""Benchmark: emjax.LatentDirichletAllocation against scikit-learn (batch and online) and
gensim, on a synthetic corpus drawn from LDA's generative process, in one process.

The corpus: ``K_true`` = 20 topics ``β_k ~ Dir(0.05)`` over V = 5,000 words, documents
with ``θ_d ~ Dir(0.1)`` and Poisson(200) tokens; 2,000 training documents and 500
held-out ones (fixed seed). Every library fits K = 20 topics with the same priors
(α = η = 1/K, scikit-learn's defaults) and the same inner loop (at most 100 sweeps per
document, stopping at a mean absolute change of γ below 1e-3).

Measured, for each method:

- **seconds per pass** over the training documents: the fit is timed at ``S`` and at
  ``S0 < S`` passes (all convergence tests off), and the difference divided by
  ``S − S0``, which cancels each library's fixed costs. emjax's compile time (first call
  minus a warm call) is reported separately; its other times are warm calls.
- **held-out perplexity** after ``S`` passes, with one definition for all (scikit-learn's:
  ``exp(−bound / words)`` on the held-out documents, `emjax.LatentDirichletAllocation.perplexity`)
  applied to each library's fitted topic–word Dirichlet parameters ``λ`` (scikit-learn's
  ``components_``, gensim's ``state.get_lambda()``). scikit-learn's own ``perplexity`` is
  printed next to it as a check.

Methods: emjax batch (float64, float32; the sparse layout `emjax.lda.SparseCounts`),
emjax online (`emjax.OnlineEM`, minibatches of 128 in row order, ρ_t = (t + 11)^−0.7 with
t counted from 0, the first update blending in the initial λ: scikit-learn's online update
exactly), scikit-learn batch and online (the same minibatch size and schedule), gensim ``LdaModel`` (online,
``chunksize`` 128, its own default schedule ``(1 + t)^−0.5``) if gensim is installed.

Every time is taken twice: wall-clock seconds, and CPU seconds of this process (all its
threads), each the best of ``--repeats`` runs. On a shared, busy machine wall-clock mostly
measures the other jobs; compare the two and the printed load averages before trusting a
wall-clock ratio. scikit-learn's and gensim's E-steps are loops over documents with
tiny BLAS calls: their BLAS runs on ``--blas-threads`` threads (default 1; more threads
only spin on these sizes and inflate the CPU time).

The per-pass time depends on which passes are timed: the first passes from the random
initial λ need the most sweeps per document (up to the limit of 100), later ones a median
of about 20.

Usage (from the repository root)::

    python benchmarks/lda.py                 # S = 20, S0 = 5
    python benchmarks/lda.py --quick         # S = 8, S0 = 3
    python benchmarks/lda.py --out lda.json

Nothing here asserts on a timing: the script measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # the float64 runs need it

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn.decomposition import LatentDirichletAllocation as SkLDA  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmark this checkout's emjax
import emjax  # noqa: E402

warnings.filterwarnings("ignore", category=emjax.ConvergenceWarning)

K = 20
BATCH = 128
OFFSET, DECAY = 10.0, 0.7


def make_corpus(seed=0, num_words=5000, num_train=2000, num_test=500, num_topics=20, length=200):
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(num_words, 0.05), num_topics)
    docs = []
    for _ in range(num_train + num_test):
        theta = rng.dirichlet(np.full(num_topics, 0.1))
        docs.append(rng.multinomial(rng.poisson(length), theta @ beta))
    X = np.asarray(docs, np.float64)
    return X[:num_train], X[num_train:]


def timed(fn):
    """``(result, wall seconds, cpu seconds)`` of ``fn()``, with JAX results waited for."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    jax.block_until_ready(jax.tree.leaves(out))
    return out, time.perf_counter() - wall, time.process_time() - cpu


def per_pass(run, s, s0, repeats=1):
    """Best-of-``repeats`` (wall, cpu) at ``s`` and ``s0`` passes; returns the per-pass
    times, the result at ``s`` passes and the whole time at ``s``."""
    best = {}
    out = None
    for steps in (s0, s):
        walls, cpus = [], []
        for _ in range(repeats):
            res, w, c = timed(lambda steps=steps: run(steps))
            walls.append(w)
            cpus.append(c)
            if steps == s:
                out = res
        best[steps] = (min(walls), min(cpus))
    wall = (best[s][0] - best[s0][0]) / (s - s0)
    cpu = (best[s][1] - best[s0][1]) / (s - s0)
    return wall, cpu, out, best[s]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="S = 8, S0 = 3")
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--passes0", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for scikit-learn and gensim")
    parser.add_argument("--out", type=str, default=None, help="write the results as JSON")
    args = parser.parse_args()
    S, S0 = (8, 3) if args.quick else (args.passes, args.passes0)

    train, test = make_corpus()
    V = train.shape[1]
    print(f"corpus: {train.shape[0]} training and {test.shape[0]} held-out documents, V = {V}, "
          f"{train.sum() / train.shape[0]:.0f} tokens and "
          f"{(train > 0).sum(1).mean():.0f} distinct words per document on average")
    print(f"jax {jax.__version__} ({jax.default_backend()}), scikit-learn {sklearn.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()}")
    lam0 = np.random.RandomState(0).gamma(100.0, 0.01, (K, V))
    model = emjax.LatentDirichletAllocation(num_topics=K)
    results = {}

    def held_out(lam):
        params = model.make_params(topic_word=np.asarray(lam, np.float64))
        return float(model.perplexity(params, test))

    # ---------------------------------------------------------------- emjax
    for dtype in ("float64", "float32"):
        corpus = emjax.lda.SparseCounts.from_dense(train.astype(dtype))
        p0 = model.make_params(topic_word=lam0.astype(dtype))
        for name, solver in (("batch", emjax.EM()),
                             ("online", emjax.OnlineEM(batch_size=BATCH, offset=OFFSET + 1.0,
                                                       decay=DECAY, shuffle=False))):
            if name == "online" and dtype == "float32":
                continue

            def run(steps, solver=solver, corpus=corpus, p0=p0):
                return emjax.fit(model, corpus, params0=p0, solver=solver, max_steps=steps,
                                 rtol=0.0, key=jax.random.key(0)).params

            _, first, _ = timed(lambda run=run: run(S0))
            _, warm, _ = timed(lambda run=run: run(S0))
            _, _, _ = timed(lambda run=run: run(S))  # compile the S-pass program too
            wall, cpu, params, whole = per_pass(run, S, S0, args.repeats)
            key = f"emjax {name} {dtype}"
            results[key] = dict(per_pass_wall=wall, per_pass_cpu=cpu, compile=first - warm,
                                fit_wall=whole[0], perplexity=held_out(params.topic_word))

    # ---------------------------------------------------------------- scikit-learn
    Xs = sp.csr_matrix(train)
    for name in ("batch", "online"):

        def run(steps, name=name):
            sk = SkLDA(K, learning_method=name, max_iter=steps, batch_size=BATCH,
                       learning_offset=OFFSET, learning_decay=DECAY, random_state=0)
            return sk.fit(Xs)

        with threadpool_limits(args.blas_threads):
            wall, cpu, sk, whole = per_pass(run, S, S0, args.repeats)
        results[f"scikit-learn {name}"] = dict(
            per_pass_wall=wall, per_pass_cpu=cpu, fit_wall=whole[0],
            perplexity=held_out(sk.components_), own_perplexity=float(sk.perplexity(test)))

    # scikit-learn's online fit with every document's γ started at 1 (emjax's start, and
    # scikit-learn's own in `transform`) instead of its random draw: the same algorithm as
    # emjax online, step for step (tests/test_lda.py checks this to 1e-10 on a small corpus).
    def run(steps):
        sk = SkLDA(K, learning_method="online", max_iter=steps, batch_size=BATCH,
                   learning_offset=OFFSET, learning_decay=DECAY, random_state=0)
        e_step = sk._e_step
        sk._e_step = lambda X, cal_sstats, random_init, parallel=None: e_step(
            X, cal_sstats, False, parallel)
        return sk.fit(Xs)

    with threadpool_limits(args.blas_threads):
        wall, cpu, sk, whole = per_pass(run, S, S0, args.repeats)
    results["scikit-learn online, γ0 = 1"] = dict(
        per_pass_wall=wall, per_pass_cpu=cpu, fit_wall=whole[0],
        perplexity=held_out(sk.components_))

    # ---------------------------------------------------------------- gensim
    try:
        import gensim
    except ImportError:
        print("gensim is not installed: skipped")
    else:
        bow = [[(int(v), int(row[v])) for v in np.flatnonzero(row)] for row in train]
        vocab = {i: str(i) for i in range(V)}

        def run(steps):
            return gensim.models.LdaModel(
                bow, num_topics=K, id2word=vocab, alpha=np.full(K, 1.0 / K), eta=1.0 / K,
                passes=steps, chunksize=BATCH, iterations=100, gamma_threshold=1e-3,
                eval_every=None, random_state=0)

        with threadpool_limits(args.blas_threads):
            wall, cpu, gm, whole = per_pass(run, S, S0, args.repeats)
        results[f"gensim {gensim.__version__} online"] = dict(
            per_pass_wall=wall, per_pass_cpu=cpu, fit_wall=whole[0],
            perplexity=held_out(gm.state.get_lambda()))

    # ---------------------------------------------------------------- report
    base = results["emjax batch float64"]["per_pass_cpu"]
    print(f"\n{S} passes (per-pass times from {S} and {S0} passes)\n")
    print(f"{'method':34s} {'s/pass wall':>11s} {'s/pass CPU':>11s} {'CPU / emjax':>12s} "
          f"{'compile s':>10s} {'held-out perplexity':>20s}")
    for key, r in results.items():
        extra = f" (own: {r['own_perplexity']:.2f})" if "own_perplexity" in r else ""
        comp = f"{r['compile']:.1f}" if "compile" in r else "-"
        print(f"{key:34s} {r['per_pass_wall']:11.3f} {r['per_pass_cpu']:11.3f} "
              f"{r['per_pass_cpu'] / base:12.2f} {comp:>10s} {r['perplexity']:20.2f}{extra}")
    print(f"\nload average at the end: {os.getloadavg()}")
    if args.out:
        Path(args.out).write_text(json.dumps(dict(passes=S, passes0=S0, results=results),
                                             indent=2))


if __name__ == "__main__":
    jnp.zeros(())  # start the backend before any timing
    main()
