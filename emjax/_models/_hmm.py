"""Hidden Markov models fitted by Baum–Welch (EM) on the emjax engine."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import hmm as _inference
from .._accumulate import Blocks, accumulate, default_block_size, make_blocks, map_rows
from .._custom_types import Array, Float, Int, PRNGKeyArray, PyTree
from .._elbo import ELBO
from .._model import AbstractHardEMModel, AbstractUnconstrainedModel
from .._solver import EM
from .._validation import (
    as_float_array,
    check_positive_int,
    check_sample_weight,
    is_traced,
)
from ..hmm import safe_log
from ._density import _DEFAULT_SOLVER as _GRADIENT_SOLVER
from ._density import fill_unweighted
from ._emissions import AbstractEmissions, _check_stochastic, _unconstrained_log


class Sequences(eqx.Module):
    """A batch of sequences of different lengths, padded to a common length.

    `emjax.fit` accepts this directly, and builds it from the other data formats of
    `HiddenMarkovModel`; build it yourself to skip conversions on repeated calls, or to
    fit inside ``jax.jit`` (where lengths may be traced).

    Attributes:
        observations: ``(S, T, *event_shape)``: ``(S, T, D)`` vectors, or ``(S, T)`` integer
            symbols for categorical emissions. Steps ``t >= lengths[s]`` are padding (any
            finite value).
        lengths: ``(S,)`` integers, ``1 <= lengths[s] <= T``.
        num_symbols: vocabulary size for categorical emissions (static; set by
            `HiddenMarkovModel` when it converts data), else None.

    Example:
        >>> import numpy as np, emjax
        >>> seqs = emjax.hmm.Sequences(np.zeros((2, 5, 3)), np.array([5, 2]))
        >>> seqs.observations.shape
        (2, 5, 3)
    """

    observations: Array
    lengths: Int[Array, " S"]
    num_symbols: int | None = eqx.field(static=True, default=None)


class HMMParams(eqx.Module):
    """Parameters of a hidden Markov model.

    Attributes:
        initial: ``π_k = p(z_1 = k)``, shape ``(K,)``.
        transition: ``A_ij = p(z_{t+1} = j | z_t = i)``, shape ``(K, K)``, rows sum to 1.
        emissions: the emission model's parameters (e.g. `GaussianEmissionParams`).
    """

    initial: Float[Array, " K"]
    transition: Float[Array, "K K"]
    emissions: PyTree


class HMMStats(eqx.Module):
    """Expected sufficient statistics of a hidden Markov model, summed over sequences.

    Attributes:
        initial: ``Σ_s w_s γ_{s,1}(k)``, shape ``(K,)``.
        transition: expected transition counts ``Σ_s w_s Σ_t ξ_{s,t}(i, j)``, ``(K, K)``.
        emissions: the emission model's statistics under the weights ``w_s γ_{s,t}(k)``.
    """

    initial: Float[Array, " K"]
    transition: Float[Array, "K K"]
    emissions: PyTree

    def __add__(self, other: "HMMStats") -> "HMMStats":
        return jax.tree.map(jnp.add, self, other)


def _over_sequences(fn, *args):
    """``vmap(fn)`` over the leading (sequence) axis; a plain call when there is one sequence
    (XLA's CPU code for some batched contractions is several times slower)."""
    if jax.tree.leaves(args)[0].shape[0] == 1:
        return jax.tree.map(lambda a: a[None], fn(*jax.tree.map(lambda a: a[0], args)))
    return jax.vmap(fn)(*args)


def _dirichlet_map(counts, concentration, previous):
    """``argmax_p Σ (counts + α − 1) log p`` over the simplex, on the support of
    ``previous`` (structural zeros stay zero); ``previous`` where nothing was counted."""
    support = previous > 0
    mass = jnp.where(support, counts + concentration - 1.0, 0.0)
    total = jnp.sum(mass, axis=-1, keepdims=True)
    ok = total > 10 * jnp.finfo(mass.dtype).tiny
    return jnp.where(ok, mass / jnp.where(ok, total, 1.0), previous)


def _weighted_log(weights, log_p):
    """``Σ weights · log_p`` with ``0 · (−∞) = 0``."""
    positive = weights > 0
    return jnp.sum(jnp.where(positive, weights * jnp.where(positive, log_p, 0.0), 0.0))


class HiddenMarkovModel(AbstractHardEMModel, AbstractUnconstrainedModel):
    r"""A hidden Markov model with ``K`` states, fitted by Baum–Welch (EM).

    ``p(x_{1:T}, z_{1:T}) = π_{z_1} Π_t A_{z_t z_{t+1}} Π_t p(x_t | z_t)``: an initial
    distribution ``π``, a transition matrix ``A`` and an emission model, each a component
    with its own statistics and M-step (Baum et al. 1970; Rabiner 1989).

    **E-step.** For every sequence, the forward–backward algorithm in log space
    (`emjax.hmm.forward_backward`) gives the smoothed marginals ``γ_t(k)`` and the
    expected transition counts ``Σ_t ξ_t(i, j)``; the ELBO is ``log p(x)`` (the bound is
    tight). Sequences of a block are processed together (``vmap``); statistics add up
    over sequences and blocks.

    **M-step** (closed form): ``π ∝ Σ_s w_s γ_{s,1} + α_π − 1`` and
    ``A_i· ∝ Σ_s w_s Σ_t ξ_{s,t}(i, ·) + α_A,i· − 1`` (Dirichlet MAP; maximum likelihood with
    the default concentrations 1), then the emission model's M-step with weights
    ``w_s γ_{s,t}(k)``. Entries of ``π`` or ``A`` that are zero stay zero (structural
    zeros: left-to-right models work). A state never visited keeps its transition row.

    **Hard EM** (``solver=emjax.HardEM()``): Viterbi training, the E-step takes the most
    probable path (`emjax.hmm.viterbi`) instead of the posterior.

    **Data** (``emjax.fit(model, data)``), with ``D`` features (or integer symbols for
    `CategoricalEmissions`):

    - one sequence: a ``(T, D)`` array (``(T,)`` or ``(T, 1)`` integers for symbols);
    - ``(X, lengths)``: hmmlearn's layout, sequences concatenated in ``X`` ``(ΣT_s, D)``;
    - ``(X, lengths)`` with ``X`` padded, ``(S, T, D)``;
    - a list of ``(T_s, D)`` arrays;
    - an `emjax.hmm.Sequences`.

    ``sample_weight`` has one weight per sequence.

    Args:
        num_states: ``K >= 1``.
        emissions: the emission model: `GaussianEmissions` (default, full covariance),
            `GaussianMixtureEmissions`, `CategoricalEmissions`, `PoissonEmissions` or
            `DensityEmissions`.
        initial_prior: Dirichlet concentration(s) ``α_π >= 1`` of a prior on ``π``
            (scalar or ``(K,)``; default 1: no prior).
        transition_prior: Dirichlet concentrations ``α_A >= 1`` on each row of ``A``
            (scalar or ``(K, K)``; default 1). Values below 1 would make the MAP objective
            unbounded and are refused.
        parallel: use the parallel (associative-scan) forward–backward in the E-step:
            True, False, or "auto" (the default: parallel on GPU and TPU, sequential on
            CPU; static). Measured on an H100 (benchmarks/README.md), one sequence of
            100,000 steps: 2.4 ms per iteration parallel against 1.9 s sequential; on a
            CPU the parallel version is 5–9 times slower.

    Raises:
        ValueError: ``num_states < 1`` or a prior below 1 or of the wrong shape.
        TypeError: ``emissions`` is not an emjax emission model.

    Example:
        >>> import jax, numpy as np, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("full"))
        >>> sol = emjax.fit(hmm, X, key=jax.random.key(0), num_restarts=4)
        >>> sol.params.transition.shape
        (2, 2)
        >>> states = hmm.predict(sol.params, X)  # the Viterbi path
        >>> states.shape
        (272,)
    """

    num_states: int = eqx.field(static=True)
    emissions: AbstractEmissions
    initial_prior: Float[Array, " K"]
    transition_prior: Float[Array, "K K"]
    parallel: bool | str = eqx.field(static=True)

    def __init__(
        self,
        num_states: int,
        emissions: AbstractEmissions | None = None,
        *,
        initial_prior=1.0,
        transition_prior=1.0,
        parallel: bool | str = "auto",
    ):
        from ._emissions import GaussianEmissions

        K = check_positive_int(num_states, "num_states")
        self.num_states = K
        if emissions is None:
            emissions = GaussianEmissions()
        if not isinstance(emissions, AbstractEmissions):
            raise TypeError(
                "`emissions` must be an emjax emission model (emjax.GaussianEmissions(), "
                f"emjax.CategoricalEmissions(), ...); got {type(emissions).__name__}."
            )
        self.emissions = emissions
        self.initial_prior = _check_concentration(initial_prior, "initial_prior", (K,))
        self.transition_prior = _check_concentration(transition_prior, "transition_prior", (K, K))
        if not (isinstance(parallel, bool) or parallel == "auto"):
            raise TypeError(f"`parallel` must be True, False or 'auto'; got {parallel!r}.")
        self.parallel = parallel

    @property
    def _parallel(self) -> bool:
        if self.parallel == "auto":
            return jax.default_backend() != "cpu"
        return self.parallel

    # ------------------------------------------------------------------ data
    def _to_sequences(self, data, num_symbols=None) -> tuple[Sequences, str, object]:
        """Any accepted data format as `Sequences`, the format's name and what is needed to
        give per-step results back in that format."""
        e = self.emissions
        ev = e.event_ndim
        if isinstance(data, Sequences):
            obs = e.check_observations(data.observations, "observations")
            lengths = _check_lengths(data.lengths, obs, ev, "lengths")
            kind, extra = "padded", None
            num_symbols = num_symbols or data.num_symbols
        elif isinstance(data, tuple):
            if len(data) != 2:
                raise ValueError("Sequence data given as a tuple must be (X, lengths); got a "
                                 f"tuple of {len(data)} items.")
            obs = e.check_observations(data[0], "X")
            if obs.ndim == ev + 1:
                lengths_np = _concrete_lengths(data[1], obs.shape[0])
                obs = _pad(obs, lengths_np)
                lengths = jnp.asarray(lengths_np, jnp.int32)
                kind, extra = "concatenated", lengths_np
            else:
                lengths = _check_lengths(data[1], obs, ev, "lengths")
                kind, extra = "padded", None
        elif isinstance(data, list):
            if not data:
                raise ValueError("The list of sequences is empty.")
            parts = [e.check_observations(x, f"X[{i}]") for i, x in enumerate(data)]
            for i, p in enumerate(parts):
                if p.ndim != ev + 1 or p.shape[0] < 1:
                    raise ValueError(f"`X[{i}]` must be one non-empty sequence of shape "
                                     f"{_shape_name(ev)}; got shape {tuple(p.shape)}.")
            lengths_np = np.array([p.shape[0] for p in parts])
            obs = _pad(jnp.concatenate(parts), lengths_np)
            lengths = jnp.asarray(lengths_np, jnp.int32)
            kind, extra = "list", lengths_np
        else:
            obs = e.check_observations(data, "X")
            if obs.ndim == ev + 1:
                obs = obs[None]
                kind = "single"
            else:
                kind = "padded"
            lengths = jnp.full(obs.shape[:1], obs.shape[1] if obs.ndim > 1 else 0, jnp.int32)
            extra = None
        if obs.ndim != ev + 2 or obs.shape[1] < 1 or (ev == 1 and obs.shape[-1] < 1):
            raise ValueError(
                f"`X` must be one sequence of shape {_shape_name(ev)}, a padded batch "
                f"{_shape_name(ev, batch=True)} with lengths, (X, lengths) with sequences "
                f"concatenated, or a list of sequences; got shape {tuple(obs.shape)}."
            )
        if not is_traced(obs) and not is_traced(lengths):
            obs_np = np.asarray(obs)
            valid = np.arange(obs.shape[1])[None, :] < np.asarray(lengths)[:, None]
            x_valid = obs_np[valid]
            e.check_values(x_valid, "X", num_symbols)
            if ev == 0 and num_symbols is None:
                num_symbols = e.num_symbols or int(x_valid.max()) + 1
            # Padding is replaced by each sequence's first step: any value it held (NaN, -1)
            # is then harmless.
            fill = np.where(valid.reshape(valid.shape + (1,) * ev), obs_np, obs_np[:, :1])
            obs = jnp.asarray(fill)
        elif ev == 0 and num_symbols is None:
            num_symbols = e.num_symbols
            if num_symbols is None:
                raise ValueError("Inside jax.jit the vocabulary size cannot be read from the "
                                 "data: pass CategoricalEmissions(num_symbols=V).")
        return Sequences(obs, lengths, num_symbols if ev == 0 else None), kind, extra

    def check_data(self, data) -> Sequences:
        seqs, _, _ = self._to_sequences(data)
        if self.emissions.event_ndim == 1 and not is_traced(seqs.lengths):
            frames = int(np.sum(np.asarray(seqs.lengths)))
            if frames < self.num_states:
                raise ValueError(
                    f"The data have {frames} time steps in all but num_states={self.num_states}: "
                    "initialising the emissions needs at least as many steps as states."
                )
        return seqs

    def check_input(self, params: HMMParams, data):
        V = params.emissions.probs.shape[-1] if self.emissions.event_ndim == 0 else None
        seqs, kind, extra = self._to_sequences(data, num_symbols=V)
        if self.emissions.event_ndim == 1:
            D = _num_features(params.emissions)
            if D is not None and seqs.observations.shape[-1] != D:
                raise ValueError(f"`X` has {seqs.observations.shape[-1]} features but the "
                                 f"parameters have {D}.")
        seqs = jax.tree.map(lambda a: a.astype(params.initial.dtype)
                            if jnp.issubdtype(a.dtype, jnp.floating) else a, seqs)
        return seqs, kind, extra

    def row_cost(self, data: Sequences) -> int:
        """Per sequence: ``T · (emission cost per step + K²)``."""
        T = data.observations.shape[1]
        D = 1 if self.emissions.event_ndim == 0 else data.observations.shape[-1]
        K = self.num_states
        return T * (self.emissions.step_cost(K, D) + K * K)

    # ------------------------------------------------------------------ params
    def check_params(self, params, data: Sequences):
        if not isinstance(params, HMMParams):
            raise TypeError(
                "`params0` must be HMMParams; build it with model.make_params(initial=..., "
                f"transition=..., ...); got {type(params).__name__}."
            )
        initial = as_float_array(params.initial, "initial")
        lead = initial.shape[:-1]
        if len(lead) > 1:
            raise ValueError(f"`initial` must have shape (K,) or (R, K); got {initial.shape}.")
        if self.emissions.event_ndim == 0:
            nf = data.num_symbols
        else:
            nf = data.observations.shape[-1]
        em = self.emissions.params_from(params.emissions, self.num_states, lead, nf)
        p = self._make(initial, params.transition, em, lead)
        dtype = (data.observations.dtype if jnp.issubdtype(data.observations.dtype, jnp.floating)
                 else p.initial.dtype)
        p = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating)
                         else a, p)
        return p, (lead[0] if lead else None)

    def _make(self, initial, transition, emissions, lead) -> HMMParams:
        K = self.num_states
        initial = as_float_array(initial, "initial")
        transition = as_float_array(transition, "transition")
        if initial.shape != lead + (K,):
            raise ValueError(f"`initial` must have shape {lead + (K,)}; got {initial.shape}.")
        if transition.shape != lead + (K, K):
            raise ValueError(f"`transition` must have shape {lead + (K, K)}; got "
                             f"{transition.shape}.")
        _check_stochastic(initial, "initial", what="entries")
        _check_stochastic(transition, "transition")
        dtype = jnp.result_type(initial, transition, *[
            a for a in jax.tree.leaves(emissions) if jnp.issubdtype(a.dtype, jnp.floating)])
        cast = lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a  # noqa: E731
        return HMMParams(cast(initial), cast(transition), jax.tree.map(cast, emissions))

    def make_params(self, *, initial, transition, emissions=None, **emission_arrays) -> HMMParams:
        """Build and validate parameters from plain arrays.

        A leading restart axis on every array gives a batch for ``params0``.

        Args:
            initial: ``(K,)`` initial probabilities (non-negative, summing to 1).
            transition: ``(K, K)`` transition matrix (rows non-negative, summing to 1);
                zeros are structural and stay zero through EM.
            emissions: emission parameters already built (e.g. a
                `GaussianEmissionParams`, or your pytree for `DensityEmissions`), or
            **emission_arrays: the emission model's arrays: ``means``, ``covariances``
                (`GaussianEmissions`; covariances ``(K, D, D)`` for full, ``(K, D)``
                diag, ``(K,)`` spherical, ``(D, D)`` tied); ``weights``, ``means``,
                ``covariances`` (`GaussianMixtureEmissions`); ``probs`` ``(K, V)``
                (`CategoricalEmissions`); ``rates`` ``(K, D)`` (`PoissonEmissions`).

        Returns:
            `HMMParams`.

        Raises:
            ValueError: shapes that do not fit, probabilities that are negative or do not
                sum to 1 (a transition matrix that is not stochastic), covariances that
                are not positive definite.

        Example:
            >>> import numpy as np, emjax
            >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("full"))
            >>> p = hmm.make_params(initial=[1.0, 0.0], transition=[[0.9, 0.1], [0.0, 1.0]],
            ...                     means=np.zeros((2, 3)), covariances=np.stack([np.eye(3)] * 2))
            >>> p.emissions.covariances.shape
            (2, 3, 3)
        """
        initial = as_float_array(initial, "initial")
        lead = initial.shape[:-1]
        if emissions is None:
            emissions = self.emissions.make_params(self.num_states, _batch=lead,
                                                   **emission_arrays)
        elif emission_arrays:
            raise TypeError("Pass either `emissions` or the emission arrays, not both.")
        else:
            emissions = self.emissions.params_from(emissions, self.num_states, lead, None)
        return self._make(initial, transition, emissions, lead)

    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> HMMParams:
        seqs = blocks.data
        obs = seqs.observations
        T = obs.shape[2]
        event = obs.shape[3:]
        valid = jnp.arange(T) < seqs.lengths[..., None]
        w = (blocks.weights[..., None] * valid).reshape(-1)
        x = obs.reshape((-1,) + event)
        k_emit, k_trans = jax.random.split(key)
        K = self.num_states
        dtype = blocks.weights.dtype
        emissions = self.emissions.init_params(x, w.astype(dtype), K, key=k_emit,
                                               num_symbols=seqs.num_symbols)
        # Sticky random transitions: half the mass on staying, half spread at random.
        rows = jax.random.dirichlet(k_trans, jnp.ones((K,), dtype), (K,)).astype(dtype)
        transition = 0.5 * jnp.eye(K, dtype=dtype) + 0.5 * rows
        return HMMParams(jnp.full((K,), 1.0 / K, dtype), transition, emissions)

    # ------------------------------------------------------------------ E and M steps
    def default_solver(self):
        return EM() if self.emissions.has_closed_form_m_step else _GRADIENT_SOLVER

    @property
    def has_closed_form_m_step(self) -> bool:
        return self.emissions.has_closed_form_m_step

    def _prepare(self, seqs: Sequences, w):
        """Weight-0 sequences replaced by the block's heaviest one, padding by each
        sequence's first step: no value there can turn into NaN statistics."""
        seqs = fill_unweighted(seqs, w)
        obs = seqs.observations
        valid = jnp.arange(obs.shape[1]) < seqs.lengths[:, None]
        obs = jnp.where(valid.reshape(valid.shape + (1,) * (obs.ndim - 2)), obs, obs[:, :1])
        return obs, seqs.lengths

    def _emission_ll(self, params, obs):
        return _over_sequences(lambda x: self.emissions.log_prob(params.emissions, x), obs)

    def e_step(self, params: HMMParams, seqs: Sequences, w):
        obs, lengths = self._prepare(seqs, w)
        ll = self._emission_ll(params, obs)

        def one(lk, n):
            return _inference.forward_backward(params.initial, params.transition, lk, n,
                                               parallel=self._parallel)

        post = _over_sequences(one, ll, lengths)
        gw = post.smoothed_probs * w[:, None, None]
        xi = jnp.sum(post.transition_counts * w[:, None, None], axis=0)
        stats = self._stats(params, obs, gw, xi)
        elj = (_weighted_log(stats.initial, safe_log(params.initial))
               + _weighted_log(xi, safe_log(params.transition)) + _weighted_log(gw, ll))
        total = jnp.sum(jnp.where(w > 0, w * post.log_likelihood, 0.0))
        zero = jnp.zeros((), total.dtype)
        return stats, ELBO(expected_log_joint=elj, entropy=total - elj, log_prior=zero)

    def hard_e_step(self, params: HMMParams, seqs: Sequences, w):
        obs, lengths = self._prepare(seqs, w)
        ll = self._emission_ll(params, obs)
        paths, log_probs = _over_sequences(
            lambda ll_, n: _inference.viterbi(params.initial, params.transition, ll_, n,
                                              return_log_prob=True), ll, lengths)
        onehot = jax.nn.one_hot(paths, self.num_states, dtype=ll.dtype)  # -1 (padding) -> 0
        gw = onehot * w[:, None, None]
        xi = jnp.einsum("btk,btl->kl", gw[:, :-1], onehot[:, 1:])
        stats = self._stats(params, obs, gw, xi)
        zero = jnp.zeros((), ll.dtype)
        best = jnp.sum(jnp.where(w > 0, w * log_probs, 0.0))
        return stats, ELBO(expected_log_joint=best, entropy=zero, log_prior=zero)

    def _stats(self, params, obs, gw, xi) -> HMMStats:
        event = obs.shape[2:]
        flat_obs = obs.reshape((-1,) + event)
        emissions = self.emissions.statistics(params.emissions, flat_obs,
                                              gw.reshape(-1, self.num_states))
        return HMMStats(initial=jnp.sum(gw[:, 0], axis=0), transition=xi, emissions=emissions)

    def m_step(self, params: HMMParams, stats: HMMStats) -> HMMParams:
        new = self.partial_m_step(params, stats)
        return HMMParams(new.initial, new.transition,
                         self.emissions.m_step(params.emissions, stats.emissions))

    def rebase_stats(self, stats: HMMStats, from_params: HMMParams, to_params: HMMParams):
        """Only the emission statistics can depend on the parameters (Gaussian ones are
        centred on the means); see `emjax.AbstractEMModel.rebase_stats`."""
        return HMMStats(stats.initial, stats.transition, self.emissions.rebase_stats(
            stats.emissions, from_params.emissions, to_params.emissions))

    def log_prior(self, params: HMMParams):
        r"""``Σ_k (α_π,k − 1) log π_k + Σ_ij (α_A,ij − 1) log A_ij`` plus the emissions' log
        prior: the Dirichlet log-densities up to their normalising constants, over the
        support (structural zeros contribute nothing)."""
        dtype = params.initial.dtype

        def dirichlet(concentration, p):
            on_support = p > 0
            log_p = jnp.log(jnp.where(on_support, p, 1.0))
            return jnp.sum(jnp.where(on_support, (concentration.astype(dtype) - 1.0) * log_p, 0.0))

        return (dirichlet(self.initial_prior, params.initial)
                + dirichlet(self.transition_prior, params.transition)
                + self.emissions.log_prior(params.emissions))

    # ------------------------------------------------------------------ gradient M-step
    def unconstrain(self, params: HMMParams):
        """``(log π, log A, ψ_emissions)``; a structural zero maps to a very negative finite
        value that softmax turns back into an exact zero."""
        return (_unconstrained_log(params.initial), _unconstrained_log(params.transition),
                self.emissions.unconstrain(params.emissions))

    def constrain(self, unconstrained) -> HMMParams:
        log_pi, log_A, psi = unconstrained
        return HMMParams(jax.nn.softmax(log_pi), jax.nn.softmax(log_A, axis=1),
                         self.emissions.constrain(psi))

    def partial_m_step(self, params: HMMParams, stats: HMMStats) -> HMMParams:
        """The initial and transition probabilities in closed form (for the gradient M-step
        of emissions without one): the ECM step that leaves only the emissions to the
        optimizer."""
        dtype = stats.initial.dtype
        initial = _dirichlet_map(stats.initial, self.initial_prior.astype(dtype), params.initial)
        transition = _dirichlet_map(stats.transition, self.transition_prior.astype(dtype),
                                    params.transition)
        return HMMParams(initial, transition, params.emissions)

    def expected_log_joint(self, params, reference_params, seqs: Sequences, w):
        """``Q(θ | θ')``: the posterior of the states under ``θ' = reference_params``, the
        log-probabilities under ``θ = params``."""
        obs, lengths = self._prepare(seqs, w)
        ref_ll = self._emission_ll(reference_params, obs)

        def one(lk, n):
            return _inference.forward_backward(reference_params.initial,
                                               reference_params.transition, lk, n,
                                               parallel=self._parallel)

        post = _over_sequences(one, ref_ll, lengths)
        gw = post.smoothed_probs * w[:, None, None]
        xi = jnp.sum(post.transition_counts * w[:, None, None], axis=0)
        ll = self._emission_ll(params, obs)
        return (_weighted_log(jnp.sum(gw[:, 0], axis=0), safe_log(params.initial))
                + _weighted_log(xi, safe_log(params.transition)) + _weighted_log(gw, ll))

    # ------------------------------------------------------------------ fitted-model API
    def log_prob(self, params: HMMParams, data) -> Float[Array, " S"]:
        """``log p(x_s)`` of every sequence, shape ``(S,)`` (a scalar for one sequence).

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> hmm = emjax.HiddenMarkovModel(2)
            >>> sol = emjax.fit(hmm, X, key=jax.random.key(0))
            >>> bool(abs(hmm.log_prob(sol.params, X) - sol.log_likelihood) < 1e-3)
            True
        """
        seqs, kind, _ = self.check_input(params, data)
        out = _per_sequence(self, params, seqs, "log_prob")
        return out[0] if kind == "single" else out

    def log_likelihood(self, params: HMMParams, data, sample_weight=None) -> Float[Array, ""]:
        """Total log-likelihood ``Σ_s w_s log p(x_s | θ)`` (weights default to 1).

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> hmm = emjax.HiddenMarkovModel(2)
            >>> sol = emjax.fit(hmm, X, key=jax.random.key(0))
            >>> bool(abs(hmm.log_likelihood(sol.params, X) - sol.log_likelihood) < 1e-3)
            True
        """
        seqs, _, _ = self.check_input(params, data)
        w = check_sample_weight(sample_weight, seqs.lengths.shape[0], params.initial.dtype)
        return _total_log_likelihood(self, params, seqs, w)

    def predict(self, params: HMMParams, data):
        """The most probable state path of each sequence (Viterbi), in the layout of the data.

        One sequence gives ``(T,)``; ``(X, lengths)`` concatenated gives ``(ΣT_s,)``; a
        list gives a list; padded data give ``(S, T)`` with ``−1`` at padded steps.

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> hmm = emjax.HiddenMarkovModel(2)
            >>> sol = emjax.fit(hmm, X, key=jax.random.key(0))
            >>> sorted(set(hmm.predict(sol.params, X).tolist()))
            [0, 1]
        """
        seqs, kind, extra = self.check_input(params, data)
        return _in_layout(_per_sequence(self, params, seqs, "viterbi"), kind, extra)

    def decode(self, params: HMMParams, data):
        """``(log p(x, z*), z*)``: the Viterbi path and its joint log-probability (summed over
        sequences), as hmmlearn's ``decode``.

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> hmm = emjax.HiddenMarkovModel(2)
            >>> sol = emjax.fit(hmm, X, key=jax.random.key(0))
            >>> log_prob, path = hmm.decode(sol.params, X)
            >>> bool(log_prob <= sol.log_likelihood)
            True
        """
        seqs, kind, extra = self.check_input(params, data)
        log_probs = _per_sequence(self, params, seqs, "viterbi_log_prob")
        path = _per_sequence(self, params, seqs, "viterbi")
        return jnp.sum(log_probs), _in_layout(path, kind, extra)

    def predict_proba(self, params: HMMParams, data):
        """Smoothed state marginals ``p(z_t = k | x_{1:T})``, ``(T, K)`` per sequence, in the
        layout of the data (zero rows at padded steps).

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> hmm = emjax.HiddenMarkovModel(2)
            >>> sol = emjax.fit(hmm, X, key=jax.random.key(0))
            >>> hmm.predict_proba(sol.params, X).shape
            (272, 2)
        """
        seqs, kind, extra = self.check_input(params, data)
        return _in_layout(_per_sequence(self, params, seqs, "smoothed"), kind, extra)

    def emission_log_likelihoods(self, params: HMMParams, data):
        """``log p(x_t | z_t = k)``, ``(T, K)`` per sequence, in the layout of the data: the
        input of the functions in `emjax.hmm`.

        Example:
            >>> import jax, emjax
            >>> X = emjax.datasets.load_old_faithful()
            >>> hmm = emjax.HiddenMarkovModel(2)
            >>> p = emjax.fit(hmm, X, key=jax.random.key(0)).params
            >>> ll = hmm.emission_log_likelihoods(p, X)
            >>> post = emjax.hmm.forward_backward(p.initial, p.transition, ll)
            >>> post.smoothed_probs.shape
            (272, 2)
        """
        seqs, kind, extra = self.check_input(params, data)
        return _in_layout(_per_sequence(self, params, seqs, "emission"), kind, extra)

    def sample(self, params: HMMParams, num_steps: int, *, key: PRNGKeyArray):
        """Draw one sequence of ``num_steps`` steps; returns ``(X, states)``.

        Example:
            >>> import jax, numpy as np, emjax
            >>> hmm = emjax.HiddenMarkovModel(2, emissions=emjax.PoissonEmissions())
            >>> p = hmm.make_params(initial=[0.5, 0.5], transition=[[0.9, 0.1], [0.1, 0.9]],
            ...                     rates=[[1.0], [10.0]])
            >>> X, z = hmm.sample(p, 50, key=jax.random.key(0))
            >>> X.shape, z.shape
            ((50, 1), (50,))
        """
        num_steps = check_positive_int(num_steps, "num_steps")
        kz, kx = jax.random.split(key)
        states = _inference.sample(kz, params.initial, params.transition, num_steps)
        return self.emissions.sample(params.emissions, states, key=kx), states

    def num_free_params(self, num_features: int) -> int:
        """``K − 1`` initial, ``K(K − 1)`` transition and the emissions' free parameters
        (``num_features``: ``D``, or the vocabulary size ``V`` for symbols).

        Example:
            >>> import emjax
            >>> emjax.HiddenMarkovModel(2, emissions=emjax.GaussianEmissions("diag")).num_free_params(3)
            15
        """
        K = self.num_states
        return K - 1 + K * (K - 1) + self.emissions.num_free_params(K, int(num_features))

    def bic(self, params: HMMParams, data) -> Float[Array, ""]:
        """``−2 log L + p log N`` with ``N`` the number of time steps (lower is better), as
        hmmlearn's ``bic``."""
        seqs, _, _ = self.check_input(params, data)
        n = int(np.sum(np.asarray(seqs.lengths)))
        return -2.0 * self.log_likelihood(params, seqs) + self._p(params, seqs) * math.log(n)

    def aic(self, params: HMMParams, data) -> Float[Array, ""]:
        """``−2 log L + 2p`` (lower is better)."""
        seqs, _, _ = self.check_input(params, data)
        return -2.0 * self.log_likelihood(params, seqs) + 2.0 * self._p(params, seqs)

    def _p(self, params, seqs):
        nf = (params.emissions.probs.shape[-1] if self.emissions.event_ndim == 0
              else seqs.observations.shape[-1])
        return self.num_free_params(nf)


# ---------------------------------------------------------------------- helpers
def _shape_name(event_ndim: int, batch: bool = False) -> str:
    inner = "(T, D)" if event_ndim == 1 else "(T,)"
    if batch:
        return "(S, T, D)" if event_ndim == 1 else "(S, T)"
    return inner


def _num_features(emission_params):
    means = getattr(emission_params, "means", None)
    if means is not None:
        return means.shape[-1]
    rates = getattr(emission_params, "rates", None)
    return None if rates is None else rates.shape[-1]


def _check_concentration(value, name, shape):
    arr = as_float_array(value, name)
    try:
        arr = jnp.broadcast_to(arr, shape)
    except ValueError as e:
        raise ValueError(f"`{name}` must be a scalar or have shape {shape}; got "
                         f"{tuple(jnp.shape(value))}.") from e
    if not is_traced(arr):
        a = np.asarray(arr)
        if not np.isfinite(a).all() or (a < 1).any():
            raise ValueError(
                f"`{name}` must be Dirichlet concentrations >= 1 (1 means no prior; below 1 "
                f"the MAP objective is unbounded); got a minimum of {a.min()}."
            )
    return arr


def _concrete_lengths(lengths, num_rows: int) -> np.ndarray:
    if is_traced(lengths):
        raise ValueError("Concatenated sequences (X, lengths) need concrete lengths; inside "
                         "jax.jit pass emjax.hmm.Sequences(padded_X, lengths).")
    arr = np.asarray(lengths)
    if arr.ndim != 1 or arr.size == 0 or not (np.issubdtype(arr.dtype, np.integer) or (
            np.issubdtype(arr.dtype, np.floating) and (arr == np.round(arr)).all())):
        raise ValueError(f"`lengths` must be a non-empty 1-D array of integers; got {lengths!r}.")
    if (arr < 1).any():
        raise ValueError(f"`lengths` must be >= 1 (no empty sequences); got {arr.min()}.")
    if int(arr.sum()) != num_rows:
        raise ValueError(f"`lengths` sum to {int(arr.sum())} but `X` has {num_rows} rows; they "
                         "must match (sequences are concatenated along the rows of X).")
    return arr.astype(np.int64)


def _check_lengths(lengths, obs, event_ndim, name):
    """Lengths of a padded batch: integers in [1, T], one per sequence."""
    if is_traced(lengths):
        return jnp.asarray(lengths).astype(jnp.int32)
    arr = np.asarray(lengths)
    S = obs.shape[0] if obs.ndim == event_ndim + 2 else None
    if arr.ndim != 1 or (S is not None and arr.shape[0] != S):
        raise ValueError(f"`{name}` must have shape ({S},), one length per sequence; got "
                         f"shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.integer) or (
            np.issubdtype(arr.dtype, np.floating) and (arr == np.round(arr)).all())):
        raise ValueError(f"`{name}` must hold integers; got {arr.dtype}.")
    T = obs.shape[1] if obs.ndim >= 2 else 0
    if (arr < 1).any() or (arr > T).any():
        raise ValueError(f"`{name}` must be between 1 and the padded length {T}; got values "
                         f"from {arr.min()} to {arr.max()}.")
    return jnp.asarray(arr, jnp.int32)


def _pad(concatenated, lengths: np.ndarray):
    """Concatenated sequences (rows of ``concatenated``) as a padded ``(S, T_max, ...)``."""
    T = int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    idx = np.minimum(starts[:, None] + np.arange(T)[None, :], starts[:, None] + lengths[:, None] - 1)
    return concatenated[jnp.asarray(idx)]


def _in_layout(padded, kind: str, extra):
    if kind == "single":
        return padded[0]
    if kind == "padded":
        return padded
    # One gather, then (for a list) one split: slicing sequence by sequence compiled two
    # eager ops per distinct length (seconds for a few dozen sequences).
    T = padded.shape[1]
    rows = np.concatenate([s * T + np.arange(n) for s, n in enumerate(extra)])
    flat = padded.reshape((-1,) + padded.shape[2:])[jnp.asarray(rows)]
    if kind == "concatenated":
        return flat
    return jnp.split(flat, np.cumsum(extra)[:-1].tolist())


@eqx.filter_jit
def _per_sequence(model: HiddenMarkovModel, params, seqs: Sequences, what: str):
    def one_block(seq_block):
        obs, lengths = seq_block.observations, seq_block.lengths
        ll = model._emission_ll(params, obs)
        if what == "emission":
            valid = jnp.arange(obs.shape[1]) < lengths[:, None]
            return jnp.where(valid[..., None], ll, 0.0)
        if what in ("viterbi", "viterbi_log_prob"):
            path, log_prob = _over_sequences(
                lambda ll_, n: _inference.viterbi(params.initial, params.transition, ll_, n,
                                                  return_log_prob=True), ll, lengths)
            return path if what == "viterbi" else log_prob
        if what == "log_prob":
            return _over_sequences(
                lambda ll_, n: _inference.filter(params.initial, params.transition, ll_, n,
                                               parallel=model._parallel)[0], ll, lengths)
        post = _over_sequences(
            lambda ll_, n: _inference.forward_backward(params.initial, params.transition, ll_, n,
                                                     parallel=model._parallel), ll, lengths)
        return post.smoothed_probs

    S = seqs.lengths.shape[0]
    return map_rows(one_block, seqs, default_block_size(S, model.row_cost(seqs)))


@eqx.filter_jit
def _total_log_likelihood(model: HiddenMarkovModel, params, seqs: Sequences, w):
    blocks = make_blocks(seqs, w, default_block_size(w.shape[0], model.row_cost(seqs)))

    def one_block(seq_block, wb):
        obs, lengths = model._prepare(seq_block, wb)
        ll = model._emission_ll(params, obs)
        lp = _over_sequences(
            lambda ll_, n: _inference.filter(params.initial, params.transition, ll_, n,
                                           parallel=model._parallel)[0], ll, lengths)
        return jnp.sum(jnp.where(wb > 0, wb * lp, 0.0))

    return accumulate(one_block, blocks)
