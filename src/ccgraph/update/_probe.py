r"""Approximate neighbour search of a batch against a run, using the run's clusters as the index.

An exact search of ``q`` batch items against ``n`` stored vectors costs ``q n d`` multiply-adds
(3.9e10 for 1,000 items against 100k vectors of 384 dimensions: seconds on two cores). The run
already holds a good inverted-file index: its finest clusters. Each query is compared with the
clusters' mean directions and then, exactly, with the members of its nearest clusters
(IVF, Jégou et al. 2011), and, in one more round, with the stored neighbours of the
neighbours found (the kNN lists make the clusters' borders cheap to cross). The queries that
probe the same cluster share one matrix product, so every member vector is read once.

The distances computed are exact; only pairs never compared can be missed. The recall of the
top-``k`` lists is estimated against an exact search of a sample of the queries.

References
----------
.. [1] Jégou, H., Douze, M. & Schmid, C. (2011). Product quantization for nearest neighbor
   search. IEEE TPAMI 33(1), 117-128 (the inverted file with probes, IVF).
"""

from __future__ import annotations

import itertools
import logging
from concurrent.futures import wait
from typing import Any, overload

import numpy as np
import pandas as pd

from ccgraph._blas import one_blas_thread
from ccgraph._lane import RECALL, current
from ccgraph.update._threads import start

__all__ = ["copies_at_zero", "probe_search", "top_k_pairs"]

logger = logging.getLogger(__name__)

#: Pairs per gathered block when scoring the neighbours-of-neighbours round.
_PAIR_BLOCK = 65_536

#: A cosine distance this small may be a row's distance to a bitwise copy of itself (float32
#: rounding of ``1 - x.x`` over a few hundred dimensions stays far below it).
_COPY_COSINE = 1e-4
#: The same for euclidean distances, relative to the target's norm.
_COPY_RELATIVE = 1e-2


def _dist(dots: np.ndarray, sq_q: np.ndarray | None, sq_t: np.ndarray | None) -> np.ndarray:
    """Cosine (unit rows, ``sq`` None) or euclidean distance from dot products."""
    if sq_q is None or sq_t is None:
        return np.maximum(1.0 - dots, 0.0).astype(np.float32, copy=False)
    return np.sqrt(np.maximum(sq_q + sq_t - 2.0 * dots, 0.0)).astype(np.float32, copy=False)


def copies_at_zero(
    dist: np.ndarray,
    q_rows: np.ndarray,
    t_rows: np.ndarray,
    data: np.ndarray,
    sq: np.ndarray | None,
) -> None:
    """Set ``dist`` to exactly 0 where rows ``q_rows`` and ``t_rows`` of ``data`` are identical.

    Rounding leaves a row's distance to a bitwise copy of itself near, not at, zero; the full
    search collapses exact duplicates (:mod:`ccgraph.graph._collapse`) and lists copies at
    distance 0, ties by row. Only the pairs whose distance is small enough to be a copy's are
    compared (``sq``: squared norms for euclidean, None for cosine on unit rows). In place;
    ``dist`` is 1-D (one entry per pair) or 2-D (``[len(q_rows), len(t_rows)]``).

    Examples
    --------
    >>> x = np.array([[0.6, 0.8], [0.6, 0.8], [0.8, 0.6]], dtype=np.float32)
    >>> d = np.array([[1e-7, 0.04]], dtype=np.float32)
    >>> copies_at_zero(d, np.array([0]), np.array([1, 2]), x, None); d.tolist()[0][0]
    0.0
    """
    # the targets run along the last axis in both shapes
    limit = _COPY_COSINE if sq is None else _COPY_RELATIVE * np.sqrt(sq[t_rows]) + 1e-6
    near = np.nonzero(dist <= limit)
    q, t = q_rows[near[0]], t_rows[near[-1]]
    same = (data[q] == data[t]).all(axis=1)
    dist[tuple(a[same] for a in near)] = 0.0


def top_k_pairs(
    q: np.ndarray, t: np.ndarray, d: np.ndarray, n_queries: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` nearest targets from ``(query, target, distance)`` triples.

    Ties go to the smaller target; a query with fewer than ``k`` targets is padded with
    ``-1`` / ``inf``.

    Examples
    --------
    >>> i, d = top_k_pairs(np.array([0, 0, 0, 1]), np.array([5, 3, 4, 2]),
    ...                    np.array([0.2, 0.1, 0.2, 0.5], dtype=np.float32), 2, 2)
    >>> i.tolist(), d.tolist()
    ([[3, 4], [2, -1]], [[0.10000000149011612, 0.20000000298023224], [0.5, inf]])
    """
    out_i = np.full((n_queries, k), -1, dtype=np.int64)
    if _keyed(q, t, d, n_queries):
        from ccgraph.update._knn_kernels import top_k_keys

        bits = np.full((n_queries, k), np.float32(np.inf)).view(np.uint32)
        top_k_keys(q.astype(np.int64), t.astype(np.int64), d.view(np.uint32), out_i, bits)
        return out_i, bits.view(np.float32)
    order = np.lexsort((t, d, q))
    q, t, d = q[order], t[order], d[order]
    first = np.searchsorted(q, np.arange(n_queries))
    rank = np.arange(len(q)) - first[q]
    keep = rank < k
    out_d = np.full((n_queries, k), np.inf, dtype=np.float32)
    out_i[q[keep], rank[keep]] = t[keep]
    out_d[q[keep], rank[keep]] = d[keep]
    return out_i, out_d


def _keyed(q: np.ndarray, t: np.ndarray, d: np.ndarray, n_queries: int) -> bool:
    """Whether :func:`top_k_pairs` may sort by one integer key per pair (the kernel).

    A float32 distance's bit pattern orders as the distance does when it is non-negative
    (``+0.0``, not ``-0.0``) and not NaN; targets must fit 32 bits and queries be in range.
    """
    if not len(q) or d.dtype != np.float32 or q.dtype.kind not in "iu" or t.dtype.kind not in "iu":
        return False
    return bool(
        q.min() >= 0
        and q.max() < n_queries
        and t.min() >= 0
        and t.max() < 2**32
        and not np.signbit(d).any()
        and not np.isnan(d).any()
    )


def _probes(
    scores: np.ndarray, sizes: np.ndarray, *, n_probe: int, min_candidates: int
) -> tuple[np.ndarray, np.ndarray]:
    """(query, cluster) pairs: the ``n_probe`` best clusters, more until ``min_candidates``."""
    neg = -scores
    n_q, n_c = neg.shape
    width = max(4 * n_probe, 32)
    if width < n_c and n_q:
        # only the best clusters are needed: the ``width`` smallest of each row (with ties),
        # sorted as the stable sort of the whole row orders them, are its order's prefix
        kth = np.partition(neg, width - 1, axis=1)[:, width - 1]
        rows, cols = np.nonzero(neg <= kth[:, None])
        o = _row_value_order(rows, neg[rows, cols])  # cols ascend within ties already
        rows, cols = rows[o], cols[o]
        starts = np.searchsorted(rows, np.arange(n_q + 1))
        size = sizes[cols]
        covered = np.cumsum(size)
        before = covered - size - np.r_[0, covered][starts[:-1]][rows]
        rank = np.arange(len(rows)) - starts[rows]
        take = (rank < n_probe) | (before < min_candidates)
        # a row needs more than its prefix when the prefix ends still taking
        last = np.maximum(starts[1:] - 1, 0)
        short = (np.diff(starts) == 0) | (take[last] if len(take) else True)
        if not short.any():
            return rows[take], cols[take]
    order = np.argsort(neg, axis=1, kind="stable")
    covered = np.cumsum(sizes[order], axis=1)
    before = covered - sizes[order]  # members covered by the better clusters
    take = (np.arange(order.shape[1])[None, :] < n_probe) | (before < min_candidates)
    rows, ranks = np.nonzero(take)
    return rows, order[rows, ranks]


def _row_value_order(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The stable order by (row, value): ``np.lexsort((values, rows))``.

    Float32 values without NaN sort as one integer key per entry (the row, then the value's
    bits made monotone, ``-0.0`` as ``+0.0``), which is several times faster.
    """
    if values.dtype != np.float32 or not len(rows) or rows.min() < 0 or rows.max() >= 2**32:
        return np.lexsort((values, rows))
    if np.isnan(values).any():
        return np.lexsort((values, rows))
    bits = (values + np.float32(0.0)).view(np.uint32)  # -0.0 + 0.0 is +0.0: ties as lexsort
    mono = np.where(bits >> np.uint32(31) == 1, ~bits, bits | np.uint32(0x80000000))
    key = (rows.astype(np.uint64) << np.uint64(32)) | mono.astype(np.uint64)
    return np.argsort(key, kind="stable")


def _centres(data: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of the labelled rows (``-1`` elsewhere), cluster sizes, mean vectors."""
    import scipy.sparse as sp

    n = data.shape[0]
    labelled = labels >= 0
    codes = np.full(n, -1, dtype=np.int64)
    codes[labelled], uniq = pd.factorize(labels[labelled])
    n_c = len(uniq)
    rows = np.flatnonzero(labelled)
    sizes = np.bincount(codes[rows], minlength=n_c)
    if data.dtype in (np.float32, np.float64):
        from ccgraph.update._knn_kernels import cluster_sums

        sums = cluster_sums(data, codes, n_c)  # the arithmetic of indicator @ data
    else:
        ind = sp.csr_matrix((np.ones(len(rows), np.float32), (codes[rows], rows)), shape=(n_c, n))
        sums = np.asarray(ind @ data)
    centres = sums / np.maximum(sizes, 1)[:, None].astype(np.float32)
    return codes, sizes, centres


def _scores(x: np.ndarray, centres: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of rows to the cluster centres (larger is nearer)."""
    dots = x @ centres.T
    if metric == "cosine":
        return dots
    return 2.0 * dots - np.einsum("ij,ij->i", centres, centres)[None, :]


def probe_search(
    data: np.ndarray,
    queries: np.ndarray,
    labels: np.ndarray,
    lists: np.ndarray,
    kth: np.ndarray,
    *,
    k: int,
    metric: str,
    n_probe: int = 8,
    min_candidates: int = 1_000,
    sample: int = 16,
    rng: int = 0,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]:
    """Top-``k`` neighbours of ``queries`` among all rows of ``data``, by cluster probes.

    Parameters
    ----------
    data
        ``float32 [n, d]`` vectors (unit rows for cosine).
    queries
        Rows of ``data`` to search for.
    labels
        Cluster of every row (``-1``: none, e.g. new items: they join their nearest cluster).
    lists
        ``[n, k']`` stored neighbours per row (``-1``: none or unknown), used to cross the
        clusters' borders.
    kth
        Per row, the distance a query must beat to enter the row's list (``-inf``: never).
    k, metric
        Neighbours per query; ``"cosine"`` or ``"euclidean"``.
    n_probe, min_candidates
        Clusters compared per query: the ``n_probe`` nearest, and more until they hold
        ``min_candidates`` items.
    sample, rng
        Queries searched exactly as well, to estimate the recall.

    Returns
    -------
    indices, distances
        ``[len(queries), k]``, sorted by (distance, row); a query is never its own neighbour.
    gained
        ``(row, query row, distance)`` of the pairs compared where the query beats ``kth``.
    info
        ``n_compared`` pairs, ``n_clusters`` in the index, ``estimated_recall``.
    """
    nq = len(queries)
    sq = np.einsum("ij,ij->i", data, data) if metric == "euclidean" else None
    codes, sizes, centres = _centres(data, labels)
    n_c = len(sizes)
    qv = data[queries]
    orphans = np.flatnonzero(codes < 0)  # rows without a cluster join their nearest one
    q_scores = None
    if len(orphans) and n_c:
        o_scores = _scores(data[orphans], centres, metric)
        if np.array_equal(orphans, queries):  # the usual case: the batch is both
            q_scores = o_scores
        codes[orphans] = np.argmax(o_scores, axis=1)
        sizes = np.bincount(codes, minlength=n_c)
    if n_c and (codes >= 0).all():
        from ccgraph.update._knn_kernels import group_order

        members = group_order(codes, n_c)
    else:
        members = np.argsort(codes, kind="stable")  # rows ascending within each cluster
    starts = np.r_[0, np.cumsum(sizes)]
    if q_scores is None:
        q_scores = _scores(qv, centres, metric)
    pq, pc = _probes(q_scores, sizes, n_probe=n_probe, min_candidates=min_candidates)
    order = np.argsort(pc, kind="stable")
    pq, pc = pq[order], pc[order]
    sq_q = _pick(sq, queries)
    top: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    gained: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_compared = 0
    bounds = np.r_[0, np.flatnonzero(np.diff(pc)) + 1, len(pc)] if len(pc) else np.zeros(1, int)
    from ccgraph.update._knn_kernels import scan_block

    queries64 = queries.astype(np.int64)
    with one_blas_thread():  # many small products: BLAS threads cost more than they save
        # the exact search of the recall sample (one large product) runs on the other core
        # meanwhile; it ends inside this block, before BLAS gets its threads back
        exact = start(
            _exact_kth, data, queries, sq, k, sample=sample, rng=rng, name="recall",
            priority=RECALL,
        )  # fmt: skip
        try:
            for a, b in itertools.pairwise(bounds):
                c = int(pc[a])
                qpos = pq[a:b].astype(np.int64)
                target = members[starts[c] : starts[c + 1]].astype(np.int64)
                dist = _dist(qv[qpos] @ data[target].T, _col(sq_q, qpos), _pick(sq, target))
                n_compared += dist.size
                # copies at 0, the query itself at inf, the block's top pairs and gains at once
                tq, tt, td, gt, gq, gd = scan_block(
                    np.ascontiguousarray(dist), qpos, queries64[qpos], target,
                    _copy_limit(sq, target), data, kth[target], k,
                )  # fmt: skip
                top.append((tq, tt, td))
                gained.append((gt, gq, gd))
        finally:
            with current().lend():
                wait([exact])  # also on an error: BLAS must not change under it
        sample_kth = exact.result()
    q1, t1, d1 = (np.concatenate(x) if top else np.zeros(0) for x in zip(*top, strict=True))
    top_i, _ = top_k_pairs(q1.astype(np.int64), t1.astype(np.int64), d1, nq, k)
    # one round over the stored neighbours of the neighbours found, outside the probed clusters
    hop = np.where((top_i >= 0)[:, :, None], lists[np.maximum(top_i, 0)], -1).reshape(nq, -1)
    # each query's distinct stored neighbours, ascending (sorted row by row: the queries
    # are the rows already)
    hop = np.sort(hop.astype(np.int64), axis=1)
    first = np.ones(hop.shape, dtype=bool)
    first[:, 1:] = hop[:, 1:] != hop[:, :-1]
    hq, col = np.nonzero(first & (hop >= 0))
    ht = hop[hq, col]
    probed = np.isin(hq * max(n_c, 1) + codes[ht], pq.astype(np.int64) * max(n_c, 1) + pc)
    keep = ~probed & (ht != queries[hq])
    hq, ht = hq[keep], ht[keep]
    hd = np.empty(len(hq), dtype=np.float32)
    for s in range(0, len(hq), _PAIR_BLOCK):
        a_, t_ = hq[s : s + _PAIR_BLOCK], ht[s : s + _PAIR_BLOCK]
        dots = np.einsum("ij,ij->i", qv[a_], data[t_])
        hd[s : s + len(a_)] = _dist(dots, _pick(sq_q, a_), _pick(sq, t_))
        copies_at_zero(hd[s : s + len(a_)], queries[a_], t_, data, sq)
    n_compared += len(hq)
    win = hd <= kth[ht]
    gained.append((ht[win], queries[hq[win]], hd[win]))
    top_i, top_d = top_k_pairs(
        np.concatenate([q1.astype(np.int64), hq]),
        np.concatenate([t1.astype(np.int64), ht]),
        np.concatenate([d1.astype(np.float32), hd]),
        nq,
        k,
    )
    gu, gb, gd = (np.concatenate(x) for x in zip(*gained, strict=True))
    info = {
        "search": "probe",
        "n_clusters": int(n_c),
        "n_compared": int(n_compared),
        "estimated_recall": _recall(top_d, *sample_kth),
    }
    return top_i, top_d, (gu, gb, gd.astype(np.float32)), info


def _copy_limit(sq: np.ndarray | None, target: np.ndarray) -> np.ndarray:
    """Per target, the distance below which :func:`copies_at_zero` compares the rows."""
    if sq is None:
        return np.full(len(target), _COPY_COSINE)
    return _COPY_RELATIVE * np.sqrt(sq[target]) + 1e-6


def _col(sq: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if sq is None else sq[rows][:, None]


@overload
def _pick(sq: None, rows: np.ndarray) -> None: ...
@overload
def _pick(sq: np.ndarray, rows: np.ndarray) -> np.ndarray: ...
@overload
def _pick(sq: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None: ...
def _pick(sq: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if sq is None else sq[rows]


def _exact_kth(
    data: np.ndarray,
    queries: np.ndarray,
    sq: np.ndarray | None,
    k: int,
    *,
    sample: int,
    rng: int,
) -> tuple[np.ndarray, np.ndarray]:
    """A sample of the queries (positions) and each one's exact ``k``-th distance."""
    if len(queries) == 0 or sample <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    g = np.random.default_rng(rng)
    pick = np.sort(g.choice(len(queries), size=min(sample, len(queries)), replace=False))
    rows = queries[pick]
    dots = data[rows] @ data.T
    dist = _dist(dots, _pick(sq, rows)[:, None] if sq is not None else None,
                 sq[None, :] if sq is not None else None)  # fmt: skip
    dist[np.arange(len(rows)), rows] = np.inf
    return pick, np.partition(dist, k - 1, axis=1)[:, k - 1]


def _recall(top_d: np.ndarray, pick: np.ndarray, kth: np.ndarray) -> float:
    """Share of the exact ``k``-th-distance neighbours found in ``top_d``, on the sample.

    ``pick`` and ``kth`` are :func:`_exact_kth`'s.
    """
    if len(pick) == 0:
        return 1.0
    k = top_d.shape[1]
    found = (top_d[pick] <= kth[:, None] * (1 + 1e-6) + 1e-7).sum(axis=1)
    return float(np.minimum(found, k).sum() / (k * len(pick)))
