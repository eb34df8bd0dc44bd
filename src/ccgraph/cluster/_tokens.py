r"""Fast word tokenisation of captions for cluster descriptions.

The words are the matches of ``[^\W\d_]{2,}`` (Python :mod:`re`, Unicode) in each lower-cased
text (lower-cased as pandas' string dtype does it), without English stop words. On ASCII text
that pattern is exactly the maximal runs of two or more ASCII letters, so ASCII texts are
tokenised on their bytes with numpy (each word is encoded exactly as an integer key); other
texts go through :mod:`re` one by one. The result does not depend on the path a text takes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ccgraph.cluster._stopwords import ENGLISH_STOP_WORDS

__all__ = ["TOKEN", "token_codes"]

TOKEN = r"[^\W\d_]{2,}"
_TOKEN_RE = re.compile(TOKEN)
#: Words of at most this many letters have an exact base-27 int64 key (27**13 < 2**63).
_KEY_LETTERS = 13


def token_codes(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occurrences of words in ``texts`` as (row, word code) pairs, in reading order.

    Returns
    -------
    rows, codes : numpy.ndarray
        int64; occurrence ``j`` is word ``words[codes[j]]`` in ``texts[rows[j]]``.
    words : numpy.ndarray
        Object array of the distinct words (stop words excluded), in no particular order.

    Examples
    --------
    >>> rows, codes, words = token_codes(["A dog, a DOG", None, "Straße 2024"])
    >>> rows.tolist(), words[codes].tolist()
    ([0, 0, 2], ['dog', 'dog', 'straße'])
    """
    s = pd.Series(list(texts), dtype=object).fillna("").astype(str).str.lower()
    low = s.tolist()
    other = [] if "".join(low).isascii() else [i for i, t in enumerate(low) if not t.isascii()]
    ascii_texts = list(low) if other else low
    for i in other:
        ascii_texts[i] = ""
    rows_a, keys, long_words, width = _ascii_runs(ascii_texts)
    rows_o: list[int] = []
    words_o: list[str] = []
    for i in other:  # non-ASCII texts through the regular expression itself
        found = _TOKEN_RE.findall(low[i])
        rows_o.extend([i] * len(found))
        words_o.extend(found)
    keyed = keys >= 0
    key_codes, key_uniq = pd.factorize(keys[keyed])
    str_codes, str_uniq = pd.factorize(np.array(long_words + words_o, dtype=object))
    # one vocabulary: a long ASCII word or a non-ASCII text's word may equal a keyed word
    both = np.concatenate(
        [_decode(np.asarray(key_uniq, np.int64), width), np.asarray(str_uniq, object)]
    )
    merged, vocab = pd.factorize(pd.Series(both, dtype=object))
    rows = np.concatenate([rows_a[keyed], rows_a[~keyed], np.asarray(rows_o, dtype=np.int64)])
    codes = np.concatenate(
        [merged[: len(key_uniq)][key_codes], merged[len(key_uniq) :][str_codes]]
    ).astype(np.int64)
    pos = np.concatenate(
        [np.flatnonzero(keyed), np.flatnonzero(~keyed), np.zeros(len(rows_o), np.int64)]
    )
    order = np.lexsort((pos, rows))  # reading order (a text's words come from one path)
    rows, codes = rows[order], codes[order]
    words = np.asarray(vocab, dtype=object)
    stop = np.fromiter((w in ENGLISH_STOP_WORDS for w in words), dtype=bool, count=len(words))
    if stop.any():
        keep = ~stop[codes]
        renumber = np.cumsum(~stop) - 1
        rows, codes, words = rows[keep], renumber[codes[keep]], words[~stop]
    return rows, codes, words


def _ascii_runs(texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Maximal runs of >= 2 ASCII letters in ASCII texts: row, key (-1: too long), long words.

    ``keys`` holds the exact base-27 code of each run (letters 1..26, right-padded with 0 to
    ``_KEY_LETTERS``); runs longer than that get key -1 and are returned as strings, in order.
    """
    n = len(texts)
    joined = "\n".join(texts)
    b = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    folded = b | 0x20
    letter = (folded >= 97) & (folded <= 122)
    edge = np.diff(np.concatenate([[False], letter, [False]]).astype(np.int8))
    starts = np.flatnonzero(edge == 1)
    lens = np.flatnonzero(edge == -1) - starts
    keep = lens >= 2
    starts, lens = starts[keep], lens[keep]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    first = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]) if n else np.zeros(0, np.int64)
    rows = np.searchsorted(first, starts, side="right").astype(np.int64) - 1
    width = int(min(lens.max(initial=0), _KEY_LETTERS))
    letters = np.concatenate([(folded - np.uint8(96)) * letter, np.zeros(width, np.uint8)])
    offsets = np.arange(width, dtype=np.int32)
    block = letters[starts.astype(np.int32)[:, None] + offsets]
    block *= offsets < lens[:, None]  # letters past the run's end count as padding
    keys = block.astype(np.int64) @ (27 ** np.arange(width - 1, -1, -1, dtype=np.int64))
    long_ = lens > _KEY_LETTERS
    keys[long_] = -1
    long_words = [joined[s : s + n_] for s, n_ in zip(starts[long_], lens[long_], strict=True)]
    return rows, keys, long_words, width


def _decode(keys: np.ndarray, width: int) -> np.ndarray:
    """Words of base-27 keys (see :func:`_ascii_runs`) as an object array."""
    if len(keys) == 0:
        return np.zeros(0, dtype=object)
    digits = np.empty((len(keys), width), dtype=np.uint8)
    rest = keys.copy()
    for j in range(width - 1, -1, -1):
        digits[:, j] = rest % 27
        rest //= 27
    chars = np.where(digits > 0, digits + 96, 0).astype(np.uint8)
    as_bytes = chars.view(f"S{width}").ravel()
    return np.array([w.decode("ascii") for w in as_bytes.tolist()], dtype=object)
