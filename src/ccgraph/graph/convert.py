"""The one place where igraph and networkx graph objects are built from a CSR adjacency.

Graph algorithms elsewhere take the scipy CSR and return numpy arrays; a stage that needs
igraph (Leiden, PageRank) converts here and keeps the object local.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc

from ccgraph.containers import KnnGraph
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    import igraph
    import networkx

__all__ = ["connected_components", "edge_list", "to_igraph", "to_networkx"]


def _as_csr(graph_or_csr: KnnGraph | sp.spmatrix | sp.sparray) -> tuple[sp.csr_matrix, Any]:
    if isinstance(graph_or_csr, KnnGraph):
        return graph_or_csr.adjacency, graph_or_csr.ids
    if sp.issparse(graph_or_csr):
        m = sp.csr_matrix(graph_or_csr)
        if m.shape[0] != m.shape[1]:
            raise InputError(f"the adjacency must be square; got shape {m.shape}")
        return m, None
    raise InputError(
        f"expected a KnnGraph or a scipy sparse adjacency; got {type(graph_or_csr).__name__}"
    )


def edge_list(adjacency: sp.spmatrix | sp.sparray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges ``(u, v, weight)`` with ``u < v`` of a symmetric adjacency (row order).

    Examples
    --------
    >>> a = sp.csr_matrix(np.array([[0, 2.0, 0], [2.0, 0, 1.0], [0, 1.0, 0]]))
    >>> [x.tolist() for x in edge_list(a)]
    [[0, 1], [1, 2], [2.0, 1.0]]
    """
    upper = sp.triu(sp.csr_matrix(adjacency), k=1).tocsr()
    upper.sort_indices()
    coo = upper.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)


def to_igraph(
    graph_or_csr: KnnGraph | sp.spmatrix | sp.sparray,
    *,
    weights: bool = True,
    loops: bool = False,
) -> igraph.Graph:
    """Build an undirected ``igraph.Graph``: edge attribute ``weight``, vertex ``name`` (ids).

    Parameters
    ----------
    graph_or_csr
        A :class:`KnnGraph` or a symmetric sparse adjacency (its upper triangle is read).
    weights
        Set the ``weight`` edge attribute.
    loops
        Keep the diagonal as self-loop edges of weight ``a_ii`` (igraph counts a loop twice in
        a node's strength); used for aggregated graphs whose loops hold internal weight.

    Examples
    --------
    >>> g = to_igraph(KnnGraph.from_adjacency(np.array([[0, 1.0], [1.0, 0]]), ["a", "b"]))
    >>> g.vcount(), g.ecount(), g.es["weight"], g.vs["name"]
    (2, 1, [1.0], ['a', 'b'])
    """
    import igraph

    adjacency, ids = _as_csr(graph_or_csr)
    u, v, w = edge_list(adjacency)
    if loops:
        diag = adjacency.diagonal()
        at = np.flatnonzero(diag)
        u, v, w = np.r_[u, at], np.r_[v, at], np.r_[w, diag[at].astype(np.float64)]
    g = igraph.Graph(n=adjacency.shape[0], edges=np.column_stack([u, v]).tolist(), directed=False)
    if weights:
        g.es["weight"] = w.tolist()
    if ids is not None:
        g.vs["name"] = [str(x) for x in ids]
    return g


def to_networkx(
    graph_or_csr: KnnGraph | sp.spmatrix | sp.sparray, *, weights: bool = True
) -> networkx.Graph:
    """Build an undirected ``networkx.Graph`` on nodes ``0 .. n-1`` (``id``), edge ``weight``.

    Examples
    --------
    >>> g = to_networkx(KnnGraph.from_adjacency(np.array([[0, 1.0], [1.0, 0]]), ["a", "b"]))
    >>> sorted(g.edges(data="weight")), g.nodes[0]["id"]
    ([(0, 1, 1.0)], 'a')
    """
    import networkx as nx

    adjacency, ids = _as_csr(graph_or_csr)
    u, v, w = edge_list(adjacency)
    g = nx.Graph()
    g.add_nodes_from(range(adjacency.shape[0]))
    if ids is not None:
        nx.set_node_attributes(g, {i: str(x) for i, x in enumerate(ids)}, "id")
    if weights:
        g.add_weighted_edges_from(zip(u.tolist(), v.tolist(), w.tolist(), strict=True))
    else:
        g.add_edges_from(zip(u.tolist(), v.tolist(), strict=True))
    return g


def connected_components(
    adjacency: KnnGraph | sp.spmatrix | sp.sparray,
) -> tuple[int, np.ndarray]:
    """Return the number of connected components and the component label of each node.

    Labels are numbered in the order of each component's first node (scipy.sparse.csgraph).

    Examples
    --------
    >>> a = sp.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 0], [0, 0, 0]]))
    >>> n, labels = connected_components(a)
    >>> n, labels.tolist()
    (2, [0, 0, 1])
    """
    m, _ = _as_csr(adjacency)
    n, labels = _cc(m, directed=False)
    return int(n), labels.astype(np.int64)
