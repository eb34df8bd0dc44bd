"""Stage calls of an update that need the run and the config: duplicates, tags, popularity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.config import Config
from ccgraph.containers import Catalog, Embeddings, KnnGraph, RunResult
from ccgraph.update._persist import member

__all__ = [
    "RunTagEntries",
    "duplicates",
    "local_tags",
    "previous_popularity",
    "run_tag_entries",
]


def local_tags(
    old: RunResult,
    run_cat: Catalog,
    graph: KnnGraph,
    seeds: Any,
    changed: np.ndarray,
    cfg: Config,
    previous: Mapping[str, Any],
    entries: RunTagEntries | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Tag spreading re-solved within ``update.tag_hops`` edges of the changed items.

    Returns the region's inferred tags (a :class:`~ccgraph.containers.TagScores` over the
    region's items, :func:`ccgraph.update.tags.region_scores`), the region (a mask over
    ``graph.ids``) and the row of ``graph.ids`` of every row of the run's tags table (-1:
    removed), which :func:`ccgraph.update._output.splice_tags` takes as ``old_pos``.
    ``entries`` is :func:`run_tag_entries` ``(old, graph.ids, seeds)``, if already made.
    """
    from ccgraph._lane import TAGS_MASS
    from ccgraph.update._threads import start, wait_for
    from ccgraph.update.clusters import neighbourhood
    from ccgraph.update.tags import (
        degrees,
        item_mass,
        recover_calibrator,
        region_scores,
        solve_region,
    )

    t = cfg.propagate.tags
    # the seeds' mass over the whole graph (one propagation; the confidences need it, the
    # region solve does not) is computed beside the region solve
    deg = degrees(graph.adjacency)  # shared by both
    job = start(
        item_mass, graph, seeds, alpha=t.alpha, tol=t.tol, max_iter=t.max_iter, deg=deg,
        name="item_mass", priority=TAGS_MASS,
    )  # fmt: skip
    table = old.tags
    if entries is None:
        entries = run_tag_entries(old, graph.ids, seeds)
    old_pos, inferred, rows, score = entries.old_pos, entries.inferred, entries.rows, entries.score
    region = neighbourhood(graph.adjacency, changed, cfg.update.tag_hops)
    solved = solve_region(
        graph,
        seeds,
        entries.old_scores,
        region,
        alpha=t.alpha,
        tol=t.tol,
        max_iter=t.max_iter,
        top_k=t.top_k,
        deg=deg,
    )
    mass = wait_for(job)
    # The run's masses, needed to read its calibrator off its own (score, confidence) rows,
    # are those after the update for the items the update does not reach.
    far = ~neighbourhood(graph.adjacency, changed, 1)
    live = mass[graph.degree > 0]
    ref = float(live.mean()) if live.size and live.mean() > 0 else 1.0
    use = (rows >= 0) & far[np.maximum(rows, 0)]
    rel = mass[rows[use]] / ref
    at = np.flatnonzero(inferred)[use]  # the pairs' rows of the table
    conf = table["confidence"].array.take(at).to_numpy(np.float64)
    rank = table["rank"].array.take(at).to_numpy(np.float64, na_value=np.nan)
    pairs = pd.DataFrame({"score": score[use], "rank": rank, "confidence": conf})
    observed = np.diff(sp.csr_matrix(seeds.matrix).indptr)[rows[use]]  # which map served
    cal = recover_calibrator(previous.get("calibrator"), pairs, rel, observed)
    out = region_scores(solved, mass, calibrator=cal, min_confidence=t.min_confidence)
    return out, region, old_pos


@dataclass(frozen=True)
class RunTagEntries:
    """The run's tags table read against the update's items and seed tags.

    ``old_pos``: each row's item, as a position in the update's ids (-1: removed);
    ``inferred``: which rows are inferred; ``rows`` / ``score``: those rows' positions and
    scores; ``old_scores``: the inferred scores of seed tags, as an items x tags matrix.
    """

    old_pos: np.ndarray
    inferred: np.ndarray
    rows: np.ndarray
    score: np.ndarray
    old_scores: sp.csr_matrix


def run_tag_entries(old: RunResult, ids: np.ndarray, seeds: Any) -> RunTagEntries:
    """:class:`RunTagEntries` of ``old``'s tags table for the items ``ids`` and ``seeds``.

    It needs no graph, so an update makes it with the seed tags, while the graph is searched.
    """
    from ccgraph.update._persist import positions
    from ccgraph.update.tags import _entries

    table = old.tags
    old_pos = _new_positions(table["id"], old, ids)
    inferred = (table["source"] == "inferred").to_numpy(dtype=bool, na_value=False)
    rows = old_pos[inferred]
    cols = positions(table["tag"], seeds.tags)[inferred]  # -1: not a seed tag
    score = table["score"].to_numpy(np.float64)[inferred]
    ok = (rows >= 0) & (cols >= 0)
    old_scores = _entries(len(ids), seeds.n_tags, rows[ok], cols[ok], score[ok])
    return RunTagEntries(old_pos, inferred, rows, score, old_scores)


def _new_positions(column: pd.Series, old: RunResult, ids: np.ndarray) -> np.ndarray:
    """Position in ``ids`` of each value of a run table's ``column`` (-1 if absent).

    Looked up among the run's items (their Arrow id column, no conversion of ``ids``), then
    carried to ``ids`` by :func:`~ccgraph.update._ids.locate`.
    """
    from ccgraph.update._ids import locate
    from ccgraph.update._output import run_positions

    in_old = run_positions(column, old.items["id"])
    rows = locate(old.ids, ids)  # each of ids' row in the run (-1: new)
    n_old = len(old.ids)
    if len(rows) >= n_old and np.array_equal(rows[:n_old], np.arange(n_old)):
        return in_old  # the run's items come first, in their order
    new_of_old = np.full(len(old.ids), -1, dtype=np.int64)
    kept = rows >= 0
    new_of_old[rows[kept]] = np.flatnonzero(kept)
    return np.where(in_old >= 0, new_of_old[np.maximum(in_old, 0)], -1)


def previous_popularity(
    old: RunResult, ids: np.ndarray, changed: np.ndarray, *, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the run's standardised popularity to keep and its propagation ``F``.

    ``keep`` is the run's value of observed items the batch did not touch (else NaN);
    ``F`` (the warm start) is :func:`ccgraph.update.popularity.previous_propagation`.
    """
    from ccgraph.update._ids import locate
    from ccgraph.update.popularity import previous_propagation

    items = old.items  # in the order of old.ids
    rows = locate(old.ids, ids)
    start = previous_propagation(items, rows, alpha=alpha)
    observed = (items["popularity_source"] == "observed").to_numpy(dtype=bool, na_value=False)
    value = pd.to_numeric(items["popularity"], errors="coerce").to_numpy(np.float64)
    value = np.where(observed, value, np.nan)
    keep = np.where(rows >= 0, value[np.maximum(rows, 0)], np.nan)
    keep[member(ids, changed)] = np.nan
    return keep, start


def duplicates(
    old: RunResult,
    emb: Mapping[str, Embeddings],
    lists: Mapping[str, Any],
    ids: np.ndarray,
    graph_batch: np.ndarray,
    catalog: Catalog,
    cfg: Config,
    previous: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Duplicate groups after the update over the modality the run used."""
    from ccgraph.update.duplicates import close_pairs, update_duplicates

    d = cfg.graph.duplicates
    name = str(previous.get("modality"))
    from ccgraph.update._ids import locate

    n = len(ids)
    items = old.items
    rows = locate(old.ids, ids)  # each item's row in the run (-1: new)
    at = np.maximum(rows, 0)
    old_group = np.where(rows >= 0, items["duplicate_group"].to_numpy(np.float64)[at], np.nan)
    old_canonical = (rows >= 0) & items["is_canonical"].to_numpy(bool)[at]
    if not previous.get("enabled", True) or name not in emb:
        start = int(items["duplicate_group"].max()) + 1 if len(items) else 0
        group = old_group.copy()
        fresh = np.isnan(group)
        group[fresh] = start + np.arange(int(fresh.sum()))
        return group.astype(np.int64), np.ones(n, dtype=bool), dict(previous)
    e = emb[name]
    binary = e.kind == "binary"
    metric = "hamming" if binary else "cosine"
    threshold = float(d.hamming) if binary else 1.0 - float(d.cosine)
    batch_rows = member(e.ids, graph_batch)
    lst = lists.get(name) if cfg.graph.metric == metric or binary else None
    u, v = close_pairs(e, batch_rows, threshold=threshold, metric=metric, lists=lst)
    pos = locate(ids, e.ids)
    if binary:  # blank images share one hash: as in a full run, grouped only by file bytes
        from ccgraph.embed.blank import blank_hash_keys
        from ccgraph.graph.duplicates import _isolated_pairs

        items_now = catalog.items
        paths = (
            items_now["image_path"].to_numpy(object)[pos].tolist()
            if "image_path" in items_now.columns
            else [None] * len(pos)
        )
        keys = blank_hash_keys(e, paths, n_jobs=cfg.n_jobs or 1)
        if keys is not None:
            u, v, _ = _isolated_pairs(keys, e.n_items, u, v)
    priority = None
    if d.canonical == "popularity":
        priority = pd.to_numeric(catalog.items["popularity_raw"], errors="coerce").to_numpy(
            np.float64
        )
    group, canonical, params = update_duplicates(
        ids,
        old_group,
        old_canonical,
        (pos[u], pos[v]),
        batch=member(ids, graph_batch),
        priority=priority,
    )
    return group, canonical, {**dict(previous), **params}
