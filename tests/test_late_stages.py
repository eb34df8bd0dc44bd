"""The stage calls shared by a run and an update, against the public functions they wrap."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph._late_stages import describe_levels, item_terms, popularity_inputs, sweep_info
from ccgraph.cluster import describe_clusters, leiden
from ccgraph.config import config_from_mapping
from ccgraph.containers import Catalog, KnnGraph, Partition, TagSet
from ccgraph.exceptions import DataQualityWarning
from ccgraph.graph import build_knn_graph
from ccgraph.io import read_catalog
from tests.conftest import blobs


def _setup() -> tuple:
    x, labels = blobs(n=120, d=8, centers=4, seed=2)
    ids = np.array([f"i{i:03d}" for i in range(len(x))])
    graph = KnnGraph(build_knn_graph(x, k=6, backend="exact").adjacency, ids, {})
    words = np.array(["red car", "blue sea", "green tree", "white snow"])
    items = pd.DataFrame(
        {
            "id": ids,
            "title": [f"{words[c]} photo {i}" for i, c in enumerate(labels)],
            "provider": ["a", None] * 60,
            "popularity_raw": [1.0, "x", None] * 40,
            "creator": ["ann", "bob", "", None] * 30,
        }
    )
    tags = pd.DataFrame({"id": ids[::3], "tag": [f"t{c}" for c in labels[::3]]})
    seeds = TagSet.from_frame(tags, ids)
    catalog = Catalog(items, pd.DataFrame(columns=["id", "tag"]), pd.DataFrame())
    levels = [
        leiden(graph, resolution=r, backend="igraph", n_iterations=-1, rng=0) for r in (0.5, 2.0)
    ]
    return graph, levels, catalog, seeds


def test_describe_levels_equals_describe_clusters_per_level() -> None:
    graph, levels, catalog, seeds = _setup()
    cfg = config_from_mapping({"data": {"path": "x.csv"}, "cluster": {"top_tags": 4}})
    got = describe_levels(graph, levels, catalog, seeds, cfg)
    want = pd.concat(
        [
            describe_clusters(
                graph,
                part,
                tags=seeds,
                texts=catalog.items["title"].tolist(),
                uploaders=catalog.items["creator"],
                top_tags=4,
                n_representatives=cfg.cluster.n_representatives,
                level=i,
            )
            for i, part in enumerate(levels)
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(got, want)
    # the term counts made beforehand (the update makes them on a thread) describe the same
    terms = item_terms(len(graph.ids), catalog, seeds)
    pd.testing.assert_frame_equal(
        describe_levels(graph, levels, catalog, seeds, cfg, terms=terms), want
    )


def test_caption_only_catalog_is_labelled_from_its_captions() -> None:
    # Flickr8k shape: no title, one caption per image; the labels were "cluster 0", ...
    a = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=float)
    ids = np.array(["a", "b", "c", "d"])
    graph = KnnGraph.from_adjacency(a, ids)
    part = Partition(np.array([0, 0, 1, 1]), ids)
    captions = ["A dog runs", "Two dogs and a dog", "A man climbs a rock", None]
    items = pd.DataFrame({"id": ids, "title": [None, "", None, "Rock climber"]})
    items["description"] = captions
    catalog = Catalog(items, pd.DataFrame(columns=["id", "tag"]), pd.DataFrame())
    seeds = TagSet.from_frame(pd.DataFrame({"id": [], "tag": []}), ids)
    cfg = config_from_mapping({"data": {"path": "x.csv"}})
    got = describe_levels(graph, [part], catalog, seeds, cfg)
    # by hand: title where there is one, else the caption; cluster 0 words dog 2, runs 1,
    # dogs 1; cluster 1: man, climbs, rock (c), rock, climber (d) -> rock 2 first
    assert got["label"].tolist()[0].startswith("dog, ")
    assert got["top_tags"].iloc[1][0] == "rock"
    assert "cluster" not in " ".join(got["label"])


def test_popularity_inputs_and_sweep_info() -> None:
    _, levels, catalog, _ = _setup()
    raw, provider = popularity_inputs(catalog)
    assert raw[:3].tolist()[0] == 1.0 and np.isnan(raw[1]) and np.isnan(raw[2])
    assert provider[:2].tolist() == ["a", ""]
    sweep = sweep_info([*levels, Partition(np.array([5, 5, 9]), ["a", "b", "c"])])
    assert [s["level"] for s in sweep] == [0, 1, 2]
    # the median over items of their cluster's size: sizes 2, 2, 1 -> 2
    assert sweep[2]["median_item_cluster_size"] == 2.0
    assert sweep[0]["n_clusters"] == levels[0].n_clusters


def test_run_counts_tag_figures_match_a_set_based_count() -> None:
    from types import SimpleNamespace

    from ccgraph._late_stages import run_counts

    rng = np.random.default_rng(3)
    n_rows = 400
    tags = pd.DataFrame(
        {
            "id": pd.array(rng.choice([f"i{j}" for j in range(60)], n_rows), dtype="string"),
            "source": pd.array(rng.choice(["observed", "inferred"], n_rows), dtype="string"),
        }
    )
    items = pd.DataFrame(
        {
            "duplicate_group": [0, 0, 1, 2],
            "popularity_source": ["observed", "inferred", "inferred", "none"],
        }
    )
    graph = SimpleNamespace(n_edges=5)
    levels = [SimpleNamespace(n_clusters=3)]
    got = run_counts(items, tags, items.iloc[:0], graph, levels, 0, SimpleNamespace(n_tags=7))
    observed = set(tags.loc[tags["source"] == "observed", "id"])
    inferred = tags[tags["source"] == "inferred"]
    assert got["tagged_items"] == len(observed)
    assert got["observed_tags"] == int((tags["source"] == "observed").sum())
    assert got["inferred_tags"] == len(inferred)
    assert (
        got["untagged_items_with_inferred_tags"]
        == inferred.loc[~inferred["id"].isin(observed), "id"].nunique()
    )
    assert got["duplicate_groups"] == 1
    assert (got["popularity_observed"], got["popularity_inferred"]) == (1, 2)


def test_popularity_inputs_warn_about_extreme_outliers_naming_ids_and_column() -> None:
    # before: 1e30 views set flickr's constant silently; every other item standardised to ~0
    items = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(8)],
            "provider": "flickr",
            "popularity_raw": [3.0, 10, 1e30, 7, 1e30, 12, np.nan, 5],
            "popularity_metric": "views",
        }
    )
    cat = Catalog(items, pd.DataFrame({"id": [], "tag": []}), pd.DataFrame())
    with pytest.warns(DataQualityWarning) as caught:
        raw, _ = popularity_inputs(cat)
    msg = str(caught[0].message)
    assert "column 'views'" in msg and "ids i2 (1e+30), i4 (1e+30)" in msg
    assert "other items' standardised popularity is about 0" in msg
    assert np.isnan(raw[6]) and raw[2] == 1e30  # values are passed on unchanged


def test_no_outlier_warning_on_openverse_samples(openverse_dir) -> None:
    cat = read_catalog(openverse_dir / "openverse_api_sample_images_to_clean_2023.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        raw, _ = popularity_inputs(cat)
    assert np.isfinite(raw).sum() > 500


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "cc", ""])), max_size=40))
def test_id_codes_partition_rows_as_factorize(values: list) -> None:
    from ccgraph._late_stages import _equals, _id_codes

    for column in (pd.Series(values, dtype="string"), pd.Series(values, dtype=object)):
        codes, n = _id_codes(column)
        want, uniq = pd.factorize(column)
        assert n == len(uniq)
        assert ((codes < 0) == (want < 0)).all()
        # the same partition of the rows: codes map one-to-one onto factorize's codes
        pairs = {(int(a), int(b)) for a, b in zip(codes, want, strict=True) if a >= 0}
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
        np.testing.assert_array_equal(
            _equals(column, "a"), np.array([v == "a" for v in values], dtype=bool)
        )
