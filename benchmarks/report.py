"""Report build time, size and browser load time.

1. A ~1000-image run over the shared Flickr8k images (the fixture run of tests/report, or any
   run directory given with --run): build time cold / warm thumbnail cache, report size, and the
   load time of index.html and a cluster page in headless Chromium (Navigation Timing).
2. A large URL-only run (default 100,000 items, planted clusters, sparse graph): build time,
   which is dominated by the map layout and the tables.

Usage: PYTHONPATH=src:. python benchmarks/report.py [--run RUN_DIR] [--n-images N] [--large N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks._common import Timer, data_dir, markdown_table, peak_rss_mb, write_section


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def browser_load(index: Path) -> list[tuple[str, float, int, int]]:
    from tests.report._browser import chromium, chromium_binary, open_page

    if chromium_binary() is None:
        return []
    out = []
    with chromium() as driver:
        pages = [index, sorted(index.parent.glob("cluster-*.html"))[0]]
        for page in pages:
            times, imgs = [], []
            for _ in range(3):
                r = open_page(driver, page)
                times.append(r["timing"]["load"])
                imgs = r["images"]
            ok = sum(bool(i["complete"] and i["w"] > 0) for i in imgs)
            out.append((page.name, float(np.median(times)) / 1000, len(imgs), ok))
    return out


def large_run(folder: Path, n: int, k: int = 10, seed: int = 0) -> Path:
    g = np.random.default_rng(seed)
    n_clusters = max(n // 200, 2)
    lab = np.sort(g.integers(0, n_clusters, n))
    starts = np.searchsorted(lab, np.arange(n_clusters))
    sizes = np.bincount(lab, minlength=n_clusters)
    rows = np.repeat(np.arange(n), k)
    same = starts[lab[rows]] + (g.random(n * k) * sizes[lab[rows]]).astype(np.int64)
    cols = np.where(g.random(n * k) < 0.9, same, g.integers(0, n, n * k))
    a = sp.csr_matrix((g.uniform(0.3, 1, n * k), (rows, cols)), shape=(n, n))
    a = a.maximum(a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    ids = np.array([f"ov{i:07d}" for i in range(n)])
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "id": ids,
            "cluster": lab,
            "cluster_l0": lab // 10,
            "cluster_l1": lab,
            "degree": np.diff(a.indptr),
            "title": [f"Openverse item {i}" for i in range(n)],
            "provider": "flickr",
            "license": "by",
            "url": [f"https://example.org/{i}" for i in ids],
        }
    ).to_parquet(folder / "items.parquet", index=False)
    vocab = np.array([f"tag{j}" for j in range(500)])
    tagged = np.flatnonzero(g.random(n) < 0.5)
    pd.DataFrame(
        {
            "id": np.concatenate([ids[tagged], ids]),
            "tag": np.concatenate([vocab[lab[tagged] % 500], vocab[(lab + 1) % 500]]),
            "source": ["observed"] * len(tagged) + ["inferred"] * n,
            "confidence": np.concatenate([np.ones(len(tagged)), g.random(n)]),
        }
    ).to_parquet(folder / "tags.parquet", index=False)
    np.savez(
        folder / "graph.npz",
        data=a.data,
        indices=a.indices,
        indptr=a.indptr,
        shape=np.array(a.shape),
        ids=ids,
    )
    (folder / "manifest.json").write_text(
        json.dumps({"config": {"cluster": {"resolutions": [0.25, 1.0]}}, "counts": {"items": n}})
    )
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=None, help="an existing run directory")
    ap.add_argument("--n-images", type=int, default=1000)
    ap.add_argument("--large", type=int, default=100_000)
    args = ap.parse_args()
    from ccgraph.report import write_report

    tmp = Path(tempfile.mkdtemp(prefix="ccgraph-bench-report-"))
    try:
        run = args.run
        what = f"run {run}"
        if run is None:
            from tests.report._run_fixture import build_flickr_run

            run = build_flickr_run(data_dir() / "flickr8k-1000", tmp / "flickr", n=args.n_images)
            what = f"Flickr8k fixture run, {args.n_images} images"
        out, cache = tmp / "report", tmp / "cache"
        with Timer() as cold:
            index = write_report(run, out=out, cache_dir=cache)
        with Timer() as warm:
            index = write_report(run, out=out, cache_dir=cache)
        n_items = len(pd.read_parquet(run / "items.parquet", columns=["id"]))
        n_thumbs = len(list((out / "assets" / "thumbs").glob("*.jpg")))
        rows = [
            [
                what,
                n_items,
                f"{cold.seconds:.1f}",
                f"{warm.seconds:.1f}",
                f"{folder_mb(out):.1f}",
                n_thumbs,
                len(list(out.glob("*.html"))),
            ]
        ]
        body = markdown_table(
            [
                "run",
                "items",
                "build cold (s)",
                "build warm (s)",
                "report size (MB)",
                "thumbnails",
                "pages",
            ],
            rows,
        )
        loads = browser_load(index)
        if loads:
            body += "\n\nLoad time in headless Chromium (file://, median of 3, loadEventEnd):\n\n"
            body += markdown_table(
                ["page", "load (s)", "images", "images loaded"], [list(r) for r in loads]
            )
        if args.large:
            big = large_run(tmp / "large", args.large)
            with Timer() as t:
                index = write_report(big, out=tmp / "large-report", cache_dir=cache)
            body += "\n\nLarge URL-only run (planted clusters, sparse graph, cards only):\n\n"
            body += markdown_table(
                ["items", "edges", "build (s)", "cpu (s)", "report size (MB)", "peak RSS (MB)"],
                [
                    [
                        args.large,
                        int(np.load(big / "graph.npz")["data"].size // 2),
                        f"{t.seconds:.1f}",
                        f"{t.cpu_seconds:.1f}",
                        f"{folder_mb(index.parent):.1f}",
                        f"{peak_rss_mb():.0f}",
                    ]
                ],
            )
        write_section("report", "HTML report", body, "PYTHONPATH=src:. python benchmarks/report.py")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
