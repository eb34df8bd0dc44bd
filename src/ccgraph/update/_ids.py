"""Positions of item ids in another id array, fast when one is a prefix of the other.

An update's id arrays are mostly the run's ids followed by the new ones, so most lookups
are answered by comparing the shared prefix (a vectorised string comparison) instead of
hashing every id; the rest go to :func:`ccgraph.update._persist.positions`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["locate"]


def locate(pool: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each of ``values`` in ``pool`` (``-1`` where absent); ids unique in each.

    Examples
    --------
    >>> locate(np.array(["a", "b"]), np.array(["a", "b", "c"])).tolist()
    [0, 1, -1]
    >>> locate(np.array(["a", "b", "c"]), np.array(["b", "c"])).tolist()
    [1, 2]
    >>> locate(np.array(["a", "b", "c"]), np.array(["c", "a"])).tolist()
    [2, 0]
    """
    pool = np.asarray(pool)
    values = np.asarray(values)
    m = min(len(pool), len(values))
    if np.array_equal(pool[:m], values[:m]):
        # ids are unique: values past the shared prefix are not in it, and the pool ends there
        out = np.full(len(values), -1, dtype=np.int64)
        out[:m] = np.arange(m)
        return out
    if len(values) <= len(pool) and np.array_equal(pool[len(pool) - len(values) :], values):
        return np.arange(len(pool) - len(values), len(pool), dtype=np.int64)  # the new items
    from ccgraph.update._persist import positions

    return positions(values, pool)
