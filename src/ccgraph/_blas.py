"""BLAS thread limits for stages made of many small products or run beside other threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["one_blas_thread"]


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL, ...) to one thread inside the block.

    After a product that used several threads, OpenBLAS's worker threads spin for ~0.1 s
    waiting for the next one. On a machine whose cores the caller's own threads already
    fill, that spinning takes CPU from them, and small products gain nothing from a second
    BLAS thread. The limit is process-wide while the block runs (as every BLAS thread
    setting is).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
