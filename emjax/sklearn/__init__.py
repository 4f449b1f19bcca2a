"""scikit-learn estimators over emjax's models: ``emjax.sklearn``.

A thin layer for people who already use scikit-learn: each estimator takes
scikit-learn's hyperparameters (same names and defaults), stores scikit-learn's fitted
attributes (``means_``, ``covariances_``, ``lower_bound_``, ``cluster_centers_``, ...) as
NumPy arrays, and works in ``Pipeline``, ``GridSearchCV``, ``clone`` and ``pickle``.
Underneath, ``fit`` builds the emjax model and runs one `emjax.fit`: the ``n_init``
restarts are one compiled program (``vmap``), and the computation is in float64 by
default (``dtype="float64"`` turns on ``jax.enable_x64`` for the calling thread only;
JAX's global configuration is never changed). emjax's own result stays on the fitted
estimator (``model_``, ``params_``, ``solution_``) for the functional API.

- `GaussianMixture`, `BayesianGaussianMixture` (``sklearn.mixture``), `KMeans`
  (``sklearn.cluster``);
- `GaussianHMM` (hmmlearn's interface) and `LatentDirichletAllocation`
  (``sklearn.decomposition``).

Options emjax does not implement (e.g. ``covariance_type="tied"`` for the Bayesian
mixture, ``algorithm="elkan"``) raise ValueError in ``fit`` rather than being ignored.
scikit-learn is needed for this module only: ``import emjax`` does not import it.

Example:
    >>> import emjax
    >>> from emjax.sklearn import GaussianMixture
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X = emjax.datasets.load_old_faithful()
    >>> pipe = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(X)
    >>> pipe.predict(X).shape
    (272,)
"""

from ._kmeans import KMeans as KMeans
from ._mixture import BayesianGaussianMixture as BayesianGaussianMixture
from ._mixture import GaussianMixture as GaussianMixture

__all__ = [
    "BayesianGaussianMixture",
    "GaussianHMM",
    "GaussianMixture",
    "KMeans",
    "LatentDirichletAllocation",
]

# The hidden Markov model and LDA estimators live in modules of their own, imported on
# first use.
_LAZY = {"GaussianHMM": "._hmm", "LatentDirichletAllocation": "._lda"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
