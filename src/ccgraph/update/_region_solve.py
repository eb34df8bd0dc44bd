"""The region solve of an update's tag spreading: ``F = alpha S_RR F + c`` on the region rows.

:func:`solve_system` splits the region into the connected components of ``S_RR`` (a
component's rows can only take the tags present in it) and sweeps the (row, tag) unknowns as
one flat vector, or as a dense block, or on sparse rows for large regions; each keeps every
row's top-k entries. Used by :mod:`ccgraph.update.tags`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["DENSE_ENTRIES", "FLAT_ENTRIES", "Ranked", "solve_system"]

#: Most (row, tag) unknowns of the component-wise region solve; larger regions are solved on
#: sparse rows (:func:`_solve_sparse`).
FLAT_ENTRIES = 8_000_000
#: Up to this many (row, tag) cells, a region whose tags fill its rows is solved as one dense
#: block (a sparse x dense product per sweep), faster than the flat vector when most cells
#: are unknowns anyway (few large components, many tags: e.g. a half-catalog batch).
DENSE_ENTRIES = 2_000_000

Ranked = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # row, tag, score, rank


def solve_system(
    s_rr: sp.csr_matrix,
    c: sp.csr_matrix,
    f0: sp.csr_matrix,
    seeded: sp.csr_matrix,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    top_k: int,
) -> tuple[Ranked, int, bool]:
    """Solve ``F = alpha S_RR F + c`` from ``f0``; the rows' top-k non-seed entries.

    The region's rows split into the connected components of ``S_RR``; a component's rows can
    only take the tags of ``c`` and ``f0`` in that component, so ``F`` lives on those (row, tag)
    pairs, one flat vector, swept by :func:`~ccgraph.update._tag_kernels.flat_sweep`
    (Chebyshev semi-iteration, stopped when a plain sweep would change no entry by ``tol``
    or more).
    Returns the rows' top-k (``row``, ``tag``, ``score``, ``rank`` arrays), the sweeps used and
    whether the solve converged.
    """
    from scipy.sparse.csgraph import connected_components

    n_r, n_t = c.shape
    n_comp, comp = connected_components(s_rr, directed=False)
    cc, fc = sp.coo_matrix(c), sp.coo_matrix(f0)
    pat = sp.csr_matrix(
        (
            np.ones(cc.nnz + fc.nnz, dtype=np.int8),
            (comp[np.concatenate([cc.row, fc.row])], np.concatenate([cc.col, fc.col])),
        ),
        shape=(n_comp, n_t),
    )
    pat.sum_duplicates()
    width = np.diff(pat.indptr)[comp]  # unknowns per row
    active = np.unique(pat.indices)
    dense_cells = n_r * len(active)
    flat_cells = int(width.sum())
    if dense_cells <= DENSE_ENTRIES and 4 * flat_cells > dense_cells:
        return _solve_dense(
            s_rr, c, f0, seeded, active, alpha=alpha, tol=tol, max_iter=max_iter, top_k=top_k
        )
    if flat_cells > FLAT_ENTRIES:
        return _solve_sparse(
            s_rr, c, f0, seeded, alpha=alpha, tol=tol, max_iter=max_iter, top_k=top_k
        )
    from ccgraph.update._tag_kernels import csr_find

    start = np.concatenate([[0], np.cumsum(width)])
    size = int(start[-1])

    def flat(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        at = csr_find(pat.indptr, pat.indices, comp[rows], cols)
        return np.where(at >= 0, start[rows] + at - pat.indptr[comp[rows]], -1)

    b = np.zeros(size)
    b[flat(cc.row, cc.col)] = cc.data
    f = np.zeros(size)
    f[flat(fc.row, fc.col)] = fc.data
    f, sweeps, done = _flat_chebyshev(
        s_rr, start, width, b, f, alpha=alpha, tol=tol, max_iter=max_iter
    )
    sc = sp.coo_matrix(seeded)
    at = flat(sc.row, sc.col)
    f[at[at >= 0]] = 0.0  # an item's own seeds are not inferred
    rows = np.repeat(np.arange(n_r), width)
    within = np.arange(size) - np.repeat(start[:-1], width)
    tags = pat.indices[np.repeat(pat.indptr[comp], width) + within]
    pos = f > 0
    return _ranked(rows[pos], tags[pos].astype(np.int64), f[pos], top_k), sweeps, done


def _flat_chebyshev(
    s_rr: sp.csr_matrix,
    start: np.ndarray,
    width: np.ndarray,
    b: np.ndarray,
    f: np.ndarray,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int, bool]:
    """:func:`_chebyshev` on the flat layout of :func:`solve_system` (the same sweeps).

    The operator is ``S_RR`` applied to each of a row's cells (row ``u`` owns ``width[u]``
    cells from ``start[u]``), swept by :func:`~ccgraph.update._tag_kernels.flat_sweep`
    without building it. ``f`` is overwritten.
    """
    from ccgraph.propagate._solver import _omegas
    from ccgraph.update._tag_kernels import flat_sweep

    s = sp.csr_matrix(s_rr, dtype=np.float64)
    s.sum_duplicates()  # canonical: a row's neighbours summed in column order
    start = start.astype(np.int64)
    width = width.astype(np.int64)
    prev = f
    spare = np.empty_like(f)  # three buffers in turn: no fresh array per sweep
    omegas = _omegas(alpha, "chebyshev")
    sweeps, done = 0, f.size == 0
    while not done and sweeps < max_iter:
        sweeps += 1
        nxt = spare
        change = flat_sweep(
            s.indptr, s.indices, s.data, start, width, alpha, b, f, prev, next(omegas), nxt
        )
        done = change < tol
        spare = prev if prev is not f else np.empty_like(f)
        prev, f = f, nxt
    return f, sweeps, done


def _chebyshev(
    m: sp.csr_matrix, b: np.ndarray, f: np.ndarray, *, alpha: float, tol: float, max_iter: int
) -> tuple[np.ndarray, int, bool]:
    """Solve ``F = alpha M F + b`` from ``f`` (a vector or a dense block) by Chebyshev sweeps.

    The eigenvalues of ``alpha M`` lie in ``[-alpha, alpha]``; stops when a plain sweep would
    change no entry by ``tol`` or more. Returns ``F``, the sweeps and whether it converged.
    """
    from ccgraph.propagate._solver import _omegas

    prev = f
    omegas = _omegas(alpha, "chebyshev")
    sweeps, done = 0, f.size == 0
    while not done and sweeps < max_iter:
        sweeps += 1
        omega = next(omegas)
        y = alpha * (m @ f) + b
        done = float(np.abs(y - f).max(initial=0.0)) < tol
        prev, f = f, omega * y + (1.0 - omega) * prev
    return f, sweeps, done


def _solve_dense(
    s_rr: sp.csr_matrix,
    c: sp.csr_matrix,
    f0: sp.csr_matrix,
    seeded: sp.csr_matrix,
    active: np.ndarray,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    top_k: int,
) -> tuple[Ranked, int, bool]:
    """:func:`solve_system` on the dense ``rows x active tags`` block (the same sweeps)."""
    n_r = s_rr.shape[0]
    b = sp.csc_matrix(c)[:, active].toarray()
    f = sp.csc_matrix(f0)[:, active].toarray()
    f, sweeps, done = _chebyshev(s_rr, b, f, alpha=alpha, tol=tol, max_iter=max_iter)
    own = sp.csc_matrix(seeded)[:, active].tocoo()
    f[own.row, own.col] = 0.0  # an item's own seeds are not inferred
    if 0 < top_k < f.shape[1]:  # only the entries that can make a row's top-k (ties kept)
        kth = np.partition(f, f.shape[1] - top_k, axis=1)[:, f.shape[1] - top_k]
        rows, cols = np.nonzero((f > 0) & (f >= kth[:, None]))  # by row, then tag
    else:
        rows, cols = np.nonzero(f > 0)
    ranked = _ranked(rows.astype(np.int64), active[cols].astype(np.int64), f[rows, cols], top_k)
    return ranked, sweeps, done or n_r == 0


def _ranked(rows: np.ndarray, tags: np.ndarray, score: np.ndarray, top_k: int) -> Ranked:
    """Keep each row's ``top_k`` entries by score (ties: smaller tag index) with their rank.

    The entries come sorted by row, then tag (so a stable sort keeps tag order within ties).
    """
    if len(rows) and not np.isnan(score).any() and (rows[1:] >= rows[:-1]).all():
        from ccgraph.update._tag_kernels import top_k_sorted

        pick, rank = top_k_sorted(np.asarray(rows), np.asarray(score, dtype=np.float64), top_k)
        return (
            rows[pick].astype(np.int64),
            tags[pick].astype(np.int64),
            score[pick].astype(np.float64),
            rank,
        )
    order = np.lexsort((-score, rows))
    rows, tags, score = rows[order], tags[order], score[order]
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.zeros(0, int)
    rank = np.arange(len(rows)) - np.repeat(first, np.diff(np.r_[first, len(rows)])) + 1
    keep = rank <= top_k
    return (
        rows[keep].astype(np.int64),
        tags[keep].astype(np.int64),
        score[keep].astype(np.float64),
        rank[keep].astype(np.int64),
    )


def _solve_sparse(
    s_rr: sp.csr_matrix,
    c: sp.csr_matrix,
    f0: sp.csr_matrix,
    seeded: sp.csr_matrix,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    top_k: int,
) -> tuple[Ranked, int, bool]:
    """:func:`solve_system` on sparse rows, for regions whose tags stay local (few per row).

    Chebyshev semi-iteration (as :mod:`ccgraph.propagate._solver`: the eigenvalues of
    ``alpha S_RR`` lie in ``[-alpha, alpha]``), stopped when a plain sweep would change no
    entry by ``tol`` or more.
    """
    from ccgraph.propagate._solver import _omegas

    f = sp.csr_matrix(f0)
    prev = f
    omegas = _omegas(alpha, "chebyshev")
    sweeps, converged = 0, s_rr.shape[0] == 0
    floor = tol * 1e-3  # entries this small cannot move a top-k list; drop them as they appear
    while not converged and sweeps < max_iter:
        sweeps += 1
        omega = next(omegas)
        y = sp.csr_matrix(alpha * (s_rr @ f) + c)
        delta = abs(y - f)
        converged = delta.nnz == 0 or float(delta.max()) < tol
        nxt = y if omega == 1.0 else sp.csr_matrix(omega * y + (1.0 - omega) * prev)
        nxt.data[np.abs(nxt.data) < floor] = 0.0
        nxt.eliminate_zeros()
        prev, f = f, nxt
    f = sp.csr_matrix(f - f.multiply(seeded)).tocoo()
    pos = f.data > 0
    return _ranked(f.row[pos], f.col[pos], f.data[pos], top_k), sweeps, converged
