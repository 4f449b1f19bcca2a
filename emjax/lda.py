"""Latent Dirichlet allocation: the sparse corpus layout.

The model itself is `emjax.LatentDirichletAllocation` (fitted by `emjax.fit`); this module
holds what goes with it:

- `SparseCounts`: a corpus as padded per-document word ids and counts, for vocabularies
  where a dense ``(documents, V)`` matrix would waste time and memory. Build it with
  ``SparseCounts.from_dense(counts)`` or ``SparseCounts.from_scipy(matrix)`` (e.g. the
  output of scikit-learn's ``CountVectorizer``).

Example:
    >>> import numpy as np, emjax
    >>> counts = np.random.default_rng(0).poisson(1.0, size=(30, 8))
    >>> corpus = emjax.lda.SparseCounts.from_dense(counts)
    >>> lda = emjax.LatentDirichletAllocation(num_topics=2)
    >>> p = lda.make_params(topic_word=1.0 + np.arange(16.0).reshape(2, 8))
    >>> bool(np.isclose(lda.perplexity(p, corpus), lda.perplexity(p, counts)))
    True

    ``emjax.fit(lda, corpus, key=jax.random.key(0))`` fits it as it would ``counts``.
"""

from ._models._lda import SparseCounts as SparseCounts

__all__ = ["SparseCounts"]
