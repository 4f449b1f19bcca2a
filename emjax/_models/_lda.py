r"""Latent Dirichlet allocation by variational EM (Blei, Ng & Jordan 2003).

Dimension names: ``M`` documents, ``V`` words in the vocabulary, ``K`` topics, ``L``
(padded) distinct words per document in the sparse layout, ``B`` documents in one block.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammaln, polygamma

from .._accumulate import Blocks, accumulate, default_block_size, make_blocks, map_rows
from .._custom_types import Array, Float, Int, PRNGKeyArray
from .._elbo import ELBO
from .._model import AbstractEMModel
from .._solver import EM
from .._validation import (
    as_float_array,
    check_finite,
    check_positive_int,
    check_positive_scalar,
    check_sample_weight,
    is_traced,
)

_HI = jax.lax.Precision.HIGHEST  # no TF32 / bf16 passes in the statistics (GPU, TPU)
# Added to every φ normaliser (as scikit-learn does with float64's eps), so that a word no
# topic explains (all its terms underflow) gives zero statistics instead of 0/0. The same
# constant in float32: float32's own eps (1.2e-7) would bias rare words.
_EPS = float(np.finfo(np.float64).eps)
# Documents updated at a time in the E-step's inner loop (see `_iterate_gamma`).
_SLOTS = 32
# Newton's method for the Dirichlet priors (α, η): iterations and step halvings.
_NEWTON_STEPS = 50
_NEWTON_HALVINGS = 30


# ---------------------------------------------------------------------------------------
# Data


class SparseCounts(eqx.Module):
    """A bag-of-words corpus in a padded sparse layout: per document, word ids and counts.

    Document ``m`` holds ``counts[m, l]`` occurrences of word ``ids[m, l]``; entries with a
    count of 0 are padding (their id is ignored). Each row is padded to the same number
    ``L`` of entries, the most distinct words of any document. The E-step then costs
    ``O(M·L·K)`` per inner iteration instead of ``O(M·V·K)`` for a dense matrix, and gives
    the same results (up to the order of floating-point sums).

    `emjax.fit` and every method of `emjax.LatentDirichletAllocation` accept it wherever a
    dense ``(M, V)`` count matrix is accepted.

    Attributes:
        ids: ``(M, L)`` integer word ids in ``[0, num_words)``.
        counts: ``(M, L)`` non-negative integer counts (as floats).
        num_words: the vocabulary size ``V`` (static).

    Example:
        >>> import numpy as np, emjax
        >>> dense = np.array([[0, 2, 0, 1], [0, 0, 0, 0], [3, 0, 0, 0]])
        >>> corpus = emjax.lda.SparseCounts.from_dense(dense)
        >>> corpus.ids.tolist(), corpus.counts.tolist()
        ([[1, 3], [0, 0], [0, 0]], [[2.0, 1.0], [0.0, 0.0], [3.0, 0.0]])
        >>> corpus.num_words
        4
        >>> bool((np.asarray(corpus.todense()) == dense).all())
        True
    """

    ids: Int[Array, "M L"]
    counts: Float[Array, "M L"]
    num_words: int = eqx.field(static=True)

    @classmethod
    def from_dense(cls, counts) -> "SparseCounts":
        """The sparse layout of a dense ``(M, V)`` count matrix (values are not checked
        here; `emjax.fit` checks them)."""
        c = np.asarray(counts)
        if c.ndim != 2:
            raise ValueError(f"`counts` must be a 2-D (documents, vocabulary) array; got shape "
                             f"{c.shape}.")
        rows = [np.flatnonzero(r) for r in c]
        width = max(1, max((len(r) for r in rows), default=1))
        ids = np.zeros((c.shape[0], width), np.int32)
        vals = np.zeros((c.shape[0], width), c.dtype if np.issubdtype(c.dtype, np.floating)
                        else np.result_type(float))
        for m, r in enumerate(rows):
            ids[m, : len(r)] = r
            vals[m, : len(r)] = c[m, r]
        return cls(jnp.asarray(ids), as_float_array(vals, "counts"), int(c.shape[1]))

    @classmethod
    def from_scipy(cls, matrix) -> "SparseCounts":
        """The sparse layout of a SciPy sparse ``(M, V)`` matrix (e.g. scikit-learn's
        ``CountVectorizer`` output)."""
        csr = matrix.tocsr(copy=True)  # sum_duplicates works in place: not on the user's
        csr.sum_duplicates()
        nnz = np.diff(csr.indptr)
        width = max(1, int(nnz.max(initial=0)))
        M = csr.shape[0]
        ids = np.zeros((M, width), np.int32)
        data = csr.data if np.issubdtype(csr.data.dtype, np.floating) else csr.data.astype(float)
        vals = np.zeros((M, width), data.dtype)
        pos = np.arange(csr.indices.shape[0]) - np.repeat(csr.indptr[:-1], nnz)
        row = np.repeat(np.arange(M), nnz)
        ids[row, pos] = csr.indices
        vals[row, pos] = data
        return cls(jnp.asarray(ids), as_float_array(vals, "counts"), int(csr.shape[1]))

    def todense(self) -> Float[Array, "M V"]:
        """The dense ``(M, V)`` count matrix."""
        M = self.ids.shape[0]
        rows = jnp.broadcast_to(jnp.arange(M)[:, None], self.ids.shape)
        return jnp.zeros((M, self.num_words), self.counts.dtype).at[rows, self.ids].add(self.counts)


def _check_counts_values(values: np.ndarray, name: str, integer: bool = True) -> None:
    if (values < 0).any():
        bad = np.argwhere(values < 0)[0]
        raise ValueError(
            f"`{name}` must hold non-negative word counts; got {values[tuple(bad)]} at index "
            f"{tuple(int(i) for i in bad)}."
        )
    frac = values != np.round(values)
    if integer and frac.any():
        bad = np.argwhere(frac)[0]
        raise ValueError(
            f"`{name}` must hold integer word counts; got {values[tuple(bad)]} at index "
            f"{tuple(int(i) for i in bad)}. (Weight whole documents with `sample_weight`, or "
            "build the model with integer_counts=False for real-valued counts such as tf-idf.)"
        )


def _check_dense(counts, name: str = "counts", integer: bool = True):
    counts = as_float_array(counts, name)
    if counts.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D (documents, vocabulary) count matrix, or an "
            f"emjax.lda.SparseCounts; got {counts.ndim}-D shape {tuple(counts.shape)}."
        )
    if counts.shape[0] < 1 or counts.shape[1] < 1:
        raise ValueError(f"`{name}` must have at least one document and one word; got shape "
                         f"{tuple(counts.shape)}.")
    if not is_traced(counts):
        check_finite(counts, name)
        _check_counts_values(np.asarray(counts), name, integer)
    return counts


def _check_sparse(data: SparseCounts, integer: bool = True) -> SparseCounts:
    V = data.num_words
    if isinstance(V, bool) or not isinstance(V, (int, np.integer)) or V < 1:
        raise ValueError(f"`num_words` of SparseCounts must be a positive integer; got {V!r}.")
    counts = as_float_array(data.counts, "counts")
    ids = data.ids if is_traced(data.ids) else jnp.asarray(data.ids)
    if not jnp.issubdtype(ids.dtype, jnp.integer):
        raise TypeError(f"`ids` of SparseCounts must be integers; got dtype {ids.dtype}.")
    if ids.ndim != 2 or counts.shape != ids.shape or ids.shape[0] < 1 or ids.shape[1] < 1:
        raise ValueError(
            "SparseCounts must hold `ids` and `counts` of one shape (documents, entries), "
            f"each with at least one; got {tuple(ids.shape)} and {tuple(counts.shape)}."
        )
    if not (is_traced(ids) or is_traced(counts)):
        check_finite(counts, "counts")
        c = np.asarray(counts)
        _check_counts_values(c, "counts", integer)
        i = np.asarray(ids)
        used = c > 0
        out = used & ((i < 0) | (i >= V))
        if out.any():
            bad = np.argwhere(out)[0]
            raise ValueError(
                f"`ids` of SparseCounts must lie in [0, num_words={V}) (the vocabulary); got "
                f"{i[tuple(bad)]} at index {tuple(int(j) for j in bad)}."
            )
        # Padding entries (count 0) may hold any id: make them 0, a valid one.
        ids = jnp.asarray(np.where(used, i, 0).astype(np.int32))
    return SparseCounts(ids, counts, int(V))


def _num_words(data) -> int:
    return data.num_words if isinstance(data, SparseCounts) else data.shape[1]


def _num_docs(data) -> int:
    return data.ids.shape[0] if isinstance(data, SparseCounts) else data.shape[0]


def _counts(data):
    return data.counts if isinstance(data, SparseCounts) else data


# ---------------------------------------------------------------------------------------
# Parameters and statistics


class LDAParams(eqx.Module):
    r"""Parameters of `LatentDirichletAllocation`: the global variational factors.

    Attributes:
        topic_word: ``λ``, shape ``(K, V)``: the Dirichlet parameters of
            ``q(β_k) = Dir(λ_k)``, the variational posterior of topic ``k``'s word
            distribution. scikit-learn calls this ``components_``.
        doc_topic_prior: ``α`` (a scalar for a symmetric prior, or ``(K,)``, in the shape of
            the model's): estimated when the model has ``learn_doc_topic_prior=True``,
            otherwise a copy of the model's ``doc_topic_prior`` (which is what the E-step
            uses, so that gradients reach the model's hyperparameter).
        topic_word_prior: the scalar ``η``: estimated with ``learn_topic_word_prior=True``,
            otherwise a copy of the model's.
    """

    topic_word: Float[Array, "K V"]
    doc_topic_prior: Float[Array, "*K"]
    topic_word_prior: Float[Array, ""]


class LDAStats(eqx.Module):
    r"""Expected sufficient statistics of `LatentDirichletAllocation`, summed over documents.

    With sample weights ``w_d``, word counts ``n_dv`` and the E-step's ``φ_dvk`` (the
    probability that an occurrence of word ``v`` in document ``d`` comes from topic ``k``)
    and ``γ_d``:

    Attributes:
        topic_word: expected topic–word counts ``Σ_d w_d n_dv φ_dvk``, shape ``(K, V)``.
        log_theta: ``Σ_d w_d E_q[log θ_dk] = Σ_d w_d (ψ(γ_dk) − ψ(Σ_j γ_dj))``, shape
            ``(K,)`` (for learning ``α``).
        num_docs: ``Σ_d w_d``.
    """

    topic_word: Float[Array, "K V"]
    log_theta: Float[Array, " K"]
    num_docs: Float[Array, ""]

    def __add__(self, other: "LDAStats") -> "LDAStats":
        return jax.tree.map(jnp.add, self, other)


# ---------------------------------------------------------------------------------------
# The per-document E-step: a fixed point in γ


def _dirichlet_expectation(a):
    """``E[log x]`` under ``Dir(a)`` along the last axis: ``ψ(a) − ψ(Σ a)``."""
    # One digamma of both (XLA expands each digamma into a long polynomial: compile time).
    both = digamma(jnp.concatenate([a, jnp.sum(a, axis=-1, keepdims=True)], axis=-1))
    return both[..., :-1] - both[..., -1:]


def _normaliser(exp_theta, beta):
    """``Σ_k exp(E log θ_dk) β'_kv`` for every word of every document: ``(B, V)`` or ``(B, L)``.
    ``beta`` is ``(K, V)`` (dense) or gathered per document ``(B, L, K)`` (sparse)."""
    if beta.ndim == 3:
        return jnp.einsum("bk,blk->bl", exp_theta, beta, precision=_HI)
    return jnp.matmul(exp_theta, beta, precision=_HI)


def _back(ratio, beta):
    """``Σ_v ratio_dv β'_kv``: ``(B, K)``."""
    if beta.ndim == 3:
        return jnp.einsum("bl,blk->bk", ratio, beta, precision=_HI)
    return jnp.matmul(ratio, beta.T, precision=_HI)


def _gamma_update(gamma, beta, alpha, counts):
    """One coordinate-ascent sweep of every document:
    ``γ_dk ← α_k + exp(E log θ_dk) Σ_v n_dv β'_kv / (Σ_j exp(E log θ_dj) β'_jv + eps)``,
    i.e. ``γ = α + Σ_v n_dv φ_dv·`` with ``φ`` optimal for the current ``γ``."""
    exp_theta = jnp.exp(_dirichlet_expectation(gamma))
    ratio = counts / (_normaliser(exp_theta, beta) + _EPS)
    return alpha + exp_theta * _back(ratio, beta)


def _rows(source, ids, counts, doc):
    """What `_gamma_update` needs for the documents ``doc``: their ``β'`` (sparse: the
    words' columns gathered from ``source`` ``(V, K)``, ``(S, L, K)``; dense: ``source``
    ``(K, V)`` itself) and their counts."""
    if ids is None:
        return source, counts[doc]
    return source[ids[doc]], counts[doc]


def _iterate_gamma(source, ids, alpha, counts, active, tol, max_iter: int, slots: int):
    """Every document's ``γ`` from ``γ = 1`` by `_gamma_update` until its mean absolute
    change is below ``tol`` or ``max_iter`` sweeps, as scikit-learn's
    ``_update_doc_distribution`` with ``random_state=None``; inactive documents keep
    ``γ = 1`` (they are never updated).

    Documents need very different numbers of sweeps (measured on a synthetic corpus, after a
    few EM steps: a median of 21 and a maximum of 100), so sweeping a whole block until
    its slowest document has converged would waste most of the work. Instead ``slots``
    documents are updated at a time: a document that has converged leaves its slot, and
    the next one of the block takes it. Each document goes through exactly the sweeps it
    would alone.
    """
    B, K = counts.shape[0], alpha.shape[-1]
    dtype = counts.dtype
    if slots >= B or not is_traced(counts):
        # Run eagerly (``jax.disable_jit``), each loop iteration is a round of Python
        # dispatch: sweeping the whole block needs far fewer of them. The result is the same.
        return _iterate_gamma_together(source, ids, alpha, counts, active, tol, max_iter)
    S = slots
    queue = jnp.argsort(~active, stable=True).astype(jnp.int32)  # active documents first
    num_active = jnp.sum(active, dtype=jnp.int32)
    positions = jnp.arange(S, dtype=jnp.int32)

    def cond(carry):
        return jnp.any(carry[0] >= 0)

    def body(carry):
        doc, gamma, sweeps, next_pos, out = carry
        has = doc >= 0
        beta, c = _rows(source, ids, counts, jnp.maximum(doc, 0))
        new = _gamma_update(gamma, beta, alpha, c)
        change = jnp.mean(jnp.abs(new - gamma), axis=1)
        sweeps = sweeps + 1
        gamma = jnp.where(has[:, None], new, gamma)
        finished = has & ((change < tol) | (sweeps >= max_iter))
        out = out.at[jnp.where(finished, doc, B)].set(gamma, mode="drop")
        # Refill the finished slots with the next documents of the queue.
        pos = next_pos + jnp.cumsum(finished, dtype=jnp.int32) - 1
        refill = finished & (pos < num_active)
        doc = jnp.where(finished, jnp.where(refill, queue[jnp.minimum(pos, B - 1)], -1), doc)
        gamma = jnp.where(refill[:, None], jnp.ones_like(gamma), gamma)
        sweeps = jnp.where(finished, 0, sweeps)
        next_pos = next_pos + jnp.sum(finished, dtype=jnp.int32)
        return doc, gamma, sweeps, next_pos, out

    # Every part of the carry is made from the data (`zero`), not from constants: inside a
    # data-parallel fit (shard_map) the loop then varies over devices from its start.
    zero = jnp.zeros_like(counts, shape=())
    carry = (
        jnp.where(positions < num_active, queue[positions], -1),
        jnp.ones((S, K), dtype) + zero,
        jnp.zeros((S,), jnp.int32) + zero.astype(jnp.int32),
        jnp.asarray(S, jnp.int32) + zero.astype(jnp.int32),
        jnp.ones((B, K), dtype) + zero,
    )
    return jax.lax.while_loop(cond, body, carry)[4]


def _iterate_gamma_together(source, ids, alpha, counts, active, tol, max_iter: int):
    """`_iterate_gamma` with every document of the block in its own slot: sweeps of the
    whole block until every document has converged (converged ones are frozen)."""
    B, K = counts.shape[0], alpha.shape[-1]
    beta, counts = _rows(source, ids, counts, jnp.arange(B))

    def cond(carry):
        it, _, done = carry
        return (it < max_iter) & ~jnp.all(done)

    def body(carry):
        it, gamma, done = carry
        new = _gamma_update(gamma, beta, alpha, counts)
        change = jnp.mean(jnp.abs(new - gamma), axis=1)
        new = jnp.where(done[:, None], gamma, new)
        return it + 1, new, done | (change < tol)

    zero = jnp.zeros_like(counts, shape=())  # see `_iterate_gamma`: a carry made from the data
    gamma0 = jnp.ones((B, K), counts.dtype) + zero
    _, gamma, _ = jax.lax.while_loop(cond, body, (zero.astype(jnp.int32), gamma0, ~active))
    return gamma


@functools.partial(jax.custom_jvp, nondiff_argnums=(6, 7))
def _solve_gamma(source, ids, alpha, counts, active, tol, max_iter: int, slots: int):
    """`_iterate_gamma`, differentiated by the implicit function theorem at its fixed point
    ``γ* = g(γ*; β', α, n)``: ``dγ* = (I − ∂g/∂γ)⁻¹ (∂g/∂β' dβ' + ∂g/∂α dα + ∂g/∂n dn)``,
    one ``K × K`` solve per document (``while_loop`` itself is not reverse-differentiable).
    The derivative gathers ``β'`` for the whole block (``(B, L, K)`` values when sparse).
    """
    return _iterate_gamma(source, ids, alpha, counts, active, tol, max_iter, slots)


@_solve_gamma.defjvp
def _solve_gamma_jvp(max_iter, slots, primals, tangents):
    source, ids, alpha, counts, active, tol = primals
    d_source, _, d_alpha, d_counts, _, _ = tangents
    gamma = _iterate_gamma(source, ids, alpha, counts, active, tol, max_iter, slots)
    every = jnp.arange(counts.shape[0])

    def g(gamma, source, alpha, counts):
        beta, c = _rows(source, ids, counts, every)
        return _gamma_update(gamma, beta, alpha, c)

    _, rhs = jax.jvp(lambda s, a, c: g(gamma, s, a, c), (source, alpha, counts),
                     (d_source, d_alpha, d_counts))
    # ∂g/∂γ is block diagonal (documents are independent): column j of every document's
    # K × K block from one JVP with the j-th unit vector in every row.
    K = gamma.shape[1]
    basis = jnp.broadcast_to(jnp.eye(K, dtype=gamma.dtype)[:, None, :], (K,) + gamma.shape)
    columns = jax.vmap(lambda t: jax.jvp(lambda x: g(x, source, alpha, counts),
                                         (gamma,), (t,))[1])(basis)  # (K_j, B, K_i)
    jac = jnp.transpose(columns, (1, 2, 0))  # (B, K_i, K_j)
    system = jnp.eye(K, dtype=gamma.dtype) - jax.lax.stop_gradient(jac)
    d_gamma = jnp.linalg.solve(system, rhs[..., None])[..., 0]
    return gamma, jnp.where(active[:, None], d_gamma, 0.0)


def _pad_rows(x, rows: int, value):
    """``x`` padded along its first axis to ``rows`` rows of ``value``."""
    extra = rows - x.shape[0]
    if extra == 0:
        return x
    return jnp.concatenate([x, jnp.full((extra,) + x.shape[1:], value, x.dtype)])


class _Local(eqx.Module):
    """The E-step's result for one block of documents."""

    gamma: Float[Array, "B K"]
    stats: LDAStats
    elbo: ELBO


# ---------------------------------------------------------------------------------------
# The model


class LatentDirichletAllocation(AbstractEMModel):
    r"""Latent Dirichlet allocation (LDA) fitted by batch variational EM.

    **Model** (Blei, Ng & Jordan 2003, smoothed LDA). ``K`` topics, each a distribution
    ``β_k ~ Dir(η)`` over ``V`` words; each document ``d`` has topic proportions
    ``θ_d ~ Dir(α)``, and each of its words draws a topic ``z ~ Cat(θ_d)`` and then the word
    from ``β_z``. The data are word counts ``n_dv`` (a bag of words per document).

    **Mean-field posterior.** ``q(β_k) = Dir(λ_k)``, ``q(θ_d) = Dir(γ_d)`` and
    ``q(z_dv = k) = φ_dvk``. With ``E log θ_dk = ψ(γ_dk) − ψ(Σ_j γ_dj)`` and
    ``E log β_kv = ψ(λ_kv) − ψ(Σ_u λ_ku)``:

    - **E-step** (per document, iterated): ``φ_dvk ∝ exp(E log θ_dk + E log β_kv)`` and
      ``γ_dk = α_k + Σ_v n_dv φ_dvk``, from ``γ_d = 1`` until the mean absolute change of
      ``γ_d`` is below ``mean_change_tol`` or after ``max_doc_update_iter`` sweeps
      (scikit-learn's ``_update_doc_distribution``). In a ``lax.while_loop``, 32
      documents are updated at a time, and one that has converged hands its place to
      the next, so a slow document does not hold up the others. The statistics are the
      expected topic–word counts ``S_kv = Σ_d w_d n_dv φ_dvk``.
    - **M-step**: ``λ_kv = η + S_kv``. With ``learn_doc_topic_prior``, ``α`` maximises
      ``Σ_d w_d E_q[log Dir(θ_d | α)]`` (Newton's method with the diagonal-plus-rank-one
      Hessian, Blei et al. 2003 App. A.2, Minka 2000; halved steps keep it positive and
      increasing); with ``learn_topic_word_prior``, the scalar ``η`` then maximises
      ``Σ_k E_q[log Dir(β_k | η)]`` given the new ``λ``. Each is a conditional
      maximisation, so the ELBO still never decreases.

    **ELBO** (``Solution.elbo``, exactly scikit-learn's ``_approx_bound``): with ``φ``
    optimal for ``γ``,

    .. math::

        \mathcal{L} = \sum_d w_d \Big[\sum_v n_{dv} \log \sum_k e^{E\log θ_{dk} + E\log β_{kv}}
            + E_q\log p(θ_d | α) − E_q \log q(θ_d)\Big]
            + \sum_k \big(E_q \log p(β_k | η) − E_q \log q(β_k)\big).

    The document terms come from the E-step (additive over blocks of documents); the
    last sum, ``−KL(q(β) ‖ p(β))``, is ``log_prior(params)``, added once per pass. An
    empty document contributes nothing. ``Solution.log_likelihood`` is the document
    terms (see `log_likelihood`); ``model.score`` is the whole bound.

    **Monotonicity.** Every E-step restarts each document's inner loop from ``γ = 1``
    (as scikit-learn does) and stops it at a tolerance, so the ELBO can fall slightly
    from one EM step to the next when a document ends short of, or away from, the
    optimum it had reached before (measured on a small corpus over 15 fits of 150 steps:
    relative decreases of up to ``7e-6`` at the default tolerance, ``1.4e-5`` with
    ``mean_change_tol=1e-12``: the per-document problem has several optima). Each
    M-step on its own never decreases it.

    **Data**: a dense ``(M, V)`` matrix of non-negative integer counts (rows are
    documents; all-zero rows are allowed), or an `emjax.lda.SparseCounts` (per-document
    word ids and counts), which gives the same results at a cost proportional to the
    number of distinct words per document instead of ``V``. ``sample_weight`` weights
    whole documents.

    **Initialisation** (`emjax.fit` with ``key``): ``λ_kv ~ Gamma(100, 1/100)``, as
    scikit-learn does. Pass ``params0=model.make_params(topic_word=λ0)`` to start from a
    given ``λ`` (e.g. scikit-learn's ``components_`` before its first iteration).

    **Parity with scikit-learn** (``LatentDirichletAllocation(learning_method="batch")``,
    default ``evaluate_every=-1``): ``emjax.fit(model, counts, params0=..., max_steps=n,
    rtol=0)`` takes the same ``n`` EM iterations as ``max_iter=n`` from the same ``λ``.
    ``score`` and ``perplexity`` of given parameters agree with scikit-learn's to about
    ``1e-9`` relative, ``transform`` to ``1e-7`` (the accuracy of scikit-learn's fast
    digamma, through the inner loop's stopping test). The fits themselves differ in one place: during ``fit`` scikit-learn starts
    every document's ``γ`` from a random ``Gamma(100, 1/100)`` draw, emjax from ``γ = 1``
    (as scikit-learn's ``transform`` does). While the topics are still nearly identical,
    a document's inner loop can end at different optima from the two starts (measured:
    components 5% apart after one iteration, even with ``mean_change_tol=1e-10``). With
    scikit-learn's E-step started at ``γ = 1`` too, ten iterations agree to ``5e-8``
    relative (``5e-13`` with SciPy's digamma in scikit-learn). The φ normaliser gets
    float64's ``eps`` added, as in scikit-learn, in both precisions.

    **Online LDA** (Hoffman, Blei & Bach 2010): ``solver=emjax.OnlineEM(batch_size=B)``,
    whose update ``s ← (1 − ρ_t) s + ρ_t (M/B) ŝ_batch``, ``λ = η + s`` is the natural-gradient
    SVI step on ``λ``: scikit-learn's online update with ``ρ_t = (τ₀ + t)^{−κ}`` is
    ``OnlineEM(offset=τ₀ + 1, decay=κ)``, except that `emjax.OnlineEM`'s first update has
    ``ρ = 1`` (the initial ``λ`` does not count) where scikit-learn blends it in with
    weight ``1 − (τ₀ + 1)^{−κ}``.

    **Gradients.** Every hyperparameter is an array leaf. The per-document fixed point
    ``γ*`` is differentiated implicitly (a ``K × K`` solve per document), so gradients of
    the ELBO, of one EM step, and through `emjax.fit` (reverse mode) are those of the
    converged inner loop.

    Args:
        num_topics: ``K >= 1``.
        doc_topic_prior: ``α > 0``, a scalar (symmetric prior) or ``(K,)``; default
            ``1/K`` (scikit-learn's default).
        topic_word_prior: ``η > 0``, a scalar; default ``1/K`` (scikit-learn's default).
        max_doc_update_iter: the most γ sweeps per document in one E-step (default 100,
            as scikit-learn).
        mean_change_tol: a document's inner loop stops when the mean absolute change of
            its ``γ`` is below this (default ``1e-3``, as scikit-learn); an array leaf.
        learn_doc_topic_prior: estimate ``α`` in the M-step (default False; a scalar
            ``doc_topic_prior`` gives a symmetric estimate, a ``(K,)`` one an asymmetric).
        learn_topic_word_prior: estimate the scalar ``η`` in the M-step (default False).
        integer_counts: True (default): counts must be whole numbers, and a fractional
            value is refused as a likely mistake; False: any non-negative real values
            (e.g. tf-idf weights), as scikit-learn accepts. The updates are the same.

    Raises:
        ValueError: ``num_topics < 1``, a prior or tolerance that is not positive and
            finite, or a ``doc_topic_prior`` of the wrong shape.

    Example:
        >>> import jax, numpy as np, emjax
        >>> counts = np.random.default_rng(0).poisson(1.0, size=(30, 8))  # 30 docs, 8 words
        >>> lda = emjax.LatentDirichletAllocation(num_topics=2)
        >>> sol = emjax.fit(lda, counts, key=jax.random.key(0))
        >>> sol.params.topic_word.shape
        (2, 8)
        >>> lda.transform(sol.params, counts).shape  # document-topic distributions
        (30, 2)
        >>> bool(abs(lda.score(sol.params, counts) - sol.elbo.total) < 1e-3)
        True
        >>> bool(lda.perplexity(sol.params, counts) > 1)
        True

    References:
        D. M. Blei, A. Y. Ng and M. I. Jordan, "Latent Dirichlet allocation", JMLR 3
        (2003) 993–1022. M. D. Hoffman, D. M. Blei and F. Bach, "Online learning for
        latent Dirichlet allocation", NeurIPS 2010. T. P. Minka, "Estimating a Dirichlet
        distribution" (2000).
    """

    num_topics: int = eqx.field(static=True)
    doc_topic_prior: Float[Array, "*K"]
    topic_word_prior: Float[Array, ""]
    mean_change_tol: Float[Array, ""]
    max_doc_update_iter: int = eqx.field(static=True)
    learn_doc_topic_prior: bool = eqx.field(static=True)
    learn_topic_word_prior: bool = eqx.field(static=True)
    integer_counts: bool = eqx.field(static=True)

    def __init__(
        self,
        num_topics: int,
        doc_topic_prior=None,
        topic_word_prior=None,
        *,
        max_doc_update_iter: int = 100,
        mean_change_tol=1e-3,
        learn_doc_topic_prior: bool = False,
        learn_topic_word_prior: bool = False,
        integer_counts: bool = True,
    ):
        K = check_positive_int(num_topics, "num_topics")
        self.num_topics = K
        if doc_topic_prior is None:
            doc_topic_prior = 1.0 / K
        self.doc_topic_prior = _check_prior(doc_topic_prior, "doc_topic_prior", K)
        if topic_word_prior is None:
            topic_word_prior = 1.0 / K
        self.topic_word_prior = check_positive_scalar(topic_word_prior, "topic_word_prior")
        self.max_doc_update_iter = check_positive_int(max_doc_update_iter, "max_doc_update_iter")
        self.mean_change_tol = check_positive_scalar(mean_change_tol, "mean_change_tol")
        for name, value in (("learn_doc_topic_prior", learn_doc_topic_prior),
                            ("learn_topic_word_prior", learn_topic_word_prior),
                            ("integer_counts", integer_counts)):
            if not isinstance(value, bool):
                raise TypeError(f"`{name}` must be True or False; got {value!r}.")
        self.learn_doc_topic_prior = learn_doc_topic_prior
        self.learn_topic_word_prior = learn_topic_word_prior
        self.integer_counts = integer_counts

    # ------------------------------------------------------------------ priors in use
    def _alpha(self, params: LDAParams, dtype):
        """``α`` as ``(K,)``: the learned one, or the model's (not the copy in ``params``)."""
        a = params.doc_topic_prior if self.learn_doc_topic_prior else self.doc_topic_prior
        return jnp.broadcast_to(jnp.asarray(a, dtype), (self.num_topics,))

    def _eta(self, params: LDAParams, dtype):
        e = params.topic_word_prior if self.learn_topic_word_prior else self.topic_word_prior
        return jnp.asarray(e, dtype)

    # ------------------------------------------------------------------ contract
    def default_solver(self):
        return EM()

    def row_cost(self, data) -> int:
        """Per document: its counts and ``γ`` (``L + K`` sparse, ``V + K`` dense). The
        E-step's larger intermediates (``(S, L, K)`` gathered values, ``(S, V)``
        normalisers) are for ``S = 32`` documents at a time, whatever the block size."""
        K = self.num_topics
        if isinstance(data, SparseCounts):
            return 2 * data.ids.shape[1] + K
        return data.shape[1] + K

    def check_data(self, data):
        if isinstance(data, SparseCounts):
            return _check_sparse(data, self.integer_counts)
        return _check_dense(data, integer=self.integer_counts)

    def check_input(self, params: LDAParams, data):
        """Validate counts passed to a fitted-model method; return them in the parameters'
        dtype."""
        data = self.check_data(data)
        V = params.topic_word.shape[-1]
        if _num_words(data) != V:
            raise ValueError(
                f"`counts` has a vocabulary of {_num_words(data)} words but the parameters have "
                f"{V} (topic_word has shape {tuple(params.topic_word.shape)})."
            )
        dtype = params.topic_word.dtype
        if isinstance(data, SparseCounts):
            return SparseCounts(data.ids, data.counts.astype(dtype), data.num_words)
        return data.astype(dtype)

    def check_params(self, params, data):
        if not isinstance(params, LDAParams):
            raise TypeError(
                "`params0` must be LDAParams; build it with model.make_params(topic_word=...); "
                f"got {type(params).__name__}."
            )
        lam = as_float_array(params.topic_word, "topic_word")
        batched = lam.ndim == 3
        p = self.make_params(topic_word=lam, doc_topic_prior=params.doc_topic_prior,
                             topic_word_prior=params.topic_word_prior)
        V = _num_words(data)
        if p.topic_word.shape[-1] != V:
            raise ValueError(
                f"`topic_word` has {p.topic_word.shape[-1]} words but the data have a vocabulary "
                f"of {V}."
            )
        dtype = _counts(data).dtype
        p = jax.tree.map(lambda a: a.astype(dtype), p)
        return p, (lam.shape[0] if batched else None)

    def make_params(self, *, topic_word, doc_topic_prior=None, topic_word_prior=None) -> LDAParams:
        """Build and validate parameters.

        Args:
            topic_word: ``λ``, ``(K, V)`` positive (or ``(R, K, V)``, a batch of restarts
                for ``params0``).
            doc_topic_prior: the initial ``α`` when the model learns it (default: the
                model's ``doc_topic_prior``); otherwise None or the model's value.
            topic_word_prior: the initial ``η`` when the model learns it (default: the
                model's ``topic_word_prior``); otherwise None or the model's value.

        Returns:
            `LDAParams`.

        Raises:
            ValueError: a ``topic_word`` that is not ``(K, V)`` or not positive and
                finite; a prior that is not positive, or that differs from the model's for
                a model that does not learn it.

        Example:
            >>> import numpy as np, emjax
            >>> lda = emjax.LatentDirichletAllocation(2)
            >>> p = lda.make_params(topic_word=np.ones((2, 5)))
            >>> p.topic_word.shape, float(p.doc_topic_prior)
            ((2, 5), 0.5)
        """
        lam = as_float_array(topic_word, "topic_word")
        K = self.num_topics
        if lam.ndim not in (2, 3) or lam.shape[-2] != K or lam.shape[-1] < 1:
            raise ValueError(
                f"`topic_word` must have shape (num_topics={K}, V) (or (R, {K}, V) for a batch "
                f"of restarts); got {tuple(lam.shape)}."
            )
        if not is_traced(lam):
            check_finite(lam, "topic_word")
            if (np.asarray(lam) <= 0).any():
                raise ValueError("`topic_word` (λ, Dirichlet parameters) must be positive.")
        lead = lam.shape[:-2]
        dtype = lam.dtype

        def prior(value, learn: bool, name: str, default):
            shape = default.shape
            if value is None:
                value = default
            arr = as_float_array(value, name)
            if arr.shape not in (shape, lead + shape):
                raise ValueError(f"`{name}` must have shape {shape} (or {lead + shape}); got "
                                 f"{tuple(arr.shape)}.")
            if not is_traced(arr):
                a = np.asarray(arr)
                if not (np.isfinite(a).all() and (a > 0).all()):
                    raise ValueError(f"`{name}` must be positive and finite; got {a}.")
                if not learn and not is_traced(default) and not np.allclose(
                        a, np.asarray(default), rtol=1e-6, atol=0):
                    raise ValueError(
                        f"`{name}` in the parameters ({a}) differs from the model's "
                        f"({np.asarray(default)}), which the model uses since it does not learn "
                        f"it: pass it to LatentDirichletAllocation({name}=...), or set "
                        f"learn_{name}=True."
                    )
            return jnp.broadcast_to(arr, lead + shape).astype(dtype)

        alpha = prior(doc_topic_prior, self.learn_doc_topic_prior, "doc_topic_prior",
                      self.doc_topic_prior)
        eta = prior(topic_word_prior, self.learn_topic_word_prior, "topic_word_prior",
                    self.topic_word_prior)
        return LDAParams(lam, alpha, eta)

    def init_params(self, blocks: Blocks, *, key: PRNGKeyArray) -> LDAParams:
        data = blocks.data
        V = data.num_words if isinstance(data, SparseCounts) else data.shape[-1]
        dtype = blocks.weights.dtype
        lam = jax.random.gamma(key, 100.0, (self.num_topics, V), dtype) / 100.0
        return LDAParams(lam, self.doc_topic_prior.astype(dtype),
                         self.topic_word_prior.astype(dtype))

    def _local(self, params: LDAParams, data, w) -> _Local:
        """The E-step on one block of documents: ``γ``, statistics and ELBO data terms.

        The inner loop (`_iterate_gamma`) and the pass that turns ``γ`` into statistics
        work on ``_SLOTS`` documents at a time, so that their intermediates (``(S, L, K)``
        gathered topic–word values) do not grow with the block.
        """
        lam = params.topic_word
        dtype = lam.dtype
        K, V = lam.shape
        alpha = self._alpha(params, dtype)
        active = w > 0
        elog_beta = _dirichlet_expectation(lam)  # (K, V)
        # A per-word shift (cancels in φ): the likeliest topic of every word has β' = 1, so
        # rare words never underflow to 0/0 in float32.
        shift = jax.lax.stop_gradient(jnp.max(elog_beta, axis=0))  # (V,)
        exp_beta = jnp.exp(elog_beta - shift)
        if isinstance(data, SparseCounts):
            ids = data.ids
            counts = data.counts.astype(dtype)
            source = exp_beta.T  # (V, K): one contiguous row per word, for gathering
        else:
            ids = None
            counts = data.astype(dtype)
            source = exp_beta
        counts = jnp.where(active[:, None], counts, 0.0)
        tol = self.mean_change_tol.astype(dtype)
        gamma = _solve_gamma(source, ids, alpha, counts, active, tol, self.max_doc_update_iter,
                             _SLOTS)

        # Statistics and bound, _SLOTS documents at a time.
        B = counts.shape[0]
        C = min(_SLOTS, B) if is_traced(counts) else B  # eagerly: fewer, larger operations
        nc = -(-B // C)
        ww = jnp.where(active, w, 0.0)
        chunks = (
            _pad_rows(gamma, nc * C, 1.0).reshape(nc, C, K),
            _pad_rows(counts, nc * C, 0.0).reshape((nc, C) + counts.shape[1:]),
            _pad_rows(ww, nc * C, 0.0).reshape(nc, C),
            None if ids is None else _pad_rows(ids, nc * C, 0).reshape((nc, C) + ids.shape[1:]),
        )

        def chunk_terms(carry, chunk):
            word_acc, log_theta, doc_terms = carry
            g, c, wc, idc = chunk
            on = wc > 0
            if idc is None:
                beta, word_shift = source, shift[None, :]
            else:
                beta, word_shift = source[idc], shift[idc]
            elog_theta = _dirichlet_expectation(g)
            exp_theta = jnp.exp(elog_theta)
            norm = _normaliser(exp_theta, beta) + _EPS
            ratio = c / norm
            topic_counts = exp_theta * _back(ratio, beta)  # Σ_v n_dv φ_dvk, (C, K)
            weighted_theta = exp_theta * wc[:, None]
            if idc is None:
                word_acc = word_acc + jnp.matmul(weighted_theta.T, ratio, precision=_HI)
            else:
                contrib = ratio[:, :, None] * weighted_theta[:, None, :]  # (C, L, K)
                word_acc = word_acc.at[idc.reshape(-1)].add(contrib.reshape(-1, K))
            log_theta = log_theta + jnp.sum(jnp.where(on[:, None], wc[:, None] * elog_theta, 0.0),
                                            axis=0)
            # Document terms of the bound, per document.
            log_norm = jnp.sum(c * (jnp.log(norm) + word_shift), axis=1)
            z_term = jnp.sum(topic_counts * elog_theta, axis=1)
            log_p_theta = (gammaln(jnp.sum(alpha)) - jnp.sum(gammaln(alpha))
                           + jnp.sum((alpha - 1.0) * elog_theta, axis=1))
            entropy_theta = (-gammaln(jnp.sum(g, axis=1)) + jnp.sum(gammaln(g), axis=1)
                             - jnp.sum((g - 1.0) * elog_theta, axis=1))

            def total(x):
                return jnp.sum(jnp.where(on, wc * jnp.where(on, x, 0.0), 0.0))

            doc_terms = doc_terms + jnp.stack([total(z_term + log_p_theta),
                                               total(log_norm - z_term + entropy_theta)])
            return (word_acc, log_theta, doc_terms), None

        word0 = jnp.zeros((K, V) if ids is None else (V, K), dtype)
        init = (word0, jnp.zeros((K,), dtype), jnp.zeros((2,), dtype))
        if nc == 1:
            (word_acc, log_theta, doc_terms), _ = chunk_terms(init, jax.tree.map(lambda a: a[0], chunks))
        else:
            (word_acc, log_theta, doc_terms), _ = jax.lax.scan(chunk_terms, init, chunks)
        word_stats = (word_acc if ids is None else word_acc.T) * exp_beta
        stats = LDAStats(topic_word=word_stats, log_theta=log_theta, num_docs=jnp.sum(ww))
        word_term = jnp.sum(word_stats * elog_beta)
        elbo = ELBO(
            expected_log_joint=doc_terms[0] + word_term,
            entropy=doc_terms[1] - word_term,
            log_prior=jnp.zeros((), dtype),
        )
        return _Local(gamma, stats, elbo)

    def e_step(self, params: LDAParams, data, w):
        local = _local_jit(self, params, data, w)
        return local.stats, local.elbo

    def m_step(self, params: LDAParams, stats: LDAStats) -> LDAParams:
        dtype = stats.topic_word.dtype
        lam = self._eta(params, dtype) + stats.topic_word
        alpha = self.doc_topic_prior.astype(dtype)
        eta = self.topic_word_prior.astype(dtype)
        if self.learn_doc_topic_prior:
            a0 = params.doc_topic_prior.astype(dtype)
            s = stats.log_theta if a0.ndim else jnp.sum(stats.log_theta)
            alpha = _dirichlet_newton(a0, stats.num_docs, s, self.num_topics)
        if self.learn_topic_word_prior:
            V = lam.shape[1]
            s = jnp.sum(_dirichlet_expectation(lam))
            eta = _dirichlet_newton(params.topic_word_prior.astype(dtype),
                                    jnp.asarray(self.num_topics, dtype), s, V)
        return LDAParams(lam, alpha, eta)

    def stats_from_params(self, params: LDAParams, total_weight) -> LDAStats:
        r"""``topic_word = λ − η`` (so that the M-step gives back ``λ``), and the prior's
        ``E[log θ_dk] = ψ(α_k) − ψ(Σ_j α_j)`` for each of ``total_weight`` documents.

        With these as `emjax.OnlineEM`'s ``s_0``, its update
        ``λ_t = η + (1 − ρ_t)(λ_{t−1} − η) + ρ_t (M/B) ŝ = (1 − ρ_t) λ_{t−1} + ρ_t λ̂`` is
        online LDA's (Hoffman, Blei & Bach 2010) from the initial ``λ_0``.
        """
        lam = params.topic_word
        dtype = lam.dtype
        alpha = jnp.broadcast_to(params.doc_topic_prior.astype(dtype), (self.num_topics,))
        num_docs = jnp.asarray(total_weight, dtype)
        log_theta = num_docs * (digamma(alpha) - digamma(jnp.sum(alpha)))
        return LDAStats(lam - self._eta(params, dtype), log_theta, num_docs)

    def log_prior(self, params: LDAParams) -> Float[Array, ""]:
        r"""``Σ_k E_q[log Dir(β_k | η)] − E_q[log Dir(β_k | λ_k)] = −KL(q(β) ‖ p(β))``,
        the topic–word term of the bound (scikit-learn's ``_approx_bound`` adds the same)."""
        lam = params.topic_word
        dtype = lam.dtype
        eta = self._eta(params, dtype)
        V = lam.shape[1]
        elog_beta = _dirichlet_expectation(lam)
        return (jnp.sum((eta - lam) * elog_beta) + jnp.sum(gammaln(lam) - gammaln(eta))
                + jnp.sum(gammaln(eta * V) - gammaln(jnp.sum(lam, axis=1))))

    # ------------------------------------------------------------------ fitted-model API
    def log_likelihood(self, params: LDAParams, data, sample_weight=None) -> Float[Array, ""]:
        r"""The document terms of the bound: ``Σ_d w_d ELBO_d``, a lower bound on
        ``Σ_d w_d E_{q(β)}[log p(w_d | β, α)]``.

        This is what `emjax.fit` reports as ``Solution.log_likelihood`` for LDA: the exact
        marginal likelihood has no closed form. It is ``score(params, counts)`` minus
        ``log_prior(params)``.

        Args:
            params: fitted parameters.
            data: counts (dense ``(M, V)`` or `emjax.lda.SparseCounts`).
            sample_weight: optional non-negative weights of shape ``(M,)``.

        Example:
            >>> import numpy as np, emjax
            >>> counts = np.random.default_rng(0).poisson(1.0, size=(30, 8))
            >>> lda = emjax.LatentDirichletAllocation(2)
            >>> p = lda.make_params(topic_word=1.0 + np.arange(16.0).reshape(2, 8))
            >>> ll = lda.log_likelihood(p, counts)
            >>> bool(abs(ll + lda.log_prior(p) - lda.score(p, counts)) < 1e-3)
            True
        """
        data = self.check_input(params, data)
        w = check_sample_weight(sample_weight, _num_docs(data), params.topic_word.dtype)
        return _bound(self, params, data, w)

    def score(self, params: LDAParams, counts) -> Float[Array, ""]:
        r"""The evidence lower bound on ``counts``, defined as scikit-learn's
        ``LatentDirichletAllocation.score`` (its ``_approx_bound``): the document terms
        (each document's ``γ`` from the E-step, started at ``γ = 1``) plus the topic–word
        term ``−KL(q(β) ‖ p(β))`` over the whole model.

        Example:
            >>> import numpy as np, emjax
            >>> counts = np.random.default_rng(0).poisson(1.0, size=(30, 8))
            >>> lda = emjax.LatentDirichletAllocation(2)
            >>> p = lda.make_params(topic_word=1.0 + np.arange(16.0).reshape(2, 8))
            >>> bool(lda.score(p, counts) < 0)
            True
        """
        data = self.check_input(params, counts)
        return _score(self, params, data)

    def perplexity(self, params: LDAParams, counts) -> Float[Array, ""]:
        r"""Perplexity of ``counts``, defined exactly as scikit-learn's
        ``LatentDirichletAllocation.perplexity``:

        .. math::

            \exp\Big(-\frac{\mathrm{score}(\text{counts})}{\sum_{d,v} n_{dv}}\Big)

        where ``score`` is the evidence lower bound (`score`): the document terms of
        ``counts`` plus the model's whole topic–word term ``−KL(q(β) ‖ p(β))``. So it is
        an upper bound on the per-word perplexity; note that on held-out documents the
        topic–word term (which does not depend on the documents) is still included, as
        scikit-learn does (scikit-learn issue #20032). Lower is better.

        Args:
            params: fitted parameters.
            counts: dense ``(M, V)`` counts or `emjax.lda.SparseCounts`, e.g. held-out
                documents.

        Raises:
            ValueError: invalid counts, a vocabulary that does not match the parameters,
                or counts with no words at all.

        Example:
            >>> import numpy as np, emjax
            >>> counts = np.random.default_rng(0).poisson(1.0, size=(30, 8))
            >>> lda = emjax.LatentDirichletAllocation(2)
            >>> p = lda.make_params(topic_word=1.0 + np.arange(16.0).reshape(2, 8))
            >>> perplexity = lda.perplexity(p, counts)
            >>> bool(np.isclose(perplexity, np.exp(-lda.score(p, counts) / counts.sum())))
            True
        """
        data = self.check_input(params, counts)
        words = jnp.sum(_counts(data))
        if not is_traced(words) and float(words) <= 0:
            raise ValueError("`counts` holds no words: the perplexity is undefined.")
        return _perplexity(self, params, data)

    def transform(self, params: LDAParams, counts, normalize: bool = True):
        """Document–topic distributions of (new) documents: the E-step's ``γ_d``, from
        ``γ = 1`` with the model's inner tolerance, each row divided by its sum when
        ``normalize`` (scikit-learn's ``transform``), shape ``(M, K)``.

        Example:
            >>> import numpy as np, emjax
            >>> counts = np.random.default_rng(0).poisson(1.0, size=(30, 8))
            >>> lda = emjax.LatentDirichletAllocation(2)
            >>> p = lda.make_params(topic_word=1.0 + np.arange(16.0).reshape(2, 8))
            >>> theta = lda.transform(p, counts)
            >>> theta.shape, bool(np.allclose(theta.sum(axis=1), 1.0))
            ((30, 2), True)
        """
        data = self.check_input(params, counts)
        gamma = _gammas(self, params, data)
        if normalize:
            return gamma / jnp.sum(gamma, axis=1, keepdims=True)
        return gamma

    def topic_word_distributions(self, params: LDAParams) -> Float[Array, "K V"]:
        """``E_q[β_kv] = λ_kv / Σ_u λ_ku``: each topic's distribution over words (rows sum
        to 1); scikit-learn's ``components_ / components_.sum(axis=1)[:, None]``.

        Example:
            >>> import numpy as np, emjax
            >>> lda = emjax.LatentDirichletAllocation(2)
            >>> p = lda.make_params(topic_word=np.array([[1.0, 3.0], [2.0, 2.0]]))
            >>> lda.topic_word_distributions(p).tolist()
            [[0.25, 0.75], [0.5, 0.5]]
        """
        lam = params.topic_word
        return lam / jnp.sum(lam, axis=-1, keepdims=True)

    def top_words(self, params: LDAParams, vocabulary, num_words: int = 10) -> list[list]:
        """The ``num_words`` most probable words of every topic, most probable first.

        Args:
            params: fitted parameters.
            vocabulary: the ``V`` words (strings or anything else), in column order of the
                count matrix, e.g. ``CountVectorizer.get_feature_names_out()``.
            num_words: words per topic (at most ``V``).

        Returns:
            ``K`` lists of ``num_words`` entries of ``vocabulary``.

        Raises:
            ValueError: a vocabulary whose length is not the parameters' ``V``.

        Example:
            >>> import numpy as np, emjax
            >>> lda = emjax.LatentDirichletAllocation(2)
            >>> p = lda.make_params(topic_word=np.array([[5.0, 1.0, 2.0], [1.0, 1.0, 9.0]]))
            >>> lda.top_words(p, ["apple", "pear", "plum"], num_words=2)
            [['apple', 'plum'], ['plum', 'apple']]
        """
        vocabulary = list(vocabulary)
        lam = np.asarray(params.topic_word)
        V = lam.shape[-1]
        if len(vocabulary) != V:
            raise ValueError(f"`vocabulary` has {len(vocabulary)} words but the parameters have "
                             f"{V}.")
        n = min(check_positive_int(num_words, "num_words"), V)
        order = np.argsort(-lam, axis=-1, kind="stable")[..., :n]
        return [[vocabulary[i] for i in row] for row in order]


def _check_prior(value, name: str, K: int):
    """A positive finite scalar, or (for ``doc_topic_prior``) a ``(K,)`` vector."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a positive number or a ({K},) array; got {value!r}.")
    arr = as_float_array(value, name)
    if arr.ndim == 0:
        return check_positive_scalar(arr, name)
    if arr.shape != (K,):
        raise ValueError(f"`{name}` must be a scalar or have shape ({K},) (one per topic); got "
                         f"shape {tuple(arr.shape)}.")
    if not is_traced(arr):
        a = np.asarray(arr)
        if not (np.isfinite(a).all() and (a > 0).all()):
            raise ValueError(f"`{name}` must be positive and finite; got {a}.")
    return arr


def _dirichlet_newton(a0, num, s, dim: int):
    r"""Maximise ``f(a) = num·(log Γ(Σ_k a_k) − Σ_k log Γ(a_k)) + Σ_k (a_k − 1) s_k``, the
    expected log-density of ``num`` draws from ``Dir(a)`` with ``Σ E log x_k = s``.

    ``a0`` is a ``(K,)`` vector (asymmetric; ``s`` is ``(K,)``) or a scalar (a symmetric
    ``Dir(a·1_dim)``; ``s`` is the sum over all ``dim`` coordinates). Newton's method with
    the Hessian ``diag(h) + z 11ᵀ`` inverted in ``O(K)`` (Blei et al. 2003, App. A.2), step
    halvings keeping ``a > 0`` and ``f`` increasing: ``f`` is concave, so every accepted
    step moves towards the maximiser and ``f(result) >= f(a0)``.
    """
    dtype = a0.dtype
    symmetric = a0.ndim == 0

    def f(a):
        if symmetric:
            return num * (gammaln(dim * a) - dim * gammaln(a)) + (a - 1.0) * s
        return num * (gammaln(jnp.sum(a)) - jnp.sum(gammaln(a))) + jnp.sum((a - 1.0) * s)

    def direction(a):
        """The Newton step ``−H⁻¹ g``."""
        if symmetric:
            g = num * dim * (digamma(dim * a) - digamma(a)) + s
            h = num * dim * (dim * polygamma(1, dim * a) - polygamma(1, a))
            return -g / h
        g = num * (digamma(jnp.sum(a)) - digamma(a)) + s
        h = -num * polygamma(1, a)
        z = num * polygamma(1, jnp.sum(a))
        c = jnp.sum(g / h) / (1.0 / z + jnp.sum(1.0 / h))
        return -(g - c) / h

    def step(carry):
        it, a, _ = carry
        d = direction(a)
        fa = f(a)

        def halve(c):
            t, _ = c
            return t * 0.5, None

        def bad(c):
            t, _ = c
            trial = a + t * d
            ok = jnp.all(trial > 0) & (f(trial) >= fa)
            return ~ok & (t > 2.0 ** -_NEWTON_HALVINGS)

        t, _ = jax.lax.while_loop(bad, halve, (jnp.asarray(1.0, dtype), None))
        trial = a + t * d
        ok = jnp.all(jnp.isfinite(trial)) & jnp.all(trial > 0) & (f(trial) >= fa)
        new = jnp.where(ok, trial, a)
        change = jnp.max(jnp.abs(new - a) / a)
        return it + 1, new, ok & (change > 1e3 * jnp.finfo(dtype).eps)

    def cond(carry):
        it, _, going = carry
        return going & (it < _NEWTON_STEPS)

    _, a, _ = jax.lax.while_loop(cond, step, (jnp.array(0), a0, jnp.array(True)))
    return a


# Jitted so that a call outside `jax.jit` (tests, a user's own loop) is one compiled program
# rather than an op-by-op inner while-loop; inside `emjax.fit` it is inlined.
_local_jit = eqx.filter_jit(LatentDirichletAllocation._local)


@eqx.filter_jit
def _bound(model: LatentDirichletAllocation, params, data, w):
    """``Σ_d w_d ELBO_d`` over all documents, block by block."""
    blocks = make_blocks(data, w, default_block_size(w.shape[0], model.row_cost(data)))
    return accumulate(lambda x, wb: model._local(params, x, wb).elbo.total, blocks)


@eqx.filter_jit
def _score(model: LatentDirichletAllocation, params, data):
    w = jnp.ones((_num_docs(data),), params.topic_word.dtype)
    return _bound(model, params, data, w) + model.log_prior(params)


@eqx.filter_jit
def _perplexity(model: LatentDirichletAllocation, params, data):
    return jnp.exp(-_score(model, params, data) / jnp.sum(_counts(data)))


@eqx.filter_jit
def _gammas(model: LatentDirichletAllocation, params, data):
    """Every document's ``γ`` (``(M, K)``), block by block."""
    n = _num_docs(data)

    def one_block(x):
        w = jnp.ones((_num_docs(x),), params.topic_word.dtype)
        return model._local(params, x, w).gamma

    return map_rows(one_block, data, default_block_size(n, model.row_cost(data)))

