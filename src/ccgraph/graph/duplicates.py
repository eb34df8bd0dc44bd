"""Near-duplicate groups: items within a tight distance, grouped by connected components."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ccgraph._random import RngLike
from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.containers import Embeddings, KnnGraph, check_same_ids, freeze_rows
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.graph.bridge import pair_distances
from ccgraph.graph.knn import check_knn_lists, knn_search, prepare_vectors

__all__ = ["DuplicateGroups", "find_duplicates"]


@dataclass(frozen=True, slots=True, eq=False)
class DuplicateGroups:
    """Near-duplicate groups: every item has a group id; an item with no duplicate is alone.

    Attributes
    ----------
    group
        int64 group id per item; groups are numbered 0.. in the order of their first item.
    is_canonical
        True for the one member that names each group (every singleton is canonical).
    canonical
        Row position of each item's canonical member.
    ids
        Item ids in row order.
    params
        Thresholds, rule and counts.
    """

    group: np.ndarray
    is_canonical: np.ndarray
    canonical: np.ndarray
    ids: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_rows(self, ("group", "is_canonical", "canonical"))

    @property
    def n_groups(self) -> int:
        """Number of groups (singletons included)."""
        return int(self.group.max()) + 1 if len(self.group) else 0

    @property
    def sizes(self) -> np.ndarray:
        """Size of each group ``0 .. n_groups - 1``."""
        return np.bincount(self.group, minlength=self.n_groups)

    @property
    def n_duplicates(self) -> int:
        """Items that are not their group's canonical member."""
        return int((~self.is_canonical).sum())

    def to_frame(self) -> pd.DataFrame:
        """Table ``id, duplicate_group, is_canonical`` (the run directory's columns)."""
        return pd.DataFrame(
            {"id": self.ids, "duplicate_group": self.group, "is_canonical": self.is_canonical}
        )

    def __repr__(self) -> str:
        multi = int((self.sizes > 1).sum())
        return f"DuplicateGroups({len(self.group)} items, {multi} groups with duplicates)"


def find_duplicates(
    embeddings: Embeddings,
    *,
    cosine: float = 0.98,
    hamming: int = 4,
    canonical: str = "first",
    priority: np.ndarray | None = None,
    k: int = 10,
    graph: KnnGraph | None = None,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
    backend: str = "auto",
    rng: RngLike = None,
    n_jobs: int | None = None,
    isolate: Sequence[str | None] | None = None,
) -> DuplicateGroups:
    """Group near-duplicate items and name one canonical member per group.

    Parameters
    ----------
    embeddings
        Dense embeddings (compared by cosine) or binary hash codes (compared by Hamming).
    cosine
        Dense: a pair with cosine similarity ``>= cosine`` is a duplicate pair.
    hamming
        Binary codes: a pair at Hamming distance ``<= hamming`` bits is a duplicate pair.
    canonical
        ``"first"``: the group's first item (lowest row) names it; ``"priority"``: the item with
        the highest ``priority`` (e.g. popularity or pixel count; NaN counts lowest), ties to
        the first.
    priority
        One number per item, required with ``canonical="priority"``.
    k
        Candidate neighbours per item from the kNN search (ignored when ``graph`` is given).
    graph
        Take candidate pairs from this graph's edges instead of a new kNN search (same ids).
    knn
        Take candidate pairs from these kNN lists ``(indices, distances)``, ``[n, k']`` over
        the embeddings' rows (e.g. the lists the similarity graph was built from, with
        ``k' >= k``), instead of a new search.
    backend, rng, n_jobs
        kNN search options (see :func:`ccgraph.graph.knn_search`).
    isolate
        One entry per item: ``None`` for an ordinary item; for an item whose vector carries
        no information (e.g. the perceptual hash of a blank image, which every blank image
        shares; see :func:`ccgraph.embed.blank.blank_hash_rows`) a key such as its file's
        sha256. Such an item is never grouped by distance, only with the items of the same
        key (byte-identical files).

    Returns
    -------
    DuplicateGroups
        Group per item (singletons are their own group), canonical flags, params with the
        thresholds and ``n_pairs``, ``n_groups_with_duplicates``, ``n_duplicates``.

    Notes
    -----
    Candidate pairs come from the kNN lists (or the graph), then each pair's exact distance is
    checked against the threshold; the groups are the connected components of the pairs that
    pass (single linkage, so a chain of close pairs forms one group). A pair that is close but
    not among either item's ``k`` candidates is missed: raise ``k`` if groups are larger than
    ``k + 1`` items with distinct distances.

    Examples
    --------
    >>> codes = np.array([[0] * 8, [0] * 7 + [1], [255] * 8], dtype=np.uint8)
    >>> emb = Embeddings(codes, np.array(["a", "b", "c"]), kind="binary")
    >>> find_duplicates(emb, hamming=2, k=1).group.tolist()
    [0, 0, 1]
    """
    if not isinstance(embeddings, Embeddings):
        raise InputError(f"`embeddings` must be Embeddings; got {type(embeddings).__name__}")
    check_choice("canonical", canonical, ("first", "priority"))
    binary = embeddings.kind == "binary"
    metric = "hamming" if binary else "cosine"
    arr = prepare_vectors(embeddings, metric)
    n = arr.shape[0]
    if binary:
        threshold = float(check_int("hamming", hamming, low=0, high=arr.shape[1] * 8))
    else:
        threshold = 1.0 - check_float("cosine", cosine, low=0.0, high=1.0, low_inclusive=False)
    prio = _priority(priority, n, canonical)
    if knn is not None or (graph is None and n > 1):
        if knn is None:
            kk = check_int("k", k, low=1)
            knn = knn_search(
                arr, k=min(kk, n - 1), metric=metric, backend=backend, rng=rng, n_jobs=n_jobs
            )
        idx, listed = check_knn_lists(knn, n)
        # Only pairs the search already found close are re-measured exactly (slack for the
        # search's float32 rounding): the other n k pairs cannot pass the threshold.
        r, c = np.nonzero((idx >= 0) & (listed <= threshold + 1e-3))
        u, v = r.astype(np.int64), idx[r, c].astype(np.int64)
    elif graph is not None:
        check_same_ids(embeddings.ids, graph.ids, what="find_duplicates: embeddings vs graph")
        coo = sp.triu(graph.adjacency, k=1).tocoo()
        u, v = coo.row.astype(np.int64), coo.col.astype(np.int64)
    else:
        u = v = np.zeros(0, dtype=np.int64)
    dist = np.concatenate(
        [np.zeros(0, dtype=np.float32)]
        + [
            pair_distances(arr, u[s : s + 2**18], v[s : s + 2**18], metric)
            for s in range(0, len(u), 2**18)  # bounded gathers: [chunk, d] at a time
        ]
    )
    close = dist <= threshold + (1e-6 if not binary else 0.0)
    u, v = u[close], v[close]
    n_isolated = 0
    if isolate is not None:
        u, v, n_isolated = _isolated_pairs(isolate, n, u, v)
    pairs = sp.csr_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    _, labels = connected_components(pairs, directed=False)
    first = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    group = rank[labels]
    order = np.lexsort((np.arange(n), -prio, group))  # best member first within each group
    head = np.ones(n, dtype=bool)
    head[1:] = group[order][1:] != group[order][:-1]
    canon_of_group = np.empty(len(first), dtype=np.int64)
    canon_of_group[group[order][head]] = order[head]
    canon = canon_of_group[group]
    is_canon = canon == np.arange(n)
    n_multi = int((np.bincount(group) > 1).sum()) if n else 0
    params = {
        "metric": metric,
        "cosine": None if binary else float(cosine),
        "hamming": int(hamming) if binary else None,
        "canonical": canonical,
        "k": int(knn[0].shape[1]) if knn is not None else None,
        "candidates": "knn" if knn is not None else "graph" if graph is not None else "none",
        "n_pairs": int(np.unique(np.minimum(u, v) * max(n, 1) + np.maximum(u, v)).size),
        "n_groups_with_duplicates": n_multi,
        "n_duplicates": int((~is_canon).sum()),
    }
    if isolate is not None:
        params["n_isolated"] = n_isolated
    return DuplicateGroups(group, is_canon, canon, embeddings.ids, params)


def _priority(priority: Any, n: int, canonical: str) -> np.ndarray:
    """Priority per item as float64 with NaN as -inf; zeros for ``canonical="first"``."""
    if canonical == "first":
        if priority is not None:
            raise ParameterError(
                "`priority` is only used with canonical='priority'; got canonical='first'"
            )
        return np.zeros(n)
    if priority is None:
        raise ParameterError("canonical='priority' needs `priority` (one number per item)")
    p = np.asarray(priority, dtype=np.float64).ravel()
    if len(p) != n:
        raise InputError(f"`priority` has {len(p)} values for {n} items")
    return np.where(np.isnan(p), -np.inf, p)


def _isolated_pairs(
    isolate: Sequence[str | None], n: int, u: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop the pairs that touch an isolated item; pair isolated items of equal key instead."""
    keys = pd.Series(list(isolate), dtype=object)
    if len(keys) != n:
        raise InputError(f"`isolate` has {len(keys)} entries for {n} items")
    alone = keys.notna().to_numpy(bool)
    if not alone.any():
        return u, v, 0
    keep = ~(alone[u] | alone[v])
    rows = np.flatnonzero(alone)
    codes = pd.factorize(keys[alone].astype(str))[0]
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]  # consecutive members of one key: a chain
    a, b = rows[order][:-1][same], rows[order][1:][same]
    return np.concatenate([u[keep], a]), np.concatenate([v[keep], b]), int(alone.sum())
