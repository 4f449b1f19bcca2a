"""A scikit-learn k-means estimator over `emjax.KMeans` (Lloyd's algorithm as hard EM)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

import emjax

from ._base import (
    check_block_size,
    check_dtype,
    check_int_param,
    check_option_param,
    check_real_param,
    host_arrays,
    precision,
    random_key,
)

INITS = {"k-means++": "kmeans++", "random": "random"}


class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    r"""k-means clustering with scikit-learn's interface, fitted by `emjax.KMeans`.

    Lloyd's algorithm (each point to its nearest centre, each centre to the weighted mean of
    its points, an emptied cluster taking the point farthest from its centre) runs as
    classification EM on the emjax engine: the ``n_init`` initialisations advance together
    (``vmap``) in one compiled program, in float64 by default, and the one with the lowest
    inertia is kept. From the same initial centres it reaches scikit-learn's centres,
    labels and inertia (its Lloyd algorithm; tested to 1e-10).

    **Convergence.** scikit-learn stops when the labels no longer change, or when the
    squared centre shift ``Σ_k ‖Δc_k‖²`` falls to ``tol · mean(var(X))``. emjax tests the
    change of its objective, here the inertia ``I = Σ_i w_i ‖x_i − c_{z_i}‖²``. One Lloyd
    step lowers it by at least ``Σ_k W_k ‖Δc_k‖²`` (``W_k`` the weight in cluster ``k``),
    which is ``(W/K) Σ_k ‖Δc_k‖²`` for clusters of equal weight, so the fit stops when
    ``I`` changes by at most ``tol · mean(var(X)) · W / K`` (``W`` the total weight). Both
    rules stop at the same fixed point with ``tol=0`` (where a change of the inertia within
    16 ulps of the objective, left by centres that move by rounding only, counts as none,
    as unchanged labels do in scikit-learn); with ``tol > 0`` they may stop an iteration or
    so apart.

    Args:
        n_clusters: the number of clusters ``K >= 1``.
        init: "k-means++" (default), "random" (``K`` distinct data points), or an array
            of initial centres, shape ``(n_clusters, n_features)`` (then one
            initialisation). Callables are not supported (ValueError).
        n_init: the number of initialisations, or "auto" (default: 1 for "k-means++" and
            an array, 10 for "random"), as in scikit-learn.
        max_iter: the most Lloyd iterations, ``>= 1``.
        tol: ``>= 0``, relative to the mean variance of the features (see above).
        verbose: 0 (silent) or more (one line per initialisation, after the fit).
        random_state: None, an int or a ``numpy.random.RandomState``: the seed of the JAX
            key the initialisations are drawn from.
        copy_x: accepted for compatibility; ``X`` is never modified.
        algorithm: "lloyd" (the only one: "elkan" raises ValueError).
        dtype: emjax extra: "float64" (default; a thread-local ``jax.enable_x64``) or
            "float32".
        block_size: emjax extra: rows per block of a pass over the data.

    Attributes:
        cluster_centers_: shape ``(n_clusters, n_features)``.
        labels_: the nearest centre of each training point, shape ``(n_samples,)``.
        inertia_: the (weighted) sum of squared distances to the nearest centre.
        n_iter_: the number of centre updates of the best initialisation.
        n_features_in_: the number of features seen in ``fit``.
        model_: the `emjax.KMeans` that was fitted.
        params_: its fitted `emjax.KMeansParams` (NumPy leaves).
        solution_: emjax's `emjax.Solution` (every initialisation's outcome).

    Example:
        >>> import emjax
        >>> from emjax.sklearn import KMeans
        >>> X = emjax.datasets.load_old_faithful()
        >>> km = KMeans(n_clusters=2, n_init=4, random_state=0).fit(X)
        >>> km.cluster_centers_.shape, km.labels_.shape
        ((2, 2), (272,))
        >>> round(km.inertia_, 1)
        8901.8
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        copy_x=True,
        algorithm="lloyd",
        dtype="float64",
        block_size=None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.dtype = dtype
        self.block_size = block_size

    # ------------------------------------------------------------------ checks
    def _validate_X(self, X, *, reset: bool):
        dtype = check_dtype(self.dtype) if reset else self.cluster_centers_.dtype.name
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)
        return np.asarray(X, dtype)

    def _check(self, X):
        """The hyperparameters checked against ``X``; returns the initial centres (or None)
        and the number of initialisations."""
        n, D = X.shape
        K = check_int_param(self.n_clusters, "n_clusters", 1)
        check_int_param(self.max_iter, "max_iter", 1)
        check_real_param(self.tol, "tol", 0.0)
        check_int_param(self.verbose, "verbose", 0)
        check_block_size(self.block_size)
        check_option_param(self.algorithm, "algorithm", ("lloyd", "elkan"))
        if self.algorithm == "elkan":
            raise ValueError(
                "`algorithm`='elkan' is not supported: emjax runs Lloyd's iterations (which "
                "give the same clustering); use algorithm='lloyd'."
            )
        if n < K:
            raise ValueError(f"n_samples={n} should be >= n_clusters={K}.")
        centers = None
        if isinstance(self.init, str):
            check_option_param(self.init, "init", tuple(INITS))
        elif callable(self.init):
            raise ValueError(
                "A callable `init` is not supported; pass 'k-means++', 'random' or an array of "
                "initial centres of shape (n_clusters, n_features)."
            )
        else:
            try:
                centers = np.asarray(self.init, X.dtype)
            except (TypeError, ValueError) as e:
                raise ValueError(f"`init` must be 'k-means++', 'random' or an array of centres; "
                                 f"got {self.init!r}.") from e
            if centers.shape != (K, D):
                raise ValueError(f"`init` must have shape (n_clusters, n_features) = {(K, D)}; "
                                 f"got {centers.shape}.")
            if not np.isfinite(centers).all():
                raise ValueError("`init` (the initial centres) must be finite.")
        if isinstance(self.n_init, str) and self.n_init == "auto":
            n_init = 10 if isinstance(self.init, str) and self.init == "random" else 1
        else:
            if isinstance(self.n_init, str):
                raise ValueError(f"`n_init` must be 'auto' or an integer >= 1; got {self.n_init!r}.")
            n_init = check_int_param(self.n_init, "n_init", 1)
        if centers is not None and n_init != 1:
            warnings.warn(
                f"Explicit initial centres passed: performing one initialisation instead of "
                f"n_init={n_init}.", RuntimeWarning, stacklevel=3)
            n_init = 1
        return centers, n_init

    def _sample_weight(self, sample_weight, n: int, dtype):
        if sample_weight is None:
            return None
        try:
            w = np.asarray(sample_weight, dtype)
        except (TypeError, ValueError) as e:
            raise ValueError(f"`sample_weight` must be numeric; got {sample_weight!r}.") from e
        if w.ndim == 0:
            w = np.full(n, w, dtype)
        if w.shape != (n,):
            raise ValueError(f"`sample_weight` must have shape ({n},), one weight per sample; "
                             f"got {w.shape}.")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("`sample_weight` must be finite and non-negative.")
        if not (w > 0).any():
            raise ValueError("Sample weights must contain at least one non-zero number; "
                             "`sample_weight` is all zero.")
        return w

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, sample_weight=None):
        """Cluster ``X`` by Lloyd's algorithm, ``n_init`` initialisations at once.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: ignored.
            sample_weight: optional non-negative weights, shape ``(n_samples,)``.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: a hyperparameter, ``X`` or ``sample_weight`` that cannot work
                (checked before any compute).
        """
        X = self._validate_X(X, reset=True)
        centers, n_init = self._check(X)
        w = self._sample_weight(sample_weight, X.shape[0], X.dtype)
        K = self.n_clusters
        with precision(X.dtype.name):
            init = "kmeans++" if centers is not None else INITS[self.init]
            model = emjax.KMeans(K, init=init)
            params0 = None if centers is None else model.make_params(centers=centers)
            total = X.shape[0] if w is None else float(w.sum())
            tol = float(np.mean(np.var(X, axis=0))) * self.tol
            # The ELBO is −inertia/2 + constant (temperature 1): see the class docstring.
            atol = tol * total / K / 2.0
            # Labels that stop changing leave centres that move by rounding only, and an
            # ELBO that changes in its last bits: a few ulps count as no change.
            rtol = 16 * float(np.finfo(X.dtype).eps)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", emjax.ConvergenceWarning)
                solution = emjax.fit(model, X, key=random_key(self.random_state),
                                     num_restarts=n_init, params0=params0, sample_weight=w,
                                     max_steps=self.max_iter, rtol=rtol, atol=atol,
                                     block_size=self.block_size)
            steps = int(solution.num_steps)
            solution = host_arrays(solution)
            self.model_ = host_arrays(model)
            self.params_ = solution.params
            self.solution_ = solution
            self.cluster_centers_ = solution.params.centers
            self.labels_ = np.asarray(model.predict(self.params_, X), np.int32)  # as sklearn
            self.inertia_ = float(model.inertia(self.params_, X, sample_weight=w))
            self.n_iter_ = steps
        self._n_features_out = K
        if self.verbose:
            # emjax's ELBO is −inertia/2 − W (log K + (D/2) log 2π) at temperature 1.
            const = total * (np.log(K) + 0.5 * X.shape[1] * np.log(2 * np.pi))
            inertia = -2.0 * (np.atleast_1d(solution.restart_elbos) + const)
            for r, s in enumerate(np.atleast_1d(solution.restart_num_steps)):
                print(f"Initialization {r}: {int(s)} iterations, inertia {inertia[r]:.6g}")
        distinct = len(np.unique(self.labels_))
        if distinct < K:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({K}). "
                "Possibly due to duplicate points in X.", ConvergenceWarning, stacklevel=2)
        return self

    # ------------------------------------------------------------------ methods
    def _apply(self, X, method: str, *args):
        with precision(X.dtype.name):
            return np.asarray(getattr(self.model_, method)(self.params_, X, *args))

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return ``labels_``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: ignored.
            sample_weight: optional weights, shape ``(n_samples,)``.

        Returns:
            Integer labels, shape ``(n_samples,)``.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X):
        """The nearest centre of each row of ``X``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            Integer labels, shape ``(n_samples,)``.
        """
        check_is_fitted(self)
        return self._apply(self._validate_X(X, reset=False), "predict").astype(np.int32)

    def transform(self, X):
        """Euclidean distances of each row of ``X`` to each centre.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            Array of shape ``(n_samples, n_clusters)``.
        """
        check_is_fitted(self)
        return self._apply(self._validate_X(X, reset=False), "transform")

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return the distances of each row of ``X`` to each centre.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: ignored.
            sample_weight: optional weights, shape ``(n_samples,)``.

        Returns:
            Array of shape ``(n_samples, n_clusters)``.
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Minus the inertia of ``X`` with the fitted centres (higher is better).

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: ignored.
            sample_weight: optional weights, shape ``(n_samples,)``.

        Returns:
            A float, ``−Σ_i w_i min_k ‖x_i − c_k‖²``.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        w = self._sample_weight(sample_weight, X.shape[0], X.dtype)
        return -float(self._apply(X, "inertia", w))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        # Outputs are in the estimator's dtype whatever the input's.
        tags.transformer_tags.preserves_dtype = [self.dtype] if self.dtype in ("float64", "float32") else []
        return tags
