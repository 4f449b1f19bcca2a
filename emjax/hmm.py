r"""Inference in hidden Markov models: pure functions of the parameters and the evidence.

A hidden Markov model with ``K`` states has an initial distribution ``π_k = p(z_1 = k)``,
a transition matrix ``A_ij = p(z_{t+1} = j | z_t = i)`` (rows sum to 1) and emission
log-likelihoods ``ℓ_t(k) = log p(x_t | z_t = k)``. Every function here takes those three,
as ``initial_probs`` ``(K,)``, ``transition_matrix`` ``(K, K)`` and ``log_likelihoods``
``(T, K)``, so that any emission model (or none: a user's own log-likelihoods) can use them.

All computation is in log space: messages are log-probabilities, normalised at every step
so that their magnitude stays bounded over long sequences, and every sum over states is a
``logsumexp``. Structural zeros (``π_k = 0`` or ``A_ij = 0``, e.g. a left-to-right model)
are ``−∞`` in log space and stay exactly zero in every posterior; gradients through them
are finite (zero), not NaN.

A sequence shorter than the ``T`` rows of ``log_likelihoods`` (padding, in a batch of
sequences of different lengths) is given by ``length``: rows ``t >= length`` are ignored,
and their posteriors are zero. Every function is pure and jit-, vmap- and
grad-compatible; ``vmap`` over a batch of padded sequences with their lengths.

Functions:

- `forward_backward`: the log-likelihood, smoothed marginals ``p(z_t | x_{1:T})``,
  expected transition counts ``Σ_t p(z_t = i, z_{t+1} = j | x_{1:T})`` and filtered
  marginals; sequential (``lax.scan``, the default) or parallel (``lax.associative_scan``,
  ``O(log T)`` depth, for long sequences on accelerators).
- `filter`: the forward pass alone, ``p(z_t | x_{1:t})`` and the log-likelihood.
- `viterbi`: the most probable state path ``argmax_z p(z | x)`` and its log-probability.
- `sample`: a state path from the prior; `sample_posterior`: a state path from
  ``p(z | x)`` (forward filtering, backward sampling).

References: Rabiner (1989), Proc. IEEE 77(2):257–286; Särkkä & García-Fernández (2021),
"Temporal parallelization of Bayesian smoothers", IEEE TAC 66(1):299–306.

Example:
    >>> import jax.numpy as jnp, emjax
    >>> pi = jnp.array([0.6, 0.4])
    >>> A = jnp.array([[0.7, 0.3], [0.4, 0.6]])
    >>> emission = jnp.array([[0.5, 0.1], [0.4, 0.3], [0.1, 0.6]])  # p(symbol | state)
    >>> x = jnp.array([0, 1, 2, 1, 0])
    >>> post = emjax.hmm.forward_backward(pi, A, jnp.log(emission[x]))
    >>> round(float(post.log_likelihood), 4)
    -5.503
    >>> emjax.hmm.viterbi(pi, A, jnp.log(emission[x])).tolist()
    [0, 0, 1, 0, 0]
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from ._custom_types import Array, Float, Int, PRNGKeyArray

__all__ = [
    "Posterior",
    "Sequences",
    "forward_backward",
    "filter",
    "viterbi",
    "sample",
    "sample_posterior",
]


class Posterior(eqx.Module):
    """What `forward_backward` returns for one sequence.

    Attributes:
        log_likelihood: ``log p(x_{1:T})``, a scalar.
        smoothed_probs: ``γ_t(k) = p(z_t = k | x_{1:T})``, shape ``(T, K)``; zero rows at
            padded steps ``t >= length``.
        transition_counts: ``Σ_{t} p(z_t = i, z_{t+1} = j | x_{1:T})``, shape ``(K, K)``:
            the expected number of ``i → j`` transitions.
        filtered_probs: ``p(z_t = k | x_{1:t})``, shape ``(T, K)``; zero rows at padded
            steps.
    """

    log_likelihood: Float[Array, ""]
    smoothed_probs: Float[Array, "T K"]
    transition_counts: Float[Array, "K K"]
    filtered_probs: Float[Array, "T K"]

    @property
    def marginal_loglik(self) -> Float[Array, ""]:
        """``log_likelihood`` under dynamax's name."""
        return self.log_likelihood


# ----------------------------------------------------------------------------- log space
def safe_log(p):
    """``log p`` with ``log 0 = −∞`` and a zero (not NaN) gradient wherever ``p = 0``."""
    positive = p > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, p, 1.0)), -jnp.inf)


def logsumexp(x, axis):
    """``log Σ exp x`` along ``axis``: ``−∞`` (with a zero gradient, not NaN) when every
    term is ``−∞``."""
    m = jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    s = jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True)
    positive = s > 0
    out = jnp.where(positive, jnp.log(jnp.where(positive, s, 1.0)) + m, -jnp.inf)
    return jnp.squeeze(out, axis=axis)


def _normalise(log_p, axis=-1):
    """``log_p`` minus its ``logsumexp`` (a log-distribution), and that ``logsumexp``."""
    c = logsumexp(log_p, axis)
    c_safe = jnp.where(jnp.isfinite(c), c, 0.0)
    return log_p - jnp.expand_dims(c_safe, axis), c


def _valid(T: int, length):
    """``t < length`` for ``t = 0..T−1`` (all True when ``length`` is None)."""
    if length is None:
        return jnp.ones((T,), bool)
    return jnp.arange(T) < length


def _inputs(initial_probs, transition_matrix, log_likelihoods, length):
    """Checked shapes, then ``(log π, log A, ℓ with padded rows zeroed, valid mask)``."""
    _check_shapes(initial_probs, transition_matrix, log_likelihoods)
    valid = _valid(log_likelihoods.shape[0], length)
    ll = jnp.where(valid[:, None], log_likelihoods, 0.0)
    return safe_log(initial_probs), safe_log(transition_matrix), ll, valid


def _check_shapes(initial_probs, transition_matrix, log_likelihoods):
    K = initial_probs.shape[-1]
    if initial_probs.ndim != 1:
        raise ValueError(f"`initial_probs` must have shape (K,); got {initial_probs.shape}.")
    if transition_matrix.shape != (K, K):
        raise ValueError(
            f"`transition_matrix` must have shape ({K}, {K}) to match `initial_probs`; got "
            f"{transition_matrix.shape}."
        )
    if log_likelihoods.ndim != 2 or log_likelihoods.shape[1] != K:
        raise ValueError(
            f"`log_likelihoods` must have shape (T, {K}); got {log_likelihoods.shape}."
        )
    if log_likelihoods.shape[0] < 1:
        raise ValueError("`log_likelihoods` must have at least one row (time step).")


# ----------------------------------------------------------------------------- forward
def _forward(log_pi, log_A, ll, valid):
    """Normalised forward messages ``log p(z_t | x_{1:t})`` and the per-step
    normalisers ``log p(x_t | x_{1:t−1})`` (0 at padded steps)."""
    a0, c0 = _normalise(log_pi + ll[0])

    def step(a, inputs):
        lk, ok = inputs
        new, c = _normalise(lk + logsumexp(a[:, None] + log_A, axis=0))
        return jnp.where(ok, new, a), (jnp.where(ok, new, a), jnp.where(ok, c, 0.0))

    _, (alphas, cs) = jax.lax.scan(step, a0, (ll[1:], valid[1:]))
    return jnp.concatenate([a0[None], alphas]), jnp.concatenate([c0[None], cs])


def _backward(log_A, ll, valid):
    """Normalised backward messages ``log β_t`` (up to a constant per step); ``0`` at the
    last valid step and beyond."""

    def step(b, inputs):
        lk, ok = inputs  # l = ℓ_{t+1}; ok = (t + 1 < length)
        new, _ = _normalise(logsumexp(log_A + (lk + b)[None, :], axis=1))
        new = jnp.where(ok, new, 0.0)
        return new, new

    # Zeros shaped like the data (not a constant): inside `emjax.fit(..., mesh=...)`'s
    # shard_map the carry must vary over the devices as the data do.
    zero = jnp.zeros_like(ll[0])
    _, betas = jax.lax.scan(step, zero, (ll[1:], valid[1:]), reverse=True)
    return jnp.concatenate([betas, zero[None]])


def _posterior_from_messages(log_pi, log_A, ll, valid, alphas, cs, betas) -> Posterior:
    log_gamma, g = _normalise(alphas + betas)
    gamma = jnp.where(valid[:, None], jnp.exp(log_gamma), 0.0)
    # ξ_t(i, j) ∝ α̂_t(i) A_ij b_{t+1}(j) β̂_{t+1}(j), normalised per step so that Σ_ij ξ_t = 1:
    # the normaliser is c_{t+1} · Σ_j α̂_{t+1}(j) β̂_{t+1}(j), both known already.
    log_xi = (alphas[:-1, :, None] + log_A[None] + (ll[1:] + betas[1:])[:, None, :]
              - (cs[1:] + g[1:])[:, None, None])
    xi = jnp.where(valid[1:, None, None], jnp.exp(log_xi), 0.0)
    filtered = jnp.where(valid[:, None], jnp.exp(alphas), 0.0)
    return Posterior(
        log_likelihood=jnp.sum(cs),
        smoothed_probs=gamma,
        transition_counts=jnp.sum(xi, axis=0),
        filtered_probs=filtered,
    )


# ----------------------------------------------------------------------------- parallel
def _log_matmul(a, b):
    """``log(exp(a) @ exp(b))`` over the last two axes, in log space (batched)."""
    return logsumexp(a[..., :, :, None] + b[..., None, :, :], axis=-2)


def _parallel_log_likelihood(log_pi, log_A, ll, valid):
    """``log p(x)`` and the filtered messages by an associative scan over ``K × K``
    log-transfer matrices, each kept with its log-scale (normalised by its maximum) so that
    magnitudes stay bounded."""
    T, K = ll.shape
    dtype = ll.dtype
    first = jnp.broadcast_to(log_pi + ll[0], (K, K))
    rest = log_A[None] + ll[1:, None, :]
    elems = jnp.concatenate([first[None], rest])
    identity = jnp.where(jnp.eye(K, dtype=bool), 0.0, -jnp.inf).astype(dtype)
    elems = jnp.where(valid[:, None, None], elems, identity)

    def scaled(m):
        s = jax.lax.stop_gradient(jnp.max(m, axis=(-2, -1), keepdims=True))
        s = jnp.where(jnp.isfinite(s), s, 0.0)
        return m - s, s[..., 0, 0]

    mats, scales = scaled(elems)

    def combine(x, y):
        (ma, sa), (mb, sb) = x, y
        m, s = scaled(_log_matmul(ma, mb))
        return m, sa + sb + s

    prefix, log_scale = jax.lax.associative_scan(combine, (mats, scales))
    log_alpha = prefix[:, 0, :]  # every row of the first element is the same
    log_filtered, c = _normalise(log_alpha)
    log_likelihood = c[-1] + log_scale[-1]
    return log_likelihood, log_filtered


def _parallel_forward_backward(log_pi, log_A, ll, valid) -> Posterior:
    """Smoothing as the gradient of the log-normaliser (forward–backward is backprop):
    ``γ_t = ∂ log p / ∂ℓ_t``, ``Σ_t ξ_t = ∂ log p / ∂ log A``."""

    def value(log_A_, ll_):
        log_likelihood, log_filtered = _parallel_log_likelihood(log_pi, log_A_, ll_, valid)
        return log_likelihood, log_filtered

    (log_likelihood, log_filtered), (d_log_A, d_ll) = jax.value_and_grad(
        value, argnums=(0, 1), has_aux=True
    )(log_A, ll)
    gamma = jnp.where(valid[:, None], d_ll, 0.0)
    filtered = jnp.where(valid[:, None], jnp.exp(log_filtered), 0.0)
    return Posterior(log_likelihood, gamma, d_log_A, filtered)


# ----------------------------------------------------------------------------- public
@functools.partial(jax.jit, static_argnames=("parallel",))
def forward_backward(
    initial_probs: Float[Array, " K"],
    transition_matrix: Float[Array, "K K"],
    log_likelihoods: Float[Array, "T K"],
    length=None,
    *,
    parallel: bool = False,
) -> Posterior:
    r"""Posterior marginals of the hidden states of one sequence (the E-step of Baum–Welch).

    Forward: ``α_t(j) = ℓ_t(j) + logsumexp_i(α_{t−1}(i) + log A_ij)``, normalised at each
    step; the normalisers add up to ``log p(x_{1:T})``. Backward:
    ``β_t(i) = logsumexp_j(log A_ij + ℓ_{t+1}(j) + β_{t+1}(j))``. Then
    ``γ_t ∝ exp(α_t + β_t)`` and ``ξ_t(i, j) ∝ exp(α_t(i) + log A_ij + ℓ_{t+1}(j) + β_{t+1}(j))``
    (Rabiner 1989, in log space).

    With ``parallel=True`` the forward pass is a ``lax.associative_scan`` over the
    log-transfer matrices ``log A_ij + ℓ_t(j)`` (``O(K³ T)`` work, ``O(log T)`` depth:
    faster on an accelerator for long sequences, slower on a CPU), and the smoothed
    marginals are its gradients: ``γ_t = ∂ log p(x) / ∂ℓ_t`` and
    ``Σ_t ξ_t = ∂ log p(x) / ∂ log A`` (Särkkä & García-Fernández 2021). Both give the
    same results to rounding.

    Args:
        initial_probs: ``π``, shape ``(K,)``, non-negative, summing to 1.
        transition_matrix: ``A``, shape ``(K, K)``, rows summing to 1.
        log_likelihoods: ``ℓ_t(k) = log p(x_t | z_t = k)``, shape ``(T, K)``.
        length: the number of valid steps (``1 <= length <= T``, may be traced); the
            rest are padding. Default: all ``T``.
        parallel: use the associative scan (static).

    Returns:
        A `Posterior`: ``log_likelihood``, ``smoothed_probs`` ``(T, K)``,
        ``transition_counts`` ``(K, K)`` and ``filtered_probs`` ``(T, K)``.

    Raises:
        ValueError: inconsistent shapes.

    Example:
        >>> import jax.numpy as jnp, emjax
        >>> pi, A = jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.2, 0.8]])
        >>> ll = jnp.log(jnp.array([[0.9, 0.2], [0.8, 0.3], [0.1, 0.7]]))
        >>> post = emjax.hmm.forward_backward(pi, A, ll)
        >>> post.smoothed_probs.shape, post.transition_counts.shape
        ((3, 2), (2, 2))
        >>> bool(jnp.allclose(post.transition_counts.sum(), 2.0))
        True
    """
    log_pi, log_A, ll, valid = _inputs(initial_probs, transition_matrix, log_likelihoods, length)
    if parallel:
        return _parallel_forward_backward(log_pi, log_A, ll, valid)
    alphas, cs = _forward(log_pi, log_A, ll, valid)
    betas = _backward(log_A, ll, valid)
    return _posterior_from_messages(log_pi, log_A, ll, valid, alphas, cs, betas)


@functools.partial(jax.jit, static_argnames=("parallel",))
def filter(
    initial_probs: Float[Array, " K"],
    transition_matrix: Float[Array, "K K"],
    log_likelihoods: Float[Array, "T K"],
    length=None,
    *,
    parallel: bool = False,
) -> tuple[Float[Array, ""], Float[Array, "T K"]]:
    r"""The forward pass alone: ``log p(x_{1:T})`` and filtered marginals ``p(z_t | x_{1:t})``.

    Args and shapes as for `forward_backward`.

    Returns:
        ``(log_likelihood, filtered_probs)``; ``filtered_probs`` has zero rows at padded
        steps.

    Example:
        >>> import jax.numpy as jnp, emjax
        >>> pi, A = jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.2, 0.8]])
        >>> ll = jnp.log(jnp.array([[0.9, 0.2], [0.8, 0.3], [0.1, 0.7]]))
        >>> log_p, filtered = emjax.hmm.filter(pi, A, ll)
        >>> bool(jnp.allclose(filtered.sum(axis=1), 1.0))
        True
    """
    log_pi, log_A, ll, valid = _inputs(initial_probs, transition_matrix, log_likelihoods, length)
    if parallel:
        log_likelihood, log_filtered = _parallel_log_likelihood(log_pi, log_A, ll, valid)
    else:
        log_filtered, cs = _forward(log_pi, log_A, ll, valid)
        log_likelihood = jnp.sum(cs)
    return log_likelihood, jnp.where(valid[:, None], jnp.exp(log_filtered), 0.0)


@functools.partial(jax.jit, static_argnames=("return_log_prob",))
def viterbi(
    initial_probs: Float[Array, " K"],
    transition_matrix: Float[Array, "K K"],
    log_likelihoods: Float[Array, "T K"],
    length=None,
    *,
    return_log_prob: bool = False,
):
    r"""The most probable state path ``z* = argmax_z p(z, x)`` (Viterbi 1967) and ``log p(z*, x)``.

    ``δ_t(j) = ℓ_t(j) + max_i(δ_{t−1}(i) + log A_ij)``, with back-pointers, then
    backtracking from ``argmax_j δ_T(j)``. Ties go to the lowest state index.

    Args and shapes as for `forward_backward`, and ``return_log_prob`` (static): also
    return ``log p(z*, x_{1:T})``.

    Returns:
        The path, shape ``(T,)`` (int32; ``−1`` at padded steps); with
        ``return_log_prob=True``, ``(path, log_prob)``.

    Example:
        >>> import jax.numpy as jnp, emjax
        >>> pi, A = jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.2, 0.8]])
        >>> ll = jnp.log(jnp.array([[0.9, 0.2], [0.8, 0.3], [0.05, 0.9]]))
        >>> emjax.hmm.viterbi(pi, A, ll).tolist()
        [0, 0, 1]
        >>> path, log_prob = emjax.hmm.viterbi(pi, A, ll, return_log_prob=True)
    """
    T, K = log_likelihoods.shape
    log_pi, log_A, ll, valid = _inputs(initial_probs, transition_matrix, log_likelihoods, length)

    def forward(delta, inputs):
        lk, ok = inputs
        scores = delta[:, None] + log_A
        best = jnp.argmax(scores, axis=0).astype(jnp.int32)
        new = lk + jnp.max(scores, axis=0)
        # Past the end: stay put (identity back-pointers), so backtracking passes through.
        return jnp.where(ok, new, delta), jnp.where(ok, best, jnp.arange(K, dtype=jnp.int32))

    delta, pointers = jax.lax.scan(forward, log_pi + ll[0], (ll[1:], valid[1:]))
    last = jnp.argmax(delta).astype(jnp.int32)

    def backward(z, ptr):
        prev = ptr[z]
        return prev, prev

    _, earlier = jax.lax.scan(backward, last, pointers, reverse=True)
    path = jnp.where(valid, jnp.concatenate([earlier, last[None]]), -1)
    return (path, jnp.max(delta)) if return_log_prob else path


@functools.partial(jax.jit, static_argnames=("num_steps",))
def sample(
    key: PRNGKeyArray,
    initial_probs: Float[Array, " K"],
    transition_matrix: Float[Array, "K K"],
    num_steps: int,
) -> Int[Array, " T"]:
    """A state path ``z_{1:T}`` drawn from the Markov chain ``(π, A)``.

    Args:
        key: a JAX PRNG key.
        initial_probs: ``π``, shape ``(K,)``.
        transition_matrix: ``A``, shape ``(K, K)``.
        num_steps: ``T >= 1`` (static).

    Returns:
        ``(T,)`` int32 states.

    Example:
        >>> import jax, jax.numpy as jnp, emjax
        >>> A = jnp.array([[0.0, 1.0], [1.0, 0.0]])  # alternate
        >>> emjax.hmm.sample(jax.random.key(0), jnp.array([1.0, 0.0]), A, 4).tolist()
        [0, 1, 0, 1]
    """
    k0, k1 = jax.random.split(key)
    z0 = jax.random.categorical(k0, safe_log(initial_probs)).astype(jnp.int32)
    log_A = safe_log(transition_matrix)

    def step(z, k):
        nz = jax.random.categorical(k, log_A[z]).astype(jnp.int32)
        return nz, nz

    _, rest = jax.lax.scan(step, z0, jax.random.split(k1, num_steps - 1))
    return jnp.concatenate([z0[None], rest])


@jax.jit
def sample_posterior(
    key: PRNGKeyArray,
    initial_probs: Float[Array, " K"],
    transition_matrix: Float[Array, "K K"],
    log_likelihoods: Float[Array, "T K"],
    length=None,
) -> Int[Array, " T"]:
    r"""A state path drawn from the posterior ``p(z_{1:T} | x_{1:T})``.

    Forward filtering, backward sampling (Chib 1996): ``z_T ~ p(z_T | x_{1:T})``, then
    ``z_t ~ p(z_t | z_{t+1}, x_{1:t}) ∝ α_t(z_t) A_{z_t z_{t+1}}``.

    Returns:
        ``(T,)`` int32 states (``−1`` at padded steps).

    Example:
        >>> import jax, jax.numpy as jnp, emjax
        >>> pi, A = jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.2, 0.8]])
        >>> ll = jnp.log(jnp.array([[0.9, 0.2], [0.8, 0.3], [0.1, 0.7]]))
        >>> emjax.hmm.sample_posterior(jax.random.key(0), pi, A, ll).shape
        (3,)
    """
    T = log_likelihoods.shape[0]
    log_pi, log_A, ll, valid = _inputs(initial_probs, transition_matrix, log_likelihoods, length)
    alphas, _ = _forward(log_pi, log_A, ll, valid)
    last = T - 1 if length is None else length - 1
    keys = jax.random.split(key, T)
    z_last = jax.random.categorical(keys[-1], alphas[last]).astype(jnp.int32)

    def step(z_next, inputs):
        a, k, t = inputs
        z = jax.random.categorical(k, a + log_A[:, z_next]).astype(jnp.int32)
        z = jnp.where(t < last, z, z_next)  # past the end: carry z_last back to `last`
        return z, z

    _, earlier = jax.lax.scan(step, z_last, (alphas[:-1], keys[:-1], jnp.arange(T - 1)),
                              reverse=True)
    path = jnp.concatenate([earlier, z_last[None]])
    return jnp.where(valid, path, -1)


# The data container lives with the model; re-exported here (after the functions above,
# which the model module imports).
from ._models._hmm import Sequences as Sequences  # noqa: E402
