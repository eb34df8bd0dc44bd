"""The normalised graph of an update's tag spreading, its degrees worked out once.

``S = D^{-1/2} W D^{-1/2}`` (the region solve) and the float64 propagation operator
``alpha S`` of :func:`ccgraph.propagate._graph.build_operator` (the item masses, given
``degrees=``) share the degrees and differ by the factor ``alpha``; each entry of ``S`` is made
by the same products as there. Used by :mod:`ccgraph.update.tags`.
"""

from __future__ import annotations

from typing import NamedTuple

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
