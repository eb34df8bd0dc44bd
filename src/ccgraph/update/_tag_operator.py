"""The normalised graph of an update's tag spreading, its degrees worked out once.

``S = D^{-1/2} W D^{-1/2}`` (the region solve) and the float64 propagation operator
``alpha S`` of :func:`ccgraph.propagate._graph.build_operator` (the item masses) share the
degrees and differ by the factor ``alpha``; each entry is made by the same products as there,
so the results are bit for bit the same. Used by :mod:`ccgraph.update.tags`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = ["Degrees", "degrees"]


class Degrees(NamedTuple):
    """A graph's weights as float64 (in CSR order), weighted degrees and ``1 / sqrt`` of them.

    ``inv`` is 0 for isolated nodes. Worked out once for the region solve and the item masses.
    """

    w: np.ndarray
    deg: np.ndarray
    inv: np.ndarray


def degrees(adjacency: sp.csr_matrix) -> Degrees:
    """:class:`Degrees` of ``adjacency`` (the row sums scipy's ``sum(axis=1)`` makes)."""
    a = sp.csr_matrix(adjacency)
    w = a.data.astype(np.float64)
    deg = np.asarray(sp.csr_matrix((w, a.indices, a.indptr), shape=a.shape).sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    return Degrees(w, deg, inv)


def _normalised(
    adjacency: sp.csr_matrix, deg: Degrees | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``S = D^{-1/2} W D^{-1/2}`` (isolated nodes: zero rows) and the degrees."""
    from ccgraph.update._tag_kernels import scaled_entries

    a = sp.csr_matrix(adjacency)
    d = degrees(a) if deg is None else deg
    data = scaled_entries(a.indptr, a.indices, d.w, d.inv, d.inv)  # as diag @ W @ diag
    return sp.csr_matrix((data, a.indices.copy(), a.indptr.copy()), shape=a.shape), d.deg


def _operator(adjacency: sp.csr_matrix, alpha: float, deg: Degrees) -> Any:
    """``build_operator(adjacency, alpha=alpha, dtype=float64, reorder="none")``, bit for bit.

    (:func:`ccgraph.propagate._graph.build_operator`), from degrees worked out already.
    """
    from ccgraph.propagate._graph import Operator, chunk_bounds
    from ccgraph.update._tag_kernels import scaled_entries

    a = sp.csr_matrix(adjacency)
    data = scaled_entries(a.indptr, a.indices, deg.w, alpha * deg.inv, deg.inv)
    s = sp.csr_matrix((data, a.indices.copy(), a.indptr.copy()), shape=a.shape)
    s.eliminate_zeros()  # as the sparse products drop them
    s.sort_indices()
    s.indptr = s.indptr.astype(np.int64)
    s.indices = s.indices.astype(np.int32)
    return Operator(s, float(alpha), np.sqrt(deg.deg), None, None, chunk_bounds(s.indptr))
