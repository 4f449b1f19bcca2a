"""Type aliases and the one dimension glossary used across emjax.

Dimension names used in jaxtyping annotations:

- ``N``: data points (rows); ``B``: rows in one block of a blocked pass
- ``D``: features
- ``K``: mixture components / clusters / hidden states
- ``R``: restarts
- ``T``: EM steps (trace length)
"""

from typing import Any, TypeAlias

from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

Params: TypeAlias = PyTree[Any]
Stats: TypeAlias = PyTree[Any]
Data: TypeAlias = PyTree[Any]

__all__ = [
    "Array",
    "ArrayLike",
    "Bool",
    "Data",
    "Float",
    "Int",
    "PRNGKeyArray",
    "Params",
    "PyTree",
    "Stats",
]
