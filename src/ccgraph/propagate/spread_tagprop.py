"""``spread_tagprop``: label spreading blended with TagProp's votes, as a run's tag stage.

:func:`~ccgraph.propagate.spread_tags` reaches items whose nearest tagged items are several
hops away; TagProp (:func:`~ccgraph.propagate.tagprop.tagprop_votes`, neighbours searched
among the tagged items in the embedding space) is sharp where a tagged near-duplicate exists.
:func:`spread_tagprop_tags` mixes their row-normalised scores with a weight chosen (or given)
on held-out *visible* tags. Items with observed tags get a probability from an isotonic fit of
the blended score (the pool-adjacent-violators fit of :mod:`ccgraph.propagate.calibration`) on
the same holdout; items without get the same blend of the two methods' own probabilities.
The holdout helpers here are shared with the evaluation harness.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator, derive_seed
from ccgraph._validation import check_float, check_int
from ccgraph.containers import Embeddings, KnnGraph, TagScores, TagSet, check_same_ids
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.propagate.tagprop import (
    Neighbors,
    blend_scores,
    neighbors_from_embeddings,
    tagprop_proposals,
    top_k_sparse,
)

__all__ = [
    "WEIGHT_GRID",
    "Holdout",
    "choose_on_holdout",
    "drop_neighbors",
    "holdout_map",
    "seeded_holdout",
    "spread_tagprop_tags",
    "tagprop_holdout",
]

log = logging.getLogger(__name__)

#: Candidate TagProp weights of ``weight="auto"`` (0 = spreading only, 1 = TagProp only).
WEIGHT_GRID = tuple(float(w) for w in np.round(np.linspace(0, 1, 11), 2))
#: Below this many held-out predictions a confidence map is the constant base rate.
MIN_FIT_POINTS = 30

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True, eq=False)
class Holdout:
    """Visible tags split into what the validation run sees and what it must recover.

    Attributes
    ----------
    seeds
        The visible tags minus the held-out ones (same ids and vocabulary).
    truth
        CSR ``[n_items, n_tags]`` of the held-out (item, tag) pairs.
    cold, partial
        Held-out items that lost all their tags, and those that lost only some.
    """

    seeds: TagSet
    truth: sp.csr_matrix
    cold: np.ndarray
    partial: np.ndarray


def tagprop_holdout(
    seeds: TagSet, *, fraction: float = 0.2, tag_fraction: float = 0.3, rng: RngLike = None
) -> Holdout:
    """Hold out ``fraction`` of the tagged items: half lose every tag, half ``tag_fraction``.

    The two halves mirror the two ways an item's tags go missing (cold start; some tags
    missing). A "partial" item keeps at least one tag, so items with a single tag go cold.
    """
    fraction = check_float("fraction", fraction, low=0, high=1, low_inclusive=False)
    tag_fraction = check_float(
        "tag_fraction", tag_fraction, low=0, high=1, low_inclusive=False, high_inclusive=False
    )
    gen = as_generator(rng)
    y = sp.csr_matrix(seeds.matrix > 0, dtype=np.float64)
    tagged = np.flatnonzero(seeds.is_tagged)
    perm = gen.permutation(tagged)
    n_val = max(1, round(fraction * len(tagged)))
    val = perm[:n_val]
    counts = np.diff(y.indptr)
    half = val[n_val // 2 :]
    partial = np.sort(half[counts[half] >= 2])
    cold = np.sort(np.setdiff1d(val, partial))
    hide = sp.lil_matrix(y.shape, dtype=np.float64)
    for i in cold:
        hide[i, y.indices[y.indptr[i] : y.indptr[i + 1]]] = 1.0
    for i in partial:
        cols = y.indices[y.indptr[i] : y.indptr[i + 1]]
        m = min(max(1, round(tag_fraction * len(cols))), len(cols) - 1)
        hide[i, gen.choice(cols, size=m, replace=False)] = 1.0
    truth = hide.tocsr()
    kept = sp.csr_matrix(seeds.matrix - seeds.matrix.multiply(truth))
    kept.eliminate_zeros()
    return Holdout(TagSet(kept, seeds.ids, seeds.tags), truth, cold, partial)


def drop_neighbors(neighbors: Neighbors, rows: np.ndarray) -> Neighbors:
    """The same lists without the neighbours in ``rows`` (now untagged: nothing to vote)."""
    gone = np.isin(neighbors.index, rows)
    index = np.where(gone, -1, neighbors.index)
    sim = np.where(gone, 0.0, neighbors.similarity).astype(neighbors.similarity.dtype)
    return Neighbors(index, sim, neighbors.ids)


def holdout_map(
    pred: np.ndarray | sp.spmatrix,
    truth: sp.csr_matrix,
    rows: np.ndarray,
    *,
    seen: sp.spmatrix | None = None,
) -> float:
    """Mean over ``rows`` of the average precision of ``pred`` for the held-out ``truth``.

    A sparse ``pred`` ranks only its stored entries (a relevant tag it leaves out counts as
    missed, as the harness scores); ``seen`` entries (visible tags) are not ranked.
    """
    if not len(rows):
        return float("nan")
    if sp.issparse(pred):
        sub = sp.csr_matrix(pred)[rows]
        p = np.full(sub.shape, -np.inf)
        p[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = sub.data
    else:
        p = np.array(pred[rows], dtype=np.float64)
    if seen is not None:
        p[sp.csr_matrix(seen)[rows].toarray() > 0] = -np.inf
    y = truth[rows].toarray() > 0
    order = np.argsort(-p, axis=1, kind="stable")
    hits = np.take_along_axis(y & np.isfinite(p), order, axis=1)
    prec = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return float(((prec * hits).sum(axis=1) / np.maximum(y.sum(axis=1), 1)).mean())


def seeded_holdout(
    seeds: TagSet, *, fraction: float, tag_fraction: float, rng: RngLike
) -> tuple[int, Holdout]:
    """The spreading's seed and a :func:`tagprop_holdout` drawn from it.

    An int ``rng`` is the spreading's seed as given (so the blend at :math:`w = 0` is the
    spreading of the same seed exactly); a Generator or None gives a derived seed.
    """
    spread_seed = rng if isinstance(rng, (int, np.integer)) else derive_seed(as_generator(rng))
    hold = tagprop_holdout(
        seeds,
        fraction=fraction,
        tag_fraction=tag_fraction,
        rng=derive_seed(as_generator(spread_seed)),
    )
    return int(spread_seed), hold


def choose_on_holdout(
    hold: Holdout,
    predict: Callable[[K], np.ndarray | sp.spmatrix],
    grid: Sequence[K],
    *,
    seen: sp.spmatrix | None = None,
) -> tuple[K, dict[K, float]]:
    """The grid point whose predictions best recover the held-out tags, and every score.

    A point's score is the mean of the cold and the partial items' :func:`holdout_map`; the
    first best point wins ties (grid order).
    """
    scores: dict[K, float] = {}
    for point in grid:
        pred = predict(point)
        parts = [holdout_map(pred, hold.truth, r, seen=seen) for r in (hold.cold, hold.partial)]
        scores[point] = float(np.nanmean(parts)) if not np.isnan(parts).all() else 0.0
    return max(grid, key=lambda g: scores[g]), scores


def _isotonic_map(score: np.ndarray, label: np.ndarray) -> dict[str, Any]:
    """Isotonic (PAV) knots of P(correct) on the blended score; the base rate below 30 points."""
    from ccgraph.propagate.calibration import _isotonic

    base = float(label.mean()) if len(label) else 0.0
    if len(label) < MIN_FIT_POINTS or base in (0.0, 1.0):
        return {"method": "constant", "base_rate": base, "n_fit": len(label), "x": [], "y": []}
    x, y = _isotonic(score.astype(np.float64), label.astype(np.float64))
    return {
        "method": "isotonic",
        "base_rate": base,
        "n_fit": len(label),
        "x": x.tolist(),
        "y": y.tolist(),
    }


def _apply_map(m: Mapping[str, Any], score: np.ndarray) -> np.ndarray:
    if m["method"] == "constant":
        return np.full(score.shape, m["base_rate"])
    from ccgraph.propagate.calibration import _interp

    return _interp(np.asarray(score, dtype=np.float64), np.asarray(m["x"]), np.asarray(m["y"]))


def _fit_maps(pred: sp.csr_matrix, hold: Holdout) -> dict[str, dict[str, Any]]:
    """The map of the items with observed tags, fitted on the held-out partial rows."""
    out = {}
    for name, rows in (("tagged", hold.partial),):
        sub = pred[rows].tocoo()
        truth = sp.csr_matrix(hold.truth[rows])
        label = (np.asarray(truth[sub.row, sub.col]).ravel() if sub.nnz else np.zeros(0)) > 0
        out[name] = _isotonic_map(sub.data, label)
    return out


def _spread(
    graph: KnnGraph,
    seeds: TagSet,
    kwargs: Mapping[str, Any],
    top_k: int,
    rng: Any,
    *,
    calibrator: str | None = None,
):
    from ccgraph.propagate import spread_tags

    args = {**kwargs, "calibrator": calibrator, "min_confidence": 0.0, "top_k": top_k, "rng": rng}
    return spread_tags(graph, seeds, **args)


def spread_tagprop_tags(
    graph: KnnGraph,
    features: Embeddings | Neighbors,
    seeds: TagSet,
    *,
    weight: float | str = "auto",
    k: int = 15,
    spread_kwargs: Mapping[str, Any] | None = None,
    top_k: int = 10,
    min_confidence: float = 0.0,
    val_fraction: float = 0.2,
    val_tag_fraction: float = 0.3,
    rng: RngLike = None,
) -> TagScores:
    r"""Tags from label spreading blended with TagProp, with calibrated confidences.

    Parameters
    ----------
    graph
        The similarity graph (spreading).
    features
        Dense embeddings whose ``k`` nearest *tagged* items vote (a run passes its dense
        modalities fused by :func:`~ccgraph.propagate.tagprop.fused_features`: each
        L2-normalised, concatenated, as the evaluation harness does), or ready neighbour lists.
    seeds
        Observed tags (never changed: an item's own seeds are not proposed).
    weight
        TagProp's weight :math:`w` in [0, 1], or ``"auto"``: the best of
        :data:`WEIGHT_GRID` on the holdout.
    k
        TagProp's neighbours per item (ignored for ready neighbour lists).
    spread_kwargs
        Keyword arguments of :func:`~ccgraph.propagate.spread_tags` (``alpha``, ``tol``,
        ``cluster_prior`` with ``partition``, ...); its own calibrator is not run.
    top_k
        Tags kept per item; each method proposes its own ``top_k``.
    min_confidence
        Inferred tags below this calibrated confidence are dropped.
    val_fraction, val_tag_fraction
        :func:`tagprop_holdout`: share of the tagged items held out (half lose all their
        tags, half ``val_tag_fraction`` of them); both methods rerun on what it leaves.
    rng
        Seeds the holdout (an int seed reaches ``spread_tags`` as given).

    Returns
    -------
    TagScores
        ``scores`` the blend; ``confidence``: for items with observed tags, the isotonic map
        of the blend fitted on the held-out items that lost some of their tags; for items
        without, :math:`(1-w)\,C_{it} + w\,P_{it}`, the spreading's own calibrated
        confidence and TagProp's vote (see Notes); ``params``: the spreading's, plus
        ``tagprop_weight`` (the :math:`w` used) and ``tagprop`` (held-out MAP per weight,
        ``sigma``, ``k``, the map).

    Notes
    -----
    :math:`s(i, t) = (1-w)\,F_{it} / \sum_u F_{iu} + w\,P_{it} / \sum_u P_{iu}` over each
    method's top ``top_k`` proposals, :math:`F` the spread scores, :math:`P` TagProp's votes.
    An item with observed tags gets the confidence :math:`g(s)`, :math:`g` the non-decreasing
    least-squares fit of the held-out pairs' correctness on their blended score (pool
    adjacent violators). An item without gets :math:`(1-w)\,C_{it} + w\,P_{it}`, :math:`C`
    the spreading's calibrated confidence (``calibrator="auto"``): a map refitted on the
    held-out items that lost all their tags runs high, because in a run those keep their
    tags' text in their embedding where a really untagged item has none (on the Openverse
    cold-start protocol ECE@10 0.113 against 0.053; docs/evaluation.md).

    References
    ----------
    Guillaumin, Mensink, Verbeek, Schmid (2009). TagProp. ICCV. Zhou, Bousquet, Lal, Weston,
    Schölkopf (2004). Learning with local and global consistency. NIPS. Zadrozny, Elkan
    (2002). Transforming classifier scores into accurate multiclass probability estimates. KDD.

    Examples
    --------
    >>> from ccgraph.graph import build_knn_graph
    >>> gen = np.random.default_rng(0)
    >>> x = np.repeat(np.eye(4), 10, axis=0) + 0.05 * gen.normal(size=(40, 4))
    >>> emb = Embeddings.from_array(x.astype("float32"), [f"i{j}" for j in range(40)])
    >>> g = build_knn_graph(emb, k=5, rng=0)
    >>> rows = [(f"i{j}", f"t{j // 10}") for j in range(40) if j % 10 < 6]
    >>> import pandas as pd
    >>> seeds = TagSet.from_frame(pd.DataFrame(rows, columns=["id", "tag"]), emb.ids)
    >>> out = spread_tagprop_tags(g, emb, seeds, weight=0.5, k=5, top_k=1, rng=0)
    >>> out.tags[out.scores[8].indices].tolist(), out.params["tagprop_weight"]
    (['t0'], 0.5)
    """
    check_same_ids(graph.ids, seeds.ids, what="graph and seed tags")
    top_k = check_int("top_k", top_k, low=1)
    min_confidence = check_float("min_confidence", min_confidence, low=0, high=1)
    if isinstance(weight, str):
        if weight != "auto":
            raise ParameterError(f"`weight` must be 'auto' or a number in [0, 1]; got {weight!r}")
        grid: Sequence[float] = WEIGHT_GRID
    else:
        grid = (check_float("weight", weight, low=0, high=1),)
    if int(seeds.is_tagged.sum()) < 5 or seeds.n_tags == 0:
        raise InputError(
            f"spread_tagprop needs at least 5 tagged items; got {int(seeds.is_tagged.sum())}"
        )
    neighbors = (
        features
        if isinstance(features, Neighbors)
        else neighbors_from_embeddings(
            features, k=check_int("k", k, low=1), candidates=seeds.is_tagged
        )
    )
    check_same_ids(neighbors.ids, seeds.ids, what="neighbours and seed tags")
    kwargs = dict(spread_kwargs or {})
    spread_seed, hold = seeded_holdout(
        seeds, fraction=val_fraction, tag_fraction=val_tag_fraction, rng=rng
    )
    sv = _spread(graph, hold.seeds, kwargs, top_k, spread_seed).scores
    tv, _ = tagprop_proposals(drop_neighbors(neighbors, hold.cold), hold.seeds, top_k=top_k)
    n = len(seeds.ids)

    def held_out(w: float) -> sp.csr_matrix:
        mix = blend_scores(sv, tv, weight=w)
        return top_k_sparse(
            lambda r: mix[r].toarray(), n, hold.seeds, top_k=top_k, positive_only=True
        )

    best, holdout_scores = choose_on_holdout(hold, held_out, grid)
    maps = _fit_maps(held_out(best), hold)
    log.info("spread_tagprop: TagProp weight %g (held-out MAP %.3f)", best, holdout_scores[best])
    sf = _spread(graph, seeds, kwargs, top_k, spread_seed, calibrator="auto")
    tf, fit = tagprop_proposals(neighbors, seeds, top_k=top_k)
    mix = blend_scores(sf.scores, tf, weight=best)
    out = top_k_sparse(lambda r: mix[r].toarray(), n, seeds, top_k=top_k, positive_only=True)
    rows = np.repeat(np.arange(n), np.diff(out.indptr))
    tagged = np.asarray(seeds.is_tagged, dtype=bool)[rows]
    conf = np.empty(out.nnz, dtype=np.float64)
    # items without observed tags: the same blend of the two methods' probabilities (the
    # spreading's own calibrated confidence, TagProp's vote); a map refitted on the held-out
    # items that lost all their tags runs high, since those keep their tags' text in their
    # embedding (docs/evaluation.md)
    r, c = rows[~tagged], out.indices[~tagged]
    cold = (1 - best) * np.asarray(sp.csr_matrix(sf.confidence)[r, c]).ravel()
    conf[~tagged] = cold + best * np.asarray(sp.csr_matrix(tf)[r, c]).ravel()
    conf[tagged] = _apply_map(maps["tagged"], out.data[tagged])
    keep = conf >= min_confidence
    scores = sp.csr_matrix((out.data[keep], (rows[keep], out.indices[keep])), shape=out.shape)
    confidence = sp.csr_matrix(
        (np.clip(conf[keep], 0, 1).astype(np.float32), (rows[keep], out.indices[keep])),
        shape=out.shape,
    )
    params = {
        **dict(sf.params),
        "top_k": top_k,
        "min_confidence": min_confidence,
        "tagprop_weight": float(best),
        "tagprop": {
            "holdout_map": holdout_scores[best],
            "grid": [[float(w), holdout_scores[w]] for w in grid],
            "sigma": fit["sigma"],
            "k": neighbors.k,
            "calibration": maps,
        },
    }
    return TagScores(
        scores.astype(np.float32),
        confidence,
        seeds.ids,
        seeds.tags,
        params,
        converged=sf.converged,
        n_iter=sf.n_iter,
    )
