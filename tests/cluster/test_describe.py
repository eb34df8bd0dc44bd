from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ccgraph.cluster import c_tf_idf, describe_clusters
from ccgraph.cluster.describe import CLUSTER_COLUMNS, tokenize
from ccgraph.containers import KnnGraph, Partition, TagSet
from ccgraph.exceptions import IdMismatchError, InputError, ParameterError


def test_c_tf_idf_by_hand():
    counts = np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 2.0]])
    # class totals 4 and 3 -> A = 3.5; term frequencies f = (3, 2, 2)
    idf = [math.log(1 + 3.5 / 3), math.log(1 + 3.5 / 2), math.log(1 + 3.5 / 2)]
    expected = np.array(
        [
            [3 / 4 * idf[0], 1 / 4 * idf[1], 0.0],
            [0.0, 1 / 3 * idf[1], 2 / 3 * idf[2]],
        ]
    )
    np.testing.assert_allclose(c_tf_idf(sp.csr_matrix(counts)).toarray(), expected)


def test_c_tf_idf_empty_class_gets_empty_row():
    w = c_tf_idf(sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 0.0]])))
    assert w.getrow(1).nnz == 0
    assert np.isfinite(w.data).all()


def small_catalog():
    ids = ["a", "b", "c", "d"]
    a = sp.csr_matrix(
        np.array(
            [[0, 1.0, 0.1, 0], [1.0, 0, 0, 0], [0.1, 0, 0, 0.5], [0, 0, 0.5, 0]],
        )
    )
    graph = KnnGraph.from_adjacency(a, ids)
    part = Partition(np.array([0, 0, 1, 1]), ids)
    tags = TagSet.from_frame(
        pd.DataFrame(
            {"id": ["a", "b", "b", "c", "d"], "tag": ["dog", "dog", "beach", "cat", "cat"]}
        ),
        ids,
        weight_column=None,
    )
    texts = ["dog on the beach", "a dog", "cat sleeping", "the cat"]
    return graph, part, tags, texts


def test_describe_small_catalog_by_hand():
    graph, part, tags, texts = small_catalog()
    d = describe_clusters(graph, part, tags=tags, texts=texts, top_tags=5, n_representatives=1)
    assert list(d.columns) == list(CLUSTER_COLUMNS)
    # cluster 0 counts: dog 2, beach 2 (tag and word of the same item count once);
    # cluster 1: cat 2, sleeping 1.  A = (4 + 3) / 2; f: beach 2, cat 2, dog 2, sleeping 1
    a_avg = 3.5
    idf2, idf1 = math.log(1 + a_avg / 2), math.log(1 + a_avg / 1)
    row0, row1 = d.iloc[0], d.iloc[1]
    assert row0["top_tags"] == ["beach", "dog"]  # tie broken alphabetically
    np.testing.assert_allclose(row0["top_tag_scores"], [0.5 * idf2, 0.5 * idf2])
    assert row1["top_tags"] == ["cat", "sleeping"]
    np.testing.assert_allclose(row1["top_tag_scores"], [2 / 3 * idf2, 1 / 3 * idf1])
    assert row0["label"] == "beach, dog" and row1["label"] == "cat, sleeping"
    assert row0["representative_ids"] == ["a"]  # a and b tie on inner weight 1.0: first row
    assert row1["representative_ids"] == ["c"]
    assert row0["size"] == 2 and row0["level"] == 0
    # density 1 (one edge, one pair); conductance: cut 0.1 / min(2.1, 1.1)
    assert row0["density"] == 1.0
    assert row0["conductance"] == pytest.approx(0.1 / 1.1)


def test_density_and_conductance_match_networkx():
    g = np.random.default_rng(3)
    n = 40
    upper = np.triu(g.random((n, n)) < 0.15, k=1) * g.uniform(0.1, 1.0, size=(n, n))
    a = sp.csr_matrix(upper + upper.T)
    mem = g.integers(0, 6, size=n)
    mem[0] = 6  # a singleton
    d = describe_clusters(a, Partition(mem, np.arange(n)))
    nxg = nx.from_scipy_sparse_array(a)
    compared = 0
    for row in d.itertuples():
        members = set(np.flatnonzero(mem == row.cluster).tolist())
        assert row.size == len(members)
        assert row.density == pytest.approx(nx.density(nxg.subgraph(members)))
        volume = sum(dict(nxg.degree(members, weight="weight")).values())
        rest_volume = sum(dict(nxg.degree(set(nxg) - members, weight="weight")).values())
        if min(volume, rest_volume) > 0:
            compared += 1
            assert row.conductance == pytest.approx(nx.conductance(nxg, members, weight="weight"))
        else:
            assert np.isnan(row.conductance)
    assert compared >= 6


def test_conductance_is_nan_without_volume():
    a = sp.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 0], [0, 0, 0]]))
    d = describe_clusters(a, Partition(np.array([0, 0, 1]), np.arange(3)))
    assert np.isnan(d.loc[1, "conductance"])  # isolated node: no volume
    assert np.isnan(d.loc[0, "conductance"])  # holds all the volume: the rest has none
    assert d.loc[1, "density"] == 0.0


def test_representatives_are_the_strongest_inside_the_cluster():
    g = np.random.default_rng(5)
    n = 60
    upper = np.triu(g.random((n, n)) < 0.2, k=1) * g.uniform(0.1, 1.0, size=(n, n))
    dense = upper + upper.T
    mem = g.integers(0, 4, size=n) * 10 + 3  # non-contiguous stable IDs
    ids = [f"item{i}" for i in range(n)]
    d = describe_clusters(
        KnnGraph.from_adjacency(dense, ids), Partition(mem, ids), n_representatives=3, level=2
    )
    assert d["cluster"].tolist() == sorted(set(mem.tolist()))
    assert (d["level"] == 2).all()
    for row in d.itertuples():
        members = np.flatnonzero(mem == row.cluster)
        inner = [dense[i, members].sum() for i in members]
        ranked = sorted(zip(members.tolist(), inner, strict=True), key=lambda t: (-t[1], t[0]))
        assert row.representative_ids == [ids[i] for i, _ in ranked[:3]]
        assert row.label == f"cluster {row.cluster}"  # no terms given
        assert row.top_tags == [] and row.top_tag_scores == []


def test_describe_output_survives_parquet(tmp_path):
    graph, part, tags, texts = small_catalog()
    d = describe_clusters(graph, part, tags=tags, texts=texts)
    d.to_parquet(tmp_path / "clusters.parquet")
    back = pd.read_parquet(tmp_path / "clusters.parquet")
    assert list(back["top_tags"].iloc[0]) == d["top_tags"].iloc[0]
    assert list(back["representative_ids"].iloc[1]) == d["representative_ids"].iloc[1]
    assert back["size"].dtype == np.int64


def test_tokenize_drops_stop_words_digits_and_short_tokens():
    rows, words = tokenize(["The Café at 5pm, a DOG!", "", None, "x y zz"])
    assert rows.tolist() == [0, 0, 0, 3]
    assert words.tolist() == ["café", "pm", "dog", "zz"]


def test_tokenize_drops_camera_file_names_and_foreign_function_words():
    # real title shapes from the Openverse sample: camera file names, Dutch and German titles
    texts = [
        "DSC_0067",
        "2008-09-30-dscn5842 harbour",
        "IMGP1234 DSCF0001 MVI_0002",
        "Gezicht op de haven van Amsterdam",
        "Die Linke gegen das Vergessen",
    ]
    rows, words = tokenize(texts)
    # hand-computed: only the content words survive
    assert list(zip(rows.tolist(), words.tolist(), strict=True)) == [
        (1, "harbour"),
        (3, "gezicht"),
        (3, "haven"),
        (3, "amsterdam"),
        (4, "linke"),
        (4, "vergessen"),
    ]


def test_label_of_camera_file_cluster_is_not_the_file_prefix():
    # two clusters of two items; cluster 0 holds camera file names plus one shared real word
    a = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], float))
    part = Partition(np.array([0, 0, 1, 1]), ["a", "b", "c", "d"])
    texts = ["DSC_0067 swimming", "DSC_4797 swimming pool", "red car", "red bus"]
    d = describe_clusters(a, part, texts=texts)
    # c-TF-IDF by hand: cluster 0 counts swimming 2, pool 1 (dsc dropped); avg A = 3.5
    w_swim = 2 / 3 * np.log1p(3.5 / 2)
    w_pool = 1 / 3 * np.log1p(3.5 / 1)
    assert d["top_tags"].iloc[0] == ["swimming", "pool"]
    np.testing.assert_allclose(d["top_tag_scores"].iloc[0], [w_swim, w_pool])


def _dump_catalog(weights: list[float] | None = None):
    # cluster 0: one uploader's tag dump "nvsl" on four photos, three others tagged "pool";
    # cluster 1: two uploaders tagged "car" (the real case: 11 photos by one Flickr user)
    ids = list("abcdefghi")
    a = sp.csr_matrix(np.ones((9, 9)) - np.eye(9))
    part = Partition(np.array([0] * 7 + [1] * 2), ids)
    frame = pd.DataFrame({"id": ids, "tag": ["nvsl"] * 4 + ["pool"] * 3 + ["car"] * 2})
    if weights is not None:
        frame["weight"] = weights
    tags = TagSet.from_frame(frame, ids, weight_column=None if weights is None else "weight")
    uploaders = ["u1"] * 4 + ["u2", None, "u3", "u4", ""]
    return a, part, tags, uploaders


def test_uploader_tag_dump_counts_sublinearly():
    a, part, tags, uploaders = _dump_catalog()
    plain = describe_clusters(a, part, tags=tags)
    assert plain["top_tags"].iloc[0] == ["nvsl", "pool"]  # the dump wins without uploaders
    d = describe_clusters(a, part, tags=tags, uploaders=uploaders)
    # by hand: cluster 0 counts nvsl 1 + ln 4 (one uploader, 4 items), pool 3 (three
    # uploaders, a missing one included); cluster 1 car 2 (u4 and an empty uploader)
    nvsl = 1 + math.log(4)
    a_avg = (nvsl + 3 + 2) / 2
    np.testing.assert_allclose(
        d["top_tag_scores"].iloc[0],
        [3 / (3 + nvsl) * math.log1p(a_avg / 3), nvsl / (3 + nvsl) * math.log1p(a_avg / nvsl)],
    )
    assert d["top_tags"].iloc[0] == ["pool", "nvsl"]
    assert d["label"].iloc[0] == "pool, nvsl"


def test_uploader_count_uses_the_mean_weight_and_distinct_uploaders_change_nothing():
    w = [0.9, 0.6, 0.3, 0.2, 1.0, 1.0, 1.0, 0.8, 0.8]
    a, part, tags, uploaders = _dump_catalog(w)
    d = describe_clusters(a, part, tags=tags, uploaders=uploaders)
    # nvsl: mean(0.9, 0.6, 0.3, 0.2) * (1 + ln 4); pool 3; car 1.6
    counts = np.array([[0.5 * (1 + math.log(4)), 3.0, 0.0], [0.0, 0.0, 1.6]])
    want = c_tf_idf(sp.csr_matrix(counts)).toarray()  # c_tf_idf is checked by hand above
    np.testing.assert_allclose(d["top_tag_scores"].iloc[0], [want[0, 1], want[0, 0]])
    np.testing.assert_allclose(d["top_tag_scores"].iloc[1], [want[1, 2]])
    # every item its own uploader: the plain per-cluster sums
    alone = describe_clusters(a, part, tags=tags, uploaders=[None] * 9)
    plain = describe_clusters(a, part, tags=tags)
    pd.testing.assert_frame_equal(alone, plain)
    with pytest.raises(InputError, match="`uploaders`"):
        describe_clusters(a, part, tags=tags, uploaders=["u1"])


def test_plural_and_case_spellings_fill_one_top_slot():
    # real case: "pistol, rifle, gun, pistols" and "vase, lotus, ..., vases" in one cluster
    a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], float))
    part = Partition(np.array([0, 0, 1]), ["a", "b", "c"])
    texts = ["pistol pistol rifle", "pistols Pistol rifles gun", "cat"]
    d = describe_clusters(a, part, texts=texts, top_tags=10)
    # oracle: the plain c-TF-IDF ranking, then a word dropped when a better word in the list
    # is the same but for a final "s"
    plain = c_tf_idf(
        sp.csr_matrix(np.array([[1, 2, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1]], float))
    ).toarray()[0]
    words = ["gun", "pistol", "pistols", "rifle", "rifles", "cat"]
    ranked = sorted(range(6), key=lambda j: (-plain[j], words[j]))
    want = []
    for j in ranked:
        if plain[j] > 0 and not any(words[j] in (w + "s", w[:-1]) for w in want):
            want.append(words[j])
    assert d["top_tags"].iloc[0] == want == ["pistol", "gun", "rifle"]


def test_describe_validates_inputs():
    graph, part, tags, texts = small_catalog()
    with pytest.raises(InputError, match="`texts`"):
        describe_clusters(graph, part, texts=texts[:2])
    other = TagSet(tags.matrix, np.array(["w", "x", "y", "z"]), tags.tags)
    with pytest.raises(IdMismatchError, match="tags"):
        describe_clusters(graph, part, tags=other)
    with pytest.raises(IdMismatchError):
        describe_clusters(graph, Partition(part.membership, ["p", "q", "r", "s"]))
    with pytest.raises(ParameterError, match="`top_tags`"):
        describe_clusters(graph, part, top_tags=0)
