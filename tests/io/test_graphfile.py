from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from ccgraph.containers import KnnGraph
from ccgraph.exceptions import InputError
from ccgraph.io import load_graph, save_graph


def test_round_trip_against_networkx(tmp_path: Path) -> None:
    nxg = nx.les_miserables_graph()
    names = sorted(nxg.nodes)
    adj = nx.to_scipy_sparse_array(nxg, nodelist=names, weight="weight", format="csr")
    g = KnnGraph.from_adjacency(adj, names, params={"k": 15, "nested": {"a": [1, 2]}})
    back = load_graph(save_graph(g, tmp_path / "g.npz"))
    assert back.ids.tolist() == names
    assert back.params == {"k": 15, "nested": {"a": [1, 2]}}
    assert back.n_edges == nxg.number_of_edges()
    rebuilt = nx.from_scipy_sparse_array(back.adjacency)
    assert sorted(dict(rebuilt.degree(weight="weight")).values()) == sorted(
        dict(nxg.degree(weight="weight")).values()
    )


def test_same_graph_same_bytes(tmp_path: Path) -> None:
    g = KnnGraph.from_adjacency(np.array([[0, 1, 0], [1, 0, 2], [0, 2, 0]]), ["x", "y", "z"])
    a, b = save_graph(g, tmp_path / "a.npz"), save_graph(g, tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()


def test_bad_graph_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="graph file not found"):
        load_graph(tmp_path / "none.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"not a readable numpy \.npz"):
        load_graph(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, data=np.ones(2))
    with pytest.raises(InputError, match=r"lacks the arrays \['indices', 'indptr'"):
        load_graph(partial)
    pickled = tmp_path / "pickled.npz"
    np.savez(
        pickled,
        data=np.ones(1),
        indices=np.zeros(1),
        indptr=np.array([0, 1]),
        shape=np.array([1, 1]),
        ids=np.array([{"a": 1}], dtype=object),
    )
    with pytest.raises(InputError, match="without pickled objects"):
        load_graph(pickled)
