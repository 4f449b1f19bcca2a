"""`LatentDirichletAllocation`: scikit-learn's estimator interface over
`emjax.LatentDirichletAllocation`.

``fit`` builds the functional model from the hyperparameters, draws the initial ``λ`` as
scikit-learn does (``Gamma(100, 1/100)`` from ``random_state``, so that the same seed gives
the same start in both libraries) and runs batch variational EM, or online variational
Bayes through `emjax.OnlineEM`, with `emjax.fit`. ``partial_fit`` is scikit-learn's online
update, one E-step (the model's ``e_step``) per minibatch.

Counts may be non-negative real numbers (tf-idf weights, for instance), as scikit-learn
allows: the estimator validates ``X`` itself (finite, non-negative) and builds the model
with ``integer_counts=False``, whose variational updates are the same.
"""

from __future__ import annotations

import math
import numbers
import warnings

import jax
import numpy as np
import scipy.sparse as sp
from scipy.special import psi
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from .._fit import fit as _fit
from .._models._lda import LatentDirichletAllocation as _LDAModel
from .._models._lda import SparseCounts
from .._online import OnlineEM
from .._solution import ConvergenceWarning
from ._base import check_dtype, host_arrays, precision, random_key

_METHODS = ("batch", "online")


# ------------------------------------------------------------------ entry points


def _fit_once(model, data, params0, solver, key, max_steps: int):
    with warnings.catch_warnings():
        # scikit-learn runs max_iter iterations without warning.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _fit(model, data, params0=params0, solver=solver, key=key, max_steps=max_steps,
                    rtol=0.0, atol=0.0, throw=False)


def _gammas(model, params, data):
    """Every document's unnormalised ``γ``: one program for both ``normalize`` options."""
    return model.transform(params, data, normalize=False)


def _bound_parts(model, params, data):
    """``(document terms, topic–word term)`` of the bound on ``data``: the ELBO of
    `emjax.fit` with ``max_steps=0`` (one E-step at ``params``), the compiled program of a
    batch fit on data of this shape, which is then not compiled again."""
    elbo = _fit_once(model, data, params, None, None, 0).elbo
    return elbo.total - elbo.log_prior, elbo.log_prior


def _dirichlet_expectation(lam: np.ndarray) -> np.ndarray:
    return psi(lam) - psi(lam.sum(axis=1, keepdims=True))


class LatentDirichletAllocation(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Latent Dirichlet allocation with scikit-learn's ``LatentDirichletAllocation``
    interface, fitted by emjax's variational EM.

    Documents are rows of word counts ``n_dv``; topics are ``β_k ~ Dir(η)`` over the
    ``V`` words, documents' topic proportions ``θ_d ~ Dir(α)``. The mean-field posterior
    is ``q(β_k) = Dir(λ_k)`` (``components_`` is ``λ``), ``q(θ_d) = Dir(γ_d)`` and
    ``q(z_dv = k) = φ_dvk``. Each EM iteration runs every document's inner loop
    ``φ_dvk ∝ exp(E log θ_dk + E log β_kv)``, ``γ_dk = α + Σ_v n_dv φ_dvk`` (from
    ``γ_d = 1`` until the mean change of ``γ_d`` is below ``mean_change_tol``) and then the
    global update

    .. math::

        \text{batch: } λ_{kv} = η + \sum_d n_{dv} φ_{dvk}, \qquad
        \text{online: } λ ← (1 − ρ_t) λ + ρ_t \Big(η + \frac{D}{|B|}
            \sum_{d ∈ B} n_{dv} φ_{dvk}\Big),\ ρ_t = (τ_0 + t)^{−κ}

    for minibatches ``B`` (Hoffman, Blei & Bach 2010), ``τ_0 = learning_offset``,
    ``κ = learning_decay``. ``score`` is the evidence lower bound and ``perplexity``
    ``exp(−score / Σ n_dv)``, both exactly scikit-learn's definitions.

    **Differences from scikit-learn.** During ``fit`` scikit-learn starts every document's
    ``γ`` at a random draw, emjax at ``γ = 1`` (as both do in ``transform``), and emjax's
    digamma is exact where scikit-learn's is an approximation (errors about ``1e-9``);
    from the same ``random_state`` (hence the same initial ``λ``) batch fits agree closely
    but not to rounding. Online ``fit`` uses `emjax.OnlineEM` with scikit-learn's schedule:
    minibatches in row order (``shuffle=False``), ``ρ_t = (τ_0 + 1 + t)^{−κ}``, and running
    statistics started at ``λ_0 − η`` so that the first update blends in the initial ``λ``;
    ``partial_fit`` is scikit-learn's update exactly. ``evaluate_every > 0`` is supported for batch learning only. ``n_jobs`` is
    accepted and has no effect (XLA uses the machine's cores). ``n_iter_`` is the number
    of passes made (scikit-learn's is one less when ``perp_tol`` stops the fit), and a
    fit stops before ``max_iter`` when an iteration leaves the bound exactly unchanged
    (EM has reached a fixed point to rounding).

    Args:
        n_components: number of topics ``K``.
        doc_topic_prior: ``α > 0``; None for ``1/K``.
        topic_word_prior: ``η > 0``; None for ``1/K``.
        learning_method: "batch" (default) or "online".
        learning_decay: ``κ ∈ [0, 1]`` of the online step sizes.
        learning_offset: ``τ_0 >= 1`` of the online step sizes.
        max_iter: the most passes over the data (``>= 0``).
        batch_size: documents per minibatch (online learning and ``partial_fit``).
        evaluate_every: compute the perplexity every this many iterations of a batch
            fit, and stop when it changes by less than ``perp_tol``; ``<= 0`` never.
        total_samples: the number of documents, for ``partial_fit``'s update.
        perp_tol: perplexity tolerance (with ``evaluate_every > 0``).
        mean_change_tol: a document's inner loop stops when the mean absolute change of
            its ``γ`` is below this (``> 0``).
        max_doc_update_iter: the most inner-loop sweeps per document (``>= 1``).
        n_jobs: accepted for compatibility; no effect.
        verbose: print the iterations of ``fit`` (0: nothing).
        random_state: None, an int or a ``numpy.random.RandomState``; draws the initial
            ``λ`` (the same as scikit-learn's for the same seed) and the online
            minibatches.
        dtype: "float64" (default; computed with JAX's x64 switched on for this thread
            only) or "float32".

    Attributes:
        components_: ``λ``, ``(K, V)``; ``components_ / components_.sum(1)[:, None]``
            are the topics' word distributions.
        exp_dirichlet_component_: ``exp(E_q[log β])``, ``(K, V)``.
        n_batch_iter_: number of global updates made, plus one (scikit-learn's).
        n_iter_: number of passes over the data made by ``fit``.
        bound_: the perplexity of the training data at the end of ``fit``.
        doc_topic_prior_, topic_word_prior_: the priors used.
        n_features_in_: the vocabulary size ``V``.
        feature_names_in_: the column names, if ``X`` had string column names.
        random_state_: the ``RandomState`` drawn from (``partial_fit`` goes on with it).
        model_: the `emjax.LatentDirichletAllocation` fitted (NumPy leaves).
        params_: the `emjax.LDAParams` (NumPy leaves).
        solution_: the `emjax.Solution` of the last call of ``fit`` (its last chunk with
            ``evaluate_every > 0``).

    Raises:
        ValueError: in ``fit``, an invalid hyperparameter (named in the message) or one
            emjax cannot honour, before any compute.

    Example:
        >>> import numpy as np
        >>> from emjax.sklearn import LatentDirichletAllocation
        >>> X = np.random.default_rng(0).poisson(1.0, size=(40, 12))  # documents x words
        >>> lda = LatentDirichletAllocation(n_components=3, max_iter=5, random_state=0)
        >>> theta = lda.fit_transform(X)
        >>> theta.shape, lda.components_.shape
        ((40, 3), (3, 12))
        >>> bool(np.allclose(theta.sum(axis=1), 1.0))
        True
        >>> bool(np.isclose(lda.perplexity(X), np.exp(-lda.score(X) / X.sum())))
        True
    """

    def __init__(
        self,
        n_components=10,
        *,
        doc_topic_prior=None,
        topic_word_prior=None,
        learning_method="batch",
        learning_decay=0.7,
        learning_offset=10.0,
        max_iter=10,
        batch_size=128,
        evaluate_every=-1,
        total_samples=1e6,
        perp_tol=1e-1,
        mean_change_tol=1e-3,
        max_doc_update_iter=100,
        n_jobs=None,
        verbose=0,
        random_state=None,
        dtype="float64",
    ):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.learning_method = learning_method
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.evaluate_every = evaluate_every
        self.total_samples = total_samples
        self.perp_tol = perp_tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        dtype = self.dtype if isinstance(self.dtype, str) else np.dtype(self.dtype).name
        tags.transformer_tags.preserves_dtype = [dtype]
        return tags

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    # ------------------------------------------------------------------ validation
    def _check_hyperparameters(self):
        """Raise ValueError (naming the hyperparameter) for invalid values or options that
        emjax cannot honour; return ``(α, η)``."""
        K = _check_int(self.n_components, "n_components", 1)
        priors = []
        for name in ("doc_topic_prior", "topic_word_prior"):
            value = getattr(self, name)
            if value is None:
                value = 1.0 / K
            elif not _is_real(value) or not 0 < value < np.inf:
                raise ValueError(f"`{name}` must be None or a positive number; got {value!r}.")
            priors.append(float(value))
        if self.learning_method not in _METHODS:
            raise ValueError(f"`learning_method` must be 'batch' or 'online'; got "
                             f"{self.learning_method!r}.")
        _check_real(self.learning_decay, "learning_decay", 0.0, 1.0, "in [0, 1]")
        _check_real(self.learning_offset, "learning_offset", 1.0, np.inf, ">= 1")
        _check_int(self.max_iter, "max_iter", 0)
        _check_int(self.batch_size, "batch_size", 1)
        if isinstance(self.evaluate_every, bool) or not isinstance(
                self.evaluate_every, numbers.Integral):
            raise ValueError(f"`evaluate_every` must be an integer; got {self.evaluate_every!r}.")
        if self.evaluate_every > 0 and self.learning_method == "online":
            raise ValueError(
                "`evaluate_every` > 0 is supported with learning_method='batch' only (emjax's "
                "online fit is one compiled loop whose step-size schedule cannot be paused "
                "for a perplexity check); use evaluate_every=-1 or learning_method='batch'."
            )
        _check_real(self.total_samples, "total_samples", 0.0, np.inf, "> 0", open_low=True)
        _check_real(self.perp_tol, "perp_tol", 0.0, np.inf, ">= 0")
        _check_real(self.mean_change_tol, "mean_change_tol", 0.0, np.inf,
                    "> 0 (emjax's inner loop needs a positive tolerance)", open_low=True)
        _check_int(self.max_doc_update_iter, "max_doc_update_iter", 1)
        check_dtype(self.dtype)
        return tuple(priors)

    def _model(self, K, alpha, eta) -> _LDAModel:
        return _LDAModel(K, doc_topic_prior=alpha, topic_word_prior=eta,
                         max_doc_update_iter=int(self.max_doc_update_iter),
                         mean_change_tol=float(self.mean_change_tol), integer_counts=False)

    def _fitted_model(self) -> _LDAModel:
        """The functional model of the fitted topics (call it inside `precision`, so that
        its array hyperparameters are in the estimator's dtype)."""
        return self._model(self.components_.shape[0], self.doc_topic_prior_,
                           self.topic_word_prior_)

    def _check_X(self, X, reset: bool, whom: str):
        dtype = np.dtype(check_dtype(self.dtype))
        X = validate_data(self, X, reset=reset, accept_sparse="csr", dtype=dtype)
        check_non_negative(X, whom)
        return X

    @staticmethod
    def _counts(X):
        """The functional model's data: a dense array, or `emjax.lda.SparseCounts`."""
        if sp.issparse(X):
            return SparseCounts.from_scipy(X)
        return jax.numpy.asarray(X)

    def _init_latent_vars(self, n_features: int, alpha: float, eta: float):
        """scikit-learn's initial state: ``λ ~ Gamma(100, 1/100)`` from ``random_state``."""
        self.random_state_ = check_random_state(self.random_state)
        self.n_batch_iter_ = 1
        self.n_iter_ = 0
        self.doc_topic_prior_ = alpha
        self.topic_word_prior_ = eta
        dtype = np.dtype(check_dtype(self.dtype))
        lam = self.random_state_.gamma(100.0, 1.0 / 100.0, (self.n_components, n_features))
        self._set_components(lam.astype(dtype, copy=False))

    def _set_components(self, lam: np.ndarray):
        self.components_ = lam
        self.exp_dirichlet_component_ = np.exp(_dirichlet_expectation(lam))

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Learn the topics by variational EM (batch) or online variational Bayes.

        Args:
            X: ``(n_documents, n_words)`` counts: a dense array or a SciPy sparse matrix
                (e.g. from ``CountVectorizer``).
            y: ignored.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: invalid hyperparameters (see the class), or ``X`` with negative,
                NaN or infinite values.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import LatentDirichletAllocation
            >>> X = np.random.default_rng(0).poisson(1.0, size=(40, 12))  # documents x words
            >>> lda = LatentDirichletAllocation(n_components=3, max_iter=5, random_state=0).fit(X)
            >>> lda.n_iter_, lda.n_batch_iter_, bool(lda.bound_ > 1)
            (5, 6, True)
        """
        alpha, eta = self._check_hyperparameters()
        X = self._check_X(X, reset=True, whom="LatentDirichletAllocation.fit")
        M, V = X.shape
        words = float(X.sum())
        self._init_latent_vars(V, alpha, eta)
        max_iter = int(self.max_iter)
        online = self.learning_method == "online"
        evaluate = self.evaluate_every > 0
        chunk = int(self.evaluate_every) if evaluate else max_iter
        with precision(self.dtype):
            model = self._model(self.n_components, alpha, eta)
            data = self._counts(X)
            params = model.make_params(topic_word=self.components_)
            solver = key = None
            if online:
                solver = _online_solver(min(int(self.batch_size), M), self.learning_offset,
                                        self.learning_decay)
                key = random_key(self.random_state_)
            done, last = 0, None
            while True:
                steps = min(chunk, max_iter - done)
                sol = host_arrays(_fit_once(model, data, params, solver, key,
                                        steps))
                params = sol.params
                taken = int(sol.num_steps)
                stop = done + taken >= max_iter or taken < steps
                checked = evaluate and taken == chunk  # after every `evaluate_every` iterations
                perplexity = _perplexity(float(sol.elbo.total), words) if checked else None
                if self.verbose:
                    for i in range(done + 1, done + taken + 1):
                        tail = (f", perplexity: {perplexity:.4f}"
                                if checked and i == done + taken else "")
                        print(f"iteration: {i} of max_iter: {max_iter}{tail}")
                done += taken
                if checked:
                    stop = stop or (last is not None and abs(last - perplexity) < self.perp_tol)
                    last = perplexity
                if stop:
                    break
            self.n_iter_ = done
            passes = math.ceil(M / min(int(self.batch_size), M)) if online else 1
            self.n_batch_iter_ = 1 + done * passes
            self._set_components(np.asarray(params.topic_word))
            self.params_ = params
            self.solution_ = sol
            self.model_ = host_arrays(model)
            if online:
                # OnlineEM's ELBO is a running estimate: compute the bound exactly.
                doc, prior = host_arrays(_bound_parts(model, params, data))
                bound = float(doc) + float(prior)
            else:
                bound = float(sol.elbo.total)  # the exact bound at the fitted λ
            self.bound_ = _perplexity(bound, words)
        return self

    def partial_fit(self, X, y=None):
        """One online update per minibatch of ``batch_size`` documents of ``X`` (in row
        order), scikit-learn's online variational Bayes step:
        ``λ ← (1 − ρ) λ + ρ (η + (total_samples / |B|) Σ_{d∈B} n_dv φ_dvk)`` with
        ``ρ = (learning_offset + n_batch_iter_)^(−learning_decay)``.

        Args:
            X: ``(n_documents, n_words)`` counts, dense or SciPy sparse.
            y: ignored.

        Returns:
            ``self``.

        Raises:
            ValueError: invalid hyperparameters or ``X``, or a vocabulary that differs from
                the one fitted so far.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import LatentDirichletAllocation
            >>> X = np.random.default_rng(0).poisson(1.0, size=(40, 12))  # documents x words
            >>> online = LatentDirichletAllocation(3, batch_size=10, total_samples=40,
            ...                                    random_state=0)
            >>> online.partial_fit(X).n_batch_iter_  # four minibatches of 10 documents
            5
        """
        alpha, eta = self._check_hyperparameters()
        first = not hasattr(self, "components_")
        X = self._check_X(X, reset=first, whom="LatentDirichletAllocation.partial_fit")
        M, V = X.shape
        if first:
            self._init_latent_vars(V, alpha, eta)
        B = min(int(self.batch_size), M)
        with precision(self.dtype):
            model = self._fitted_model()
            data = self._counts(X)
            lam = np.asarray(self.components_)
            eta_ = float(self.topic_word_prior_)
            for start in range(0, M, B):
                rows = np.arange(start, start + B)
                valid = rows < M
                take = np.minimum(rows, M - 1)  # the last minibatch padded with weight 0
                batch = jax.tree.map(lambda a, take=take: a[take], data)
                weights = jax.numpy.asarray(valid.astype(lam.dtype))
                params = model.make_params(topic_word=lam)
                stats, _ = model.e_step(params, batch, weights)
                rho = (float(self.learning_offset) + self.n_batch_iter_) ** (
                    -float(self.learning_decay))
                scale = float(self.total_samples) / int(valid.sum())
                lam = (1.0 - rho) * lam + rho * (eta_ + scale * np.asarray(stats.topic_word))
                self.n_batch_iter_ += 1
            self._set_components(lam.astype(self.components_.dtype, copy=False))
            self.params_ = host_arrays(model.make_params(topic_word=self.components_))
            self.model_ = host_arrays(model)
        return self

    # ------------------------------------------------------------------ fitted model
    def transform(self, X, *, normalize=True):
        """Document–topic distributions: each document's ``γ`` (from ``γ = 1``), divided by
        its sum when ``normalize``.

        Args:
            X: ``(n_documents, n_words)`` counts, dense or SciPy sparse.
            normalize: divide each row by its sum (default True).

        Returns:
            ``(n_documents, K)`` array.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import LatentDirichletAllocation
            >>> X = np.random.default_rng(0).poisson(1.0, size=(40, 12))  # documents x words
            >>> lda = LatentDirichletAllocation(n_components=3, max_iter=5, random_state=0).fit(X)
            >>> theta = lda.transform(X)
            >>> theta.shape, bool(np.allclose(theta.sum(axis=1), 1.0))
            ((40, 3), True)
        """
        check_is_fitted(self, "components_")
        self._check_hyperparameters()
        X = self._check_X(X, reset=False, whom="LatentDirichletAllocation.transform")
        with precision(self.dtype):
            model = self._fitted_model()
            params = model.make_params(topic_word=self.components_)
            gamma = np.asarray(_gammas(model, params, self._counts(X)))
        if normalize:
            gamma = gamma / gamma.sum(axis=1, keepdims=True)
        return gamma

    def fit_transform(self, X, y=None, *, normalize=True):
        """Fit, then transform ``X`` (see `fit` and `transform`).

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import LatentDirichletAllocation
            >>> X = np.random.default_rng(0).poisson(1.0, size=(40, 12))  # documents x words
            >>> lda = LatentDirichletAllocation(n_components=3, max_iter=5, random_state=0).fit(X)
            >>> theta = LatentDirichletAllocation(3, max_iter=5, random_state=0).fit_transform(X)
            >>> bool(np.allclose(theta, lda.transform(X)))
            True
        """
        return self.fit(X, y).transform(X, normalize=normalize)

    def _bound(self, X, whom: str, sub_sampling: bool = False):
        """The bound on ``X`` (scikit-learn's ``_approx_bound``) and its word count, both
        scaled to ``total_samples`` documents with ``sub_sampling``."""
        check_is_fitted(self, "components_")
        self._check_hyperparameters()
        X = self._check_X(X, reset=False, whom=whom)
        ratio = float(self.total_samples) / X.shape[0] if sub_sampling else 1.0
        with precision(self.dtype):
            model = self._fitted_model()
            params = model.make_params(topic_word=self.components_)
            doc, prior = host_arrays(_bound_parts(model, params,
                                           self._counts(X)))
            return float(doc) * ratio + float(prior), float(X.sum()) * ratio

    def score(self, X, y=None) -> float:
        """The evidence lower bound on ``X`` (scikit-learn's approximate log-likelihood):
        the documents' terms plus ``−KL(q(β) ‖ p(β))``.

        Args:
            X: ``(n_documents, n_words)`` counts, dense or SciPy sparse.
            y: ignored.

        Returns:
            The bound (higher is better).

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import LatentDirichletAllocation
            >>> X = np.random.default_rng(0).poisson(1.0, size=(40, 12))  # documents x words
            >>> lda = LatentDirichletAllocation(n_components=3, max_iter=5, random_state=0).fit(X)
            >>> bool(lda.score(X) < 0)
            True
        """
        return self._bound(X, "LatentDirichletAllocation.score")[0]

    def perplexity(self, X, sub_sampling=False) -> float:
        """``exp(−score(X) / Σ n_dv)``, scikit-learn's perplexity (lower is better).

        Args:
            X: ``(n_documents, n_words)`` counts, dense or SciPy sparse.
            sub_sampling: scale the documents' terms and the word count by
                ``total_samples / n_documents`` (scikit-learn's option).

        Returns:
            The perplexity.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import LatentDirichletAllocation
            >>> X = np.random.default_rng(0).poisson(1.0, size=(40, 12))  # documents x words
            >>> lda = LatentDirichletAllocation(n_components=3, max_iter=5, random_state=0).fit(X)
            >>> bool(np.isclose(lda.perplexity(X), np.exp(-lda.score(X) / X.sum())))
            True
        """
        bound, words = self._bound(X, "LatentDirichletAllocation.perplexity", bool(sub_sampling))
        return _perplexity(bound, words)


# ---------------------------------------------------------------------- helpers
def _perplexity(bound: float, words: float) -> float:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return float(np.exp(-bound / np.float64(words)))


def _online_solver(batch_size: int, offset, decay) -> OnlineEM:
    """scikit-learn's ``ρ_t = (τ_0 + 1 + t)^(−κ)`` for updates ``t = 0, 1, ...``."""
    if decay == 0:
        return OnlineEM(batch_size=batch_size, step_size=1.0)
    return OnlineEM(batch_size=batch_size, offset=float(offset) + 1.0, decay=float(decay),
                    shuffle=False)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _check_real(value, name, low, high, what, open_low=False):
    ok = _is_real(value) and (low < value if open_low else low <= value) and value <= high
    if not ok or np.isnan(value):
        raise ValueError(f"`{name}` must be a number {what}; got {value!r}.")

