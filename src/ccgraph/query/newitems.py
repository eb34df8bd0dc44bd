"""Answers for items that are not in the run, from their nearest stored items.

A new item is embedded with the run's own embedders (parameters from the manifest), its ``k``
nearest items are found among the stored embeddings
(``embeddings_<modality>.npy``, memory-mapped), and the three answers are read off those
neighbours: a similarity-weighted cluster vote per level, local PageRank seeded on the
neighbours, and a similarity-weighted combination of their tags. The run is not modified.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ccgraph._validation import check_choice, check_int
from ccgraph.exceptions import DataQualityWarning, InputError
from ccgraph.io._text import REMOTE_IMAGE, is_url
from ccgraph.query._rank import cluster_answer, related_from_seeds
from ccgraph.query.answers import ItemAnswer
from ccgraph.query.search import VectorSearch

if TYPE_CHECKING:
    from ccgraph.query.index import RunIndex
    from ccgraph.query.persist import StoredEmbeddings

__all__ = ["Neighbors", "answer", "embed_images", "embed_texts", "query_vectors", "searcher"]

#: Parameters that only name a package version: a difference warns instead of failing.
_VERSION_KEYS = ("pillow", "imagehash", "weights_package", "code_package")

#: modality, item rows, similarities, whether the run's graph rule links the item to each
Neighbors = tuple[str, np.ndarray, np.ndarray, np.ndarray]


def _metric(index: RunIndex, stored: StoredEmbeddings) -> str:
    if stored.kind == "binary":
        return "hamming"
    return str(index.config.get("graph", {}).get("metric", "cosine"))


def _modality(index: RunIndex, modality: str | None) -> StoredEmbeddings:
    stored = index.embeddings
    if not stored:
        raise InputError(
            f"the run {index.path} stores no embeddings (made by an older ccgraph?); re-run it "
            "to query new items"
        )
    if modality is None:
        if len(stored) > 1:
            raise InputError(
                f"the run has several modalities {sorted(stored)}; pass `modality` to say which "
                "one the vector belongs to"
            )
        return next(iter(stored.values()))
    if modality not in stored:
        raise InputError(
            f"`modality` {modality!r} is not stored in the run; it has {sorted(stored)}"
        )
    return stored[modality]


def _as_queries(stored: StoredEmbeddings, vectors: Any, metric: str) -> np.ndarray:
    try:
        arr = np.asarray(vectors)
    except ValueError:  # ragged nested lists
        raise InputError(
            f"`vector` must be one vector [{stored.dim}] or equal-length rows [m, {stored.dim}] "
            "of numbers; got rows of different lengths"
        ) from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != stored.dim:
        raise InputError(
            f"`vector` must have {stored.dim} entries (the run's {stored.modality} "
            f"embeddings), or be [m, {stored.dim}]; got shape {np.shape(vectors)}"
        )
    if stored.kind == "binary":
        whole = arr.dtype.kind in "iu" or (
            arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all()
        )
        if not whole or arr.min() < 0 or arr.max() > 255:
            raise InputError(
                f"`vector` for the {stored.modality} hashes must be packed bits (bytes 0..255, "
                f"[{stored.dim}]); got dtype {arr.dtype}"
            )
        return np.ascontiguousarray(arr, dtype=np.uint8)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"`vector` must be numeric; got dtype {arr.dtype}")
    q = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(q).all():
        raise InputError("`vector` holds NaN or infinite values")
    if metric == "cosine":
        norms = np.linalg.norm(q, axis=1)
        if (norms == 0).any():
            raise InputError("`vector` is all zeros: it has no direction for cosine similarity")
        q = q / norms[:, None]
    return q


def searcher(index: RunIndex, stored: StoredEmbeddings) -> VectorSearch:
    """The (cached) neighbour search over one modality's stored vectors."""
    key = f"search_{stored.modality}"
    if key not in index._search_cache:
        search = VectorSearch(stored, metric=_metric(index, stored), partition=index.levels[-1])
        lists = [f"knn_{stored.modality}_{part}" for part in ("rows", "indices", "distances")]
        extras = index.run.extras
        if all(name in extras for name in lists):  # kept by the run for updates
            k = int(index.config.get("graph", {}).get("k", 15))
            rows, idx, dist = (np.asarray(extras[name]) for name in lists)
            if idx.ndim == 2 and idx.shape[1] == k and len(rows) == len(idx) == len(dist):
                search.use_knn_lists(rows.astype(np.int64), idx, dist)
        index._search_cache[key] = search
    return index._search_cache[key]


def _duplicate_rows(index: RunIndex, neighbors: Sequence[Neighbors]) -> np.ndarray:
    """Stored items that are near-duplicates of the new item, with their groups."""
    dup = index.manifest.get("stages", {}).get("duplicates", {}) or {}
    modality = dup.get("modality")
    found = []
    for name, rows, sim, _ in neighbors:
        if name != modality or not dup.get("enabled", True):
            continue
        stored = index.embeddings[name]
        if stored.kind == "binary":
            limit = 1.0 - float(dup.get("hamming") or 0) / (8.0 * stored.dim)
        else:
            limit = float(dup.get("cosine") or 1.0)
        found.extend(rows[sim >= limit - 1e-7].tolist())
    if not found:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([index.group_members(r) for r in found]))


def answer(
    index: RunIndex,
    neighbors: Sequence[Neighbors],
    *,
    label: str,
    n: int,
    epsilon: float,
    alpha: float,
    duplicates: str,
    exclude: np.ndarray,
) -> ItemAnswer:
    """The three answers of a new item from its neighbours in one or more modalities.

    Notes
    -----
    Only the neighbours the run's graph rule would link to the new item take part (its
    would-be edges; all ``k`` neighbours with ``rule="knn"``). Each modality's similarities
    ``s_j`` over those are normalised to sum 1 and scaled by the run's fusion weight ``f_m``
    (``graph.fusion.weights``), ``w_j = f_m s_j / sum s``; an item found by two modalities
    adds up. Then, with ``W = sum_j w_j``:

    - cluster share at each level: ``s_C = sum_{j in C} w_j / W``; the item's cluster is the
      largest share (its strength), the others are secondary clusters;
    - related items: local PageRank (push) with the restart distribution ``w / W`` over the
      neighbours; the new item's near-duplicates (stored neighbours at or above the run's
      duplicate threshold, with their duplicate groups) are treated as in
      :meth:`RunIndex.related`;
    - tags: for each tag ``t`` carried by a neighbour (observed, confidence 1, or inferred,
      calibrated confidence ``c_jt``), ``score = sum_{j has t} w_j / W`` (weighted share of
      neighbours with the tag) and ``confidence = sum_j w_j c_jt / W``; the run's
      ``propagate.tags.top_k`` tags above ``propagate.tags.min_confidence`` are kept.
    """
    fusion = index.config.get("graph", {}).get("fusion", {}).get("weights", {}) or {}
    rows_all, w_all, frames = [], [], []
    for name, rows, sim, edge in neighbors:
        w = np.where(edge, sim, 0.0)
        w = w / w.sum() * float(fusion.get(name, 1.0))
        rows_all.append(rows[edge])
        w_all.append(w[edge])
        frames.append(
            pd.DataFrame(
                {
                    "id": index.id_objects[rows],
                    "modality": name,
                    "similarity": sim,
                    "edge": edge,
                    "weight": w,
                }
            )
        )
    uniq, inv = np.unique(np.concatenate(rows_all), return_inverse=True)
    weights = np.bincount(inv, weights=np.concatenate(w_all), minlength=len(uniq))
    weights = weights / weights.sum()
    clusters = cluster_answer(index, None, uniq, weights, own=None)
    dup_rows = _duplicate_rows(index, neighbors)
    related = related_from_seeds(
        index,
        uniq,
        weights,
        n=n,
        epsilon=epsilon,
        alpha=alpha,
        duplicates=duplicates,
        drop=exclude,
        dup_rows=np.setdiff1d(dup_rows, exclude),
    )
    tags = _combined_tags(index, uniq, weights)
    nb = pd.concat(frames, ignore_index=True)
    return ItemAnswer(label, clusters, related, tags, nb)


def _combined_tags(index: RunIndex, rows: np.ndarray, weights: np.ndarray) -> pd.DataFrame:
    cfg = index.config.get("propagate", {}).get("tags", {}) or {}
    top_k = int(cfg.get("top_k", 10))
    floor = float(cfg.get("min_confidence", 0.0))
    codes, support, conf = index.tag_table.combine(rows, weights)
    keep = conf >= floor
    codes, support, conf = codes[keep], support[keep], conf[keep]
    names = index.tag_table.names[codes]
    order = np.lexsort((names.astype(str), -conf))[:top_k]
    return pd.DataFrame(
        {
            "tag": names[order],
            "source": np.full(len(order), "inferred", dtype=object),
            "score": support[order].astype(np.float32),
            "confidence": conf[order].astype(np.float32),
            "rank": np.arange(1, len(order) + 1),
            "origin": np.full(len(order), None, dtype=object),
        }
    )


def query_vectors(
    index: RunIndex,
    vectors: Any,
    *,
    modality: str | None = None,
    k: int | None = None,
    n: int = 20,
    epsilon: float = 1e-4,
    alpha: float = 0.85,
    duplicates: str = "separate",
    exclude: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    method: str = "auto",
    rule: str = "graph",
) -> list[ItemAnswer]:
    """Answers for new items given as vectors of one stored modality.

    Parameters
    ----------
    index
        The opened run.
    vectors
        One vector ``[d]`` or several ``[m, d]`` (packed uint8 codes for a hash modality).
    modality
        Which stored embeddings the vectors belong to (needed when the run has several).
    k
        Neighbours to answer from (default: the run's ``graph.k``).
    n, epsilon, alpha, duplicates
        As in :meth:`RunIndex.related`.
    exclude
        Item ids left out of the search and of the related items (e.g. to query an item of
        the run as if it were new).
    labels
        The ``query`` label of each answer (default ``"vector"``).
    method
        Neighbour search: ``"exact"``, ``"clusters"`` (exact within the clusters of the
        run's finest level whose centroids are closest; see
        :class:`~ccgraph.query.search.VectorSearch`) or ``"auto"`` (exact up to
        :data:`~ccgraph.query.search.EXACT_MAX_N` stored vectors).
    rule
        Which neighbours answer: ``"graph"`` (default) those the run's graph would link to
        the item -- with ``graph.mutual``, neighbour ``j`` counts if the item is at least as
        close to ``j`` as ``j``'s ``graph.k``-th nearest stored item, plus the item's
        ``graph.min_degree`` nearest (the repair rule); ``"knn"``: all ``k`` neighbours.

    Returns
    -------
    list of ItemAnswer
        One per vector, with its ``neighbors``.
    """
    n, epsilon, alpha = index._check_related(n, epsilon, alpha, duplicates)
    k = check_int("k", index.config.get("graph", {}).get("k", 15) if k is None else k, low=1)
    stored = _modality(index, modality)
    queries = _as_queries(stored, vectors, _metric(index, stored))
    drop = (
        np.array([index.position(i) for i in exclude], dtype=np.int64)
        if exclude is not None
        else np.zeros(0, dtype=np.int64)
    )
    check_choice("rule", rule, ("graph", "knn"))
    search = searcher(index, stored)
    skip = search.positions(drop, index.n_items) if len(drop) else None
    pos, raw = search.search_positions(queries, k=k, skip=skip, method=method)
    rows, sims = stored.rows[pos], search.similarity(raw, pos.shape[1])
    g = index.config.get("graph", {}) or {}
    if rule == "graph" and g.get("mutual", True):
        edges = search.graph_edges(
            pos, raw, k=int(g.get("k", 15)), min_degree=int(g.get("min_degree", 1)), skip=skip
        )
    else:
        edges = np.ones(pos.shape, dtype=bool)
    edges[~edges.any(axis=1)] = True  # no edge at all (min_degree 0): use every neighbour
    labels = list(labels) if labels is not None else ["vector"] * len(queries)
    return [
        answer(
            index,
            [(stored.modality, rows[j], sims[j], edges[j])],
            label=str(labels[j]),
            n=n,
            epsilon=epsilon,
            alpha=alpha,
            duplicates=duplicates,
            exclude=drop,
        )
        for j in range(len(queries))
    ]


def _check_params(modality: str, built: dict[str, Any], stored: dict[str, Any]) -> None:
    for key in sorted(set(built) & set(stored)):
        if built[key] == stored[key]:
            continue
        msg = (
            f"the {modality} embedder differs from the run's in {key!r}: "
            f"{built[key]!r} now, {stored[key]!r} in the run"
        )
        if key in _VERSION_KEYS:
            warnings.warn(msg + "; vectors may differ slightly", DataQualityWarning, stacklevel=4)
        else:
            raise InputError(msg + "; new items would not be comparable with the run's items")


def _text_embedder(index: RunIndex) -> Any:
    if "text" not in index._embedders:
        from ccgraph.embed.text import TextEmbedder

        _modality(index, "text")
        cfg = index.config.get("embed", {}).get("text", {}) or {}
        emb = TextEmbedder(
            cfg.get("model", "auto"),
            int(cfg.get("batch_size", 64)),
            int(cfg.get("max_chars", 1000)),
        )
        _check_params("text", emb.params, dict(index.embeddings["text"].params))
        index._embedders["text"] = emb
    return index._embedders["text"]


def embed_texts(index: RunIndex, texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts`` with the run's text model (``float32 [m, d]``)."""
    return _text_embedder(index).encode([t[: _text_embedder(index).max_chars] for t in texts])


def embed_images(index: RunIndex, paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
    """Embed image files with the run's image embedder; an unreadable file raises."""
    if "image" not in index._embedders:
        from ccgraph.config import ImageEmbedConfig
        from ccgraph.embed import make_image_embedder

        _modality(index, "image")
        cfg = ImageEmbedConfig(**(index.config.get("embed", {}).get("image", {}) or {}))
        emb = make_image_embedder(cfg)
        _check_params("image", emb.params, dict(index.embeddings["image"].params))
        index._embedders["image"] = emb
    for p in paths:
        if is_url(str(p)):
            raise InputError(f"{p}: {REMOTE_IMAGE}")
        if not os.path.isfile(p):
            raise InputError(f"image file not found: {p}")
    frame = pd.DataFrame(
        {"id": [str(i) for i in range(len(paths))], "image_path": list(map(str, paths))}
    )
    out = index._embedders["image"].embed(frame)
    if len(out.rejects):
        bad = out.rejects.iloc[0]
        raise InputError(f"image {paths[int(bad['row']) - 1]} cannot be embedded: {bad['reason']}")
    return np.asarray(out.embeddings.vectors)
