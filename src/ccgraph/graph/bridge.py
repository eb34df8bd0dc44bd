"""Link the connected components of a kNN graph through their best cross edges.

Private helper of :func:`ccgraph.graph.build_knn_graph` (``bridge_components=True``).

Three stages, each a minimum spanning forest over the components (Kruskal's rule: add the
shortest edge that joins two different components):

1. candidates from the kNN lists: every listed pair whose ends lie in different components;
   the shortest such pair per pair of components is that pair's bridge;
2. if components remain, one representative per component (its strongest node: largest
   weighted degree, ties to the lower index) and an exact kNN search among representatives;
3. if components still remain, each one's representative is joined to the representative of
   the largest component.

Stage 1 adds only edges the kNN search already found; stages 2-3 are needed only when the kNN
graph itself is disconnected (truly separate groups of items).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

__all__ = ["bridge_edges", "pair_distances"]


def pair_distances(arr: np.ndarray, u: np.ndarray, v: np.ndarray, metric: str) -> np.ndarray:
    """Distances between rows ``u`` and ``v`` of prepared vectors (see ``prepare_vectors``)."""
    if metric == "hamming":
        from ccgraph.graph._exact import _popcount, pack_codes

        w = pack_codes(arr)
        return _popcount(w[u] ^ w[v]).sum(axis=1).astype(np.float32)
    diff = np.einsum("ij,ij->i", arr[u], arr[v], dtype=np.float64)
    if metric == "cosine":
        return np.maximum(1.0 - diff, 0.0).astype(np.float32)
    sq = np.einsum("ij,ij->i", arr, arr, dtype=np.float64)
    return np.sqrt(np.maximum(sq[u] + sq[v] - 2.0 * diff, 0.0)).astype(np.float32)


def _forest(
    labels: np.ndarray, n_comp: int, cu: np.ndarray, cv: np.ndarray, dist: np.ndarray
) -> np.ndarray:
    """Positions of the candidate edges that form a minimum spanning forest of the components.

    ``cu`` / ``cv`` are item ends of candidate edges; only the shortest candidate per pair of
    components is considered (ties: the first in the given order).
    """
    a, b = labels[cu], labels[cv]
    cross = np.flatnonzero(a != b)
    if cross.size == 0:
        return cross
    lo, hi = np.minimum(a[cross], b[cross]), np.maximum(a[cross], b[cross])
    order = np.lexsort((cross, dist[cross], hi, lo))
    key = lo[order].astype(np.int64) * n_comp + hi[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    best = cross[order[first]]
    best_key = key[first]  # ascending
    w = dist[best].astype(np.float64)
    w = w - w.min() + 1.0  # MST ignores zero entries; a constant shift keeps the same forest
    comp = sp.csr_matrix((w, (lo[order[first]], hi[order[first]])), shape=(n_comp, n_comp))
    tree = minimum_spanning_tree(comp).tocoo()
    tkey = np.minimum(tree.row, tree.col).astype(np.int64) * n_comp + np.maximum(tree.row, tree.col)
    return best[np.searchsorted(best_key, np.sort(tkey))]


def bridge_edges(
    adjacency: sp.csr_matrix,
    arr: np.ndarray,
    *,
    metric: str,
    cand_u: np.ndarray,
    cand_v: np.ndarray,
    cand_dist: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find edges ``(u, v, dist)`` that connect the components of ``adjacency``.

    Parameters
    ----------
    adjacency
        The weighted graph so far (symmetric CSR).
    arr
        Prepared vectors or codes (to measure stage 2-3 distances).
    metric
        kNN metric.
    cand_u, cand_v, cand_dist
        Candidate pairs from the kNN lists and their distances.

    Returns
    -------
    u, v, dist
        The added edges (``u < v``) and their distances.
    """
    n = adjacency.shape[0]
    n_comp, labels = connected_components(adjacency, directed=False)
    out_u: list[np.ndarray] = []
    out_v: list[np.ndarray] = []
    out_d: list[np.ndarray] = []

    def add(u: np.ndarray, v: np.ndarray, d: np.ndarray) -> None:
        nonlocal n_comp, labels
        out_u.append(np.minimum(u, v))
        out_v.append(np.maximum(u, v))
        out_d.append(d.astype(np.float32))
        links = sp.csr_matrix((np.ones(len(u)), (labels[u], labels[v])), shape=(n_comp, n_comp))
        n_new, merged = connected_components(links, directed=False)
        labels = merged[labels]
        n_comp = n_new

    if n_comp > 1 and len(cand_u):
        pick = _forest(labels, n_comp, cand_u, cand_v, cand_dist)
        if len(pick):
            add(cand_u[pick], cand_v[pick], cand_dist[pick])
    if n_comp > 1:
        strength = np.asarray(adjacency.sum(axis=1)).ravel()
        order = np.lexsort((np.arange(n), -strength, labels))
        first = np.ones(n, dtype=bool)
        first[1:] = labels[order][1:] != labels[order][:-1]
        reps = order[first]  # one per component, in label order
        kk = min(len(reps) - 1, 15)
        from ccgraph.graph.knn import knn_search

        idx, dist = knn_search(arr[reps], k=kk, metric=metric, backend="exact")
        ru = np.repeat(reps, kk)
        rv = reps[idx.ravel()]
        pick = _forest(labels, n_comp, ru, rv, dist.ravel())
        if len(pick):
            add(ru[pick], rv[pick], dist.ravel()[pick])
        if n_comp > 1:
            big = int(np.argmax(np.bincount(labels, minlength=n_comp)))
            _, first_rep = np.unique(labels[reps], return_index=True)
            rep_of = reps[first_rep]  # the first representative of each merged component
            others = np.flatnonzero(np.arange(n_comp) != big)
            u = rep_of[others]
            v = np.full(len(u), rep_of[big])
            add(u, v, pair_distances(arr, u, v, metric))
    if not out_u:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    return np.concatenate(out_u), np.concatenate(out_v), np.concatenate(out_d)
