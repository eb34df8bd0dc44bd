"""Small value parsers shared by the catalog readers: text, numbers, URLs and tag lists."""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "REMOTE_IMAGE",
    "RawTag",
    "clean_text",
    "decode_bare_escapes",
    "decode_literal_escapes",
    "fix_url",
    "is_missing",
    "is_url",
    "parse_count",
    "parse_tag_list",
    "text_of",
]

_ESCAPE = re.compile(r"(?:\\x[0-9a-fA-F]{2})+|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}")
# runs of backslash-less ``uHHHH`` escapes (``cittu00e0``, ``u6fb3u9580``)
_BARE = re.compile(r"(?<!\\)(?:u[0-9a-fA-F]{4})+")
_HTML_TAG = re.compile(r"<[^<>]{1,2000}>")
_SPACE = re.compile(r"\s+")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_HOST = re.compile(r"^(www\.)?[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+(/|$)")
_REMOTE = re.compile(r"^\s*[a-zA-Z][a-zA-Z0-9+.-]+://")  # 2+ letters: not a drive "C://"
REMOTE_IMAGE = (
    "image_path is a URL, not a local file: ccgraph does not download images; download them "
    "first and point image_path at the local files (map a local-file column or set image_root)"
)


class RawTag(NamedTuple):
    """One tag as written in a catalog row."""

    raw: str
    source: str
    provider: str
    weight: float


def is_missing(value: Any) -> bool:
    r"""Whether a cell is empty: None, NaN, ``""`` or PostgreSQL's ``\N``."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip() in ("", "\\N")
    return False


def text_of(value: Any) -> str:
    """Return a cell as a stripped string (``""`` when missing; ``3.0`` becomes ``"3"``)."""
    if type(value) is str:  # the common case, kept fast
        text = value.strip()
        return "" if text == "\\N" else text
    if is_missing(value):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _unescape_run(match: re.Match[str]) -> str:
    s = match.group(0)
    if s.startswith("\\x"):
        raw = bytes(int(h, 16) for h in s[2:].split("\\x"))
        if all(b >= 0x80 for b in raw):
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return raw.decode("latin-1")
    return chr(int(s[2:], 16))


def decode_literal_escapes(text: str) -> str:
    r"""Turn literal Python escapes left by old catalog dumps (``R\xf6sler``) into characters.

    A run of ``\xHH`` escapes is read as UTF-8 when it is valid UTF-8, else as Latin-1 code
    points; ``\uHHHH`` and ``\UHHHHHHHH`` are code points.

    Examples
    --------
    >>> decode_literal_escapes(r"Philipp R\xf6sler")
    'Philipp Rösler'
    >>> decode_literal_escapes(r"caf\xc3\xa9 \u7cd6")
    'café 糖'
    """
    if "\\" not in text:
        return text
    try:
        return _ESCAPE.sub(_unescape_run, text)
    except (ValueError, OverflowError):
        return text


def _bare_run(match: re.Match[str]) -> str:
    s = match.group(0)
    hexes = [s[i + 1 : i + 5] for i in range(0, len(s), 5)]
    chars = [chr(int(h, 16)) for h in hexes]
    text = match.string
    start, end = match.span()
    beside_letter = (start > 0 and text[start - 1].isalpha()) or (
        end < len(text) and text[end].isalpha()
    )
    # one escape inside a word is a Latin letter with a diacritic (``cittu00e0``); a lone CJK
    # or Ethiopic letter glued to ASCII letters is far likelier a product or place code
    alone_in_word = len(chars) == 1 and unicodedata.name(chars[0], "").startswith("LATIN")
    plausible = (len(chars) > 1 or (beside_letter and alone_in_word)) and all(
        any(c.isdigit() for c in h) and ord(ch) > 0x7F and unicodedata.category(ch)[0] in "LM"
        for h, ch in zip(hexes, chars, strict=True)
    )
    return "".join(chars) if plausible else s


def decode_bare_escapes(text: str) -> str:
    r"""Decode ``\uHHHH`` escapes that lost their backslash (``arapu00e7a`` for ``arapça``).

    Old Openverse / CC Search ingestion stored some Flickr tags this way, next to the correct
    spelling (WordPress/openverse#1303). Only plausible escapes are decoded: a run of two or more,
    or one Latin letter touching a letter, where every code point is a non-ASCII letter or mark
    and every ``HHHH`` holds a decimal digit (so ``quebec``, ``ucafe``, a lone ``u4000`` and
    ``xu4e00`` stay as they are).

    Examples
    --------
    >>> decode_bare_escapes("cittu00e0direggioemilia"), decode_bare_escapes("u6fb3u9580")
    ('cittàdireggioemilia', '澳門')
    >>> decode_bare_escapes("quebec"), decode_bare_escapes("u4000")
    ('quebec', 'u4000')
    """
    if "u" not in text and "U" not in text:
        return text
    return _BARE.sub(_bare_run, text)


def clean_text(value: Any, *, strip_html: bool = True) -> str:
    r"""Return readable text from a catalog cell: escapes decoded, HTML tags and entities removed.

    Examples
    --------
    >>> clean_text("Ciao &#8230; <a href='x'>link</a>\n  end")
    'Ciao … link end'
    """
    text = text_of(value)
    if not text:
        return ""
    text = decode_literal_escapes(text)
    if strip_html and "<" in text:
        text = _HTML_TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def is_url(value: Any) -> bool:
    """Return whether ``value`` is a URL with a scheme (``http://``, ``s3://``, ``file://``).

    Examples
    --------
    >>> is_url("https://example.org/a.jpg"), is_url("s3://bucket/a.jpg"), is_url("a/b.jpg")
    (True, True, False)
    """
    return isinstance(value, str) and _REMOTE.match(value) is not None


def fix_url(value: Any) -> str:
    """Return a URL with ``https://`` added when the catalog left the scheme out.

    Examples
    --------
    >>> fix_url("www.flickr.com/photos/1/2")
    'https://www.flickr.com/photos/1/2'
    >>> fix_url("//example.org/a.jpg")
    'https://example.org/a.jpg'
    """
    url = text_of(value)
    if not url or _SCHEME.match(url):
        return url
    if url.startswith("//"):
        return "https:" + url
    if _HOST.match(url):
        return "https://" + url
    return url


def parse_count(value: Any) -> tuple[float, str | None]:
    """Parse a non-negative count; return ``(value, None)`` or ``(nan, problem)``.

    Missing values give ``(nan, None)``: absence is not a problem.
    """
    if is_missing(value):
        return math.nan, None
    if isinstance(value, bool):
        return math.nan, f"{value!r} is not a number"
    try:
        x = float(value) if isinstance(value, (int, float, np.number)) else float(str(value))
    except ValueError:
        return math.nan, f"{str(value)[:40]!r} is not a number"
    if not math.isfinite(x) or x < 0:
        return math.nan, f"{x!r} is not a non-negative finite number"
    return x, None


def _parse_accuracy(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if 0 < x <= 1 else None


def parse_tag_list(
    value: Any, *, default_provider: str = "", sep: str | None = None
) -> tuple[list[RawTag], list[str]]:
    """Parse a tags cell into :class:`RawTag` s and a list of problems found.

    The cell may be a JSON list (or an already parsed list) of strings or of objects
    ``{"name", "provider", "accuracy"?}``; a tag with an ``accuracy`` is a machine tag with
    that weight, any other tag is a user tag of weight 1. When ``sep`` is given, a cell that is
    not JSON is split on it. An empty cell, ``[]`` or ``{}`` means no tags.

    Examples
    --------
    >>> tags, problems = parse_tag_list('[{"name": "dog", "provider": "clarifai", '
    ...                                 '"accuracy": "0.9"}, {"name": "park"}]')
    >>> [(t.raw, t.source, t.weight) for t in tags], problems
    ([('dog', 'machine', 0.9), ('park', 'user', 1.0)], [])
    >>> parse_tag_list("a, b", sep=",")[0][1].raw
    'b'
    """
    if is_missing(value):
        return [], []
    items: Any = value
    if isinstance(value, str):
        text = value.strip()
        if sep is not None and not text.startswith(("[", "{")):
            return [
                RawTag(t.strip(), "user", default_provider, 1.0)
                for t in text.split(sep)
                if t.strip()
            ], []
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            return [], [f"tags are not valid JSON ({exc.msg} at character {exc.pos})"]
        except RecursionError:
            return [], ["tags are JSON nested too deeply to read"]
    if isinstance(items, dict):
        if not items:
            return [], []
        items = [items]
    if isinstance(items, np.ndarray):
        items = items.tolist()
    if not isinstance(items, (list, tuple)):
        return [], [f"tags must be a list; got {type(items).__name__}"]
    out: list[RawTag] = []
    problems: list[str] = []
    for element in items:
        if isinstance(element, str):
            if element.strip():
                out.append(RawTag(element, "user", default_provider, 1.0))
            continue
        if not isinstance(element, dict):
            problems.append(f"a tag is a {type(element).__name__}, not a name or an object")
            continue
        name = element.get("name")
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            name = text_of(name) if math.isfinite(name) else None
        if not isinstance(name, str) or not name.strip():
            problems.append(f"a tag has no name ({json.dumps(element)[:60]})")
            continue
        provider = text_of(element.get("provider")) or default_provider
        acc = element.get("accuracy")
        if acc is None:
            out.append(RawTag(name, "user", provider, 1.0))
            continue
        weight = _parse_accuracy(acc)
        if weight is None:
            problems.append(f"tag {name!r} has accuracy {acc!r}, not a number in (0, 1]")
            continue
        out.append(RawTag(name, "machine", provider, weight))
    return out, problems
