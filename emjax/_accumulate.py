"""Blocked passes over the rows of the data.

Expected sufficient statistics and ELBOs are sums over data points, so one pass over the
data is a ``lax.scan`` over blocks of rows that adds up the blocks' contributions. Only one
block's intermediates (of size ``B × K × D`` for a Gaussian mixture) exist at a time, which
keeps them in cache on a CPU and bounds memory on an accelerator. Rows that pad the data
to a whole number of blocks carry weight 0 and so contribute nothing.

Data-parallel fits (`emjax.fit` with ``mesh=``) run the same passes inside ``shard_map``:
each device holds a contiguous range of the rows as its own `Blocks`, whose ``axis_name``
names the mesh axis of the rows, and `accumulate` combines the devices' results over that
axis (`all_combine`), so every pass returns the statistics of the whole data set on every
device.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ._custom_types import Array, Data, Float

# Target size of a block's largest intermediate (restarts x rows x row_cost values): about
# 2 MiB in float64. Measured on a 2-core CPU (benchmarks/block_size.py): time per step
# rises once a block passes 2^19-2^20 values and is at or near its best around 2^18, for
# D, K in 4..64 and 1..64 restarts at once.
_TARGET_BLOCK_ELEMENTS = 2**18
_MIN_BLOCK_ROWS = 16


# On an accelerator a block is one kernel launch sequence, and blocks run one after
# another: larger blocks (about 128 MiB of intermediates in float64) keep the device busy.
# Measured on an H100 for the hidden Markov model (100 sequences of 1,000 steps): 16
# sequences per block (the CPU target) took 6.7 times as long per iteration as 100.
_TARGET_BLOCK_ELEMENTS_ACCELERATOR = 2**24


def default_block_size(num_points: int, row_cost: int, num_parallel: int = 1) -> int:
    """Rows per block: ``clamp(target // (num_parallel · row_cost), 16, num_points)``.

    ``row_cost`` is the number of intermediate values one data row needs in one restart's
    E-step (``K·D`` for a Gaussian mixture: the differences ``x_n − μ_k``);
    ``num_parallel`` is the number of restarts computed at once. ``target`` is ``2^18``
    values on a CPU (a block in cache) and ``2^24`` on GPU and TPU.
    """
    target = (_TARGET_BLOCK_ELEMENTS if jax.default_backend() == "cpu"
              else _TARGET_BLOCK_ELEMENTS_ACCELERATOR)
    rows = target // max(1, row_cost * num_parallel)
    return int(max(1, min(num_points, max(_MIN_BLOCK_ROWS, rows))))


class Blocks(eqx.Module):
    """Data and weights cut into ``num_blocks`` blocks of ``block_size`` rows.

    Attributes:
        data: every leaf of the data with its leading axis split into ``(num_blocks, B)``.
        weights: sample weights of shape ``(num_blocks, B)``; padding rows have weight 0.
        num_rows: the number of data rows before padding (static); the real rows are the
            first ``num_rows`` of the flattened ``(num_blocks · B)`` rows. ``None`` means
            every row is real.
        axis_name: the mesh axis over which the rows are sharded (static), inside
            ``shard_map``; then these blocks are one device's share of the rows (and
            ``num_rows`` counts that share), and `accumulate` combines its result over the
            axis. ``None``: these are all the rows.
    """

    data: Data
    weights: Float[Array, "nb B"]
    num_rows: int | None = eqx.field(default=None, static=True)
    axis_name: str | None = eqx.field(default=None, static=True)

    @property
    def rows(self) -> int:
        """The number of real (unpadded) rows."""
        return self.weights.size if self.num_rows is None else self.num_rows

    def flat(self):
        """Every row as ``(data, weights)`` with one leading axis of ``num_blocks · B`` rows
        (the padding rows last).

        Raises:
            ValueError: the blocks are one device's share of sharded rows (``axis_name``
                set): drawing rows from them would give each device different rows.
        """
        if self.axis_name is not None:
            raise ValueError(
                "Solvers that draw rows from the data (minibatches: emjax.OnlineEM, "
                "emjax.IncrementalEM) are not supported with mesh= yet; fit with emjax.EM, "
                "emjax.HardEM or emjax.SQUAREM, or without mesh=."
            )
        merge = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731
        return jax.tree.map(merge, self.data), merge(self.weights)

    @property
    def num_blocks(self) -> int:
        return self.weights.shape[0]

    def total_weight(self) -> Float[Array, ""]:
        """``Σ_n w_n`` over all the rows (over every device's share when ``axis_name`` is set)."""
        total = jnp.sum(self.weights)
        return total if self.axis_name is None else jax.lax.psum(total, self.axis_name)

    def block(self, i):
        """The ``i``-th block as ``(data, weights)``."""
        take = lambda a: jax.lax.dynamic_index_in_dim(a, i, 0, keepdims=False)  # noqa: E731
        return jax.tree.map(take, self.data), take(self.weights)


def make_blocks(data: Data, weights: Float[Array, " N"], block_size: int,
                axis_name: str | None = None) -> Blocks:
    """Cut the rows of ``data`` (every leaf has ``N`` rows) into blocks of ``block_size``.

    The last block is padded by repeating the last row (so padded rows hold finite values)
    with weight 0. ``axis_name``: see `Blocks` (inside ``shard_map``, ``data`` is then this
    device's share of the rows).
    """
    n = weights.shape[0]
    b = int(min(block_size, n))
    nb = math.ceil(n / b)
    pad = nb * b - n

    def cut(a):
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)], axis=0)
        return a.reshape((nb, b) + a.shape[1:])

    w = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)]) if pad else weights
    return Blocks(jax.tree.map(cut, data), w.reshape(nb, b), num_rows=n, axis_name=axis_name)


def combine(a, b):
    """Combine two blocks' results: ``+`` on each element of a tuple, else ``a + b``."""
    if isinstance(a, tuple):
        return tuple(combine(x, y) for x, y in zip(a, b, strict=True))
    return a + b


def accumulate(fn, blocks: Blocks):
    """``fn(data_block, weight_block)`` summed over all blocks with `combine`.

    ``fn`` returns statistics-like results (Modules with ``__add__``, arrays, or tuples of
    them). The sum starts from zeros of ``fn``'s output structure, so ``fn`` is traced (and
    compiled) once, inside the scan.

    Each block's ``fn`` is wrapped in ``jax.checkpoint``: reverse-mode differentiation of a
    pass (a gradient M-step, or a gradient through `emjax.fit`) keeps only the block index
    per block and recomputes that block's intermediates in the backward pass, so memory
    stays bounded by one block there too. The forward pass is unchanged.

    With ``blocks.axis_name`` set (one device's share of the rows, inside ``shard_map``),
    the devices' sums are combined over that axis by `all_combine`: the result is the sum
    over all the rows, the same on every device.
    """
    if blocks.num_blocks == 1:
        out = fn(*blocks.block(0))
    else:
        shapes = jax.eval_shape(fn, *blocks.block(0))
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        if blocks.axis_name is not None:
            # The sum of this device's blocks differs between devices ("varying" over the
            # axis, in shard_map's terms): so must the scan's initial carry.
            zeros = jax.lax.pcast(zeros, (blocks.axis_name,), to="varying")
        one_block = jax.checkpoint(lambda i: fn(*blocks.block(i)), prevent_cse=False)

        def body(carry, i):
            return combine(carry, one_block(i)), None

        out, _ = jax.lax.scan(body, zeros, jnp.arange(blocks.num_blocks))
    if blocks.axis_name is not None:
        out = all_combine(out, blocks.axis_name)
    return out


def all_combine(x, axis_name: str):
    """`combine` the values of ``x`` held by the devices along mesh axis ``axis_name``
    (inside ``shard_map``); every device gets the same result.

    When combining is addition leaf by leaf (statistics, ELBOs: checked on the traced
    ``combine``), this is one ``lax.psum`` (an all-reduce). Otherwise (e.g. k-means'
    farthest points, combined by keeping the largest) every device's value is gathered and
    folded with `combine` in device order, which is exact for any ``__add__``.
    """
    if _adds_leafwise(x):
        return jax.lax.psum(x, axis_name)
    size = jax.lax.axis_size(axis_name)
    index = jax.lax.axis_index(axis_name)

    def gather(a):
        # An all-gather written as a psum of one-hot slots (exact: the other slots are 0),
        # whose result JAX knows to be the same on every device.
        a = jnp.asarray(a)
        dtype = jnp.int32 if a.dtype == jnp.bool_ else a.dtype
        slots = jnp.zeros((size,) + a.shape, dtype).at[index].set(a.astype(dtype))
        return jax.lax.psum(slots, axis_name).astype(a.dtype)

    every = jax.tree.map(gather, x)
    out = jax.tree.map(lambda a: a[0], every)
    for i in range(1, size):
        out = combine(out, jax.tree.map(lambda a, i=i: a[i], every))
    return out


def _adds_leafwise(x) -> bool:
    """Whether ``combine(a, b)`` (for ``a``, ``b`` shaped like ``x``) is ``a + b`` leaf by
    leaf, judged from its traced program: one ``add`` of leaf ``i`` of ``a`` and of ``b``
    per output leaf, and nothing else."""
    leaves, treedef = jax.tree.flatten(x)
    if not leaves:
        return True
    shapes = [jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)) for a in leaves]

    def combined(a, b):
        out = combine(jax.tree.unflatten(treedef, a), jax.tree.unflatten(treedef, b))
        return jax.tree.leaves(out) if jax.tree.structure(out) == treedef else None

    jaxpr = jax.make_jaxpr(combined)(shapes, shapes).jaxpr
    n = len(leaves)
    a_vars, b_vars = jaxpr.invars[:n], jaxpr.invars[n:]
    if len(jaxpr.outvars) != n or len(jaxpr.eqns) != n:
        return False
    for i, out in enumerate(jaxpr.outvars):
        eqn = next((e for e in jaxpr.eqns if e.outvars[0] is out), None)
        if eqn is None or eqn.primitive.name not in ("add", "add_any"):
            return False
        args = eqn.invars
        if not ((args[0] is a_vars[i] and args[1] is b_vars[i])
                or (args[0] is b_vars[i] and args[1] is a_vars[i])):
            return False
    return True


def map_rows(fn, data: Data, block_size: int):
    """``fn(data_block)`` applied block by block; outputs re-joined along the row axis."""
    n = jax.tree.leaves(data)[0].shape[0]
    blocks = make_blocks(data, jnp.zeros((n,)), block_size)
    out = jax.lax.map(fn, blocks.data)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)
