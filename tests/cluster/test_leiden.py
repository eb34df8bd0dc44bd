from __future__ import annotations

import random

import igraph as ig
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import normalized_mutual_info_score

from ccgraph.cluster import connected_share, cpm_quality, leiden, modularity
from ccgraph.cluster._common import relabel_by_size
from ccgraph.containers import KnnGraph
from ccgraph.exceptions import InputError, ParameterError
from tests.cluster._graphs import exact_knn_graph, planted_partition
from tests.conftest import blobs

BACKENDS = ["igraph", "leidenalg"]


@pytest.fixture(scope="module")
def planted():
    return planted_partition(n_blocks=8, block_size=40, p_in=0.3, p_out=0.01, seed=1)


@pytest.fixture(scope="module")
def blob_graph():
    x, labels = blobs(n=600, d=16, centers=8, spread=0.35, seed=3)
    return exact_knn_graph(x, 10), labels


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_planted_partition_is_recovered(backend, weighted):
    a, truth = planted_partition(
        n_blocks=8, block_size=40, p_in=0.3, p_out=0.01, seed=2, weighted=weighted
    )
    p = leiden(a, backend=backend, rng=0)
    assert normalized_mutual_info_score(truth, p.membership) >= 0.95


@pytest.mark.parametrize("objective", ["significance", "surprise"])
def test_leidenalg_only_objectives_recover_planted_partition(planted, objective):
    a, truth = planted
    p = leiden(a, backend="leidenalg", objective=objective, rng=0)
    assert normalized_mutual_info_score(truth, p.membership) >= 0.95
    assert np.isfinite(p.quality)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpm_recovers_planted_partition_and_reports_cpm_quality(planted, backend):
    a, truth = planted
    p = leiden(a, backend=backend, objective="cpm", resolution=0.1, rng=0)
    assert normalized_mutual_info_score(truth, p.membership) >= 0.95
    assert p.quality == pytest.approx(cpm_quality(a, p.membership, resolution=0.1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_iterations", [2, -1])
def test_same_seed_gives_identical_membership(blob_graph, backend, n_iterations):
    a, _ = blob_graph
    runs = [leiden(a, backend=backend, n_iterations=n_iterations, rng=7) for _ in range(3)]
    for p in runs[1:]:
        np.testing.assert_array_equal(p.membership, runs[0].membership)
        assert p.quality == runs[0].quality


@pytest.mark.parametrize("backend", BACKENDS)
def test_generator_rng_is_deterministic(blob_graph, backend):
    a, _ = blob_graph
    p1 = leiden(a, backend=backend, rng=np.random.default_rng(5))
    p2 = leiden(a, backend=backend, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(p1.membership, p2.membership)
    assert p1.params["seed"] == p2.params["seed"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_random_state_is_untouched(blob_graph, backend):
    a, _ = blob_graph
    # the legacy global numpy state is exactly what must stay untouched
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    expected_py, expected_np = random.random(), np.random.random()  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    leiden(a, backend=backend, rng=0)
    assert random.random() == expected_py
    assert np.random.random() == expected_np  # noqa: NPY002


def test_igraph_generator_is_restored_to_python_random(blob_graph):
    leiden(blob_graph[0], rng=0)
    random.seed(99)
    first = ig.Graph.Erdos_Renyi(n=40, p=0.2).get_edgelist()
    random.seed(99)
    second = ig.Graph.Erdos_Renyi(n=40, p=0.2).get_edgelist()
    assert first == second  # igraph draws from the (reseeded) `random` module again


def test_backends_reach_modularity_within_one_percent(blob_graph, planted):
    for a, _ in (blob_graph, planted):
        q = [leiden(a, backend=b, rng=0).quality for b in BACKENDS]
        assert q[0] == pytest.approx(q[1], rel=0.01)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quality_is_modularity_at_resolution(blob_graph, backend):
    a, _ = blob_graph
    p = leiden(a, backend=backend, resolution=2.0, rng=0)
    assert p.quality == pytest.approx(modularity(a, p.membership, resolution=2.0))
    ig_graph = ig.Graph.Weighted_Adjacency(sp.triu(a).toarray().tolist(), mode="upper")
    reference = ig_graph.modularity(
        p.membership.tolist(), weights="weight", resolution=2.0, directed=False
    )
    assert p.quality == pytest.approx(reference)


def test_modularity_and_rb_objectives_agree_on_leidenalg(blob_graph):
    a, _ = blob_graph
    mod = leiden(a, backend="leidenalg", objective="modularity", rng=0)
    rb = leiden(a, backend="leidenalg", objective="rb", rng=0)
    assert mod.quality == pytest.approx(rb.quality, rel=0.01)


def test_higher_resolution_gives_more_clusters(blob_graph):
    a, _ = blob_graph
    counts = [leiden(a, resolution=r, rng=0).n_clusters for r in (0.2, 1.0, 5.0)]
    assert counts[0] < counts[1] < counts[2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_labels_are_ordered_by_size_then_first_item(blob_graph, backend):
    a, _ = blob_graph
    m = leiden(a, backend=backend, resolution=3.0, rng=0).membership
    sizes = np.bincount(m)
    assert np.all(np.diff(sizes) <= 0)
    first = np.array([np.flatnonzero(m == c)[0] for c in range(len(sizes))])
    for c in range(1, len(sizes)):
        if sizes[c] == sizes[c - 1]:
            assert first[c] > first[c - 1]


@given(st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_relabel_by_size_keeps_the_partition(labels):
    raw = np.array(labels)
    out = relabel_by_size(raw)
    assert set(out.tolist()) == set(range(len(set(labels))))
    # same partition: equal labels map to equal labels and vice versa
    assert np.array_equal(raw[:, None] == raw[None, :], out[:, None] == out[None, :])
    assert np.all(np.diff(np.bincount(out)) <= 0)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(8, 40),
    st.floats(0.05, 0.4),
    st.integers(0, 1000),
    st.sampled_from(BACKENDS),
)
def test_leiden_clusters_are_connected(n, p, seed, backend):
    g = np.random.default_rng(seed)
    upper = np.triu(g.random((n, n)) < p, k=1)
    a = sp.csr_matrix((upper | upper.T).astype(float))
    part = leiden(a, backend=backend, resolution=1.5, rng=seed)
    assert connected_share(a, part.membership) == 1.0


def test_initial_membership_and_fixed_nodes_are_respected(planted):
    a, truth = planted
    init = truth.copy()
    init[0] = 1  # a node of block 0 starts (wrongly) in block 1
    fixed = np.zeros(len(truth), dtype=bool)
    fixed[[0, 40, 41, 42]] = True  # node 0 and three nodes of block 1 may not move
    p = leiden(a, backend="leidenalg", initial_membership=init, fixed=fixed, rng=0)
    m = p.membership
    assert m[0] == m[40] == m[41] == m[42]
    assert normalized_mutual_info_score(truth, m) >= 0.95
    assert p.params["n_fixed"] == 4 and p.params["initial_membership"]


def test_initial_membership_on_igraph(planted):
    a, truth = planted
    p = leiden(a, initial_membership=truth, n_iterations=2, rng=0)
    assert normalized_mutual_info_score(truth, p.membership) >= 0.95


def test_graph_without_edges_gives_singletons():
    p = leiden(sp.csr_matrix((5, 5)), rng=0)
    np.testing.assert_array_equal(p.membership, np.arange(5))
    assert np.isnan(p.quality)


def test_knn_graph_input_keeps_ids_and_params(blob_graph):
    a, _ = blob_graph
    ids = [f"img{i}" for i in range(a.shape[0])]
    g = KnnGraph.from_adjacency(a, ids)
    p = leiden(g, backend="leidenalg", n_iterations=2, rng=3)
    assert list(p.ids) == ids
    assert p.params["backend"] == "leidenalg"
    assert p.params["n_iterations"] == 2 and p.params["seed"] == 3
    assert p.params["objective"] == "modularity"


def test_input_is_not_mutated(blob_graph):
    a, _ = blob_graph
    before = a.copy()
    leiden(a, rng=0)
    assert (a != before).nnz == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "infomap"}, "`objective`"),
        ({"backend": "networkx"}, "`backend`"),
        ({"resolution": 0.0}, "`resolution`"),
        ({"resolution": float("nan")}, "`resolution`"),
        ({"n_iterations": 0}, "`n_iterations`"),
        ({"n_iterations": 1.5}, "`n_iterations`"),
        ({"beta": -1.0}, "`beta`"),
        ({"objective": "surprise"}, "backend='leidenalg'"),
        ({"objective": "significance", "backend": "leidenalg", "resolution": 2.0}, "resolution"),
        ({"fixed": np.zeros(320, dtype=bool)}, "`fixed`"),
        ({"backend": "leidenalg", "fixed": np.zeros(320, dtype=bool)}, "initial_membership"),
        ({"rng": -1}, "`rng`"),
    ],
)
def test_bad_parameters_are_named(planted, kwargs, match):
    a, _ = planted
    with pytest.raises(ParameterError, match=match):
        leiden(a, **kwargs)


def test_bad_inputs_are_named(planted):
    a, truth = planted
    with pytest.raises(InputError, match="`graph`"):
        leiden(np.ones((3, 3)))
    asym = sp.csr_matrix(np.array([[0, 1.0], [0, 0]]))
    with pytest.raises(InputError, match="symmetric"):
        leiden(asym)
    with pytest.raises(InputError, match="`initial_membership`"):
        leiden(a, initial_membership=truth[:-1])
    with pytest.raises(InputError, match="`fixed`"):
        leiden(a, backend="leidenalg", initial_membership=truth, fixed=np.zeros(3, dtype=bool))


def test_complex_weights_are_rejected():
    # Used to drop the imaginary weights silently: two linked nodes came out as two clusters.
    adj = sp.csr_matrix(np.array([[0, 1j], [1j, 0]]))
    with pytest.raises(InputError, match="real numbers; got dtype complex128"):
        leiden(adj)
