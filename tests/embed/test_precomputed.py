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


def test_empty_npy_file_is_named(tmp_path):
    (tmp_path / "v.npy").write_bytes(b"")
    with pytest.raises(InputError, match=r"v\.npy: not a readable \.npy array"):
        load_precomputed(tmp_path / "v.npy", ids=["a"])


def test_ids_file_bom_blank_line_and_latin1(tmp_path, vectors):
    np.save(tmp_path / "v.npy", vectors)
    ids = tmp_path / "ids.txt"
    ids.write_bytes("\ufeffa\r\nb\r\nc\r\n".encode())
    assert load_precomputed(tmp_path / "v.npy", ids_path=ids).ids.tolist() == ["a", "b", "c"]
    ids.write_text("a\n\nb\n")
    with pytest.raises(InputError, match=r"ids\.txt: line 2 is empty"):
        load_precomputed(tmp_path / "v.npy", ids_path=ids)
    ids.write_bytes("a\nb\ncaf\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"ids\.txt: not UTF-8 text at line 3"):
        load_precomputed(tmp_path / "v.npy", ids_path=ids)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (["1,2", "3,4", "5,6"], r"row 0 .*holds str '1,2'"),
        ([1.0, 2.0, 3.0], r"row 0 .*holds float"),
        ([[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]], r"flat lists of numbers"),
    ],
)
def test_parquet_vector_column_that_is_not_lists_of_numbers(tmp_path, column, message):
    p = tmp_path / "v.parquet"
    pd.DataFrame({"id": ["a", "b", "c"], "vector": column}).to_parquet(p)
    with pytest.raises(InputError, match=rf"v\.parquet: column 'vector' must hold .*{message}"):
        load_precomputed(p)


def test_parquet_null_id_is_named(tmp_path, vectors):
    p = tmp_path / "v.parquet"
    pd.DataFrame({"id": ["a", None, "c"], "vector": list(vectors)}).to_parquet(p)
    with pytest.raises(InputError, match=r"column 'id' is null in 1 rows, e.g. rows \[1\]"):
        load_precomputed(p)


@pytest.mark.parametrize("scale", [1e37, 1e-40])
def test_extreme_magnitudes_keep_their_direction(tmp_path, vectors, scale):
    # float32 sums of squares overflow (1e37) or underflow (1e-40): still valid directions
    np.save(tmp_path / "v.npy", (vectors * scale).astype(np.float32))
    emb = load_precomputed(tmp_path / "v.npy", ids=["a", "b", "c"])
    expected = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.vectors, expected, rtol=1e-3, atol=1e-6)
