"""The ``emjax`` command-line program.

- ``emjax demo`` fits Gaussian mixtures with K = 1..6 components and every covariance type
  to the bundled Old Faithful data, prints a BIC table, reports the model with the lowest
  BIC and, when matplotlib is installed, draws it.
- ``emjax fit DATA --model gmm|kmeans|hmm|bgmm|lda`` fits one model to a CSV or ``.npy``
  file (LDA: a document-term matrix or a folder of ``.txt`` documents), prints a summary
  and the fitted parameters, and saves model and parameters with `emjax.save`.
- ``emjax predict PARAMS.npz DATA`` loads such a file and writes labels, probabilities,
  Viterbi states or document-topic distributions as CSV.
- ``emjax select DATA`` chooses a Gaussian mixture by BIC or ICL over a grid of component
  counts and covariance types, as R's mclust does.

Errors the user can act on (a missing or unreadable file, a non-numeric column, missing
values, a file that is not an emjax model) are one line on stderr and exit code 1;
``--traceback`` shows the Python traceback instead. Progress lines go to stderr only when
it is a terminal (``--quiet`` turns them off).

The program may turn on float64 (``--float64``, ``--dtype float64``) and an on-disk cache
of compiled programs for its own run; importing the library never changes JAX's
configuration, and `main` restores it for a Python caller.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

import emjax

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
MAX_COMPONENTS = 6
_MAX_SEED = 2**32 - 1


class _CommandError(Exception):
    """A runtime problem the user can fix; reported as one line, exit code 1."""


# --------------------------------------------------------------------------- arguments
def _int_at_least(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emjax",
        description="emjax: expectation-maximization in JAX, jitted and vmapped over restarts.",
        epilog="Try 'emjax demo' for Gaussian mixtures on the Old Faithful data.",
    )
    parser.add_argument("--version", action="version", version=f"emjax {emjax.__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on an error, show the full Python traceback instead of a one-line message",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="fit Gaussian mixtures to Old Faithful and choose one by BIC",
        description=(
            "Fit emjax.GaussianMixture with K = 1..6 components and each covariance type "
            "('full', 'diag', 'spherical', 'tied') to the Old Faithful geyser data, print "
            "log-likelihood and BIC for every fit, report the model with the lowest BIC and "
            "plot it. Every fit uses key=jax.random.key(SEED), so each row of the table can "
            "be reproduced on its own with emjax.fit."
        ),
    )
    demo.add_argument(
        "--restarts",
        type=_int_at_least(1),
        default=256,
        metavar="N",
        help="random restarts per fit, run in parallel by vmap (default: %(default)s)",
    )
    demo.add_argument(
        "--max-steps",
        type=_int_at_least(0),
        default=300,
        metavar="N",
        help="most EM steps per restart (default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=_int_at_least(0, _MAX_SEED),
        default=0,
        help="seed of the PRNG key jax.random.key(SEED) (default: %(default)s)",
    )
    demo.add_argument(
        "--float64",
        action="store_true",
        help="compute in float64 (turns on jax_enable_x64 for this run only)",
    )
    demo.add_argument(
        "--output",
        default="old_faithful_gmm.png",
        metavar="PATH",
        help="where to write the plot of the chosen model (default: %(default)s)",
    )
    demo.add_argument("--no-plot", action="store_true", help="do not write the plot")
    demo.add_argument(
        "--cache-dir",
        default=os.path.join("~", ".cache", "emjax", "jax"),
        metavar="DIR",
        help="where compiled programs are kept between runs (default: %(default)s)",
    )
    demo.add_argument("--no-cache", action="store_true",
                      help="do not keep compiled programs on disk")
    # Accept --traceback after the subcommand too; SUPPRESS keeps the global value otherwise.
    demo.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                      help=argparse.SUPPRESS)
    demo.set_defaults(handler=_run_demo)
    _add_fit_parser(commands)
    _add_predict_parser(commands)
    _add_select_parser(commands)
    return parser


_CONFIG_SET_BY_COMMANDS = (
    "jax_enable_x64",
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
)


def main(argv: list[str] | None = None) -> int:
    """Run the ``emjax`` program with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Exit codes: 0 on success, 1 for an error while running a command, 2 for invalid
    arguments (or no command at all).
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and argument errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)

    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    # Commands may turn on float64 or the on-disk compile cache for their own run; a
    # Python caller of main() gets its JAX configuration back unchanged.
    saved = {name: getattr(jax.config, name) for name in _CONFIG_SET_BY_COMMANDS}
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("emjax: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `emjax demo | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message and exit 1
        if args.traceback:
            traceback.print_exc()
        else:
            hint = "" if isinstance(exc, _CommandError) else " (rerun with --traceback for details)"
            print(f"emjax: error: {_one_line(exc)}{hint}", file=sys.stderr)
        return 1
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, _CommandError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------- demo
@dataclass
class _Cell:
    """The outcome of one (K, covariance type) fit."""

    num_components: int
    covariance_type: str
    seconds: float
    model: object = None
    params: object = None
    log_likelihood: float = math.nan
    bic: float = math.nan
    num_free_params: int = 0
    status: str = "error"  # "yes", "no" (max_steps reached), "failed" (non-finite), "error"
    converged_restarts: int = 0
    num_restarts: int = 0
    num_steps: int = 0
    error: str = ""

    @property
    def usable(self) -> bool:
        return self.status in ("yes", "no") and math.isfinite(self.bic)


def _fit_cell(X, key, K: int, covariance_type: str, restarts: int, max_steps: int) -> _Cell:
    start = time.perf_counter()
    cell = _Cell(K, covariance_type, 0.0, num_restarts=restarts)
    try:
        model = emjax.GaussianMixture(K, covariance_type=covariance_type)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emjax.ConvergenceWarning)
            sol = emjax.fit(model, X, key=key, num_restarts=restarts, max_steps=max_steps,
                            throw=False)
        results = np.asarray(sol.restart_results == emjax.RESULTS.converged)
        cell.model, cell.params = model, sol.params
        cell.log_likelihood = float(sol.log_likelihood)
        cell.num_free_params = model.num_free_params(X.shape[1])
        # BIC from the fit's own log-likelihood (model.bic would recompute it in another
        # compiled program): -2 log L + p log N, scikit-learn's sign.
        cell.bic = -2.0 * cell.log_likelihood + cell.num_free_params * math.log(X.shape[0])
        cell.converged_restarts = int(np.sum(results))
        cell.num_steps = int(sol.num_steps)
        if bool(sol.result == emjax.RESULTS.nonfinite):
            cell.status = "failed"
        else:
            cell.status = "yes" if bool(sol.converged) else "no"
    except Exception as exc:  # noqa: BLE001 - one failed cell must not end the demo
        cell.status, cell.error = "error", _one_line(exc)
    cell.seconds = time.perf_counter() - start
    return cell


_COLUMNS = (
    # header, width, alignment
    ("K", 2, ">"),
    ("covariance", 10, "<"),
    ("log-lik", 10, ">"),
    ("BIC", 10, ">"),
    ("params", 6, ">"),
    ("converged", 9, ">"),
    ("restarts conv.", 14, ">"),
    ("steps", 5, ">"),
    ("seconds*", 8, ">"),
)


def _row(values) -> str:
    return "  ".join(f"{v:{align}{width}}" for v, (_, width, align) in zip(values, _COLUMNS, strict=True))


def _format_cell(cell: _Cell, chosen: bool) -> str:
    mark = "  <- lowest BIC" if chosen else ""
    if cell.status == "error":
        return _row([cell.num_components, cell.covariance_type, "-", "-", "-", "error", "-",
                     "-", f"{cell.seconds:.2f}"]) + f"  {cell.error}"
    return _row([
        cell.num_components,
        cell.covariance_type,
        f"{cell.log_likelihood:.2f}",
        f"{cell.bic:.2f}",
        cell.num_free_params,
        cell.status,
        f"{cell.converged_restarts}/{cell.num_restarts}",
        cell.num_steps,
        f"{cell.seconds:.2f}",
    ]) + mark


def _fmt(value: float) -> str:
    """4 significant digits, fixed notation where that stays short."""
    return f"{value:.4g}"


def _array_str(a, prefix: str = "") -> str:
    """NumPy's printing with 4 significant digits, every entry padded to one width."""
    a = np.asarray(a, dtype=np.float64)
    width = max(len(_fmt(v)) for v in a.ravel())
    return np.array2string(a, formatter={"float_kind": lambda v: _fmt(v).rjust(width)},
                           prefix=prefix, max_line_width=100)


def _describe_model(cell: _Cell, names) -> str:
    lines = [
        f"Chosen model (lowest BIC): K={cell.num_components}, "
        f"covariance_type={cell.covariance_type!r}, BIC={cell.bic:.2f}, "
        f"log-likelihood={cell.log_likelihood:.2f}",
    ]
    p = cell.params
    lines += _gaussian_lines(p.weights, p.means, p.covariances, cell.covariance_type, names)
    return "\n".join(lines)


def _gaussian_lines(weights, means, cov, ct: str, names, unit: str = "component") -> list[str]:
    """Weights (if any), means and covariances of Gaussian components, in order of their
    first mean, for people to read."""
    means = np.asarray(means, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    order = np.argsort(means[:, 0], kind="stable")  # show components by their first mean
    lines = [f"{unit.capitalize()}s in order of mean {names[0]}, numbered as `emjax predict` "
             f"labels them; columns are ({', '.join(names)})."]
    for k in order:
        weight = "" if weights is None else f": weight {_fmt(np.asarray(weights)[k])}"
        lines.append(f"  {unit} {k}{weight}")
        lines.append(f"    mean        {_array_str(means[k])}")
        if ct == "full":
            lines.append(f"    covariance  {_array_str(cov[k], prefix='    covariance  ')}")
        elif ct == "diag":
            lines.append(f"    variances   {_array_str(cov[k])}")
        elif ct == "spherical":
            lines.append(f"    variance    {_fmt(cov[k])} (the same in every direction)")
    if ct == "tied":
        prefix = "  covariance shared by all components: "
        lines.append(prefix + _array_str(cov, prefix=prefix))
    return lines


def _plot(cell: _Cell, X: np.ndarray, names, output: Path) -> None:
    """The chosen model drawn by `emjax.plot.mixture`, titled for the demo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot as emplot

    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=120)
    try:
        emplot.mixture(cell.model, cell.params, X, ax=ax,
                       feature_names=[f"{n} (minutes)" for n in names])
        ax.set_title(
            f"Old Faithful: K={cell.num_components}, covariance_type='{cell.covariance_type}', "
            f"BIC={cell.bic:.2f}\n(1-sigma solid, 2-sigma dashed)"
        )
        fig.tight_layout()
        fig.savefig(output, format="png")
    finally:
        plt.close(fig)


def _run_demo(args: argparse.Namespace) -> int:
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    if not args.no_cache:
        # The command line (an application, not the library) keeps compiled programs on
        # disk, so a second run skips most of the compiling.
        jax.config.update("jax_compilation_cache_dir", str(Path(args.cache_dir).expanduser()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

    output = Path(args.output).expanduser()
    want_plot = not args.no_plot
    if want_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            want_plot = False
            print('matplotlib is not installed: pip install "emjax[plot]" for the plot.')
        else:  # fail before minutes of fitting, not after
            if output.is_dir():
                raise _CommandError(f"--output {str(output)!r} is a directory; give a file path")
            if not output.parent.is_dir():
                raise _CommandError(f"--output: directory {str(output.parent)!r} does not exist")

    dtype = np.float64 if args.float64 else np.float32
    X, names = emjax.datasets.load_old_faithful(return_names=True, dtype=dtype)
    key = jax.random.key(args.seed)
    print(
        f"Old Faithful: {X.shape[0]} eruptions x {X.shape[1]} features ({', '.join(names)}); "
        f"{np.dtype(dtype).name} on {jax.default_backend()}."
    )
    print(
        f"Each fit: {args.restarts} restarts, at most {args.max_steps} steps, "
        f"key=jax.random.key({args.seed})."
    )
    print()
    header = _row([c[0] for c in _COLUMNS])
    print(header)
    print("-" * len(header))

    start = time.perf_counter()
    grid = [(K, ct) for K in range(1, MAX_COMPONENTS + 1) for ct in COVARIANCE_TYPES]
    # Each cell is a new program and compiling dominates on a CPU; XLA compiles in native
    # code outside the GIL, so cells on several threads use several cores.
    workers = max(1, min(len(grid), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_fit_cell, X, key, K, ct, args.restarts, args.max_steps)
                   for K, ct in grid]
        cells = []
        for future in futures:  # rows in grid order, each printed as soon as it is known
            cell = future.result()
            cells.append(cell)
            print(_format_cell(cell, chosen=False), flush=True)
    total = time.perf_counter() - start

    usable = [c for c in cells if c.usable]
    print("-" * len(header))
    print("converged: whether the best restart converged (no: it reached --max-steps).")
    print("restarts conv.: restarts that converged / restarts run; steps: EM steps of the best "
          "restart.")
    print(f"* wall time per fit, including JIT compilation (each K and covariance type is a new "
          f"program); {workers} fits at a time.")
    print(f"Total wall time: {total:.1f} s for {len(cells)} fits.")
    failed = [c for c in cells if not c.usable]
    if failed:
        print(f"{len(failed)} fit(s) failed or gave no finite BIC; they are left out of the choice.")
    if not usable:
        raise _CommandError("every fit failed; nothing to choose")
    best = min(usable, key=lambda c: c.bic)
    print()
    print(_format_cell(best, chosen=True).strip())
    print(_describe_model(best, names))

    if want_plot:
        _plot(best, X, names, output)
        print()
        print(f"Plot written to {output.resolve()}")
    return 0


# --------------------------------------------------------------------------- fit / predict / select
MODELS = {
    "gmm": "GaussianMixture",
    "kmeans": "KMeans",
    "hmm": "HiddenMarkovModel (Gaussian emissions)",
    "bgmm": "BayesianGaussianMixture",
    "lda": "LatentDirichletAllocation",
}
_DEFAULT_CACHE = os.path.join("~", ".cache", "emjax", "jax")


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _name_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _covariance_list(text: str) -> tuple[str, ...]:
    items = _name_list(text)
    for t in items:
        if t not in COVARIANCE_TYPES:
            raise argparse.ArgumentTypeError(
                f"unknown covariance type {t!r}; choose from {', '.join(COVARIANCE_TYPES)}")
    return tuple(dict.fromkeys(items))


def _lengths_list(text: str) -> list[int]:
    parse = _int_at_least(1)
    return [parse(t) for t in _name_list(text)]


def _add_common_options(p: argparse.ArgumentParser, *, dtype: bool = True) -> None:
    if dtype:
        p.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                       help="floating-point precision of the fit (default: %(default)s)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines on stderr (they are shown only on a terminal)")
    p.add_argument("--cache-dir", default=_DEFAULT_CACHE, metavar="DIR",
                   help="where compiled programs are kept between runs (default: %(default)s)")
    p.add_argument("--no-cache", action="store_true", help="do not keep compiled programs on disk")
    p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA",
                   help="a CSV file (with or without a header row) or a .npy array; for "
                        "--model lda also a folder of .txt documents")
    p.add_argument("--columns", type=_name_list, metavar="A,B,...",
                   help="use only these columns: header names or numbers counted from 1 "
                        "(default: every column)")


def _add_fit_parser(commands) -> None:
    p = commands.add_parser(
        "fit",
        help="fit a model to a data file and save it",
        description=(
            "Fit a model to DATA with emjax.fit (restarts run together by vmap), print a "
            "summary and the fitted parameters, and save model and parameters to a .npz file "
            "that `emjax predict` and emjax.load read. Models: "
            + "; ".join(f"{k}: {v}" for k, v in MODELS.items()) + "."
        ),
    )
    _add_data_options(p)
    p.add_argument("--model", choices=tuple(MODELS), default="gmm",
                   help="the model to fit (default: %(default)s)")
    p.add_argument("--components", "-k", type=_int_at_least(1), metavar="K",
                   help="components, clusters, states or topics (default: 2; 10 for lda)")
    p.add_argument("--covariance-type", choices=COVARIANCE_TYPES,
                   help="covariance structure for gmm, bgmm and hmm (default: full)")
    p.add_argument("--restarts", type=_int_at_least(1), default=10, metavar="R",
                   help="random restarts, run in parallel by vmap (default: %(default)s)")
    p.add_argument("--max-steps", type=_int_at_least(0), default=200, metavar="N",
                   help="most EM steps per restart (default: %(default)s)")
    p.add_argument("--tol", type=_nonnegative_float, default=1e-5, metavar="T",
                   help="stop when the ELBO changes by at most T*|ELBO| in one step "
                        "(emjax.fit's rtol; default: %(default)s)")
    p.add_argument("--seed", type=_int_at_least(0, _MAX_SEED), default=0,
                   help="seed of the PRNG key jax.random.key(SEED) (default: %(default)s)")
    p.add_argument("--output", "-o", metavar="FILE.npz",
                   help="where to save the fitted model (default: DATA's name with "
                        "_MODEL.npz, in the current directory)")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the fitted model to a PNG file")
    p.add_argument("--lengths", type=_lengths_list, metavar="T1,T2,...",
                   help="hmm: lengths of the sequences concatenated in DATA's rows "
                        "(default: one sequence)")
    _add_common_options(p)
    p.set_defaults(handler=_run_fit)


def _add_predict_parser(commands) -> None:
    p = commands.add_parser(
        "predict",
        help="labels or probabilities from a saved model",
        description=(
            "Load a model saved by `emjax fit` (or emjax.save) and print, one row per data "
            "row, the most probable component (mixtures, k-means), the Viterbi state path "
            "(hmm) or the document-topic distributions (lda), as CSV."
        ),
    )
    p.add_argument("params", metavar="PARAMS.npz", help="a model file written by `emjax fit`")
    _add_data_options(p)
    p.add_argument("--output", "-o", metavar="FILE.csv",
                   help="write the CSV to this file (default: standard output)")
    p.add_argument("--proba", action="store_true",
                   help="posterior probabilities of every component (hmm: smoothed state "
                        "marginals) instead of labels")
    p.add_argument("--lengths", type=_lengths_list, metavar="T1,T2,...",
                   help="hmm: lengths of the sequences concatenated in DATA's rows")
    _add_common_options(p, dtype=False)
    p.set_defaults(handler=_run_predict)


def _add_select_parser(commands) -> None:
    p = commands.add_parser(
        "select",
        help="choose a Gaussian mixture by BIC or ICL (like mclust)",
        description=(
            "Fit Gaussian mixtures with 1..MAX components and each covariance type "
            "(emjax.select), print the BIC grid in the manner of R's mclust, and "
            "report the model with the lowest criterion."
        ),
    )
    _add_data_options(p)
    p.add_argument("--max-components", type=_int_at_least(1), default=9, metavar="K",
                   help="try 1..K components (default: %(default)s)")
    p.add_argument("--covariance-types", type=_covariance_list, default=COVARIANCE_TYPES,
                   metavar="T1,T2,...",
                   help="covariance types to try (default: " + ",".join(COVARIANCE_TYPES) + ")")
    p.add_argument("--restarts", type=_int_at_least(1), default=10, metavar="R",
                   help="random restarts per fit (default: %(default)s)")
    p.add_argument("--criterion", choices=("bic", "icl"), default="bic",
                   help="what the chosen model minimises (default: %(default)s)")
    p.add_argument("--max-steps", type=_int_at_least(0), default=500, metavar="N",
                   help="most EM steps per restart (default: %(default)s)")
    p.add_argument("--tol", type=_nonnegative_float, default=1e-5, metavar="T",
                   help="relative tolerance on the ELBO (default: %(default)s)")
    p.add_argument("--seed", type=_int_at_least(0, _MAX_SEED), default=0,
                   help="seed of the PRNG key jax.random.key(SEED) (default: %(default)s)")
    p.add_argument("--output", "-o", metavar="FILE.npz", help="save the chosen model here")
    p.add_argument("--plot", metavar="FILE.png", help="draw the criterion curves to a PNG file")
    _add_common_options(p)
    p.set_defaults(handler=_run_select)


# ------------------------------------------------------------------- shared helpers
def _configure_jax(args, float64: bool) -> None:
    """Float64 and the on-disk compile cache for this run (main() restores both)."""
    if float64:
        jax.config.update("jax_enable_x64", True)
    if not args.no_cache:
        jax.config.update("jax_compilation_cache_dir", str(Path(args.cache_dir).expanduser()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _check_output(path: str | None, option: str) -> Path | None:
    """Fail before any fitting if ``path`` cannot be written."""
    if path is None:
        return None
    out = Path(path).expanduser()
    if out.is_dir():
        raise _CommandError(f"{option} {str(out)!r} is a directory; give a file path")
    if not out.parent.is_dir():
        raise _CommandError(f"{option}: directory {str(out.parent)!r} does not exist")
    return out


def _check_plot(path: str | None) -> Path | None:
    out = _check_output(path, "--plot")
    if out is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise _CommandError('--plot needs matplotlib: pip install "emjax[plot]"') from None
    return out


def _read_table(path: str, columns=None):
    from ._io import _read_table as read

    try:
        return read(path, columns)
    except (FileNotFoundError, ValueError) as e:
        raise _CommandError(str(e)) from None


def _column_note(table) -> str:
    source = "from the header row" if table.has_header else "no header row"
    return f"columns used ({source}): {', '.join(table.columns)}"


class _ProgressLine:
    """``emjax.fit``'s ``progress`` callback: one line on a terminal's stderr, rewritten in
    place as the fit goes on."""

    def __init__(self, label: str):
        self.label = label

    def __call__(self, info: dict) -> None:
        elbo = info.get("elbo", math.nan)
        line = (f"{self.label}: step {info.get('step', 0)}, ELBO {elbo:.6g}, "
                f"{info.get('num_converged', 0)}/{info.get('num_restarts', 0)} restarts "
                f"converged, {info.get('elapsed', 0.0):.1f} s")
        end = "\n" if info.get("final") else ""
        sys.stderr.write("\r\x1b[K" + line + end)
        sys.stderr.flush()


def _show_progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _fit_options(args, label: str) -> dict:
    """``progress=`` for `emjax.fit` when stderr is a terminal."""
    return {"progress": _ProgressLine(label)} if _show_progress(args) else {}


def _select_progress(info: dict) -> None:
    """`emjax.select`'s ``progress`` callback: one line per finished cell, rewritten in place."""
    row = info["row"]
    outcome = f"BIC {row.bic:.2f}" if row.error is None else "failed"
    line = (f"emjax select: {info['done']}/{info['num_cells']} fits done "
            f"(K={row.components} {row.covariance_type}: {outcome}), {info['elapsed']:.1f} s")
    end = "\n" if info["done"] == info["num_cells"] else ""
    sys.stderr.write("\r\x1b[K" + line + end)
    sys.stderr.flush()


# ------------------------------------------------------------------- fit
def _run_fit(args: argparse.Namespace) -> int:
    from ._io import _count_words, _read_documents, save

    model_name = args.model
    if args.covariance_type is not None and model_name in ("kmeans", "lda"):
        raise _CommandError(f"--covariance-type does not apply to --model {model_name}")
    if args.lengths is not None and model_name != "hmm":
        raise _CommandError("--lengths applies to --model hmm only")
    K = args.components if args.components is not None else (10 if model_name == "lda" else 2)
    ct = args.covariance_type or "full"
    data_path = Path(args.data).expanduser()
    output = _check_output(args.output, "--output") or Path.cwd() / f"{data_path.stem}_{model_name}.npz"
    plot = _check_plot(args.plot)
    _configure_jax(args, args.dtype == "float64")
    dtype = np.dtype(args.dtype)

    vocabulary, documents, table = None, None, None
    if model_name == "lda" and data_path.is_dir():
        if args.columns is not None:
            raise _CommandError("--columns applies to a data file, not a folder of documents")
        try:
            documents, tokens = _read_documents(data_path)
        except ValueError as e:
            raise _CommandError(str(e)) from None
        vocabulary = sorted({w for doc in tokens for w in doc})
        if not vocabulary:
            raise _CommandError(f"the .txt files in {str(data_path)!r} hold no words")
        X, _ = _count_words(tokens, vocabulary)
        print(f"{data_path}: {len(documents)} documents, a vocabulary of {len(vocabulary)} "
              "words (lower-case letters only).")
    else:
        table = _read_table(args.data, args.columns)
        X = table.values
        if model_name == "lda" and table.has_header:
            vocabulary = list(table.columns)
        print(f"{data_path}: {X.shape[0]} rows x {X.shape[1]} columns; {_column_note(table)}.")
    X = X.astype(dtype)
    data = X
    if model_name == "hmm" and args.lengths is not None:
        if sum(args.lengths) != X.shape[0]:
            raise _CommandError(f"--lengths add up to {sum(args.lengths)} but {data_path} has "
                                f"{X.shape[0]} rows")
        data = (X, np.asarray(args.lengths))

    try:
        model = _make_model(model_name, K, ct)
    except (TypeError, ValueError) as e:
        raise _CommandError(f"--model {model_name}: {e}") from None
    print(f"Fitting {type(model).__name__} with K={K}"
          + (f", covariance_type={ct!r}" if model_name in ("gmm", "bgmm", "hmm") else "")
          + f": {args.restarts} restarts, at most {args.max_steps} steps, tol {args.tol:g}, "
          f"{dtype.name}, key=jax.random.key({args.seed}).")
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", emjax.ConvergenceWarning)
            sol = emjax.fit(model, data, key=jax.random.key(args.seed),
                            num_restarts=args.restarts, max_steps=args.max_steps, rtol=args.tol,
                            throw=False, **_fit_options(args, f"emjax fit {model_name}"))
            sol = jax.block_until_ready(sol)
    except (TypeError, ValueError) as e:
        raise _CommandError(f"cannot fit {data_path}: {_one_line(e)}") from None
    seconds = time.perf_counter() - start
    if bool(sol.result == emjax.RESULTS.nonfinite):
        raise _CommandError(f"the fit failed: {sol.message} (try --dtype float64, fewer "
                            "components or rescaled data)")

    summary = _fit_summary(model_name, model, sol, data, K, seconds)
    print()
    print(_summary_table([summary]))
    if not bool(sol.converged):
        print(f"The best restart did not converge in --max-steps {args.max_steps} steps.")
    print()
    names = table.columns if table is not None else None
    print(_describe_fit(model_name, model, sol.params, X, names, vocabulary))

    metadata = {
        "command": "fit",
        "model": model_name,
        "data": str(data_path),
        "input": "documents" if documents is not None else table.kind,
        "columns": list(names) if names is not None else None,
        "has_header": bool(table.has_header) if table is not None else None,
        "num_rows": int(X.shape[0]),
        "num_features": int(X.shape[1]),
        "lengths": args.lengths,
        "vocabulary": vocabulary,
        "restarts": args.restarts,
        "max_steps": args.max_steps,
        "tol": args.tol,
        "seed": args.seed,
        **{k: v for k, v in summary.items() if k in (
            "log_likelihood", "elbo", "bic", "num_steps", "converged_restarts")},
        "converged": bool(sol.converged),
    }
    try:
        save(output, model, sol.params, metadata=metadata)
    except (TypeError, ValueError, OSError) as e:
        raise _CommandError(f"cannot save to {str(output)!r}: {e}") from None
    print()
    print(f"Model saved to {output}")
    if plot is not None:
        _plot_fit(model_name, model, sol, X, args.lengths, names, vocabulary, plot)
        print(f"Plot written to {plot.resolve()}")
    return 0


def _make_model(name: str, K: int, ct: str):
    if name == "gmm":
        return emjax.GaussianMixture(K, covariance_type=ct)
    if name == "kmeans":
        return emjax.KMeans(K)
    if name == "hmm":
        return emjax.HiddenMarkovModel(K, emissions=emjax.GaussianEmissions(ct))
    if name == "bgmm":
        return emjax.BayesianGaussianMixture(K, covariance_type=ct)
    return emjax.LatentDirichletAllocation(K)


def _fit_summary(model_name, model, sol, data, K, seconds) -> dict:
    converged = int(np.sum(np.asarray(sol.restart_results == emjax.RESULTS.converged)))
    restarts = int(np.size(np.asarray(sol.restart_elbos)))
    log_lik = float(sol.log_likelihood)
    bic = None
    if model_name in ("gmm", "hmm"):
        X = data[0] if isinstance(data, tuple) else data
        p = model.num_free_params(X.shape[1])
        bic = -2.0 * log_lik + p * math.log(X.shape[0])
    return {
        "model": model_name, "K": K, "log_likelihood": log_lik,
        "elbo": float(sol.elbo.total), "bic": bic, "num_steps": int(sol.num_steps),
        "converged_restarts": converged, "restarts": restarts, "seconds": seconds,
    }


_FIT_COLUMNS = (("model", 6, "<"), ("K", 3, ">"), ("log-lik", 12, ">"), ("ELBO", 12, ">"),
                ("BIC", 10, ">"), ("steps", 5, ">"), ("converged", 9, ">"), ("seconds*", 8, ">"))


def _summary_table(summaries: list[dict]) -> str:
    def row(values):
        return "  ".join(f"{v:{a}{w}}" for v, (_, w, a) in zip(values, _FIT_COLUMNS, strict=True))

    lines = [row([c[0] for c in _FIT_COLUMNS])]
    lines.append("-" * len(lines[0]))
    for s in summaries:
        lines.append(row([
            s["model"], s["K"], f"{s['log_likelihood']:.3f}", f"{s['elbo']:.3f}",
            "-" if s["bic"] is None else f"{s['bic']:.2f}", s["num_steps"],
            f"{s['converged_restarts']}/{s['restarts']}", f"{s['seconds']:.2f}",
        ]))
    lines.append("log-lik: log p(data | fitted parameters); ELBO: the bound EM maximised (for "
                 "kmeans the classification\nlog-likelihood); BIC = -2 log-lik + p log N, lower "
                 "is better; steps: of the best restart;\nconverged: restarts that converged.")
    lines.append("* wall time of the fit, including JIT compilation.")
    return "\n".join(lines)


def _describe_fit(model_name, model, params, X, names, vocabulary) -> str:
    D = X.shape[1]
    names = names or tuple(f"column {j + 1}" for j in range(D))
    if model_name == "gmm":
        return "\n".join(["Fitted parameters."] + _gaussian_lines(
            params.weights, params.means, params.covariances, model.covariance_type, names))
    if model_name == "bgmm":
        weights = np.asarray(model.expected_weights(params))
        used = int(model.effective_num_components(params))
        lines = [f"Fitted variational posterior: {used} of {model.num_components} components "
                 "have an expected weight of at least 0.01; covariances are E[precision]^-1."]
        return "\n".join(lines + _gaussian_lines(weights, params.means, params.covariances,
                                                 model.covariance_type, names))
    if model_name == "kmeans":
        labels = np.asarray(model.predict(params, X))
        centers = np.asarray(params.centers, np.float64)
        lines = [f"Cluster centres; columns are ({', '.join(names)}).",
                 f"Inertia (sum of squared distances to the nearest centre): "
                 f"{float(model.inertia(params, X)):.6g}"]
        for k in range(centers.shape[0]):
            lines.append(f"  cluster {k}: {int(np.sum(labels == k))} points, centre "
                         f"{_array_str(centers[k])}")
        return "\n".join(lines)
    if model_name == "hmm":
        lines = ["Fitted parameters (states numbered as in `emjax predict`).",
                 f"  initial probabilities  {_array_str(params.initial)}",
                 "  transition matrix (row: from, column: to)",
                 "    " + _array_str(params.transition, prefix="    ")]
        em = params.emissions
        return "\n".join(lines + _gaussian_lines(None, em.means, em.covariances,
                                                 model.emissions.covariance_type, names,
                                                 unit="state"))
    # lda
    words = vocabulary or [f"word {j + 1}" for j in range(D)]
    top = model.top_words(params, words, num_words=min(8, len(words)))
    doc_topic = np.asarray(model.transform(params, X))
    share = doc_topic.mean(axis=0)
    lines = [f"Topics (most probable words first); share: the mean topic proportion over "
             f"the documents. Perplexity {float(model.perplexity(params, X)):.6g}."]
    for k, row in enumerate(top):
        lines.append(f"  topic {k} (share {share[k]:.3f}): {' '.join(str(w) for w in row)}")
    return "\n".join(lines)


# ------------------------------------------------------------------- plots
def _plot_fit(model_name, model, sol, X, lengths, names, vocabulary, output: Path) -> None:
    """The fitted model drawn by `emjax.plot`: the data by component (mixtures), the
    Viterbi states of the first sequence (hmm) or each topic's top words (lda)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot as emplot

    if model_name == "lda":
        words = vocabulary or [f"word {j + 1}" for j in range(X.shape[1])]
        fig = emplot.lda_top_words(model, sol.params, words, num_words=min(10, len(words)))
    else:
        fig, ax = plt.subplots(figsize=(9, 3.6) if model_name == "hmm" else (7, 5.5), dpi=120)
        if model_name == "hmm":
            first = X if lengths is None else X[: lengths[0]]
            emplot.hmm_states(model, sol.params, first, ax=ax, feature_names=list(names))
        elif X.shape[1] >= 2:
            emplot.mixture(model, sol.params, X, ax=ax, feature_names=list(names))
        else:
            emplot.elbo_traces(sol, ax=ax)  # one column: nothing to scatter
    try:
        fig.tight_layout()
        fig.savefig(output, format="png")
    finally:
        plt.close(fig)


# ------------------------------------------------------------------- predict
def _run_predict(args: argparse.Namespace) -> int:
    from ._io import _count_words, _read_documents, load, read_metadata

    params_path = Path(args.params).expanduser()
    try:
        header = read_metadata(params_path)
    except FileNotFoundError:
        raise _CommandError(f"PARAMS file {str(params_path)!r} does not exist") from None
    except ValueError as e:
        raise _CommandError(str(e)) from None
    output = _check_output(args.output, "--output")
    _configure_jax(args, header.get("dtype") == "float64")
    try:
        model, params, header = load(params_path, return_metadata=True)
    except (FileNotFoundError, ValueError) as e:
        raise _CommandError(str(e)) from None
    meta = header.get("metadata") or {}
    dtype = np.dtype(header["dtype"])
    data_path = Path(args.data).expanduser()

    if isinstance(model, emjax.LatentDirichletAllocation):
        vocabulary = meta.get("vocabulary")
        if data_path.is_dir():
            if not vocabulary:
                raise _CommandError(f"{params_path} holds no vocabulary (it was not fitted to "
                                    "a folder of documents); give a document-term matrix")
            try:
                rows, tokens = _read_documents(data_path)
            except ValueError as e:
                raise _CommandError(str(e)) from None
            X, unknown = _count_words(tokens, vocabulary)
            if unknown:
                print(f"emjax predict: {unknown} word(s) not in the model's vocabulary were "
                      "ignored.", file=sys.stderr)
        else:
            table = _matching_table(args, data_path, model, params, meta, params_path)
            X = table.values
            rows = [str(i + 1) for i in range(X.shape[0])]
        try:
            theta = np.asarray(model.transform(params, X.astype(dtype)))
        except (TypeError, ValueError) as e:
            raise _CommandError(f"cannot use {data_path}: {_one_line(e)}") from None
        header_row = ["document"] + [f"topic_{k}" for k in range(theta.shape[1])]
        lines = [[r] + [f"{v:.8g}" for v in t] for r, t in zip(rows, theta, strict=True)]
        return _write_csv(header_row, lines, output)

    if isinstance(model, emjax.MixtureOfExperts) or not hasattr(model, "predict"):
        raise _CommandError(f"`emjax predict` does not handle {type(model).__name__} files; "
                            "use emjax.load in Python")
    table = _matching_table(args, data_path, model, params, meta, params_path)
    X = table.values.astype(dtype)
    data = X
    if isinstance(model, emjax.HiddenMarkovModel):
        if args.lengths is not None:
            if sum(args.lengths) != X.shape[0]:
                raise _CommandError(f"--lengths add up to {sum(args.lengths)} but {data_path} "
                                    f"has {X.shape[0]} rows")
            data = (X, np.asarray(args.lengths))
    elif args.lengths is not None:
        raise _CommandError("--lengths applies to hidden Markov models only")
    try:
        if args.proba:
            values = np.asarray(model.predict_proba(params, data))
            header_row = [f"prob_{k}" for k in range(values.shape[1])]
            lines = [[f"{v:.8g}" for v in row] for row in values]
        else:
            labels = np.asarray(model.predict(params, data))
            header_row = ["state" if isinstance(model, emjax.HiddenMarkovModel) else "label"]
            lines = [[str(int(v))] for v in labels]
    except (TypeError, ValueError) as e:
        raise _CommandError(f"cannot use {data_path}: {_one_line(e)}") from None
    return _write_csv(header_row, lines, output)


def _num_features(model, params) -> int | None:
    """The number of data columns the saved model expects."""
    if isinstance(model, emjax.LatentDirichletAllocation):
        return int(params.topic_word.shape[-1])
    if isinstance(model, emjax.KMeans):
        return int(params.centers.shape[-1])
    if isinstance(model, emjax.HiddenMarkovModel):
        em = params.emissions
        for name in ("means", "rates"):
            if hasattr(em, name):
                return int(getattr(em, name).shape[-1])
        return 1  # categorical symbols: one column
    means = getattr(params, "means", None)
    return None if means is None else int(means.shape[-1])


def _matching_table(args, data_path, model, params, meta, params_path):
    """DATA's columns that the saved model was fitted to: ``--columns``, else the saved
    column names when DATA has a header with all of them, else every column."""
    expected = _num_features(model, params)
    saved = meta.get("columns") if meta.get("has_header") else None
    columns = args.columns
    if columns is None and saved:
        table = _read_table(str(data_path))
        if table.has_header and all(c in table.columns for c in saved):
            columns = saved
    table = _read_table(str(data_path), columns)
    if expected is not None and table.values.shape[1] != expected:
        fitted = f" ({', '.join(saved)})" if saved else ""
        raise _CommandError(
            f"{data_path} has {table.values.shape[1]} column(s) ({', '.join(table.columns)}) "
            f"but the model in {params_path} was fitted to {expected}{fitted}; choose them "
            "with --columns")
    return table


def _write_csv(header_row: list[str], rows: list[list[str]], output: Path | None) -> int:
    text = "\n".join(",".join(r) for r in [header_row, *rows]) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as e:
            raise _CommandError(f"cannot write {str(output)!r}: {e.strerror or e}") from None
        print(f"{len(rows)} rows written to {output}")
    return 0


# ------------------------------------------------------------------- select
def _run_select(args: argparse.Namespace) -> int:
    from ._io import save
    from ._select import select

    output = _check_output(args.output, "--output")
    plot = _check_plot(args.plot)
    _configure_jax(args, args.dtype == "float64")
    table = _read_table(args.data, args.columns)
    X = table.values.astype(np.dtype(args.dtype))
    data_path = Path(args.data).expanduser()
    print(f"{data_path}: {X.shape[0]} rows x {X.shape[1]} columns; {_column_note(table)}.")
    cells = args.max_components * len(args.covariance_types)
    start = time.perf_counter()
    try:
        sel = select(X, components=range(1, args.max_components + 1),
                     covariance_types=args.covariance_types, num_restarts=args.restarts,
                     key=jax.random.key(args.seed), criterion=args.criterion,
                     max_steps=args.max_steps, rtol=args.tol,
                     progress=_select_progress if _show_progress(args) else None)
    except (TypeError, ValueError) as e:
        raise _CommandError(f"cannot select on {data_path}: {_one_line(e)}") from None
    seconds = time.perf_counter() - start
    print()
    print(sel)
    print(f"\n{cells} fits in {seconds:.1f} s, including JIT compilation.")
    best = sel.best
    if best is None:
        raise _CommandError("every fit failed; nothing to choose")
    print()
    print("\n".join(["Parameters of the chosen model."] + _gaussian_lines(
        best.params.weights, best.params.means, best.params.covariances,
        best.covariance_type, table.columns)))
    if output is not None:
        metadata = {
            "command": "select", "model": "gmm", "data": str(data_path), "input": table.kind,
            "columns": list(table.columns), "has_header": bool(table.has_header),
            "num_rows": int(X.shape[0]), "num_features": int(X.shape[1]),
            "criterion": args.criterion, "restarts": args.restarts, "seed": args.seed,
            "log_likelihood": float(best.log_likelihood), "bic": float(best.bic),
            "icl": float(best.icl),
            "selection": _json_safe(sel.to_dict()),
        }
        try:
            save(output, best.model, best.params, metadata=metadata)
        except (TypeError, ValueError, OSError) as e:
            raise _CommandError(f"cannot save to {str(output)!r}: {e}") from None
        print(f"\nChosen model saved to {output}")
    if plot is not None:
        _plot_selection(sel, plot)
        print(f"Plot written to {plot.resolve()}")
    return 0


def _json_safe(value):
    """NaN and infinities as None, NumPy scalars as Python numbers: strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plot_selection(sel, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot as emplot

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    try:
        emplot.bic_curves(sel, ax=ax, criterion=sel.criterion)
        fig.tight_layout()
        fig.savefig(output, format="png")
    finally:
        plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
