"""Build the similarity graph: kNN search, mutual rule, connectivity repair, weights, bridges."""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ccgraph._random import RngLike, derive_seed
from ccgraph._validation import check_choice, check_int
from ccgraph.containers import Embeddings, KnnGraph, as_ids
from ccgraph.exceptions import DataQualityWarning, InputError
from ccgraph.graph.knn import (
    BACKENDS,
    check_knn_lists,
    choose_backend,
    estimate_recall,
    knn_search,
    prepare_vectors,
)
from ccgraph.graph.weights import WEIGHTINGS, edge_weights

__all__ = ["build_knn_graph"]

logger = logging.getLogger(__name__)

#: Warn (DataQualityWarning) when the estimated recall of an approximate search is below this.
RECALL_WARNING = 0.9


def build_knn_graph(
    embeddings: Embeddings | np.ndarray,
    *,
    k: int = 15,
    metric: str = "cosine",
    mutual: bool = True,
    min_degree: int = 1,
    weighting: str = "cosine",
    backend: str = "auto",
    bridge_components: bool = False,
    rng: RngLike = None,
    n_jobs: int | None = None,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> KnnGraph:
    """Build a weighted, symmetric mutual-kNN graph that leaves no item isolated.

    Parameters
    ----------
    embeddings
        Item vectors (dense) or packed hash codes (``kind="binary"``, with ``metric="hamming"``);
        a plain array gets ids ``"0" .. "n-1"``.
    k
        Neighbours per item in the kNN search (``1 <= k < n``).
    metric
        ``"cosine"``, ``"euclidean"`` or ``"hamming"`` (see :func:`knn_search`).
    mutual
        Keep an edge only if each end lists the other among its ``k`` neighbours (plus the
        repair edges below); False keeps every listed pair (the symmetrised kNN graph).
    min_degree
        Connectivity repair: every item also keeps the edges to its ``min_degree`` nearest
        neighbours, so no item is isolated. 0 gives the plain mutual-kNN graph.
    weighting
        ``"cosine"``, ``"gaussian"`` (adaptive) or ``"umap"`` (fuzzy kernel); formulas in
        :func:`ccgraph.graph.weights.edge_weights`.
    backend
        kNN backend: ``"auto"``, ``"exact"``, ``"cells"`` or ``"pynndescent"``.
    bridge_components
        Join the remaining connected components by a minimum spanning forest of their best
        cross edges (see :mod:`ccgraph.graph.bridge`), leaving one component.
    rng
        Seed for the approximate search (recorded as ``params["seed"]``).
    n_jobs
        Threads (None = all cores).
    knn
        Precomputed ``(indices, distances)`` from :func:`knn_search` (skips the search).

    Returns
    -------
    KnnGraph
        Symmetric CSR (float32 weights in ``(0, 1]``, zero diagonal), the ids, and ``params``:
        the arguments, ``backend_used``, ``seed``, ``n_edges``, ``mutual_fraction`` (share of
        the ``n k`` listed pairs that are mutual), ``n_mutual_edges``, ``n_repair_edges``,
        ``n_bridge_edges``, ``estimated_recall`` (of an approximate search, on 200 sampled
        items; None for exact), ``n_components_mutual`` / ``isolated_mutual`` (plain mutual graph),
        ``n_components_repaired`` / ``isolated_repaired`` (after repair), ``n_components`` /
        ``isolated`` / ``largest_component_fraction`` (final), ``timings_s``.

    Notes
    -----
    With ``N_k(i)`` the ``k`` nearest neighbours of ``i`` and ``N_m(i)`` the nearest
    ``m = min_degree``, the edge set is

    ``E = {(i, j) : j in N_k(i) and i in N_k(j)}  union  {(i, j) : j in N_m(i) or i in N_m(j)}``

    (mutual pairs, plus each item's ``m`` strongest links), as in the mutual-kNN graphs with
    a minimum-spanning-tree or kNN repair of Brito et al. and Ozaki et al.; every item then
    has degree >= ``m``.

    References
    ----------
    .. [1] M. R. Brito, E. L. Chavez, A. J. Quiroz and J. E. Yukich, "Connectivity of the
       mutual k-nearest-neighbor graph in clustering and outlier detection", Statistics &
       Probability Letters 35(1), 1997.
    .. [2] K. Ozaki, M. Shimbo, M. Komachi and Y. Matsumoto, "Using the mutual k-nearest
       neighbor graphs for semi-supervised classification of natural language data", CoNLL 2011.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99], [0.7, 0.7]])
    >>> g = build_knn_graph(x, k=1)
    >>> g.n_edges, g.params["isolated"], g.params["isolated_mutual"]
    (3, 0, 1)
    """
    start = time.perf_counter()
    k = check_int("k", k, low=1)
    min_degree = check_int("min_degree", min_degree, low=0, high=k)
    check_choice("weighting", weighting, WEIGHTINGS)
    check_choice("backend", backend, BACKENDS)
    for name, flag in (("mutual", mutual), ("bridge_components", bridge_components)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InputError(f"`{name}` must be True or False; got {flag!r}")
    ids = embeddings.ids if isinstance(embeddings, Embeddings) else None
    arr = prepare_vectors(embeddings, metric)
    n = arr.shape[0]
    ids = as_ids(ids if ids is not None else np.arange(n), n)
    seed = derive_seed(rng)
    recall = None
    if knn is None:
        indices, dist = knn_search(
            arr, k=k, metric=metric, backend=backend, rng=seed, n_jobs=n_jobs
        )
        used = choose_backend(n, metric, backend)
        if used != "exact":
            recall = estimate_recall(arr, indices, dist, metric=metric, rng=seed)
            if recall < RECALL_WARNING:
                warnings.warn(
                    f"the approximate kNN search found only {recall:.1%} of the true neighbours "
                    f"(estimated on 200 items); use backend='exact' or raise k",
                    DataQualityWarning,
                    stacklevel=2,
                )
    else:
        indices, dist = check_knn_lists(knn, n, k)
        used = "precomputed"
    t_knn = time.perf_counter() - start

    pairs = _pair_table(indices, dist, min_degree)
    mutual_pair = pairs["in_uv"] & pairs["in_vu"]
    keep = (mutual_pair | pairs["top_m"]) if mutual else np.ones(len(mutual_pair), dtype=bool)
    stats: dict[str, Any] = {
        "mutual_fraction": float(2 * mutual_pair.sum() / max(1, np.count_nonzero(indices >= 0))),
        "n_mutual_edges": int(mutual_pair.sum()),
    }
    if mutual:
        nc, iso = _components(n, pairs["u"][mutual_pair], pairs["v"][mutual_pair])
        stats |= {"n_components_mutual": nc, "isolated_mutual": iso}
        stats["n_repair_edges"] = int((keep & ~mutual_pair).sum())
    u, v, d = pairs["u"][keep], pairs["v"][keep], pairs["dist"][keep]
    in_uv, in_vu = pairs["in_uv"][keep], pairs["in_vu"][keep]
    nc, iso = _components(n, u, v)
    stats |= {"n_components_repaired": nc, "isolated_repaired": iso, "n_bridge_edges": 0}

    if bridge_components and nc > 1:
        from ccgraph.graph.bridge import bridge_edges

        pattern = _symmetric(n, u, v, np.ones(len(u), dtype=np.float32))
        rest = ~keep
        bu, bv, bd = bridge_edges(
            pattern,
            arr,
            metric=metric,
            cand_u=pairs["u"][rest],
            cand_v=pairs["v"][rest],
            cand_dist=pairs["dist"][rest],
        )
        b_uv, b_vu = _listed(indices, bu, bv), _listed(indices, bv, bu)
        u, v, d = np.concatenate([u, bu]), np.concatenate([v, bv]), np.concatenate([d, bd])
        in_uv, in_vu = np.concatenate([in_uv, b_uv]), np.concatenate([in_vu, b_vu])
        stats["n_bridge_edges"] = len(bu)

    w = edge_weights(
        u,
        v,
        d,
        weighting=weighting,
        metric=metric,
        knn_dist=dist,
        in_uv=in_uv,
        in_vu=in_vu,
        vectors=arr if metric == "euclidean" else None,
        n_bits=arr.shape[1] * 8 if metric == "hamming" else None,
    )
    adjacency = _symmetric(n, u, v, w)
    nc, labels = connected_components(adjacency, directed=False)
    degree = np.diff(adjacency.indptr)
    params = {
        "k": k,
        "metric": metric,
        "mutual": bool(mutual),
        "min_degree": min_degree,
        "weighting": weighting,
        "backend": backend,
        "backend_used": used,
        "bridge_components": bool(bridge_components),
        "seed": seed,
        "n_jobs": n_jobs,
        "estimated_recall": recall,
        "n_items": n,
        "n_edges": len(u),
        **stats,
        "n_components": int(nc),
        "isolated": int((degree == 0).sum()),
        "largest_component_fraction": float(np.bincount(labels).max() / n),
        "timings_s": {"knn": t_knn, "total": time.perf_counter() - start},
    }
    logger.info(
        "kNN graph: %d items, %d edges, %d components, %d isolated",
        n,
        len(u),
        nc,
        params["isolated"],
    )
    return KnnGraph(adjacency, ids, params)


def _pair_table(indices: np.ndarray, dist: np.ndarray, min_degree: int) -> dict[str, np.ndarray]:
    """One row per unordered pair ``u < v`` listed in either kNN list.

    Columns: ``dist`` (the smaller of the two listed distances), ``in_uv`` (``v`` in ``u``'s
    list), ``in_vu``, and ``top_m`` (either end lists the other among its ``min_degree``
    nearest).
    """
    n, k = indices.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = indices.ravel().astype(np.int64)
    return pair_table_of(
        rows, cols, dist.ravel(), np.tile(np.arange(k), n), n=n, min_degree=min_degree
    )


def pair_table_of(
    rows: np.ndarray,
    cols: np.ndarray,
    dd: np.ndarray,
    rank: np.ndarray,
    *,
    n: int,
    min_degree: int,
) -> dict[str, np.ndarray]:
    """:func:`_pair_table` of some list entries: row, listed item, distance and slot each.

    An update decides only the pairs around changed lists, so it passes just their entries.
    """
    ok = (cols >= 0) & (cols != rows)
    rows, cols, dd, rank = rows[ok], cols[ok], dd[ok], rank[ok]
    forward = rows < cols
    lo = np.where(forward, rows, cols)
    hi = np.where(forward, cols, rows)
    keys, inv = np.unique(lo * n + hi, return_inverse=True)
    inv = inv.ravel()
    m = len(keys)
    in_uv = np.zeros(m, dtype=bool)
    in_vu = np.zeros(m, dtype=bool)
    in_uv[inv[forward]] = True
    in_vu[inv[~forward]] = True
    d_uv = np.full(m, np.inf, dtype=np.float32)
    d_vu = np.full(m, np.inf, dtype=np.float32)
    d_uv[inv[forward]] = dd[forward]
    d_vu[inv[~forward]] = dd[~forward]
    top_m = np.zeros(m, dtype=bool)
    top_m[inv[rank < min_degree]] = True
    return {
        "u": keys // n,
        "v": keys % n,
        "dist": np.fmin(d_uv, d_vu),
        "in_uv": in_uv,
        "in_vu": in_vu,
        "top_m": top_m,
    }


def _listed(indices: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether ``b[i]`` is in the kNN list of ``a[i]``."""
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    return (indices[a] == b[:, None]).any(axis=1)


def _symmetric(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
    """Symmetric CSR with ``w`` at ``(u, v)`` and ``(v, u)``; pairs are unique and ``u != v``."""
    m = sp.csr_matrix(
        (np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))),
        shape=(n, n),
        dtype=np.float32,
    )
    m.sort_indices()
    return m


def _components(n: int, u: np.ndarray, v: np.ndarray) -> tuple[int, int]:
    """Count the components and the isolated nodes of the graph with edges ``(u, v)``."""
    g = _symmetric(n, u, v, np.ones(len(u), dtype=np.float32))
    nc, _ = connected_components(g, directed=False)
    return int(nc), int((np.diff(g.indptr) == 0).sum())
