"""Memory benchmark: each heavy stage's measured peak beside ``ccgraph._memory``'s estimate.

For every size, synthetic inputs are written once (d=384 vectors from the mixture of
``benchmarks/graph.py``; 1,000 tags, 5 per topic, 3 on each of 10 % of the items), then each
stage runs in a fresh subprocess that has imported what a pipeline process has, holds what the
pipeline holds at that point (one copy of the embeddings, plus the kNN lists or the graph) and
reports its peak resident set size (``VmHWM``). The estimates model the same thing: the
whole process's peak during the stage.

Usage::

    python benchmarks/memory.py            # 10k, 50k, 200k items + the out-of-sample point
    python benchmarks/memory.py --sizes 10000 --check 0 0 0 0 --keep /tmp/mem  # reuse results
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
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchmarks._common import markdown_table, write_section

TAGGED, TAGS_PER_ITEM = 0.10, 3


class Shape(NamedTuple):
    """One benchmark point: items, dimension, neighbours, tags."""

    n: int
    d: int = 384
    k: int = 15
    t: int = 1000


STAGES = ("knn", "graph", "cluster", "tags")
_MB = 1024**2


def _peak_rss() -> int:
    """This process's peak RSS (``VmHWM``).

    Unlike ``ru_maxrss``, it is not inherited from the parent through fork and exec.
    """
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_now() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_inputs(shape: Shape, folder: Path) -> None:
    """Vectors and seed tags for ``shape`` (skipped when already there)."""
    import pandas as pd

    from benchmarks.graph import mixture

    if (folder / "tags.parquet").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    n = shape.n
    x, labels = mixture(n, d=shape.d, seed=0)
    np.save(folder / "vectors.npy", x)
    g = np.random.default_rng(1)
    tagged = np.flatnonzero(g.random(n) < TAGGED)
    per_topic = shape.t // 200
    rows = [
        (f"i{i}", f"t{labels[i] * per_topic + j}")
        for i in tagged
        for j in g.choice(per_topic, TAGS_PER_ITEM, replace=False)
    ]
    pd.DataFrame(rows, columns=["id", "tag"]).to_parquet(folder / "tags.parquet")


def run_stage(stage: str, folder: Path, k: int) -> dict[str, Any]:
    """Run one stage on the inputs in ``folder`` (in this process); return its figures.

    The process first imports what a pipeline process has loaded by the kNN stage (pandas,
    pyarrow, scikit-learn, igraph and ccgraph's stages), and holds one copy of the embeddings.
    """
    import igraph  # noqa: F401
    import pandas as pd
    import pyarrow.parquet  # noqa: F401
    import sklearn.isotonic  # noqa: F401

    import ccgraph.pipeline  # noqa: F401
    from ccgraph.cluster import leiden_levels
    from ccgraph.containers import Embeddings, TagSet
    from ccgraph.graph import build_knn_graph
    from ccgraph.graph.knn import knn_search
    from ccgraph.io import load_graph, save_graph
    from ccgraph.propagate import spread_tags

    vectors = np.load(folder / "vectors.npy")
    n = len(vectors)
    ids = np.array([f"i{i}" for i in range(n)])
    emb = Embeddings(vectors, ids, "dense", {})  # no copy: one set of vectors, as in a run
    del vectors
    before = _rss_now()
    start = time.perf_counter()
    if stage == "knn":
        idx, dist = knn_search(emb, k=k, backend="auto", rng=0)
        np.save(folder / "knn_idx.npy", idx)
        np.save(folder / "knn_dist.npy", dist)
    elif stage == "graph":
        knn = (np.load(folder / "knn_idx.npy"), np.load(folder / "knn_dist.npy"))
        before = _rss_now()
        graph = build_knn_graph(emb, k=k, rng=0, knn=knn)
        save_graph(graph, folder / "graph.npz")
    elif stage == "cluster":
        graph = load_graph(folder / "graph.npz")
        before = _rss_now()
        leiden_levels(graph, resolutions=(0.25, 1.0, 4.0), rng=0)
    elif stage == "tags":
        graph = load_graph(folder / "graph.npz")
        seeds = TagSet.from_frame(pd.read_parquet(folder / "tags.parquet"), ids)
        before = _rss_now()
        spread_tags(graph, seeds, top_k=10, calibrator="auto", rng=0)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    return {
        "seconds": time.perf_counter() - start,
        "peak_mb": _peak_rss() / _MB,
        "before_mb": before / _MB,
    }


def measure(shape: Shape, folder: Path) -> dict[str, dict[str, Any]]:
    """Each stage's figures at ``shape``, every stage in a fresh subprocess."""
    out_file = folder / "measured.json"
    done = json.loads(out_file.read_text()) if out_file.exists() else {}
    make_inputs(shape, folder)
    for stage in STAGES:
        if stage in done:
            continue
        proc = subprocess.run(
            [sys.executable, __file__, "--stage", stage, "--dir", str(folder), "--k", str(shape.k)],
            capture_output=True,
            text=True,
            check=True,
        )
        done[stage] = json.loads(proc.stdout.strip().splitlines()[-1])
        out_file.write_text(json.dumps(done, indent=2))
        sys.stderr.write(f"{shape} {stage}: {done[stage]}\n")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument(
        "--check",
        type=int,
        nargs=4,
        default=[30_000, 128, 30, 600],
        metavar=("N", "D", "K", "T"),
        help="an out-of-sample point the constants were not fitted on (0 0 0 0: none)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="folder for inputs and results")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        sys.stdout.write(json.dumps(run_stage(args.stage, args.dir, args.k)) + "\n")
        return

    from ccgraph._memory import estimate_run
    from ccgraph.graph.knn import AUTO_EXACT_MAX_N, choose_backend
    from ccgraph.io import load_graph

    root = args.keep or Path(tempfile.mkdtemp(prefix="ccgraph-memory-"))
    shapes = [Shape(n) for n in args.sizes]
    if args.check[0]:
        shapes.append(Shape(*args.check))
    rows = []
    for shape in shapes:
        default = shape[1:] == Shape(0)[1:]
        folder = root / (f"n{shape.n}" if default else "n{}-d{}-k{}-t{}".format(*shape))
        measured = measure(shape, folder)
        # as in the pipeline: knn and graph are estimated before the graph exists, the later
        # stages with its edge count
        sizes = dict(n=shape.n, d=shape.d, k=shape.k, t=shape.t, backend="auto")
        edges = load_graph(folder / "graph.npz").n_edges
        estimates = {e.stage: e.bytes / _MB for e in estimate_run(**sizes)}
        estimates |= {
            e.stage: e.bytes / _MB
            for e in estimate_run(**sizes, n_edges=edges)
            if e.stage in ("cluster", "tags")
        }
        for stage in STAGES:
            m = measured[stage]
            est = estimates[stage]
            rows.append(
                [
                    f"{shape.n:,}"
                    + ("" if default else f" (d={shape.d}, k={shape.k}, {shape.t} tags)"),
                    f"knn ({choose_backend(shape.n, 'cosine')})" if stage == "knn" else stage,
                    round(m["seconds"], 1),
                    round(m["before_mb"]),
                    round(m["peak_mb"]),
                    round(est),
                    round(est / m["peak_mb"], 2),
                ]
            )
    headers = [
        "items",
        "stage",
        "wall s",
        "RSS before stage (MB)",
        "measured peak (MB)",
        "estimate (MB)",
        "estimate / measured",
    ]
    ratios = [r[-1] for r in rows]
    body = (
        "d=384, k=15, 1,000 tags (5 per topic) on 10% of the items (3 each), unless the row "
        "says otherwise; the last rows are an out-of-sample check (the constants in "
        "`ccgraph._memory` were fitted on the others). Backend `auto` (exact up to "
        f"{AUTO_EXACT_MAX_N:,} dense items, the cells backend above; each knn row names the "
        "backend it ran); each stage in a fresh process that imported what a pipeline "
        "process has and holds one copy of the embeddings (and the kNN lists or the graph), "
        "as the pipeline does. Peak = `VmHWM` of that process; the estimate is "
        "`ccgraph._memory.estimate_run` (whole-process peak, which `execution.memory_limit_gb` "
        "or the free memory is checked against before the stage starts; the cluster and tag "
        "estimates use the graph's edge count, as in a run). Acceptance: every ratio within "
        f"0.5-2; here {min(ratios)}-{max(ratios)}.\n\n" + markdown_table(headers, rows)
    )
    write_section(
        "memory", "Memory guard: estimated vs measured peak", body, "python benchmarks/memory.py"
    )


if __name__ == "__main__":
    main()
