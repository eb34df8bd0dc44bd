"""The probe search's kernels against the numpy/scipy code they replace (bit for bit)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.update._knn_kernels import cluster_sums, group_order
from ccgraph.update._probe import _probes, top_k_pairs


def _lexsort_top_k(q, t, d, nq, k):  # the former top_k_pairs
    order = np.lexsort((t, d, q))
    q, t, d = q[order], t[order], d[order]
    first = np.searchsorted(q, np.arange(nq))
    rank = np.arange(len(q)) - first[q]
    keep = rank < k
    out_i = np.full((nq, k), -1, dtype=np.int64)
    out_d = np.full((nq, k), np.inf, dtype=np.float32)
    out_i[q[keep], rank[keep]] = t[keep]
    out_d[q[keep], rank[keep]] = d[keep]
    return out_i, out_d


def _sorted_probes(scores, sizes, n_probe, min_candidates):  # the former _probes
    order = np.argsort(-scores, axis=1, kind="stable")
    covered = np.cumsum(sizes[order], axis=1)
    before = covered - sizes[order]
    take = (np.arange(order.shape[1])[None, :] < n_probe) | (before < min_candidates)
    rows, ranks = np.nonzero(take)
    return rows, order[rows, ranks]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 300),
    nq=st.integers(1, 20),
    k=st.integers(1, 8),
    levels=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_top_k_pairs_matches_the_lexsort(n: int, nq: int, k: int, levels: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    q = g.integers(0, nq, n)
    t = g.integers(0, 10 * n + 1, n)
    pool = np.r_[0.0, np.inf, g.random(levels)].astype(np.float32)  # ties, zeros, inf
    d = pool[g.integers(0, len(pool), n)]
    got_i, got_d = top_k_pairs(q, t, d, nq, k)
    ref_i, ref_d = _lexsort_top_k(q, t, d, nq, k)
    assert np.array_equal(got_i, ref_i)
    assert np.array_equal(got_d.view(np.uint32), ref_d.view(np.uint32))


def test_top_k_pairs_negative_zero_and_nan_take_the_sorting_path() -> None:
    q = np.array([0, 0, 0, 1])
    t = np.array([3, 1, 2, 0])
    d = np.array([-0.0, 0.0, np.nan, 0.5], dtype=np.float32)
    got_i, got_d = top_k_pairs(q, t, d, 2, 3)
    ref_i, ref_d = _lexsort_top_k(q, t, d, 2, 3)
    assert np.array_equal(got_i, ref_i)
    assert np.array_equal(got_d.view(np.uint32), ref_d.view(np.uint32))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 200),
    n_c=st.integers(1, 12),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31 - 1),
)
def test_cluster_sums_is_the_indicator_product(n: int, n_c: int, dtype, seed: int) -> None:
    g = np.random.default_rng(seed)
    data = g.normal(size=(n, 7)).astype(dtype)
    codes = g.integers(-1, n_c, n)
    rows = np.flatnonzero(codes >= 0)
    ind = sp.csr_matrix((np.ones(len(rows), np.float32), (codes[rows], rows)), shape=(n_c, n))
    ref = np.asarray(ind @ data)
    got = cluster_sums(data, codes, n_c)
    assert got.dtype == ref.dtype
    assert np.array_equal(got, ref)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 300), n_c=st.integers(1, 20), seed=st.integers(0, 2**31 - 1))
def test_group_order_is_the_stable_argsort(n: int, n_c: int, seed: int) -> None:
    codes = np.random.default_rng(seed).integers(0, n_c, n)
    assert np.array_equal(group_order(codes, n_c), np.argsort(codes, kind="stable"))


@settings(max_examples=40, deadline=None)
@given(
    nq=st.integers(1, 15),
    n_c=st.integers(1, 120),
    n_probe=st.integers(1, 10),
    min_candidates=st.integers(0, 3000),
    levels=st.integers(1, 50),
    seed=st.integers(0, 2**31 - 1),
)
def test_probes_match_the_full_sort(
    nq: int, n_c: int, n_probe: int, min_candidates: int, levels: int, seed: int
) -> None:
    g = np.random.default_rng(seed)
    scores = (g.integers(0, levels, (nq, n_c)) / levels).astype(np.float32)  # many ties
    sizes = g.integers(1, 80, n_c)
    got = _probes(scores, sizes, n_probe=n_probe, min_candidates=min_candidates)
    ref = _sorted_probes(scores, sizes, n_probe, min_candidates)
    assert np.array_equal(got[0], ref[0])
    assert np.array_equal(got[1], ref[1])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 60), m=st.integers(0, 80), seed=st.integers(0, 2**31 - 1))
def test_component_labels_match_scipy(n: int, m: int, seed: int) -> None:
    from scipy.sparse.csgraph import connected_components

    from ccgraph.update._knn_kernels import component_labels

    g = np.random.default_rng(seed)
    u, v = (g.integers(0, max(n, 1), m if n else 0) for _ in range(2))
    a = sp.csr_matrix((np.ones(len(u), np.float32), (u, v)), shape=(n, n))
    a = sp.csr_matrix(a + a.T)
    nc, labels = component_labels(a.indptr, a.indices)
    ref_nc, ref = connected_components(a, directed=False)
    assert nc == ref_nc
    # the same partition: labels map one to one
    pairs = set(zip(labels.tolist(), ref.tolist(), strict=True))
    assert len(pairs) == nc == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def _numpy_block(dist, qpos, q_rows, target, data, sq, kth_t, k):  # the former loop body
    from ccgraph.update._probe import copies_at_zero

    copies_at_zero(dist, q_rows, target, data, sq)
    at = np.searchsorted(target, q_rows)
    hit = (at < len(target)) & (target[np.minimum(at, len(target) - 1)] == q_rows)
    dist[np.flatnonzero(hit), at[hit]] = np.inf
    if dist.shape[1] > k:
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
        r, c = np.nonzero(dist <= kth[:, None])
    else:
        r, c = np.nonzero(np.isfinite(dist))
    top = (qpos[r], target[c], dist[r, c])
    r, col = np.nonzero(dist <= kth_t[None, :])
    return top, (target[col], q_rows[r], dist[r, col])


@settings(max_examples=40, deadline=None)
@given(
    n_q=st.integers(1, 8),
    n_t=st.integers(1, 30),
    k=st.integers(1, 10),
    metric=st.sampled_from(["cosine", "euclidean"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_scan_block_matches_the_numpy_steps(
    n_q: int, n_t: int, k: int, metric: str, seed: int
) -> None:
    from ccgraph.update._knn_kernels import scan_block
    from ccgraph.update._probe import _copy_limit, _dist

    g = np.random.default_rng(seed)
    data = g.normal(size=(40, 5)).astype(np.float32)
    data[g.integers(0, 40, 10)] = data[g.integers(0, 40, 10)]  # bitwise copies
    data[:20] = np.round(data[:20])  # ties
    if metric == "cosine":
        norms = np.linalg.norm(data, axis=1, keepdims=True)
        data = (data / np.where(norms > 0, norms, 1)).astype(np.float32)
    sq = None if metric == "cosine" else np.einsum("ij,ij->i", data, data)
    target = np.sort(g.choice(40, size=min(n_t, 40), replace=False)).astype(np.int64)
    q_rows = g.choice(40, size=n_q, replace=False).astype(np.int64)  # some are targets too
    qpos = np.arange(n_q, dtype=np.int64) * 3
    dots = data[q_rows] @ data[target].T
    dist = _dist(
        dots, None if sq is None else sq[q_rows][:, None], None if sq is None else sq[target]
    )
    kth_t = np.where(g.random(len(target)) < 0.3, -np.inf, g.random(len(target))).astype(np.float32)
    ref_top, ref_gain = _numpy_block(dist.copy(), qpos, q_rows, target, data, sq, kth_t, k)
    got = scan_block(dist.copy(), qpos, q_rows, target, _copy_limit(sq, target), data, kth_t, k)
    for a, b in zip(got, (*ref_top, *ref_gain), strict=True):
        assert np.array_equal(a, b)
