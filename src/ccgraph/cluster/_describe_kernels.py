"""Numba kernels of :mod:`ccgraph.cluster.describe` (imported lazily: importing loads numba).

Each kernel makes one pass where the numpy version made several over all edge entries, and
adds in the same order as :func:`numpy.bincount` over the entries in CSR order, so the sums
are bitwise the same.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["in_code_chunk", "inner_edges", "letter_runs", "row_sums64", "top_members"]


@numba.njit(cache=True, nogil=True)
def inner_edges(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, codes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster: stored entries and weight inside it; per item: its weight inside its cluster.

    An entry ``(u, v, w)`` is inside when ``codes[u] == codes[v]``; both directions of an
    undirected edge are stored, so the counts and weights are twice the edges'.
    """
    n = len(indptr) - 1
    count = np.zeros(k, dtype=np.int64)
    weight = np.zeros(k, dtype=np.float64)
    inner = np.zeros(n, dtype=np.float64)
    for u in range(n):
        cu = codes[u]
        for p in range(indptr[u], indptr[u + 1]):
            if codes[indices[p]] == cu:
                w = np.float64(data[p])
                count[cu] += 1
                weight[cu] += w
                inner[u] += w
    return count, weight, inner


@numba.njit(cache=True, nogil=True)
def row_sums64(indptr: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Sum of each CSR row's stored values, accumulated in float64 in storage order.

    The same additions, in the same order, as ``np.bincount(rows, weights=data.astype(float))``.
    """
    n = len(indptr) - 1
    out = np.zeros(n, dtype=np.float64)
    for r in range(n):
        s = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            s += np.float64(data[p])
        out[r] = s
    return out


@numba.njit(cache=True, nogil=True)
def top_members(codes: np.ndarray, score: np.ndarray, k: int, n_top: int) -> np.ndarray:
    """``[k, n_top]`` items with the largest ``score`` per cluster, best first (-1: none).

    Ties keep the earlier item first (items are visited in order and only a strictly larger
    score passes an earlier one).
    """
    out = np.full((k, n_top), -1, dtype=np.int64)
    filled = np.zeros(k, dtype=np.int64)
    for i in range(len(codes)):
        c = codes[i]
        s = score[i]
        j = filled[c]
        if j == n_top:
            if not s > score[out[c, n_top - 1]]:
                continue
            j = n_top - 1
        else:
            filled[c] += 1
        while j > 0 and s > score[out[c, j - 1]]:
            out[c, j] = out[c, j - 1]
            j -= 1
        out[c, j] = i
    return out


@numba.njit(cache=True, nogil=True)
def letter_runs(
    data: np.ndarray, offsets: np.ndarray, key_letters: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of >= 2 ASCII letters in the UTF-8 texts ``data[offsets[i]:offsets[i+1]]``.

    Texts holding a non-ASCII byte are left out (flagged in ``other``). Returns per run, in
    reading order: its text, start (in ``data``), length and key, the exact base-27 code of
    its lower-cased letters (a..z = 1..26) right-padded with 0 to ``key_letters`` letters, or
    -1 if the run is longer than that; and ``other``.
    """
    n = len(offsets) - 1
    other = np.zeros(n, dtype=np.bool_)
    count = 0
    for i in range(n):  # pass 1: the ASCII texts and their number of runs
        run = 0
        here = 0
        for p in range(offsets[i], offsets[i + 1]):
            b = data[p]
            if b >= 128:
                other[i] = True
                break
            f = b | 32
            if f >= 97 and f <= 122:
                run += 1
            else:
                if run >= 2:
                    here += 1
                run = 0
        if not other[i]:
            count += here + (run >= 2)
    rows = np.empty(count, dtype=np.int64)
    starts = np.empty(count, dtype=np.int64)
    lens = np.empty(count, dtype=np.int64)
    keys = np.empty(count, dtype=np.int64)
    power = np.empty(key_letters, dtype=np.int64)
    acc = 1
    for j in range(key_letters - 1, -1, -1):
        power[j] = acc
        acc *= 27
    k = 0
    for i in range(n):  # pass 2: the runs
        if other[i]:
            continue
        run = 0
        key = 0
        hi = offsets[i + 1]
        for p in range(offsets[i], hi + 1):
            f = (data[p] | 32) if p < hi else 0
            if f >= 97 and f <= 122:
                if run < key_letters:
                    key += (f - 96) * power[run]
                run += 1
            else:
                if run >= 2:
                    rows[k] = i
                    starts[k] = p - run
                    lens[k] = run
                    keys[k] = key if run <= key_letters else -1
                    k += 1
                run = 0
                key = 0
    return rows, starts, lens, keys, other


@numba.njit(cache=True, nogil=True)
def _is_space(b: int) -> bool:
    """ASCII whitespace as Python's ``str.split()`` sees it (bytes 9-13, 28-31 and 32)."""
    return (b >= 9 and b <= 13) or (b >= 28 and b <= 32)


@numba.njit(cache=True, nogil=True)
def in_code_chunk(
    data: np.ndarray, offsets: np.ndarray, rows: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Whether byte ``starts[j]`` of text ``rows[j]`` lies in a code chunk.

    A chunk is a maximal run of non-whitespace bytes of one text; it is a code when an ASCII
    digit follows an ASCII letter in it (``RP-F-F00999-AC.jpg``, ``_MG_2612``, ``57a6bcd5c``;
    not ``8-bit``). ``starts`` are in reading order, so each chunk is scanned once however
    many queries fall in it.
    """
    out = np.zeros(len(starts), dtype=np.bool_)
    lo = -1
    hi = -1
    found = False
    for j in range(len(starts)):
        s = starts[j]
        if not (s >= lo and s < hi):
            first = offsets[rows[j]]
            last = offsets[rows[j] + 1]
            lo = s
            while lo > first and not _is_space(data[lo - 1]):
                lo -= 1
            hi = s
            while hi < last and not _is_space(data[hi]):
                hi += 1
            found = False
            letter = False
            for p in range(lo, hi):
                b = data[p]
                if b >= 48 and b <= 57 and letter:
                    found = True
                    break
                f = b | 32
                if f >= 97 and f <= 122:
                    letter = True
        out[j] = found
    return out
