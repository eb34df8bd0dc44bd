"""Id lookups and splicing of an update: member/positions, merge_embeddings, splice_tags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph import _assemble
from ccgraph.containers import Catalog, Embeddings, TagScores
from ccgraph.exceptions import InputError
from ccgraph.update._output import splice_tags
from ccgraph.update._persist import member, positions
from ccgraph.update.graph import merge_embeddings

IDS = st.lists(st.text("abcdé1", min_size=0, max_size=3), max_size=30)


def _columns(values: list[str]) -> list:
    """The same ids as a list, numpy unicode, object, and pandas (Arrow and object) columns."""
    return [
        values,
        np.array(values, dtype=str),
        np.array(values, dtype=object),
        pd.Series(values, dtype="string"),
        pd.Series(values, dtype="string[pyarrow]"),
        pd.Series(values, dtype=object),
    ]


@settings(max_examples=60, deadline=None)
@given(values=IDS, pool=IDS)
def test_member_and_positions_match_a_dict(values: list[str], pool: list[str]) -> None:
    where = {}
    for i, x in enumerate(pool):
        where.setdefault(x, i)
    unique_pool = list(where)
    expect_in = [x in where for x in values]
    expect_pos = [unique_pool.index(x) if x in where else -1 for x in values]
    for vals in _columns(values):
        for p in (pool, set(pool), np.array(pool, dtype=str), pd.Series(pool, dtype="string")):
            assert member(vals, p).tolist() == expect_in
        for p in _columns(unique_pool):
            got = positions(vals, p)
            assert got.dtype == np.int64
            assert got.tolist() == expect_pos


def test_member_missing_values_are_not_members() -> None:
    col = pd.Series(["a", None, "b"], dtype="string")
    assert member(col, ["a", "b"]).tolist() == [True, False, True]
    assert positions(col, np.array(["b", "a"])).tolist() == [1, -1, 0]


def _emb(ids: list[str], seed: int) -> Embeddings:
    g = np.random.default_rng(seed)
    return Embeddings(g.normal(size=(len(ids), 4)).astype(np.float32), ids)


@pytest.mark.parametrize("shuffle", [False, True])
def test_merge_embeddings_takes_each_row_from_the_right_side(shuffle: bool) -> None:
    old = _emb([f"o{i}" for i in range(12)], 0)
    batch = _emb(["o3", "n1", "n0", "o7"], 1)  # o3, o7 replaced; n0, n1 added
    gone = {"o5", "o9"}
    ids = [x for x in old.ids.tolist() if x not in gone] + ["n0", "n1"]
    if shuffle:
        ids = list(np.random.default_rng(2).permutation(ids))
    out = merge_embeddings({"m": old}, {"m": batch}, np.array(ids), replaced=["o3", "o7"])["m"]
    assert out.ids.tolist() == ids
    rows = {**dict(zip(old.ids, old.vectors, strict=True))}
    rows.update(dict(zip(batch.ids, batch.vectors, strict=True)))
    expect = np.stack([rows[x] for x in ids])
    assert out.vectors.flags.c_contiguous
    np.testing.assert_array_equal(out.vectors, expect)


def test_merge_embeddings_keeps_a_replaced_item_out_when_the_batch_lacks_it() -> None:
    old = _emb(["a", "b", "c"], 0)
    batch = _emb(["d"], 1)
    out = merge_embeddings(
        {"m": old}, {"m": batch}, np.array(["a", "b", "c", "d"]), replaced=["b"]
    )["m"]
    assert out.ids.tolist() == ["a", "c", "d"]
    np.testing.assert_array_equal(out.vectors[:2], old.vectors[[0, 2]])


def test_merge_embeddings_refuses_other_dimensions() -> None:
    old = _emb(["a"], 0)
    batch = Embeddings(np.ones((1, 3), dtype=np.float32), ["b"])
    with pytest.raises(InputError, match="dimensions"):
        merge_embeddings({"m": old}, {"m": batch}, np.array(["a", "b"]), replaced=[])


def _catalog(ids: list[str], seed: int) -> Catalog:
    g = np.random.default_rng(seed)
    rows = [(i, t) for i in ids for t in g.choice(["sea", "sky", "cat", "dog"], 2, replace=False)]
    rows = rows[::2]  # some items have no observed tag
    tags = pd.DataFrame(
        {
            "id": [r[0] for r in rows],
            "tag": [r[1] for r in rows],
            "tag_raw": [r[1].upper() for r in rows],
            "source": "user",
            "provider": None,
            "weight": g.random(len(rows)),
        }
    )
    return Catalog(pd.DataFrame({"id": ids}), tags)


def _scores(ids: list[str], tags: np.ndarray, seed: int) -> TagScores:
    g = np.random.default_rng(seed)
    s = sp.random(len(ids), len(tags), density=0.4, random_state=seed, format="csr")
    s.data = s.data.astype(np.float32)
    c = s.copy()
    c.data = g.random(len(c.data)).astype(np.float32)
    return TagScores(s, c, np.array(ids), tags)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splice_tags_equals_the_full_table(seed: int) -> None:
    """Old rows of items outside ``redo`` + fresh rows == the table assembled from scratch."""
    old_ids = [f"i{k:02d}" for k in range(20)]
    ids = np.array([x for x in old_ids if x not in {"i04", "i11"}] + ["n0", "n1", "n2"])
    tags = np.array(["cat", "dog", "sea", "sky", "sun"])
    catalog = _catalog(ids.tolist(), seed)
    new = _scores(ids.tolist(), tags, seed)
    g = np.random.default_rng(seed)
    redo = g.random(len(ids)) < 0.3
    redo[-3:] = True  # the added items are always fresh
    # the run's table: the same rows for the items outside `redo`, other rows for the rest
    old = _scores(old_ids, tags, seed + 10)
    keep_rows = {x: i for i, x in enumerate(ids) if not redo[i]}
    dense = old.scores.toarray()
    conf = old.confidence.toarray()
    for j, x in enumerate(old_ids):
        if x in keep_rows:
            dense[j] = new.scores[keep_rows[x]].toarray()
            conf[j] = new.confidence[keep_rows[x]].toarray()
    old = TagScores(sp.csr_matrix(dense), sp.csr_matrix(conf), np.array(old_ids), tags)
    old_cat = _catalog(old_ids, seed)
    obs = catalog.tags
    old_cat = Catalog(
        old_cat.items,
        pd.concat([obs[obs["id"].isin(keep_rows)], old_cat.tags[~old_cat.tags["id"].isin(ids)]]),
    )
    old_table = _assemble.tags_table(old_cat, np.array(old_ids), old)
    got = splice_tags(old_table, catalog, ids, new, redo)
    want = _assemble.tags_table(catalog, ids, new)
    pd.testing.assert_frame_equal(got, want)


def test_splice_tags_without_kept_rows_is_the_full_table() -> None:
    ids = np.array(["a", "b", "c"])
    catalog = _catalog(ids.tolist(), 0)
    new = _scores(ids.tolist(), np.array(["cat", "dog"]), 0)
    want = _assemble.tags_table(catalog, ids, new)
    got = splice_tags(want.iloc[:0], catalog, ids, new, np.ones(3, dtype=bool))
    pd.testing.assert_frame_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(runs=st.lists(st.tuples(st.text("abc", max_size=2), st.integers(1, 4)), max_size=20),
       pool=IDS)  # fmt: skip
def test_run_positions_match_a_dict_per_row(runs: list[tuple[str, int]], pool: list[str]) -> None:
    from ccgraph.update._output import run_positions

    values = [x for x, n in runs for _ in range(n)]  # rows of one id together (or not)
    unique_pool = list(dict.fromkeys(pool))
    want = [unique_pool.index(x) if x in unique_pool else -1 for x in values]
    for column in (pd.Series(values, dtype="string"), pd.Series(values, dtype=object)):
        assert run_positions(column, np.array(unique_pool, dtype=str)).tolist() == want


@settings(max_examples=40, deadline=None)
@given(pool=IDS, counts=st.lists(st.integers(1, 3), min_size=30, max_size=30),
       swap=st.booleans())  # fmt: skip
def test_run_positions_of_a_table_in_pool_order(pool: list[str], counts: list[int], swap) -> None:
    """Runs that are the pool itself (the no-lookup path), or the pool with two ids swapped."""
    from ccgraph.update._output import run_positions

    unique_pool = list(dict.fromkeys(pool))
    order = list(unique_pool)
    if swap and len(order) > 1:
        order[0], order[-1] = order[-1], order[0]
    values = [x for x, n in zip(order, counts, strict=False) for _ in range(n)]
    want = [unique_pool.index(x) for x in values]
    got = run_positions(pd.Series(values, dtype="string"), np.array(unique_pool, dtype=str))
    assert got.tolist() == want


def test_run_positions_null_run_is_absent_even_in_pool_order() -> None:
    from ccgraph.update._output import run_positions

    column = pd.Series(["a", "a", None, "c"], dtype="string")
    assert run_positions(column, np.array(["a", "b", "c"])).tolist() == [0, 0, -1, 2]


@pytest.mark.parametrize("order", ["kept", "shuffled"])
def test_staged_merge_is_the_npy_file_and_the_writer_adopts_it(tmp_path, order: str) -> None:
    from ccgraph.io._writer import staged_file

    old = _emb([f"o{i}" for i in range(12)], 0)
    batch = Embeddings(
        np.random.default_rng(1).normal(size=(2, 4)),  # float64 batch: rows are upcast
        np.array(["n0", "n1"]),
        "dense",
    )
    ids = [*old.ids.tolist(), "n0", "n1"]
    if order == "shuffled":
        ids = list(np.random.default_rng(2).permutation(ids))
    stage = tmp_path / "stage"
    stage.mkdir()
    out = merge_embeddings({"m": old}, {"m": batch}, np.array(ids), replaced=[], stage=stage)
    vec = out["m"].vectors
    plain = merge_embeddings({"m": old}, {"m": batch}, np.array(ids), replaced=[])["m"].vectors
    np.testing.assert_array_equal(vec, plain)
    assert vec.dtype == plain.dtype == np.float64 and vec.flags.c_contiguous
    np.save(tmp_path / "ref.npy", plain)
    target = stage / "embeddings_m.npy"
    assert target.read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert staged_file(vec, [stage]) == target.resolve()


@pytest.mark.parametrize("whole", [True, False])
def test_merged_file_copies_a_mapped_run_file_byte_for_byte(tmp_path, whole: bool) -> None:
    """The run's vectors as a memory-mapped ``.npy`` go file to file; a slice of one is written."""
    from ccgraph.update.graph import _mapped_file

    vec = np.random.default_rng(3).normal(size=(40, 6)).astype(np.float32)
    np.save(tmp_path / "run.npy", vec)
    mapped = np.load(tmp_path / "run.npy", mmap_mode="r")
    ids = np.array([f"o{i}" for i in range(40)])
    old = Embeddings(mapped if whole else mapped[:30], ids if whole else ids[:30], "dense")
    assert (_mapped_file(old.vectors) is not None) == whole
    batch = Embeddings(np.ones((3, 6), np.float32), np.array(["n0", "n1", "n2"]), "dense")
    every = np.r_[old.ids, batch.ids]
    stage = tmp_path / "stage"
    stage.mkdir()
    out = merge_embeddings({"m": old}, {"m": batch}, every, replaced=[], stage=stage)["m"]
    expected = np.r_[vec[: len(old.ids)], np.ones((3, 6), np.float32)]
    np.testing.assert_array_equal(out.vectors, expected)
    np.save(tmp_path / "ref.npy", expected)
    assert (stage / "embeddings_m.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
