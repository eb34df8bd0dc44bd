from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccgraph.embed import load_precomputed
from ccgraph.exceptions import InputError


@pytest.fixture
def vectors():
    return np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])


def test_npy_with_ids_or_ids_file(tmp_path, vectors):
    p = tmp_path / "v.npy"
    np.save(p, vectors)
    emb = load_precomputed(p, ids=["a", "b", "c"])
    assert emb.ids.tolist() == ["a", "b", "c"]
    assert np.allclose(emb.vectors, [[0.6, 0.8], [1, 0], [0, 1]])
    (tmp_path / "ids.txt").write_text("x\ny\nz\n\n")
    assert load_precomputed(p, ids_path=tmp_path / "ids.txt").ids.tolist() == ["x", "y", "z"]
    raw = load_precomputed(p, ids=["a", "b", "c"], normalize=False)
    assert np.allclose(raw.vectors, vectors)


def test_parquet_list_column_and_numeric_columns(tmp_path, vectors):
    p = tmp_path / "v.parquet"
    pd.DataFrame({"key": ["a", "b", "c"], "emb": list(vectors)}).to_parquet(p)
    emb = load_precomputed(p, id_column="key", vector_column="emb")
    assert emb.ids.tolist() == ["a", "b", "c"] and emb.shape == (3, 2)
    q = tmp_path / "w.parquet"
    pd.DataFrame(
        {"id": [1, 2, 3], "d0": vectors[:, 0], "d1": vectors[:, 1], "note": list("xyz")}
    ).to_parquet(q)
    emb2 = load_precomputed(q)
    assert emb2.ids.tolist() == ["1", "2", "3"]
    assert np.allclose(emb2.vectors, emb.vectors)


def test_catalog_order_and_subset(tmp_path, vectors):
    p = tmp_path / "v.npy"
    np.save(p, vectors)
    emb = load_precomputed(p, ids=["c", "a", "q"], catalog_ids=["a", "b", "c", "q", "z"])
    assert emb.ids.tolist() == ["a", "c", "q"]
    assert np.allclose(emb.vectors[0], [1, 0])


def test_nan_rows_are_named(tmp_path, vectors):
    v = vectors.copy()
    v[2, 1] = np.nan
    p = tmp_path / "nan.npy"
    np.save(p, v)
    with pytest.raises(InputError, match=r"nan\.npy: 1 rows hold NaN.*rows \[2\].*'c'"):
        load_precomputed(p, ids=["a", "b", "c"])
    v[2, 1] = np.inf
    np.save(p, v)
    with pytest.raises(InputError, match="infinite"):
        load_precomputed(p, ids=["a", "b", "c"])


def test_mismatched_dimensions_are_named(tmp_path):
    p = tmp_path / "ragged.parquet"
    pd.DataFrame({"id": ["a", "b", "c"], "vector": [[1.0, 2.0], [1.0, 2.0], [1.0]]}).to_parquet(p)
    with pytest.raises(InputError, match=r"ragged\.parquet.*different lengths.*'c'"):
        load_precomputed(p)


def test_row_count_must_match_ids(tmp_path, vectors):
    p = tmp_path / "v.npy"
    np.save(p, vectors)
    with pytest.raises(InputError, match=r"v\.npy: 3 rows but the given ids lists 2"):
        load_precomputed(p, ids=["a", "b"])
    with pytest.raises(InputError, match="no ids"):
        load_precomputed(p)


def test_duplicate_and_unknown_ids(tmp_path, vectors):
    p = tmp_path / "v.npy"
    np.save(p, vectors)
    with pytest.raises(InputError, match=r"repeated ids.*'a'"):
        load_precomputed(p, ids=["a", "b", "a"])
    with pytest.raises(InputError, match=r"v\.npy: 1 ids are not in the catalog.*'c'"):
        load_precomputed(p, ids=["a", "b", "c"], catalog_ids=["a", "b"])


def test_other_file_errors(tmp_path, vectors):
    with pytest.raises(InputError, match="not found"):
        load_precomputed(tmp_path / "none.npy", ids=[])
    (tmp_path / "v.csv").write_text("id,x\n")
    with pytest.raises(InputError, match="unsupported"):
        load_precomputed(tmp_path / "v.csv")
    np.save(tmp_path / "one.npy", vectors[0])
    with pytest.raises(InputError, match="2-D"):
        load_precomputed(tmp_path / "one.npy", ids=["a"])
    np.save(tmp_path / "zero.npy", np.array([[0.0, 0.0], [1.0, 1.0]]))
    with pytest.raises(InputError, match="all-zero"):
        load_precomputed(tmp_path / "zero.npy", ids=["a", "b"])
    pd.DataFrame({"name": ["a"], "vector": [[1.0]]}).to_parquet(tmp_path / "noid.parquet")
    with pytest.raises(InputError, match="no id column 'id'"):
        load_precomputed(tmp_path / "noid.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(InputError, match=r"junk\.parquet"):
        load_precomputed(tmp_path / "junk.parquet")
