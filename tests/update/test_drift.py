"""The drift report: splits and merges from the contingency table, rebuild advice."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.update.drift import drift_markdown, drift_report, splits_and_merges, unique_inverse


def _items(ids: list[str], l0: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "cluster_l0": l0})


def test_split_and_merge_by_hand() -> None:
    # old 1 (6 items) -> new 1 (3) + new 8 (3); old 2 and old 3 -> new 2; old 4 unchanged;
    # old 5 loses one item of 10 to new 4 (below the 20 % share: no split)
    old = [1] * 6 + [2] * 4 + [3] * 4 + [4] * 3 + [5] * 10
    new = [1] * 3 + [8] * 3 + [2] * 8 + [4] * 3 + [5] * 9 + [4]
    splits, merges = splits_and_merges(np.array(old), np.array(new), share=0.2)
    assert splits == [{"old": 1, "into": [1, 8], "sizes": [3, 3]}]
    assert merges == [{"new": 2, "from": [2, 3], "sizes": [4, 4]}]


def test_nothing_moved_means_no_split_or_merge() -> None:
    lab = np.array([0, 0, 1, 1, 2])
    assert splits_and_merges(lab, lab) == ([], [])
    assert splits_and_merges(np.zeros(0), np.zeros(0)) == ([], [])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_relabelling_is_neither_split_nor_merge(pairs: list[tuple[int, int]]) -> None:
    old = np.array([p[0] for p in pairs])
    # a bijective renaming of the old labels is the same partition
    new = (old * 7 + 3) % 11
    assert splits_and_merges(old, new) == ([], [])


def test_report_counts_and_recommendation() -> None:
    ids = [f"i{k}" for k in range(20)]
    before = _items(ids, [0] * 10 + [1] * 10)
    after = _items([*ids[2:], "n1"], [0] * 4 + [1] * 14 + [2])  # i6..i9 moved 0 -> 1
    rep = drift_report(
        before,
        after,
        n_levels=1,
        default_level=0,
        changes={"added": 1, "replaced": 0, "removed": 2},
        drift_threshold=0.1,
        max_batch_fraction=0.5,
        split_share=0.2,
    )
    lv = rep["levels"][0]
    assert lv["n_moved"] == 4
    assert lv["churn"] == 4 / 18
    assert lv["new_clusters"] == [2] and lv["vanished_clusters"] == []
    assert [m["id"] for m in lv["moved_items"]] == ["i6", "i7", "i8", "i9"]
    assert rep["rebuild_recommended"] and len(rep["reasons"]) == 1

    def same_clusters(*, added: int) -> dict:
        """The report of an unchanged clustering after ``added`` new items."""
        return drift_report(
            before,
            before,
            n_levels=1,
            default_level=0,
            changes={"added": added},
            drift_threshold=0.1,
            max_batch_fraction=0.5,
            split_share=0.2,
        )

    quiet = same_clusters(added=0)
    assert not quiet["rebuild_recommended"]
    big = same_clusters(added=15)
    assert big["rebuild_recommended"] and "75.0%" in big["reasons"][0]
    md = drift_markdown(rep)
    assert "| 0 (default) | 22.22% | 4 |" in md and "recommended" in md


def _splits_and_merges_by_pandas(
    old: np.ndarray, new: np.ndarray, share: float, min_items: int = 2
) -> tuple[list, list]:
    """Independent oracle: the contingency table by ``pd.crosstab``, groups by ``groupby``."""
    table = pd.crosstab(pd.Series(old, name="o"), pd.Series(new, name="n")).stack()
    frame = table[table >= min_items].rename("c").reset_index()
    sizes = pd.Series(old).value_counts()
    frame = frame[frame["c"] / sizes.loc[frame["o"]].to_numpy() >= share]
    splits = [
        {"old": int(o), "into": g["n"].astype(int).tolist(), "sizes": g["c"].astype(int).tolist()}
        for o, g in frame.sort_values(["o", "c", "n"], ascending=[True, False, True]).groupby(
            "o", sort=True
        )
        if len(g) >= 2
    ]
    merges = [
        {"new": int(n), "from": g["o"].astype(int).tolist(), "sizes": g["c"].astype(int).tolist()}
        for n, g in frame.sort_values(["n", "c", "o"], ascending=[True, False, True]).groupby(
            "n", sort=True
        )
        if len(g) >= 2
    ]
    return splits, merges


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 6), st.integers(0, 9)), min_size=1, max_size=80),
    st.sampled_from([0.1, 0.2, 0.5]),
    st.sampled_from([1, 2, 3]),
)
def test_splits_and_merges_match_a_crosstab(
    pairs: list[tuple[int, int]], share: float, min_items: int
) -> None:
    old = np.array([p[0] for p in pairs]) * 1000  # sparse ids too
    new = np.array([p[1] for p in pairs])
    got = splits_and_merges(old, new, share=share, min_items=min_items)
    assert got == _splits_and_merges_by_pandas(old, new, share, min_items)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 40), max_size=50), st.sampled_from([1, 10**9]))
def test_unique_inverse_equals_numpy(values: list[int], scale: int) -> None:
    x = np.array(values, dtype=np.int64) * scale  # dense ids (counted) and sparse ones
    got_u, got_inv = unique_inverse(x)
    want_u, want_inv = np.unique(x, return_inverse=True)
    np.testing.assert_array_equal(got_u, want_u)
    np.testing.assert_array_equal(got_inv, want_inv.ravel())
