"""Graph inputs of the propagation stage: coercion to CSR and the normalised operator.

Private helpers: the public functions validate once and pass trusted arrays here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ccgraph._validation import check_choice
from ccgraph.containers import KnnGraph
from ccgraph.exceptions import InputError, ParameterError

__all__ = ["Operator", "as_adjacency", "build_operator", "chunk_bounds", "resolve_dtype"]

#: Graphs with at least this many nodes are reordered (reverse Cuthill-McKee) under ``"auto"``.
REORDER_MIN_NODES = 20_000
#: ``1 - alpha`` must be at least this many times ``tol`` (see :func:`check_alpha_tol`).
MIN_RESTART_OVER_TOL = 10.0


def check_alpha_tol(alpha: float, tol: float) -> None:
    """Refuse an ``alpha`` so close to 1 that the sweep-change test ``< tol`` stops at once.

    The iterations start at ``(1 - alpha) Y`` and one sweep moves an entry by at most about
    ``1 - alpha``, so with ``1 - alpha`` near ``tol`` they "converge" after a sweep or two,
    long before the spread has travelled (silently wrong scores). ``alpha`` and ``tol`` are
    already validated.
    """
    if 1.0 - alpha < MIN_RESTART_OVER_TOL * tol:
        raise ParameterError(
            f"`alpha`={alpha} is too close to 1 for `tol`={tol}: a sweep moves a score by at "
            f"most about 1 - alpha, so the stopping test would end the propagation before it "
            f"travels; give tol <= (1 - alpha) / {MIN_RESTART_OVER_TOL:g} "
            f"= {(1.0 - alpha) / MIN_RESTART_OVER_TOL:.3g} or a smaller alpha"
        )


def as_adjacency(graph: Any, *, name: str = "graph") -> tuple[sp.csr_matrix, np.ndarray | None]:
    """Return ``(symmetric non-negative CSR, ids or None)`` for a KnnGraph or a sparse matrix."""
    if isinstance(graph, KnnGraph):
        return graph.adjacency, graph.ids
    if not sp.issparse(graph):
        raise InputError(
            f"`{name}` must be a KnnGraph or a scipy sparse adjacency matrix; "
            f"got {type(graph).__name__}"
        )
    m = sp.csr_matrix(graph, dtype=np.float64)
    if m.shape[0] != m.shape[1]:
        raise InputError(f"`{name}` must be square; got shape {m.shape}")
    if m.nnz and (not np.isfinite(m.data).all() or (m.data < 0).any()):
        raise InputError(f"`{name}` weights must be finite and non-negative")
    if m.nnz:
        asym = abs(m - m.T)
        if asym.nnz and asym.max() > 1e-6 * max(1.0, float(m.data.max())):
            raise InputError(
                f"`{name}` must be symmetric (an undirected graph); build it with "
                "KnnGraph.from_adjacency(..., symmetrize='max')"
            )
    m.sort_indices()
    return m, None


def resolve_dtype(dtype: Any) -> np.dtype:
    """``"float32"`` or ``"float64"`` as a numpy dtype (validated)."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    check_choice("dtype", name, ("float32", "float64"))
    return np.dtype(name)


def chunk_bounds(indptr: np.ndarray, n_chunks: int = 64) -> np.ndarray:
    """Row boundaries splitting a CSR into ``n_chunks`` parts of about equal nonzeros + rows."""
    n = len(indptr) - 1
    work = indptr.astype(np.float64) + np.arange(n + 1)
    targets = np.linspace(0.0, work[-1], min(n_chunks, max(n, 1)) + 1)
    b = np.searchsorted(work, targets, side="left").astype(np.int64)
    b[0], b[-1] = 0, n
    return np.unique(b)


@dataclass(frozen=True, slots=True, eq=False)
class Operator:
    """``M = alpha * D^-1/2 W D^-1/2`` in (possibly permuted) node order.

    ``perm[p]`` is the original node at position ``p``; ``inv[i]`` the position of node ``i``.
    ``sqrt_d`` is ``sqrt(d_i)`` (weighted degree) in original order; isolated nodes have 0.
    """

    m: sp.csr_matrix
    alpha: float
    sqrt_d: np.ndarray
    perm: np.ndarray | None
    inv: np.ndarray | None
    bounds: np.ndarray

    @property
    def n(self) -> int:
        """Number of nodes."""
        return int(self.m.shape[0])

    @property
    def dtype(self) -> np.dtype:
        """Working dtype of the iterates."""
        return self.m.dtype

    def to_inner(self, a: Any) -> Any:
        """Rows of ``a`` (original order) in operator order."""
        return a if self.perm is None else a[self.perm]

    def to_outer(self, a: Any) -> Any:
        """Rows of ``a`` (operator order) back in original order."""
        return a if self.inv is None else a[self.inv]


def build_operator(
    adjacency: sp.csr_matrix,
    *,
    alpha: float,
    dtype: np.dtype,
    reorder: str = "auto",
    degrees: np.ndarray | None = None,
) -> Operator:
    """Normalise, scale by ``alpha`` and (optionally) reorder the adjacency for locality.

    ``reorder`` is ``"auto"`` (reverse Cuthill-McKee for graphs of at least
    :data:`REORDER_MIN_NODES` nodes), ``"rcm"`` or ``"none"``. Isolated nodes (degree 0) get a
    zero row and column, so nothing propagates to or from them and no NaN appears.
    ``degrees``: the float64 weighted degrees ``W.sum(axis=1)``, if the caller has them
    already (they are not checked).
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    w = sp.csr_matrix(adjacency, dtype=np.float64)
    deg = np.asarray(w.sum(axis=1)).ravel() if degrees is None else np.asarray(degrees)
    sqrt_d = np.sqrt(deg)
    inv_sqrt = np.divide(1.0, sqrt_d, out=np.zeros_like(sqrt_d), where=sqrt_d > 0)
    rcm = reorder == "rcm" or (reorder == "auto" and w.shape[0] >= REORDER_MIN_NODES)
    if not rcm and w.has_canonical_format and w.shape[0] < 2**31:
        from ccgraph.propagate._kernels import normalized_entries

        # the same products as below in one pass (a canonical W: no sort needed after)
        ptr, idx, val = normalized_entries(w.indptr, w.indices, w.data, float(alpha), inv_sqrt)
        m = sp.csr_matrix((val.astype(dtype, copy=False), idx, ptr), shape=w.shape)
        m.indptr, m.indices = ptr, idx
        m.has_sorted_indices = True
        return Operator(m, float(alpha), sqrt_d, None, None, chunk_bounds(m.indptr))
    # the entries of diags(alpha / sqrt d) @ W @ diags(1 / sqrt d), one product each, in order
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    data = ((alpha * inv_sqrt)[rows] * w.data) * inv_sqrt[w.indices]
    s = sp.csr_matrix((data, w.indices.copy(), w.indptr.copy()), shape=w.shape)
    s.eliminate_zeros()  # as the sparse products drop them
    perm = inv = None
    if reorder == "rcm" or (reorder == "auto" and s.shape[0] >= REORDER_MIN_NODES):
        perm = np.asarray(reverse_cuthill_mckee(s, symmetric_mode=True), dtype=np.int64)
        inv = np.empty_like(perm)
        inv[perm] = np.arange(len(perm))
        s = s[perm][:, perm]
    m = sp.csr_matrix(s, dtype=dtype)
    m.sort_indices()
    m.indptr = m.indptr.astype(np.int64)
    m.indices = m.indices.astype(np.int32)
    return Operator(m, float(alpha), sqrt_d, perm, inv, chunk_bounds(m.indptr))
