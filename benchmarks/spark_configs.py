"""Shared-data configs on ``execution.engine: spark`` against the local run of the same config.

python benchmarks/spark_configs.py [--configs configs/openverse-sample.yaml ...]

For each config: the local pipeline and the Spark pipeline (``local[2]``, 4 partitions), then
per cluster level the adjusted Rand index, NMI and the share of items whose cluster is the same
after ID matching (:func:`ccgraph.cluster.match_labels`, 1 - churn), and how much of the graph,
the duplicate groups, the inferred tags and the popularity agree. Writes the ``spark-configs``
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import Timer, data_dir, markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]

#: Data paths of the configs, re-pointed at the shared data directory.
OVERRIDES = {
    "openverse-sample": ["data.path={d}/openverse-samples"],
    "flickr8k-captions": [
        "data.path={d}/flickr8k-1000/captions.txt",
        "data.image_root={d}/flickr8k-1000/images",
    ],
}


def compare(local, spark) -> list[list[object]]:
    from ccgraph.cluster import adjusted_rand_index, match_labels, normalized_mutual_info

    a = local.items.set_index("id")
    b = spark.items.set_index("id").loc[a.index]
    rows: list[list[object]] = []
    for col in sorted(c for c in a.columns if c.startswith("cluster_l")):
        x, y = a[col].to_numpy(np.int64), b[col].to_numpy(np.int64)
        _, churn, _ = match_labels(y, x)
        rows.append([col, f"{adjusted_rand_index(x, y):.4f}", f"{normalized_mutual_info(x, y):.4f}",
                     f"{1 - churn:.4f}", f"{len(np.unique(x))} / {len(np.unique(y))}"])  # fmt: skip
    return rows


def extras(local, spark) -> str:
    from ccgraph.cluster import adjusted_rand_index

    ga, gb = local.graph.adjacency, spark.graph.adjacency
    pa, pb = set(zip(*ga.nonzero(), strict=True)), set(zip(*gb.nonzero(), strict=True))
    a = local.items.set_index("id")
    b = spark.items.set_index("id").loc[a.index]
    dup = adjusted_rand_index(a["duplicate_group"].to_numpy(), b["duplicate_group"].to_numpy())
    notes = [f"edges shared {len(pa & pb) / max(len(pa | pb), 1):.4f} (Jaccard)",
             f"duplicate groups ARI {dup:.4f}"]  # fmt: skip
    pop_a, pop_b = a["popularity"].to_numpy(np.float64), b["popularity"].to_numpy(np.float64)
    both = np.isfinite(pop_a) & np.isfinite(pop_b)
    if both.any():
        notes.append(f"popularity max abs diff {np.abs(pop_a - pop_b)[both].max():.2g}")
    ta, tb = (r.tags[r.tags.source == "inferred"].groupby("id")["tag"].apply(set)
              for r in (local, spark))  # fmt: skip
    if len(ta) or len(tb):
        ids = ta.index.union(tb.index)
        agree = [len(ta.get(i, set()) & tb.get(i, set()))
                 / max(len(ta.get(i, set())), len(tb.get(i, set())), 1) for i in ids]  # fmt: skip
        cal = [r.manifest["stages"].get("tags", {}).get("calibrator") for r in (local, spark)]
        kinds = ["calibrated" if c else "uncalibrated" for c in cal]
        how = f"{kinds[0]} (local) / {kinds[1]} (Spark) confidence"
        inf_a, inf_b = (r.tags[r.tags.source == "inferred"] for r in (local, spark))
        both = inf_a.merge(inf_b, on=["id", "tag"], suffixes=("_a", "_b"))
        diff = np.abs(both["confidence_a"] - both["confidence_b"]).to_numpy()
        notes.append(
            f"inferred tags agree {np.mean(agree):.4f} (mean over the {len(ids)} items with an "
            "inferred tag in either run of |local & Spark| / max(|local|, |Spark|), the tags "
            f"kept in each run by {how} >= `min_confidence`); confidence of the "
            f"{len(both)} shared (item, tag) rows: median abs diff {np.median(diff):.2g}, "
            f"max {diff.max(initial=0.0):.2g}"
        )
        if all(cal):
            n_fit = [c["n_fit"] for c in cal]
            notes.append(f"calibrator held-out rows local {n_fit[0]} / Spark {n_fit[1]}")
    return "; ".join(notes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["configs/openverse-sample.yaml",
                                                     "configs/flickr8k-captions.yaml"])  # fmt: skip
    args = ap.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    import ccgraph
    from ccgraph.config import load_config

    d = data_dir()
    table: list[list[object]] = []
    notes: list[str] = []
    for path in args.configs:
        name = Path(path).stem
        sets = [s.format(d=d) for s in OVERRIDES.get(name, [])]
        out = Path(tempfile.mkdtemp(prefix=f"ccgraph-{name}-"))
        with Timer() as t_local:
            local = ccgraph.run(load_config(ROOT / path, sets), out=out / "local")
        cfg = load_config(ROOT / path, [*sets, "execution.engine=spark",
                                        "execution.spark_partitions=4"])  # fmt: skip
        with Timer() as t_spark:
            spark = ccgraph.run(cfg, out=out / "spark")
        rows = compare(local, spark)
        table += [[name, local.items.shape[0], *r] for r in rows]
        notes.append(f"- `{name}`: local {t_local.seconds:.0f} s, Spark {t_spark.seconds:.0f} s; "
                     + extras(local, spark))  # fmt: skip
        print(
            markdown_table(
                [
                    "config",
                    "items",
                    "level",
                    "ARI",
                    "NMI",
                    "same cluster after ID matching",
                    "clusters local / Spark",
                ],
                table,
            ),
            flush=True,
        )
        print(notes[-1], flush=True)
    body = (
        "Each config run twice, locally and with `--set execution.engine=spark` (`local[2]`, "
        "4 partitions); cluster levels compared item by item (ids matched).\n\n"
        + markdown_table(["config", "items", "level", "ARI", "NMI",
                          "same cluster after ID matching", "clusters local / Spark"], table)
        + "\n\n" + "\n".join(notes)
    )  # fmt: skip
    write_section("spark-configs", "Spark backend on the shared-data configs", body,
                  "python benchmarks/spark_configs.py")  # fmt: skip


if __name__ == "__main__":
    main()
