"""Incremental update vs full rebuild: speed, kept cluster IDs, agreement with the rebuild.

Two cases, each as base run -> ``update_run`` with a batch -> full rebuild over base + batch
from the same embeddings (every run in a fresh process, so each pays its own imports and JIT):

* synthetic: ``--n`` items (default 100,000) of a 1,000-cluster mixture in 384 dimensions
  (``benchmarks/_update_data.py``) plus ``--new-fraction`` (1 %) new items, 10 % of them from
  clusters the base never saw;
* openverse: the 2023 Openverse sample split into halves by ``created_on``; caption vectors from
  ``ccgraph.embed.embed_text`` (computed once, cached in the work folder).

Run from the repository root: ``python -m benchmarks.update [--n 100000] [--work DIR]``.
Prints the tables and rewrites the ``update`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import REPO, data_dir, markdown_table, write_section


def _call(job: dict[str, Any]) -> tuple[float, float, Any]:
    """One timed call of ``job`` (a run or an update): wall s, CPU s, the result."""
    import ccgraph
    from ccgraph.update import update_run

    out = Path(job["out"])
    shutil.rmtree(out.parent / f".{out.name}.cache", ignore_errors=True)
    # each call writes a new run directory, as `--out` usually names one (deleting the
    # previous call's ~200 MB, which replacing it would do, is not what is timed), after
    # the deletion and the last call's files reach the disk
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    wall, cpu = time.perf_counter(), time.process_time()
    if job["kind"] == "run":
        cfg = ccgraph.load_config(job["config"], job.get("set", []))
        result = ccgraph.run(cfg, out=out)
    else:
        result = update_run(
            job["run_dir"], job["batch"], out=out, overrides=job.get("set", []), overwrite=True
        )
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _child(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in this (fresh) process; report wall and CPU seconds.

    ``{"kind": "alternate", "jobs": [a, b], "rounds": r, "per_round": [i, j]}`` runs ``a``
    and ``b`` once each (warm-up, not counted), then ``r`` rounds of ``i`` calls of ``a`` and
    ``j`` of ``b``, and reports each one's medians: alternating in one process, the two
    share the machine's changes of speed over the minutes the benchmark takes.
    """
    import resource

    if job["kind"] == "alternate":
        jobs, counts = job["jobs"], job.get("per_round", [1, 1])
        times: list[list[tuple[float, float]]] = [[] for _ in jobs]
        for j in jobs:
            _call(j)
        for _ in range(int(job["rounds"])):
            for i, (j, count) in enumerate(zip(jobs, counts, strict=True)):
                for _ in range(count):
                    wall, cpu, _result = _call(j)
                    times[i].append((wall, cpu))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return {
            "results": [
                {
                    "wall_s": float(np.median([w for w, _ in t])),
                    "cpu_s": float(np.median([c for _, c in t])),
                    "walls_s": [w for w, _ in t],
                    "peak_mb": peak,
                }
                for t in times
            ]
        }
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(int(job.get("reps", 1))):  # with reps >= 2 the process is warm from the 2nd
        wall, cpu, result = _call(job)
        walls.append(wall)
        cpus.append(cpu)
    warm = slice(1, None) if len(walls) > 1 else slice(None)  # the median of the warm calls
    return {
        "wall_s": float(np.median(walls[warm])),
        "cpu_s": float(np.median(cpus[warm])),
        "walls_s": walls,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "timings_s": result.manifest.get("timings_s", {}),
    }


def _spawn(job: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    # the previous job's run directory (hundreds of MB) is still being written back to disk:
    # flush it first, so the kernel's writeback does not share the timed job's cores
    os.sync()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.update", "--child", json.dumps(job)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"job {job['kind']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_STAGES = ("load", "read", "embed", "graph", "duplicates", "cluster", "describe", "tags",
           "popularity")  # fmt: skip


def tag_agreement(local: Path, full: Path, new_ids: pd.Index) -> dict[str, float]:
    """Inferred tags of a local update against a full re-spread on the same graph."""
    import ccgraph

    a, b = ccgraph.load_run(local), ccgraph.load_run(full)
    ta, tb = _top1(a.tags), _top1(b.tags)
    both = ta.index.intersection(tb.index)
    nb = both.intersection(new_ids)

    def pairs(t: pd.DataFrame) -> set[tuple[str, str]]:
        inf = t[t["source"] == "inferred"]
        return set(zip(inf["id"].astype(str), inf["tag"].astype(str), strict=True))

    pa, pb = pairs(a.tags), pairs(b.tags)
    return {
        "top1_all": float((ta[both] == tb[both]).mean()),
        "top1_new": float((ta[nb] == tb[nb]).mean()) if len(nb) else float("nan"),
        "pairs": len(pa & pb) / max(1, len(pb)),
        "local_s": float(a.manifest["timings_s"].get("tags", 0.0)),
        "full_s": float(b.manifest["timings_s"].get("tags", 0.0)),
    }


def _top1(tags: pd.DataFrame) -> pd.Series:
    inf = tags[(tags["source"] == "inferred") & (tags["rank"] == 1)]
    return inf.set_index(inf["id"].astype(str))["tag"].astype(str)


def compare(
    base: Path,
    upd: Path,
    full: Path,
    truth: pd.Series | None = None,
    other: Path | None = None,
) -> dict[str, Any]:
    """Kept IDs, agreement with the rebuild (old and new items apart), tags, ground truth.

    ``other``: a second rebuild (another seed); its agreement with ``full`` is the yardstick
    (how much two rebuilds of the same items differ).
    """
    import ccgraph
    from ccgraph.cluster import adjusted_rand_index, match_labels

    b, u, f = (ccgraph.load_run(p) for p in (base, upd, full))
    bi, ui = (x.items.set_index(x.items["id"].astype(str)) for x in (b, u))
    fi = f.items.set_index(f.items["id"].astype(str)).loc[ui.index]
    oi = None
    if other is not None:
        o = ccgraph.load_run(other)
        oi = o.items.set_index(o.items["id"].astype(str)).loc[ui.index]
    old = ui.index.isin(bi.index)
    levels = [c for c in ui.columns if c.startswith("cluster_l")]
    default = int(u.manifest["stages"]["cluster"]["default_level"])
    out: dict[str, Any] = {"levels": [], "default_level": default, "n_old": int(old.sum())}
    for col in levels:
        kept = float((bi.loc[ui.index[old], col].to_numpy() == ui.loc[old, col].to_numpy()).mean())
        cold = adjusted_rand_index(bi.loc[ui.index[old], col], fi.loc[old, col])
        mem, _, _ = match_labels(fi[col].to_numpy(), ui[col].to_numpy())
        row = {
            "level": col,
            "clusters": int(ui[col].nunique()),
            "kept_id": kept,
            "ari_old": adjusted_rand_index(ui.loc[old, col], fi.loc[old, col]),
            "ari_new": adjusted_rand_index(ui.loc[~old, col], fi.loc[~old, col])
            if (~old).sum() > 1
            else float("nan"),
            "ari_all": adjusted_rand_index(ui[col], fi[col]),
            "matched_id": float((mem == ui[col].to_numpy()).mean()),
            "rebuild_vs_base_old": cold,
        }
        if oi is not None:
            row["rebuilds_old"] = adjusted_rand_index(oi.loc[old, col], fi.loc[old, col])
            row["rebuilds_new"] = (
                adjusted_rand_index(oi.loc[~old, col], fi.loc[~old, col])
                if (~old).sum() > 1
                else float("nan")
            )
        if truth is not None:
            t = truth.reindex(ui.index)
            row["truth_update"] = adjusted_rand_index(t, ui[col])
            row["truth_rebuild"] = adjusted_rand_index(t, fi[col])
        out["levels"].append(row)
    tu, tf = _top1(u.tags), _top1(f.tags)
    both = tu.index.intersection(tf.index)
    new_ids = ui.index[~old]
    nb = both.intersection(new_ids)
    out["tag_top1_all"] = float((tu[both] == tf[both]).mean()) if len(both) else float("nan")
    out["tag_top1_new"] = float((tu[nb] == tf[nb]).mean()) if len(nb) else float("nan")
    pu = ui["popularity"].to_numpy(np.float64)
    pf = fi["popularity"].to_numpy(np.float64)
    ok = np.isfinite(pu) & np.isfinite(pf)
    out["popularity_corr"] = float(np.corrcoef(pu[ok], pf[ok])[0, 1]) if ok.sum() > 2 else 0.0
    out["update_stage"] = u.manifest["stages"].get("update", {})
    return out


def _tables(
    title: str,
    times: dict[str, dict[str, Any]],
    cmps: dict[str, dict[str, Any]],
    tags: dict[str, float] | None = None,
) -> str:
    """Markdown: run times, then per rebuild kind and level the agreement figures."""
    t1 = markdown_table(
        ["run", "wall s", "CPU s", "peak MB"],
        [
            [what, f"{t['wall_s']:.1f}", f"{t['cpu_s']:.1f}", f"{t['peak_mb']:.0f}"]
            for what, t in times.items()
        ],
    )
    speed = [
        f"{what}: {t['wall_s'] / times[ref]['wall_s']:.1f}x wall, "
        f"{t['cpu_s'] / times[ref]['cpu_s']:.1f}x CPU"
        for what, t in times.items()
        if "rebuild" in what
        for ref in ["update, warm process" if "warm process" in what else "update"]
        if ref in times
    ]
    stage_rows = [
        [
            what,
            *(f"{t['timings_s'].get(st, 0.0):.1f}" for st in _STAGES),
            f"{t['wall_s'] - sum(t['timings_s'].get(st, 0.0) for st in _STAGES):.1f}",
        ]
        for what, t in times.items()
    ]
    t1 += (
        "\n\nPer stage (wall s, from the manifests; *rest*: the wall time outside them, i.e. "
        "imports and JIT in a fresh process, building the tables and writing the run "
        "directory):\n\n" + markdown_table(["run", *_STAGES, "rest"], stage_rows)
    )
    rows = []
    truth = False
    for kind, cmp in cmps.items():
        for r in cmp["levels"]:
            mark = " (default)" if r["level"] == f"cluster_l{cmp['default_level']}" else ""
            row = [
                kind,
                r["level"] + mark,
                r["clusters"],
                f"{r['kept_id']:.2%}",
                f"{r['ari_old']:.3f}",
                f"{r['ari_new']:.3f}",
                f"{r['matched_id']:.2%}",
                f"{r['rebuild_vs_base_old']:.3f}",
            ]
            row += (
                [f"{r['rebuilds_old']:.3f}", f"{r['rebuilds_new']:.3f}"]
                if "rebuilds_old" in r
                else ["", ""]
            )
            if "truth_update" in r:
                truth = True
                row += [f"{r['truth_update']:.3f}", f"{r['truth_rebuild']:.3f}"]
            rows.append(row)
    head = [
        "compared with",
        "level",
        "clusters",
        "old items keeping their ID",
        "ARI vs rebuild, old items",
        "ARI vs rebuild, new items",
        "same ID after matching",
        "ARI rebuild vs base, old items",
        "ARI rebuild vs rebuild (seed 1), old items",
        "ARI rebuild vs rebuild (seed 1), new items",
    ] + (["ARI vs truth, update", "ARI vs truth, rebuild"] if truth else [])
    t2 = markdown_table(head, rows)
    notes = [
        f"{kind}: top-1 inferred tag equal to the rebuild's for {cmp['tag_top1_all']:.1%} of "
        f"items ({cmp['tag_top1_new']:.1%} of the new items); popularity correlation "
        f"{cmp['popularity_corr']:.3f}."
        for kind, cmp in cmps.items()
    ]
    notes += [
        f"Tags against a full re-spread on the updated graph (`update.tags=full`): top-1 "
        f"inferred tag equal for {t['top1_all']:.2%} of items ({t['top1_new']:.2%} of the new "
        f"items); (item, tag) pairs in common {t['pairs']:.2%}; tag stage {t['local_s']:.1f} s "
        f"local vs {t['full_s']:.1f} s full."
        for t in [tags]
        if t
    ]
    stage = next(iter(cmps.values()))["update_stage"]
    notes.append(
        f"Update: {stage.get('changes', {})}; rebuild recommended: "
        f"{stage.get('rebuild_recommended')}."
    )
    return (
        f"### {title}\n\n{t1}\n\nSpeed-up of the update over the {'; '.join(speed)}.\n\n"
        f"{t2}\n\n" + "\n".join(f"- {x}" for x in notes) + "\n"
    )


def _case(
    folder: Path,
    base_cfg: str,
    full_cfg: str,
    batch: str,
    overrides: list[str],
    truth: pd.Series | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, float]]:
    """Base run (if absent), updates, cold rebuilds (two seeds) and a warm rebuild."""
    times: dict[str, dict[str, Any]] = {}
    base = folder / "run_base"
    for name in ("run_base", "run_full", "run_full_s1", "run_full_warm"):
        # every run from scratch: no checkpoint of an earlier benchmark (or code version)
        shutil.rmtree(folder / f".{name}.cache", ignore_errors=True)
    times["base run"] = _spawn({"kind": "run", "config": str(folder / base_cfg), "out": str(base)})
    job = {"kind": "update", "run_dir": str(base), "batch": str(folder / batch), "set": overrides}
    times["update"] = _spawn({**job, "out": str(folder / "run_update")})
    tag_times = _spawn(
        {**job, "set": [*overrides, "update.tags=full"], "out": str(folder / "run_update_tags")}
    )
    cfg = str(folder / full_cfg)
    times["full rebuild"] = _spawn({"kind": "run", "config": cfg, "out": str(folder / "run_full")})
    # a service that keeps its process (imports, JIT) between daily batches: the median of
    # the calls after the first (section update-scaling alternates the two more carefully)
    times["update, warm process"] = _spawn({**job, "out": str(folder / "run_update_w"), "reps": 4})
    times["full rebuild, warm process"] = _spawn(
        {"kind": "run", "config": cfg, "out": str(folder / "run_full_w"), "reps": 2}
    )
    times["full rebuild, seed 1"] = _spawn(
        {"kind": "run", "config": cfg, "out": str(folder / "run_full_s1"), "set": ["seed=1"]}
    )
    times["full rebuild from the previous clusters"] = _spawn(
        {
            "kind": "run",
            "config": cfg,
            "out": str(folder / "run_full_warm"),
            "set": [f"cluster.previous_run={base}"],
        }
    )
    cmps = {
        "cold rebuild": compare(
            base, folder / "run_update", folder / "run_full", truth, folder / "run_full_s1"
        ),
        "rebuild from the previous clusters": compare(
            base, folder / "run_update", folder / "run_full_warm", truth
        ),
    }
    upd_ids = ccgraph_ids(folder / "run_update")
    new_ids = upd_ids.difference(ccgraph_ids(base))
    tags = tag_agreement(folder / "run_update", folder / "run_update_tags", new_ids)
    tags["update_tags_full_wall_s"] = tag_times["wall_s"]
    (folder / "compare.json").write_text(
        json.dumps({"times": times, "compare": cmps, "tags": tags}, indent=2)
    )
    return times, cmps, tags


def ccgraph_ids(run: Path) -> pd.Index:
    """Item ids of a run directory."""
    return pd.Index(pd.read_parquet(run / "items.parquet", columns=["id"])["id"].astype(str))


def synthetic(work: Path, n: int, new_fraction: float) -> str:
    """Base run, update and rebuilds on the synthetic mixture."""
    from benchmarks._update_data import make_synthetic

    folder = work / f"synthetic-{n}"
    if not (folder / "truth.parquet").exists():
        make_synthetic(folder, n=n, new_fraction=new_fraction)
    truth = pd.read_parquet(folder / "truth.parquet").set_index("id")["truth"]
    overrides = [
        f"embed.precomputed.path={folder / 'new_vectors.npy'}",
        f"embed.precomputed.ids_path={folder / 'new_ids.txt'}",
    ]
    times, cmps, tags = _case(folder, "base.yaml", "full.yaml", "new.csv", overrides, truth)
    return _tables(
        f"Synthetic: {n:,} items, 1,000-cluster mixture (d=384), plus {new_fraction:.0%} new items",
        times,
        cmps,
        tags,
    )


def _openverse_inputs(work: Path) -> Path:
    """Halves of the 2023 Openverse sample by ``created_on``, with cached caption vectors."""
    import ccgraph
    from ccgraph.embed import embed_text
    from ccgraph.embed.text import caption_texts

    folder = work / "openverse"
    folder.mkdir(parents=True, exist_ok=True)
    src = data_dir() / "openverse-samples" / "openverse_api_sample_images_to_clean_2023.csv"
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    order = raw["created_on"].sort_values(kind="stable").index
    half = len(order) // 2
    raw.loc[order[:half]].to_csv(folder / "first.csv", index=False)
    raw.loc[order[half:]].to_csv(folder / "second.csv", index=False)
    raw.loc[order].to_csv(folder / "both.csv", index=False)
    vec_all = folder / "captions.parquet"
    if not vec_all.exists():
        cat = ccgraph.read_catalog(folder / "both.csv", format="openverse")
        texts = caption_texts(cat.items, cat.tags, fields=["title", "description", "tags"])
        emb = embed_text(texts, cat.ids, cache_dir=work / "text-cache")
        pd.DataFrame(
            {"id": emb.ids, "vector": list(np.asarray(emb.vectors, np.float64))}
        ).to_parquet(vec_all)
    vectors = pd.read_parquet(vec_all)
    for name in ("first", "second", "both"):
        cat = ccgraph.read_catalog(folder / f"{name}.csv", format="openverse")
        vectors[vectors["id"].isin(set(cat.ids.tolist()))].to_parquet(
            folder / f"{name}_vectors.parquet"
        )
        cfg = {
            "data": {"path": f"{name}.csv", "format": "openverse", "tags": {"min_count": 2}},
            "embed": {
                "text": {"enabled": False},
                "precomputed": {"path": f"{name}_vectors.parquet"},
            },
            "graph": {"k": 15, "min_degree": 2},
            "cluster": {"resolutions": [0.25, 1.0, 4.0]},
            "propagate": {"tags": {"top_k": 10, "min_confidence": 0.05}},
            "seed": 0,
        }
        (folder / f"{name}.yaml").write_text(json.dumps(cfg))
    return folder


def openverse(work: Path) -> str:
    """Base run on the older half, update with the newer half, rebuilds on both."""
    folder = _openverse_inputs(work)
    overrides = [f"embed.precomputed.path={folder / 'second_vectors.parquet'}"]
    times, cmps, tags = _case(folder, "first.yaml", "both.yaml", "second.csv", overrides, None)
    return _tables(
        "Openverse 2023 sample: older half by `created_on`, then the newer half as one update",
        times,
        cmps,
        tags,
    )


def main() -> None:
    """Parse arguments, run the cases, print and record the tables."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--new-fraction", type=float, default=0.01)
    p.add_argument("--work", type=Path, default=Path("/tmp/ccgraph-bench-update"))
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--skip-openverse", action="store_true")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(_child(json.loads(args.child))) + "\n")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    parts = [
        "Each run is a fresh process (imports, numba JIT and all), but for the rows *warm "
        "process*: the median of the calls after a process's first (3 updates, 1 full "
        "rebuild). *Kept ID*: share of the "
        "base run's items with the same cluster ID after the update. *ARI vs rebuild*: the "
        "update's clusters against a full rebuild over the same items (cold, or started from "
        "the base run's clusters with `cluster.previous_run`), old and new items apart. "
        "*ARI rebuild vs base* is how far the rebuild itself moves the old items: an update "
        "that keeps the old clusters cannot agree with the rebuild better than that (the "
        "rebuild's approximate kNN graph differs from the base's in a few % of its edges, "
        "enough for Leiden to settle elsewhere at the finer levels). *ARI rebuild vs rebuild "
        "(seed 1)* is the yardstick: two full rebuilds of the same items that differ only in "
        "the seed (approximate kNN and Leiden) agree this much, so an update within that "
        "distance of a rebuild is as close as another rebuild would be. New items are searched "
        "with `update.knn_search: auto` (cluster probes at this size), clusters refined with "
        "`update.strategy: local`, tags re-solved with `update.tags: local`.",
        "Load average (1 min) at the start: {start}; at the end: {end} (2 cores).",
    ]
    start = os.getloadavg()[0]
    if not args.skip_synthetic:
        parts.append(synthetic(args.work, args.n, args.new_fraction))
    if not args.skip_openverse:
        parts.append(openverse(args.work))
    parts[1] = parts[1].format(start=f"{start:.1f}", end=f"{os.getloadavg()[0]:.1f}")
    write_section(
        "update",
        "Incremental updates",
        "\n\n".join(parts),
        "python -m benchmarks.update",
    )


if __name__ == "__main__":
    main()
