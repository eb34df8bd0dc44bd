"""``tags_table`` against a plain pandas implementation of the documented order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph._assemble import tags_table
from ccgraph.containers import Catalog, TagScores


def _reference(catalog: Catalog, ids: np.ndarray, inferred: TagScores | None) -> pd.DataFrame:
    """Observed (sorted by tag) then inferred (score desc, tag) per item, in ``ids`` order."""
    order = pd.Series(np.arange(len(ids)), index=ids)
    obs = catalog.tags[catalog.tags["id"].isin(order.index)]
    rows = []
    for r in obs.itertuples(index=False):
        w = pd.to_numeric(pd.Series([r.weight]), errors="coerce").fillna(1.0).iloc[0]
        rows.append(
            (
                order[r.id],
                0,
                0,
                r.tag,
                r.id,
                r.tag,
                float(w),
                1.0,
                pd.NA,
                "observed",
                r.source,
                r.tag_raw,
            )
        )
    if inferred is not None:
        s = inferred.scores.tocsr()
        c = inferred.confidence.tocsr()
        for i in range(s.shape[0]):
            cols = s.indices[s.indptr[i] : s.indptr[i + 1]]
            vals = s.data[s.indptr[i] : s.indptr[i + 1]]
            ranked = sorted(
                zip(cols, vals, strict=True), key=lambda t: (-t[1], inferred.tags[t[0]])
            )
            for rank, (col, val) in enumerate(ranked, start=1):
                tag = inferred.tags[col]
                item = inferred.ids[i]
                score, conf = float(np.float32(val)), float(np.float32(c[i, col]))
                rows.append(
                    (
                        order[item],
                        1,
                        rank,
                        tag,
                        item,
                        tag,
                        score,
                        conf,
                        rank,
                        "inferred",
                        pd.NA,
                        pd.NA,
                    )
                )
    rows.sort(key=lambda t: (t[0], t[1], t[2], t[3]))
    return pd.DataFrame(
        [r[4:] for r in rows],
        columns=["id", "tag", "score", "confidence", "rank", "source", "origin", "tag_raw"],
    )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12),
    n_tags=st.integers(1, 6),
    density=st.floats(0.0, 0.9),
    seed=st.integers(0, 1000),
    with_inferred=st.booleans(),
)
def test_tags_table_matches_reference(n, n_tags, density, seed, with_inferred):
    g = np.random.default_rng(seed)
    ids = np.array([f"it{i:02d}" for i in range(n)])
    vocab = np.array(["cat", "dog", "sea", "sky", "sun", "tree"])[:n_tags]
    obs_rows = []
    for i in g.permutation(n)[: max(0, n - 2)]:
        for t in g.choice(vocab, size=min(n_tags, int(g.integers(0, 3))), replace=False):
            obs_rows.append(
                (ids[i], t, g.choice([0.5, 1.0, np.nan]), g.choice(["user", "machine"]))
            )
    obs_rows.append(("not-an-item", "cat", 1.0, "user"))  # ignored: not among ids
    tags = pd.DataFrame(obs_rows, columns=["id", "tag", "weight", "source"])
    tags["tag_raw"] = tags["tag"].str.upper()
    catalog = Catalog(pd.DataFrame({"id": ids[::-1]}), tags)
    inferred = None
    if with_inferred:
        # Scores with ties (rounded) so the tag tie-break matters.
        dense = np.round(g.random((n, n_tags)), 1) * (g.random((n, n_tags)) < density)
        scores = sp.csr_matrix(dense.astype(np.float32))
        conf = scores.copy()
        conf.data = np.round(g.random(conf.nnz), 3).astype(np.float32) + 0.001
        inferred = TagScores(scores, conf, ids, vocab)
    got = tags_table(catalog, ids, inferred)
    want = _reference(catalog, ids, inferred)
    assert got["id"].tolist() == want["id"].tolist()
    assert got["tag"].tolist() == want["tag"].tolist()
    np.testing.assert_allclose(got["score"].to_numpy(float), want["score"].to_numpy(float))
    np.testing.assert_allclose(
        got["confidence"].to_numpy(float), want["confidence"].to_numpy(float), rtol=1e-6
    )
    assert got["rank"].astype("Int64").tolist() == pd.array(want["rank"], dtype="Int64").tolist()
    assert got["source"].tolist() == want["source"].tolist()
    assert got["origin"].isna().tolist() == want["origin"].isna().tolist()
    assert got["tag_raw"].dropna().tolist() == want["tag_raw"].dropna().tolist()
    for col in ("id", "tag", "source", "origin", "tag_raw"):
        assert got[col].dtype == pd.StringDtype()


TEXT = st.one_of(st.none(), st.just(np.nan), st.text("ab é", max_size=3))


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXT, max_size=30))
def test_string_columns_equal_the_fillna_astype_round_trip(values: list) -> None:
    from ccgraph._assemble import _filled_strings, _same_strings, _strings

    for dtype in ("string", "str", object):
        column = pd.Series(values, dtype=dtype)
        want = pd.array(column.fillna("").astype(str).to_numpy(), dtype="string")
        got = _filled_strings(column)
        pd.testing.assert_extension_array_equal(got, want)
        assert got.dtype == want.dtype
        plain = [v for v in values if isinstance(v, str)]
        ids = pd.array(np.array(plain, dtype=str), dtype="string")
        same = len(column) == len(ids) and bool(
            np.array_equal(column.to_numpy(dtype=str), np.array(plain, dtype=str))
        )
        assert _same_strings(column, ids) == same
    source = np.array([v if isinstance(v, str) else None for v in values], dtype=object)
    want = pd.array(source.astype(str), dtype="string")  # a None becomes "None"
    pd.testing.assert_extension_array_equal(_strings(source), want)
    pd.testing.assert_extension_array_equal(
        _strings(source.astype(str)), pd.array(source.astype(str), dtype="string")
    )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 0.5),
    n_clusters=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_cluster_strength_is_the_bincount_share_bit_for_bit(
    n: int, density: float, n_clusters: int, seed: int
) -> None:
    """The kernel against the numpy expression it replaced (same sums, same order)."""
    from ccgraph._assemble import cluster_strength

    a = sp.random(n, n, density=density, random_state=seed, format="csr", dtype=np.float32)
    a = sp.csr_matrix(a + a.T)
    membership = np.random.default_rng(seed).integers(0, n_clusters, n)
    rows = np.repeat(np.arange(n), np.diff(a.indptr))
    inside = membership[a.indices] == membership[rows]
    total = np.bincount(rows, weights=a.data, minlength=n)
    internal = np.bincount(rows, weights=a.data * inside, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(total > 0, internal / np.where(total > 0, total, 1), 1.0)
    got = cluster_strength(a, membership)
    assert got.dtype == np.float32
    assert got.tobytes() == want.astype(np.float32).tobytes()
    # and it is the share of each item's weight inside its cluster
    dense = a.toarray().astype(np.float64)
    same = membership[:, None] == membership[None, :]
    share = np.divide((dense * same).sum(1), dense.sum(1), out=np.ones(n), where=dense.sum(1) > 0)
    np.testing.assert_allclose(got, share, rtol=1e-6)
