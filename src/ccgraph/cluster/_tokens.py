r"""Fast word tokenisation of captions for cluster descriptions.

The words are the matches of ``[^\W\d_]{2,}`` (Python :mod:`re`, Unicode) in each lower-cased
text (lower-cased as pandas' string dtype does it), without stop words
(:data:`ccgraph.cluster._stopwords.STOP_WORDS`: function words, camera file-name prefixes)
and without code fragments. A whitespace-delimited chunk in which a digit follows a letter
is a code: a file name, catalogue or model number, a hash (``RP-F-F00999-AC.jpg``,
``_MG_2612``, ``BK-1972-142-B``, ``ZJ937``, ``57a6bcd5c12e``); its matches of at most
:data:`CODE_LETTERS` letters are not words. Longer matches stay (``covid-19``), and so do the
words of a chunk whose digits all come first, a quantity (``8-bit``, ``19th-century``,
``1960s``).
On ASCII text that pattern is exactly the maximal runs of two or more ASCII letters, so
ASCII texts are tokenised on their UTF-8 bytes by a numba kernel (each word is encoded exactly
as an integer key); other texts go through :mod:`re` one by one. The result does not depend on
the path a text takes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.cluster._stopwords import STOP_WORDS

__all__ = ["CODE_LETTERS", "TOKEN", "token_codes"]

TOKEN = r"[^\W\d_]{2,}"
_TOKEN_RE = re.compile(TOKEN)
#: Letter runs this short are dropped from code chunks (see the module docstring).
CODE_LETTERS = 3
_CHUNK_RE = re.compile(r"\S+")
_DIGIT_RE = re.compile(r"\d")
_CODE_RE = re.compile(r"[^\W\d_].*\d", re.DOTALL)  # a digit after a letter
#: Words of at most this many letters have an exact base-27 int64 key (27**13 < 2**63).
_KEY_LETTERS = 13


def token_codes(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occurrences of words in ``texts`` as (row, word code) pairs, in reading order.

    ``texts`` is any sequence of strings or missing values (``None``, NaN: no words); a
    pandas string column is read from its Arrow buffers, without a Python string per text.

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
    >>> _, codes, words = token_codes(["Zee in Smyrna, RP-F-F00998-AR.jpg", "_MG_2612 8-bit"])
    >>> words[codes].tolist()
    ['zee', 'smyrna', 'bit']
    """
    from ccgraph.cluster._describe_kernels import in_code_chunk, letter_runs

    values = _utf8(texts)
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[
        values.offset : values.offset + len(values) + 1
    ]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    rows_a, starts, lens, keys, is_other = letter_runs(data, offsets, _KEY_LETTERS)
    short = lens <= CODE_LETTERS
    if short.any():  # code fragments: short runs in a chunk that holds a digit
        word = ~in_code_chunk(data, offsets, rows_a[short], starts[short])
        keep_run = np.ones(len(lens), dtype=bool)
        keep_run[short] = word
        rows_a, starts, lens, keys = (a[keep_run] for a in (rows_a, starts, lens, keys))
    other = np.flatnonzero(is_other)
    rows_o: list[int] = []
    words_o: list[str] = []
    # non-ASCII texts through the expression, lower-cased as pandas' string dtype does it
    low = pd.Series(values.take(other).to_pylist(), dtype=object).astype(str).str.lower()
    for i, text in zip(other.tolist(), low.tolist(), strict=True):
        found = _words(text)
        rows_o.extend([i] * len(found))
        words_o.extend(found)
    keyed = keys >= 0
    long_words = [
        (data[s_ : s_ + n_] | np.uint8(32)).tobytes().decode("ascii")
        for s_, n_ in zip(starts[~keyed].tolist(), lens[~keyed].tolist(), strict=True)
    ]
    key_codes, key_uniq = pd.factorize(keys[keyed])
    str_codes, str_uniq = pd.factorize(np.array(long_words + words_o, dtype=object))
    # one vocabulary: a long ASCII word or a non-ASCII text's word may equal a keyed word
    both = np.concatenate(
        [_decode(np.asarray(key_uniq, np.int64), _KEY_LETTERS), np.asarray(str_uniq, object)]
    )
    merged, vocab = pd.factorize(pd.Series(both, dtype=object))
    codes_a = np.empty(len(keys), dtype=np.int64)
    codes_a[keyed] = merged[: len(key_uniq)][key_codes]
    str_merged = merged[len(key_uniq) :][str_codes].astype(np.int64)
    codes_a[~keyed] = str_merged[: len(long_words)]
    if rows_o:  # a text's words come from one path: a stable sort by text is reading order
        rows = np.concatenate([rows_a, np.asarray(rows_o, dtype=np.int64)])
        order = np.argsort(rows, kind="stable")
        rows, codes = rows[order], np.concatenate([codes_a, str_merged[len(long_words) :]])[order]
    else:
        rows, codes = rows_a, codes_a
    words = np.asarray(vocab, dtype=object)
    stop = np.fromiter((w in STOP_WORDS for w in words), dtype=bool, count=len(words))
    if stop.any():
        keep = ~stop[codes]
        renumber = np.cumsum(~stop) - 1
        rows, codes, words = rows[keep], renumber[codes[keep]], words[~stop]
    return rows, codes, words


def _words(text: str) -> list[str]:
    """The words of one (lower-cased) text by the expression, without code fragments."""
    if not _DIGIT_RE.search(text):
        return _TOKEN_RE.findall(text)
    out: list[str] = []
    for chunk in _CHUNK_RE.findall(text):
        found = _TOKEN_RE.findall(chunk)
        if found and _CODE_RE.search(chunk):
            found = [w for w in found if len(w) > CODE_LETTERS]
        out.extend(found)
    return out


def _utf8(texts: Sequence[str | None]) -> Any:
    """``texts`` as an Arrow ``large_string`` array without nulls (missing values: ``""``).

    Values other than strings are read as ``str(value)``; a pandas column backed by Arrow
    strings is taken as it is.
    """
    import pyarrow as pa

    arr = getattr(texts, "array", None)
    if isinstance(arr, pd.arrays.ArrowStringArray):
        values = arr._pa_array
    else:
        strs = pd.Series(list(texts), dtype=object).fillna("").astype(str)
        arr = strs.array
        if isinstance(arr, pd.arrays.ArrowStringArray):
            values = arr._pa_array
        else:
            values = pa.array(strs.to_numpy(), type=pa.large_string(), from_pandas=False)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.large_string())
    if values.type != pa.large_string():
        values = values.cast(pa.large_string())
    return values.fill_null("") if values.null_count else values


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
