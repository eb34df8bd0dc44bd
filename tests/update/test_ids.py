"""Id positions by shared prefix, against pandas' hash lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from ccgraph.update._ids import locate

_ids = st.lists(st.text("abcxyz0123", min_size=1, max_size=4), unique=True, max_size=30)


@given(pool=_ids, values=_ids, cut=st.integers(0, 30), tail=_ids)
def test_locate_equals_pandas_get_indexer(
    pool: list[str], values: list[str], cut: int, tail: list[str]
) -> None:
    # arbitrary arrays, and the update's shape: a prefix of the pool plus other ids
    prefixed = list(dict.fromkeys(pool[:cut] + tail))
    for q in (values, prefixed, pool, pool[:cut], pool[cut:]):
        p, v = np.array(pool, dtype=str), np.array(q, dtype=str)
        want = pd.Index(p.astype(object)).get_indexer(v.astype(object))
        np.testing.assert_array_equal(locate(p, v), want)
        np.testing.assert_array_equal(locate(v, p), pd.Index(v.astype(object)).get_indexer(p))
