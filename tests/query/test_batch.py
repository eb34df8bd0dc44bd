"""Batch queries: ids, vectors and tables in, one row per query out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccgraph.exceptions import InputError, ParameterError
from ccgraph.query import RunIndex


def test_batch_of_ids_equals_single_answers(index: RunIndex) -> None:
    out = index.query_batch(["it0002", "it0140"], n=5)
    assert out["query"].tolist() == ["it0002", "it0140"]
    assert out["kind"].tolist() == ["id", "id"]
    for _, row in out.iterrows():
        rel = index.related(row["query"], 5)
        assert row["related_ids"] == rel.loc[rel["relation"] == "related", "id"].tolist()
        assert row["duplicate_ids"] == rel.loc[rel["relation"] == "duplicate", "id"].tolist()
        np.testing.assert_allclose(
            row["related_scores"], rel.loc[rel["relation"] == "related", "score"]
        )
        c = index.clusters(row["query"])
        assert row["cluster"] == c.cluster
        for lev in range(index.n_levels):
            assert row[f"cluster_l{lev}"] == c.levels["cluster"].iloc[lev]
        assert row["tags"] == index.tags(row["query"])["tag"].tolist()
    assert out.loc[1, "duplicate_ids"] == ["it0000"]


def test_batch_from_parquet_with_vectors(index: RunIndex, tmp_path: Path) -> None:
    vecs = np.asarray(index.embeddings["precomputed"].vectors[:2], dtype=np.float64)
    frame = pd.DataFrame({"id": ["it0001", None, None], "vector": [None, *list(vecs)]})
    path = tmp_path / "in.parquet"
    frame.to_parquet(path)
    out = index.query_batch(path, n=4)
    assert out["kind"].tolist() == ["id", "vector", "vector"]
    single = index.query_vector(vecs[1], n=4)
    assert out.loc[2, "cluster"] == single.clusters.cluster
    assert out.loc[2, "tags"] == single.tags["tag"].tolist()
    assert set(out.loc[2, "duplicate_ids"]) == {"it0001", "it0141"}  # itself and its copy
    written = tmp_path / "out.parquet"
    out.to_parquet(written)
    back = pd.read_parquet(written)
    assert list(back.loc[0, "related_ids"]) == out.loc[0, "related_ids"]


def test_batch_input_errors(index: RunIndex, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        index.query_batch(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("no parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        index.query_batch(bad)
    with pytest.raises(InputError, match="needs one of the columns"):
        index.query_batch(pd.DataFrame({"key": ["it0001"]}))
    with pytest.raises(InputError, match=r"exactly one of .* rows \[1\]"):
        index.query_batch(pd.DataFrame({"id": ["it0001"], "text": ["fox"]}))
    with pytest.raises(
        InputError, match=r"rows \[2\] \(1-based\) give \[0\] of them \(0: all null"
    ):
        index.query_batch(pd.DataFrame({"id": ["it0001", None]}))
    # before: "batch row 2: `id` 'nope' ..." for the first unknown id only
    with pytest.raises(
        InputError, match=r"2 of 3 batch ids are not items of the run .*row 2 'nope', row 3 'x'"
    ):
        index.query_batch(["it0001", "nope", "x"])
    with pytest.raises(InputError, match="`queries` must be"):
        index.query_batch(42)


def test_batch_records_errors_when_asked(index: RunIndex) -> None:
    frame = pd.DataFrame({"id": ["it0001", "nope", None], "vector": [None, None, [1.0, 2.0]]})
    out = index.query_batch(frame, errors="record")
    assert out["error"].isna().tolist() == [True, False, False]
    assert "nope" in out.loc[1, "error"] and "16 entries" in out.loc[2, "error"]
    assert out.loc[0, "related_ids"]


def test_batch_text_rows_without_a_text_model_are_recorded(index: RunIndex) -> None:
    frame = pd.DataFrame({"id": ["it0001", None], "text": [None, "a red fox"]})
    out = index.query_batch(frame, errors="record")
    assert out["error"].isna().tolist() == [True, False]
    assert "text" in out.loc[1, "error"] and out.loc[1, "query"] == "a red fox"
    with pytest.raises(InputError, match="batch row 2"):
        index.query_batch(frame)


def test_batch_vector_modality_column(index: RunIndex) -> None:
    vec = list(np.asarray(index.embeddings["precomputed"].vectors[0], dtype=float))
    frame = pd.DataFrame({"vector": [vec, vec], "modality": ["precomputed", None]})
    out = index.query_batch(frame)
    assert out["cluster"].nunique() == 1 and out["error"].isna().all()
    bad = pd.DataFrame({"vector": [vec], "modality": ["image"]})
    with pytest.raises(InputError, match="'image' is not stored"):
        index.query_batch(bad)


def test_batch_empty_image_path_names_its_row(tmp_path: Path) -> None:
    # before: "image file not found: " with a blank name
    from ccgraph.query import open_run
    from tests.query._runs import image_run

    index = open_run(image_run(tmp_path, "pixels", n=12))
    frame = pd.DataFrame({"id": ["im00", None], "image_path": [None, "  "]})
    out = index.query_batch(frame, errors="record")
    assert "`image_path` is empty" in out.loc[1, "error"]
    with pytest.raises(InputError, match=r"batch row 2: `image_path` is empty"):
        index.query_batch(frame)


def test_batch_bad_k_raises_even_when_recording_errors(index: RunIndex) -> None:
    # before: k=0 became a per-row "batch row 1: `k` ..." entry in the error column
    vec = list(np.asarray(index.embeddings["precomputed"].vectors[0], dtype=float))
    frame = pd.DataFrame({"vector": [vec]})
    with pytest.raises(ParameterError, match="`k` must be an integer >= 1; got 0"):
        index.query_batch(frame, k=0, errors="record")


def test_batch_error_rows_are_labelled_by_their_query_column(index: RunIndex) -> None:
    # before: the label came from the first non-null column, e.g. a user's `note` column
    frame = pd.DataFrame({"note": ["from the log"], "id": ["nope"]})
    out = index.query_batch(frame, errors="record")
    assert out.loc[0, "query"] == "nope" and "nope" in out.loc[0, "error"]


def test_empty_batch_has_the_output_columns(index: RunIndex, tmp_path: Path) -> None:
    # before: query_batch([]) returned a DataFrame without any column
    expected = index.query_batch(["it0001"]).columns.tolist()
    assert index.n_levels >= 1 and "cluster_l0" in expected
    for empty in ([], pd.DataFrame({"id": pd.Series([], dtype=object)})):
        out = index.query_batch(empty)
        assert len(out) == 0
        assert out.columns.tolist() == expected
    path = tmp_path / "empty.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=object)}).to_parquet(path)
    assert index.query_batch(path, errors="record").columns.tolist() == expected
