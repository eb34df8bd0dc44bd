"""TagSet.from_frame against a plain pandas oracle (the groupby it replaced)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import TagSet, as_ids
from ccgraph.exceptions import DataQualityWarning, InputError


def _oracle(tags: pd.DataFrame, ids: np.ndarray, weight_column: str | None, min_count: int):
    """Dense matrix and vocabulary, row by row with pandas (largest weight per pair)."""
    ids = np.asarray(ids).astype(str)
    t = tags[tags["id"].astype(str).isin(set(ids))]
    if weight_column and weight_column in t.columns:
        w = pd.to_numeric(t[weight_column], errors="coerce").fillna(1.0).to_numpy(np.float32)
    else:
        w = np.ones(len(t), dtype=np.float32)
    frame = pd.DataFrame(
        {"id": t["id"].astype(str).to_numpy(), "tag": t["tag"].astype(str), "w": w}
    )
    best = frame.groupby(["id", "tag"])["w"].max()
    items_per_tag = best.groupby(level="tag").size()
    vocab = sorted(items_per_tag.index[items_per_tag >= max(1, min_count)])
    dense = np.zeros((len(ids), len(vocab)), dtype=np.float32)
    row = {v: i for i, v in enumerate(ids)}
    col = {v: j for j, v in enumerate(vocab)}
    for (i, tag), value in best.items():
        if tag in col:
            dense[row[i], col[tag]] = value
    return dense, np.asarray(vocab, dtype=str)


_IDS = ["a", "b", "c", "d", "é", "x1"]
_TAGS = ["cat", "dog", "Zebra", "éclair", "sky"]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([*_IDS, "zz", "q"]),  # some ids are not among the items
            st.sampled_from(_TAGS),
            st.floats(0.125, 1.0, width=32),
        ),
        max_size=40,
    ),
    n_ids=st.integers(1, len(_IDS)),
    min_count=st.integers(1, 3),
    arrow=st.booleans(),
    weighted=st.booleans(),
)
def test_from_frame_matches_the_pandas_oracle(rows, n_ids, min_count, arrow, weighted) -> None:
    dtype = "string" if arrow else object
    tags = pd.DataFrame(
        {
            "id": pd.Series([r[0] for r in rows], dtype=dtype),
            "tag": pd.Series([r[1] for r in rows], dtype=dtype),
            "weight": pd.Series([r[2] for r in rows], dtype=object),
        }
    )
    ids = np.array(_IDS[::-1][:n_ids])
    weight_column = "weight" if weighted else None
    unknown = ~tags["id"].isin(set(ids.tolist()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = TagSet.from_frame(tags, ids, weight_column=weight_column, min_count=min_count)
    said = [w for w in caught if issubclass(w.category, DataQualityWarning)]
    assert len(said) == int(unknown.any())
    if unknown.any():
        assert f"{int(unknown.sum())} of {len(tags)} tag rows" in str(said[0].message)
    dense, vocab = _oracle(tags, ids, weight_column, min_count)
    assert got.tags.tolist() == vocab.tolist()
    assert got.matrix.dtype == np.float32
    assert got.matrix.has_canonical_format
    np.testing.assert_array_equal(got.matrix.toarray(), dense)
    assert got.matrix.nnz == np.count_nonzero(dense)


def test_checked_ids_are_looked_up_as_they_are() -> None:
    ids = as_ids(np.array(["b", "a", "c"]))
    tags = pd.DataFrame({"id": ["c", "a", "c", "z"], "tag": ["x", "x", "y", "x"]}, dtype="string")
    with pytest.warns(DataQualityWarning, match="1 of 4 tag rows"):
        got = TagSet.from_frame(tags, ids, weight_column=None)
    assert got.ids is ids
    want = sp.csr_matrix(np.array([[0, 0], [1, 0], [1, 1]], dtype=np.float32))
    assert (got.matrix != want).nnz == 0


def test_null_ids_or_tags_are_refused() -> None:
    tags = pd.DataFrame({"id": ["a", None], "tag": ["x", "y"]}, dtype="string")
    with pytest.raises(InputError, match="null id or tag"):
        TagSet.from_frame(tags, ["a"])


def test_tags_of_unknown_ids_are_counted_and_named() -> None:
    # before: dropped without a word
    tags = pd.DataFrame({"id": ["a", "zz", "q", "zz", "b"], "tag": ["x", "x", "y", "y", "x"]})
    with pytest.warns(DataQualityWarning, match=r"3 of 5 tag rows belong to 2 ids .*'zz', 'q'"):
        got = TagSet.from_frame(tags, ["a", "b"], weight_column=None)
    assert got.matrix.toarray().tolist() == [[1.0], [1.0]]


@pytest.mark.parametrize(
    ("weight", "shown"), [(-1.0, "-1.0"), (np.nan, "nan"), (np.inf, "inf"), ("high", "'high'")]
)
@pytest.mark.parametrize("arrow", [False, True])
def test_bad_weights_name_the_row(weight: object, shown: str, arrow: bool) -> None:
    # before: -1 was stored as a seed weight of -1, NaN and "high" became 1.0
    tags = pd.DataFrame(
        {"id": ["a", "b", "a"], "tag": ["x", "x", "y"], "weight": [0.5, weight, 1.0]},
        dtype="string" if arrow and isinstance(weight, str) else None,
    )
    with pytest.raises(InputError, match=rf"'weight' column has 1 weights .*row 1: {shown}\)"):
        TagSet.from_frame(tags, ["a", "b"])
    # weight_column=None weighs every tag 1, whatever the column holds
    assert TagSet.from_frame(tags, ["a", "b"], weight_column=None).matrix.sum() == 3


@pytest.mark.parametrize(("weight", "shown"), [(0.0, "0.0"), (1.5, "1.5"), (2, "2.0")])
def test_weights_outside_zero_one_name_the_row(weight: object, shown: str) -> None:
    # before: 0 was stored as an explicit seed of weight 0 (the item counted as tagged), and
    # 1.5 as a seed stronger than a certain user tag
    tags = pd.DataFrame(
        {"id": ["a", "b", "a"], "tag": ["x", "x", "y"], "weight": [0.5, weight, 1.0]}
    )
    with pytest.raises(InputError, match=rf"1 weights outside \(0, 1\] .*row 1: {shown}\)"):
        TagSet.from_frame(tags, ["a", "b"])
    assert TagSet.from_frame(tags, ["a", "b"], weight_column=None).matrix.sum() == 3


def test_weight_one_and_tiny_positive_weights_are_kept() -> None:
    tags = pd.DataFrame({"id": ["a", "b"], "tag": ["x", "x"], "weight": [1.0, 0.001]})
    got = TagSet.from_frame(tags, ["a", "b"]).matrix.toarray()
    np.testing.assert_array_equal(got, np.array([[1.0], [0.001]], dtype=np.float32))
