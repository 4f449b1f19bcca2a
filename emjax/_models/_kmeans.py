"""k-means as classification EM on an isotropic, equal-weight Gaussian mixture."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._accumulate import Blocks, accumulate, default_block_size, make_blocks, map_rows
from .._custom_types import Array, Float, Int, PRNGKeyArray
from .._kmeanspp import kmeans_plusplus, squared_distances
from .._model import AbstractMixtureModel, check_enough_points, hard_assignments, soft_assignments
from .._solver import HardEM
from .._validation import (
    as_float_array,
    check_choice,
    check_matrix,
    check_positive_int,
    check_positive_scalar,
    check_sample_weight,
    is_traced,
)
from ._gmm import _ignore_unweighted

KMEANS_INITS = ("kmeans++", "random")
_LOG_2PI = math.log(2 * math.pi)


class KMeansParams(eqx.Module):
    """Parameters of `emjax.KMeans`.

    Attributes:
        centers: cluster centres, shape ``(K, D)`` (scikit-learn's ``cluster_centers_``).
    """

    centers: Float[Array, "K D"]


class FarthestPoints(eqx.Module):
    """The points farthest from their assigned centres seen so far (at most ``K``).

    Kept during a hard E-step so that the M-step can move them into empty clusters, as
    scikit-learn's Lloyd iteration does. Combining two blocks keeps the overall farthest.
    """

    distance: Float[Array, " K"]  # −inf marks an unused slot
    point: Float[Array, "K D"]
    weight: Float[Array, " K"]
    label: Int[Array, " K"]

    def __add__(self, other: "FarthestPoints") -> "FarthestPoints":
        K = self.distance.shape[0]
        both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), self, other)
        top = jax.lax.top_k(both.distance, K)[1]
        return jax.tree.map(lambda a: a[top], both)


class KMeansStats(eqx.Module):
    """Statistics of k-means: ``N_k = Σ w r_nk``, ``S1_k = Σ w r_nk (x_n − c_k)``.

    ``farthest`` (hard E-step only) holds the candidates for relocating empty clusters; it
    is combined by keeping the farthest points rather than by summation.
    """

    counts: Float[Array, " K"]
    shifted_sum: Float[Array, "K D"]
    farthest: FarthestPoints | None

    def __add__(self, other: "KMeansStats") -> "KMeansStats":
        far = None if self.farthest is None else self.farthest + other.farthest
        return KMeansStats(self.counts + other.counts, self.shifted_sum + other.shifted_sum, far)


class KMeans(AbstractMixtureModel):
    r"""k-means clustering as classification EM on the emjax engine.

    The model is a mixture of ``K`` isotropic Gaussians with equal weights and a common,
    fixed variance ``temperature``:
    ``log p(x, z = k) = −‖x − c_k‖² / (2T) − log K − (D/2) log(2πT)``.

    - With the default solver `emjax.HardEM`, the E-step assigns each point to its nearest
      centre and the M-step moves each centre to the (weighted) mean of its points: Lloyd's
      algorithm. The ELBO is the classification log-likelihood
      ``−inertia/(2T) − N log K − (N D/2) log(2πT)``, which never decreases. A cluster that
      loses all its points takes the point farthest from its centre, as scikit-learn does.
    - With `emjax.EM` (soft k-means), responsibilities are ``softmax(−‖x − c_k‖²/(2T))``:
      smooth in the data, the centres and ``temperature``, so it can be differentiated;
      as ``T → 0`` it tends to hard k-means.

    Args:
        num_clusters: number of clusters ``K`` (``>= 1``).
        init: "kmeans++" (default, greedy k-means++ seeding) or "random" (``K`` distinct
            random points). Pass ``params0`` to `emjax.fit` for given centres.
        temperature: the variance ``T > 0`` of the soft version (an array leaf).

    Example:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> km = emjax.KMeans(num_clusters=2)
        >>> sol = emjax.fit(km, X, key=jax.random.key(0), num_restarts=4)
        >>> sol.params.centers.shape
        (2, 2)
        >>> inertia = km.inertia(sol.params, X)
        >>> soft = emjax.fit(emjax.KMeans(2, temperature=4.0), X, key=jax.random.key(0),
        ...                  solver=emjax.EM())
    """

    num_clusters: int = eqx.field(static=True)
    init: str = eqx.field(static=True)
    temperature: Float[Array, ""]

    def __init__(self, num_clusters: int, init: str = "kmeans++", temperature=1.0):
        self.num_clusters = check_positive_int(num_clusters, "num_clusters")
        self.init = check_choice(init, "init", KMEANS_INITS)
        self.temperature = check_positive_scalar(temperature, "temperature")

    # ------------------------------------------------------------------ contract
    def default_solver(self):
        return HardEM()

    def row_cost(self, data) -> int:
        """``K·D``: the differences ``x_n − μ_k`` an E-step forms for each row."""
        return self.num_clusters * data.shape[-1]

    def check_data(self, data):
        return check_enough_points(check_matrix(data, "X"), self.num_clusters, "num_clusters",
                                   "k-means")

    def check_params(self, params, data):
        if not isinstance(params, KMeansParams):
            raise TypeError(
                "`params0` must be KMeansParams; build it with model.make_params(centers=...); "
                f"got {type(params).__name__}."
            )
        batched = jnp.ndim(params.centers) == 3
        p = self.make_params(centers=params.centers, _num_features=data.shape[1], _batched=batched)
        return KMeansParams(p.centers.astype(data.dtype)), (p.centers.shape[0] if batched else None)

    def log_prior(self, params):
        return jnp.zeros((), params.centers.dtype)

    def log_joint(self, params, x):
        """``−‖x_n − c_k‖² / (2T) − log K − (D/2) log(2πT)``, shape ``(N, K)``."""
        return self._log_joint_and_d2(params, x)[0]

    def _log_joint_and_d2(self, params, x):
        T = self.temperature.astype(x.dtype)
        d2 = squared_distances(x, params.centers)
        D = x.shape[1]
        const = -math.log(self.num_clusters) - 0.5 * D * (_LOG_2PI + jnp.log(T))
        return -0.5 * d2 / T + const, d2

    def e_step(self, params, x, w):
        x = _ignore_unweighted(x, w, params.centers[0])
        rw, elbo = soft_assignments(self.log_joint(params, x), w)
        s1 = jnp.einsum("bk,kbd->kd", rw, x[None] - params.centers[:, None],
                        precision=jax.lax.Precision.HIGHEST)
        return KMeansStats(jnp.sum(rw, axis=0), s1, None), elbo

    def hard_e_step(self, params, x, w):
        K = self.num_clusters
        x = _ignore_unweighted(x, w, params.centers[0])
        log_joint, d2 = self._log_joint_and_d2(params, x)
        rw, z, elbo = hard_assignments(log_joint, w)
        s1 = jnp.einsum("bk,kbd->kd", rw, x[None] - params.centers[:, None],
                        precision=jax.lax.Precision.HIGHEST)
        # Candidates for empty clusters: this block's points farthest from their centre.
        dmin = jnp.where(w > 0, jnp.take_along_axis(d2, z[:, None], axis=1)[:, 0], -jnp.inf)
        k = min(K, x.shape[0])
        idx = jax.lax.top_k(dmin, k)[1]
        pad = K - k
        far = FarthestPoints(
            distance=jnp.pad(dmin[idx], (0, pad), constant_values=-jnp.inf),
            point=jnp.pad(x[idx], ((0, pad), (0, 0))),
            weight=jnp.pad(w[idx], (0, pad)),
            label=jnp.pad(z[idx], (0, pad)),
        )
        return KMeansStats(jnp.sum(rw, axis=0), s1, far), elbo

    def m_step(self, params, stats):
        counts, s1 = stats.counts, stats.shifted_sum
        centers = params.centers
        if stats.farthest is not None:
            counts, s1 = _relocate_empty(centers, counts, s1, stats.farthest)
        floor = 10 * jnp.finfo(counts.dtype).eps * jnp.maximum(jnp.sum(counts), 1.0)
        alive = counts > floor
        delta = s1 / jnp.where(alive, counts, 1.0)[:, None]
        return KMeansParams(jnp.where(alive[:, None], centers + delta, centers))

    def rebase_stats(self, stats, from_params, to_params):
        """``S1 = Σ r (x − c)`` moved to new centres: ``S1 + N (c − c')``."""
        delta = from_params.centers - to_params.centers
        return KMeansStats(stats.counts, stats.shifted_sum + stats.counts[:, None] * delta,
                           stats.farthest)

    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> KMeansParams:
        x = blocks.data.reshape(-1, blocks.data.shape[-1])
        w = blocks.weights.reshape(-1)
        if self.init == "random":
            g = jax.random.gumbel(key, w.shape, x.dtype) + jnp.where(w > 0, 0.0, -jnp.inf)
            return KMeansParams(x[jax.lax.top_k(g, self.num_clusters)[1]])
        return KMeansParams(kmeans_plusplus(x, w, self.num_clusters, key=key))

    # ------------------------------------------------------------------ public API
    def make_params(self, *, centers, _num_features=None, _batched=False) -> KMeansParams:
        """Build parameters from centres of shape ``(K, D)`` (or ``(R, K, D)`` for restarts).

        Example:
            >>> import numpy as np, emjax
            >>> emjax.KMeans(2).make_params(centers=np.zeros((2, 3))).centers.shape
            (2, 3)
        """
        c = as_float_array(centers, "centers")
        nb = 1 if (_batched or c.ndim == 3) else 0
        if c.ndim != 2 + nb or c.shape[nb] != self.num_clusters:
            raise ValueError(
                f"`centers` must have shape ({'R, ' * nb}{self.num_clusters}, D); got {tuple(c.shape)}."
            )
        if _num_features is not None and c.shape[-1] != _num_features:
            raise ValueError(f"`centers` have {c.shape[-1]} features but the data have {_num_features}.")
        if not is_traced(c) and not np.isfinite(np.asarray(c)).all():
            raise ValueError("`centers` must be finite.")
        return KMeansParams(c)

    def check_input(self, params, X):
        X = check_matrix(X, "X")
        if X.shape[1] != params.centers.shape[-1]:
            raise ValueError(
                f"`X` has {X.shape[1]} features but the centres have {params.centers.shape[-1]}."
            )
        return X.astype(params.centers.dtype)

    def inertia(self, params: KMeansParams, X, sample_weight=None) -> Float[Array, ""]:
        """Sum of (weighted) squared distances to the nearest centre (scikit-learn's inertia).

        Example:
            >>> import numpy as np, emjax
            >>> km = emjax.KMeans(1)
            >>> float(km.inertia(km.make_params(centers=np.zeros((1, 1))), np.ones((3, 1))))
            3.0
        """
        X = self.check_input(params, X)
        w = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        return _inertia(params, X, w)

    def transform(self, params: KMeansParams, X) -> Float[Array, "N K"]:
        """Euclidean distances of each point to each centre, shape ``(N, K)``."""
        X = self.check_input(params, X)
        return _distances(params, X)


@eqx.filter_jit
def _inertia(params, X, w):
    blocks = make_blocks(X, w, default_block_size(X.shape[0], params.centers.size))
    return accumulate(
        lambda x, wb: jnp.sum(wb * jnp.min(squared_distances(x, params.centers), axis=1)), blocks
    )


@eqx.filter_jit
def _distances(params, X):
    block = default_block_size(X.shape[0], params.centers.size)
    return map_rows(lambda x: jnp.sqrt(squared_distances(x, params.centers)), X, block)


def _relocate_empty(centers, counts, s1, far: FarthestPoints):
    """Move the farthest points into empty clusters (scikit-learn's relocation rule).

    The ``r``-th empty cluster (in index order) receives the ``r``-th farthest point, taken
    out of the cluster it was assigned to. Nothing moves if that point sits on its centre
    (more clusters than distinct points).
    """
    empty = counts <= 0
    rank = jnp.cumsum(empty) - 1
    slot = jnp.clip(rank, 0, counts.shape[0] - 1)
    move = empty & (far.distance[slot] > 0) & (far.weight[slot] > 0)
    w = jnp.where(move, far.weight[slot], 0.0)
    x = far.point[slot]
    src = far.label[slot]
    counts = counts.at[src].add(-w) + w
    s1 = s1.at[src].add(-w[:, None] * (x - centers[src]))
    s1 = jnp.where(move[:, None], w[:, None] * (x - centers), s1)
    return counts, s1
