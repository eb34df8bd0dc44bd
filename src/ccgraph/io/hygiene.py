"""Tag normalisation and hygiene: one spelling per tag, machine junk dropped.

Every tag is normalised (literal escapes decoded, also ``u00e0`` escapes that lost their
backslash, Unicode NFKC, whitespace collapsed, surrounding quotes stripped, optionally
lower-cased) while ``tag_raw`` keeps it as written.
Then the configurable rules of :class:`ccgraph.config.TagHygiene` apply: a tag that is a list
of hashtags (``"#artcontemporain #tableau #œvredart"``) becomes one tag per hashtag and a
single leading ``#`` is dropped (``"#painting"`` is ``"painting"``; ``split_hashtags``; every
part keeps the whole list as its ``tag_raw``), tags matching a ``drop_patterns`` regex are
dropped, variants differing only in case, spaces, hyphens or
underscores are merged (``"black-and-white"``, ``"Black and White"``, ``"blackandwhite"``) and
each item keeps at most ``max_tags_per_item`` tags. ``min_count`` is applied later, when the seed
matrix is built (:meth:`ccgraph.TagSet.from_frame`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ccgraph.config import TagHygiene
from ccgraph.exceptions import ParameterError
from ccgraph.io._text import decode_bare_escapes, decode_literal_escapes

__all__ = ["apply_hygiene", "as_hygiene", "hashtag_parts", "normalize_tag", "variant_key"]

_SPACE = re.compile(r"\s+")
_SEPARATORS = re.compile(r"[\s\-_]+")
_QUOTES = "\"'`“”‘’„«»"
_HASHTAG_LIST = re.compile(r"#[^\s#]+(?:\s*#[^\s#]+)+")
_HASHTAG = re.compile(r"#([^\s#]+)")


def normalize_tag(raw: str, *, lowercase: bool = True) -> str:
    r"""Normalise one tag: escapes, NFKC, collapsed whitespace, outer quotes, case.

    Escapes are literal ones (``\xf1``, ``\u00f1``) and plausible ``u00f1`` ones that lost
    their backslash (:func:`ccgraph.io._text.decode_bare_escapes`).

    Examples
    --------
    >>> normalize_tag("  Ｂｌａｃｋ   and\tWhite ")
    'black and white'
    >>> normalize_tag("“flickraward”")
    'flickraward'
    >>> normalize_tag(r"ni\xf1os", lowercase=False)
    'niños'
    """
    s = unicodedata.normalize("NFKC", decode_bare_escapes(decode_literal_escapes(str(raw))))
    s = _SPACE.sub(" ", s).strip().strip(_QUOTES).strip()
    return s.lower() if lowercase else s


def hashtag_parts(tag: str) -> tuple[str, ...]:
    """The tags a (normalised) tag stands for: its hashtags, without their ``#``.

    A list of two or more hashtags (separated by whitespace or not) gives one tag per hashtag;
    any other tag loses a single leading ``#``; a tag without one is returned as it is.

    Examples
    --------
    >>> hashtag_parts("#artcontemporain #tableau #œvredart")
    ('artcontemporain', 'tableau', 'œvredart')
    >>> hashtag_parts("#painting"), hashtag_parts("#black and white"), hashtag_parts("c#")
    (('painting',), ('black and white',), ('c#',))
    """
    if not tag.startswith("#"):
        return (tag,)
    if _HASHTAG_LIST.fullmatch(tag):
        return tuple(_HASHTAG.findall(tag))
    return (tag[1:].lstrip(),)


def variant_key(tag: str) -> str:
    """Return the key shared by case, space, hyphen and underscore variants of a tag.

    Quote marks left at either end once the separators are gone are dropped too, as
    :func:`normalize_tag` drops them around the whole tag (``'0« "'`` and ``'0«"'``).

    Examples
    --------
    >>> variant_key("Black-and_White") == variant_key("black and white") == "blackandwhite"
    True
    """
    return _SEPARATORS.sub("", tag.lower()).strip(_QUOTES)


def as_hygiene(hygiene: TagHygiene | Mapping[str, Any] | None) -> TagHygiene:
    """Return a :class:`TagHygiene` (the defaults for ``None``), validating a mapping."""
    if hygiene is None:
        return TagHygiene.model_validate({})
    if isinstance(hygiene, TagHygiene):
        return hygiene
    if isinstance(hygiene, Mapping):
        try:
            return TagHygiene.model_validate(dict(hygiene))
        except ValidationError as exc:
            problems = "; ".join(
                f"`hygiene.{'.'.join(map(str, e['loc']))}`: "
                + e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise ParameterError(f"`hygiene` is not a valid TagHygiene: {problems}") from None
    raise ParameterError(
        f"`hygiene` must be a TagHygiene, a mapping or None; got {type(hygiene).__name__}"
    )


def _compile(patterns: list[str]) -> list[re.Pattern[str]]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as exc:
            raise ParameterError(
                f"`hygiene.drop_patterns` has an invalid regular expression {p!r}: {exc}"
            ) from None
    return out


def apply_hygiene(
    tags: pd.DataFrame, hygiene: TagHygiene, *, key: str = "_seq"
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Normalise and clean a long table of raw tags.

    Parameters
    ----------
    tags
        Columns ``key`` (the item), ``tag_raw``, ``source``, ``provider``, ``weight``; row
        order is the order the catalog lists the tags in.
    hygiene
        The rules.
    key
        Column identifying the item.

    Returns
    -------
    tags, stats
        The table with a ``tag`` column added, one row per (item, tag) (the largest weight
        wins, then the first), and counts of what was split, dropped or merged
        (``split_hashtags``: raw tags that were lists of hashtags).
    """
    stats = {
        "raw": len(tags),
        "split_hashtags": 0,
        "empty": 0,
        "dropped_pattern": 0,
        "merged_variants": 0,
        "duplicates": 0,
        "over_max": 0,
    }
    if tags.empty:
        return tags.assign(tag=pd.Series(dtype=str)), stats
    raw = tags["tag_raw"].astype(str)
    uniq = pd.unique(raw)
    norm_of = {u: normalize_tag(u, lowercase=hygiene.lowercase) for u in uniq}
    norm = raw.map(norm_of)
    if hygiene.split_hashtags:
        tags, norm, stats["split_hashtags"] = _split_hashtags(tags, norm)
    wordless = {v for v in pd.unique(norm) if not any(ch.isalnum() for ch in v)}
    keep = ~norm.isin(wordless).to_numpy(dtype=bool)
    stats["empty"] = int((~keep).sum())
    patterns = _compile(hygiene.drop_patterns)
    if patterns:
        values = pd.unique(norm[keep])
        junk = {v for v in values if any(p.search(v) for p in patterns)}
        dropped = norm.isin(junk).to_numpy(bool) & keep
        stats["dropped_pattern"] = int(dropped.sum())
        keep &= ~dropped
    out = tags.loc[keep].copy()
    out["tag"] = norm[keep].to_numpy()
    if hygiene.merge_variants and len(out):
        keys = out["tag"].map(variant_key)
        counts = (
            pd.DataFrame({"k": keys, "tag": out["tag"]})
            .groupby(["k", "tag"], sort=True)
            .size()
            .rename("n")
            .reset_index()
            .sort_values(["k", "n", "tag"], ascending=[True, False, True], kind="stable")
            .drop_duplicates("k")
        )
        canonical = dict(zip(counts["k"], counts["tag"], strict=True))
        merged = keys.map(canonical)
        stats["merged_variants"] = int((merged != out["tag"]).sum())
        out["tag"] = merged.to_numpy()
    out["_order"] = np.arange(len(out))
    n_before = len(out)
    out = (
        out.sort_values(
            [key, "tag", "weight", "_order"], ascending=[True, True, False, True], kind="stable"
        )
        .drop_duplicates([key, "tag"])
        .sort_values("_order", kind="stable")
    )
    stats["duplicates"] = n_before - len(out)
    rank = out.groupby(key, sort=False).cumcount().to_numpy()
    over = rank >= hygiene.max_tags_per_item
    stats["over_max"] = int(over.sum())
    out = out.loc[~over].drop(columns="_order").reset_index(drop=True)
    return out, stats


def _split_hashtags(tags: pd.DataFrame, norm: pd.Series) -> tuple[pd.DataFrame, pd.Series, int]:
    """Repeat each row of ``tags`` once per part of its tag (:func:`hashtag_parts`), in place.

    Returns the repeated rows, their parts and the number of rows that were split.
    """
    parts_of = {v: hashtag_parts(v) for v in pd.unique(norm) if v.startswith("#")}
    if not parts_of:
        return tags, norm, 0
    count = norm.map({v: len(p) for v, p in parts_of.items()}).fillna(1).to_numpy(np.int64)
    first = norm.map({v: p[0] if p else v for v, p in parts_of.items()})
    first = first.where(first.notna(), norm).to_numpy(dtype=object)
    new = np.repeat(first, count)
    ends = np.cumsum(count)
    values = norm.to_numpy(dtype=object)
    for r in np.flatnonzero(count > 1).tolist():
        new[ends[r] - count[r] : ends[r]] = parts_of[values[r]]
    out = tags.iloc[np.repeat(np.arange(len(tags)), count)].reset_index(drop=True)
    return out, pd.Series(new, index=out.index, dtype=object), int((count > 1).sum())
