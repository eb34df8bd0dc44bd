from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ccgraph.containers import Embeddings, KnnGraph
from ccgraph.exceptions import IdMismatchError, ParameterError
from ccgraph.graph import build_knn_graph, concat_embeddings, fuse_graphs
from tests.conftest import blobs


def graph(entries: dict[tuple[int, int], float], n: int = 3, ids=None) -> KnnGraph:
    a = np.zeros((n, n))
    for (i, j), w in entries.items():
        a[i, j] = a[j, i] = w
    return KnnGraph.from_adjacency(a, ids)


def test_weights_one_zero_reproduce_the_single_graph():
    x, _ = blobs(120, 8, seed=1)
    y, _ = blobs(120, 8, seed=2)
    g1 = build_knn_graph(x, k=5)
    g2 = build_knn_graph(y, k=5, weighting="gaussian")
    fused = fuse_graphs([g1, g2], weights=[1.0, 0.0])
    assert (fused.adjacency != g1.adjacency).nnz == 0
    np.testing.assert_array_equal(fused.adjacency.data, g1.adjacency.data)
    fused2 = fuse_graphs({"image": g1, "text": g2}, weights={"image": 0, "text": 2, "x": 5})
    np.testing.assert_array_equal(fused2.adjacency.toarray(), g2.adjacency.toarray())


def test_mixed_weights_equal_the_hand_computed_formula():
    a = graph({(0, 1): 1.0, (1, 2): 0.5})  # mean edge weight 0.75
    b = graph({(0, 1): 0.2, (0, 2): 0.4})  # mean edge weight 0.3
    fused = fuse_graphs([a, b], weights=[1, 3]).adjacency.toarray()
    # p = (1/4, 3/4); mu_bar = 0.25 * 0.75 + 0.75 * 0.3 = 0.4125
    # (0,1): 0.4125 * (0.25 * 1 / 0.75 + 0.75 * 0.2 / 0.3) = 0.34375
    # (1,2): 0.4125 * (0.25 * 0.5 / 0.75) = 0.06875
    # (0,2): 0.4125 * (0.75 * 0.4 / 0.3) = 0.4125
    expected = np.array([[0, 0.34375, 0.4125], [0.34375, 0, 0.06875], [0.4125, 0.06875, 0]])
    np.testing.assert_allclose(fused, expected, rtol=1e-6)
    assert sp.isspmatrix_csr(fuse_graphs([a, b], weights=[1, 3]).adjacency)


def test_fusion_checks_ids_and_weights():
    a = graph({(0, 1): 1.0}, ids=["a", "b", "c"])
    b = graph({(0, 1): 1.0}, ids=["a", "c", "b"])
    with pytest.raises(IdMismatchError):
        fuse_graphs([a, b], weights=[1, 1])
    with pytest.raises(ParameterError, match="zero"):
        fuse_graphs([a, a], weights=[0, 0])
    with pytest.raises(ParameterError, match="weights"):
        fuse_graphs([a, a], weights=[1, -1])
    with pytest.raises(ParameterError, match="2 graphs"):
        fuse_graphs([a, a], weights=[1])
    with pytest.raises(ParameterError, match="no entry"):
        fuse_graphs({"image": a, "text": a}, weights={"image": 1})


def test_concat_cosine_is_the_weighted_mean_of_block_cosines():
    x, _ = blobs(50, 6, seed=3)
    y, _ = blobs(50, 10, seed=4)
    ex, ey = Embeddings.from_array(x), Embeddings.from_array(y * 7)
    c = concat_embeddings([ex, ey], weights=[2, 1])
    assert c.shape == (50, 16)
    np.testing.assert_allclose(np.linalg.norm(c.vectors, axis=1), 1.0, atol=1e-6)
    cx = ex.vectors @ ex.vectors.T
    cy = ey.vectors @ ey.vectors.T
    np.testing.assert_allclose(c.vectors @ c.vectors.T, (2 * cx + cy) / 3, atol=1e-5)


def test_concat_binary_codes_enter_as_signs():
    g = np.random.default_rng(0)
    codes = g.integers(0, 256, size=(20, 8), dtype=np.uint8)
    hashes = Embeddings(codes, np.arange(20).astype(str), kind="binary")
    x, _ = blobs(20, 4)
    dense = Embeddings.from_array(x)
    c = concat_embeddings({"image": hashes, "text": dense}, weights={"image": 1, "text": 1})
    ham = np.unpackbits(codes[:, None, :] ^ codes[None, :, :], axis=2).sum(-1)
    expected = 0.5 * (1 - 2 * ham / 64) + 0.5 * (dense.vectors @ dense.vectors.T)
    np.testing.assert_allclose(c.vectors @ c.vectors.T, expected, atol=1e-5)
    g_concat = build_knn_graph(c, k=3)
    assert g_concat.params["isolated"] == 0
