"""Leiden backends at 100k items, Cora agreement with classes, ID stability, Flickr8k levels.

Run from the repository root: ``python -m benchmarks.cluster [--n 100000]`` (shared data via
``CCGRAPH_DATA_DIR``).
Prints the tables and rewrites the ``cluster`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import time

import igraph as ig
import leidenalg as la
import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks._common import Timer, data_dir, markdown_table, peak_rss_mb, write_section
from ccgraph.cluster import (
    adjusted_rand_index,
    choose_default_level,
    describe_clusters,
    leiden,
    leiden_levels,
    modularity,
    normalized_mutual_info,
    purity,
    stabilize,
    warm_start,
)
from ccgraph.cluster.describe import tokenize
from ccgraph.containers import KnnGraph
from ccgraph.graph.convert import to_igraph


def exact_knn(x: np.ndarray, k: int, block: int = 500) -> sp.csr_matrix:
    """Exact cosine kNN by blocked numpy products; union-symmetrised, weights = cosine."""
    xn = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    n = len(xn)
    nbr = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        s = xn[start : start + block] @ xn.T
        rows = np.arange(s.shape[0])
        s[rows, start + rows] = -np.inf
        idx = np.argpartition(-s, k, axis=1)[:, :k]
        nbr[start : start + block] = idx
        sim[start : start + block] = np.take_along_axis(s, idx, axis=1)
    r = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((np.clip(sim.ravel(), 1e-3, None), (r, nbr.ravel())), shape=(n, n))
    return a.maximum(a.T).tocsr()


def mixture(n: int, n_clusters: int, d: int, spread: float, seed: int):
    """Gaussian mixture around random unit directions, log-normal cluster sizes."""
    g = np.random.default_rng(seed)
    centres = g.normal(size=(n_clusters, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = g.lognormal(0.0, 0.7, size=n_clusters)
    labels = g.choice(n_clusters, size=n, p=weights / weights.sum())
    x = centres[labels] + spread * g.normal(size=(n, d))
    return x.astype(np.float32), labels


def raw_igraph(graph: ig.Graph, n_iter: int) -> tuple[list[int], float]:
    ig.set_random_number_generator(random.Random(0))
    try:
        with Timer() as t:
            res = graph.community_leiden(
                objective_function="modularity",
                weights="weight",
                resolution=1.0,
                beta=0.01,
                n_iterations=n_iter,
            )
    finally:
        ig.set_random_number_generator(random)
    return res.membership, t.cpu_seconds


def raw_leidenalg(graph: ig.Graph, n_iter: int) -> tuple[list[int], float]:
    with Timer() as t:
        part = la.ModularityVertexPartition(graph, weights="weight")
        opt = la.Optimiser()
        opt.set_rng_seed(0)
        opt.optimise_partition(part, n_iterations=n_iter)
    return part.membership, t.cpu_seconds


def speed_section(n: int) -> str:
    x, truth = mixture(n, 1000, 32, 0.12, seed=0)
    with Timer() as t_knn:
        adj = exact_knn(x, 15)
    graph = KnnGraph.from_adjacency(adj)
    with Timer() as t_conv:
        ig_graph = to_igraph(graph.adjacency)
    rows = []
    speed: dict[tuple[str, int], float] = {}
    for n_iter in (2, -1):
        for backend, fn in (("igraph", raw_igraph), ("leidenalg", raw_leidenalg)):
            membership, cpu = fn(ig_graph, n_iter)
            mem = np.asarray(membership)
            with Timer() as t_full:
                leiden(graph, backend=backend, n_iterations=n_iter, rng=0)
            speed[(backend, n_iter)] = cpu
            rows.append(
                [
                    backend,
                    "2" if n_iter == 2 else "until stable",
                    round(cpu, 2),
                    round(t_full.cpu_seconds, 2),
                    int(mem.max()) + 1,
                    round(modularity(graph, mem), 4),
                    round(normalized_mutual_info(truth, mem), 3),
                ]
            )
    table = markdown_table(
        [
            "backend",
            "iterations",
            "algorithm cpu-s",
            "leiden() cpu-s",
            "clusters",
            "modularity",
            "NMI vs mixture",
        ],
        rows,
    )
    q = {(r[0], r[1]): r[5] for r in rows}
    ratio = [
        f"{label}: igraph {speed[('leidenalg', it)] / speed[('igraph', it)]:.1f}x faster, "
        f"modularity gap {abs(q[('igraph', label)] / q[('leidenalg', label)] - 1) * 100:.2f} %"
        for it, label in ((2, "2"), (-1, "until stable"))
    ]
    return (
        f"### Leiden at {n:,} items\n\nGraph: exact cosine 15-NN (union) of a 1,000-component "
        f"Gaussian mixture in 32 dimensions (log-normal component sizes); {graph.n_edges:,} "
        f"edges; kNN {t_knn.cpu_seconds:.0f} cpu-s; CSR -> igraph {t_conv.cpu_seconds:.2f} cpu-s. "
        "Modularity objective, resolution 1, weights, seed 0. *algorithm* times the backend "
        "call alone on a prebuilt igraph Graph; *leiden()* is the library call (conversion, "
        "backend, relabelling, quality).\n\n"
        f"{table}\n\n" + "; ".join(ratio) + "."
    )


def load_cora() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    z = np.load(data_dir() / "citation-graphs" / "npz" / "cora.npz", allow_pickle=False)
    adj = sp.csr_matrix(
        (z["adj_data"], z["adj_indices"], z["adj_indptr"]), shape=tuple(z["adj_shape"])
    )
    adj = adj.maximum(adj.T).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.data[:] = 1.0
    attr = sp.csr_matrix(
        (z["attr_data"], z["attr_indices"], z["attr_indptr"]), shape=tuple(z["attr_shape"])
    ).toarray()
    idf = np.log(len(attr) / np.maximum((attr > 0).sum(axis=0), 1)) + 1.0
    return adj, attr * idf, z["labels"].astype(np.int64)


def perturb(a: sp.csr_matrix, share: float, seed: int) -> sp.csr_matrix:
    g = np.random.default_rng(seed)
    upper = sp.triu(a, k=1).tocoo()
    m = upper.nnz
    n_change = round(share * m)
    keep = np.ones(m, dtype=bool)
    keep[g.choice(m, n_change, replace=False)] = False
    rows = np.concatenate([upper.row[keep], g.integers(0, a.shape[0], n_change)])
    cols = np.concatenate([upper.col[keep], g.integers(0, a.shape[0], n_change)])
    w = np.concatenate([upper.data[keep], g.choice(upper.data, n_change)])
    ok = rows != cols
    b = sp.csr_matrix((w[ok], (rows[ok], cols[ok])), shape=a.shape)
    b.sum_duplicates()
    return b.maximum(b.T).tocsr()


def cora_section() -> str:
    adj, tfidf, labels = load_cora()
    graphs = {"citation": KnnGraph.from_adjacency(adj), "tf-idf 15-NN": None}
    graphs["tf-idf 15-NN"] = KnnGraph.from_adjacency(exact_knn(tfidf, 15))
    rows, stab_rows = [], []
    for name, graph in graphs.items():
        for backend in ("igraph", "leidenalg"):
            stats = []
            for seed in range(5):
                with Timer() as t:
                    p = leiden(graph, backend=backend, rng=seed)
                m = p.membership
                stats.append(
                    [
                        p.n_clusters,
                        p.quality,
                        normalized_mutual_info(labels, m),
                        adjusted_rand_index(labels, m),
                        purity(labels, m),
                        t.cpu_seconds,
                    ]
                )
            s = np.array(stats)
            mean, sd = s.mean(axis=0), s.std(axis=0)
            rows.append(
                [name, backend, f"{mean[0]:.0f}", f"{mean[1]:.4f} ± {sd[1]:.4f}"]
                + [f"{mean[i]:.3f} ± {sd[i]:.3f}" for i in (2, 3, 4)]
                + [round(mean[5], 2)]
            )
            stab_rows.append([name, backend, *stability(graph, backend)])
    table = markdown_table(
        ["graph", "backend", "clusters", "modularity", "NMI", "ARI", "purity", "cpu-s"], rows
    )
    stab = markdown_table(
        [
            "graph",
            "backend",
            "other seed: churn",
            "1 % edges rewired, cold start: churn",
            "1 % rewired, warm start: churn",
        ],
        stab_rows,
    )
    return (
        "### Cora (2,708 papers, 7 classes)\n\nModularity, resolution 1, until stable; mean ± sd "
        "over seeds 0-4. The tf-idf graph is the exact cosine 15-NN (union) of the tf-idf rows of "
        f"the binary bag of words.\n\n{table}\n\n"
        "### Cluster-ID stability on Cora\n\nChurn = share of items whose cluster ID changes "
        "after `stabilize` against the seed-0 run. *Cold start*: Leiden from singletons on the "
        "perturbed graph (1 % of edges dropped, as many random edges added). *Warm start*: "
        "`leiden(..., initial_membership=warm_start(ids, old))`, then `stabilize`.\n\n"
        f"{stab}"
    )


def stability(graph: KnnGraph, backend: str) -> list[str]:
    first = leiden(graph, backend=backend, rng=0)
    old = pd.Series(first.membership, index=first.ids)
    other_seed = stabilize(leiden(graph, backend=backend, rng=1), old).params["churn"]
    noisy = KnnGraph.from_adjacency(perturb(graph.adjacency, 0.01, seed=3))
    cold = stabilize(leiden(noisy, backend=backend, rng=0), old).params["churn"]
    init = warm_start(noisy.ids, old)
    warm = stabilize(leiden(noisy, backend=backend, rng=0, initial_membership=init), old)
    return [f"{other_seed:.3f}", f"{cold:.3f}", f"{warm.params['churn']:.3f}"]


def flickr_section() -> str:
    frame = pd.read_csv(data_dir() / "flickr8k-1000" / "captions.txt")
    staged = sorted(p.name for p in (data_dir() / "flickr8k-1000" / "images").glob("*.jpg"))
    frame = frame[frame["image"].isin(staged)]
    texts = frame.groupby("image", sort=True)["caption"].apply(" ".join)
    rows_idx, words = tokenize(texts.tolist())
    codes, vocab = pd.factorize(pd.Series(words), sort=True)
    counts = sp.csr_matrix((np.ones(len(codes)), (rows_idx, codes)), shape=(len(texts), len(vocab)))
    counts.sum_duplicates()
    df = np.asarray((counts > 0).sum(axis=0)).ravel()
    x = (counts @ sp.diags(np.log(len(texts) / df) + 1.0)).toarray()
    graph = KnnGraph.from_adjacency(exact_knn(x, 10), texts.index.to_numpy())
    levels = leiden_levels(graph, resolutions=(0.25, 1.0, 4.0), rng=0)
    default = choose_default_level(levels, target_size=50)
    rows = []
    for p in levels:
        sizes = np.bincount(p.membership)
        rows.append(
            [
                f"l{p.params['level']}" + (" (default)" if p.params["level"] == default else ""),
                p.params["resolution"],
                p.n_clusters,
                int(np.median(sizes)),
                int(np.median(sizes[p.membership])),
                int(np.percentile(sizes, 90)),
                int(sizes.max()),
                round(modularity(graph, p.membership), 3),
            ]
        )
    table = markdown_table(
        [
            "level",
            "resolution",
            "clusters",
            "median size",
            "median item's cluster size",
            "p90 size",
            "largest",
            "modularity",
        ],
        rows,
    )
    desc = describe_clusters(graph, levels[default], texts=texts.tolist(), level=default)
    top = desc.head(8)
    desc_table = markdown_table(
        ["cluster", "size", "label", "density", "conductance"],
        [
            [r.cluster, r.size, r.label, round(r.density, 3), round(r.conductance, 3)]
            for r in top.itertuples()
        ],
    )
    return (
        "### Flickr8k-1000 levels (caption tf-idf graph)\n\nNo model: exact cosine 10-NN of the "
        "tf-idf of each image's five captions (a stand-in until the pipeline's MiniLM / CNN "
        "graphs exist); `leiden_levels` at resolutions 0.25, 1, 4; default level by "
        f"`choose_default_level(target_size=50)`.\n\n{table}\n\nLargest clusters of the default "
        f"level (`describe_clusters`, caption words):\n\n{desc_table}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="items in the speed benchmark")
    args = parser.parse_args()
    start = time.perf_counter()
    parts = [speed_section(args.n)]
    if (data_dir() / "citation-graphs").exists():
        parts.append(cora_section())
    if (data_dir() / "flickr8k-1000").exists():
        parts.append(flickr_section())
    parts.append(
        f"Total {time.perf_counter() - start:.0f} s wall, peak RSS {peak_rss_mb():,.0f} MB."
    )
    write_section(
        "cluster",
        "Clustering (ccgraph.cluster)",
        "\n\n".join(parts),
        "python -m benchmarks.cluster",
    )


if __name__ == "__main__":
    main()
