"""Update stored kNN lists for a batch of new, re-embedded and removed items.

Only the batch is searched against everything: one blocked pass over ``batch x all`` distances
gives each batch item its exact neighbours and, read the other way round, every old item the
batch items that beat its current ``k``-th neighbour. Old items whose list named a removed or
re-embedded item are searched again in full. Every other list is kept as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError
from ccgraph.update._ids import locate
from ccgraph.update._persist import KnnLists
from ccgraph.update._probe import copies_at_zero

__all__ = ["batch_distances", "update_knn_lists"]

logger = logging.getLogger(__name__)

#: ``search="auto"`` searches exactly up to this many (query, item) pairs.
AUTO_EXACT_PAIRS = 20_000_000

#: Target bytes of one ``[rows, n]`` distance block.
_BLOCK_BYTES = 64 * 2**20


def batch_distances(
    data: np.ndarray, rows: np.ndarray, *, metric: str
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)``: distances from ``data[rows[start:start+b]]`` to every row.

    Distances are those of :func:`ccgraph.graph.knn_search`: ``1 - x.y`` for cosine (rows
    already unit length), L2 for euclidean, differing bits for hamming (packed ``uint8``).
    A query's distance to itself is ``inf``.
    """
    n = data.shape[0]
    step = int(max(16, min(2048, _BLOCK_BYTES // max(1, 4 * n))))
    if metric == "euclidean":
        sq = np.einsum("ij,ij->i", data, data)
    if metric == "hamming":
        from ccgraph.graph._exact import _popcount, pack_codes

        words = pack_codes(data)
    for s in range(0, len(rows), step):
        q = rows[s : s + step]
        if metric == "hamming":
            block = np.zeros((len(q), n), dtype=np.float32)
            for j in range(words.shape[1]):
                block += _popcount(np.bitwise_xor(words[q, j, None], words[None, :, j]))
        else:
            dots = data[q] @ data.T
            if metric == "cosine":
                block = np.maximum(1.0 - dots, 0.0, dtype=np.float32)
            else:
                block = np.sqrt(np.maximum(sq[q, None] + sq[None, :] - 2.0 * dots, 0.0))
                block = block.astype(np.float32)
            copies_at_zero(block, q, np.arange(n), data, sq if metric == "euclidean" else None)
        block[np.arange(len(q)), q] = np.inf
        yield s, block


def _top_k(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` smallest per row, sorted by (distance, column)."""
    work = block.copy()
    work.partition(k - 1, axis=1)  # values only: cheaper than argpartition
    kth = work[:, k - 1]
    r, c = np.nonzero(block <= kth[:, None])
    d = block[r, c]
    order = np.lexsort((c, d, r))
    r, c, d = r[order], c[order], d[order]
    first = np.searchsorted(r, np.arange(block.shape[0]))
    keep = (np.arange(len(r)) - first[r]) < k
    return c[keep].reshape(-1, k).astype(np.int32), d[keep].reshape(-1, k).astype(np.float32)


def _exact(
    data: np.ndarray,
    full: np.ndarray,
    kth: np.ndarray,
    is_batch_query: np.ndarray,
    out_i: np.ndarray,
    out_d: np.ndarray,
    k: int,
    metric: str,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Exact lists of the ``full`` rows (written into ``out_i`` / ``out_d``); gained pairs."""
    cand_u: list[np.ndarray] = []
    cand_b: list[np.ndarray] = []
    cand_d: list[np.ndarray] = []
    for s, block in batch_distances(data, full, metric=metric):
        q = full[s : s + len(block)]
        ti, td = _top_k(block, k)
        out_i[q], out_d[q] = ti, td
        qb = is_batch_query[s : s + len(block)]
        if qb.any():
            sub = block[qb]
            r, c = np.nonzero(sub <= kth[None, :])
            cand_u.append(c)
            cand_b.append(q[qb][r])
            cand_d.append(sub[r, c])
    return cand_u, cand_b, cand_d


def update_knn_lists(
    old: KnnLists,
    emb: Embeddings,
    *,
    batch: np.ndarray,
    metric: str,
    search: str = "exact",
    labels: np.ndarray | None = None,
    n_probe: int = 8,
    min_candidates: int = 1_000,
) -> tuple[KnnLists, dict[str, Any]]:
    """The kNN lists over ``emb`` (the items after the update) from the lists ``old`` kept.

    Parameters
    ----------
    old
        The lists before the update (over ``old.ids``).
    emb
        Vectors of every item after the update: old items that stay (re-embedded ones with
        their new vectors) and new items.
    batch
        Boolean mask over ``emb`` rows: new or re-embedded items. Old ids absent from ``emb``
        are removed items.
    metric
        The metric of the original search.
    search
        ``"auto"``: ``"exact"`` up to :data:`AUTO_EXACT_PAIRS` query x item pairs, else
        ``"probe"``; ``"exact"``: the batch and the stale lists are searched against every item;
        ``"probe"``: against the members of their nearest clusters and the stored neighbours
        of what that finds (:func:`ccgraph.update._probe.probe_search`; dense metrics only).
    labels
        For ``"probe"``: a cluster per ``emb`` row (the run's finest level; ``-1`` for new
        items).
    n_probe, min_candidates
        For ``"probe"``: clusters searched per query.

    Returns
    -------
    KnnLists
        Lists over ``emb.ids``, ``k`` as before, each row sorted by (distance, position).
    info : dict
        ``n_batch``, ``n_researched`` (old items searched again because a neighbour left or
        moved), ``n_gained`` (old items whose list took in a batch item), ``search`` and,
        for ``"probe"``, ``estimated_recall`` and ``n_compared``.

    Notes
    -----
    An old item ``u`` (list unchanged otherwise) gains batch item ``b`` exactly when
    ``d(u, b)`` is below its current ``k``-th distance (ties by position), so the merged list
    is the exact ``k`` nearest among its old list and the batch. With exact old lists, the
    result equals an exact search over all items. With ``"probe"``, the same holds for the
    pairs the probes compare.
    """
    k = old.k
    ids = emb.ids
    n = len(ids)
    if k >= n:
        raise InputError(f"the update leaves {n} items with this embedding; graph.k={k} needs more")
    batch = np.asarray(batch, dtype=bool)
    from ccgraph.graph.knn import prepare_vectors

    data = prepare_vectors(emb, metric)
    pos = locate(ids, old.ids)  # old row -> new row (-1: removed)
    m = len(old.ids)
    if m <= n and not batch[:m].any() and np.array_equal(pos, np.arange(m)):
        # only additions, after the old items in their order: every old list stays, in place
        kept = stay = np.ones(m, dtype=bool)
        moved = lost = np.zeros(m, dtype=bool)
        out_i = np.empty((n, k), dtype=np.int64)
        out_d = np.empty((n, k), dtype=np.float32)
        out_i[:m] = old.indices
        out_d[:m] = old.distances
        empty = np.asarray(old.indices) < 0
        if empty.any():  # slots the old search left empty
            out_i[:m][empty] = -2
            out_d[:m][empty] = np.inf
        out_i[m:] = -1
        out_d[m:] = np.inf
    else:
        idx_old = np.asarray(old.indices, dtype=np.int64)
        nb = np.where(idx_old >= 0, pos[np.maximum(idx_old, 0)], -1)
        nb = np.where(idx_old >= 0, nb, -2)  # -2: slot already empty in the old search
        kept = pos >= 0
        moved = np.zeros(m, dtype=bool)
        moved[kept] = batch[pos[kept]]
        # a list is stale when it names a removed item or one whose vector changed
        lost = ((nb == -1) | ((nb >= 0) & batch[np.maximum(nb, 0)])).any(axis=1)
        # rows of the new lists
        out_i = np.full((n, k), -1, dtype=np.int64)
        out_d = np.full((n, k), np.inf, dtype=np.float32)
        stay = kept & ~moved & ~lost  # old rows whose list stays valid
        out_i[pos[stay]] = nb[stay]
        out_d[pos[stay]] = np.where(nb[stay] >= 0, old.distances[stay], np.inf)
    research = np.zeros(n, dtype=bool)
    research[pos[kept & ~moved & lost]] = True
    full = np.flatnonzero(batch | research)
    valid = np.zeros(n, dtype=bool)
    valid[pos[stay]] = True
    kth = np.where(valid, out_d[:, -1], -np.inf)
    is_batch_query = batch[full]
    if search == "auto":
        search = "probe" if len(full) * n > AUTO_EXACT_PAIRS else "exact"
    info: dict[str, Any] = {"search": "exact"}
    has_index = labels is not None and bool((np.asarray(labels)[~batch] >= 0).any())
    if search == "probe" and metric != "hamming" and has_index and labels is not None and len(full):
        from ccgraph.update._probe import probe_search

        top_i, top_d, (gu, gb, gd), info = probe_search(
            data,
            full,
            np.where(batch, -1, labels),
            out_i,
            kth,
            k=k,
            metric=metric,
            n_probe=n_probe,
            min_candidates=min_candidates,
        )
        out_i[full], out_d[full] = top_i, top_d
        new = batch[gb]  # an old query with an unchanged vector is already in the lists it fits
        cand_u, cand_b, cand_d = [gu[new]], [gb[new]], [gd[new]]
    else:
        cand_u, cand_b, cand_d = _exact(data, full, kth, is_batch_query, out_i, out_d, k, metric)
    n_gained = 0
    if cand_u:
        u = np.concatenate(cand_u)
        b = np.concatenate(cand_b)
        d = np.concatenate(cand_d).astype(np.float32)
        n_gained = len(np.unique(u))
        if len(u):
            from ccgraph.update._knn_kernels import insert_pairs

            insert_pairs(out_i, out_d, u.astype(np.int64), b.astype(np.int64), d)
    lists_i = out_i.astype(np.int32)
    lists_i[~np.isfinite(out_d)] = -1
    info = {
        **info,
        "n_batch": int(batch.sum()),
        "n_researched": int(research.sum()),
        "n_gained": int(n_gained),
        "n_removed": int((~kept).sum()),
    }
    logger.info(
        "kNN lists: %d batch items searched, %d old lists searched again, %d gained a neighbour",
        info["n_batch"],
        info["n_researched"],
        info["n_gained"],
    )
    return KnnLists(ids, lists_i, out_d), info
