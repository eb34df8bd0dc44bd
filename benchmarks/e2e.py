"""End-to-end benchmark: the real pipeline on synthetic catalogs of 10k, 100k and 1M items.

Each catalog is a mixture of 1,000 clusters on the unit sphere in d=384 (cluster centres in a
random 32-dimensional subspace plus Gaussian spread inside it and a little isotropic noise,
normalised; cluster sizes vary log-normally and items come in random order), written as a
Parquet catalog (``id``, ``title``, ``tags`` list, ``views``, ``provider``) and the vectors as
a float32 ``.npy`` in catalog row order. Tags: a vocabulary of 1,000 inferable tags with
power-law use; every cluster has three home tags (its own and two drawn by popularity), 10 % of
items carry 1-5 tags, mostly their cluster's home tags; 5 % carry a view count.

Each size runs ``ccgraph run CONFIG`` (text embedding off, precomputed vectors) in a fresh
subprocess, so process start, imports, numba compilation and I/O all count. The table shows the
stage times from the run's manifest, the child's wall time and peak RSS (``os.wait4``), and the
kNN recall@15 on 1,000 sampled queries against an exact search (measured afterwards in another
process that repeats the pipeline's search with the same backend and seed). Scaling exponents
``b`` in ``t = a N^b`` are fitted per stage over the sizes. ``--fit`` stores the coefficients
that ``ccgraph estimate`` uses, fitted on the sizes given to ``--fit``.

Usage::

    python benchmarks/e2e.py                               # 10k, 100k, 1M
    python benchmarks/e2e.py --sizes 10000 100000 300000 1000000 --fit 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from benchmarks._common import markdown_table, write_section  # noqa: E402

D = 384
K = 15
N_CLUSTERS = 1000
N_TAGS = 1000
LATENT = 32
N_QUERIES = 1000
SYLLABLES = [a + b for a in "bdfgklmnprstvz" for b in "aeiou"]


# ----------------------------------------------------------------------------- data


def tag_names(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct pronounceable words of 2-3 syllables."""
    g = np.random.default_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = int(g.integers(2, 4))
        w = "".join(SYLLABLES[int(i)] for i in g.integers(0, len(SYLLABLES), size=k))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def make_catalog(n: int, folder: Path, *, seed: int = 0) -> Path:
    """Write ``catalog.parquet``, ``vectors.npy``, ``labels.npy`` and ``config.yaml``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    cfg_path = folder / "config.yaml"
    if (folder / "catalog.parquet").exists() and (folder / "vectors.npy").exists():
        _write_config(cfg_path)
        return cfg_path
    g = np.random.default_rng(seed)
    sizes = g.lognormal(0.0, 0.5, size=N_CLUSTERS)
    labels = g.choice(N_CLUSTERS, size=n, p=sizes / sizes.sum())
    basis = np.linalg.qr(g.normal(size=(D, LATENT)))[0].astype(np.float32)
    centres = g.normal(size=(N_CLUSTERS, LATENT)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vec = np.lib.format.open_memmap(
        folder / "vectors.npy.tmp", mode="w+", dtype=np.float32, shape=(n, D)
    )
    spread, noise = 0.9, 0.05
    for s in range(0, n, 65536):
        e = min(n, s + 65536)
        z = centres[labels[s:e]] + g.standard_normal((e - s, LATENT), dtype=np.float32) * (
            spread / np.sqrt(LATENT)
        )
        blk = z @ basis.T + g.standard_normal((e - s, D), dtype=np.float32) * (noise / np.sqrt(D))
        blk /= np.linalg.norm(blk, axis=1, keepdims=True)
        vec[s:e] = blk
    vec.flush()
    del vec
    os.replace(folder / "vectors.npy.tmp", folder / "vectors.npy")
    np.save(folder / "labels.npy", labels.astype(np.int32))

    # Tags: Zipf popularity; cluster c's home tags are tag c and two popular ones.
    names = np.array(tag_names(N_TAGS))
    pop = 1.0 / np.arange(1, N_TAGS + 1)
    pop /= pop.sum()
    perm = g.permutation(N_TAGS)  # which tag is the c-th cluster's own tag
    home = np.column_stack([perm, g.choice(N_TAGS, size=(N_CLUSTERS, 2), p=pop)])
    tagged = np.flatnonzero(g.random(n) < 0.10)
    n_tags = g.integers(1, 6, size=len(tagged))
    owner = np.repeat(tagged, n_tags)
    from_home = g.random(len(owner)) < 0.8
    tag_of = np.where(
        from_home,
        home[labels[owner], g.integers(0, 3, size=len(owner))],
        g.choice(N_TAGS, size=len(owner), p=pop),
    )
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.add.at(offsets, owner + 1, 1)
    offsets = np.cumsum(offsets)
    # dedupe within an item is left to the reader (repeated tags in a row are legal input)
    tag_list = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(names[tag_of]))
    has_views = g.random(n) < 0.05
    base = g.lognormal(3.0, 1.0, size=N_CLUSTERS)
    views = np.where(has_views, np.round(base[labels] * g.lognormal(0, 0.7, size=n)), np.nan)
    providers = np.array(["flickr", "wikimedia", "smithsonian"])
    words = names[home[labels, 0]]
    title = np.char.add(np.char.add(words.astype(str), " photo "), np.arange(n).astype(str))
    ids = np.char.add("it", np.char.zfill(np.arange(n).astype(str), 8))
    table = pa.table(
        {
            "id": pa.array(ids),
            "title": pa.array(title),
            "tags": tag_list,
            "views": pa.array(views, mask=~has_views),
            "provider": pa.array(providers[g.integers(0, 3, size=n)]),
        }
    )
    pq.write_table(table, folder / "catalog.parquet")
    _write_config(cfg_path)
    return cfg_path


def _write_config(cfg_path: Path) -> None:
    cfg_path.write_text(
        """data:
  path: catalog.parquet
  format: table
  columns: {id: id, title: title, tags: tags, popularity: views, provider: provider}
embed:
  text: {enabled: false}
  precomputed: {path: vectors.npy}
graph: {k: 15, backend: cells}
cluster: {n_iterations: 2}
propagate: {tags: {solver: pruned}}
output: {dir: run}
seed: 0
"""
    )


# ----------------------------------------------------------------------------- runs

#: Stages timed in the run's manifest; ``rest`` is the wall time outside them: interpreter
#: start, imports, config, assembling and writing the run directory, process exit.
STAGES = ("read", "embed", "graph", "duplicates", "cluster", "describe", "tags", "popularity")


def run_pipeline(cfg: Path, out: Path, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """``ccgraph run`` in a fresh process: wall, CPU, peak RSS (``wait4``) and the manifest."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.parent / f".{out.name}.cache", ignore_errors=True)  # no checkpoints
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "ccgraph.cli", "run", str(cfg), "--out", str(out), "-q"]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-5000:]
            raise RuntimeError(f"ccgraph run failed ({proc.returncode}):\n{tail}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "manifest": manifest,
    }


def knn_recall(folder: Path, out: Path, n_queries: int = N_QUERIES) -> float:
    """Recall@15 of the run's kNN lists (its checkpoint) against exact search, sampled."""
    ckpt = sorted((out.parent / f".{out.name}.cache" / "checkpoints").glob("knn-*.npz"))
    if not ckpt:
        return float("nan")
    lists = np.load(ckpt[-1])
    key = next(f for f in lists.files if f.endswith("__indices"))
    approx = lists[key]
    vec = np.load(folder / "vectors.npy", mmap_mode="r")
    n = vec.shape[0]
    g = np.random.default_rng(1)
    queries = np.sort(g.choice(n, size=min(n_queries, n), replace=False))
    q = np.asarray(vec[queries])
    best_s = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), K), -1, dtype=np.int64)
    for s in range(0, n, 65536):
        block = np.asarray(vec[s : s + 65536])
        sim = q @ block.T
        rows = np.flatnonzero((queries >= s) & (queries < s + len(block)))
        sim[rows, queries[rows] - s] = -np.inf  # self
        cand_s = np.concatenate([best_s, sim], axis=1)
        cand_i = np.concatenate(
            [best_i, np.broadcast_to(np.arange(s, s + len(block)), sim.shape)], axis=1
        )
        top = np.argpartition(-cand_s, K - 1, axis=1)[:, :K]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_i = np.take_along_axis(cand_i, top, axis=1)
    hits = [len(set(best_i[r]) & set(approx[i, :K].tolist())) for r, i in enumerate(queries)]
    return float(np.sum(hits) / (K * len(queries)))


def stage_times(manifest: dict[str, Any], wall: float) -> dict[str, float]:
    t = manifest["timings_s"]
    out = {s: float(t.get(s, 0.0)) for s in STAGES}
    out["rest"] = max(0.0, wall - sum(out.values()))
    return out


def fit_power(sizes: list[int], times: list[float]) -> tuple[float, float]:
    """``(a, b)`` of ``t = a (N / 1e5) ** b`` by least squares on logs."""
    x = np.log(np.asarray(sizes, dtype=float) / 1e5)
    y = np.log(np.maximum(np.asarray(times, dtype=float), 1e-3))
    if len(x) == 1:
        return float(np.exp(y[0])), 1.0
    b, loga = np.polyfit(x, y, 1)
    return float(np.exp(loga)), float(b)


def fit_model(results: dict[int, dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """The ``ccgraph estimate`` model from the runs at ``sizes``.

    Per stage ``t = a (N / 1e5) ** b`` with ``b >= 1``: every stage does at least linear work,
    and a smaller exponent between two sizes only shows fixed costs being amortised. Peak
    memory: ``m0 + m1 N`` by least squares.
    """
    stages = {}
    for s in (*STAGES, "rest"):
        times = [results[n]["stages"][s] for n in sizes]
        a, b = fit_power(sizes, times)
        if b < 1.0:  # refit a with b = 1 through the largest size
            b = 1.0
            a = times[-1] / (sizes[-1] / 1e5)
        stages[s] = {"a": round(a, 6), "b": round(b, 4)}
    n_arr = np.asarray(sizes, dtype=float)
    rss = np.asarray([results[n]["peak_rss_mb"] for n in sizes])
    m1, m0 = np.polyfit(n_arr, rss, 1) if len(sizes) > 1 else (0.0, float(rss[0]))
    return {
        "fitted_on": sizes,
        "shape": {"d": D, "k": K, "n_tags": N_TAGS},
        "config": {"graph.backend": "cells", "cluster.n_iterations": 2, "tags.solver": "pruned"},
        "stages": stages,
        "memory": {"m0_mb": round(float(m0), 1), "m1_mb_per_item": float(m1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--fit", type=int, nargs="+", default=None, help="fit `ccgraph estimate` on these sizes"
    )
    parser.add_argument("--cold", action="store_true", help="also time the smallest size "
                        "with an empty numba cache (first run after installation)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ccgraph-e2e"))
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes) | set(args.fit or []))
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        folder = args.workdir / f"n{n}"
        cfg = make_catalog(n, folder)
        res = run_pipeline(cfg, folder / "run")
        st = stage_times(res["manifest"], res["wall_s"])
        res["stages"] = st
        res["recall"] = knn_recall(folder, folder / "run")
        res["load"] = os.getloadavg()[0]
        results[n] = res
        print(
            f"{n}: wall {res['wall_s']:.1f} s, peak {res['peak_rss_mb']:.0f} MB, "
            f"recall {res['recall']:.3f}, load {res['load']:.1f}; {st}",
            flush=True,
        )
    cold = None
    if args.cold:
        n = sizes[0]
        with tempfile.TemporaryDirectory() as cache:
            folder = args.workdir / f"n{n}"
            cold = run_pipeline(folder / "config.yaml", folder / "run-cold",
                                {"NUMBA_CACHE_DIR": cache})  # fmt: skip
        print(f"{n} cold: wall {cold['wall_s']:.1f} s", flush=True)

    head = ["items", "wall s", "peak RSS MB", "recall@15", *STAGES, "rest", "load"]
    rows = []
    for n in sizes:
        r = results[n]
        rows.append(
            [f"{n:,}", r["wall_s"], r["peak_rss_mb"], r["recall"],
             *[r["stages"][s] for s in (*STAGES, "rest")], r["load"]]
        )  # fmt: skip
    body = [
        "Synthetic catalogs (1,000-cluster mixture on the unit sphere, d=384; 1,000 power-law "
        "tags on 10 % of the items; views on 5 %) through `ccgraph run` in a fresh process "
        "from precomputed vectors: wall time and peak RSS of that process (`wait4`), so "
        "interpreter start, imports, numba cache loading and all I/O count. The config pins "
        "the algorithms `auto` picks at a million items (`graph.backend: cells`, "
        "`cluster.n_iterations: 2`, `propagate.tags.solver: pruned`) so that one scaling law "
        "per stage holds over all sizes. Recall@15: 1,000 sampled queries against exact "
        "search. `rest` = wall minus the timed stages: process start, imports, config, assembling "
        "and writing the run directory, exit. `load` = "
        "the machine's 1-minute load average after the run (2 cores).",
        "",
        markdown_table(head, rows),
    ]
    if cold is not None:
        body += [
            "",
            f"First run after installation (empty numba cache, {sizes[0]:,} items): "
            f"{cold['wall_s']:.1f} s wall against {results[sizes[0]]['wall_s']:.1f} s with the "
            "cache; the difference is the one-off compilation of the cells and spreading "
            "kernels.",
        ]
    if len(sizes) >= 2:
        exp_rows = [[s, round(fit_power(sizes, [results[n]["stages"][s] for n in sizes])[1], 2)]
                    for s in (*STAGES, "rest")]  # fmt: skip
        exp_rows.append(
            ["total wall", round(fit_power(sizes, [results[n]["wall_s"] for n in sizes])[1], 2)]
        )
        body += ["", "### Scaling exponents", "",
                 f"`b` in `t = a N^b`, least squares over {', '.join(f'{n:,}' for n in sizes)}:",
                 "", markdown_table(["stage", "b"], exp_rows)]  # fmt: skip
    if args.fit:
        from ccgraph.estimate import estimate

        model = fit_model(results, sorted(args.fit))
        (REPO / "src" / "ccgraph" / "_scaling.json").write_text(json.dumps(model, indent=2) + "\n")
        pred_rows = []
        for n in sizes:
            e = estimate(n, model=model, available_gb=24.0)
            r = results[n]
            pred_rows.append(
                [f"{n:,}", "fit" if n in args.fit else "held out", e.total_s, r["wall_s"],
                 f"{100 * (e.total_s / r['wall_s'] - 1):+.0f} %", e.peak_gb * 1024,
                 r["peak_rss_mb"], f"{100 * (e.peak_gb * 1024 / r['peak_rss_mb'] - 1):+.0f} %"]
            )  # fmt: skip
        body += ["", "### `ccgraph estimate` against the runs", "",
                 f"Fitted on {', '.join(f'{n:,}' for n in sorted(args.fit))} items only "
                 "(`src/ccgraph/_scaling.json`):", "",
                 markdown_table(["items", "", "predicted s", "measured s", "error",
                                 "predicted MB", "measured MB", "error"], pred_rows)]  # fmt: skip
    text = "\n".join(body)
    if args.no_write:
        print(text)
    else:
        cmd = "python benchmarks/e2e.py " + " ".join(
            ["--sizes", *map(str, args.sizes)]
            + (["--fit", *map(str, args.fit)] if args.fit else [])
            + (["--cold"] if args.cold else [])
        )
        write_section("e2e", "End to end on one machine (issue 12)", text, cmd)


if __name__ == "__main__":
    main()
