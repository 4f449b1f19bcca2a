"""k-means++ seeding (Arthur & Vassilvitskii 2007), weighted and jit-compatible."""

import math

import jax
import jax.numpy as jnp

from ._custom_types import Array, Float, PRNGKeyArray


def squared_distances(x: Float[Array, "N D"], centers: Float[Array, "K D"]) -> Float[Array, "N K"]:
    """``‖x_n − c_k‖²`` from explicit differences (no ``‖x‖² − 2x·c + ‖c‖²`` cancellation)."""
    return jnp.sum(jnp.square(x[:, None, :] - centers[None, :, :]), axis=-1)


def _sample_index(key, weights, potential, shape=()):
    """Draw rows with probability ∝ ``weights · potential`` (∝ ``weights`` if all vanish)."""
    p = weights * potential
    safe = jnp.where(jnp.any(p > 0), p, weights)
    logits = jnp.where(safe > 0, jnp.log(jnp.where(safe > 0, safe, 1.0)), -jnp.inf)
    return jax.random.categorical(key, logits, shape=shape)


def kmeans_plusplus(
    x: Float[Array, "N D"],
    weights: Float[Array, " N"],
    num_clusters: int,
    *,
    key: PRNGKeyArray,
    num_trials: int | None = None,
) -> Float[Array, "K D"]:
    """Greedy k-means++ seeds: ``num_clusters`` rows of ``x``.

    The first seed is drawn with probability ∝ ``w_n``; each next one from ``num_trials``
    candidates drawn with probability ∝ ``w_n · min_j ‖x_n − c_j‖²``, keeping the candidate
    that lowers the weighted potential most (the greedy variant scikit-learn uses, with
    ``2 + ⌊log K⌋`` trials by default). Rows of weight 0 (padding) are never chosen. If the
    data have fewer distinct points than clusters, later seeds repeat points.
    """
    if num_trials is None:
        num_trials = 2 + int(math.log(num_clusters))
    key, sub = jax.random.split(key)
    first = _sample_index(sub, weights, jnp.ones_like(weights))
    centers = jnp.zeros((num_clusters, x.shape[1]), x.dtype).at[0].set(x[first])
    d2 = jnp.sum(jnp.square(x - x[first]), axis=-1)

    def body(i, carry):
        centers, d2, key = carry
        key, sub = jax.random.split(key)
        cand = _sample_index(sub, weights, d2, shape=(num_trials,))
        new_d2 = jnp.minimum(d2[:, None], squared_distances(x, x[cand]))  # (N, trials)
        best = jnp.argmin(jnp.sum(weights[:, None] * new_d2, axis=0))
        return centers.at[i].set(x[cand[best]]), new_d2[:, best], key

    centers, _, _ = jax.lax.fori_loop(1, num_clusters, body, (centers, d2, key))
    return centers
