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
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, TagScores, TagSet

__all__ = ["item_mass", "local_spread", "recover_calibrator"]

logger = logging.getLogger(__name__)


def _normalised(adjacency: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``S = D^{-1/2} W D^{-1/2}`` (isolated nodes: zero rows) and the degrees."""
    w = sp.csr_matrix(adjacency, dtype=np.float64)
    deg = np.asarray(w.sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    return sp.csr_matrix(sp.diags(inv) @ w @ sp.diags(inv)), deg


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
    frame = pd.DataFrame({"z": np.round(z, 9), "c": conf}).groupby("z", sort=True)["c"].mean()
    iso_y = np.maximum.accumulate(frame.to_numpy())  # the isotonic map is non-decreasing
    return Calibrator(method, coef, intercept, frame.index.to_numpy(), iso_y, base, n_fit, {})


def _seed_values(
    s: sp.csr_matrix, y: sp.csr_matrix, known: sp.csr_matrix, alpha: float, sweeps: int
) -> sp.csr_matrix:
    """Estimate ``F`` at the seed entries: sweeps of the spreading equation on those entries.

    ``known`` holds ``F`` elsewhere (the run's inferred scores); seed entries start at
    ``(1 - alpha) Y``.
    """
    n = y.shape[0]
    rows = np.flatnonzero(np.diff(y.indptr) > 0)
    y_r = sp.csr_matrix(y[rows])
    pattern = sp.csr_matrix(y_r, dtype=bool)
    scatter = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), (n, len(rows)))
    s_r = sp.csr_matrix(s[rows])
    est = sp.csr_matrix((1.0 - alpha) * y_r)
    for _ in range(sweeps):
        f = known + scatter @ est
        est = sp.csr_matrix(((1.0 - alpha) * y_r + alpha * (s_r @ f)).multiply(pattern))
    return sp.csr_matrix(scatter @ est)


#: Dense working block of the region solve, in float64 entries (rows x tag columns).
BLOCK_ENTRIES = 8_000_000
#: Regions of more (row, active tag) entries are solved on sparse rows (tags stay local on
#: large graphs, so rows stay short), smaller ones on dense blocks (rows fill up on small ones).
DENSE_ENTRIES = 2_000_000


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
) -> tuple[pd.DataFrame, int, bool]:
    """Solve ``F = alpha S_RR F + c`` per dense block of tag columns; top-k per row.

    Chebyshev semi-iteration, as :func:`_solve_sparse`. Only columns with a non-zero in ``c``
    or ``f0`` are solved (the others stay zero). Returns the rows' top-k non-seed entries
    (``row``, ``tag``, ``score``, ``rank``), the most sweeps a block used and whether every
    block converged.
    """
    from ccgraph.propagate._solver import _omegas

    n_r = s_rr.shape[0]
    active = np.flatnonzero(
        (np.diff(sp.csc_matrix(c).indptr) > 0) | (np.diff(sp.csc_matrix(f0).indptr) > 0)
    )
    if n_r * len(active) > DENSE_ENTRIES:
        return _solve_sparse(
            s_rr, c, f0, seeded, alpha=alpha, tol=tol, max_iter=max_iter, top_k=top_k
        )
    width = int(max(1, min(len(active), BLOCK_ENTRIES // max(1, n_r))))
    c_csc, f_csc, seed_csc = sp.csc_matrix(c), sp.csc_matrix(f0), sp.csc_matrix(seeded)
    parts = []
    most, converged = 0, True
    for start in range(0, len(active), width):
        cols = active[start : start + width]
        cb = c_csc[:, cols].toarray()
        f = f_csc[:, cols].toarray()
        done = False
        sweeps = 0
        prev = f
        omegas = _omegas(alpha, "chebyshev")
        while not done and sweeps < max_iter:
            sweeps += 1
            omega = next(omegas)
            y = alpha * (s_rr @ f) + cb
            done = float(np.abs(y - f).max(initial=0.0)) < tol
            prev, f = f, omega * y + (1.0 - omega) * prev
        most, converged = max(most, sweeps), converged and done
        f[seed_csc[:, cols].toarray()] = 0.0  # an item's own seeds are not inferred
        k = min(top_k, len(cols))
        top = (
            np.argpartition(-f, k - 1, axis=1)[:, :k]
            if k < len(cols)
            else np.tile(np.arange(len(cols)), (n_r, 1))
        )
        vals = np.take_along_axis(f, top, axis=1)
        rows = np.repeat(np.arange(n_r), top.shape[1])
        keep = vals.ravel() > 0
        parts.append(
            pd.DataFrame(
                {"row": rows[keep], "tag": cols[top.ravel()[keep]], "score": vals.ravel()[keep]}
            )
        )
    frame = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"row": [], "tag": [], "score": []})
    )
    return _ranked(frame, top_k), most, converged


def _ranked(frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """Keep each row's ``top_k`` entries by score (ties: smaller tag index) with their rank."""
    frame = frame.sort_values(["row", "score", "tag"], ascending=[True, False, True], kind="stable")
    frame["rank"] = frame.groupby("row").cumcount() + 1
    frame = frame[frame["rank"] <= top_k].reset_index(drop=True)
    return frame.astype({"row": np.int64, "tag": np.int64, "score": np.float64})


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
) -> tuple[pd.DataFrame, int, bool]:
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
    frame = pd.DataFrame({"row": f.row, "tag": f.col, "score": f.data})
    return _ranked(frame[frame["score"] > 0], top_k), sweeps, converged


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
    n = graph.n_items
    s, deg = _normalised(graph.adjacency)
    y = sp.csr_matrix(seeds.matrix, dtype=np.float64)
    seeded = sp.csr_matrix(y, dtype=bool)
    known = sp.csr_matrix(old_scores, dtype=np.float64)
    known = sp.csr_matrix(known - known.multiply(seeded))
    outside = sp.csr_matrix(known + _seed_values(s, y, known, alpha, seed_sweeps))
    r = np.flatnonzero(region)
    keep = np.ones(n, dtype=bool)
    keep[r] = False
    kept = sp.diags(keep.astype(np.float64))
    s_r = sp.csr_matrix(s[r])
    c = sp.csr_matrix(alpha * (s_r @ (kept @ outside)) + (1.0 - alpha) * y[r])
    s_rr = sp.csr_matrix(s_r[:, r])
    f0 = sp.csr_matrix(outside[r])
    frame, sweeps, converged = _solve_region(
        s_rr, c, f0, seeded[r], alpha=alpha, tol=tol, max_iter=max_iter, top_k=top_k
    )
    frame["row"] = r[frame["row"].to_numpy()]
    live = mass[deg > 0]
    mass_ref = float(live.mean()) if live.size and live.mean() > 0 else 1.0
    m = mass[frame["row"].to_numpy()]
    score = frame["score"].to_numpy()
    if calibrator is None:
        conf = np.clip(np.divide(score, m, out=np.zeros_like(score), where=m > 0), 0.0, 1.0)
    else:
        conf = calibrator.predict(score, frame["rank"].to_numpy(), m / mass_ref)
    ok = conf >= min_confidence if min_confidence > 0 else np.ones(len(conf), dtype=bool)
    old = sp.csr_matrix(old_scores).tocoo()
    stay = keep[old.row]
    o_rows, o_cols = old.row[stay], old.col[stay]
    o_conf = (
        np.asarray(sp.csr_matrix(old_confidence)[o_rows, o_cols], dtype=np.float64).ravel()
        if len(o_rows)
        else np.zeros(0)
    )
    rows = np.concatenate([o_rows, frame["row"].to_numpy()[ok]])
    cols = np.concatenate([o_cols, frame["tag"].to_numpy()[ok]])
    shape = (n, seeds.n_tags)
    scores = sp.csr_matrix(
        (np.concatenate([old.data[stay], score[ok]]).astype(np.float32), (rows, cols)), shape
    )
    confidence = sp.csr_matrix(
        (np.concatenate([o_conf, conf[ok]]).astype(np.float32), (rows, cols)), shape
    )
    params = {
        "method": "local",
        "alpha": alpha,
        "tol": tol,
        "max_iter": max_iter,
        "top_k": top_k,
        "min_confidence": min_confidence,
        "region": len(r),
        "sweeps": sweeps,
        "seed_sweeps": seed_sweeps,
        "mass_ref": mass_ref,
        "calibrator": "kept from the previous run" if calibrator is not None else None,
    }
    return TagScores(
        scores, confidence, seeds.ids, seeds.tags, params, converged=converged, n_iter=sweeps
    )
