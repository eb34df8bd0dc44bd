from __future__ import annotations

import itertools

import igraph as ig
import leidenalg as la
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ccgraph.cluster import (
    adjusted_rand_index,
    connected_share,
    cpm_quality,
    leiden,
    modularity,
    normalized_mutual_info,
    partition_metrics,
    purity,
    tag_coherence,
)
from ccgraph.containers import KnnGraph, Partition, TagSet
from ccgraph.exceptions import IdMismatchError, InputError, ParameterError
from tests.cluster._graphs import planted_partition


def random_weighted_graph(n: int, p: float, seed: int) -> sp.csr_matrix:
    g = np.random.default_rng(seed)
    upper = np.triu(g.random((n, n)) < p, k=1) * g.uniform(0.1, 2.0, size=(n, n))
    return sp.csr_matrix(upper + upper.T)


def to_nx(a: sp.csr_matrix) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(a.shape[0]))
    coo = sp.triu(a, k=1).tocoo()
    g.add_weighted_edges_from(
        zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )
    return g


def communities(membership: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(membership == c).tolist()) for c in np.unique(membership)]


@pytest.mark.parametrize("resolution", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_modularity_matches_networkx_and_igraph(resolution, seed):
    a = random_weighted_graph(30, 0.2, seed)
    mem = np.random.default_rng(seed).integers(0, 4, size=30)
    ours = modularity(a, mem, resolution=resolution)
    ref = nx.community.modularity(
        to_nx(a), communities(mem), weight="weight", resolution=resolution
    )
    ig_graph = ig.Graph.Weighted_Adjacency(sp.triu(a).toarray().tolist(), mode="upper")
    ref_ig = ig_graph.modularity(mem.tolist(), weights="weight", resolution=resolution)
    assert ours == pytest.approx(ref)
    assert ours == pytest.approx(ref_ig)


def test_modularity_of_leiden_result_matches_networkx():
    a, _ = planted_partition(seed=4, weighted=True)
    p = leiden(a, rng=0)
    ref = nx.community.modularity(to_nx(a), communities(p.membership), weight="weight")
    assert p.quality == pytest.approx(ref)


def test_cpm_quality_matches_leidenalg():
    a = random_weighted_graph(30, 0.2, 5)
    mem = np.random.default_rng(5).integers(0, 4, size=30)
    ig_graph = ig.Graph.Weighted_Adjacency(sp.triu(a).toarray().tolist(), mode="upper")
    part = la.CPMVertexPartition(
        ig_graph, initial_membership=mem.tolist(), weights="weight", resolution_parameter=0.3
    )
    # leidenalg sums over ordered pairs, i.e. reports twice the textbook H
    assert cpm_quality(a, mem, resolution=0.3) == pytest.approx(part.quality() / 2)


def test_modularity_edge_cases():
    assert np.isnan(modularity(sp.csr_matrix((3, 3)), [0, 1, 2]))
    a = random_weighted_graph(10, 0.5, 0)
    assert modularity(a, np.zeros(10, dtype=int)) == pytest.approx(0.0)
    with pytest.raises(ParameterError, match="`resolution`"):
        modularity(a, np.zeros(10, dtype=int), resolution=-1)
    with pytest.raises(InputError, match="`membership`"):
        modularity(a, np.zeros(9, dtype=int))
    with pytest.raises(InputError, match="`membership`"):
        modularity(a, -np.ones(10, dtype=int))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_connected_share_matches_networkx(seed, k):
    a = random_weighted_graph(25, 0.08, seed)
    mem = np.random.default_rng(seed).integers(0, k, size=25)
    g = to_nx(a)
    expected = np.mean([nx.is_connected(g.subgraph(c)) for c in communities(mem)])
    assert connected_share(a, mem) == pytest.approx(expected)


labels = st.lists(st.integers(0, 5), min_size=2, max_size=60)


@given(labels, st.data())
def test_nmi_and_ari_match_sklearn(true, data):
    pred = data.draw(st.lists(st.integers(0, 7), min_size=len(true), max_size=len(true)))
    assert normalized_mutual_info(true, pred) == pytest.approx(
        normalized_mutual_info_score(true, pred), abs=1e-10
    )
    assert adjusted_rand_index(true, pred) == pytest.approx(
        adjusted_rand_score(true, pred), abs=1e-10
    )


def test_nmi_ari_accept_string_classes():
    true = ["cat", "cat", "dog", "dog"]
    assert normalized_mutual_info(true, [1, 1, 0, 0]) == pytest.approx(1.0)
    assert adjusted_rand_index(true, [1, 1, 0, 0]) == pytest.approx(1.0)
    with pytest.raises(InputError, match="labels_true"):
        normalized_mutual_info(true, [1, 1])


def test_purity_by_hand():
    # cluster 0 holds classes a, a, b -> 2; cluster 1 holds b, c, c, c -> 3; purity 5 / 7
    true = ["a", "a", "b", "b", "c", "c", "c"]
    pred = [0, 0, 0, 1, 1, 1, 1]
    assert purity(true, pred) == pytest.approx(5 / 7)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_tag_coherence_matches_pairwise_loop(seed):
    g = np.random.default_rng(seed)
    n, n_tags = 20, 5
    dense = (g.random((n, n_tags)) < 0.3) * g.uniform(0.2, 1.0, size=(n, n_tags))
    rows, cols = np.nonzero(dense)
    frame = pd.DataFrame(
        {"id": [str(r) for r in rows], "tag": [f"t{c}" for c in cols], "weight": dense[rows, cols]}
    )
    tags = TagSet.from_frame(frame, [str(i) for i in range(n)])
    mem = g.integers(0, 3, size=n)
    x = tags.matrix.toarray().astype(np.float64)
    norms = np.linalg.norm(x, axis=1)
    sims = []
    for i, j in itertools.permutations(range(n), 2):
        if mem[i] == mem[j] and norms[i] > 0 and norms[j] > 0:
            sims.append(x[i] @ x[j] / (norms[i] * norms[j]))
    expected = np.mean(sims) if sims else np.nan
    np.testing.assert_allclose(tag_coherence(mem, tags), expected, rtol=1e-9)


def test_partition_metrics_collects_everything():
    a, truth = planted_partition(seed=6)
    ids = [f"i{k}" for k in range(a.shape[0])]
    g = KnnGraph.from_adjacency(a, ids)
    p = leiden(g, rng=0)
    frame = pd.DataFrame({"id": ids, "tag": [f"block{b}" for b in truth]})
    tags = TagSet.from_frame(frame, ids)
    out = partition_metrics(g, p, labels_true=truth, tags=tags)
    assert out["modularity"] == pytest.approx(p.quality)
    assert out["connected_share"] == 1.0
    assert out["nmi"] == pytest.approx(normalized_mutual_info_score(truth, p.membership))
    assert out["tag_coherence"] > out["tag_coherence_baseline"]
    with pytest.raises(IdMismatchError):
        partition_metrics(g, Partition(p.membership, np.arange(len(ids))))


@pytest.mark.parametrize("membership", [[0, 1, 2, 3], [0, 0, 1, 1], [0, 0, 0, 0]])
def test_edgeless_graph_modularity_is_nan_as_in_igraph(membership):
    # modularity is undefined without edges (m = 0 in 1/2m): igraph returns NaN (deliberately,
    # since igraph 0.9.9), networkx divides by zero; ccgraph follows igraph, and says so
    n = len(membership)
    assert np.isnan(ig.Graph(n=n).modularity(membership))
    with pytest.raises(ZeroDivisionError):
        nx.community.modularity(nx.empty_graph(n), communities(np.asarray(membership)))
    g = KnnGraph.from_adjacency(
        sp.csr_matrix((n, n), dtype=np.float32), [f"i{k}" for k in range(n)]
    )
    assert np.isnan(modularity(g, membership))
    out = partition_metrics(g, Partition(np.asarray(membership), g.ids))
    assert np.isnan(out["modularity"])
    # every cluster of two or more items is disconnected without edges (networkx oracle)
    parts = communities(np.asarray(membership))
    expected = np.mean([nx.is_connected(nx.empty_graph(len(c))) for c in parts])
    assert out["connected_share"] == expected
