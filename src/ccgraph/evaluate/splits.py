"""Seeded hiding protocols on a long tags table, and the text scrubbing that stops leaks.

A split hides (item, tag) *pairs*: every row of a hidden pair leaves the visible table, so a
tag hidden as a machine tag cannot stay visible as a user tag of the same item.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PROTOCOLS",
    "Split",
    "hide_items",
    "hide_tags",
    "make_splits",
    "strip_hidden_text",
]

PROTOCOLS = ("items", "tags")


class Split(NamedTuple):
    """One hiding of a tags table: ``visible, hidden, hidden_items = split``.

    Attributes
    ----------
    visible
        The tags the methods may use (same columns as the input).
    hidden
        The held-out rows (ground truth), same columns.
    hidden_items
        Ids of the items that lost at least one tag (sorted).
    seed
        The seed that drew this split.
    """

    visible: pd.DataFrame
    hidden: pd.DataFrame
    hidden_items: np.ndarray
    seed: int


def _check_tags(tags: pd.DataFrame) -> pd.DataFrame:
    missing = {"id", "tag"} - set(tags.columns)
    if missing:
        raise InputError(f"the tags table needs columns `id` and `tag`; missing {sorted(missing)}")
    return tags


def _eligible_pairs(tags: pd.DataFrame, only_source: str | None) -> pd.Series:
    """Per row: True when its (id, tag) pair may be hidden."""
    if only_source is None:
        return pd.Series(True, index=tags.index)
    check_choice("only_source", only_source, ("user", "machine"))
    if "source" not in tags.columns:
        raise InputError("`only_source` needs a `source` column in the tags table")
    other = tags["source"].astype(str) != only_source
    pair = tags["id"].astype(str) + "\x00" + tags["tag"].astype(str)
    blocked = set(pair[other])
    return ~pair.isin(blocked)


def _start(
    tags: pd.DataFrame, fraction: float, only_source: str | None, rng: RngLike
) -> tuple[float, int, np.random.Generator, np.ndarray]:
    """Check a hiding protocol's arguments; return the fraction, seed, generator, eligible rows."""
    _check_tags(tags)
    fraction = check_float(
        "fraction", fraction, low=0, high=1, low_inclusive=False, high_inclusive=False
    )
    seed = int(as_generator(rng).integers(0, 2**31 - 1))
    ok = _eligible_pairs(tags, only_source).to_numpy()
    return fraction, seed, np.random.default_rng(seed), ok


def _finish(tags: pd.DataFrame, hide_row: np.ndarray, seed: int) -> Split:
    hidden = tags.loc[hide_row].reset_index(drop=True)
    visible = tags.loc[~hide_row].reset_index(drop=True)
    items = np.sort(hidden["id"].astype(str).unique())
    return Split(visible, hidden, items, seed)


def hide_items(
    tags: pd.DataFrame,
    *,
    fraction: float,
    only_source: str | None = None,
    rng: RngLike = None,
) -> Split:
    """Item-level hiding (cold start): hide every eligible tag of a share of the items.

    Parameters
    ----------
    tags
        Long table with ``id``, ``tag`` (and ``source`` for ``only_source``).
    fraction
        Share of the items with an eligible tag whose eligible tags are all hidden.
    only_source
        ``"user"`` or ``"machine"``: only tags of that source are eligible (an item keeps its
        tags of the other source); None: all tags.
    rng
        Seed or Generator.

    Examples
    --------
    >>> t = pd.DataFrame({"id": ["a", "a", "b", "c"], "tag": ["x", "y", "x", "z"]})
    >>> vis, hid, items, _ = hide_items(t, fraction=0.34, rng=0)
    >>> len(items), set(hid["id"]) & set(vis["id"])
    (1, set())
    """
    fraction, seed, local, ok = _start(tags, fraction, only_source, rng)
    ids = tags["id"].astype(str).to_numpy()
    candidates = np.unique(ids[ok])
    n_hide = round(fraction * len(candidates))
    if len(candidates) and n_hide == 0:
        n_hide = 1
    chosen = local.choice(candidates, size=n_hide, replace=False) if n_hide else candidates[:0]
    hide_row = ok & np.isin(ids, chosen)
    return _finish(tags, hide_row, seed)


def hide_tags(
    tags: pd.DataFrame,
    *,
    fraction: float,
    only_source: str | None = None,
    rng: RngLike = None,
) -> Split:
    """Tag-level hiding: hide a share of each item's eligible tags, keeping one tag visible.

    Each item with ``m`` distinct eligible tags and ``n`` distinct tags in all hides
    ``min(floor(fraction * m + u), n - 1)`` of its eligible tags, ``u ~ U(0, 1)`` (stochastic
    rounding, so the expected share is ``fraction`` even for items with few tags).

    Parameters
    ----------
    tags, fraction, only_source, rng
        As in :func:`hide_items`.

    Examples
    --------
    >>> t = pd.DataFrame({"id": ["a", "a", "a", "b"], "tag": ["x", "y", "z", "x"]})
    >>> vis, hid, items, _ = hide_tags(t, fraction=0.5, rng=1)
    >>> sorted(vis["id"].unique())  # every item keeps a visible tag
    ['a', 'b']
    """
    fraction, seed, local, ok = _start(tags, fraction, only_source, rng)
    pairs = pd.DataFrame({"id": tags["id"].astype(str), "tag": tags["tag"].astype(str), "ok": ok})
    uniq = pairs.drop_duplicates(["id", "tag"]).reset_index(drop=True)
    n_all = uniq.groupby("id")["tag"].transform("size").to_numpy()
    elig = uniq[uniq["ok"]].copy()
    elig["key"] = local.random(len(elig))
    elig["m"] = elig.groupby("id")["tag"].transform("size")
    elig["n"] = n_all[elig.index.to_numpy()]
    per_item = elig.groupby("id").agg(m=("m", "first"), n=("n", "first"))
    u = local.random(len(per_item))
    quota = np.minimum(np.floor(fraction * per_item["m"].to_numpy() + u), per_item["n"] - 1)
    quota = pd.Series(np.maximum(quota, 0).astype(np.int64), index=per_item.index)
    elig["rank"] = elig.groupby("id")["key"].rank(method="first").astype(np.int64) - 1
    chosen = elig[elig["rank"] < elig["id"].map(quota).to_numpy()]
    hidden_pairs = set(zip(chosen["id"], chosen["tag"], strict=True))
    hide_row = np.fromiter(
        ((i, t) in hidden_pairs for i, t in zip(pairs["id"], pairs["tag"], strict=True)),
        dtype=bool,
        count=len(pairs),
    )
    return _finish(tags, hide_row, seed)


def make_splits(
    tags: pd.DataFrame,
    *,
    protocol: str = "items",
    fraction: float = 0.2,
    repeats: int = 3,
    only_source: str | None = None,
    rng: RngLike = None,
) -> list[Split]:
    """``repeats`` independent splits, each drawn from a seed derived from ``rng``.

    Parameters
    ----------
    tags
        Long tags table.
    protocol
        ``"items"`` (:func:`hide_items`) or ``"tags"`` (:func:`hide_tags`).
    fraction, only_source
        As in :func:`hide_items` / :func:`hide_tags`.
    repeats
        Number of splits.
    rng
        Seed or Generator from which the per-split seeds are drawn.
    """
    protocol = check_choice("protocol", protocol, PROTOCOLS)
    repeats = check_int("repeats", repeats, low=1)
    gen = as_generator(rng)
    seeds = gen.integers(0, 2**31 - 1, size=repeats)
    fn = hide_items if protocol == "items" else hide_tags
    return [fn(tags, fraction=fraction, only_source=only_source, rng=int(s)) for s in seeds]


def _phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str] | None:
    alts = set()
    for p in phrases:
        words = [w for w in re.split(r"[\s_\-]+", str(p).strip().lower()) if w]
        if not words:
            continue
        body = r"[\s_\-]+".join(re.escape(w) for w in words)
        alts.add(body)
    if not alts:
        return None
    ordered = sorted(alts, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(ordered) + r")(?:s|es)?(?!\w)", re.IGNORECASE)


def strip_hidden_text(
    items: pd.DataFrame,
    hidden: pd.DataFrame,
    *,
    fields: Sequence[str] = ("title", "description", "tags"),
) -> pd.DataFrame:
    """Remove each item's hidden tags from its text fields, returning a new items table.

    Parameters
    ----------
    items
        Items table with ``id`` and text columns.
    hidden
        Hidden tags (``id``, ``tag`` and optionally ``tag_raw``).
    fields
        Text columns to scrub (missing ones are skipped).

    Returns
    -------
    pandas.DataFrame
        A copy of ``items`` in which, for every item with hidden tags, each occurrence of a
        hidden tag in a scrubbed field is deleted.

    Notes
    -----
    The rule: an occurrence is the tag (normalised ``tag`` or as written, ``tag_raw``) as a
    whole word or phrase, case-insensitive, with spaces, hyphens and underscores between its
    words interchangeable, optionally followed by a plural ``s`` / ``es``. Only the item the
    tag was hidden from is scrubbed (another item's title saying "dog" is legitimate evidence).
    Whitespace left behind is collapsed, and deletion repeats until nothing matches (removing
    "black dog" from "black black dog dogs" would otherwise join "black dogs"). The caption's
    tag field is built from the visible tags table, so it holds no hidden tag by construction;
    ``tags`` is scrubbed too when the items table carries its own tag text.

    Examples
    --------
    >>> items = pd.DataFrame({"id": ["a"], "title": ["Big Black-Dog on a beach"]})
    >>> hidden = pd.DataFrame({"id": ["a"], "tag": ["black dog"]})
    >>> strip_hidden_text(items, hidden)["title"].tolist()
    ['Big on a beach']
    """
    if "id" not in items.columns:
        raise InputError("`items` needs an `id` column")
    _check_tags(hidden)
    out = items.copy()
    cols = [f for f in fields if f in out.columns]
    if not cols or hidden.empty:
        return out
    phrase_cols = ["tag"] + (["tag_raw"] if "tag_raw" in hidden.columns else [])
    long = pd.concat(
        [hidden[["id", c]].rename(columns={c: "p"}) for c in phrase_cols], ignore_index=True
    )
    long["id"] = long["id"].astype(str)
    by_item = long.dropna().groupby("id")["p"].apply(lambda s: sorted(set(map(str, s))))
    pos = pd.Index(out["id"].astype(str)).get_indexer(by_item.index)
    space = re.compile(r"\s+")
    for col in cols:
        values = out[col].to_numpy(dtype=object).copy()
        for row, phrases in zip(pos, by_item.to_numpy(), strict=True):
            if row < 0 or not isinstance(values[row], str) or not values[row]:
                continue
            pattern = _phrase_pattern(phrases)
            if pattern is None:
                continue
            text, before = values[row], None
            while text != before:  # a deletion can join words into a new occurrence
                before = text
                text = space.sub(" ", pattern.sub(" ", text)).strip()
            values[row] = text
        out[col] = values
    return out
