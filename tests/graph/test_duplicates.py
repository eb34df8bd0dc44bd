from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.graph import build_knn_graph, find_duplicates


def flip(code: np.ndarray, bits: list[int]) -> np.ndarray:
    out = np.unpackbits(code).copy()
    out[bits] ^= 1
    return np.packbits(out)


def oracle_groups(codes: np.ndarray, t: int) -> list[set[int]]:
    ints = [int.from_bytes(c.tobytes(), "big") for c in codes]
    g = nx.Graph()
    g.add_nodes_from(range(len(ints)))
    g.add_edges_from(
        (i, j)
        for i in range(len(ints))
        for j in range(i + 1, len(ints))
        if bin(ints[i] ^ ints[j]).count("1") <= t
    )
    return sorted((set(c) for c in nx.connected_components(g)), key=min)


def test_hand_made_hashes():
    g = np.random.default_rng(0)
    a, b, c = (g.integers(0, 256, size=8, dtype=np.uint8) for _ in range(3))
    codes = np.stack(
        [
            a,  # 0
            b,  # 1
            flip(a, [3]),  # 2: 1 bit from a
            flip(a, [3, 10, 20, 30]),  # 3: 3 bits from item 2 (a chain), 4 from a
            c,  # 4
            flip(c, [1, 2, 3, 4, 5]),  # 5: 5 bits from c, beyond the threshold
            a,  # 6: exact copy of a
        ]
    )
    emb = Embeddings(codes, [f"p{i}" for i in range(7)], kind="binary")
    dup = find_duplicates(emb, hamming=4, k=3)
    assert dup.group.tolist() == [0, 1, 0, 0, 2, 3, 0]
    assert dup.is_canonical.tolist() == [True, True, False, False, True, True, False]
    assert dup.canonical.tolist() == [0, 1, 0, 0, 4, 5, 0]
    found = sorted((set(np.flatnonzero(dup.group == gi)) for gi in range(dup.n_groups)), key=min)
    assert found == oracle_groups(codes, 4)
    assert dup.n_duplicates == 3 and dup.params["n_groups_with_duplicates"] == 1
    frame = dup.to_frame()
    assert list(frame.columns) == ["id", "duplicate_group", "is_canonical"]


def test_random_codes_match_the_oracle():
    g = np.random.default_rng(1)
    protos = g.integers(0, 256, size=(15, 8), dtype=np.uint8)
    codes = protos[g.integers(0, 15, size=80)] ^ np.packbits(g.random((80, 64)) < 0.03, axis=1)
    emb = Embeddings(codes, np.arange(80).astype(str), kind="binary")
    dup = find_duplicates(emb, hamming=3, k=20)
    found = sorted((set(np.flatnonzero(dup.group == gi)) for gi in range(dup.n_groups)), key=min)
    assert found == oracle_groups(codes, 3)


def test_near_identical_vectors_and_priority():
    g = np.random.default_rng(2)
    v = g.normal(size=(4, 32))
    x = np.vstack([v[0], v[1], v[0] + 0.01 * g.normal(size=32), v[2], v[3], v[3] * 2.0])
    emb = Embeddings.from_array(x, ["a", "b", "c", "d", "e", "f"])
    dup = find_duplicates(emb, cosine=0.98, k=3)
    assert dup.group.tolist() == [0, 1, 0, 2, 3, 3]
    pri = find_duplicates(
        emb, cosine=0.98, k=3, canonical="priority", priority=[1.0, 0, 5.0, 0, np.nan, 0.5]
    )
    assert pri.canonical.tolist() == [2, 1, 2, 3, 5, 5]
    ties = find_duplicates(emb, cosine=0.98, k=3, canonical="priority", priority=[1] * 6)
    assert ties.canonical.tolist() == [0, 1, 0, 3, 4, 4]


def test_candidates_from_a_graph_and_errors():
    g = np.random.default_rng(3)
    v = g.normal(size=(30, 16))
    v[7] = v[3] * 1.001
    emb = Embeddings.from_array(v)
    graph = build_knn_graph(emb, k=4)
    dup = find_duplicates(emb, graph=graph)
    assert dup.group[7] == dup.group[3] and dup.sizes.max() == 2
    assert dup.params["candidates"] == "graph"
    with pytest.raises(ParameterError, match="priority"):
        find_duplicates(emb, canonical="priority")
    with pytest.raises(ParameterError, match="cosine"):
        find_duplicates(emb, cosine=1.5)


def test_precomputed_knn_out_of_range_index_is_rejected():
    # An index >= n used to raise a bare IndexError deep in the gather.
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    idx = np.full((10, 2), 99)
    with pytest.raises(InputError, match=r"\[0, 10\)"):
        find_duplicates(Embeddings.from_array(x), knn=(idx, np.zeros((10, 2))))


def test_isolated_items_group_only_with_items_of_the_same_key() -> None:
    # Hand case: rows 0-3 share one (blank) code, 4-5 an ordinary code, 6 is 1 bit from 4.
    blank, other = np.zeros(8, np.uint8), np.full(8, 7, np.uint8)
    codes = np.stack([blank, blank, blank, blank, other, other, flip(other, [0])])
    emb = Embeddings(codes, np.array(list("abcdefg")), kind="binary")
    before = find_duplicates(emb, hamming=2, k=6)
    assert before.group.tolist() == [0, 0, 0, 0, 1, 1, 1]  # every blank in one group
    keys = ["f1", "f2", "f1", "f3", None, None, "f4"]
    got = find_duplicates(emb, hamming=2, k=6, isolate=keys)
    # only the byte-identical blanks (0, 2) stay together; 6 leaves the group of 4, 5
    assert got.group.tolist() == [0, 1, 0, 2, 3, 3, 4]
    assert got.is_canonical.tolist() == [True, True, False, True, True, False, True]
    assert got.params["n_isolated"] == 5
    no_key = find_duplicates(emb, hamming=2, k=6, isolate=[None] * 7)
    assert no_key.group.tolist() == before.group.tolist()
    with pytest.raises(InputError, match="isolate"):
        find_duplicates(emb, hamming=2, k=6, isolate=["x"])
