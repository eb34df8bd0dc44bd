"""The column-wise table parser gives exactly what the row-by-row parser gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccgraph.io import _table_fast, table
from ccgraph.io._files import RawTable, read_raw


def _both(path: Path, columns: dict[str, str]) -> tuple:
    raw = read_raw(path)
    fast = table.parse_table(raw, columns=columns)
    orig = table.parse_columns
    try:
        table.parse_columns = lambda *a, **k: None  # type: ignore[assignment]
        slow = table.parse_table(raw, columns=columns)
    finally:
        table.parse_columns = orig  # type: ignore[assignment]
    return fast, slow


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    ids = np.array([f" it{i} " for i in range(n)], dtype=object)
    ids[g.random(n) < 0.05] = ""
    ids[g.random(n) < 0.03] = None
    views = g.lognormal(2, 1, n)
    views[g.random(n) < 0.5] = np.nan
    views[g.random(n) < 0.05] = -3.0
    views[g.random(n) < 0.02] = np.inf
    words = np.array(["dog", " Park ", "  ", "cat", "sky"], dtype=object)
    tags = []
    for _ in range(n):
        r = g.random()
        if r < 0.3:
            tags.append(None)
        elif r < 0.4:
            tags.append([])
        else:
            tags.append(list(words[g.integers(0, 5, size=g.integers(1, 4))]))
    title = np.array([f"  title {i}\\N" if i % 7 else "\\N" for i in range(n)], dtype=object)
    title[g.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "key": ids,
            "name": title,
            "labels": tags,
            "views": views,
            "src": g.choice(["flickr", " wiki ", None], size=n),
            "extra_num": g.normal(size=n),
            "extra_txt": g.choice(["a", "b"], size=n),
        }
    )


COLUMNS = {"id": "key", "title": "name", "tags": "labels", "popularity": "views", "provider": "src"}


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_path_matches_row_parser(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "c.parquet"
    _frame(300, seed).to_parquet(path)
    raw = read_raw(path)
    fields = {**COLUMNS, "description": "", "source": "", "license": "", "url": ""}
    fields = {k: v for k, v in fields.items() if v}
    assert _table_fast.parse_columns(raw, fields, ["extra_num", "extra_txt"], ("title",))
    fast, slow = _both(path, COLUMNS)
    pd.testing.assert_frame_equal(fast.items, slow.items)
    pd.testing.assert_frame_equal(fast.tags, slow.tags)
    pd.testing.assert_frame_equal(fast.rejects, slow.rejects)
    assert (fast.n_rows, fast.format, fast.fixes) == (slow.n_rows, slow.format, slow.fixes)


def test_fast_path_without_tags_or_popularity(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    _frame(50).drop(columns=["labels", "views"]).to_parquet(path)
    fast, slow = _both(path, {"id": "key", "title": "name"})
    pd.testing.assert_frame_equal(fast.items, slow.items)
    pd.testing.assert_frame_equal(fast.tags, slow.tags)
    pd.testing.assert_frame_equal(fast.rejects, slow.rejects)


def test_json_tags_fall_back_to_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('id,tags\na,"[{""name"": ""dog"", ""accuracy"": 0.9}]"\nb,x\n')
    raw = read_raw(path)
    cols = {"id": "id", "tags": "tags"}
    fields, _ = table.check_columns(cols)
    assert _table_fast.parse_columns(raw, {"id": "id", "tags": "tags"}, [], ()) is None
    out = table.parse_table(raw, columns=fields)
    assert out.tags["weight"].tolist() == [0.9, 1.0]


def _csv_frame(n: int, seed: int) -> pd.DataFrame:
    """A CSV-like table: every cell text, tags as separated names, counts as text."""
    g = np.random.default_rng(seed)
    names = np.array(["dog", " Park ", "", "  ", "cat", "sky;sea", "\\N"], dtype=object)
    tags = []
    for _ in range(n):
        r = g.random()
        if r < 0.2:
            tags.append("")
        elif r < 0.25:
            tags.append("\\N")
        elif r < 0.3:
            tags.append("   ")
        else:
            tags.append(",".join(names[g.integers(0, len(names), size=g.integers(1, 5))]))
    views = g.choice(["", "3", " 7.5 ", "-1", "abc", "inf", "1e3", "\\N", "0", "nan"], size=n)
    ids = np.array([f" it{i} " for i in range(n)], dtype=object)
    ids[g.random(n) < 0.05] = ""
    return pd.DataFrame(
        {
            "key": ids,
            "name": [f"title {i}" for i in range(n)],
            "labels": tags,
            "views": views,
            "src": g.choice(["flickr", " wiki ", ""], size=n),
        }
    )


@pytest.mark.parametrize(("seed", "sep"), [(0, ","), (1, ","), (2, ";")])
def test_fast_path_matches_row_parser_on_text_cells(tmp_path: Path, seed: int, sep: str) -> None:
    # separated tag names and counts written as text (a CSV catalog) take the column path too
    path = tmp_path / "c.csv"
    _csv_frame(300, seed).to_csv(path, index=False)
    raw = read_raw(path)
    assert _table_fast.parse_columns(raw, dict(COLUMNS), [], ("title",), sep=sep) is not None
    fast = table.parse_table(raw, columns=COLUMNS, tags_sep=sep)
    orig = table.parse_columns
    try:
        table.parse_columns = lambda *a, **k: None  # type: ignore[assignment]
        slow = table.parse_table(raw, columns=COLUMNS, tags_sep=sep)
    finally:
        table.parse_columns = orig  # type: ignore[assignment]
    assert len(slow.tags) and len(slow.rejects)
    pd.testing.assert_frame_equal(fast.items, slow.items)
    pd.testing.assert_frame_equal(fast.tags, slow.tags)
    pd.testing.assert_frame_equal(fast.rejects, slow.rejects)


def test_split_tags_falls_back_on_json_cells() -> None:
    col = pd.Series(["a, b", '["c"]'], dtype=object)
    assert _table_fast._split_tags(col, ",") is None
    assert _table_fast._split_tags(pd.Series(["a"], dtype=object), None) is None
    offsets, names = _table_fast._split_tags(pd.Series([" a ,, b", None, "c"], dtype=object), ",")
    assert offsets.tolist() == [0, 2, 2, 3] and names.tolist() == ["a", "b", "c"]


def test_many_extra_columns_of_every_kind_match_the_row_parser(tmp_path: Path) -> None:
    # the extra columns are now taken in one go (20,000 columns x 50 rows took ~25 s, one
    # column at a time): dtypes, values and column order must stay those of the row parser
    n = 40
    frame = _frame(n, seed=3)
    g = np.random.default_rng(3)
    extras = {
        "o_text": pd.Series(g.choice(["a", "b", None], size=n), dtype=object),
        "o_mixed": pd.Series([["x"] if i % 3 else i for i in range(n)], dtype=object),
        "o_none": pd.Series([None] * n, dtype=object),
        "i64": np.arange(n),
        "flag": np.arange(n) % 2 == 0,
        "when": pd.date_range("2020-01-01", periods=n, freq="D"),
        "s_nan": pd.Series(g.choice(["p", None], size=n), dtype="str"),
        "s_na": pd.Series(g.choice(["q", None], size=n), dtype="string"),
        "popularity_metric": pd.Series(["mine"] * n, dtype=object),  # named like a field column
    }
    wide = {f"w{j}": pd.Series([f"v{j}"] * (n - 1) + [None], dtype=object) for j in range(300)}
    frame = pd.concat([frame, pd.DataFrame(extras), pd.DataFrame(wide)], axis=1)
    frame = frame[[*frame.columns[:3], "i64", *frame.columns[3:].drop("i64")]]  # interleaved
    raw = RawTable(tmp_path / "c.jsonl", "jsonl", frame)  # dtypes as given
    fast = table.parse_table(raw, columns=COLUMNS)
    assert _table_fast.parse_columns(raw, COLUMNS, list(extras), ("title",)) is not None
    orig = table.parse_columns
    try:
        table.parse_columns = lambda *a, **k: None  # type: ignore[assignment]
        slow = table.parse_table(raw, columns=COLUMNS)
    finally:
        table.parse_columns = orig  # type: ignore[assignment]
    pd.testing.assert_frame_equal(fast.items, slow.items)
    pd.testing.assert_frame_equal(fast.rejects, slow.rejects)
    csv = tmp_path / "c.csv"
    frame.drop(columns=["labels"]).to_csv(csv, index=False)
    fast, slow = _both(csv, {k: v for k, v in COLUMNS.items() if k != "tags"})
    pd.testing.assert_frame_equal(fast.items, slow.items)
