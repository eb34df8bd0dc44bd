"""Cost of the exact-duplicate collapse in ``knn_search`` at 1M x 384.

python benchmarks/collapse.py [--n 1000000] [--dup 0.2]

Times :func:`ccgraph.graph._collapse.identical_rows` (row hash, sort, verification, grouping)
on rows without duplicates (the fast path: one hash pass and a sort) and with a share of
copies, and :func:`ccgraph.graph._collapse.expand_lists` on kNN lists (k=15) of the distinct
rows (random lists sorted by distance stand in for a search, which the collapse does not
change). The first expand call in a process loads the numba kernel from its on-disk cache.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchmarks._common import Timer, markdown_table, peak_rss_mb, write_section

K = 15


def rows_with_copies(n: int, d: int, dup: float, seed: int = 0) -> np.ndarray:
    """``n`` float32 rows of which a share ``dup`` copy one of the others (skewed choice)."""
    g = np.random.default_rng(seed)
    u = n - int(dup * n)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, u, 65536):
        x[s : min(u, s + 65536)] = g.standard_normal((min(u, s + 65536) - s, d), np.float32)
    # copies: a Zipf-like choice, so a few groups are large (blank captions) and most small
    src = np.minimum(g.zipf(1.3, size=n - u) - 1, u - 1)
    x[u:] = x[g.permutation(u)[src]]
    return x[g.permutation(n)]


def fake_lists(u: int, k: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    ind = g.integers(0, u, size=(u, k)).astype(np.int32)
    dist = np.sort(g.random((u, k), dtype=np.float32), axis=1)
    return ind, dist


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--dup", type=float, default=0.2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from ccgraph.graph._collapse import expand_lists, identical_rows

    with Timer() as t_load:  # import numba and load (on a fresh machine: compile) the kernel
        from ccgraph.graph._collapse_kernels import expand_groups

        one = np.zeros(1, dtype=np.int64)
        expand_groups(one, np.array([0, 1]), np.zeros((1, 0), dtype=np.int64),
                      np.zeros((1, 0), dtype=np.float32), 1, np.zeros((1, 1), dtype=np.int32),
                      np.zeros((1, 1), dtype=np.float32))  # fmt: skip
    rows_out = []
    for dup in (0.0, args.dup):
        x = rows_with_copies(args.n, args.d, dup)
        with Timer() as t_find:
            rows = identical_rows(x)
        u = args.n if rows is None else rows.n_groups
        t_gather = t_expand = None
        if rows is not None:
            with Timer() as tg:
                _ = x[rows.first]
            t_gather = tg.seconds
            ind, dist = fake_lists(u, K)
            with Timer() as t_exp:
                expand_lists(rows, ind, dist, K)
            t_expand = t_exp.seconds
            sizes = np.bincount(rows.group)
            largest = int(sizes.max())
        else:
            largest = 1
        rows_out.append([
            f"{args.n:,} x {args.d}", f"{dup:.0%}", f"{u:,}", largest, f"{t_find.seconds:.2f}",
            "-" if t_gather is None else f"{t_gather:.2f}",
            "-" if t_expand is None else f"{t_expand:.2f}",
        ])  # fmt: skip
        print(rows_out[-1], flush=True)
        del x
    body = (
        "Cost of collapsing exact-duplicate rows before the kNN search (seconds, 2 cores; "
        f"k={K}; `find` = hash + sort + verification + grouping, `gather` = copying the "
        "distinct rows, `expand` = merging and writing every row's list by the numba kernel, "
        "loaded beforehand). Without duplicates only `find` runs and the search is unchanged.\n\n"
        + markdown_table(
            ["rows", "copies", "distinct", "largest group", "find s", "gather s", "expand s"],
            rows_out,
        )
        + f"\n\nKernel load {t_load.seconds:.2f} s; peak RSS {peak_rss_mb():.0f} MB."
    )
    print(body)
    if not args.no_write:
        write_section("collapse", "Exact-duplicate collapse of the kNN search", body,
                      "python benchmarks/collapse.py")  # fmt: skip


if __name__ == "__main__":
    main()
