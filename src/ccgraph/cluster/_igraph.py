"""Private CSR -> igraph conversion for the cluster stage.

Temporary: ``_csr_to_igraph`` will be replaced by ``ccgraph.graph.convert.to_igraph`` (the
project's single place that builds igraph objects) when the graph package is merged. The igraph
object never leaves the ``ccgraph.cluster`` module that asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import igraph

__all__ = ["_csr_to_igraph"]


def _csr_to_igraph(csr: sp.csr_matrix) -> igraph.Graph:
    """Return an undirected igraph Graph with a float ``"weight"`` edge attribute.

    Stand-in for ``ccgraph.graph.convert.to_igraph`` (to be swapped at merge).

    Parameters
    ----------
    csr
        Symmetric adjacency with a zero diagonal; each undirected edge ``{i, j}`` is read once
        from the upper triangle, in row-major order (so the edge order, and hence a seeded
        Leiden run, is deterministic).

    Returns
    -------
    igraph.Graph
        ``n`` vertices, one edge per stored upper-triangle entry, ``weight`` attribute.
    """
    import igraph as ig

    upper = sp.triu(csr, k=1, format="csr")
    upper.sort_indices()
    rows = np.repeat(np.arange(upper.shape[0], dtype=np.int64), np.diff(upper.indptr))
    edges = np.column_stack([rows, upper.indices.astype(np.int64)])
    g = ig.Graph(n=int(csr.shape[0]), edges=edges.tolist(), directed=False)
    g.es["weight"] = upper.data.astype(np.float64).tolist()
    return g
