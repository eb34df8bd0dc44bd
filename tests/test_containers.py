"""as_ids: the checks hold for new input, and an array it returned is not sorted again."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import Embeddings, KnnGraph, Partition, as_ids
from ccgraph.exceptions import IdMismatchError, InputError


def test_returned_ids_pass_again_unchanged() -> None:
    ids = as_ids(np.array(["b", "a", "c"]))
    assert not ids.flags.writeable
    assert as_ids(ids) is ids
    assert as_ids(ids, 3) is ids


def test_returned_ids_still_checked_for_length() -> None:
    ids = as_ids(["a", "b"])
    with pytest.raises(IdMismatchError, match="2 entries"):
        as_ids(ids, 3)


def test_duplicates_refused_in_new_input() -> None:
    with pytest.raises(InputError, match="unique"):
        as_ids(np.array(["a", "b", "a"]))


def test_ids_made_writeable_are_checked_again() -> None:
    ids = as_ids(np.array(["a", "b", "c"]))
    ids.setflags(write=True)
    ids[2] = "a"
    with pytest.raises(InputError, match="unique"):
        as_ids(ids)


def test_a_copy_or_view_is_checked_as_new_input() -> None:
    ids = as_ids(np.array(["a", "b", "c"]))
    view = ids[[0, 0, 1]]
    with pytest.raises(InputError, match="unique"):
        as_ids(view)
    same = ids[:]
    out = as_ids(same)
    assert out is not ids and out.tolist() == ids.tolist()


def test_results_share_checked_ids() -> None:
    import scipy.sparse as sp

    emb = Embeddings.from_array(np.eye(3, dtype=np.float32), ids=["a", "b", "c"])
    g = KnnGraph(sp.csr_matrix((3, 3), dtype=np.float32), emb.ids, {})
    assert g.ids is emb.ids


@settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(st.integers(0, 50), max_size=40),
    scale=st.sampled_from([1, 10**6]),  # sparse labels take the sorting path
)
def test_n_clusters_counts_distinct_labels(labels: list[int], scale: int) -> None:
    m = np.array(labels, dtype=np.int64) * scale
    p = Partition(m, [str(i) for i in range(len(m))])
    assert p.n_clusters == len(np.unique(m))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab\x00é😀 ", max_size=4), max_size=30))
def test_as_ids_accepts_exactly_the_distinct_ids(values: list[str]) -> None:
    from ccgraph.containers import _distinct_hashes

    arr = np.array(values, dtype=str) if values else np.zeros(0, dtype=str)
    distinct = len(np.unique(arr)) == len(arr)  # the oracle: sorted strings
    if _distinct_hashes(arr):
        assert distinct
    if (arr == "").any():  # numpy drops trailing NULs: "\x00" reads ""
        with pytest.raises(InputError, match="missing or empty ids"):
            as_ids(arr.copy())
    elif distinct:
        assert as_ids(arr.copy()).tolist() == arr.tolist()
    else:
        with pytest.raises(InputError, match="must be unique"):
            as_ids(arr.copy())


def test_as_ids_sorts_when_hashes_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    import ccgraph.containers as containers

    monkeypatch.setattr(containers, "_distinct_hashes", lambda arr: False)  # as on a collision
    assert as_ids(np.array(["b", "a"])).tolist() == ["b", "a"]
    with pytest.raises(InputError, match=r"repeated: \['a'\]"):
        as_ids(np.array(["a", "b", "a"]))


@pytest.mark.parametrize(
    ("vectors", "dtype"),
    [
        (np.array([["a", "b"]]), "<U1"),  # before: numpy ValueError "could not convert string"
        (np.array([[1.0, "x"]], dtype=object), "object"),
        (np.array([[1 + 2j, 0]]), "complex128"),  # before: imaginary part dropped silently
    ],
)
def test_from_array_refuses_non_numeric_vectors(vectors: np.ndarray, dtype: str) -> None:
    with pytest.raises(InputError, match=rf"`vectors` must hold numbers; got dtype {dtype}"):
        Embeddings.from_array(vectors, ["a"])


def test_from_array_refuses_ragged_rows() -> None:
    with pytest.raises(InputError, match=r"`vectors` .* rows differ in length"):
        Embeddings.from_array([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    ("ids", "shown"),
    [(["a", None], "None"), (["a", ""], "''"), (["a", np.nan], "nan"), (np.array(["a", ""]), "''")],
)
def test_from_array_refuses_missing_or_empty_ids(ids: object, shown: str) -> None:
    # before: accepted as the ids "None", "" and "nan"
    with pytest.raises(InputError, match=rf"`ids` has 1 missing .* at position 1: {shown}\)"):
        Embeddings.from_array(np.eye(2), ids)


def test_ids_that_merely_read_none_are_kept() -> None:
    emb = Embeddings.from_array(np.eye(3), ["None", "nan", "0"])
    assert emb.ids.tolist() == ["None", "nan", "0"]


def test_popularity_repr_counts_each_source() -> None:
    from ccgraph.containers import Popularity

    source = np.array(["observed", "inferred", "inferred", "none", "observed", "inferred"])
    pop = Popularity(
        value=np.linspace(0, 1, 6),
        observed=np.where(source == "observed", 3.0, np.nan),
        source=source,
        confidence=np.ones(6),
        ids=[f"i{k}" for k in range(6)],
    )
    # oracle: numpy's count of each label, written out by hand
    assert repr(pop) == "Popularity(6 items: 2 observed, 3 inferred, 1 none)"


def test_per_row_arrays_are_read_only_copies_of_one_length() -> None:
    from ccgraph.containers import Popularity
    from ccgraph.graph.duplicates import DuplicateGroups

    value = np.linspace(0, 1, 3)
    pop = Popularity(value, np.full(3, np.nan), np.array(["none"] * 3), np.zeros(3), ids=None)
    value[0] = 9.0  # the caller's array is copied, not kept
    assert pop.value[0] == 0.0 and not pop.value.flags.writeable
    assert pop.ids.tolist() == ["0", "1", "2"]
    with pytest.raises(InputError, match=r"Popularity\.confidence has 2 entries, expected 3"):
        Popularity(value, value, np.array(["none"] * 3), np.zeros(2), ids=None)
    with pytest.raises(InputError, match=r"DuplicateGroups\.canonical has 1 entries, expected 2"):
        DuplicateGroups(np.arange(2), np.ones(2, bool), np.arange(1), ids=["a", "b"])
