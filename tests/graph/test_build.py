from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestNeighbors

from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.graph import build_knn_graph, knn_search
from ccgraph.graph.weights import umap_rho_sigma
from tests.conftest import blobs

SRC = Path(__file__).resolve().parents[2] / "src"


def edge_set(graph) -> set[tuple[int, int]]:
    coo = graph.adjacency.tocoo()
    return {(int(a), int(b)) for a, b in zip(coo.row, coo.col, strict=True) if a < b}


def knn_sets(x: np.ndarray, k: int) -> list[set[int]]:
    """kNN lists from scikit-learn (cosine, brute force), self excluded."""
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(x)
    _, idx = nn.kneighbors(x)
    return [set(row[row != i][:k].tolist()) for i, row in enumerate(idx)]


def test_hand_made_mutual_pairs_and_repair():
    # positions on a line: nearest neighbours 0<->1, 2->1, 3<->4
    x = np.array([[0.0], [1.0], [3.0], [7.0], [8.0]])
    plain = build_knn_graph(x, k=1, metric="euclidean", min_degree=0)
    assert edge_set(plain) == {(0, 1), (3, 4)}
    assert plain.params["isolated"] == 1 and plain.params["n_components"] == 3
    repaired = build_knn_graph(x, k=1, metric="euclidean", min_degree=1)
    assert edge_set(repaired) == {(0, 1), (1, 2), (3, 4)}
    assert repaired.params["isolated"] == 0
    assert repaired.params["isolated_mutual"] == 1
    assert repaired.params["n_repair_edges"] == 1
    assert repaired.params["n_components_mutual"] == 3
    assert repaired.params["n_components"] == 2


def test_mutual_edges_equal_mutual_pairs_of_sklearn_knn():
    x, _ = blobs(200, 8, centers=4, spread=0.4, seed=2)
    k = 6
    sets = knn_sets(x, k)
    mutual = {(i, j) for i in range(200) for j in sets[i] if i < j and i in sets[j]}
    g = build_knn_graph(x, k=k, min_degree=0)
    assert edge_set(g) == mutual
    assert g.params["n_mutual_edges"] == len(mutual)
    union = {(min(i, j), max(i, j)) for i in range(200) for j in sets[i]}
    assert edge_set(build_knn_graph(x, k=k, mutual=False)) == union


def test_repair_keeps_each_items_nearest_edges_and_no_isolated():
    x, _ = blobs(400, 8, centers=6, spread=0.5, seed=5)
    k, m = 8, 2
    idx, _ = knn_search(x, k=k)
    g = build_knn_graph(x, k=k, min_degree=m)
    edges = edge_set(g)
    sets = [set(r.tolist()) for r in idx]
    mutual = {(i, j) for i in range(400) for j in sets[i] if i < j and i in sets[j]}
    top = {(min(i, int(j)), max(i, int(j))) for i in range(400) for j in idx[i, :m]}
    assert edges == mutual | top
    assert g.params["isolated"] == 0
    assert g.degree.min() >= m
    plain = build_knn_graph(x, k=k, min_degree=0)
    assert plain.params["isolated"] == plain.params["isolated_mutual"]


def test_component_counts_match_networkx():
    x, _ = blobs(300, 16, centers=8, spread=0.6, seed=7)
    g = build_knn_graph(x, k=5, min_degree=1)
    nxg = nx.Graph()
    nxg.add_nodes_from(range(300))
    nxg.add_edges_from(edge_set(g))
    assert g.params["n_components"] == nx.number_connected_components(nxg)
    sizes = max(len(c) for c in nx.connected_components(nxg))
    assert g.params["largest_component_fraction"] == pytest.approx(sizes / 300)


def test_cosine_weights_are_the_cosine_of_the_pair():
    x, _ = blobs(150, 8, seed=3)
    g = build_knn_graph(x, k=5, weighting="cosine")
    coo = g.adjacency.tocoo()
    xn = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    expected = np.maximum((xn[coo.row] * xn[coo.col]).sum(1), 1e-6)
    np.testing.assert_allclose(coo.data, expected, atol=1e-5)


def test_gaussian_weights_by_hand():
    x, _ = blobs(120, 8, seed=4)
    k = 6
    _, dist = knn_search(x, k=k)
    g = build_knn_graph(x, k=k, weighting="gaussian")
    sigma = dist[:, 2].astype(np.float64)  # ceil(6 / 2) = 3rd neighbour
    coo = g.adjacency.tocoo()
    xn = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    d = 1.0 - (xn[coo.row] * xn[coo.col]).sum(1)
    expected = np.exp(-(d**2) / (sigma[coo.row] * sigma[coo.col]))
    np.testing.assert_allclose(coo.data, expected, rtol=1e-3, atol=1e-6)


def test_umap_bandwidth_solves_the_log2k_equation_and_fuzzy_union():
    x, _ = blobs(200, 8, seed=6)
    k = 10
    idx, dist = knn_search(x, k=k)
    rho, sigma = umap_rho_sigma(dist)
    np.testing.assert_allclose(rho, dist[:, 0], rtol=1e-6)
    psum = np.exp(-np.maximum(dist - rho[:, None], 0) / sigma[:, None]).sum(1)
    np.testing.assert_allclose(psum, np.log2(k), rtol=1e-4)
    g = build_knn_graph(x, k=k, weighting="umap", mutual=False)
    a = g.adjacency.toarray()
    for i in range(0, 200, 17):
        for pos, j in enumerate(idx[i]):
            p_ij = np.exp(-max(dist[i, pos] - rho[i], 0) / sigma[i])
            row_j = list(idx[j])
            p_ji = np.exp(-max(dist[i, pos] - rho[j], 0) / sigma[j]) if i in row_j else 0.0
            assert a[i, j] == pytest.approx(p_ij + p_ji - p_ij * p_ji, rel=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(8, 60),
    d=st.integers(2, 6),
    k=st.integers(1, 6),
    min_degree=st.integers(0, 2),
    weighting=st.sampled_from(["cosine", "gaussian", "umap"]),
    mutual=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_graph_invariants(n, d, k, min_degree, weighting, mutual, seed):
    k = min(k, n - 1)
    min_degree = min(min_degree, k)
    x = np.random.default_rng(seed).normal(size=(n, d))
    x[: n // 4] = x[0]  # duplicates: zero distances
    g = build_knn_graph(x, k=k, min_degree=min_degree, weighting=weighting, mutual=mutual, n_jobs=1)
    a = g.adjacency
    assert a.dtype == np.float32
    assert (a != a.T).nnz == 0
    assert a.diagonal().sum() == 0
    assert (a.data > 0).all() and (a.data <= 1).all()
    if min_degree > 0 or not mutual:
        assert g.params["isolated"] == 0
        assert g.degree.min() >= max(min_degree, 1)


def test_bridging_connects_components_with_forest_edges():
    x, _ = blobs(600, 16, centers=12, spread=0.1, seed=8)
    g0 = build_knn_graph(x, k=5)
    g1 = build_knn_graph(x, k=5, bridge_components=True)
    n_comp = g0.params["n_components"]
    assert n_comp > 1
    assert g1.params["n_components"] == 1
    assert g1.params["n_bridge_edges"] == n_comp - 1
    added = edge_set(g1) - edge_set(g0)
    assert len(added) == n_comp - 1
    _, labels = __import__("scipy.sparse.csgraph", fromlist=["x"]).connected_components(
        g0.adjacency, directed=False
    )
    assert all(labels[u] != labels[v] for u, v in added)


def test_bridging_when_the_knn_graph_itself_is_disconnected():
    # three tight far-apart groups: no kNN list crosses groups, so representatives are used
    g = np.random.default_rng(0)
    centers = np.eye(3) * 10
    x = np.repeat(centers, 6, axis=0) + g.normal(scale=0.01, size=(18, 3))
    graph = build_knn_graph(x, k=3, metric="euclidean", bridge_components=True)
    assert graph.params["n_components_repaired"] == 3
    assert graph.params["n_components"] == 1 and graph.params["n_bridge_edges"] == 2
    assert (graph.adjacency.data > 0).all()


def test_binary_codes_hamming_graph():
    g = np.random.default_rng(2)
    protos = g.integers(0, 256, size=(5, 8), dtype=np.uint8)
    codes = protos[np.arange(100) % 5] ^ np.packbits(g.random((100, 64)) < 0.03, axis=1)
    emb = Embeddings(codes, [f"img{i}" for i in range(100)], kind="binary")
    graph = build_knn_graph(emb, k=4, metric="hamming")
    assert graph.ids[0] == "img0"
    coo = graph.adjacency.tocoo()
    ham = np.unpackbits(codes[coo.row] ^ codes[coo.col], axis=1).sum(1)
    np.testing.assert_allclose(coo.data, 1 - ham / 64, atol=1e-6)


def test_params_ids_and_precomputed_knn():
    x, _ = blobs(100, 8)
    emb = Embeddings.from_array(x, [f"a{i}" for i in range(100)])
    g = build_knn_graph(emb, k=5, rng=3)
    assert list(g.ids[:2]) == ["a0", "a1"]
    for key in ("k", "metric", "mutual", "min_degree", "weighting", "backend_used", "seed"):
        assert key in g.params
    assert g.params["backend_used"] == "exact" and g.params["seed"] == 3
    pre = build_knn_graph(emb, k=5, knn=knn_search(emb, k=5))
    assert (pre.adjacency != g.adjacency).nnz == 0
    with pytest.raises(InputError, match="shape"):
        build_knn_graph(emb, k=4, knn=knn_search(emb, k=5))


def test_precomputed_knn_with_nan_distance_or_float_indices_is_rejected():
    # A NaN distance used to become a NaN edge weight; float indices were truncated silently.
    x, _ = blobs(30, 4)
    idx, dist = knn_search(x, k=3)
    bad = dist.copy()
    bad[4, 1] = np.nan
    with pytest.raises(InputError, match="row 4 has nan"):
        build_knn_graph(x, k=3, knn=(idx, bad))
    with pytest.raises(InputError, match="integers"):
        build_knn_graph(x, k=3, knn=(idx + 0.5, dist))
    missing_i, missing_d = idx.copy(), dist.copy()
    missing_i[4, 2], missing_d[4, 2] = -1, np.inf  # a missing slot may carry any distance
    assert build_knn_graph(x, k=3, knn=(missing_i, missing_d)).n_items == 30


def test_parameter_errors():
    x, _ = blobs(30, 4)
    with pytest.raises(ParameterError, match="min_degree"):
        build_knn_graph(x, k=3, min_degree=4)
    with pytest.raises(ParameterError, match="weighting"):
        build_knn_graph(x, k=3, weighting="heat")
    with pytest.raises(ParameterError, match="n=30"):
        build_knn_graph(x, k=30)
    with pytest.raises(InputError, match="mutual"):
        build_knn_graph(x, k=3, mutual="yes")


def test_small_inputs_never_load_numba():
    code = (
        "import sys, numpy as np\n"
        "from ccgraph.graph import build_knn_graph, find_duplicates\n"
        "from ccgraph.containers import Embeddings\n"
        "x = np.random.default_rng(0).normal(size=(300, 8))\n"
        "build_knn_graph(x, k=5, weighting='umap', bridge_components=True)\n"
        "find_duplicates(Embeddings.from_array(x))\n"
        "assert 'numba' not in sys.modules and 'pynndescent' not in sys.modules\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), *sys.path]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
