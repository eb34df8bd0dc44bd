"""Property-based checks of the readers and the tag normaliser."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ccgraph.io import read_catalog
from ccgraph.io.hygiene import normalize_tag, variant_key

# Backslashes are left out: a literal "\x5c" escape decodes to a new escape on purpose only once.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\\\x00"), max_size=30
)


@given(TEXT)
def test_normalize_tag_is_idempotent(raw: str) -> None:
    once = normalize_tag(raw)
    assert normalize_tag(once) == once
    assert once == once.strip()
    assert "  " not in once


@given(TEXT, TEXT)
@example("0«", '"')  # a quote mark that ends up outermost only once the separator is gone
def test_variant_key_ignores_case_and_separators(a: str, b: str) -> None:
    joined = [f"{a}{sep}{b}" for sep in (" ", "-", "_", "")]
    assert len({variant_key(normalize_tag(s)) for s in joined}) == 1 or not (a and b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True), TEXT),
        min_size=1,
        max_size=12,
        unique_by=lambda t: t[0],
    ),
    st.sampled_from(["csv", "tsv", "parquet", "jsonl"]),
)
def test_table_round_trip(rows: list[tuple[str, str]], kind: str) -> None:
    frame = pd.DataFrame({"id": [r[0] for r in rows], "title": [r[1] for r in rows]})
    if kind == "tsv":
        frame["title"] = frame["title"].str.replace(r"[\t\r\n]", " ", regex=True)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"c.{kind}"
        if kind == "parquet":
            frame.to_parquet(f)
        elif kind == "jsonl":
            frame.to_json(f, orient="records", lines=True, force_ascii=False)
        else:
            # RFC 4180: fields holding line breaks (even a bare CR) must be quoted.
            quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_ALL
            frame.to_csv(f, index=False, sep="\t" if kind == "tsv" else ",", quoting=quoting)
        cat = read_catalog(f)
    assert cat.items["id"].tolist() == frame["id"].tolist()
    expected = [t.strip() for t in frame["title"]]
    assert cat.items["title"].tolist() == ["" if t == "\\N" else t for t in expected]
    assert len(cat.rejects) == 0
