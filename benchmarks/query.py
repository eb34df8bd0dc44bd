"""Benchmark of ccgraph.query: per-item answers from a finished run, known and new items.

Run: ``python benchmarks/query.py`` (``--quick`` for a 20k synthetic run and no Openverse).
Two runs are made once with the real pipeline and kept under ``--work`` (default
``/tmp/ccgraph-bench/query``): a synthetic catalog of 100k items with 384-d precomputed
vectors (400 sub-topics in 40 topics, topic tags on a share of the items), and the Openverse
sample (``configs/openverse-sample.yaml``, text model, embedding cache in the work folder).

Measured per run, after a warm-up, one query at a time: latency of ``related`` (local push,
epsilon 1e-4) and ``clusters`` by id; of a new item given as a precomputed vector (the stored
vector of an item left out of the search; all three answers, no model inference); agreement
of ``related`` with a global PageRank solve from the same item (top-20 overlap); and, for
items treated as new, how often the top cluster is their run cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchmarks._common import REPO, Timer, data_dir, markdown_table, peak_rss_mb, write_section


def synthetic_catalog(folder: Path, n: int, *, d: int = 384, seed: int = 0) -> Path:
    """Table catalog + ``.npy`` vectors: 40 topics x 10 sub-topics, tags on 25 % of items.

    Cosines: about 0.51 between items of one sub-topic, 0.44 across sub-topics of a topic
    (noise 0.05 either way), 0 across topics, so neighbourhoods mix the sub-topics of a topic.
    """
    g = np.random.default_rng(seed)
    topics = g.normal(size=(40, d))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    subs = np.repeat(topics, 10, axis=0) + 0.02 * g.normal(size=(400, d))
    subs /= np.linalg.norm(subs, axis=1, keepdims=True)
    label = g.integers(0, 400, size=n)
    x = subs[label] + 0.05 * g.normal(size=(n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = np.array([f"s{i:06d}" for i in range(n)])
    tagged = g.random(n)
    tags = np.where(
        tagged < 0.15,
        np.char.add("topic", (label // 10).astype(str)),
        np.where(tagged < 0.25, np.char.add("sub", label.astype(str)), ""),
    )
    views = np.where(g.random(n) < 0.3, g.lognormal(3, 1, size=n).round(), np.nan)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"key": ids, "name": np.char.add("picture ", ids), "labels": tags, "views": views}
    ).assign(src="synthetic").to_csv(folder / "catalog.csv", index=False)
    np.save(folder / "vectors.npy", x)
    (folder / "ids.txt").write_text("\n".join(ids) + "\n")
    cfg = folder / "config.yaml"
    cfg.write_text(
        """data:
  path: catalog.csv
  format: table
  columns: {id: key, title: name, tags: labels, popularity: views, provider: src}
  tags: {min_count: 2}
embed:
  text: {enabled: false}
  precomputed: {path: vectors.npy, ids_path: ids.txt}
graph: {k: 15, min_degree: 2}
cluster: {resolutions: [0.25, 1.0, 4.0]}
output: {dir: run}
seed: 0
"""
    )
    return cfg


def build_runs(work: Path, n: int, openverse: bool) -> dict[str, Path]:
    import ccgraph

    runs = {}
    synth = work / f"synthetic-{n // 1000}k"
    if not (synth / "run" / "manifest.json").exists():
        cfg = synthetic_catalog(synth, n)
        with Timer() as t:
            ccgraph.run(cfg)
        print(f"synthetic run of {n} items built in {t.seconds:.0f} s", flush=True)
    runs[f"synthetic {n // 1000}k"] = synth / "run"
    if openverse:
        ov = work / "openverse-sample"
        if not (ov / "run" / "manifest.json").exists():
            data = data_dir() / "openverse-samples"
            if not data.exists():
                print(f"skipping Openverse: {data} not found", flush=True)
                return runs
            cfg = ccgraph.load_config(
                REPO / "configs" / "openverse-sample.yaml",
                [f"data.path={data}", f"embed.cache_dir={work / 'embed-cache'}"],
            )
            with Timer() as t:
                ccgraph.run(cfg, out=ov / "run")
            print(f"openverse run built in {t.seconds:.0f} s", flush=True)
        runs["openverse sample"] = ov / "run"
    return runs


def latency(fn, args, warm: int = 30) -> tuple[float, float, float]:
    """Median and p99 wall ms, and median CPU ms, of ``fn(a)`` over ``args[warm:]``."""
    for a in args[:warm]:
        fn(a)
    wall, cpu = [], []
    for a in args[warm:]:
        start, c0 = time.perf_counter(), time.process_time()
        fn(a)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - c0)
    ms = 1e3 * np.asarray(wall)
    return float(np.median(ms)), float(np.percentile(ms, 99)), 1e3 * float(np.median(cpu))


def ppr_overlap(index, rows: np.ndarray, n: int = 20) -> tuple[float, float]:
    """Mean and minimum top-``n`` overlap of ``related`` with the global PageRank solve."""
    from ccgraph.propagate import personalized_pagerank_batch

    eye = np.zeros((index.n_items, len(rows)))
    eye[rows, np.arange(len(rows))] = 1.0
    exact = personalized_pagerank_batch(index.graph, eye, tol=1e-10)
    out = []
    for j, r in enumerate(rows):
        col = exact[:, j].copy()
        col[r] = -1.0
        reach = int((col > 0).sum())
        m = min(n, reach)
        if m == 0:
            continue
        truth = set(np.argsort(-col, kind="stable")[:m].tolist())
        got = index.related(str(index.ids[r]), n, duplicates="include")
        got_rows = {index.position(i) for i in got["id"]}
        out.append(len(truth & got_rows) / m)
    return float(np.mean(out)), float(np.min(out))


def held_out(index, rows: np.ndarray, modality: str) -> dict[str, float]:
    """Share of items whose top cluster, queried as new, equals their run cluster."""
    stored = index.embeddings[modality]
    pos = pd.Series(np.arange(len(stored.rows)), index=stored.rows)
    hits = np.zeros((len(rows), index.n_levels), dtype=bool)
    for j, r in enumerate(rows):
        vec = np.asarray(stored.vectors[pos[r]])
        ans = index.query_vector(vec, modality=modality, exclude=[str(index.ids[r])])
        hits[j] = ans.clusters.levels["cluster"].to_numpy() == index.levels[:, r]
    out = {f"l{lev}": float(hits[:, lev].mean()) for lev in range(index.n_levels)}
    out["default"] = float(hits[:, index.default_level].mean())
    return out


def search_recall(index, rows: np.ndarray, modality: str, k: int) -> float:
    """Recall@k of the cluster-pruned neighbour search against the exact one."""
    from ccgraph.query.newitems import searcher

    s = searcher(index, index.embeddings[modality])
    pos = pd.Series(np.arange(len(s.stored.rows)), index=s.stored.rows)
    q = np.asarray(s.stored.vectors[pos[rows].to_numpy()])
    a, _ = s.search(q, k=k, n_items=index.n_items, method="exact")
    b, _ = s.search(q, k=k, n_items=index.n_items, method="clusters")
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)]))


def measure(name: str, path: Path, n_queries: int, seed: int = 0) -> dict:
    from ccgraph.query import open_run

    with Timer() as t:
        index = open_run(path)
    modality = sorted(index.embeddings)[0]
    stored = index.embeddings[modality]
    g = np.random.default_rng(seed)
    rows = g.choice(index.n_items, size=min(n_queries, index.n_items), replace=False)
    ids = [str(index.ids[r]) for r in rows]
    with Timer() as first:  # builds the search structures (cluster centroids)
        index.query_vector(np.asarray(stored.vectors[0]), modality=modality)
    res = {"run": name, "items": index.n_items, "open_s": t.seconds, "first_new_s": first.seconds}
    res["related"] = latency(lambda i: index.related(i, 20, epsilon=1e-4), ids)
    res["clusters"] = latency(index.clusters, ids)
    res["tags"] = latency(index.tags, ids)
    has = np.isin(rows, stored.rows)
    pos = pd.Series(np.arange(len(stored.rows)), index=stored.rows)
    vec_rows = rows[has][: max(60, n_queries // 4)]
    vecs = [(np.asarray(stored.vectors[pos[r]]), str(index.ids[r])) for r in vec_rows]

    def new(v: tuple[np.ndarray, str]) -> None:
        index.query_vector(v[0], modality=modality, exclude=[v[1]])

    res["new_vector"] = latency(new, vecs, warm=10)  # neighbours' k-th scores not cached yet
    res["new_vector_again"] = latency(new, vecs, warm=0)  # the same queries again: cached
    res["new_vector_knn"] = latency(
        lambda v: index.query_vector(v[0], modality=modality, exclude=[v[1]], rule="knn"),
        vecs,
        warm=0,
    )
    res["method"] = (
        "exact" if stored.vectors.shape[0] <= 20_000 or stored.kind == "binary" else "clusters"
    )
    res["recall"] = search_recall(index, vec_rows[:100], modality, 15)
    res["overlap"] = ppr_overlap(index, rows[:100])
    k = 1000 if index.n_items <= 5000 else 500
    res["held_out"] = held_out(index, rows[has][:k], modality)
    res["held_out_n"] = int(min(k, has.sum()))
    res["rss_mb"] = peak_rss_mb()
    print(json.dumps(res, indent=1), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="20k synthetic items, no Openverse")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ccgraph-bench/query"))
    ap.add_argument("--queries", type=int, default=1000)
    args = ap.parse_args()
    n = 20_000 if args.quick else 100_000
    runs = build_runs(args.work, n, openverse=not args.quick)
    results = [measure(name, path, args.queries) for name, path in runs.items()]
    labels = {
        "related": "related by id (n=20)",
        "clusters": "clusters by id",
        "tags": "tags by id",
        "new_vector": "new item as a vector, first time",
        "new_vector_again": "same new items again (neighbours' k-th scores cached)",
        "new_vector_knn": "new item, rule='knn' (no mutual test)",
    }
    rows = [
        [r["run"], labels[what] + (f", {r['method']} search" if "new" in what else ""), *r[what]]
        for r in results
        for what in labels
    ]
    lat = markdown_table(["run", "query", "median ms", "p99 ms", "median CPU ms"], rows)
    acc = markdown_table(
        [
            "run",
            "items",
            "open s",
            "first new-item query s",
            "related vs global PPR top-20 overlap (mean / min)",
            "search recall@15 vs exact",
            "held-out top cluster = run cluster (default level)",
            "per level",
            "peak RSS MB",
        ],
        [
            [
                r["run"],
                r["items"],
                r["open_s"],
                r["first_new_s"],
                f"{r['overlap'][0]:.3f} / {r['overlap'][1]:.2f}",
                r["recall"],
                f"{r['held_out']['default']:.3f} (n={r['held_out_n']})",
                ", ".join(f"{k} {v:.3f}" for k, v in r["held_out"].items() if k != "default"),
                r["rss_mb"],
            ]
            for r in results
        ],
    )
    load = os.getloadavg()[0]
    body = (
        "One query at a time after 30 warm-up queries (10 for new items); 1,000 random ids; "
        "`related` with n=20, epsilon=1e-4, alpha=0.85. A new item is the stored vector of an "
        "item left out of the search (all three answers, no model inference); k = the run's "
        "`graph.k`; its would-be edges follow the run's mutual-kNN rule, which needs each "
        "neighbour's k-th score (searched on first use, then cached). Overlap: "
        "`related(duplicates='include')` against a global PageRank solve (tol 1e-10) from the "
        "same item, over 100 items. Held out: the item is removed from the search and its "
        f"stored vector queried as new. Load average at the end: {load:.1f} on "
        f"{os.cpu_count()} cores, so wall times include waiting for a CPU; the CPU column is "
        "the query's own cost.\n\n" + lat + "\n\n" + acc
    )
    cmd = "python benchmarks/query.py" + (" --quick" if args.quick else "")
    write_section("query", "Query-time answers (ccgraph.query)", body, cmd)


if __name__ == "__main__":
    main()
