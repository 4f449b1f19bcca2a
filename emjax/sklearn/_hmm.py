"""`GaussianHMM`: hmmlearn's estimator interface over `emjax.HiddenMarkovModel`.

The estimator holds hmmlearn's hyperparameters, builds the functional model in ``fit``
(``HiddenMarkovModel(n_components, GaussianEmissions(covariance_type, reg_covar=min_covar))``)
and runs Baum–Welch with `emjax.fit` (``n_init`` restarts, vmapped). Fitted parameters are
stored as NumPy arrays under hmmlearn's names; every method rebuilds `emjax.HMMParams` from
those attributes, so that setting ``startprob_``, ``transmat_``, ``means_`` or ``covars_`` by
hand works as it does in hmmlearn.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

from .._fit import fit as _fit
from .._models._emissions import GaussianEmissions
from .._models._hmm import HiddenMarkovModel, HMMParams
from .._solution import RESULTS, ConvergenceWarning, Solution
from ._base import check_dtype, host_arrays, precision, random_key

_COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
_ALGORITHMS = ("viterbi", "map")
_IMPLEMENTATIONS = ("log", "scaling")
_PARAMS = "stmc"


class ConvergenceMonitor:
    """What became of a fit's iterations, under the names of hmmlearn's ``monitor_``.

    Attributes:
        tol: the ``tol`` of the fit.
        n_iter: the ``n_iter`` of the fit.
        verbose: the ``verbose`` of the fit.
        history: the log-likelihoods of the parameters after ``0, 1, …, iter`` updates of
            the best restart (``iter + 1`` values; the last one is that of the fitted
            parameters, which hmmlearn's history leaves out).
        iter: the number of EM updates that produced the fitted parameters.
        converged: whether the log-likelihood changed by less than ``tol`` in one step
            (hmmlearn also reports True when ``n_iter`` was reached; this does not).

    Example:
        >>> from emjax.sklearn._hmm import ConvergenceMonitor
        >>> m = ConvergenceMonitor(tol=0.01, n_iter=10, verbose=False,
        ...                        history=[-12.0, -10.5, -10.495], iter=2, converged=True)
        >>> m.converged, m.iter
        (True, 2)
    """

    def __init__(self, tol, n_iter, verbose, history, iter, converged):  # noqa: A002
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history = list(history)
        self.iter = int(iter)
        self.converged = bool(converged)

    def __repr__(self) -> str:
        return (f"ConvergenceMonitor(tol={self.tol!r}, n_iter={self.n_iter!r}, "
                f"iter={self.iter}, converged={self.converged}, history={self.history!r})")


class GaussianHMM(BaseEstimator):
    r"""A hidden Markov model with Gaussian emissions, with hmmlearn's ``GaussianHMM``
    interface, fitted by emjax's Baum–Welch.

    ``p(x_{1:T}, z_{1:T}) = π_{z_1} Π_t A_{z_t z_{t+1}} Π_t N(x_t | μ_{z_t}, Σ_{z_t})``.
    ``fit`` runs EM (`emjax.fit` on `emjax.HiddenMarkovModel` with `emjax.GaussianEmissions`):
    the E-step is the log-space forward–backward algorithm over every sequence, the M-step

    .. math::

        π ∝ \sum_s γ_{s,1} + α_π − 1, \quad
        A_{i·} ∝ \sum_{s,t} ξ_{s,t}(i, ·) + α_{A} − 1, \quad
        μ_k = \frac{\sum γ_t(k) x_t}{\sum γ_t(k)}, \quad
        Σ_k = \frac{\sum_t γ_t(k) (x_t − μ_k)(x_t − μ_k)^⊤}{\sum_t γ_t(k)}
            + \text{min\_covar}\, I

    (diagonal, spherical or tied variants of ``Σ_k``), until the log-likelihood gains less
    than ``tol`` in one iteration or after ``n_iter`` iterations. ``n_init`` restarts run
    together (``vmap``) and the one with the highest log-likelihood is kept.

    Data follow hmmlearn: ``X`` is ``(n_samples, n_features)`` with the sequences
    concatenated along the rows, and ``lengths`` (optional) their lengths.

    **Differences from hmmlearn 0.3.** The covariance M-step is maximum likelihood plus
    ``min_covar`` on the diagonal (emjax's ``reg_covar``), in every iteration; hmmlearn
    uses ``min_covar`` only for its initial covariances and regularises through
    ``covars_prior`` (default ``1e-2``, added to every scatter before dividing by the
    state's weight), which is not supported here (nor ``means_prior``, ``means_weight``,
    ``covars_weight``); with ``min_covar=0`` and hmmlearn's ``covars_prior=0`` both are
    maximum likelihood and agree to rounding from the same start. The initialisation is
    emjax's (k-means++ seeds, then the means and covariances of the points nearest each;
    a uniform ``startprob_``; a "sticky" random ``transmat_``), not hmmlearn's (k-means
    means, the data's covariance, Dirichlet draws). ``params`` must contain all of ``"stmc"`` (every parameter is
    updated). The forward–backward runs in log space whatever ``implementation`` says
    (``"scaling"`` gives the same numbers up to rounding). At convergence the fitted
    parameters are those whose log-likelihood met the test (hmmlearn takes one more
    M-step). ``monitor_.converged`` is True only when ``tol`` was met. Reaching
    ``n_iter`` does not warn.

    Args:
        n_components: number of hidden states ``K``.
        covariance_type: "diag" (default), "full", "spherical" or "tied".
        min_covar: added to the diagonal of every covariance in every M-step (``>= 0``).
        startprob_prior: Dirichlet concentration(s) ``>= 1`` of a prior on ``startprob_``
            (scalar or ``(K,)``; 1 is no prior).
        transmat_prior: Dirichlet concentrations ``>= 1`` on each row of ``transmat_``
            (scalar or ``(K, K)``).
        algorithm: the decoder of ``predict`` and ``decode``: "viterbi" (the most
            probable state path) or "map" (the most probable state at every step).
        random_state: None, an int or a ``numpy.random.RandomState`` (seeds the
            initialisation and ``sample``).
        n_iter: the most EM iterations (``>= 0``).
        tol: stop when the log-likelihood gains less than this in one iteration (absolute,
            on the total over all sequences); a negative value runs all ``n_iter``.
        verbose: print the log-likelihood of every iteration to ``sys.stderr`` after the
            fit (hmmlearn's format).
        params: parameters updated in fit; must contain "s", "t", "m" and "c".
        init_params: parameters initialised in fit ("s" startprob, "t" transmat,
            "m" means, "c" covars); the others are taken from the attributes set
            beforehand (and are initialised anyway if not set, as hmmlearn does).
        implementation: "log" or "scaling" (accepted for compatibility; see above).
        n_init: number of restarts, run together (``vmap``). Restarts differ only in the
            parameters that are initialised.
        dtype: "float64" (default; computed with JAX's x64 switched on for this thread
            only) or "float32".

    Attributes:
        startprob_: ``(K,)`` initial state probabilities.
        transmat_: ``(K, K)`` transition matrix, rows sum to 1.
        means_: ``(K, n_features)`` state means.
        covars_: ``(K, n_features, n_features)`` state covariances, full matrices for
            every ``covariance_type`` (hmmlearn's convention); set it in the compact
            shape of the ``covariance_type``: ``(K,)`` spherical, ``(K, D)`` diag,
            ``(K, D, D)`` full, ``(D, D)`` tied.
        n_features: number of features ``D``.
        n_features_in_: the same, under scikit-learn's name.
        monitor_: a `ConvergenceMonitor` (``history``, ``iter``, ``converged``).
        converged_: whether the best restart converged.
        n_iter_: number of EM updates of the best restart.
        model_: the `emjax.HiddenMarkovModel` fitted (NumPy leaves).
        params_: the fitted `emjax.HMMParams` (NumPy leaves).
        solution_: the `emjax.Solution` of the fit (every restart's outcome).

    Raises:
        ValueError: in ``fit``, a hyperparameter emjax cannot honour or that is invalid
            (named in the message), before any compute.

    Example:
        >>> import numpy as np
        >>> from emjax.sklearn import GaussianHMM
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
        >>> hmm = GaussianHMM(n_components=2, random_state=0).fit(X, lengths=[60, 40])
        >>> hmm.transmat_.shape, hmm.covars_.shape
        ((2, 2), (2, 2, 2))
        >>> states = hmm.predict(X, lengths=[60, 40])
        >>> bool(states[0] != states[-1])
        True
        >>> log_prob, posteriors = hmm.score_samples(X, lengths=[60, 40])
        >>> posteriors.shape
        (100, 2)

        Parameters may also be set by hand, as in hmmlearn (see `sample`).
    """

    def __init__(
        self,
        n_components=1,
        covariance_type="diag",
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmc",
        init_params="stmc",
        implementation="log",
        n_init=1,
        dtype="float64",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.dtype = dtype

    # ------------------------------------------------------------------ covars_
    @property
    def covars_(self) -> np.ndarray:
        """``(K, D, D)`` covariance matrices whatever the ``covariance_type`` (hmmlearn's
        convention); assign the compact shape of the ``covariance_type``."""
        D = np.shape(self.means_)[-1]
        return _full_covariances(self._covars_, self.covariance_type, self.n_components, D)

    @covars_.setter
    def covars_(self, value):
        self._covars_ = np.array(value, dtype=float, copy=True)

    # ------------------------------------------------------------------ validation
    def _check_hyperparameters(self) -> None:
        """Raise ValueError (naming the hyperparameter) for invalid values and for what
        emjax cannot honour."""
        if self.covariance_type not in _COVARIANCE_TYPES:
            raise ValueError(f"`covariance_type` must be one of {_COVARIANCE_TYPES}; got "
                             f"{self.covariance_type!r}.")
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"`algorithm` must be 'viterbi' or 'map'; got {self.algorithm!r}.")
        if self.implementation not in _IMPLEMENTATIONS:
            raise ValueError(f"`implementation` must be 'log' or 'scaling'; got "
                             f"{self.implementation!r}.")
        if not isinstance(self.params, str) or not set(_PARAMS) <= set(self.params):
            raise ValueError(
                f"`params` must contain all of 's', 't', 'm' and 'c' (emjax updates every "
                f"parameter in its M-step); got {self.params!r}."
            )
        if not isinstance(self.init_params, str):
            raise ValueError(f"`init_params` must be a string of the letters 's', 't', 'm', "
                             f"'c'; got {self.init_params!r}.")
        _check_int(self.n_components, "n_components", 1)
        _check_int(self.n_iter, "n_iter", 0)
        _check_int(self.n_init, "n_init", 1)
        if not _is_real(self.tol) or np.isnan(self.tol):
            raise ValueError(f"`tol` must be a number; got {self.tol!r}.")
        if not _is_real(self.min_covar) or not (0 <= self.min_covar < np.inf):
            raise ValueError(f"`min_covar` must be a finite number >= 0; got {self.min_covar!r}.")
        K = self.n_components
        for name, shape in (("startprob_prior", (K,)), ("transmat_prior", (K, K))):
            value = np.asarray(getattr(self, name), dtype=float)
            try:
                value = np.broadcast_to(value, shape)
            except ValueError:
                raise ValueError(f"`{name}` must be a scalar or have shape {shape}; got shape "
                                 f"{value.shape}.") from None
            if not np.isfinite(value).all() or (value < 1).any():
                raise ValueError(
                    f"`{name}` must be Dirichlet concentrations >= 1 (1 is no prior); got a "
                    f"minimum of {value.min()} (emjax's MAP M-step is unbounded below 1)."
                )
        check_dtype(self.dtype)

    def _model(self) -> HiddenMarkovModel:
        """The functional model (built inside `precision`, so that its array
        hyperparameters are in the estimator's dtype)."""
        return HiddenMarkovModel(
            self.n_components,
            emissions=GaussianEmissions(self.covariance_type, reg_covar=float(self.min_covar)),
            initial_prior=self.startprob_prior,
            transition_prior=self.transmat_prior,
        )

    def _validate_X(self, X):
        return check_array(X, dtype=np.dtype(check_dtype(self.dtype)))

    @staticmethod
    def _data(X, lengths):
        return X if lengths is None else (X, np.asarray(lengths))

    def _current_params(self, model: HiddenMarkovModel) -> HMMParams:
        """`emjax.HMMParams` from the fitted (or hand-set) attributes."""
        check_is_fitted(self, ["startprob_", "transmat_", "means_", "_covars_"])
        dtype = np.dtype(check_dtype(self.dtype))
        return model.make_params(
            initial=np.asarray(self.startprob_, dtype),
            transition=np.asarray(self.transmat_, dtype),
            means=np.asarray(self.means_, dtype),
            covariances=np.asarray(self._covars_, dtype),
        )

    # ------------------------------------------------------------------ fit
    def fit(self, X, lengths=None):
        """Estimate the parameters by Baum–Welch (EM), with ``n_init`` restarts.

        Args:
            X: ``(n_samples, n_features)`` observations, the sequences concatenated.
            lengths: lengths of the sequences (summing to ``n_samples``); None for one
                sequence.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: invalid hyperparameters or options emjax cannot honour (see the
                class), invalid ``X`` or ``lengths``, fewer time steps than states, or a
                fit in which every restart produced non-finite parameters.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> hmm.n_iter_ <= 10, hmm.means_.shape
            (True, (2, 2))
        """
        self._check_hyperparameters()
        X = self._validate_X(X)
        with precision(self.dtype):
            model = self._model()
            data = self._data(X, lengths)
            seqs = model.check_data(data)  # lengths and values checked before any compute
            key = random_key(self.random_state)
            options = dict(max_steps=int(self.n_iter), rtol=0.0, atol=max(float(self.tol), 0.0),
                           throw=False)
            with warnings.catch_warnings():
                # hmmlearn does not warn when n_iter is reached: `converged_` tells.
                warnings.simplefilter("ignore", ConvergenceWarning)
                params0 = self._initial_params(model, seqs, key)
                if params0 is None:
                    sol = _fit(model, seqs, key=key, num_restarts=int(self.n_init), **options)
                else:
                    sol = _fit(model, seqs, params0=params0, **options)
            if bool(sol.result == RESULTS.nonfinite):
                raise ValueError(
                    "Fitting the HMM failed: every restart produced non-finite parameters (a "
                    "state with an ill-defined covariance). Increase `min_covar`, use fewer "
                    "states, or scale the data."
                )
            self._store(host_arrays(sol), X.shape[1])
            self.model_ = host_arrays(model)
        return self

    def _initial_params(self, model, seqs, key):
        """None when every parameter is initialised by emjax; else the initial parameters
        (a batch over restarts), with the attributes that are not to be initialised."""
        keep = {c: c not in self.init_params and hasattr(self, name)
                for c, name in zip(_PARAMS, ("startprob_", "transmat_", "means_", "_covars_"),
                                   strict=True)}
        if not any(keep.values()):
            return None
        D = seqs.observations.shape[-1]
        dtype = np.dtype(check_dtype(self.dtype))
        user = {}
        if keep["s"]:
            user["initial"] = np.asarray(self.startprob_, dtype)
        if keep["t"]:
            user["transition"] = np.asarray(self.transmat_, dtype)
        if keep["m"]:
            user["means"] = _check_shape(self.means_, (self.n_components, D), "means_", dtype)
        if keep["c"]:
            user["covariances"] = _check_shape(
                self._covars_, _compact_shape(self.covariance_type, self.n_components, D),
                "covars_", dtype)
        if all(keep.values()):
            return model.make_params(**user)
        # emjax's initialisation of every restart (no EM step), then the kept attributes.
        init = _fit(model, seqs, key=key, num_restarts=int(self.n_init), max_steps=0,
                    throw=False).restart_params
        R = init.initial.shape[0]

        def pick(name, current):
            value = user.get(name)
            return current if value is None else np.broadcast_to(value, (R,) + value.shape)

        return model.make_params(
            initial=pick("initial", init.initial),
            transition=pick("transition", init.transition),
            means=pick("means", init.emissions.means),
            covariances=pick("covariances", init.emissions.covariances),
        )

    def _store(self, sol: Solution, n_features: int):
        p = sol.params
        self.startprob_ = p.initial
        self.transmat_ = p.transition
        self.means_ = p.emissions.means
        self._covars_ = p.emissions.covariances
        self.n_features = n_features
        self.n_features_in_ = n_features
        self.params_ = p
        self.solution_ = sol
        self.n_iter_ = int(sol.num_steps)
        self.converged_ = bool(sol.converged)
        history = [float(v) for v in sol.elbo_trace[: self.n_iter_ + 1]]
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose, history,
                                           self.n_iter_, self.converged_)
        if self.verbose:
            for i, value in enumerate(history):
                delta = value - history[i - 1] if i else float("nan")
                print(f"{i + 1:>10d} {value:>16.8f} {delta:>+16.8f}", file=sys.stderr)

    # ------------------------------------------------------------------ inference
    def score(self, X, lengths=None) -> float:
        """Log-likelihood ``log p(X)`` of the model, summed over the sequences.

        Args:
            X: ``(n_samples, n_features)`` observations, the sequences concatenated.
            lengths: lengths of the sequences; None for one sequence.

        Returns:
            The log-likelihood (a float).

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> score = hmm.score(X, lengths=[60, 40])
            >>> bool(np.isclose(score, hmm.monitor_.history[-1]))  # the fit's last value
            True
        """
        self._check_hyperparameters()
        X = self._validate_X(X)
        with precision(self.dtype):
            model = self._model()
            p = self._current_params(model)
            return float(model.log_likelihood(p, self._data(X, lengths)))

    def score_samples(self, X, lengths=None):
        """Log-likelihood and smoothed state posteriors (hmmlearn's ``score_samples``).

        Args:
            X: ``(n_samples, n_features)`` observations, the sequences concatenated.
            lengths: lengths of the sequences; None for one sequence.

        Returns:
            ``(log_prob, posteriors)``: ``log p(X)`` summed over sequences, and the
            ``(n_samples, K)`` marginals ``p(z_t = k | x)`` of every step.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> log_prob, posteriors = hmm.score_samples(X, lengths=[60, 40])
            >>> posteriors.shape, bool(np.allclose(posteriors.sum(axis=1), 1.0))
            ((100, 2), True)
        """
        self._check_hyperparameters()
        X = self._validate_X(X)
        with precision(self.dtype):
            model = self._model()
            p = self._current_params(model)
            data = self._data(X, lengths)
            log_prob = float(model.log_likelihood(p, data))
            posteriors = np.asarray(model.predict_proba(p, data))
        return log_prob, posteriors

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        """Smoothed state posteriors ``p(z_t = k | x)``, ``(n_samples, K)``.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> hmm.predict_proba(X, lengths=[60, 40]).shape
            (100, 2)
        """
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """The most likely state sequence (hmmlearn's ``decode``).

        "viterbi" gives the most probable path of every sequence (`emjax.hmm.viterbi`)
        and its joint log-probability ``log p(x, z*)``, summed over the sequences. "map"
        gives the most probable state of every step, and, as hmmlearn, the sum over the
        steps of that state's posterior probability (not a log-probability).

        Args:
            X: ``(n_samples, n_features)`` observations, the sequences concatenated.
            lengths: lengths of the sequences; None for one sequence.
            algorithm: "viterbi" or "map"; default the estimator's ``algorithm``.

        Returns:
            ``(log_prob, state_sequence)`` with ``state_sequence`` of shape
            ``(n_samples,)``.

        Raises:
            ValueError: an unknown ``algorithm``.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> log_prob, states = hmm.decode(X, lengths=[60, 40])
            >>> bool(log_prob <= hmm.score(X, lengths=[60, 40])), states.shape
            (True, (100,))
            >>> hmm.decode(X, lengths=[60, 40], algorithm="map")[1].shape
            (100,)
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        if algorithm not in _ALGORITHMS:
            raise ValueError(f"`algorithm` must be 'viterbi' or 'map'; got {algorithm!r}.")
        if algorithm == "map":
            _, posteriors = self.score_samples(X, lengths)
            return float(posteriors.max(axis=1).sum()), posteriors.argmax(axis=1)
        self._check_hyperparameters()
        X = self._validate_X(X)
        with precision(self.dtype):
            model = self._model()
            p = self._current_params(model)
            log_prob, path = model.decode(p, self._data(X, lengths))
            return float(log_prob), np.asarray(path)

    def predict(self, X, lengths=None) -> np.ndarray:
        """The state of every step by the estimator's ``algorithm``, ``(n_samples,)``.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> states = hmm.predict(X, lengths=[60, 40])
            >>> bool(states[0] != states[-1])  # the two halves are told apart
            True
        """
        return self.decode(X, lengths)[1]

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw one sequence from the model.

        Args:
            n_samples: number of steps (``>= 1``).
            random_state: None (use the estimator's ``random_state``), an int or a
                ``numpy.random.RandomState``.
            currstate: the state of the first step; default drawn from ``startprob_``.

        Returns:
            ``(X, state_sequence)``: ``(n_samples, n_features)`` observations and the
            ``(n_samples,)`` states.

        Example:
            Parameters set by hand, as in hmmlearn (no fit): two states that alternate.

            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> hmm = GaussianHMM(2, covariance_type="spherical")
            >>> hmm.startprob_, hmm.transmat_ = np.array([0.5, 0.5]), np.array([[0, 1], [1, 0]])
            >>> hmm.means_, hmm.covars_ = np.array([[0.0], [100.0]]), np.ones(2)
            >>> X, z = hmm.sample(4, random_state=0, currstate=1)
            >>> z.tolist(), X.shape
            ([1, 0, 1, 0], (4, 1))
        """
        self._check_hyperparameters()
        n_samples = _check_int(n_samples, "n_samples", 1)
        with precision(self.dtype):
            model = self._model()
            p = self._current_params(model)
            if currstate is not None:
                start = _check_int(currstate, "currstate", 0)
                if start >= self.n_components:
                    raise ValueError(f"`currstate` must be a state in [0, {self.n_components}); "
                                     f"got {currstate}.")
                initial = np.zeros(self.n_components, p.initial.dtype)
                initial[start] = 1.0
                p = HMMParams(initial, p.transition, p.emissions)
            key = random_key(self.random_state if random_state is None else random_state)
            X, states = model.sample(p, n_samples, key=key)
            return np.asarray(X), np.asarray(states).astype(int)

    def bic(self, X, lengths=None) -> float:
        """Bayesian information criterion ``−2 log p(X) + p log n_samples`` (lower is
        better), with ``p`` the number of free parameters, as hmmlearn.

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> p = 1 + 2 + 4 + 4  # startprob, transmat, means, diagonal variances
            >>> bic = hmm.bic(X, lengths=[60, 40])
            >>> bool(np.isclose(bic, -2 * hmm.score(X, lengths=[60, 40]) + p * np.log(100)))
            True
        """
        self._check_hyperparameters()
        X = self._validate_X(X)
        with precision(self.dtype):
            model = self._model()
            return float(model.bic(self._current_params(model), self._data(X, lengths)))

    def aic(self, X, lengths=None) -> float:
        """Akaike information criterion ``−2 log p(X) + 2p`` (lower is better).

        Example:
            >>> import numpy as np
            >>> from emjax.sklearn import GaussianHMM
            >>> rng = np.random.default_rng(0)
            >>> X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
            >>> hmm = GaussianHMM(2, random_state=0).fit(X, lengths=[60, 40])
            >>> aic = hmm.aic(X, lengths=[60, 40])
            >>> bool(np.isclose(aic, -2 * hmm.score(X, lengths=[60, 40]) + 2 * 11))
            True
        """
        self._check_hyperparameters()
        X = self._validate_X(X)
        with precision(self.dtype):
            model = self._model()
            return float(model.aic(self._current_params(model), self._data(X, lengths)))


# ---------------------------------------------------------------------- helpers
def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _compact_shape(covariance_type: str, K: int, D: int) -> tuple:
    return {"spherical": (K,), "diag": (K, D), "full": (K, D, D), "tied": (D, D)}[covariance_type]


def _check_shape(value, shape, name, dtype):
    arr = np.asarray(value, dtype)
    if arr.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape} for these data and "
                         f"hyperparameters; got {arr.shape}.")
    return arr


def _full_covariances(covars, covariance_type: str, K: int, D: int) -> np.ndarray:
    """hmmlearn's ``covars_``: ``(K, D, D)`` matrices from the compact form."""
    c = np.asarray(covars)
    if covariance_type == "full":
        return c
    if covariance_type == "diag":
        return c[:, :, None] * np.eye(c.shape[1])
    if covariance_type == "tied":
        return np.broadcast_to(c, (K,) + c.shape).copy()
    return c.reshape(-1)[:, None, None] * np.eye(D)  # spherical
