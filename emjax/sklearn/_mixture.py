"""scikit-learn estimators for Gaussian mixtures over `emjax.GaussianMixture` and
`emjax.BayesianGaussianMixture`.

Each estimator validates its hyperparameters and the data in ``fit``, builds the emjax
model, runs one `emjax.fit` over ``n_init`` vmapped restarts, and stores scikit-learn's
fitted attributes as NumPy arrays next to emjax's own result (``model_``, ``params_``,
``solution_``).
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

import emjax

from .._accumulate import accumulate, default_block_size, make_blocks
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

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# scikit-learn's init_params and emjax's names for the same initialisations.
INIT_PARAMS = {"kmeans": "kmeans", "k-means++": "kmeans++", "random": "random",
               "random_from_data": "random_from_data"}
WEIGHT_PRIORS = ("dirichlet_process", "dirichlet_distribution")


class _BaseMixture(DensityMixin, BaseEstimator):
    """What the two mixture estimators share: hyperparameter checks, the fit over ``n_init``
    restarts, the per-point methods and the convergence report.

    A subclass provides ``_check(X)`` (its own hyperparameter checks, after
    ``_check_common``), ``_model(D)`` (the emjax model), ``_initial(model, X, key)``
    (``params0`` and the number of restarts for `emjax.fit`), ``_atol(n)`` (the tolerance
    on emjax's summed ELBO that ``tol`` means), ``_trace_scale(n)`` (what the ELBO is
    divided by in ``lower_bound_``) and ``_finish(model, solution, X, converged, steps)``
    (its fitted attributes).
    """

    def _check_common(self, X) -> None:
        """Checks of the hyperparameters both mixtures have; raise ValueError naming them."""
        n, _ = X.shape
        k = check_int_param(self.n_components, "n_components", 1)
        check_option_param(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_real_param(self.tol, "tol", 0.0)
        check_real_param(self.reg_covar, "reg_covar", 0.0)
        check_int_param(self.max_iter, "max_iter", 0)
        check_int_param(self.n_init, "n_init", 1)
        check_option_param(self.init_params, "init_params", tuple(INIT_PARAMS))
        check_int_param(self.verbose, "verbose", 0)
        check_int_param(self.verbose_interval, "verbose_interval", 1)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"`warm_start` must be True or False; got {self.warm_start!r}.")
        check_block_size(self.block_size)
        if n < k:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {k}, "
                f"n_samples = {n}: a mixture needs at least one data point per component."
            )

    def _validate_X(self, X, *, reset: bool):
        dtype = check_dtype(self.dtype) if reset else self.params_.means.dtype.name
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset,
                          ensure_min_samples=2 if reset else 1)
        return np.asarray(X, dtype)

    def _warm(self) -> bool:
        """Whether this fit starts from the previous one (``warm_start`` after a fit)."""
        return bool(self.warm_start) and hasattr(self, "converged_")

    def _fit(self, X):
        X = self._validate_X(X, reset=True)
        self._check(X)
        if self._warm() and self.params_.means.shape[1] != X.shape[1]:
            raise ValueError(
                f"warm_start=True: `X` has {X.shape[1]} features but the previous fit had "
                f"{self.params_.means.shape[1]}; refit with warm_start=False."
            )
        n = X.shape[0]
        with precision(self.dtype):
            model = self._model(X.shape[1])
            key = random_key(self.random_state)
            params0, num_restarts = self._initial(model, X, key)
            with warnings.catch_warnings():
                # Not converging is reported below, as scikit-learn reports it.
                warnings.simplefilter("ignore", emjax.ConvergenceWarning)
                try:
                    solution = emjax.fit(
                        model, X, key=key, num_restarts=num_restarts, params0=params0,
                        max_steps=self.max_iter, rtol=0.0, atol=self._atol(n),
                        block_size=self.block_size,
                    )
                except emjax.NonFiniteError as e:
                    raise ValueError(
                        "Fitting the mixture failed: every initialisation produced non-finite "
                        "parameters (a component with an ill-defined covariance). Increase "
                        "`reg_covar`, use fewer components, or scale the data."
                    ) from e
            converged = bool(solution.converged)
            steps = int(solution.num_steps)
            solution = host_arrays(solution)
            self._finish(model, solution, X, converged, steps)
            self.model_ = host_arrays(model)
            self.solution_ = solution
        self._report(solution, n)
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"{type(self).__name__}: the best initialisation did not converge in "
                f"max_iter={self.max_iter} iterations; increase max_iter or tol, try other "
                "initialisations, or check the data for degeneracies.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return X

    def _report(self, solution, n: int) -> None:
        """scikit-learn's ``verbose`` output, printed after the fit (the EM loop runs as one
        compiled program, so there is nothing to print while it runs)."""
        if not self.verbose:
            return
        scale = self._trace_scale(n)
        steps = np.atleast_1d(solution.restart_num_steps)
        results = np.atleast_1d(solution.restart_results._value)
        for r in range(steps.shape[0]):
            trace = np.asarray(solution.restart_elbo_traces[r]) / scale
            if self.verbose >= 2:
                for t in range(self.verbose_interval, int(steps[r]) + 1, self.verbose_interval):
                    print(f"  Iteration {t}\t lower bound {trace[t]:.6f}\t change "
                          f"{trace[t] - trace[t - 1]:.6g}")
            state = "converged" if results[r] == emjax.RESULTS.converged._value else "did not converge"
            print(f"Initialization {r}: {state} after {int(steps[r])} iterations, lower bound "
                  f"{trace[int(steps[r])]:.6f}")

    # ------------------------------------------------------------------ public methods
    def fit(self, X, y=None):
        """Fit the mixture to ``X`` by EM (variational EM for the Bayesian mixture), with
        ``n_init`` restarts run together as one compiled program.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: ignored.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: a hyperparameter or ``X`` that cannot work (checked before any
                compute), or every initialisation producing non-finite parameters.
        """
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then return the most probable component of each row of ``X``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: ignored.

        Returns:
            Integer labels, shape ``(n_samples,)``.
        """
        return self._apply(self._fit(X), "predict")

    def _apply(self, X, method: str):
        """``model_.<method>(params_, X)`` as a NumPy array, for validated ``X``."""
        with precision(X.dtype.name):
            return np.asarray(getattr(self.model_, method)(self.params_, X))

    def _per_point(self, X, method: str):
        check_is_fitted(self)
        return self._apply(self._validate_X(X, reset=False), method)

    def predict(self, X):
        """The most probable component ``argmax_k p(z = k | x)`` of each row of ``X``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            Integer labels, shape ``(n_samples,)``.
        """
        return self._per_point(X, "predict")

    def predict_proba(self, X):
        """Posterior probabilities of the components for each row of ``X``.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            Array of shape ``(n_samples, n_components)`` whose rows sum to 1.
        """
        return self._per_point(X, "predict_proba")

    def score_samples(self, X):
        """The log-density of each row of ``X`` under the fitted mixture (for the Bayesian
        mixture, each row's term of the ELBO, as scikit-learn defines it).

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            Array of shape ``(n_samples,)``.
        """
        return self._per_point(X, "log_prob")

    def score(self, X, y=None):
        """The mean of `score_samples` over the rows of ``X`` (higher is better), the score
        `sklearn.model_selection.GridSearchCV` maximises by default.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.
            y: ignored.

        Returns:
            A float.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1):
        """Draw points from the fitted mixture (the ``weights_``, ``means_`` and
        ``covariances_`` it reports), with the randomness of ``random_state``.

        Args:
            n_samples: the number of points, ``>= 1``.

        Returns:
            ``(X, y)``: the points, shape ``(n_samples, n_features)``, and the component
            each was drawn from, shape ``(n_samples,)``.

        Raises:
            ValueError: ``n_samples < 1``.
        """
        check_is_fitted(self)
        n_samples = check_int_param(n_samples, "n_samples", 1)
        dtype = self.means_.dtype.name
        with precision(dtype):
            gmm = emjax.GaussianMixture(self.means_.shape[0], self.model_.covariance_type)
            params = gmm.make_params(weights=self.weights_, means=self.means_,
                                     covariances=self.covariances_)
            X, y = gmm.sample(params, n_samples, key=random_key(self.random_state))
            return np.asarray(X), np.asarray(y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


class GaussianMixture(_BaseMixture):
    r"""A Gaussian mixture fitted by EM, with scikit-learn's interface and results.

    The estimator behind ``sklearn.mixture.GaussianMixture``'s interface is
    `emjax.GaussianMixture` fitted by `emjax.fit`: the ``n_init`` restarts run together
    (``vmap``) in one compiled program, by default in float64. Its hyperparameters,
    fitted attributes and methods have scikit-learn's names, shapes and meanings, and from
    the same initial parameters it reproduces scikit-learn's fit: the same
    ``weights_``, ``means_``, ``covariances_``, ``lower_bound_``, ``n_iter_`` and
    ``converged_`` (float64; tested to 1e-8).

    **Convergence.** Iteration ``t`` is an E-step at ``θ_{t-1}``, which gives the mean
    log-likelihood ``L_{t-1} = (1/n) Σ_i log p(x_i | θ_{t-1})``, then an M-step to
    ``θ_t``. The fit stops at the first ``t`` with ``|L_{t-1} − L_{t-2}| < tol``, or at
    ``max_iter``; ``lower_bound_`` is the last ``L`` computed (the mean log-likelihood
    of the parameters one M-step before those returned), as in scikit-learn. emjax
    checks ``|ΔELBO| <= atol`` on the summed log-likelihood, so ``tol`` is passed as
    ``atol = tol · n_samples`` (``rtol = 0``); when emjax stops on convergence at ``θ_T``
    the estimator takes the one further M-step scikit-learn takes. One difference: with
    ``tol=0`` emjax stops once the log-likelihood repeats exactly (a fixed point) and
    reports convergence, where scikit-learn's strict ``<`` runs on to ``max_iter``.

    **Initialisation** (``init_params``): "kmeans" (k-means++ seeds refined by Lloyd's
    algorithm, then the responsibilities of the nearest centre), "k-means++" and
    "random_from_data" (``K`` seeds, by k-means++ or uniformly from the data, each point
    given to its nearest seed), "random" (random responsibilities). Unlike scikit-learn,
    whose "k-means++" and "random_from_data" give each component its seed point alone
    (and a covariance of ``reg_covar``), emjax assigns every point to its nearest seed.
    ``weights_init``, ``means_init`` and ``precisions_init`` replace the initial values
    they name, as in scikit-learn.

    Args:
        n_components: the number of components ``K >= 1``.
        covariance_type: "full" (default), "tied", "diag" or "spherical".
        tol: convergence threshold on the change of the mean log-likelihood, ``>= 0``.
        reg_covar: added to the diagonal of every covariance, ``>= 0``.
        max_iter: the most EM iterations, ``>= 0`` (0 returns the initial parameters).
        n_init: the number of initialisations, run together; the best is kept.
        init_params: "kmeans" (default), "k-means++", "random" or "random_from_data".
        weights_init: optional initial weights, shape ``(n_components,)``.
        means_init: optional initial means, shape ``(n_components, n_features)``.
        precisions_init: optional initial precisions (inverse covariances), in the shape
            of ``covariances_``.
        random_state: None, an int or a ``numpy.random.RandomState``: the seed of the
            JAX key the initialisations are drawn from.
        warm_start: if True, a second ``fit`` starts from the previous parameters (one
            initialisation). emjax runs at least one iteration, so a warm fit that starts
            converged takes one iteration more than scikit-learn's.
        verbose: 0 (silent), 1 (one line per initialisation) or 2 (and the lower bound
            every ``verbose_interval`` iterations), printed after the fit.
        verbose_interval: iterations between printed lines with ``verbose=2``.
        dtype: emjax extra: "float64" (default; computed under a thread-local
            ``jax.enable_x64``, JAX's global configuration is left alone) or "float32".
        block_size: emjax extra: rows per block of a pass over the data (emjax's
            default if None).

    Attributes:
        weights_: mixing proportions, shape ``(n_components,)``.
        means_: shape ``(n_components, n_features)``.
        covariances_: ``(K, D, D)`` "full", ``(D, D)`` "tied", ``(K, D)`` "diag", ``(K,)``
            "spherical".
        precisions_: the inverse covariances, same shape.
        precisions_cholesky_: ``L`` with ``precisions_ = L Lᵀ`` (upper triangular, as in
            scikit-learn), or ``1/sqrt(covariances_)`` for "diag" and "spherical".
        converged_: whether the best initialisation converged.
        n_iter_: the number of EM iterations (M-steps) of the best initialisation.
        lower_bound_: the mean log-likelihood scikit-learn reports (see above).
        lower_bounds_: ``L_0, …, L_{n_iter_ − 1}``.
        n_features_in_: the number of features seen in ``fit``.
        model_: the `emjax.GaussianMixture` that was fitted.
        params_: the fitted `emjax.GaussianMixtureParams` (NumPy leaves), for
            ``model_``'s methods.
        solution_: emjax's `emjax.Solution` (every restart's outcome). Its ``params`` are
            the parameters at which convergence was detected, one M-step before
            ``params_`` when the fit converged.

    Example:
        >>> import numpy as np, emjax
        >>> from emjax.sklearn import GaussianMixture
        >>> X = emjax.datasets.load_old_faithful()
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.means_.shape, gm.covariances_.shape, bool(gm.converged_)
        ((2, 2), (2, 2, 2), True)
        >>> labels = gm.predict(X)
        >>> round(gm.score(X), 2)
        -4.16
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        dtype="float64",
        block_size=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.dtype = dtype
        self.block_size = block_size

    def _check(self, X) -> None:
        self._check_common(X)
        D = X.shape[1]
        self._inits = _check_inits(self.weights_init, self.means_init, self.precisions_init,
                                   self.n_components, D, self.covariance_type, X.dtype)

    def _model(self, D: int):
        return emjax.GaussianMixture(self.n_components, self.covariance_type,
                                     reg_covar=self.reg_covar,
                                     init=INIT_PARAMS[self.init_params])

    def _atol(self, n: int) -> float:
        return float(self.tol) * n

    def _trace_scale(self, n: int) -> float:
        return float(n)

    def _initial(self, model, X, key):
        if self._warm():
            return self.params_, 1
        weights, means, covariances = self._inits
        given = [a is not None for a in (weights, means, covariances)]
        if not any(given):
            return None, self.n_init
        if all(given):
            # Every restart would start from the same parameters: one is enough.
            return model.make_params(weights=weights, means=means, covariances=covariances), 1
        # Some initial values given: the others from emjax's initialisation of each restart.
        init = _initial_params(model, X, key, self.n_init, self.block_size)
        R = self.n_init

        def pick(user, own):
            return own if user is None else np.broadcast_to(user, (R,) + user.shape)

        return model.make_params(weights=pick(weights, init.weights), means=pick(means, init.means),
                                 covariances=pick(covariances, init.covariances)), R

    def _finish(self, model, solution, X, converged: bool, steps: int) -> None:
        n = X.shape[0]
        trace = np.asarray(solution.elbo_trace, np.float64) / n
        if converged and steps < self.max_iter:
            # emjax stopped at θ_T on seeing |L_T − L_{T−1}| <= atol; scikit-learn makes
            # the same test after computing L_T and then takes one more M-step.
            params = host_arrays(_em_step(model, solution.params, X, self.block_size))
            self.n_iter_ = steps + 1
            self.converged_ = True
        else:
            # max_iter iterations: scikit-learn's last lower bound is L_{max_iter − 1}.
            params = solution.params
            self.n_iter_ = steps
            self.converged_ = False
        self.lower_bounds_ = [float(v) for v in trace[: self.n_iter_]]
        self.lower_bound_ = self.lower_bounds_[-1] if self.lower_bounds_ else -np.inf
        self.params_ = params
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_, self.precisions_ = _precisions(params.covariances,
                                                                  self.covariance_type)

    def _n_parameters(self) -> int:
        return self.model_.num_free_params(self.means_.shape[1])

    def bic(self, X):
        """Bayesian information criterion ``−2 log L + p log n`` on ``X`` (lower is better),
        ``p`` the number of free parameters, as scikit-learn defines it.

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            A float.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        with precision(X.dtype.name):
            return float(self.model_.bic(self.params_, X))

    def aic(self, X):
        """Akaike information criterion ``−2 log L + 2p`` on ``X`` (lower is better).

        Args:
            X: array-like of shape ``(n_samples, n_features)``.

        Returns:
            A float.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        with precision(X.dtype.name):
            return float(self.model_.aic(self.params_, X))


class BayesianGaussianMixture(_BaseMixture):
    r"""A Bayesian Gaussian mixture fitted by variational inference, with scikit-learn's
    interface.

    The estimator behind ``sklearn.mixture.BayesianGaussianMixture``'s interface is
    `emjax.BayesianGaussianMixture` (mean-field coordinate ascent, CAVI) fitted by
    `emjax.fit`, ``n_init`` restarts at once. The model, priors, defaults and updates are
    scikit-learn's (a truncated Dirichlet process or a Dirichlet on the weights,
    Normal-Wishart components); the fitted variational parameters have scikit-learn's
    names and meanings.

    Differences from scikit-learn, all deliberate:

    - ``lower_bound_`` is emjax's exact ELBO (every constant included; a true lower bound
      on ``log p(X)``) of the returned parameters, summed over the samples as
      scikit-learn's is. scikit-learn's bound drops constants, so the two differ by a
      constant.
    - ``tol`` applies to the change of that ELBO (``atol = tol``, ``rtol = 0``), and the
      parameters returned are the ones the change was measured at (no further update), so
      ``n_iter_`` is the number of updates that produced them.
    - covariance_type "tied" is not available (ValueError).

    Args:
        n_components: the number of components ``K >= 1`` (the truncation level of the
            Dirichlet process).
        covariance_type: "full" (default), "diag" or "spherical".
        tol: convergence threshold on the change of the ELBO, ``>= 0``.
        reg_covar: ``>= 0``, added as ``reg_covar · N_k`` to the diagonal of each scale
            matrix, as in scikit-learn.
        max_iter: the most iterations, ``>= 0``.
        n_init: the number of initialisations, run together; the one with the highest
            ELBO is kept.
        init_params: "kmeans" (default), "k-means++", "random" or "random_from_data"
            (see `GaussianMixture`).
        weight_concentration_prior_type: "dirichlet_process" (default) or
            "dirichlet_distribution".
        weight_concentration_prior: ``γ > 0``; None: ``1 / n_components``.
        mean_precision_prior: ``β₀ > 0``; None: 1.
        mean_prior: ``m₀``, shape ``(n_features,)``; None: the mean of ``X``.
        degrees_of_freedom_prior: ``ν₀ > n_features − 1``; None: ``n_features``.
        covariance_prior: ``W₀⁻¹``: ``(D, D)`` ("full"), ``(D,)`` ("diag") or a float
            ("spherical"); None: the covariance of ``X``.
        random_state: None, an int or a ``numpy.random.RandomState``.
        warm_start: if True, a second ``fit`` starts from the previous variational
            parameters.
        verbose: 0, 1 or 2, as for `GaussianMixture`.
        verbose_interval: iterations between printed lines with ``verbose=2``.
        dtype: emjax extra: "float64" (default) or "float32".
        block_size: emjax extra: rows per block of a pass over the data.

    Attributes:
        weights_: ``E_q[π]``, shape ``(n_components,)``.
        means_: ``E_q[μ_k]``, shape ``(n_components, n_features)``.
        covariances_: ``W_k⁻¹ / ν_k``, the inverse of ``E_q[Λ_k]``, in the shape of the
            covariance type.
        precisions_: ``E_q[Λ_k]``, the inverse of ``covariances_``.
        precisions_cholesky_: its Cholesky factor, as scikit-learn's.
        weight_concentration_prior_: ``γ`` used.
        weight_concentration_: ``(a, b)`` of the stick proportions (a tuple of two
            ``(K,)`` arrays) for "dirichlet_process", the ``(K,)`` Dirichlet parameters
            for "dirichlet_distribution".
        mean_precision_prior_: ``β₀`` used.
        mean_precision_: ``β_k``, shape ``(K,)``.
        mean_prior_: ``m₀`` used, shape ``(n_features,)``.
        degrees_of_freedom_prior_: ``ν₀`` used.
        degrees_of_freedom_: ``ν_k``, shape ``(K,)``.
        covariance_prior_: ``W₀⁻¹`` used, in the shape of the covariance type (a float
            for "spherical").
        converged_: whether the best initialisation converged.
        n_iter_: the number of updates that produced the returned parameters.
        lower_bound_: the exact ELBO of the returned parameters (see above).
        lower_bounds_: the ELBO before the first update and after each of the ``n_iter_``
            updates.
        n_features_in_: the number of features seen in ``fit``.
        model_: the `emjax.BayesianGaussianMixture` that was fitted.
        params_: its fitted `emjax.BayesianGaussianMixtureParams` (NumPy leaves).
        solution_: emjax's `emjax.Solution` (every restart's outcome).

    Example:
        >>> import numpy as np, emjax
        >>> from emjax.sklearn import BayesianGaussianMixture
        >>> X = emjax.datasets.load_old_faithful()
        >>> bgm = BayesianGaussianMixture(n_components=5, random_state=0).fit(X)
        >>> int((bgm.weights_ > 0.01).sum())
        2
        >>> bgm.means_.shape
        (5, 2)
    """

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        dtype="float64",
        block_size=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.dtype = dtype
        self.block_size = block_size

    def _check(self, X) -> None:
        self._check_common(X)
        if self.covariance_type == "tied":
            raise ValueError(
                "`covariance_type`='tied' is not supported by emjax's BayesianGaussianMixture; "
                "use 'full', 'diag' or 'spherical'."
            )
        check_option_param(self.weight_concentration_prior_type,
                           "weight_concentration_prior_type", WEIGHT_PRIORS)
        for name in ("weight_concentration_prior", "mean_precision_prior"):
            value = getattr(self, name)
            if value is not None:
                check_real_param(value, name, 0.0, strict=True)
        if self.degrees_of_freedom_prior is not None:
            D = X.shape[1]
            check_real_param(self.degrees_of_freedom_prior, "degrees_of_freedom_prior", D - 1,
                             strict=True)

    def _model(self, D: int):
        try:
            model = emjax.BayesianGaussianMixture(
                self.n_components, self.covariance_type, self.weight_concentration_prior_type,
                weight_concentration_prior=self.weight_concentration_prior,
                mean_precision_prior=(1.0 if self.mean_precision_prior is None
                                      else self.mean_precision_prior),
                mean_prior=self.mean_prior,
                degrees_of_freedom_prior=self.degrees_of_freedom_prior,
                covariance_prior=self.covariance_prior,
                reg_covar=self.reg_covar,
                init=INIT_PARAMS[self.init_params],
            )
            model._check_num_features(D)
        except TypeError as e:  # e.g. a prior that is not numeric
            raise ValueError(str(e)) from e
        return model

    def _atol(self, n: int) -> float:
        return float(self.tol)

    def _trace_scale(self, n: int) -> float:
        return 1.0

    def _initial(self, model, X, key):
        if self._warm():
            return self.params_, 1
        return None, self.n_init

    def _finish(self, model, solution, X, converged: bool, steps: int) -> None:
        p = solution.params
        self.converged_ = converged
        self.n_iter_ = steps
        self.lower_bounds_ = [float(v) for v in np.asarray(solution.elbo_trace)[: steps + 1]]
        self.lower_bound_ = float(solution.elbo.total)
        self.params_ = p
        self.weights_ = np.asarray(model.expected_weights(p))
        self.means_ = p.means
        self.covariances_ = p.covariances
        self.precisions_cholesky_, self.precisions_ = _precisions(p.covariances,
                                                                  self.covariance_type)
        wc = p.weight_concentration
        self.weight_concentration_ = (wc if self.weight_concentration_prior_type
                                      == "dirichlet_distribution" else (wc[0], wc[1]))
        self.weight_concentration_prior_ = float(model.weight_concentration_prior)
        self.mean_precision_prior_ = float(model.mean_precision_prior)
        self.mean_precision_ = p.mean_precision
        self.mean_prior_ = p.mean_prior
        self.degrees_of_freedom_prior_ = float(model._nu0(X.shape[1], X.dtype))
        self.degrees_of_freedom_ = p.degrees_of_freedom
        c0 = p.covariance_prior
        self.covariance_prior_ = float(c0) if self.covariance_type == "spherical" else c0


# ----------------------------------------------------------------------------- helpers


def _check_inits(weights, means, precisions, K: int, D: int, covariance_type: str, dtype):
    """``weights_init``, ``means_init`` and ``precisions_init`` checked (scikit-learn's
    conditions) and returned as NumPy arrays, the precisions as covariances."""

    def array(value, name, shape):
        try:
            a = np.asarray(value, dtype)
        except (TypeError, ValueError) as e:
            raise ValueError(f"`{name}` must be a numeric array; got {value!r}.") from e
        if a.shape != shape:
            raise ValueError(f"`{name}` must have shape {shape}; got {a.shape}.")
        if not np.isfinite(a).all():
            raise ValueError(f"`{name}` must be finite.")
        return a

    if weights is not None:
        weights = array(weights, "weights_init", (K,))
        if (weights < 0).any() or (weights > 1).any():
            raise ValueError(f"`weights_init` must lie in [0, 1]; got {weights}.")
        if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-8):
            raise ValueError(f"`weights_init` must sum to 1; got sum {weights.sum():.8g}.")
    if means is not None:
        means = array(means, "means_init", (K, D))
    covariances = None
    if precisions is not None:
        shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
        p = array(precisions, "precisions_init", shape[covariance_type])
        if covariance_type in ("full", "tied"):
            if not np.allclose(p, np.swapaxes(p, -1, -2)) or (np.linalg.eigvalsh(p) <= 0).any():
                raise ValueError("`precisions_init` must hold symmetric positive-definite "
                                 f"matrices for covariance_type={covariance_type!r}.")
            covariances = np.linalg.inv(p)
            covariances = 0.5 * (covariances + np.swapaxes(covariances, -1, -2))
        else:
            if (p <= 0).any():
                raise ValueError("`precisions_init` must be positive for covariance_type="
                                 f"{covariance_type!r}.")
            covariances = 1.0 / p
    return weights, means, covariances


def _precisions(covariances, covariance_type: str):
    """scikit-learn's ``precisions_cholesky_`` and ``precisions_`` from covariances: for
    full and tied, ``L⁻ᵀ`` with ``Σ = L Lᵀ`` (so that ``Σ⁻¹ = L⁻ᵀ L⁻¹``); else ``1/√σ²``."""
    cov = np.asarray(covariances)
    if covariance_type in ("full", "tied"):
        batch = cov.reshape((-1,) + cov.shape[-2:])
        eye = np.eye(cov.shape[-1], dtype=cov.dtype)
        chol = np.stack([
            scipy.linalg.solve_triangular(np.linalg.cholesky(c), eye, lower=True).T for c in batch
        ]).reshape(cov.shape)
        return chol, chol @ np.swapaxes(chol, -1, -2)
    chol = 1.0 / np.sqrt(cov)
    return chol, chol**2


def _block_size(model, X, parallel: int, block_size):
    return (default_block_size(X.shape[0], model.row_cost(X), parallel) if block_size is None
            else min(block_size, X.shape[0]))


def _em_step(model, params, X, block_size):
    """One E-step and M-step from ``params`` on the rows of ``X`` (unit weights)."""
    return _em_step_jit(model, params, jnp.asarray(X), _block_size(model, X, 1, block_size))


@eqx.filter_jit
def _em_step_jit(model, params, X, block_size: int):
    blocks = make_blocks(X, jnp.ones(X.shape[:1], X.dtype), block_size)
    stats, _ = accumulate(lambda x, w: model.e_step(params, x, w), blocks)
    return model.m_step(params, stats)


def _initial_params(model, X, key, num_restarts: int, block_size):
    """Each restart's initial parameters, as `emjax.fit` draws them from ``key``."""
    size = _block_size(model, X, num_restarts, block_size)
    return host_arrays(_initial_params_jit(model, jnp.asarray(X), key, num_restarts, size))


@eqx.filter_jit
def _initial_params_jit(model, X, key, num_restarts: int, block_size: int):
    blocks = make_blocks(X, jnp.ones(X.shape[:1], X.dtype), block_size)
    keys = jax.random.split(key, num_restarts)
    return jax.vmap(lambda k: model.init_params(blocks, key=k))(keys)
