from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.evaluate.splits import hide_items, hide_tags, make_splits, strip_hidden_text
from ccgraph.exceptions import InputError, ParameterError

WORDS = ["dog", "black dog", "beach", "sea-side", "red", "car", "new york", "tree"]


def _table(rng: np.random.Generator, n_items: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for i in range(n_items):
        chosen = rng.choice(len(WORDS), size=rng.integers(1, 5), replace=False)
        for c in chosen:
            src = "machine" if rng.random() < 0.4 else "user"
            rows.append((f"i{i}", WORDS[c], WORDS[c].upper(), src))
            if rng.random() < 0.1:  # the same tag from both sources
                rows.append(
                    (f"i{i}", WORDS[c], WORDS[c], "user" if src == "machine" else "machine")
                )
    tags = pd.DataFrame(rows, columns=["id", "tag", "tag_raw", "source"])
    titles = [
        " ".join(
            rng.choice(
                ["A", "Black", "Dog", "dogs", "on", "the", "Sea side", "NEW-YORK", "beach", "tree"],
                size=6,
            )
        )
        for _ in range(n_items)
    ]
    items = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(n_items)],
            "title": titles,
            "description": [t.lower() for t in titles],
        }
    )
    return items, tags


def _pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(df["id"], df["tag"], strict=True))


def _mentions(text: str, tag: str) -> bool:
    words = re.split(r"[\s_\-]+", tag)
    pat = r"(?<!\w)" + r"[\s_\-]+".join(map(re.escape, words)) + r"(?:s|es)?(?!\w)"
    return re.search(pat, text, flags=re.IGNORECASE) is not None


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    protocol=st.sampled_from(["items", "tags"]),
    fraction=st.floats(0.05, 0.95),
    only=st.sampled_from([None, "user", "machine"]),
)
def test_split_never_leaks(seed, protocol, fraction, only):
    items, tags = _table(np.random.default_rng(seed), 25)
    fn = hide_items if protocol == "items" else hide_tags
    visible, hidden, hidden_items, _ = fn(tags, fraction=fraction, only_source=only, rng=seed)
    # partition of the rows; no hidden (item, tag) pair is visible under any source
    assert len(visible) + len(hidden) == len(tags)
    assert not (_pairs(visible) & _pairs(hidden))
    assert set(hidden_items) == set(hidden["id"])
    if only is not None:
        assert (hidden["source"] == only).all()
    if protocol == "tags":
        assert set(visible["id"]) == set(tags["id"])  # every item keeps a visible tag
    else:
        # item-level: a hidden item keeps no eligible tag (a pair is eligible when every row
        # of it has the hidden source)
        hid = set(hidden_items)
        if only is None:
            assert not (set(visible["id"]) & hid)
        else:
            other = _pairs(tags[tags["source"] != only])
            kept = visible[visible["id"].isin(hid) & (visible["source"] == only)]
            assert _pairs(kept) <= other
    # the embedded text carries no hidden tag of its item
    scrubbed = strip_hidden_text(items, hidden).set_index("id")
    for item, tag in _pairs(hidden):
        for col in ("title", "description"):
            assert not _mentions(scrubbed.loc[item, col], tag), (item, tag, col)


def test_strip_rule_examples():
    items = pd.DataFrame(
        {
            "id": ["a", "b"],
            "title": ["Black dog and DOGS at New_York", "dog"],
            "description": ["hotdog stand", None],
        }
    )
    hidden = pd.DataFrame({"id": ["a"], "tag": ["dog"], "tag_raw": ["Dog"]})
    out = strip_hidden_text(items, hidden)
    assert out.loc[0, "title"] == "Black and at New_York"
    assert out.loc[0, "description"] == "hotdog stand"  # not a whole word
    assert out.loc[1, "title"] == "dog"  # other items keep their text
    assert items.loc[0, "title"] == "Black dog and DOGS at New_York"  # input untouched
    joined = strip_hidden_text(
        pd.DataFrame({"id": ["a"], "title": ["black black dog dogs"]}),
        pd.DataFrame({"id": ["a"], "tag": ["black dog"]}),
    )
    assert joined.loc[0, "title"] == ""  # deletions that join words into a match repeat


def test_item_level_fraction_and_determinism():
    _items, tags = _table(np.random.default_rng(0), 200)
    a = hide_items(tags, fraction=0.25, rng=7)
    b = hide_items(tags, fraction=0.25, rng=7)
    pd.testing.assert_frame_equal(a.visible, b.visible)
    assert len(a.hidden_items) == 50
    c = hide_items(tags, fraction=0.25, rng=8)
    assert set(c.hidden_items) != set(a.hidden_items)


def test_tag_level_expected_share():
    rows = [(f"i{i}", f"t{j}") for i in range(400) for j in range(5)]
    tags = pd.DataFrame(rows, columns=["id", "tag"])
    _, hidden, _, _ = hide_tags(tags, fraction=0.3, rng=0)
    assert len(hidden) / len(tags) == pytest.approx(0.3, abs=0.03)


def test_only_source_keeps_pairs_seen_in_both_sources():
    tags = pd.DataFrame(
        {"id": ["a", "a", "b"], "tag": ["x", "x", "y"], "source": ["machine", "user", "machine"]}
    )
    _visible, hidden, _, _ = hide_items(tags, fraction=0.99, only_source="machine", rng=0)
    assert ("a", "x") not in _pairs(hidden)  # visible as a user tag: cannot be hidden
    assert _pairs(hidden) == {("b", "y")}


def test_make_splits_derives_distinct_seeds():
    _, tags = _table(np.random.default_rng(1), 60)
    splits = make_splits(tags, protocol="tags", fraction=0.3, repeats=3, rng=5)
    assert len({s.seed for s in splits}) == 3
    again = make_splits(tags, protocol="tags", fraction=0.3, repeats=3, rng=5)
    assert [s.seed for s in splits] == [s.seed for s in again]


def test_bad_inputs():
    with pytest.raises(InputError):
        hide_items(pd.DataFrame({"id": ["a"]}), fraction=0.2)
    with pytest.raises(ParameterError, match="fraction"):
        hide_tags(pd.DataFrame({"id": ["a"], "tag": ["x"]}), fraction=1.0)
    with pytest.raises(ParameterError, match="protocol"):
        make_splits(pd.DataFrame({"id": ["a"], "tag": ["x"]}), protocol="nodes")
