"""Helpers shared by several test modules (not a test module itself)."""

import os
import subprocess
import sys

import numpy as np
from scipy.special import psi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter with JAX's defaults (x64 off); return its stdout."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("JAX_ENABLE_X64", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# ----------------------------------------------------------- scikit-learn's LDA, made exact
# scikit-learn's LDA differs from emjax's in two places that the parity tests patch out: its
# digamma is a fast series (errors ~1e-9), and during `fit` each document's γ starts at a
# random draw (emjax, and scikit-learn's own `transform`, start at 1).


def _exact_1d(doc_topic, prior, out):
    doc_topic += prior
    out[:] = np.exp(psi(doc_topic) - psi(np.sum(doc_topic)))


def exact_dirichlet_expectation_2d(arr):
    """``E[log β]`` of Dirichlet rows with SciPy's digamma."""
    arr = np.asarray(arr)
    return psi(arr) - psi(np.sum(arr, axis=1))[:, None]


def use_exact_digamma(monkeypatch):
    """scikit-learn's LDA with SciPy's digamma instead of its fast approximation."""
    import sklearn.decomposition._lda as sk_lda_module

    monkeypatch.setattr(sk_lda_module, "cy_dirichlet_expectation_1d",
                        {"float": _exact_1d, "double": _exact_1d})
    monkeypatch.setattr(sk_lda_module, "_dirichlet_expectation_2d",
                        exact_dirichlet_expectation_2d)


def ones_init(sk):
    """scikit-learn's E-step during ``fit`` started from γ = 1 (as emjax's), not at random."""
    e_step = sk._e_step
    sk._e_step = lambda X, cal_sstats, random_init, parallel=None: e_step(X, cal_sstats, False,
                                                                           parallel)
    return sk
