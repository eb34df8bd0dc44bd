"""kNN graph benchmark: backends, recall, memory, numba compile cost, connectivity repair.

Synthetic mixture: 200 clusters on the unit sphere in d=384. Each item is a cluster centre plus
Gaussian spread inside a random 32-dimensional subspace, plus a little isotropic noise, then
normalised (embeddings of real text and images have a low intrinsic dimension; spread 1.05
puts the 15-NN label purity near 0.8 at 20k items). One "hard" row uses isotropic 384-d noise
instead (intrinsic dimension 384; the worst case for NN-descent).

Every measurement runs in a fresh subprocess, so peak RSS is per backend and pynndescent's
numba compilation (paid once per process) is timed separately, on a 2,000-item warm-up call.

Usage::

    python benchmarks/graph.py                      # 20k and 100k
    python benchmarks/graph.py --sizes 20000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchmarks._common import Timer, markdown_table, peak_rss_mb, write_section

K = 15
N_QUERIES = 1000


def mixture(
    n: int,
    *,
    d: int = 384,
    clusters: int = 200,
    latent: int = 32,
    spread: float = 1.05,
    noise: float = 0.05,
    isotropic: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``clusters`` centres and their labels (generated in chunks)."""
    g = np.random.default_rng(seed)
    labels = g.integers(0, clusters, size=n)
    x = np.empty((n, d), dtype=np.float32)
    if isotropic:
        centres = g.normal(size=(clusters, d)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    else:
        basis = np.linalg.qr(g.normal(size=(d, latent)))[0].astype(np.float32)
        centres = g.normal(size=(clusters, latent)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    for s in range(0, n, 65536):
        e = min(n, s + 65536)
        lab = labels[s:e]
        if isotropic:
            blk = centres[lab] + g.standard_normal((e - s, d), dtype=np.float32) * (
                spread / np.sqrt(d)
            )
        else:
            z = centres[lab] + g.standard_normal((e - s, latent), dtype=np.float32) * (
                spread / np.sqrt(latent)
            )
            blk = z @ basis.T + g.standard_normal((e - s, d), dtype=np.float32) * (
                noise / np.sqrt(d)
            )
        blk /= np.linalg.norm(blk, axis=1, keepdims=True)
        x[s:e] = blk
    return x, labels


def code_mixture(n: int, *, clusters: int = 200, flip: float = 0.08, seed: int = 0) -> np.ndarray:
    """64-bit codes (``uint8 [n, 8]``): cluster prototypes with each bit flipped w.p. ``flip``."""
    g = np.random.default_rng(seed)
    protos = g.integers(0, 256, size=(clusters, 8), dtype=np.uint8)
    labels = g.integers(0, clusters, size=n)
    return protos[labels] ^ np.packbits(g.random((n, 64)) < flip, axis=1)


def make_data(spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Data for a job spec: (vectors or codes, labels, metric)."""
    if spec["data"] == "codes":
        return code_mixture(spec["n"]), None, "hamming"
    if spec["data"] == "isotropic":  # spread 2.6 puts the 15-NN purity near 0.8 here
        x, labels = mixture(spec["n"], isotropic=True, spread=2.6)
    else:
        x, labels = mixture(spec["n"])
    return x, labels, "cosine"


def queries_for(n: int) -> np.ndarray:
    return np.sort(np.random.default_rng(1).choice(n, size=min(N_QUERIES, n), replace=False))


# ----------------------------------------------------------------------------- child jobs


def job_reference(spec: dict[str, Any]) -> dict[str, Any]:
    """Exact answers for the sampled queries (the recall reference) and 15-NN label purity."""
    from ccgraph.graph._exact import exact_dense, exact_hamming

    data, labels, metric = make_data(spec)
    q = queries_for(len(data))
    if metric == "hamming":
        idx, dist = exact_hamming(data, K, queries=q)
    else:
        idx, dist = exact_dense(data, K, metric=metric, queries=q)
    np.savez(spec["out"], queries=q, indices=idx, distances=dist)
    purity = float((labels[idx] == labels[q][:, None]).mean()) if labels is not None else None
    return {"purity": purity}


def job_backend(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one backend, then the graph build from its kNN lists; recall vs the reference."""
    from ccgraph.graph import build_knn_graph, knn_search

    data, _, metric = make_data(spec)
    rss_data = peak_rss_mb()
    options = spec.get("options") or {}
    out: dict[str, Any] = {"rss_data_mb": rss_data}
    if spec["backend"] in ("pynndescent", "cells"):  # numba: compile or load the disk cache
        with Timer() as t:
            knn_search(data[:2000], k=K, metric=metric, backend=spec["backend"], rng=0)
        out |= {"compile_s": t.seconds, "compile_cpu_s": t.cpu_seconds}
    with Timer() as t:
        idx, dist = knn_search(
            data, k=K, metric=metric, backend=spec["backend"], rng=0, options=options
        )
    out |= {"knn_s": t.seconds, "knn_cpu_s": t.cpu_seconds}
    with Timer() as t:
        g = build_knn_graph(data, k=K, metric=metric, min_degree=1, knn=(idx, dist))
    out |= {"build_s": t.seconds, "build_cpu_s": t.cpu_seconds}
    out["peak_rss_mb"] = peak_rss_mb()
    p = g.params
    out |= {
        key: p[key]
        for key in (
            "mutual_fraction",
            "n_components_mutual",
            "isolated_mutual",
            "n_components_repaired",
            "isolated_repaired",
            "largest_component_fraction",
            "n_edges",
        )
    }
    del g
    with Timer() as t:
        gb = build_knn_graph(
            data, k=K, metric=metric, min_degree=1, bridge_components=True, knn=(idx, dist)
        )
    out |= {
        "bridge_s": t.seconds,
        "n_bridge_edges": gb.params["n_bridge_edges"],
        "n_components_bridged": gb.params["n_components"],
    }
    ref = np.load(spec["ref"])
    q, ref_idx, ref_dist = ref["queries"], ref["indices"], ref["distances"]
    got = idx[q]
    if metric == "hamming":  # many ties: a neighbour counts if no farther than the exact k-th
        out["recall"] = float((dist[q] <= ref_dist[:, -1:]).mean())
    else:
        hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(got, ref_idx, strict=True)]
        out["recall"] = float(np.sum(hits) / ref_idx.size)
    return out


def job_real(spec: dict[str, Any]) -> dict[str, Any]:
    """Cora / CiteSeer bag-of-words: purity, repair and recall of pynndescent (no compile)."""
    from ccgraph.graph import build_knn_graph, knn_search

    z = np.load(spec["path"])
    import scipy.sparse as sp

    x = sp.csr_matrix(
        (z["attr_data"], z["attr_indices"], z["attr_indptr"]), shape=tuple(z["attr_shape"])
    ).toarray()
    keep = x.sum(1) > 0
    x, labels = x[keep], z["labels"][keep]
    with Timer() as t:
        idx, dist = knn_search(x, k=K, backend="exact")
    g = build_knn_graph(x, k=K, min_degree=1, knn=(idx, dist))
    p = g.params
    return {
        "n": len(x),
        "d": int(x.shape[1]),
        "knn_s": t.seconds,
        "purity": float((labels[idx] == labels[:, None]).mean()),
        **{
            key: p[key]
            for key in (
                "n_components_mutual",
                "isolated_mutual",
                "n_components_repaired",
                "isolated_repaired",
                "largest_component_fraction",
            )
        },
    }


def break_even(measured: dict[tuple[str, int, str], dict[str, Any]]) -> str:
    """Where exact search (cost ~ n^2) stops beating pynndescent (compile + cost ~ n).

    Uses cpu-seconds (robust to other load) in two models: a fully loaded machine (wall =
    cpu) and an idle 2-core one (searches use both cores, the numba compilation one).
    """
    from ccgraph.graph.knn import AUTO_EXACT_MAX_N, AUTO_EXACT_MAX_N_HAMMING

    def solve(a: float, b: float, c: float) -> float:  # a r^2 = c + b r, r > 0
        return (b + np.sqrt(b * b + 4 * a * c)) / (2 * a)

    lines = []
    for data, limit in (("clustered", AUTO_EXACT_MAX_N), ("codes", AUTO_EXACT_MAX_N_HAMMING)):
        approx = "pynndescent"
        if data == "clustered" and any(b == "cells" for (d, _, b) in measured if d == data):
            approx = "cells"
        both = [
            n
            for (d, n, b) in measured
            if d == data and b == "exact" and (data, n, approx) in measured
        ]
        if not both:
            continue
        n0 = max(both)
        ex = measured[(data, n0, "exact")]["knn_cpu_s"]
        nd = measured[(data, n0, approx)]
        loaded = solve(ex, nd["knn_cpu_s"], nd["compile_cpu_s"]) * n0
        idle = solve(ex / 2, nd["knn_cpu_s"] / 2, nd["compile_cpu_s"]) * n0
        kind = "dense" if data == "clustered" else "64-bit codes"
        lines.append(
            f"{kind}: at {n0:,} items exact costs {ex:.0f} cpu-s (growing as n^2), "
            f"{approx} {nd['knn_cpu_s']:.0f} cpu-s (growing as n) plus "
            f"{nd['compile_cpu_s']:.0f} cpu-s of compilation or cache loading, so exact is "
            f"cheaper up to about {loaded:,.0f} items on a loaded machine and {idle:,.0f} on an "
            f"idle one; `backend='auto'` switches above {limit:,}."
        )
    return "Auto threshold (fresh process): " + " ".join(lines) if lines else ""


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh interpreter; return its JSON result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path[:2]))
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main


LABEL = {"clustered": "dense", "isotropic": "dense, isotropic", "codes": "64-bit codes"}


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run every job; return the raw results (JSON-serialisable)."""
    results: dict[str, Any] = {"load_start": os.getloadavg()[0], "runs": [], "real": []}
    tmp = Path(tempfile.mkdtemp(prefix="ccgraph-bench-"))
    plan: list[tuple[str, int]] = [("clustered", n) for n in args.sizes]
    if args.hard:
        plan.append(("isotropic", 20_000))
    plan += [("codes", n) for n in args.hamming_sizes]
    for data, n in plan:
        backends = ["exact"] if n <= args.exact_max else []
        backends += ["pynndescent"] if data == "codes" else ["cells", "pynndescent"]
        backends = [b for b in backends if b in args.backends]
        ref = str(tmp / f"ref-{data}-{n}.npz")
        info = run_child({"job": "reference", "data": data, "n": n, "out": ref})
        for backend in backends:
            spec = {"job": "backend", "data": data, "n": n, "backend": backend, "ref": ref}
            if backend == "pynndescent":
                spec["options"] = args.nnd_options
            r = run_child(spec)
            results["runs"].append({"data": data, "n": n, "backend": backend, **info, **r})
            print(json.dumps(results["runs"][-1]), flush=True)
    from benchmarks._common import data_dir

    for name in ("cora", "citeseer"):
        path = data_dir() / "citation-graphs" / "npz" / f"{name}.npz"
        if path.exists():
            results["real"].append({"name": name, **run_child({"job": "real", "path": str(path)})})
    results["load_end"] = os.getloadavg()[0]
    return results


def render(results: dict[str, Any]) -> str:
    """The markdown section for ``results``."""
    rows, graph_rows = [], []
    for r in results["runs"]:
        total = r["knn_s"] + r.get("compile_s", 0.0) + r["build_s"]
        head = [f"{r['n']:,}", LABEL[r["data"]], r["backend"]]
        rows.append(
            [
                *head,
                r.get("compile_s", 0.0),
                r["knn_s"],
                r["knn_cpu_s"],
                r["build_s"],
                total,
                r["peak_rss_mb"] / 1024,
                r["recall"],
                "" if r["purity"] is None else r["purity"],
            ]
        )
        graph_rows.append(
            [
                *head,
                r["mutual_fraction"],
                r["n_components_mutual"],
                r["isolated_mutual"],
                r["n_components_repaired"],
                r["isolated_repaired"],
                r["largest_component_fraction"],
                r["n_bridge_edges"],
                r["n_components_bridged"],
                r["bridge_s"],
            ]
        )
    body = (
        f"k = {K}; recall@{K} against exact search on {N_QUERIES} sampled queries (64-bit codes: "
        "share of returned neighbours no farther than the exact k-th, since Hamming distances "
        "tie). `compile` is the numba start-up, timed on a warm-up call on 2,000 items: "
        "pynndescent compiles in every process; the cells backend's kernels are compiled once "
        "per machine and loaded from the disk cache afterwards; `total` = compile + kNN + "
        "graph build (mutual rule, repair with min_degree=1, cosine weights). Peak RSS is the "
        "whole process, data included (1M x 384 float32 = 1.5 GB).\n\n"
        + markdown_table(
            [
                "n",
                "data",
                "backend",
                "compile s",
                "kNN s",
                "kNN cpu-s",
                "build s",
                "total s",
                "peak GB",
                f"recall@{K}",
                f"{K}-NN purity",
            ],
            rows,
        )
        + "\n\nConnectivity (mutual kNN, k = 15): `plain` = mutual edges only; `repaired` = union "
        "with each item's nearest neighbour (min_degree=1); `bridged` adds a minimum spanning "
        "forest of best cross-component edges.\n\n"
        + markdown_table(
            [
                "n",
                "data",
                "kNN from",
                "mutual share",
                "components plain",
                "isolated plain",
                "components repaired",
                "isolated repaired",
                "largest comp. (repaired)",
                "bridge edges",
                "components bridged",
                "bridge build s",
            ],
            graph_rows,
        )
    )
    if results["real"]:
        real_rows = [
            [
                r["name"],
                r["n"],
                r["d"],
                r["knn_s"],
                r["purity"],
                r["n_components_mutual"],
                r["isolated_mutual"],
                r["n_components_repaired"],
                r["isolated_repaired"],
                r["largest_component_fraction"],
            ]
            for r in results["real"]
        ]
        body += "\n\nReal data (binary bag-of-words, cosine, exact kNN):\n\n" + markdown_table(
            [
                "data",
                "n",
                "d",
                "kNN s",
                f"{K}-NN label purity",
                "components plain",
                "isolated plain",
                "components repaired",
                "isolated repaired",
                "largest comp. (repaired)",
            ],
            real_rows,
        )
    if results.get("note"):
        body += "\n\n" + results["note"]
    measured = {(r["data"], r["n"], r["backend"]): r for r in results["runs"]}
    body += "\n\n" + break_even(measured)
    body += (
        f"\n\nLoad average (1 min) when the run started / ended: {results['load_start']:.1f} / "
        f"{results['load_end']:.1f} on {os.cpu_count()} cores: other jobs shared the machine, so "
        "wall times are upper bounds; cpu-s are less affected."
    )
    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--exact-max", type=int, default=100_000, help="largest n timed exactly")
    ap.add_argument("--hamming-sizes", type=int, nargs="*", default=[20_000, 100_000])
    ap.add_argument("--backends", nargs="+", default=["exact", "cells", "pynndescent"])
    ap.add_argument("--hard", action="store_true", help="add the isotropic (hard) 20k row")
    ap.add_argument("--nnd-options", type=json.loads, default={}, help="JSON pynndescent options")
    ap.add_argument("--save", help="write the raw results to this JSON file")
    ap.add_argument("--render", help="re-render a saved JSON file instead of running")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        jobs = {"reference": job_reference, "backend": job_backend, "real": job_real}
        print(json.dumps(jobs[spec["job"]](spec)))
        return
    if args.render:
        results = json.loads(Path(args.render).read_text())
    else:
        results = collect(args)
        results["command"] = "python benchmarks/graph.py " + " ".join(sys.argv[1:])
        if args.save:
            Path(args.save).write_text(json.dumps(results, indent=1))
    body = render(results)
    if args.no_write:
        print(body)
    else:
        write_section("graph", "kNN graph construction", body, results["command"].strip())
    print(f"finished {time.strftime('%H:%M:%S')}", file=sys.stderr)


if __name__ == "__main__":
    main()
