"""changed_rows: the rows whose edges differ, against a dense comparison."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import KnnGraph
from ccgraph.update._steps import changed_rows


def _graph(a: np.ndarray, ids: list[str]) -> KnnGraph:
    return KnnGraph(sp.csr_matrix(a.astype(np.float32)), np.array(ids), {})


def _sym(g: np.random.Generator, n: int, density: float) -> np.ndarray:
    w = np.triu(np.where(g.random((n, n)) < density, g.integers(1, 4, (n, n)), 0), 1)
    return (w + w.T).astype(np.float32)


@settings(max_examples=40, deadline=None)
@given(
    n_old=st.integers(2, 25),
    n_new=st.integers(0, 5),
    n_removed=st.integers(0, 3),
    flips=st.integers(0, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_changed_rows_match_a_dense_comparison(
    n_old: int, n_new: int, n_removed: int, flips: int, seed: int
) -> None:
    g = np.random.default_rng(seed)
    old_ids = [f"o{i}" for i in range(n_old)]
    a_old = _sym(g, n_old, 0.3)
    removed = sorted(g.choice(n_old, size=min(n_removed, n_old - 1), replace=False).tolist())
    kept = [i for i in range(n_old) if i not in removed]
    n = len(kept) + n_new
    a_new = np.zeros((n, n), dtype=np.float32)
    a_new[: len(kept), : len(kept)] = a_old[np.ix_(kept, kept)]
    a_new = np.maximum(a_new, _sym(g, n, 0.1) * (g.random() < 0.5))  # new edges, anywhere
    for _ in range(flips):  # re-weighted or dropped edges
        u, v = g.integers(0, n, 2)
        if u != v:
            a_new[u, v] = a_new[v, u] = float(g.integers(0, 3))
    new_ids = [old_ids[i] for i in kept] + [f"n{i}" for i in range(n_new)]
    got = changed_rows(
        _graph(a_old, old_ids),
        _graph(a_new, new_ids),
        np.array([old_ids[i] for i in removed], dtype=str),
        len(kept),
    )
    lost = a_old[:, removed].any(axis=1)[kept] if removed else np.zeros(len(kept), bool)
    ref = np.ones(n, dtype=bool)
    ref[: len(kept)] = (
        (a_old[np.ix_(kept, kept)] != a_new[: len(kept), : len(kept)]).any(axis=1)
        | (a_new[: len(kept), len(kept) :] != 0).any(axis=1)
        | lost
    )
    assert np.array_equal(got, ref)
