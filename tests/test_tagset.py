"""TagSet.from_frame against a plain pandas oracle (the groupby it replaced)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import TagSet, as_ids
from ccgraph.exceptions import InputError


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
            st.one_of(st.floats(0.125, 1.0, width=32), st.none()),
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
    got = TagSet.from_frame(tags, ids, weight_column=weight_column, min_count=min_count)
    dense, vocab = _oracle(tags, ids, weight_column, min_count)
    assert got.tags.tolist() == vocab.tolist()
    assert got.matrix.dtype == np.float32
    assert got.matrix.has_canonical_format
    np.testing.assert_array_equal(got.matrix.toarray(), dense)
    assert got.matrix.nnz == np.count_nonzero(dense)


def test_checked_ids_are_looked_up_as_they_are() -> None:
    ids = as_ids(np.array(["b", "a", "c"]))
    tags = pd.DataFrame({"id": ["c", "a", "c", "z"], "tag": ["x", "x", "y", "x"]}, dtype="string")
    got = TagSet.from_frame(tags, ids, weight_column=None)
    assert got.ids is ids
    want = sp.csr_matrix(np.array([[0, 0], [1, 0], [1, 1]], dtype=np.float32))
    assert (got.matrix != want).nnz == 0


def test_null_ids_or_tags_are_refused() -> None:
    tags = pd.DataFrame({"id": ["a", None], "tag": ["x", "y"]}, dtype="string")
    with pytest.raises(InputError, match="null id or tag"):
        TagSet.from_frame(tags, ["a"])
