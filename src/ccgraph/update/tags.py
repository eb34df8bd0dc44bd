r"""Inferred tags after an update: label spreading re-solved around the change only.

Label spreading is the fixed point ``F = alpha S F + (1 - alpha) Y``
(:func:`ccgraph.propagate.spread_tags`). An update changes ``S`` only in the rows of items
whose edges changed and ``Y`` only for items of the batch, so the update re-solves the rows of
that *region* ``R`` with the rest of ``F`` held at the run's solution:

.. math:: F_R = \alpha S_{RR} F_R + \big(\alpha S_{R\bar R} F_{\bar R} + (1 - \alpha) Y_R\big),

iterated from the run's rows (Chebyshev semi-iteration on sparse rows). The run keeps
``F`` only at each item's top-k inferred tags (``tags.parquet``), so ``F`` outside ``R`` is
that, plus each seeded item's value at its own seed tags, estimated by a few sweeps of the
same equation over the seed entries. Changes outside ``R`` (of order ``alpha`` per hop times
the weight share of the changed edges) are left out; the benchmark compares the result with a
full re-spread.

Confidences use the run's calibrator, rebuilt from the manifest (coefficients) and, for the
isotonic map, from the run's own (linear predictor, confidence) pairs; the item masses it needs
(``m = (1 - alpha)(I - alpha S)^{-1} Y 1``) are one propagation each, solved exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, TagScores, TagSet

__all__ = [
    "Solved",
    "item_mass",
    "local_spread",
    "recover_calibrator",
    "region_scores",
    "solve_region",
]

logger = logging.getLogger(__name__)


def _normalised(adjacency: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``S = D^{-1/2} W D^{-1/2}`` (isolated nodes: zero rows) and the degrees."""
    w = sp.csr_matrix(adjacency, dtype=np.float64)
    deg = np.asarray(w.sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    data = (inv[rows] * w.data) * inv[w.indices]  # the products diag @ W @ diag makes
    return sp.csr_matrix((data, w.indices, w.indptr), shape=w.shape), deg


def item_mass(
    graph: KnnGraph, seeds: TagSet, *, alpha: float, tol: float, max_iter: int = 1000
) -> np.ndarray:
    r"""Each item's propagated mass ``(1 - alpha)(I - alpha S)^{-1} Y 1``, as spread_tags has it.

    The spread of ``Y``'s row sums (:func:`ccgraph.propagate.spreading.spread_mass`, the
    solver and stopping rule :func:`~ccgraph.propagate.spread_tags` uses): one column over the
    whole graph, stopped when a sweep changes no item by ``tol``.
    """
    from ccgraph.propagate._graph import build_operator
    from ccgraph.propagate.spreading import spread_mass

    op = build_operator(graph.adjacency, alpha=alpha, dtype=np.dtype(np.float64), reorder="none")
    return spread_mass(op, sp.csr_matrix(seeds.matrix), tol=tol, max_iter=max_iter)


def recover_calibrator(
    describe: Mapping[str, Any] | None,
    inferred: pd.DataFrame,
    relative_mass: np.ndarray,
) -> Any:
    """The run's :class:`~ccgraph.propagate.Calibrator`, or None if the run had none.

    Parameters
    ----------
    describe
        ``Calibrator.describe()`` as the manifest keeps it (``stages.tags.calibrator``).
    inferred
        The run's inferred rows (``score``, ``rank``, ``confidence``).
    relative_mass
        Mass of each row's item relative to the run's mean mass.
    """
    from ccgraph.propagate.calibration import MIN_FIT_POINTS, Calibrator

    if not describe:
        return None
    method = str(describe.get("method", "constant"))
    coef = np.asarray(describe.get("coef", [0.0, 0.0, 0.0]), dtype=np.float64)
    intercept = float(describe.get("intercept", 0.0))
    base = float(describe.get("base_rate", 0.0))
    n_fit = int(describe.get("n_fit", 0))
    empty = np.zeros(0)
    cal = Calibrator(method, coef, intercept, empty, empty, base, n_fit, {})
    if method != "isotonic" or n_fit < MIN_FIT_POINTS or len(inferred) == 0:
        return cal
    z = cal.linear(inferred["score"].to_numpy(), inferred["rank"].to_numpy(), relative_mass)
    conf = inferred["confidence"].to_numpy(np.float64)
    iso_x, inverse = np.unique(np.round(z, 9), return_inverse=True)  # mean confidence per z
    mean = np.bincount(inverse, weights=conf) / np.bincount(inverse)
    iso_y = np.maximum.accumulate(mean)  # the isotonic map is non-decreasing
    return Calibrator(method, coef, intercept, iso_x, iso_y, base, n_fit, {})


def _seed_values(
    s: sp.csr_matrix, y: sp.csr_matrix, known: sp.csr_matrix, alpha: float, sweeps: int
) -> sp.csr_matrix:
    """Estimate ``F`` at the seed entries: sweeps of the spreading equation on those entries.

    ``known`` holds ``F`` elsewhere (the run's inferred scores, zero at the seed entries);
    seed entries start at ``(1 - alpha) Y``. A sweep is
    ``F_e = (1 - alpha) Y_e + alpha (K_e + sum_e' M_ee' F_e')`` over the seed entries ``e =
    (u, t)``, where ``K_e = sum_v S_uv known_vt`` is fixed and ``M_ee' = S_uv`` for the seed
    entries ``e' = (v, t)``, so the work is in the seed entries' neighbourhoods only.
    """
    from ccgraph.update._tag_kernels import csr_find

    n, n_t = y.shape
    yc = sp.csr_matrix(y)
    yc.sum_duplicates()
    e_row = np.repeat(np.arange(n), np.diff(yc.indptr))
    e_col, e_y = yc.indices.astype(np.int64), yc.data
    cnt = np.diff(s.indptr)[e_row]
    src = np.repeat(np.arange(len(e_row)), cnt)
    first = np.repeat(s.indptr[e_row] - (np.cumsum(cnt) - cnt), cnt)
    p = first + np.arange(len(src))
    v, w = s.indices[p], s.data[p]
    tag = e_col[src]
    kn = sp.csr_matrix(known)
    kn.sum_duplicates()
    at = csr_find(kn.indptr, kn.indices, v, tag)  # (v, tag) among the known entries
    hit = at >= 0
    fixed = np.bincount(src[hit], weights=w[hit] * kn.data[at[hit]], minlength=len(e_row))
    at = csr_find(yc.indptr, yc.indices, v, tag)  # (v, tag) among the seed entries
    hit = at >= 0
    m = sp.csr_matrix((w[hit], (src[hit], at[hit])), shape=(len(e_row), len(e_row)))
    est = (1.0 - alpha) * e_y
    for _ in range(sweeps):
        est = (1.0 - alpha) * e_y + alpha * (fixed + m @ est)
    return sp.csr_matrix((est, yc.indices, yc.indptr), shape=(n, n_t))


#: Most (row, tag) unknowns of the component-wise region solve; larger regions are solved on
#: sparse rows (:func:`_solve_sparse`).
FLAT_ENTRIES = 8_000_000
#: Up to this many (row, tag) cells, a region whose tags fill its rows is solved as one dense
#: block (a sparse x dense product per sweep), faster than the flat vector when most cells
#: are unknowns anyway (few large components, many tags: e.g. a half-catalog batch).
DENSE_ENTRIES = 2_000_000

Ranked = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # row, tag, score, rank


def _solve_region(
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
    pairs, one flat vector, and a sweep is one sparse matrix-vector product (Chebyshev
    semi-iteration, stopped when a plain sweep would change no entry by ``tol`` or more).
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
    """:func:`_chebyshev` on the flat layout of :func:`_solve_region` (the same sweeps).

    The operator is ``S_RR`` applied to each of a row's cells (row ``u`` owns ``width[u]``
    cells from ``start[u]``), swept by :func:`~ccgraph.update._tag_kernels.flat_sweep`
    without building it.
    """
    from ccgraph.propagate._solver import _omegas
    from ccgraph.update._tag_kernels import flat_sweep

    s = sp.csr_matrix(s_rr, dtype=np.float64)
    s.sum_duplicates()  # canonical: a row's neighbours summed in column order
    start = start.astype(np.int64)
    width = width.astype(np.int64)
    prev = f
    omegas = _omegas(alpha, "chebyshev")
    sweeps, done = 0, f.size == 0
    while not done and sweeps < max_iter:
        sweeps += 1
        nxt = np.empty_like(f)
        change = flat_sweep(
            s.indptr, s.indices, s.data, start, width, alpha, b, f, prev, next(omegas), nxt
        )
        done = change < tol
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
    """:func:`_solve_region` on the dense ``rows x active tags`` block (the same sweeps)."""
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
    """:func:`_solve_region` on sparse rows, for regions whose tags stay local (few per row).

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


def local_spread(
    graph: KnnGraph,
    seeds: TagSet,
    old_scores: sp.csr_matrix,
    old_confidence: sp.csr_matrix,
    region: np.ndarray,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    top_k: int,
    min_confidence: float,
    calibrator: Any,
    mass: np.ndarray,
    seed_sweeps: int = 5,
) -> TagScores:
    """Re-solve label spreading on the ``region`` rows; keep the run's rows elsewhere.

    Parameters
    ----------
    graph, seeds
        The graph and the seed tags after the update.
    old_scores, old_confidence
        The run's inferred scores and confidences as items x tags CSRs over ``graph`` rows and
        ``seeds.tags`` (zero rows for new items).
    region
        Boolean mask of the rows to re-solve (new items, items whose edges or seeds changed).
    alpha, tol, max_iter, top_k, min_confidence
        As in :func:`ccgraph.propagate.spread_tags`.
    calibrator
        :func:`recover_calibrator` (None: confidence = the tag's share of the item's mass).
    mass
        :func:`item_mass` of every item after the update.
    seed_sweeps
        Sweeps that estimate ``F`` at the seed entries outside the region.

    Returns
    -------
    TagScores
        ``params`` adds ``method="local"``, ``region`` (rows re-solved) and ``sweeps``.
    """
    n, n_t = graph.n_items, seeds.n_tags
    solved = solve_region(
        graph,
        seeds,
        old_scores,
        region,
        alpha=alpha,
        tol=tol,
        max_iter=max_iter,
        top_k=top_k,
        seed_sweeps=seed_sweeps,
    )
    (rows, tags, score, conf), params = _confident(solved, mass, calibrator, min_confidence)
    old = _canonical(old_scores)
    old_rows = np.repeat(np.arange(n), np.diff(old.indptr))
    stay = ~np.asarray(region, dtype=bool)[old_rows]
    o_conf = _values_at(old_confidence, old, stay)
    rows = solved.region[rows]
    # splice: both parts are sorted by row (the new rows' entries by tag), so a stable sort
    # merges them
    order = np.argsort(np.concatenate([old_rows[stay], rows]), kind="stable")
    indices = np.concatenate([old.indices[stay], tags])[order]
    values = np.concatenate([old.data[stay], score])[order]
    confs = np.concatenate([o_conf, conf])[order]
    counts = np.bincount(old_rows[stay], minlength=n) + np.bincount(rows, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    scores = sp.csr_matrix((values.astype(np.float32), indices, indptr), shape=(n, n_t))
    confidence = sp.csr_matrix((confs.astype(np.float32), indices, indptr), shape=(n, n_t))
    return TagScores(
        scores,
        confidence,
        seeds.ids,
        seeds.tags,
        params,
        converged=solved.converged,
        n_iter=solved.sweeps,
    )


def region_scores(
    solved: Solved, mass: np.ndarray, *, calibrator: Any, min_confidence: float
) -> TagScores:
    """:func:`local_spread`'s result on the region's rows only (``ids`` = the region's items).

    The rows outside the region are the run's; a caller that keeps them as they are (the
    update's tags table) needs only these.
    """
    (rows, tags, score, conf), params = _confident(solved, mass, calibrator, min_confidence)
    shape = (len(solved.region), len(solved.tag_names))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
    scores = sp.csr_matrix((score.astype(np.float32), tags, indptr), shape=shape)
    confidence = sp.csr_matrix((conf.astype(np.float32), tags, indptr), shape=shape)
    return TagScores(
        scores,
        confidence,
        solved.ids[solved.region],
        solved.tag_names,
        params,
        converged=solved.converged,
        n_iter=solved.sweeps,
    )


class Solved(NamedTuple):
    """The region solve of :func:`solve_region`: each region row's top-k (before confidences).

    ``rows`` index ``region`` (the graph rows re-solved) and are sorted, a row's entries by
    score (``rank`` 1 first); ``live`` marks the graph rows with edges; ``ids`` and
    ``tag_names`` are the graph's items and the seeds' tags; ``params`` those of the solve.
    """

    region: np.ndarray
    rows: np.ndarray
    tags: np.ndarray
    score: np.ndarray
    rank: np.ndarray
    sweeps: int
    converged: bool
    live: np.ndarray
    ids: np.ndarray
    tag_names: np.ndarray
    params: dict[str, Any]


def solve_region(
    graph: KnnGraph,
    seeds: TagSet,
    old_scores: sp.csr_matrix,
    region: np.ndarray,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    top_k: int,
    seed_sweeps: int = 5,
) -> Solved:
    """The spreading solve of :func:`local_spread` (arguments as there), before confidences.

    The item masses are needed only after it (:func:`region_scores`), so they can be
    computed beside it.
    """
    from ccgraph.update._tag_kernels import csr_find

    n, n_t = graph.n_items, seeds.n_tags
    s, deg = _normalised(graph.adjacency)
    y = sp.csr_matrix(seeds.matrix, dtype=np.float64)
    y.sum_duplicates()
    old = _canonical(old_scores)
    old_rows = np.repeat(np.arange(n), np.diff(old.indptr))
    on_seed = csr_find(y.indptr, y.indices, old_rows, old.indices) >= 0
    known = _entries(n, n_t, old_rows[~on_seed], old.indices[~on_seed], old.data[~on_seed])
    outside = sp.csr_matrix(known + _seed_values(s, y, known, alpha, seed_sweeps))
    r = np.flatnonzero(region)
    s_r = sp.csr_matrix(s[r])
    inside = region[s_r.indices]
    to_r = np.full(n, -1, dtype=np.int64)
    to_r[r] = np.arange(len(r))
    s_out = _entries(len(r), n, *_row_col(s_r, ~inside), s_r.data[~inside])
    s_rr = _entries(len(r), len(r), *_row_col(s_r, inside, to_r), s_r.data[inside])
    c = sp.csr_matrix(alpha * (s_out @ outside) + (1.0 - alpha) * y[r])
    f0 = sp.csr_matrix(outside[r])
    (rows, tags, score, rank), sweeps, converged = _solve_region(
        s_rr,
        c,
        f0,
        sp.csr_matrix(y[r], dtype=bool),
        alpha=alpha,
        tol=tol,
        max_iter=max_iter,
        top_k=top_k,
    )
    params = {
        "method": "local",
        "alpha": alpha,
        "tol": tol,
        "max_iter": max_iter,
        "top_k": top_k,
        "region": len(r),
        "sweeps": sweeps,
        "seed_sweeps": seed_sweeps,
    }
    return Solved(
        r, rows, tags, score, rank, sweeps, converged, deg > 0, graph.ids, seeds.tags, params
    )


def _confident(
    solved: Solved, mass: np.ndarray, calibrator: Any, min_confidence: float
) -> tuple[Ranked, dict[str, Any]]:
    """The solved entries whose confidence reaches ``min_confidence``, and the params.

    The entries come in canonical order: by row, then tag.
    """
    live = mass[solved.live]
    mass_ref = float(live.mean()) if live.size and live.mean() > 0 else 1.0
    rows, tags, score, rank = solved.rows, solved.tags, solved.score, solved.rank
    m = mass[solved.region[rows]]
    if calibrator is None:
        conf = np.clip(np.divide(score, m, out=np.zeros_like(score), where=m > 0), 0.0, 1.0)
    else:
        conf = calibrator.predict(score, rank, m / mass_ref)
    ok = conf >= min_confidence if min_confidence > 0 else np.ones(len(conf), dtype=bool)
    rows, tags, score, conf = rows[ok], tags[ok], score[ok], conf[ok]
    by_tag = np.argsort(rows * len(solved.tag_names) + tags, kind="stable")  # distinct keys
    solve = dict(solved.params)
    params = {
        **{k: solve.pop(k) for k in ("method", "alpha", "tol", "max_iter", "top_k")},
        "min_confidence": min_confidence,
        **solve,  # region, sweeps, seed_sweeps
        "mass_ref": mass_ref,
        "calibrator": "kept from the previous run" if calibrator is not None else None,
    }
    return (rows[by_tag], tags[by_tag], score[by_tag], conf[by_tag]), params


def _canonical(m: sp.spmatrix) -> sp.csr_matrix:
    """``m`` as a float64 CSR without duplicate entries."""
    out = sp.csr_matrix(m, dtype=np.float64)
    out.sum_duplicates()
    return out


def _entries(
    n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray, data: np.ndarray
) -> sp.csr_matrix:
    """Canonical CSR of distinct (row, col) entries."""
    out = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, n_cols))
    out.sum_duplicates()
    return out


def _row_col(
    m: sp.csr_matrix, mask: np.ndarray, col_map: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and (mapped) columns of the entries of ``m`` selected by ``mask``."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[mask]
    cols = m.indices[mask]
    return rows, (cols if col_map is None else col_map[cols])


def _values_at(other: sp.spmatrix, ref: sp.csr_matrix, mask: np.ndarray) -> np.ndarray:
    """``other`` at the entries of ``ref`` selected by ``mask`` (0 where ``other`` has none)."""
    o = sp.csr_matrix(other, dtype=np.float64)
    o.sum_duplicates()
    if np.array_equal(o.indptr, ref.indptr) and np.array_equal(o.indices, ref.indices):
        return o.data[mask]
    from ccgraph.update._tag_kernels import csr_find

    rows = np.repeat(np.arange(ref.shape[0]), np.diff(ref.indptr))[mask]
    at = csr_find(o.indptr, o.indices, rows, ref.indices[mask])
    return np.where(at >= 0, o.data[at] if len(o.data) else 0.0, 0.0)
