"""Quality of a clustering: modularity, CPM, connectedness, agreement with known classes, tags.

All functions take the adjacency (``KnnGraph`` or scipy sparse) and/or label arrays and are
vectorised over edges and items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ccgraph._validation import check_float
from ccgraph.cluster._common import as_knn_graph, check_membership, indicator, strength64
from ccgraph.containers import Partition, check_same_ids
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from ccgraph.containers import TagSet

__all__ = [
    "adjusted_rand_index",
    "connected_share",
    "cpm_quality",
    "modularity",
    "normalized_mutual_info",
    "partition_metrics",
    "purity",
    "tag_coherence",
]


def _cluster_sums(adj: sp.csr_matrix, membership: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Twice the internal weight and the volume of each cluster ``0 .. max``."""
    k = int(membership.max()) + 1 if membership.size else 0
    if sp.issparse(adj) and adj.format == "csr" and adj.shape[0] == len(membership):
        from ccgraph.cluster._metric_kernels import cluster_sums

        return cluster_sums(adj.indptr, adj.indices, adj.data, membership.astype(np.int64), k)
    coo = adj.tocoo()
    same = membership[coo.row] == membership[coo.col]
    internal2 = np.bincount(membership[coo.row[same]], weights=coo.data[same], minlength=k)
    strength = strength64(adj)
    volume = np.bincount(membership, weights=strength, minlength=k)
    return internal2, volume


def modularity(graph: Any, membership: Any, *, resolution: float = 1.0) -> float:
    r"""Weighted (generalised) modularity of a partition.

    Parameters
    ----------
    graph
        ``KnnGraph`` or symmetric sparse adjacency (weights are used).
    membership
        Cluster label of each node (non-negative integers).
    resolution
        ``gamma`` in the formula below (1 = Newman-Girvan modularity).

    Returns
    -------
    float
        ``Q``; NaN for a graph without edges (``m = 0``: modularity is undefined), as igraph's
        ``Graph.modularity`` returns (networkx divides by zero), and for no items.

    Notes
    -----
    .. math:: Q = \frac{1}{2m}\sum_{ij}\Big(A_{ij} - \gamma\frac{k_i k_j}{2m}\Big)
              \delta(c_i, c_j) = \sum_c \Big(\frac{L_c}{m} - \gamma
              \Big(\frac{d_c}{2m}\Big)^2\Big)

    with ``L_c`` the weight inside cluster ``c``, ``d_c`` its total strength and ``m`` the total
    edge weight. This is the objective of igraph's ``community_leiden(objective_function=
    "modularity", resolution=gamma)`` and of leidenalg's ``RBConfigurationVertexPartition``.

    References
    ----------
    .. [1] Newman, M. E. J. (2006). Modularity and community structure in networks. PNAS
       103(23), 8577-8582.
    .. [2] Reichardt, J. & Bornholdt, S. (2006). Statistical mechanics of community
       detection. Phys. Rev. E 74, 016110.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> a = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]))
    >>> float(modularity(a, [0, 0, 1, 1]))
    0.5
    """
    g = as_knn_graph(graph)
    mem = check_membership("membership", membership, g.n_items)
    gamma = check_float("resolution", resolution, low=0.0)
    two_m = float(np.sum(g.adjacency.data, dtype=np.float64))
    if two_m == 0 or mem.size == 0:
        return float("nan")
    internal2, volume = _cluster_sums(g.adjacency, mem)
    return float(internal2.sum() / two_m - gamma * np.sum((volume / two_m) ** 2))


def cpm_quality(graph: Any, membership: Any, *, resolution: float = 1.0) -> float:
    r"""Constant Potts Model quality (Traag et al. 2011).

    Notes
    -----
    .. math:: H = \sum_c \Big(L_c - \gamma\binom{n_c}{2}\Big)

    with ``L_c`` the edge weight inside cluster ``c`` and ``n_c`` its size. leidenalg's
    ``CPMVertexPartition.quality()`` sums over ordered pairs and reports ``2 H``; igraph's CPM
    counts ``n_c^2 / 2`` pairs, a constant ``gamma * n / 2`` away. All three have the same
    maximisers.

    References
    ----------
    .. [1] Traag, V. A., Van Dooren, P. & Nesterov, Y. (2011). Narrow scope for
       resolution-limit-free community detection. Phys. Rev. E 84, 016114.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> a = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]))
    >>> float(cpm_quality(a, [0, 0, 0], resolution=0.5))
    1.5
    """
    g = as_knn_graph(graph)
    mem = check_membership("membership", membership, g.n_items)
    gamma = check_float("resolution", resolution, low=0.0)
    if mem.size == 0:
        return float("nan")
    internal2, _ = _cluster_sums(g.adjacency, mem)
    sizes = np.bincount(mem).astype(np.float64)
    return float(internal2.sum() / 2 - gamma * np.sum(sizes * (sizes - 1) / 2))


def connected_share(graph: Any, membership: Any) -> float:
    """Share of clusters whose induced subgraph is connected (Leiden guarantees 1.0).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    >>> connected_share(a, [0, 0, 0]), connected_share(a, [0, 0, 1])
    (0.0, 1.0)
    """
    g = as_knn_graph(graph)
    mem = check_membership("membership", membership, g.n_items)
    if mem.size == 0:
        return float("nan")
    coo = g.adjacency.tocoo()
    same = mem[coo.row] == mem[coo.col]
    inner = sp.csr_matrix((coo.data[same], (coo.row[same], coo.col[same])), shape=g.adjacency.shape)
    _, comp = connected_components(inner, directed=False)
    pairs = np.unique(np.column_stack([mem, comp]), axis=0)
    pieces = np.bincount(pairs[:, 0])
    used = pieces > 0
    return float(np.mean(pieces[used] == 1))


def _contingency(labels_true: Any, labels_pred: Any) -> sp.csr_matrix:
    a = np.asarray(labels_true)
    b = np.asarray(labels_pred)
    if a.ndim != 1 or b.ndim != 1 or len(a) != len(b):
        raise InputError(
            f"`labels_true` and `labels_pred` must be 1-D of equal length; got shapes "
            f"{a.shape} and {b.shape}"
        )
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    ia, ib = ia.ravel(), ib.ravel()
    shape = (int(ia.max()) + 1 if ia.size else 0, int(ib.max()) + 1 if ib.size else 0)
    c = sp.csr_matrix((np.ones(len(ia)), (ia, ib)), shape=shape)
    c.sum_duplicates()
    return c


def _entropy(counts: np.ndarray, n: float) -> float:
    p = counts[counts > 0] / n
    return float(-np.sum(p * np.log(p)))


def normalized_mutual_info(labels_true: Any, labels_pred: Any) -> float:
    """Normalised mutual information with the arithmetic-mean normaliser (scikit-learn's default).

    Notes
    -----
    ``NMI = I(U; V) / ((H(U) + H(V)) / 2)``; 1.0 when both labelings are a single class.

    References
    ----------
    .. [1] Vinh, N. X., Epps, J. & Bailey, J. (2010). Information theoretic measures for
       clusterings comparison. JMLR 11, 2837-2854.

    Examples
    --------
    >>> normalized_mutual_info([0, 0, 1, 1], [5, 5, 2, 2])
    1.0
    """
    c = _contingency(labels_true, labels_pred)
    n = float(c.sum())
    if n == 0 or (c.shape[0] == 1 and c.shape[1] == 1):
        return 1.0
    rows = np.asarray(c.sum(axis=1)).ravel()
    cols = np.asarray(c.sum(axis=0)).ravel()
    coo = c.tocoo()
    nij = coo.data
    mi = float(np.sum(nij / n * np.log(nij * n / (rows[coo.row] * cols[coo.col]))))
    denom = (_entropy(rows, n) + _entropy(cols, n)) / 2
    return float(max(mi, 0.0) / denom) if denom > 0 else 1.0


def adjusted_rand_index(labels_true: Any, labels_pred: Any) -> float:
    """Return the adjusted Rand index (Hubert & Arabie 1985).

    Notes
    -----
    With ``a = sum_ij C(n_ij, 2)``, ``b = sum_i C(n_i., 2)``, ``c = sum_j C(n_.j, 2)``:
    ``ARI = (a - bc / C(n, 2)) / ((b + c) / 2 - bc / C(n, 2))``; 1.0 when the denominator is 0.

    References
    ----------
    .. [1] Hubert, L. & Arabie, P. (1985). Comparing partitions. Journal of Classification 2,
       193-218.

    Examples
    --------
    >>> adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    c = _contingency(labels_true, labels_pred)
    n = float(c.sum())

    def comb2(x: np.ndarray) -> float:
        return float(np.sum(x * (x - 1) / 2))

    a = comb2(c.tocoo().data)
    b = comb2(np.asarray(c.sum(axis=1)).ravel())
    cc = comb2(np.asarray(c.sum(axis=0)).ravel())
    total = n * (n - 1) / 2
    expected = b * cc / total if total > 0 else 0.0
    denom = (b + cc) / 2 - expected
    return float((a - expected) / denom) if denom != 0 else 1.0


def purity(labels_true: Any, labels_pred: Any) -> float:
    """Share of items whose cluster's majority class is their own class.

    Examples
    --------
    >>> purity([0, 0, 1, 1], [0, 0, 0, 1])
    0.75
    """
    c = _contingency(labels_true, labels_pred)
    n = float(c.sum())
    return float(np.asarray(c.max(axis=0).todense()).sum() / n) if n else float("nan")


def tag_coherence(membership: Any, tags: TagSet) -> float:
    r"""Mean cosine similarity of the tag vectors of two tagged items in the same cluster.

    Compare with the same function on a single-cluster membership (the baseline of a random
    pair) to read it as a lift.

    Notes
    -----
    With ``x_i`` the L2-normalised tag row of item ``i`` and ``S_c = sum_{i in c} x_i`` over the
    ``T_c`` tagged items of ``c``, the sum over ordered pairs ``i != j`` of ``x_i . x_j`` is
    ``||S_c||^2 - T_c``, so

    .. math:: \text{coherence} = \frac{\sum_c (\|S_c\|^2 - T_c)}{\sum_c T_c (T_c - 1)}

    (NaN when no cluster holds two tagged items).

    Examples
    --------
    >>> import pandas as pd
    >>> from ccgraph.containers import TagSet
    >>> t = TagSet.from_frame(pd.DataFrame({"id": ["a", "b", "c", "d"],
    ...                                     "tag": ["x", "x", "y", "y"]}), list("abcd"))
    >>> tag_coherence([0, 0, 1, 1], t), tag_coherence([0, 1, 0, 1], t)
    (1.0, 0.0)
    """
    mem = check_membership("membership", membership, len(tags.ids))
    x = tags.matrix.astype(np.float64).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    tagged = norms > 0
    if not tagged.any():
        return float("nan")
    xn = sp.diags(np.where(tagged, 1.0 / np.where(tagged, norms, 1.0), 0.0)) @ x
    codes = np.unique(mem, return_inverse=True)[1].ravel()
    k = int(codes.max()) + 1
    s = indicator(codes, k).T @ xn
    s_sq = np.asarray(s.multiply(s).sum(axis=1)).ravel()
    t_c = np.bincount(codes, weights=tagged.astype(np.float64), minlength=k)
    pairs = float(np.sum(t_c * (t_c - 1)))
    return float(np.sum(s_sq - t_c) / pairs) if pairs > 0 else float("nan")


def partition_metrics(
    graph: Any,
    partition: Partition,
    *,
    labels_true: Any = None,
    tags: TagSet | None = None,
) -> dict[str, float]:
    """All the quality figures of one partition in a flat dict (for reports and benchmarks).

    Keys: ``n_clusters``, ``modularity`` (resolution 1), ``connected_share``, and when given
    ``nmi``, ``ari``, ``purity`` (against ``labels_true``), ``tag_coherence`` and
    ``tag_coherence_baseline`` (all items in one cluster).

    On a graph without edges ``modularity`` is NaN (undefined; igraph returns NaN too, see
    :func:`modularity`) and ``connected_share`` counts only the single-item clusters as
    connected.
    """
    g = as_knn_graph(graph, ids=partition.ids, what="partition_metrics(graph, partition)")
    mem = partition.membership
    out: dict[str, float] = {
        "n_clusters": float(partition.n_clusters),
        "modularity": modularity(g, mem),
        "connected_share": connected_share(g, mem),
    }
    if labels_true is not None:
        out["nmi"] = normalized_mutual_info(labels_true, mem)
        out["ari"] = adjusted_rand_index(labels_true, mem)
        out["purity"] = purity(labels_true, mem)
    if tags is not None:
        check_same_ids(g.ids, tags.ids, what="partition_metrics(graph, tags)")
        out["tag_coherence"] = tag_coherence(mem, tags)
        out["tag_coherence_baseline"] = tag_coherence(np.zeros_like(mem), tags)
    return out
