from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.graph import build_knn_graph, connected_components, to_igraph, to_networkx
from tests.conftest import blobs


def csr_edges(a) -> dict[tuple[int, int], float]:
    coo = a.tocoo()
    return {
        (int(i), int(j)): float(w)
        for i, j, w in zip(coo.row, coo.col, coo.data, strict=True)
        if i < j
    }


def test_igraph_round_trip():
    x, _ = blobs(200, 8, seed=1)
    g = build_knn_graph(x, k=6)
    ig = to_igraph(g)
    assert ig.vcount() == 200 and not ig.is_directed()
    edges = {tuple(sorted(e)): w for e, w in zip(ig.get_edgelist(), ig.es["weight"], strict=True)}
    ref = csr_edges(g.adjacency)
    assert edges.keys() == ref.keys()
    np.testing.assert_allclose([edges[e] for e in ref], list(ref.values()), rtol=1e-6)
    assert ig.vs["name"] == list(g.ids)
    assert "weight" not in to_igraph(g.adjacency, weights=False).es.attributes()


def test_networkx_round_trip():
    x, _ = blobs(150, 8, seed=2)
    g = build_knn_graph(x, k=5, weighting="umap")
    nxg = to_networkx(g)
    back = nx.to_scipy_sparse_array(nxg, nodelist=range(150), weight="weight", format="csr")
    np.testing.assert_allclose(back.toarray(), g.adjacency.toarray(), rtol=1e-6)
    assert nxg.nodes[3]["id"] == g.ids[3]


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 40), p=st.floats(0.0, 0.2), seed=st.integers(0, 100))
def test_connected_components_match_networkx(n, p, seed):
    nxg = nx.gnp_random_graph(n, p, seed=seed)
    a = nx.to_scipy_sparse_array(nxg, nodelist=range(n), format="csr")
    count, labels = connected_components(a)
    assert count == nx.number_connected_components(nxg)
    for comp in nx.connected_components(nxg):
        assert len({labels[i] for i in comp}) == 1
