"""Catalog reading and run-directory writing speed.

Reads the three Openverse layouts of the shared samples, a synthetic Openverse catalog made by
repeating the 2023 file's rows with fresh identifiers, and writes / loads a run directory with a
random k-regular-ish graph.

usage: python benchmarks/io_bench.py [--rows 100000] [--items 100000]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, data_dir, markdown_table, peak_rss_mb, write_section

from ccgraph.containers import KnnGraph, RunResult
from ccgraph.io import load_run, read_catalog, write_run


def synthetic_openverse(src: Path, rows: int, out: Path) -> Path:
    base = pd.read_csv(src, dtype=str, keep_default_na=False)
    reps = int(np.ceil(rows / len(base)))
    big = pd.concat([base] * reps, ignore_index=True).iloc[:rows].copy()
    big["identifier"] = [f"syn-{i:08d}" for i in range(len(big))]
    big.to_csv(out, index=False, quoting=csv.QUOTE_MINIMAL)
    return out


def random_run(n: int, k: int, seed: int = 0) -> RunResult:
    g = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), k)
    cols = g.integers(0, n, size=n * k)
    w = g.random(n * k).astype(np.float32)
    a = sp.csr_matrix((w, (rows, cols)), shape=(n, n))
    a = a.maximum(a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    ids = np.array([f"item-{i}" for i in range(n)])
    graph = KnnGraph(a, ids, {"k": k})
    items = pd.DataFrame(
        {
            "id": ids,
            "cluster": g.integers(0, 500, n),
            "duplicate_group": np.arange(n),
            "popularity_observed": np.where(g.random(n) < 0.3, g.random(n) * 100, np.nan),
            "popularity": g.random(n),
            "popularity_source": "inferred",
            "degree": graph.degree,
        }
    )
    m = n * 3
    tags = pd.DataFrame(
        {
            "id": ids[g.integers(0, n, m)],
            "tag": [f"tag{t}" for t in g.integers(0, 1000, m)],
            "score": g.random(m).astype(np.float32),
            "confidence": g.random(m).astype(np.float32),
            "rank": np.tile(np.arange(1, 4), n),
            "source": "inferred",
        }
    )
    clusters = pd.DataFrame(
        {
            "level": 0,
            "cluster": np.arange(500),
            "size": n // 500,
            "label": "c",
            "top_tags": [["a", "b"]] * 500,
            "representative_ids": [list(ids[:3])] * 500,
        }
    )
    rejects = pd.DataFrame(
        {"file": ["x"], "row": [1], "id": [""], "stage": ["read"], "reason": ["r"]}
    )
    man = {"config": {}, "seed": seed, "timings_s": {}}
    return RunResult(items, tags, clusters, rejects, graph, man)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=15)
    args = ap.parse_args()
    ov = data_dir() / "openverse-samples"
    table = []
    with Timer() as t:
        cat = read_catalog(ov)  # the folder, recursively: all three layouts
    rows = cat.params["counts"]["rows"]
    table.append(
        [
            "read_catalog, 3 Openverse layouts (8 files)",
            f"{rows:,} rows",
            t.seconds,
            t.cpu_seconds,
            rows / t.seconds,
            f"{len(cat.items):,} items, {len(cat.tags):,} tags, {len(cat.rejects):,} rejects",
        ]
    )
    with tempfile.TemporaryDirectory() as d:
        f = synthetic_openverse(
            ov / "openverse_api_sample_images_to_clean_2023.csv", args.rows, Path(d) / "big.csv"
        )
        with Timer() as t:
            big = read_catalog(f)
        table.append(
            [
                f"read_catalog, synthetic Openverse CSV ({f.stat().st_size / 1e6:.0f} MB)",
                f"{args.rows:,} rows",
                t.seconds,
                t.cpu_seconds,
                args.rows / t.seconds,
                f"{len(big.items):,} items, {len(big.tags):,} tags",
            ]
        )
        res = random_run(args.items, args.k)
        with Timer() as t:
            out = write_run(res, Path(d) / "run")
        size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        table.append(
            [
                f"write_run, {args.items:,} items, {res.graph.n_edges:,} edges",
                f"{size:.0f} MB",
                t.seconds,
                t.cpu_seconds,
                args.items / t.seconds,
                "atomic, zstd",
            ]
        )
        with Timer() as t:
            load_run(out)
        table.append(
            [
                "load_run (same directory)",
                f"{size:.0f} MB",
                t.seconds,
                t.cpu_seconds,
                args.items / t.seconds,
                "",
            ]
        )
    body = markdown_table(
        ["operation", "size", "wall s", "cpu s", "rows or items / wall s", "result"], table
    )
    body += f"\n\nPeak RSS of the whole script: {peak_rss_mb():,.0f} MB."
    write_section(
        "io",
        "Catalog reading and run directories",
        body,
        "python benchmarks/io_bench.py --rows 100000 --items 100000",
    )


if __name__ == "__main__":
    main()
