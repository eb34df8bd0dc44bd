"""``ccgraph._blas.one_blas_thread``: BLAS runs with one thread inside, as before after."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from ccgraph._blas import one_blas_thread


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_one_blas_thread_limits_inside_and_restores_after() -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library in this process")
    with threadpool_limits(limits=2, user_api="blas"):  # a known setting to come back to
        before = _blas_threads()
        with one_blas_thread():
            assert _blas_threads() == [1] * len(before)
            a = np.arange(36.0).reshape(6, 6)
            np.testing.assert_allclose(a @ a.T, np.einsum("ij,kj->ik", a, a))
        assert _blas_threads() == before


def test_one_blas_thread_restores_after_an_error() -> None:
    np.ones((4, 4)) @ np.ones((4, 4))
    if not _blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library in this process")
    before = _blas_threads()
    with pytest.raises(RuntimeError), one_blas_thread():
        raise RuntimeError("boom")
    assert _blas_threads() == before
