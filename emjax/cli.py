"""The ``emjax`` command-line program.

``emjax demo`` fits Gaussian mixtures with K = 1..6 components and every covariance type to
the bundled Old Faithful data, prints a BIC table, reports the model with the lowest BIC
and, when matplotlib is installed, draws it.

The program may turn on float64 (``--float64``) for its own run; importing the library never
changes JAX's configuration.
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


def _full_covariances(covariance_type: str, covariances, num_components: int, num_features: int):
    """Every component's covariance as a ``(K, D, D)`` NumPy array, whatever the type."""
    cov = np.asarray(covariances, dtype=np.float64)
    eye = np.eye(num_features)
    if covariance_type == "full":
        return cov
    if covariance_type == "diag":
        return cov[:, :, None] * eye
    if covariance_type == "spherical":
        return cov[:, None, None] * eye
    if covariance_type == "tied":
        return np.broadcast_to(cov, (num_components, num_features, num_features)).copy()
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def _array_str(a, prefix: str = "") -> str:
    """NumPy's printing with 4 significant digits, every entry padded to one width."""
    a = np.asarray(a, dtype=np.float64)
    width = max(len(_fmt(v)) for v in a.ravel())
    return np.array2string(a, formatter={"float_kind": lambda v: _fmt(v).rjust(width)},
                           prefix=prefix, max_line_width=100)


def _describe_model(cell: _Cell, names) -> str:
    p = cell.params
    weights = np.asarray(p.weights, dtype=np.float64)
    means = np.asarray(p.means, dtype=np.float64)
    cov = np.asarray(p.covariances, dtype=np.float64)
    order = np.argsort(means[:, 0], kind="stable")  # show components by their first mean
    ct = cell.covariance_type
    lines = [
        f"Chosen model (lowest BIC): K={cell.num_components}, covariance_type={ct!r}, "
        f"BIC={cell.bic:.2f}, log-likelihood={cell.log_likelihood:.2f}",
        f"Components in order of mean {names[0]}; columns are ({', '.join(names)}).",
    ]
    for rank, k in enumerate(order, start=1):
        lines.append(f"  component {rank}: weight {_fmt(weights[k])}")
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
    return "\n".join(lines)


def _plot(cell: _Cell, X: np.ndarray, names, labels, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    K, D = cell.num_components, X.shape[1]
    means = np.asarray(cell.params.means, dtype=np.float64)
    covs = _full_covariances(cell.covariance_type, cell.params.covariances, K, D)
    colors = plt.get_cmap("tab10")

    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=120)
    try:
        ax.scatter(X[:, 0], X[:, 1], s=12, c=[colors(int(z) % 10) for z in labels], alpha=0.7,
                   edgecolors="none")
        for k in range(K):
            color = colors(k % 10)
            # The first two coordinates' covariance block gives the ellipse in the plotted plane.
            values, vectors = np.linalg.eigh(covs[k][:2, :2])
            values = np.maximum(values, 0.0)
            angle = math.degrees(math.atan2(vectors[1, -1], vectors[0, -1]))
            for n_sigma, style in ((1, "-"), (2, "--")):
                ax.add_patch(Ellipse(
                    xy=means[k, :2],
                    width=2 * n_sigma * math.sqrt(values[-1]),
                    height=2 * n_sigma * math.sqrt(values[0]),
                    angle=angle, fill=False, edgecolor=color, linestyle=style, linewidth=1.5,
                ))
            ax.plot(means[k, 0], means[k, 1], marker="X", markersize=10, color=color,
                    markeredgecolor="black")
        ax.set_xlabel(f"{names[0]} (minutes)")
        ax.set_ylabel(f"{names[1]} (minutes)")
        ax.set_title(
            f"Old Faithful: K={K}, covariance_type='{cell.covariance_type}', "
            f"BIC={cell.bic:.2f}\n(1-sigma solid, 2-sigma dashed)"
        )
        ax.autoscale_view()
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
        labels = np.asarray(best.model.predict(best.params, X))
        _plot(best, np.asarray(X, dtype=np.float64), names, labels, output)
        print()
        print(f"Plot written to {output.resolve()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
