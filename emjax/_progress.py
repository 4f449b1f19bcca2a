"""Progress reports from inside a compiled fit.

`emjax.fit(..., progress=fn)` calls ``fn(info)`` on the host while the compiled loop runs.
Each EM iteration sends one small message (the step, the ELBO and whether each restart is
done) through a host callback; the host keeps the latest and forwards it to ``fn`` at most
every ``interval`` seconds, and once more when the fit ends. The callback function of the
compiled program is fixed and the reporter is found by a number passed as a traced value,
so a new ``fn`` for every call does not recompile anything.

Under ``vmap`` the callback receives every restart of the running batch at once
(``vmap_method="expand_dims"``), so a step costs one host call, not one per restart.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

_reporters: dict[int, "Reporter"] = {}
_ids = itertools.count(1)
_lock = threading.Lock()


class Reporter:
    """Host side of one fit's progress: the latest figures, forwarded to ``fn`` at most every
    ``interval`` seconds."""

    def __init__(self, fn: Callable[[dict], None], num_restarts: int, interval: float):
        self.fn = fn
        self.num_restarts = num_restarts
        self.interval = interval
        self.start = time.perf_counter()
        self.last_sent = -float("inf")
        self.info: dict | None = None
        self.error: BaseException | None = None

    def receive(self, step, elbo, done, converged):
        step, elbo, done, converged = (
            np.atleast_1d(np.asarray(a)) for a in (step, elbo, done, converged)
        )
        finite = elbo[np.isfinite(elbo)]
        self.info = {
            "step": int(step.max()),
            "elbo": float(finite.max()) if finite.size else float("nan"),
            "num_converged": int(converged.sum()),
            "num_running": int(done.size - done.sum()),
            "num_restarts": self.num_restarts,
            "elapsed": time.perf_counter() - self.start,
        }
        now = time.perf_counter()
        if now - self.last_sent >= self.interval:
            self.last_sent = now
            self.send(final=False)

    def send(self, final: bool):
        if self.info is None or self.error is not None:
            return
        info = dict(self.info, final=final, elapsed=time.perf_counter() - self.start)
        try:
            self.fn(info)
        except BaseException as e:  # noqa: BLE001 - re-raised by `fit` on the host
            self.error = e


def register(fn, num_restarts: int, interval: float) -> int:
    if not callable(fn):
        raise TypeError(f"`progress` must be a callable taking one dict, or None; got {fn!r}.")
    with _lock:
        rid = next(_ids) % (2**31 - 1)
        _reporters[rid] = Reporter(fn, num_restarts, interval)
    return rid


def finish(rid: int) -> None:
    """Send the last figures (``info["final"] = True``), forget the reporter, and re-raise
    what ``fn`` raised, if anything."""
    with _lock:
        reporter = _reporters.pop(rid, None)
    if reporter is None:
        return
    reporter.send(final=True)
    if reporter.error is not None:
        raise reporter.error


def _receive(rid, step, elbo, done, converged):
    # `rid` is the same for every restart of a batch (broadcast by expand_dims).
    reporter = _reporters.get(int(np.asarray(rid).reshape(-1)[0]))
    if reporter is not None:
        reporter.receive(step, elbo, done, converged)
    return np.zeros(np.shape(step), np.int32)


def report(rid, step, elbo, done, converged):
    """Send one iteration's figures to the host; returns an int32 zero that the loop adds to
    its step counter, so that the call is part of the loop's data flow and is not removed."""
    stop = jax.lax.stop_gradient
    return jax.pure_callback(
        _receive, jax.ShapeDtypeStruct(jnp.shape(step), jnp.int32),
        rid, step, stop(elbo), done, converged, vmap_method="expand_dims",
    )


def print_progress(info: dict, stream=None) -> None:
    """A ready-made ``progress`` function: one line per report on ``stream`` (stderr by
    default), e.g. ``step 40  ELBO -1130.26  converged 12/64  3.1 s``.

    Args:
        info: the dict `emjax.fit` passes: ``step`` (the furthest restart's step),
            ``elbo`` (the best finite ELBO), ``num_converged`` (restarts that met the
            tolerance), ``num_running`` (restarts still iterating), ``num_restarts``,
            ``elapsed`` (seconds) and ``final`` (True for the report sent at the end).
        stream: a text stream; ``sys.stderr`` if None.

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> print_progress({"step": 3, "elbo": -1.5, "num_converged": 1, "num_running": 1,
        ...                 "num_restarts": 2, "elapsed": 0.25, "final": False}, buf)
        >>> buf.getvalue()
        'step 3  ELBO -1.5  converged 1/2  0.2 s\\n'
    """
    stream = sys.stderr if stream is None else stream
    stream.write(
        f"step {info['step']}  ELBO {info['elbo']:.6g}  converged "
        f"{info['num_converged']}/{info['num_restarts']}  {info['elapsed']:.1f} s\n"
    )
    stream.flush()
