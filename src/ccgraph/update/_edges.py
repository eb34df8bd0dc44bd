"""Edges after an update, rebuilt only around the kNN lists that changed.

:func:`ccgraph.graph.build_knn_graph` decides every pair ``(u, v)`` from the two kNN lists
alone: the mutual rule (``v`` in ``u``'s list and ``u`` in ``v``'s), the repair rule (either
lists the other among its ``min_degree`` nearest) and the weight (the distance and each end's
own list: ``sigma_u``, ``rho_u``). A pair whose two lists did not change therefore keeps its
edge and weight. :func:`local_edges` keeps those from the run's graph and decides again only
the pairs with an end whose list changed (new items, lists that took in a batch item, lists
searched again), which gives the graph a full build from the same lists gives.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["changed_lists", "local_edges"]


def changed_lists(old_in_new: np.ndarray, new: np.ndarray, is_new: np.ndarray) -> np.ndarray:
    """Rows whose list differs: ``old_in_new`` is the old list in new positions (``-1`` gone).

    Examples
    --------
    >>> changed_lists(np.array([[1, 2], [0, 2], [0, 0]]), np.array([[1, 2], [0, 3], [0, 1]]),
    ...               np.array([False, False, True])).tolist()
    [False, True, True]
    """
    return is_new | (old_in_new != new).any(axis=1)


def local_edges(
    old: sp.csr_matrix,
    indices: np.ndarray,
    distances: np.ndarray,
    changed: np.ndarray,
    *,
    metric: str,
    mutual: bool,
    min_degree: int,
    weighting: str,
    vectors: np.ndarray | None,
) -> tuple[sp.csr_matrix, dict[str, Any]]:
    """The kNN graph of the lists ``indices`` / ``distances``, reusing ``old`` where it holds.

    Parameters
    ----------
    old
        The run's graph in the rows of the lists (rows of new items empty).
    indices, distances
        The kNN lists after the update (``-1`` for an unfilled slot).
    changed
        Rows whose list differs from the one ``old`` was built from.
    metric, mutual, min_degree, weighting
        As the run's ``build_knn_graph`` call.
    vectors
        The vectors (needed by euclidean and hamming weights only).

    Returns
    -------
    scipy.sparse.csr_matrix
        The symmetric adjacency (float32, sorted indices).
    dict
        ``n_rebuilt_rows``, ``n_rebuilt_pairs`` and the connectivity counts of
        ``build_knn_graph``'s params.
    """
    from ccgraph.graph.build import _symmetric, pair_table_of
    from ccgraph.graph.weights import edge_weights
    from ccgraph.update._knn_kernels import component_labels

    start = time.perf_counter()
    n = indices.shape[0]
    changed = np.asarray(changed, dtype=bool)
    old = sp.csr_matrix(old, dtype=np.float32)
    fast = n < 2**31 and old.has_canonical_format and indices.ndim == 2 and indices.shape[1] > 0
    if fast:
        from ccgraph.update._edge_kernels import local_pairs, merge_edges

        u, v, d, in_uv, in_vu, top_m = local_pairs(
            np.ascontiguousarray(indices), np.ascontiguousarray(distances), changed, min_degree
        )
        pairs = {"u": u, "v": v, "dist": d, "in_uv": in_uv, "in_vu": in_vu, "top_m": top_m}
    else:
        # every list entry with a changed end, at its slot (so ranks stay those of the lists)
        touch = changed[:, None] | changed[np.maximum(indices, 0)] & (indices >= 0)
        t_row, t_slot = np.nonzero(touch)
        pairs = pair_table_of(
            t_row.astype(np.int64),
            indices[t_row, t_slot].astype(np.int64),
            distances[t_row, t_slot],
            t_slot,
            n=n,
            min_degree=min_degree,
        )
    mutual_pair = pairs["in_uv"] & pairs["in_vu"]
    keep = (mutual_pair | pairs["top_m"]) if mutual else np.ones(len(mutual_pair), dtype=bool)
    u, v, d = pairs["u"][keep], pairs["v"][keep], pairs["dist"][keep]
    w = edge_weights(
        u,
        v,
        d,
        weighting=weighting,
        metric=metric,
        knn_dist=distances,
        in_uv=pairs["in_uv"][keep],
        in_vu=pairs["in_vu"][keep],
        vectors=vectors if metric == "euclidean" else None,
        n_bits=vectors.shape[1] * 8 if metric == "hamming" and vectors is not None else None,
    )
    if fast:
        # the edges of unchanged pairs stay; the decided ones join them (one merge per row)
        ptr, col, val = merge_edges(
            old.indptr, old.indices, old.data, changed, u, v, w.astype(np.float32)
        )
        if len(val) < 2**31:
            ptr = ptr.astype(np.int32)  # the index dtype scipy picks for this size
        adjacency = sp.csr_matrix((val, col, ptr), shape=old.shape)
        adjacency.has_sorted_indices = True
    else:
        rows_of = np.repeat(np.arange(old.shape[0]), np.diff(old.indptr))
        hold = ~changed[rows_of] & ~changed[old.indices] & (old.data != 0)  # unchanged pairs
        indptr = np.r_[0, np.cumsum(np.bincount(rows_of[hold], minlength=old.shape[0]))]
        kept = sp.csr_matrix((old.data[hold], old.indices[hold], indptr), shape=old.shape)
        adjacency = sp.csr_matrix(kept + _symmetric(n, u, v, w), dtype=np.float32)
        adjacency.sort_indices()
    nc, labels = component_labels(adjacency.indptr, adjacency.indices)  # symmetric: no transpose
    degree = np.diff(adjacency.indptr)
    info = {
        "edges": "local",
        "n_rebuilt_rows": int(changed.sum()),
        "n_rebuilt_pairs": len(u),
        "n_items": n,
        "n_edges": int(adjacency.nnz // 2),
        "n_components": int(nc),
        "isolated": int((degree == 0).sum()),
        "largest_component_fraction": float(np.bincount(labels).max() / n) if n else 0.0,
        "timings_s": {"total": time.perf_counter() - start},
    }
    return adjacency, info
