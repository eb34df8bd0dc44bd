from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.graph import _exact, choose_backend, estimate_recall, knn_search
from ccgraph.graph._nndescent import _drop_self_and_sort
from ccgraph.graph.knn import AUTO_EXACT_MAX_N, AUTO_EXACT_MAX_N_HAMMING
from tests.conftest import blobs


def oracle(dist_matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: sort each row by (distance, index), self excluded."""
    d = dist_matrix.astype(np.float64).copy()
    np.fill_diagonal(d, np.inf)
    cols = np.arange(d.shape[1])
    order = np.array([np.lexsort((cols, row))[:k] for row in d])
    return order, np.take_along_axis(d, order, axis=1)


def popcount_oracle(codes: np.ndarray) -> np.ndarray:
    ints = [int.from_bytes(row.tobytes(), "big") for row in codes]
    return np.array([[bin(a ^ b).count("1") for b in ints] for a in ints])


def test_exact_cosine_matches_full_matrix_oracle():
    x, _ = blobs(300, 16, centers=4, spread=0.3)
    idx, dist = knn_search(x, k=7, backend="exact")
    xn = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    o_idx, o_dist = oracle(1.0 - xn @ xn.T, 7)
    np.testing.assert_allclose(dist, o_dist, atol=1e-5)
    assert (idx == o_idx).mean() > 0.99  # only float32 near-ties may swap
    assert idx.dtype == np.int32 and dist.dtype == np.float32


def test_exact_euclidean_matches_sklearn():
    g = np.random.default_rng(1)
    x = g.normal(size=(250, 10)).astype(np.float32) * 3
    idx, dist = knn_search(x, k=5, metric="euclidean", backend="exact")
    nn = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(x.astype(np.float64))
    sk_dist, sk_idx = nn.kneighbors(x)
    np.testing.assert_allclose(dist, sk_dist[:, 1:], rtol=1e-3, atol=1e-3)
    assert (idx == sk_idx[:, 1:]).mean() > 0.99


def test_blocks_and_threads_do_not_change_the_result(monkeypatch):
    x, _ = blobs(500, 8, centers=5)
    ref = knn_search(x, k=6, backend="exact", n_jobs=1)
    monkeypatch.setattr(_exact, "BLOCK_BYTES", 1)  # smallest blocks: 64 rows
    for jobs in (1, 2, 3):
        idx, dist = knn_search(x, k=6, backend="exact", n_jobs=jobs)
        np.testing.assert_array_equal(idx, ref[0])
        np.testing.assert_array_equal(dist, ref[1])


def test_ties_go_to_the_lower_index():
    # one-hot rows: every dot product is exactly 0 or 1, so ties are exact
    base = np.eye(4, dtype=np.float32)
    x = base[[0, 1, 0, 2, 0, 1, 3, 0]]
    idx, dist = knn_search(x, k=4, backend="exact")
    d = 1.0 - x.astype(np.float64) @ x.T
    o_idx, o_dist = oracle(d, 4)
    np.testing.assert_array_equal(idx, o_idx)
    np.testing.assert_array_equal(dist, o_dist)
    assert idx[0].tolist()[:3] == [2, 4, 7]  # the duplicates of row 0, in index order


def test_euclidean_integer_grid_ties_are_deterministic():
    g = np.random.default_rng(3)
    x = g.integers(0, 3, size=(120, 3)).astype(np.float32)  # many equal distances
    idx, dist = knn_search(x, k=9, metric="euclidean", backend="exact")
    diff = x[:, None, :].astype(np.float64) - x[None, :, :]
    o_idx, o_dist = oracle(np.sqrt((diff**2).sum(-1)), 9)
    np.testing.assert_array_equal(idx, o_idx)
    np.testing.assert_allclose(dist, o_dist, atol=1e-6)


@pytest.mark.parametrize("n_bytes", [8, 3, 16])
def test_hamming_exact_matches_popcount_oracle(n_bytes):
    g = np.random.default_rng(n_bytes)
    protos = g.integers(0, 256, size=(6, n_bytes), dtype=np.uint8)
    codes = protos[g.integers(0, 6, size=150)]
    flips = g.random(size=(150, n_bytes * 8)) < 0.05
    codes = codes ^ np.packbits(flips, axis=1)
    codes[10] = codes[11]  # an exact duplicate
    idx, dist = knn_search(codes, k=8, metric="hamming", backend="exact")
    o_idx, o_dist = oracle(popcount_oracle(codes), 8)
    np.testing.assert_array_equal(idx, o_idx)
    np.testing.assert_array_equal(dist, o_dist)
    assert 11 in idx[10][dist[10] == 0]


def test_hamming_popcount_fallback_table_matches_numpy():
    g = np.random.default_rng(0)
    words = g.integers(0, 2**63, size=(50, 3), dtype=np.uint64)
    table = _exact._BYTE_POPCOUNT[words.view(np.uint8).reshape(50, 3, 8)].sum(-1)
    expected = [[bin(int(w)).count("1") for w in row] for row in words]
    np.testing.assert_array_equal(table, expected)
    np.testing.assert_array_equal(_exact._popcount(words), expected)


def test_binary_embeddings_need_hamming():
    codes = np.zeros((5, 8), dtype=np.uint8)
    emb = Embeddings(codes, np.arange(5).astype(str), kind="binary")
    with pytest.raises(ParameterError, match="hamming"):
        knn_search(emb, k=2, metric="cosine")
    with pytest.raises(InputError, match="uint8"):
        knn_search(np.zeros((5, 8), np.float32), k=2, metric="hamming")


def test_k_must_be_below_n():
    x, _ = blobs(10, 4)
    with pytest.raises(ParameterError, match=r"k.*n=10.*k=10"):
        knn_search(x, k=10)
    with pytest.raises(ParameterError, match="`k`"):
        knn_search(x, k=0)


def test_bad_vectors_are_refused_and_input_not_mutated():
    x, _ = blobs(20, 4)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ParameterError, match="row 3"):
        knn_search(bad, k=2)
    zero = x.copy()
    zero[5] = 0
    with pytest.raises(InputError, match="row 5"):
        knn_search(zero, k=2)
    raw = x * 5.0
    before = raw.copy()
    knn_search(raw, k=3)
    np.testing.assert_array_equal(raw, before)
    with pytest.raises(ParameterError, match="backend"):
        knn_search(x, k=2, backend="faiss")


def test_auto_backend_threshold():
    assert choose_backend(AUTO_EXACT_MAX_N, "cosine") == "exact"
    assert choose_backend(AUTO_EXACT_MAX_N + 1, "cosine") == "cells"
    assert choose_backend(AUTO_EXACT_MAX_N_HAMMING, "hamming") == "exact"
    assert choose_backend(AUTO_EXACT_MAX_N_HAMMING + 1, "hamming") == "pynndescent"
    assert choose_backend(10, "cosine", "pynndescent") == "pynndescent"


def test_drop_self_and_sort_handles_self_anywhere_and_missing():
    ind = np.array([[0, 2, 1, 3], [2, 1, 0, -1], [2, 0, 1, 1]])
    dist = np.array([[0.0, 0.5, 0.5, 0.9], [0.0, 0.0, 0.3, 0.0], [0.0, 0.2, 0.1, 0.1]])
    out_i, out_d = _drop_self_and_sort(ind, dist.astype(np.float32), 2)
    assert out_i.tolist() == [[1, 2], [2, 0], [1, 0]]
    np.testing.assert_allclose(out_d, [[0.5, 0.5], [0.0, 0.3], [0.1, 0.2]])


@pytest.mark.slow
def test_pynndescent_recall_and_bit_hamming():
    x, _ = blobs(3000, 16, centers=10, spread=0.2)
    idx, _ = knn_search(x, k=10, backend="pynndescent", rng=0, n_jobs=1)
    ref, _ = knn_search(x, k=10, backend="exact")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref, strict=True)])
    assert recall >= 0.95
    assert not (idx == np.arange(3000)[:, None]).any()
    g = np.random.default_rng(0)
    protos = g.integers(0, 256, size=(30, 8), dtype=np.uint8)
    codes = protos[g.integers(0, 30, size=3000)] ^ np.packbits(g.random((3000, 64)) < 0.05, axis=1)
    h_idx, h_dist = knn_search(codes, k=10, metric="hamming", backend="pynndescent", rng=0)
    _, e_dist = knn_search(codes, k=10, metric="hamming", backend="exact")
    # distance recall: share of returned neighbours no farther than the exact k-th distance
    assert np.mean(h_dist <= e_dist[:, -1:]) >= 0.95
    full = popcount_oracle(codes[:50])
    for i in range(50):
        js = h_idx[i][h_idx[i] < 50]
        np.testing.assert_array_equal(h_dist[i][h_idx[i] < 50], full[i, js])


def test_estimate_recall_against_a_hand_counted_corruption():
    x, _ = blobs(400, 8, seed=9)
    idx, dist = knn_search(x, k=6)
    assert estimate_recall(x, idx, dist, n_queries=400) == 1.0
    bad = idx.copy()
    bad[:, 3:] = -1  # half of every list lost
    assert estimate_recall(x, bad, dist, n_queries=400) == pytest.approx(0.5)
    codes = np.random.default_rng(0).integers(0, 256, size=(300, 8), dtype=np.uint8)
    h_idx, h_dist = knn_search(codes, k=5, metric="hamming")
    assert estimate_recall(codes, h_idx, h_dist, metric="hamming", n_queries=300) == 1.0
    worse = h_dist.copy()
    worse[:, 0] = 64
    assert estimate_recall(codes, h_idx, worse, metric="hamming", n_queries=300) <= 0.8


@pytest.mark.parametrize("scale", [1e36, 1e-38])
def test_cosine_is_scale_free_at_float32_extremes(scale):
    # the float32 sum of squares overflows (1e36) or underflows (1e-38); directions are valid
    x, _ = blobs(60, 8, centers=3, spread=0.3)
    idx, dist = knn_search(x, k=5, backend="exact")
    big = (x.astype(np.float64) * scale).astype(np.float32)
    idx2, dist2 = knn_search(big, k=5, backend="exact")
    np.testing.assert_allclose(dist2, dist, atol=1e-4)
    assert (idx2 == idx).mean() > 0.98
    emb = Embeddings.from_array(big)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.vectors, xn, atol=1e-4)


def test_estimate_recall_counts_tied_copies_whichever_the_list_holds():
    # 30 bitwise copies: every copy's exact 6 nearest are 6 of the other 29, all at distance 0
    x, _ = blobs(200, 8, seed=4)
    x[:30] = x[0]
    idx, dist = knn_search(x, k=6, backend="exact")
    swapped = idx.copy()
    # copies list the highest-numbered other copies instead of the lowest: an equally exact answer
    for i in range(30):
        others = [j for j in range(29, -1, -1) if j != i]
        swapped[i] = others[:6]
    assert estimate_recall(x, swapped, dist, n_queries=200) == 1.0
    # a row listed twice, the query itself or an empty slot are misses (3 of 6 slots in row 40)
    bad = idx.copy()
    bad[40, 3] = bad[40, 2]
    bad[40, 4] = 40
    bad[40, 5] = -1
    assert estimate_recall(x, bad, dist, n_queries=200) == pytest.approx(1 - 3 / (6 * 200))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_estimate_recall_matches_a_brute_force_count(metric):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(150, 6)).astype(np.float32) * 10
    idx, _ = knn_search(x, k=5, metric=metric, backend="exact")
    noisy = np.where(rng.random(idx.shape) < 0.3, rng.integers(0, 150, idx.shape), idx)
    y = x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "cosine" else x.astype(float)
    d = (1 - y @ y.T) if metric == "cosine" else np.linalg.norm(y[:, None] - y[None], axis=2)
    np.fill_diagonal(d, np.inf)
    kth = np.sort(d, axis=1)[:, 4]
    expected = 0
    for i in range(150):
        seen = set()
        for j in noisy[i]:
            if j != i and j not in seen and d[i, j] <= kth[i] + 1e-9:
                expected += 1
            seen.add(j)
    assert estimate_recall(x, noisy, np.zeros(idx.shape), metric=metric, n_queries=150) == (
        pytest.approx(expected / idx.size)
    )


@pytest.mark.parametrize("scale", [1.0, 3.0, 1e30])  # 1e30: float32 squares overflow
def test_prepare_vectors_skips_no_check_it_needs(scale: float) -> None:
    # the finite check runs only when a norm is not finite: the result is the checked one
    from ccgraph._validation import check_finite_matrix, row_norms
    from ccgraph.graph.knn import prepare_vectors, unit_rows

    g = np.random.default_rng(0)
    x = g.normal(size=(50, 7))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    x[::3] *= scale  # some rows scaled, the others unit
    x = x.astype(np.float32)
    check_finite_matrix("vectors", x)
    got = prepare_vectors(x, "cosine")
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, unit_rows(x.copy(), row_norms(x)))
    np.testing.assert_array_equal(prepare_vectors(x, "euclidean"), x)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize(("bad", "message"), [(np.nan, "NaN"), (np.inf, "NaN"), (0.0, "zeros")])
def test_prepare_vectors_names_the_bad_row(metric: str, bad: float, message: str) -> None:
    from ccgraph.exceptions import CcgraphError
    from ccgraph.graph.knn import prepare_vectors

    x = np.eye(4, dtype=np.float32)
    x[2, 1] = bad
    x[2, 2] = bad
    if bad == 0.0 and metric == "euclidean":
        np.testing.assert_array_equal(prepare_vectors(x, metric), x)  # a zero row is a point
        return
    with pytest.raises(CcgraphError, match=rf"{message}.*row 2|row 2.*{message}"):
        prepare_vectors(x, metric)
