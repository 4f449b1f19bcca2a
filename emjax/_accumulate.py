"""Blocked passes over the rows of the data.

Expected sufficient statistics and ELBOs are sums over data points, so one pass over the
data is a ``lax.scan`` over blocks of rows that adds up the blocks' contributions. Only one
block's intermediates (of size ``B × K × D`` for a Gaussian mixture) exist at a time, which
keeps them in cache on a CPU and bounds memory on an accelerator. Rows that pad the data
to a whole number of blocks carry weight 0 and so contribute nothing.
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
    """

    data: Data
    weights: Float[Array, "nb B"]

    @property
    def num_blocks(self) -> int:
        return self.weights.shape[0]

    def block(self, i):
        """The ``i``-th block as ``(data, weights)``."""
        take = lambda a: jax.lax.dynamic_index_in_dim(a, i, 0, keepdims=False)  # noqa: E731
        return jax.tree.map(take, self.data), take(self.weights)


def make_blocks(data: Data, weights: Float[Array, " N"], block_size: int) -> Blocks:
    """Cut the rows of ``data`` (every leaf has ``N`` rows) into blocks of ``block_size``.

    The last block is padded by repeating the last row (so padded rows hold finite values)
    with weight 0.
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
    return Blocks(jax.tree.map(cut, data), w.reshape(nb, b))


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
    """
    if blocks.num_blocks == 1:
        return fn(*blocks.block(0))
    shapes = jax.eval_shape(fn, *blocks.block(0))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    one_block = jax.checkpoint(lambda i: fn(*blocks.block(i)), prevent_cse=False)

    def body(carry, i):
        return combine(carry, one_block(i)), None

    out, _ = jax.lax.scan(body, zeros, jnp.arange(blocks.num_blocks))
    return out


def map_rows(fn, data: Data, block_size: int):
    """``fn(data_block)`` applied block by block; outputs re-joined along the row axis."""
    n = jax.tree.leaves(data)[0].shape[0]
    blocks = make_blocks(data, jnp.zeros((n,)), block_size)
    out = jax.lax.map(fn, blocks.data)
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)
