"""Answers about new items: neighbours, cluster vote, related and tags vs hand-made oracles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccgraph.exceptions import InputError, ParameterError
from ccgraph.propagate import personalized_pagerank
from ccgraph.query import RunIndex
from ccgraph.query.search import VectorSearch
from tests.query._hand import hand_run


@pytest.fixture(scope="module")
def hand() -> RunIndex:
    return RunIndex(hand_run())


def test_neighbours_and_cluster_vote_by_hand(hand: RunIndex) -> None:
    ans = hand.query_vector(np.array([2.0, 0.0]))  # normalised to (1, 0)
    nb = ans.neighbors
    assert nb["id"].tolist() == ["a", "b", "c"]  # k = graph.k = 3
    np.testing.assert_allclose(nb["similarity"], [1.0, 0.8, 0.6], atol=1e-6)
    np.testing.assert_allclose(nb["weight"], np.array([1.0, 0.8, 0.6]) / 2.4, atol=1e-6)
    lv = ans.clusters.levels
    # l0: a, b, c all in cluster 0; l1: {a, b} -> 0 with 1.8 / 2.4, {c} -> 1 with 0.6 / 2.4
    assert lv["cluster"].tolist() == [0, 0]
    np.testing.assert_allclose(lv["strength"], [1.0, 0.75], atol=1e-6)
    sec = ans.clusters.secondary
    assert sec[["level", "cluster"]].values.tolist() == [[1, 1]]
    np.testing.assert_allclose(sec["share"], [0.25], atol=1e-6)
    assert ans.clusters.id is None and ans.query == "vector"


def test_cluster_vote_ties_go_to_the_lower_cluster(hand: RunIndex) -> None:
    ans = hand.query_vector(np.array([0.0, 1.0]), k=2)  # d (sim 1) and c (sim .8)
    assert ans.neighbors["id"].tolist() == ["d", "c"]
    assert ans.clusters.levels["cluster"].tolist() == [1, 2]
    np.testing.assert_allclose(ans.clusters.levels["strength"], [1 / 1.8, 1 / 1.8], atol=1e-6)


def test_tags_combined_by_hand(hand: RunIndex) -> None:
    ans = hand.query_vector(np.array([1.0, 0.0]))
    w = np.array([1.0, 0.8, 0.6]) / 2.4  # a, b, c
    t = ans.tags.set_index("tag")
    assert t.index.tolist() == ["sea", "sky", "sand"]  # by confidence
    # sea: a observed (1), b observed twice (counted once, confidence 1)
    np.testing.assert_allclose(t.loc["sea", ["score", "confidence"]], [w[0] + w[1]] * 2, rtol=1e-6)
    np.testing.assert_allclose(t.loc["sky", ["score", "confidence"]], [w[0], 0.6 * w[0]], rtol=1e-6)
    np.testing.assert_allclose(
        t.loc["sand", ["score", "confidence"]], [w[1], 0.5 * w[1]], rtol=1e-6
    )
    assert (ans.tags["source"] == "inferred").all()
    assert ans.tags["rank"].tolist() == [1, 2, 3]


def test_related_is_pagerank_seeded_on_the_neighbours(hand: RunIndex) -> None:
    ans = hand.query_vector(np.array([1.0, 0.0]), epsilon=1e-9, duplicates="include")
    restart = np.zeros(7)
    restart[:3] = [1.0, 0.8, 0.6]
    truth = personalized_pagerank(hand.graph, restart, tol=1e-13)
    want = [hand.ids[i] for i in np.argsort(-truth, kind="stable") if truth[i] > 0]
    assert ans.related["id"].tolist() == want
    np.testing.assert_allclose(ans.related["score"], np.sort(truth[truth > 0])[::-1], atol=1e-6)


def test_near_duplicates_of_a_new_item_are_separated(hand: RunIndex) -> None:
    ans = hand.query_vector(np.array([1.0, 0.0]), epsilon=1e-8)
    rel = ans.related
    assert rel.loc[rel["relation"] == "duplicate", "id"].tolist() == ["a"]  # cosine 1 >= .98
    assert "a" not in rel.loc[rel["relation"] == "related", "id"].tolist()
    ex = hand.query_vector(np.array([1.0, 0.0]), duplicates="exclude", epsilon=1e-8)
    assert "a" not in ex.related["id"].tolist()


def test_excluded_items_are_neither_neighbours_nor_related(hand: RunIndex) -> None:
    ans = hand.query_vector(np.array([1.0, 0.0]), exclude=["a"], duplicates="include")
    assert ans.neighbors["id"].tolist() == ["b", "c", "g"]
    assert "a" not in ans.related["id"].tolist()


def test_stored_item_queried_as_new_matches_brute_force(index: RunIndex) -> None:
    stored = index.embeddings["precomputed"]
    vecs = np.asarray(stored.vectors)
    for row in (3, 50, 120):
        item = index.ids[stored.rows[row]]
        ans = index.query_vector(vecs[row], exclude=[item])
        sims = vecs @ vecs[row]
        sims[row] = -np.inf
        order = np.lexsort((np.arange(len(sims)), -sims))[:8]
        assert ans.neighbors["id"].tolist() == index.ids[stored.rows[order]].tolist()
        np.testing.assert_allclose(ans.neighbors["similarity"], sims[order], rtol=1e-5)
        assert item not in ans.related["id"].tolist()
        assert ans.clusters.cluster == index.levels[index.default_level, stored.rows[row]]


def test_cluster_pruned_search_agrees_with_exact(index: RunIndex) -> None:
    stored = index.embeddings["precomputed"]
    q = np.asarray(stored.vectors[:40])
    everything = VectorSearch(
        stored, metric="cosine", partition=index.levels[-1], min_candidates=10_000
    )
    a = everything.search(q, k=8, n_items=index.n_items, method="exact")
    b = everything.search(q, k=8, n_items=index.n_items, method="clusters")
    np.testing.assert_array_equal(a[0], b[0])
    few = VectorSearch(
        stored, metric="cosine", partition=index.levels[-1], min_candidates=20, min_probes=1
    )
    c = few.search(q, k=8, n_items=index.n_items, method="clusters")
    recall = np.mean([len(set(x) & set(y)) / 8 for x, y in zip(a[0], c[0], strict=True)])
    assert recall >= 0.8
    excl = few.search(q[:1], k=8, n_items=index.n_items, method="clusters", exclude=a[0][0])
    assert not set(excl[0][0]) & set(a[0][0])


def test_euclidean_metric_uses_a_gaussian_kernel(hand: RunIndex) -> None:
    stored = hand.embeddings["precomputed"]
    s = VectorSearch(stored, metric="euclidean")
    rows, sim = s.search(np.array([[1.0, 0.0]], dtype=np.float32), k=3, n_items=7)
    d = np.linalg.norm(stored.vectors - np.array([1.0, 0.0]), axis=1)
    order = np.argsort(d)[:3]
    assert rows[0].tolist() == order.tolist()
    sigma = d[order][1]  # ceil(3 / 2) = 2nd neighbour
    want = np.maximum(np.exp(-((d[order] / sigma) ** 2)), 1e-6)
    np.testing.assert_allclose(sim[0], want, rtol=1e-5)


@pytest.mark.parametrize(
    ("vector", "match"),
    [
        (np.ones(3), "must have 2 entries"),
        (np.array([np.nan, 1.0]), "NaN"),
        (np.zeros(2), "all zeros"),
        (np.array(["a", "b"]), "numeric"),
        (np.ones((2, 2, 2)), "must have 2 entries"),
    ],
)
def test_malformed_vectors(hand: RunIndex, vector: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        hand.query_vector(vector)


def test_query_vector_takes_exactly_one_vector(hand: RunIndex) -> None:
    # before: [m, d] with m > 1 silently answered for the first row only
    with pytest.raises(InputError, match=r"one vector .*got shape \(2, 2\).*query_batch"):
        hand.query_vector(np.array([[1.0, 0.0], [0.0, 1.0]]))
    one = hand.query_vector(np.array([[1.0, 0.0]]))
    flat = hand.query_vector(np.array([1.0, 0.0]))
    assert one.related["id"].tolist() == flat.related["id"].tolist()


def test_ragged_vectors_are_an_input_error(hand: RunIndex) -> None:
    # before: numpy's ValueError "inhomogeneous shape" escaped as a traceback
    with pytest.raises(InputError, match="rows of different lengths"):
        hand.query_vector([[1.0, 0.0], [1.0]])


def test_modality_errors(hand: RunIndex, index: RunIndex) -> None:
    with pytest.raises(InputError, match="'text' is not stored in the run; it has"):
        hand.query_vector(np.ones(2), modality="text")
    with pytest.raises(InputError, match="text"):
        index.query_text("a red fox")
    with pytest.raises(InputError, match="non-empty"):
        index.query_text("  ")
    with pytest.raises(InputError, match="image"):
        index.query_image("nope.png")
    with pytest.raises(InputError, match="not an item"):
        hand.query_vector(np.ones(2), exclude=["zz"])


def test_run_without_stored_embeddings(hand: RunIndex) -> None:
    run = hand_run()
    bare = RunIndex(
        type(run)(run.items, run.tags, run.clusters, run.rejects, run.graph, run.manifest)
    )
    with pytest.raises(InputError, match="stores no embeddings"):
        bare.query_vector(np.ones(2))
    assert bare.related("a", 2)["id"].tolist()  # known items still work


def test_image_runs_pixels_and_hashes(tmp_path: Path) -> None:
    from ccgraph.query import open_run
    from tests.query._runs import image_run

    for kind in ("pixels", "phash"):
        run = image_run(tmp_path / kind, kind)
        index = open_run(run)
        img = tmp_path / kind / "img" / "s03.png"
        ans = index.query_image(img)
        # the same picture is stored twice (im03 and im15): both at similarity 1
        assert set(ans.neighbors["id"][:2]) == {"im03", "im15"}
        np.testing.assert_allclose(ans.neighbors["similarity"][:2], 1.0, atol=1e-5)
        assert ans.clusters.cluster == index.clusters("im03").cluster
        assert ans.query == str(img)
        if kind == "phash":
            codes = np.asarray(index.embeddings["image"].vectors[3])
            again = index.query_vector(codes.astype(np.int64), exclude=["im03"])
            assert again.neighbors["id"].iloc[0] == "im15"
            with pytest.raises(InputError, match="packed bits"):
                index.query_vector(codes + 0.5)
        with pytest.raises(InputError, match="not found"):
            index.query_image(tmp_path / "missing.png")
        with pytest.raises(InputError, match="is a URL, not a local file"):  # was "not found"
            index.query_image("https://example.org/x.png")
        broken = tmp_path / "broken.png"
        broken.write_bytes(b"not an image")
        with pytest.raises(InputError, match="cannot be embedded"):
            index.query_image(broken)


def test_answers_do_not_depend_on_other_queries(index: RunIndex) -> None:
    v = np.asarray(index.embeddings["precomputed"].vectors[9])
    first = index.query_vector(v)
    index.query_vector(-v)
    again = index.query_vector(v)
    pd.testing.assert_frame_equal(first.related, again.related)
    pd.testing.assert_frame_equal(first.tags, again.tags)


def test_graph_rule_keeps_only_would_be_edges(hand: RunIndex) -> None:
    q = np.array([-1.0, 1.0])  # cosines: d .707, e .707, c .141, b/f -.141, a -.707
    # k-th (k = 3) nearest similarity: d 0, e -.28, c .6 -> c would not list the new item
    ans = hand.query_vector(q)
    nb = ans.neighbors
    assert nb["id"].tolist() == ["d", "e", "c"]
    assert nb["edge"].tolist() == [True, True, False]
    np.testing.assert_allclose(nb["weight"], [0.5, 0.5, 0.0], atol=1e-6)
    assert ans.clusters.levels["strength"].tolist() == [1.0, 1.0]  # d, e both in l0 = 1
    knn = hand.query_vector(q, rule="knn")
    assert knn.neighbors["edge"].all()
    np.testing.assert_allclose(
        knn.clusters.levels["strength"].iloc[0], 1.414 / (1.414 + 0.141), atol=1e-3
    )


def test_repair_rule_links_the_nearest_neighbours(hand: RunIndex) -> None:
    run = hand_run()
    man = {**run.manifest, "config": {**run.manifest["config"]}}
    man["config"]["graph"] = {**man["config"]["graph"], "min_degree": 3}
    repaired = RunIndex(
        type(run)(run.items, run.tags, run.clusters, run.rejects, run.graph, man, extras=run.extras)
    )
    assert repaired.query_vector(np.array([-1.0, 1.0])).neighbors["edge"].all()


def test_kth_scores_match_brute_force(index: RunIndex) -> None:
    from ccgraph.query.newitems import searcher

    s = searcher(index, index.embeddings["precomputed"])
    v = np.asarray(s.stored.vectors, dtype=np.float64)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    want = -np.sort(-sim, axis=1)[:, 7]  # k = 8
    pos = np.arange(0, len(v), 9)
    np.testing.assert_allclose(s.kth_scores(pos, 8), want[pos], atol=1e-5)
    # with items removed from the index
    skip = np.array([int(np.argsort(-sim[0])[0]), int(np.argsort(-sim[0])[1])])
    sim2 = sim.copy()
    sim2[:, skip] = -np.inf
    want2 = -np.sort(-sim2, axis=1)[:, 7]
    np.testing.assert_allclose(s.kth_scores(pos, 8, skip=skip), want2[pos], atol=1e-5)


def _with_knn_lists(kth_distance_of_c: float | None = None) -> RunIndex:
    """The hand run plus kNN lists (k = 3) as a run keeps them, from brute force."""
    from tests.query._hand import VECTORS

    run = hand_run()
    sim = VECTORS @ VECTORS.T
    np.fill_diagonal(sim, -np.inf)
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :3].astype(np.int32)
    dist = (1.0 - np.take_along_axis(sim, idx, axis=1)).astype(np.float32)
    if kth_distance_of_c is not None:
        dist[2, 2] = kth_distance_of_c
    extras = {
        **run.extras,
        "knn_precomputed_rows": np.arange(7, dtype=np.int64),
        "knn_precomputed_indices": idx,
        "knn_precomputed_distances": dist,
    }
    return RunIndex(
        type(run)(
            run.items, run.tags, run.clusters, run.rejects, run.graph, run.manifest, extras=extras
        )
    )


def test_stored_knn_lists_give_the_same_edges(hand: RunIndex) -> None:
    listed = _with_knn_lists()
    for q in ([-1.0, 1.0], [1.0, 0.0], [0.3, -0.7]):
        a = listed.query_vector(np.array(q))
        b = hand.query_vector(np.array(q))
        assert a.neighbors["edge"].tolist() == b.neighbors["edge"].tolist()
        pd.testing.assert_frame_equal(a.related, b.related)


def test_stored_knn_lists_are_what_the_rule_reads(hand: RunIndex) -> None:
    # the run recorded c's 3rd neighbour at cosine 0.1: the new item (cosine .141) is closer
    listed = _with_knn_lists(kth_distance_of_c=0.9)
    q = np.array([-1.0, 1.0])
    assert listed.query_vector(q).neighbors["edge"].tolist() == [True, True, True]
    # removing an item c lists makes its k-th score unknown: searched again, as without lists
    got = listed.query_vector(q, exclude=["b"]).neighbors
    want = hand.query_vector(q, exclude=["b"]).neighbors
    assert got["edge"].tolist() == want["edge"].tolist()


def test_new_item_options_checked_before_embedding(
    index: RunIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: query_text("hello", n=0) loaded the text model first (here: "no text model")
    import ccgraph.query.newitems as newitems

    def no_embed(*args: object, **kwargs: object) -> None:
        raise AssertionError("embedded before the options were checked")

    monkeypatch.setattr(newitems, "embed_texts", no_embed)
    monkeypatch.setattr(newitems, "embed_images", no_embed)
    with pytest.raises(ParameterError, match="`n`"):
        index.query_text("hello", n=0)
    with pytest.raises(ParameterError, match="`k`"):
        index.query_text("hello", k=0)
    with pytest.raises(ParameterError, match="`alpha`"):
        index.query_image("x.png", alpha=1.5)
