"""Helpers shared by the cluster modules (input checks, indicators, per-cluster terms)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, check_same_ids
from ccgraph.exceptions import IdMismatchError, InputError

__all__ = [
    "as_knn_graph",
    "best_terms",
    "check_membership",
    "cluster_term_counts",
    "indicator",
    "relabel_by_size",
    "strength64",
    "unique_inverse",
    "uploader_codes",
]


def as_knn_graph(
    graph: Any, *, ids: np.ndarray | None = None, name: str = "graph", what: str = ""
) -> KnnGraph:
    """Return ``graph`` as a :class:`KnnGraph` (a scipy sparse matrix is validated and wrapped).

    A sparse input must be square, symmetric, finite and non-negative; its diagonal is dropped
    and it takes ``ids`` (default ``"0" .. "n-1"``). A ``KnnGraph`` must carry ``ids`` when they
    are given (``what`` names the call in the error).
    """
    if isinstance(graph, KnnGraph):
        if ids is not None:
            check_same_ids(graph.ids, ids, what=what or name)
        if not graph.adjacency.has_canonical_format:
            # scipy would canonicalise the frozen arrays in place (and fail) on the first
            # reduction; work on a canonical copy instead.
            adj = graph.adjacency.copy()
            adj.sum_duplicates()
            return KnnGraph(adj, graph.ids, graph.params)
        return graph
    if not sp.issparse(graph):
        raise InputError(
            f"`{name}` must be a KnnGraph or a scipy sparse adjacency matrix; "
            f"got {type(graph).__name__}"
        )
    if graph.dtype.kind not in "biuf":
        raise InputError(
            f"`{name}` weights must be real numbers; got dtype {graph.dtype} (pass the "
            "magnitudes or the real part as float)"
        )
    if ids is not None and len(ids) != graph.shape[0]:
        raise IdMismatchError(
            f"{what or name}: the graph has {graph.shape[0]} nodes but {len(ids)} ids were given"
        )
    try:
        wrapped = KnnGraph.from_adjacency(graph, ids, symmetrize="error")
    except InputError as exc:
        raise InputError(f"`{name}`: {exc}") from exc
    return as_knn_graph(wrapped)


def check_membership(name: str, membership: Any, n: int) -> np.ndarray:
    """Return ``membership`` as an int64 array of ``n`` non-negative labels, or raise."""
    arr = np.asarray(membership)
    if arr.ndim != 1 or len(arr) != n:
        raise InputError(f"`{name}` must be a 1-D array of {n} labels; got shape {arr.shape}")
    if n and arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError(f"`{name}` must hold integer cluster labels; got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if n and out.min() < 0:
        row = int(np.flatnonzero(out < 0)[0])
        raise InputError(f"`{name}` labels must be >= 0; got {out[row]} at row {row}")
    return out


def relabel_by_size(membership: np.ndarray) -> np.ndarray:
    """Relabel clusters ``0 ..`` by decreasing size; ties go to the cluster of the smaller item.

    Examples
    --------
    >>> relabel_by_size(np.array([7, 3, 3, 7, 9, 9])).tolist()
    [0, 1, 1, 0, 2, 2]
    """
    if membership.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse, counts = np.unique(
        membership, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.lexsort((first, -counts))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[inverse.ravel()]


def indicator(codes: np.ndarray, n_clusters: int) -> sp.csr_matrix:
    """Sparse ``n x n_clusters`` 0/1 matrix with a one at ``(i, codes[i])``."""
    n = len(codes)
    return sp.csr_matrix(
        (np.ones(n, dtype=np.float64), (np.arange(n), codes)), shape=(n, n_clusters)
    )


def uploader_codes(uploaders: Any, n: int) -> np.ndarray:
    """Integer code per item of ``uploaders`` (length ``n``); a missing or empty one is unique.

    Examples
    --------
    >>> uploader_codes(["ann", None, "bob", "ann", ""], 5).tolist()
    [0, 2, 1, 0, 3]
    """
    values = pd.Series(list(uploaders), dtype=object)
    missing = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    codes, uniq = pd.factorize(values.where(~missing, None), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    codes[missing] = len(uniq) + np.arange(int(missing.sum()))
    return codes


def cluster_term_counts(
    codes: np.ndarray, n_clusters: int, x: sp.csr_matrix, uploaders: np.ndarray | None
) -> sp.csr_matrix:
    r"""Clusters x terms counts: sums of ``x`` per cluster, sublinear per uploader.

    Without ``uploaders`` the count of a term in a cluster is the sum of its item values.
    With them (integer codes from :func:`uploader_codes`), the ``n`` items of one uploader in
    one cluster that carry the term count :math:`\bar w\,(1 + \ln n)` instead of
    :math:`n \bar w` (:math:`\bar w` their mean value): the sublinear term frequency of
    Manning et al. (2008, sec. 6.4.1) applied per uploader, so one uploader's tag dump
    repeated on many photos does not outweigh terms used by several uploaders, while a
    catalog with one uploader (a museum) still ranks its terms by frequency.

    References
    ----------
    .. [1] Manning, C. D., Raghavan, P. and Schutze, H. (2008). Introduction to Information
       Retrieval, section 6.4.1 (sublinear tf scaling). Cambridge University Press.
    """
    if uploaders is None:
        return sp.csr_matrix(indicator(codes, n_clusters).T @ x)
    n_up = int(uploaders.max()) + 1 if len(uploaders) else 1
    pair_key = codes.astype(np.int64) * n_up + uploaders
    pairs, pair_of = np.unique(pair_key, return_inverse=True)
    per_pair = indicator(pair_of, len(pairs)).T
    sums = sp.csr_matrix(per_pair @ x)
    present = x.copy()
    present.data = (present.data != 0).astype(np.float64)
    n_used = sp.csr_matrix(per_pair @ present)
    d = n_used.data
    n_used.data = np.divide(1.0 + np.log(np.maximum(d, 1.0)), d, out=np.zeros_like(d), where=d > 0)
    damped = sp.csr_matrix(sums.multiply(n_used))
    return sp.csr_matrix(indicator(pairs // n_up, n_clusters).T @ damped)


def strength64(adj: sp.csr_matrix) -> np.ndarray:
    """Weighted degree of each node, accumulated in float64 (the weights are float32).

    The sums ``np.bincount(rows, weights=adj.data.astype(np.float64))`` makes, bitwise, in
    one pass over the entries (:func:`ccgraph.cluster._describe_kernels.row_sums64`).
    """
    from ccgraph.cluster._describe_kernels import row_sums64

    return row_sums64(np.asarray(adj.indptr), np.asarray(adj.data))


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` of integer ids, by counting when they are dense.

    Examples
    --------
    >>> u, inv = unique_inverse(np.array([7, 3, 7, -1]))
    >>> u.tolist(), inv.tolist()
    ([-1, 3, 7], [2, 1, 2, 0])
    """
    values = np.asarray(values, dtype=np.int64).ravel()
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.intp)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 4 * len(values) + 1024:
        u, inv = np.unique(values, return_inverse=True)
        return u, inv.ravel()
    present = np.bincount(values - lo, minlength=hi - lo + 1) > 0
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present) + lo, rank[values - lo].astype(np.intp)


_SEPARATORS = re.compile(r"[\s\-_]+")


def spelling_key(term: str) -> str:
    """The key shared by spellings of one word: case, separators, an English plural ending.

    Examples
    --------
    >>> [spelling_key(t) for t in ["Pistols", "pistol", "boxes", "no-person", "glass", "bus"]]
    ['pistol', 'pistol', 'box', 'noperson', 'glass', 'bus']
    """
    key = _SEPARATORS.sub("", term.lower())
    if len(key) > 4 and key.endswith(("xes", "ches", "shes", "sses")):
        return key[:-2]
    if len(key) > 3 and key.endswith("s") and not key.endswith(("ss", "us", "is")):
        return key[:-1]
    return key


def best_terms(
    scores: sp.csr_matrix, vocab: np.ndarray, n_top: int
) -> tuple[list[list[str]], list[list[float]]]:
    """Per row of ``scores``: the ``n_top`` best terms and their scores (ties: lower column).

    A term whose :func:`spelling_key` equals that of a better term of the same row is skipped,
    so ``pistols`` does not follow ``pistol``. One sort of all entries by (row, score
    descending, column) instead of one per row; the same order as sorting each row by (score
    descending, column).

    Examples
    --------
    >>> s = sp.csr_matrix(np.array([[0.5, 0.9, 0.5], [0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]))
    >>> best_terms(s, np.array(["a", "b", "c"]), 2)
    ([['b', 'a'], [], ['a']], [[0.9, 0.5], [], [0.1]])
    >>> best_terms(sp.csr_matrix(np.array([[0.4, 0.5, 0.1]])), np.array(["cat", "cats", "x"]), 2)
    ([['cats', 'x']], [[0.5, 0.1]])
    """
    k = scores.shape[0]
    lengths = np.diff(scores.indptr)
    rows = np.repeat(np.arange(k), lengths)
    order = np.lexsort((scores.indices, -scores.data, rows))
    keys = pd.factorize(pd.Series([spelling_key(str(t)) for t in vocab], dtype=object))[0]
    first = ~pd.DataFrame({"r": rows[order], "k": keys[scores.indices[order]]}).duplicated()
    order = order[first.to_numpy()]
    kept = np.bincount(rows[order], minlength=k)
    starts_all = np.concatenate([[0], np.cumsum(kept)[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts_all, kept)
    best = order[rank < n_top]
    terms = vocab[scores.indices[best]].tolist()
    values = scores.data[best].astype(float).tolist()
    ends = np.cumsum(np.minimum(kept, n_top)).tolist()
    starts = [0, *ends[:-1]]
    return (
        [terms[a:b] for a, b in zip(starts, ends, strict=True)],
        [values[a:b] for a, b in zip(starts, ends, strict=True)],
    )
