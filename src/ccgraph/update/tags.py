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
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, TagScores, TagSet
from ccgraph.exceptions import DataQualityWarning
from ccgraph.update._region_solve import Ranked, solve_system
from ccgraph.update._tag_operator import Degrees, _normalised, degrees

__all__ = [
    "Degrees",
    "Solved",
    "degrees",
    "item_mass",
    "local_spread",
    "recover_calibrator",
    "region_scores",
    "solve_region",
]

logger = logging.getLogger(__name__)


def item_mass(
    graph: KnnGraph,
    seeds: TagSet,
    *,
    alpha: float,
    tol: float,
    max_iter: int = 1000,
    deg: Degrees | None = None,
) -> np.ndarray:
    r"""Each item's propagated mass ``(1 - alpha)(I - alpha S)^{-1} Y 1``, as spread_tags has it.

    The spread of ``Y``'s row sums (:func:`ccgraph.propagate.spreading.spread_mass`, the
    solver and stopping rule :func:`~ccgraph.propagate.spread_tags` uses): one column over the
    whole graph, stopped when a sweep changes no item by ``tol``. ``deg``: the graph's
    :func:`degrees`, if the caller has them. The sweeps run in one numba call
    (:func:`~ccgraph.update._tag_kernels.mass_sweeps`, the solver's arithmetic).
    """
    from ccgraph.propagate._graph import build_operator
    from ccgraph.update._tag_kernels import mass_sweeps

    d = degrees(graph.adjacency) if deg is None else deg
    op = build_operator(
        graph.adjacency, alpha=alpha, dtype=np.dtype(np.float64), reorder="none", degrees=d.deg
    )
    y = sp.csr_matrix(seeds.matrix)
    rs = np.asarray(y.sum(axis=1), dtype=np.float64).reshape(-1, 1) * (1.0 - op.alpha)
    if op.n == 0:
        return np.zeros(0)
    b = np.ascontiguousarray(rs[:, 0], dtype=np.float64)
    m = op.m
    x, _, _ = mass_sweeps(m.indptr, m.indices, m.data, b, op.alpha, float(tol), int(max_iter))
    return np.maximum(x, 0.0)


def recover_calibrator(
    describe: Mapping[str, Any] | None,
    inferred: pd.DataFrame,
    relative_mass: np.ndarray,
    observed: np.ndarray | None = None,
) -> Any:
    """The run's :class:`~ccgraph.propagate.Calibrator`, or None if the run had none.

    Parameters
    ----------
    describe
        ``Calibrator.describe()`` as the manifest keeps it (``stages.tags.calibrator``); a
        ``tagged`` entry is the map of the items with observed tags (a description without
        one, as older runs wrote, is a one-map calibrator).
    inferred
        The run's inferred rows (``score``, ``rank``, ``confidence``).
    relative_mass
        Mass of each row's item relative to the run's mean mass.
    observed
        Number of observed tags of each row's item (which map made its confidence); None:
        all rows read as the untagged items'.
    """
    if not describe:
        return None
    if not isinstance(describe, Mapping):
        # written by an update that kept only a note ("kept from the previous run"): the
        # coefficients are lost, so confidences fall back to each tag's share of the mass
        warnings.warn(
            f"the run's manifest keeps no calibrator coefficients (stages.tags.calibrator = "
            f"{describe!r}); inferred confidences of the changed items are the tags' share of "
            "their item's spreading mass. Rebuild the run (`ccgraph run`) to calibrate again",
            DataQualityWarning,
            stacklevel=2,
        )
        return None
    rel = np.asarray(relative_mass, dtype=np.float64)
    has = np.zeros(len(inferred), dtype=bool) if observed is None else np.asarray(observed) > 0
    tagged = describe.get("tagged")
    if not isinstance(tagged, Mapping):
        return _recover_one(describe, inferred, rel)
    main = _recover_one(describe, inferred[~has], rel[~has])
    return replace(main, tagged=_recover_one(tagged, inferred[has], rel[has]))


def _recover_one(describe: Mapping[str, Any], inferred: pd.DataFrame, rel: np.ndarray) -> Any:
    """One map: coefficients from ``describe``, isotonic knots read off its own rows."""
    from ccgraph.propagate.calibration import MIN_FIT_POINTS, Calibrator

    method = str(describe.get("method", "constant"))
    coef = np.asarray(describe.get("coef", [0.0, 0.0, 0.0]), dtype=np.float64)
    intercept = float(describe.get("intercept", 0.0))
    base = float(describe.get("base_rate", 0.0))
    n_fit = int(describe.get("n_fit", 0))
    empty = np.zeros(0)
    fitted = ("method", "coef", "intercept", "base_rate", "n_fit", "tagged")
    params = {k: v for k, v in describe.items() if k not in fitted}  # kept for the next update
    cal = Calibrator(method, coef, intercept, empty, empty, base, n_fit, params)
    if method != "isotonic" or n_fit < MIN_FIT_POINTS or len(inferred) == 0:
        return cal
    z = cal.linear(inferred["score"].to_numpy(), inferred["rank"].to_numpy(), rel)
    conf = inferred["confidence"].to_numpy(np.float64)
    iso_x, inverse = np.unique(np.round(z, 9), return_inverse=True)  # mean confidence per z
    mean = np.bincount(inverse, weights=conf) / np.bincount(inverse)
    iso_y = np.maximum.accumulate(mean)  # the isotonic map is non-decreasing
    return Calibrator(method, coef, intercept, iso_x, iso_y, base, n_fit, params)


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
    from ccgraph.update._tag_kernels import seed_sweeps

    n, n_t = y.shape
    yc = _canonical(y)
    kn = _canonical(known)
    if not s.has_canonical_format:  # the sums run over S's rows in column order
        s = _canonical(s)
    est = seed_sweeps(
        s.indptr, s.indices, s.data, yc.indptr, yc.indices, yc.data,
        kn.indptr, kn.indices, kn.data, float(alpha), int(sweeps),
    )  # fmt: skip
    return sp.csr_matrix((est, yc.indices, yc.indptr), shape=(n, n_t))


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
    observed: np.ndarray | None = None  # observed tags per graph row (the calibrator's map)


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
    deg: Degrees | None = None,
) -> Solved:
    """The spreading solve of :func:`local_spread` (arguments as there), before confidences.

    The item masses are needed only after it (:func:`region_scores`), so they can be
    computed beside it (``deg``: the graph's :func:`degrees`, if the caller has them).
    """
    from ccgraph.update._tag_kernels import csr_find, split_rows

    n, n_t = graph.n_items, seeds.n_tags
    s, degree = _normalised(graph.adjacency, deg)
    y = sp.csr_matrix(seeds.matrix, dtype=np.float64)
    y.sum_duplicates()
    old = _canonical(old_scores)
    old_rows = np.repeat(np.arange(n), np.diff(old.indptr))
    on_seed = csr_find(y.indptr, y.indices, old_rows, old.indices) >= 0
    known = _entries(n, n_t, old_rows[~on_seed], old.indices[~on_seed], old.data[~on_seed])
    outside = sp.csr_matrix(known + _seed_values(s, y, known, alpha, seed_sweeps))
    r = np.flatnonzero(region)
    to_r = np.full(n, -1, dtype=np.int64)
    to_r[r] = np.arange(len(r))
    o_ptr, o_idx, o_val, i_ptr, i_idx, i_val = split_rows(s.indptr, s.indices, s.data, r, to_r)
    s_out = _canonical(sp.csr_matrix((o_val, o_idx, o_ptr), shape=(len(r), n)))
    s_rr = _canonical(sp.csr_matrix((i_val, i_idx, i_ptr), shape=(len(r), len(r))))
    c = sp.csr_matrix(alpha * (s_out @ outside) + (1.0 - alpha) * y[r])
    f0 = sp.csr_matrix(outside[r])
    (rows, tags, score, rank), sweeps, converged = solve_system(
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
    observed = np.diff(y.indptr)
    return Solved(
        r, rows, tags, score, rank, sweeps, converged, degree > 0, graph.ids, seeds.tags, params,
        observed,
    )  # fmt: skip


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
        obs = None if solved.observed is None else solved.observed[solved.region[rows]]
        conf = calibrator.predict(score, rank, m / mass_ref, obs)
    ok = conf >= min_confidence if min_confidence > 0 else np.ones(len(conf), dtype=bool)
    rows, tags, score, conf = rows[ok], tags[ok], score[ok], conf[ok]
    by_tag = np.argsort(rows * len(solved.tag_names) + tags, kind="stable")  # distinct keys
    solve = dict(solved.params)
    params = {
        **{k: solve.pop(k) for k in ("method", "alpha", "tol", "max_iter", "top_k")},
        "min_confidence": min_confidence,
        **solve,  # region, sweeps, seed_sweeps
        "mass_ref": mass_ref,
        # the run's calibrator as it describes itself, so a later update recovers it again
        "calibrator": calibrator.describe() if calibrator is not None else None,
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
    """Canonical CSR of the (row, col) entries, repeated ones summed (as a COO conversion).

    Entries that come by row are laid out directly (what the conversion would do); ``cols``
    and ``data`` may then be sorted in place.
    """
    if len(rows) and not (rows[1:] >= rows[:-1]).all():
        out = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, n_cols))
    else:
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        out = sp.csr_matrix((data, cols, indptr), shape=(n_rows, n_cols))
    out.sum_duplicates()
    return out


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
