"""Tag hygiene on hand-made examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.config import TagHygiene
from ccgraph.exceptions import ParameterError
from ccgraph.io import read_catalog
from ccgraph.io.hygiene import apply_hygiene, as_hygiene, hashtag_parts, normalize_tag


def _tags(rows: list[tuple[int, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_seq": [r[0] for r in rows],
            "tag_raw": [r[1] for r in rows],
            "source": [r[2] for r in rows],
            "provider": "p",
            "weight": [r[3] for r in rows],
        }
    )


def _pairs(frame: pd.DataFrame) -> list[tuple[int, str]]:
    return list(zip(frame["_seq"], frame["tag"], strict=True))


def test_normalisation_keeps_raw() -> None:
    out, _ = apply_hygiene(_tags([(0, "  Ｄｏｇ\u00a0 Park ", "user", 1.0)]), TagHygiene())
    assert out["tag"].tolist() == ["dog park"]
    assert out["tag_raw"].tolist() == ["  Ｄｏｇ\u00a0 Park "]


def test_drop_patterns_default_junk() -> None:
    rows = [
        (0, t, "user", 1.0)
        for t in [
            "uploaded:by=instagram",
            "geotagged",
            "foursquare:venue=123",
            "2007",
            "x",
            "Canon EOS 5D",
            "..",
            "sunset",
        ]
    ]
    out, stats = apply_hygiene(_tags(rows), TagHygiene())
    assert out["tag"].tolist() == ["sunset"]
    assert stats["dropped_pattern"] == 6 and stats["empty"] == 1


def test_merge_variants_picks_most_common_spelling() -> None:
    rows = [
        (0, "black and white", "user", 1.0),
        (1, "Black-and-White", "user", 1.0),
        (2, "blackandwhite", "user", 1.0),
        (3, "black_and_white", "user", 1.0),
        (4, "black and white", "user", 1.0),
    ]
    out, stats = apply_hygiene(_tags(rows), TagHygiene())
    assert out["tag"].tolist() == ["black and white"] * 5
    assert stats["merged_variants"] == 3
    off, _ = apply_hygiene(_tags(rows), TagHygiene(merge_variants=False))
    assert off["tag"].nunique() == 4


def test_case_kept_when_lowercase_off() -> None:
    rows = [(0, "NYC", "user", 1.0), (1, "nyc", "user", 1.0), (2, "NYC", "user", 1.0)]
    out, _ = apply_hygiene(_tags(rows), TagHygiene(lowercase=False, merge_variants=False))
    assert out["tag"].tolist() == ["NYC", "nyc", "NYC"]
    merged, _ = apply_hygiene(_tags(rows), TagHygiene(lowercase=False))
    assert merged["tag"].tolist() == ["NYC", "NYC", "NYC"]


def test_same_item_tag_kept_once_with_max_weight() -> None:
    rows = [
        (0, "dog", "machine", 0.7),
        (0, "Dog", "machine", 0.9),
        (0, "DOG ", "user", 0.8),
        (1, "dog", "machine", 0.6),
    ]
    out, stats = apply_hygiene(_tags(rows), TagHygiene())
    assert out[["_seq", "tag", "tag_raw", "weight"]].values.tolist() == [
        [0, "dog", "Dog", 0.9],
        [1, "dog", "dog", 0.6],
    ]
    assert stats["duplicates"] == 2


def test_max_tags_per_item_keeps_first() -> None:
    rows = [(0, t, "user", 1.0) for t in ["alpha", "beta", "gamma", "delta"]] + [
        (1, "alpha", "user", 1.0)
    ]
    out, stats = apply_hygiene(_tags(rows), TagHygiene(max_tags_per_item=2))
    assert _pairs(out) == [(0, "alpha"), (0, "beta"), (1, "alpha")]
    assert stats["over_max"] == 2


def test_min_count_not_applied_here() -> None:
    out, _ = apply_hygiene(_tags([(0, "rare", "user", 1.0)]), TagHygiene(min_count=5))
    assert out["tag"].tolist() == ["rare"]


def test_invalid_pattern_names_it() -> None:
    # refused when the rules are built (config load or `hygiene=` mapping), before any reading
    with pytest.raises(ParameterError, match=r"drop_patterns.*'\(unclosed'"):
        as_hygiene({"drop_patterns": ["(unclosed"]})
    with pytest.raises(ValueError, match=r"(?s)drop_patterns.*'\(unclosed'"):
        TagHygiene(drop_patterns=["(unclosed"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ni\\xf1os", "niños"),
        ("caf\\xc3\\xa9", "café"),
        ("\\u7cd6", "糖"),
        ("“proyecto", "proyecto"),
        ("a\tb\n c", "a b c"),
        ("ﬁsh", "fish"),
    ],
)
def test_normalize_tag_cases(raw: str, expected: str) -> None:
    assert normalize_tag(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Openverse rows that lost the backslash (WordPress/openverse#1303); oracle: Python's
        # own decoder of the escaped spelling
        ("cittu00e0direggioemilia", "citt\\u00e0direggioemilia"),
        ("u6fb3u9580", "\\u6fb3\\u9580"),
        ("colau00e7u00e3o", "cola\\u00e7\\u00e3o"),
        ("u014dsaka", "\\u014dsaka"),
        # not escapes: hex words, a lone code, an ASCII or non-letter code point
        ("quebec", "quebec"),
        ("ucafe", "ucafe"),
        ("u4000", "u4000"),
        ("tu0041x", "tu0041x"),
        ("au2000b", "au2000b"),
        # one non-Latin letter glued to ASCII letters: a code, not a lost escape
        ("xu4e00", "xu4e00"),
        ("model au1234", "model au1234"),
    ],
)
def test_backslash_less_escapes_decoded(raw: str, expected: str) -> None:
    assert normalize_tag(raw) == expected.encode("ascii").decode("unicode_escape")


def test_backslash_less_escape_merges_with_correct_spelling() -> None:
    # the same item listing both spellings keeps one tag
    rows = [(0, "cittàdireggioemilia", "user", 1.0), (0, "cittu00e0direggioemilia", "user", 1.0)]
    out, stats = apply_hygiene(_tags(rows), TagHygiene())
    assert _pairs(out) == [(0, "cittàdireggioemilia")]
    assert stats["duplicates"] == 1


def test_an_escape_with_its_backslash_is_left_to_the_literal_decoder() -> None:
    from ccgraph.io._text import decode_bare_escapes

    assert decode_bare_escapes("muchom\\u015bciciel") == "muchom\\u015bciciel"
    assert normalize_tag("muchom\\u015bciciel") == "muchomściciel"


def test_hashtag_lists_split_into_tags() -> None:
    """A tag made of several ``#words`` is several tags; a single ``#`` goes; raw kept."""
    rows = [
        (0, "#artcontemporain #tableau #\\u0153vredart", "user", 1.0),
        (0, "tableau", "user", 0.5),  # the same tag as a hashtag part: kept once
        (1, "#Painting", "user", 1.0),
        (1, "#a#bb  #cc", "user", 1.0),  # "a" is one character: dropped by the pattern
        (2, "art #painting", "user", 1.0),  # not a list of hashtags: kept whole
    ]
    out, stats = apply_hygiene(_tags(rows), TagHygiene())
    assert _pairs(out) == [
        (0, "artcontemporain"),
        (0, "tableau"),
        (0, "œvredart"),
        (1, "painting"),
        (1, "bb"),
        (1, "cc"),
        (2, "art #painting"),
    ]
    assert out["tag_raw"].tolist() == [rows[0][1]] * 3 + [rows[2][1]] + [rows[3][1]] * 2 + [
        rows[4][1]
    ]
    assert out["weight"].tolist() == [1.0] * 7
    assert stats["split_hashtags"] == 2 and stats["raw"] == 5
    assert stats["duplicates"] == 1 and stats["dropped_pattern"] == 1
    off, off_stats = apply_hygiene(_tags(rows), TagHygiene(split_hashtags=False))
    assert "#painting" in off["tag"].tolist() and off_stats["split_hashtags"] == 0


def _reference_parts(tag: str) -> list[str]:
    """Hashtags of a tag, written independently: split before every ``#`` and at spaces."""
    if not tag.startswith("#"):
        return [tag]
    pieces = [p for p in re.split(r"\s+|(?=#)", tag) if p]
    if len(pieces) > 1 and all(p.startswith("#") and len(p) > 1 for p in pieces):
        return [p[1:] for p in pieces]
    return [tag[1:].lstrip()]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="#ab  _", max_size=8), min_size=1, max_size=8))
def test_hashtag_split_equals_splitting_first(raws: list[str]) -> None:
    """Splitting in the hygiene equals splitting the normalised tags beforehand."""
    rows = [(i % 3, r, "user", 1.0) for i, r in enumerate(raws)]
    got, _ = apply_hygiene(_tags(rows), TagHygiene(drop_patterns=[]))
    pre = [
        (k, part, src, w)
        for k, raw, src, w in rows
        for part in _reference_parts(normalize_tag(raw))
    ]
    want, _ = apply_hygiene(_tags(pre), TagHygiene(drop_patterns=[], split_hashtags=False))
    assert _pairs(got) == _pairs(want)
    assert [hashtag_parts(normalize_tag(r)) for r in raws] == [
        tuple(_reference_parts(normalize_tag(r))) for r in raws
    ]


def test_openverse_and_table_readers_split_alike(tmp_path: Path) -> None:
    """Both readers hand the hashtag list over as one raw tag; the hygiene splits it."""
    names = ["#Tshirt #Serigraphy #GraphicDesign", "#graffiti", "ink"]
    ov = pd.DataFrame(
        {
            "identifier": ["a1"],
            "foreign_identifier": ["f1"],
            "provider": ["behance"],
            "url": ["https://example.org/1.jpg"],
            "title": ["Poster"],
            "meta_data": ["{}"],
            "tags": [json.dumps([{"name": n, "provider": "behance"} for n in names])],
        }
    )
    ov.to_csv(tmp_path / "ov.csv", index=False)
    table = pd.DataFrame({"id": ["a1"], "title": ["Poster"], "tags": [", ".join(names)]})
    table.to_csv(tmp_path / "t.csv", index=False)
    a = read_catalog(tmp_path / "ov.csv", format="openverse").tags
    b = read_catalog(tmp_path / "t.csv", format="table").tags
    want = ["tshirt", "serigraphy", "graphicdesign", "graffiti", "ink"]
    assert a["tag"].tolist() == b["tag"].tolist() == want
    assert a["tag_raw"].tolist() == b["tag_raw"].tolist() == [names[0]] * 3 + names[1:]
