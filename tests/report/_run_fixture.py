"""Build small run directories for the report tests and benchmark.

``build_flickr_run`` makes a REAL run directory from the shared Flickr8k images: pixel-feature
kNN graph, k-means clusters at two levels, a real Leiden resolution sweep of that graph (igraph),
caption-derived tags (content words used in >= 2 of an image's 5 captions; every third image is
left untagged), neighbour-vote inferred tags, cluster descriptions and a small held-out-tag
evaluation. It stands in for a pipeline run until the pipeline lands.

``build_synthetic_run`` makes a URL-only run (no image files) from seeded blobs.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

STOP = set(
    """a an the and or of in on at to with by for from into onto is are was were be being been
    it its his her their there this that these those as while some two three four one other
    another near over under up down out off front next behind through across his hers he she they
    them who what which very big small large little young old man men woman women person people
    boy girl child children kid kids group wearing something looking look looks has have stand
    stands standing sits sitting walks walking runs running plays playing each other""".split()
)


def caption_tags(captions: pd.DataFrame, *, min_captions: int = 2) -> dict[str, list[str]]:
    """image -> content words used in >= ``min_captions`` of its captions (most used first)."""
    out: dict[str, list[str]] = {}
    for image, grp in captions.groupby("image", sort=False):
        counts: dict[str, int] = {}
        for cap in grp["caption"].astype(str):
            for w in set(re.findall(r"[a-z]+", cap.lower())):
                if len(w) > 2 and w not in STOP:
                    counts[w] = counts.get(w, 0) + 1
        words = sorted(
            (w for w, c in counts.items() if c >= min_captions), key=lambda w: (-counts[w], w)
        )
        out[str(image)] = words
    return out


def pixel_features(paths: list[Path], side: int = 8) -> np.ndarray:
    """Mean-centred, unit-norm ``side x side`` RGB thumbnails of the images."""
    from PIL import Image

    rows = []
    for p in paths:
        with Image.open(p) as im:
            im.draft("RGB", (side * 4, side * 4))
            v = np.asarray(im.convert("RGB").resize((side, side)), dtype=np.float64).ravel()
        v -= v.mean()
        rows.append(v / (np.linalg.norm(v) or 1.0))
    return np.vstack(rows)


def knn_graph(x: np.ndarray, k: int = 6) -> sp.csr_matrix:
    """Symmetric kNN graph (union), weights (1 + cosine) / 2, zero diagonal."""
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    nn = np.argsort(-s, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(x)), k)
    w = (1 + s[rows, nn.ravel()]) / 2
    a = sp.csr_matrix((w, (rows, nn.ravel())), shape=(len(x), len(x)))
    a = a.maximum(a.T).tocsr()
    a.sort_indices()
    return a.astype(np.float32)


def _kmeans(x: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    lab = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(x)
    order = np.argsort(-np.bincount(lab), kind="stable")
    return np.argsort(order)[lab]


def _describe(a: sp.csr_matrix, lab: np.ndarray, ids, tags: dict[str, list[str]], level: int):
    rows = []
    deg = np.asarray(a.sum(axis=1)).ravel()
    total = deg.sum()
    for c in np.unique(lab):
        m = np.flatnonzero(lab == c)
        sub = a[m][:, m]
        inner = np.asarray(sub.sum(axis=1)).ravel()
        vol = deg[m].sum()
        cut = vol - inner.sum()
        counts: dict[str, int] = {}
        for i in m:
            for t in tags.get(ids[i], []):
                counts[t] = counts.get(t, 0) + 1
        top = sorted(counts, key=lambda t: (-counts[t], t))[:10]
        reps = m[np.argsort(-inner, kind="stable")[:5]]
        rows.append(
            {
                "level": level,
                "cluster": int(c),
                "size": len(m),
                "label": " / ".join(top[:3]) or f"cluster {c}",
                "top_tags": top,
                "top_tag_scores": [counts[t] / len(m) for t in top],
                "representative_ids": [ids[i] for i in reps],
                "density": sub.nnz / max(len(m) * (len(m) - 1), 1),
                "conductance": cut / max(min(vol, total - vol), 1e-12),
            }
        )
    return rows


def _vote(a: sp.csr_matrix, seeds: dict[int, list[str]], rows, top: int = 5):
    out = {}
    for i in rows:
        lo, hi = a.indptr[i], a.indptr[i + 1]
        score: dict[str, float] = {}
        total = 0.0
        for j, w in zip(a.indices[lo:hi], a.data[lo:hi], strict=True):
            if j in seeds:
                total += w
                for t in seeds[j]:
                    score[t] = score.get(t, 0.0) + float(w)
        ranked = sorted(score, key=lambda t: (-score[t], t))[:top]
        out[i] = [(t, score[t] / total) for t in ranked]
    return out


def _sweep(a: sp.csr_matrix) -> list[dict]:
    import igraph as ig

    coo = sp.triu(a, k=1).tocoo()
    g = ig.Graph(n=a.shape[0], edges=list(zip(coo.row.tolist(), coo.col.tolist(), strict=True)))
    w = coo.data.astype(float).tolist()
    out = []
    for r in (0.25, 0.5, 1.0, 2.0, 4.0):
        part = g.community_leiden(
            objective_function="modularity", weights=w, resolution=r, n_iterations=-1
        )
        out.append(
            {
                "resolution": r,
                "n_clusters": len(part),
                "quality": g.modularity(part.membership, weights=w),
            }
        )
    return out


def _save_graph(path: Path, a: sp.csr_matrix, ids) -> None:
    """Write ``graph.npz`` as the run directory stores it (CSR arrays, shape, ids)."""
    np.savez(
        path,
        data=a.data,
        indices=a.indices,
        indptr=a.indptr,
        shape=np.array(a.shape),
        ids=np.array(ids),
    )


def build_flickr_run(data: Path, out: Path, *, n: int = 60, k: int = 6) -> Path:
    """A real run directory over the first ``n`` Flickr8k images (sorted by file name)."""
    t0 = time.perf_counter()
    paths = sorted((data / "images").glob("*.jpg"))[:n]
    ids = [p.stem for p in paths]
    caps = pd.read_csv(data / "captions.txt")
    caps = caps[caps["image"].isin({p.name for p in paths})]
    words = {Path(k_).stem: v for k_, v in caption_tags(caps).items()}
    first = caps.groupby("image", sort=False)["caption"].first()
    t_read = time.perf_counter()
    x = pixel_features(paths)
    t_embed = time.perf_counter()
    a = knn_graph(x, k=k)
    t_graph = time.perf_counter()
    l0 = _kmeans(x, 3)
    l1 = _kmeans(x, max(4, n // 12))
    sweep = _sweep(a)
    t_cluster = time.perf_counter()
    tagged = {i: words.get(ids[i], []) for i in range(n) if i % 3 != 0 and words.get(ids[i])}
    inferred = _vote(a, tagged, range(n))
    t_tags = time.perf_counter()

    out.mkdir(parents=True, exist_ok=True)
    deg = np.diff(a.indptr)
    rows = np.repeat(np.arange(n), deg)
    inside = l1[a.indices] == l1[rows]
    tot = np.bincount(rows, weights=a.data, minlength=n)
    strength = np.bincount(rows, weights=a.data * inside, minlength=n) / np.where(tot > 0, tot, 1)
    items = pd.DataFrame(
        {
            "id": pd.array(ids, dtype="string"),
            "cluster": l1.astype(np.int64),
            "cluster_l0": l0.astype(np.int64),
            "cluster_l1": l1.astype(np.int64),
            "cluster_strength": strength.astype(np.float32),
            "duplicate_group": np.arange(n, dtype=np.int64),
            "is_canonical": np.ones(n, bool),
            "popularity_observed": np.full(n, np.nan),
            "popularity": np.full(n, np.nan),
            "popularity_source": pd.array(["none"] * n, dtype="string"),
            "popularity_confidence": np.full(n, np.nan),
            "degree": deg.astype(np.int64),
            "title": [str(first.get(p.name, "")).strip(" .") for p in paths],
            "provider": "flickr8k",
            "license": "research only",
            "url": "",
            "image_path": [str(p) for p in paths],
        }
    )
    items.to_parquet(out / "items.parquet", index=False)
    trows = []
    for i, ts in tagged.items():
        trows += [
            {
                "id": ids[i],
                "tag": t,
                "score": 1.0,
                "confidence": 1.0,
                "rank": None,
                "source": "observed",
                "origin": "user",
                "tag_raw": t,
            }
            for t in ts
        ]
    for i, pairs in inferred.items():
        have = set(tagged.get(i, []))
        pairs = [(t, c) for t, c in pairs if t not in have]
        trows += [
            {
                "id": ids[i],
                "tag": t,
                "score": c,
                "confidence": c,
                "rank": r + 1,
                "source": "inferred",
                "origin": None,
                "tag_raw": None,
            }
            for r, (t, c) in enumerate(pairs)
        ]
    tags = pd.DataFrame(trows)
    tags["rank"] = tags["rank"].astype("Int64")
    tags.to_parquet(out / "tags.parquet", index=False)
    seeds_by_id = {ids[i]: v for i, v in tagged.items()}
    clusters = pd.DataFrame(
        _describe(a, l0, ids, seeds_by_id, 0) + _describe(a, l1, ids, seeds_by_id, 1)
    )
    clusters.to_parquet(out / "clusters.parquet", index=False)
    pd.DataFrame(
        {
            "file": pd.Series([], dtype="string"),
            "row": pd.Series([], dtype="Int64"),
            "id": pd.Series([], dtype="string"),
            "stage": pd.Series([], dtype="string"),
            "reason": pd.Series([], dtype="string"),
        }
    ).to_parquet(out / "rejects.parquet", index=False)
    _save_graph(out / "graph.npz", a, ids)
    _evaluate(a, tagged, words, ids, out / "evaluation")
    t_end = time.perf_counter()
    manifest = {
        "schema_version": 1,
        "ccgraph_version": "0.1.0",
        "created": "fixture",
        "seed": 0,
        "config": {
            "data": {"path": str(data), "format": "table"},
            "graph": {"k": k},
            "cluster": {"resolutions": [0.25, 1.0]},
        },
        "timings_s": {
            "read": t_read - t0,
            "embed": t_embed - t_read,
            "graph": t_graph - t_embed,
            "cluster": t_cluster - t_graph,
            "tags": t_tags - t_cluster,
            "write": t_end - t_tags,
        },
        "counts": {
            "items": n,
            "rejects": 0,
            "edges": int(a.nnz // 2),
            "clusters": int(l1.max() + 1),
            "clusters_per_level": [3, int(l1.max() + 1)],
            "default_level": 1,
            "tagged_items": len(tagged),
            "inferred_tags": int((tags["source"] == "inferred").sum()),
        },
        "stages": {"cluster": {"default_level": 1, "sweep": sweep}},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def _evaluate(a, tagged, words, ids, folder: Path) -> None:
    """Hide the tags of every 4th tagged item; score neighbour voting and the global prior."""
    items = sorted(tagged)
    hidden = items[::4]
    seeds = {i: v for i, v in tagged.items() if i not in hidden}
    vote = _vote(a, seeds, hidden)
    freq: dict[str, int] = {}
    for v in seeds.values():
        for t in v:
            freq[t] = freq.get(t, 0) + 1
    prior = sorted(freq, key=lambda t: (-freq[t], t))[:5]

    def p_at(pred: list[str], truth: list[str], k: int) -> float:
        return sum(t in truth for t in pred[:k]) / k

    res = {}
    for name, preds in (
        ("neighbour vote", {i: [t for t, _ in vote[i]] for i in hidden}),
        ("global prior", dict.fromkeys(hidden, prior)),
    ):
        res[name] = {
            f"precision@{k}": float(np.mean([p_at(preds[i], tagged[i], k) for i in hidden]))
            for k in (1, 5)
        }
    folder.mkdir(exist_ok=True)
    metrics = {"protocol": "items", "hidden_items": len(hidden), "methods": res}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    lines = [
        "# Held-out tags",
        "",
        f"Tags of {len(hidden)} items hidden.",
        "",
        "| method | P@1 | P@5 |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {m} | {v['precision@1']:.3f} | {v['precision@5']:.3f} |" for m, v in res.items()]
    (folder / "evaluation.md").write_text("\n".join(lines) + "\n")


def build_synthetic_run(out: Path, *, n: int = 120, seed: int = 0) -> Path:
    """A URL-only run (no images) from seeded clustered vectors: 4 clusters, untagged items."""
    g = np.random.default_rng(seed)
    centres = g.normal(size=(4, 8))
    lab = np.sort(g.integers(0, 4, n))
    x = centres[lab] + 0.3 * g.normal(size=(n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = knn_graph(x, k=5)
    ids = [f"item{i:04d}" for i in range(n)]
    vocab = ["cat", "dog", "tree", "sea", "car", "sky"]
    tagged = {i: [vocab[lab[i]], vocab[4 + (i % 2)]] for i in range(n) if i % 2}
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "id": ids,
            "cluster": lab,
            "cluster_l0": lab // 2,
            "cluster_l1": lab,
            "degree": np.diff(a.indptr),
            "title": [f"Photo <b>{i}</b> & co" for i in range(n)],
            "provider": "flickr",
            "license": "by",
            "url": [f"https://example.org/{i}" for i in ids],
        }
    ).to_parquet(out / "items.parquet", index=False)
    trows = [
        {"id": ids[i], "tag": t, "source": "observed", "confidence": 1.0}
        for i, ts in tagged.items()
        for t in ts
    ]
    for i, pairs in _vote(a, tagged, range(n)).items():
        trows += [{"id": ids[i], "tag": t, "source": "inferred", "confidence": c} for t, c in pairs]
    pd.DataFrame(trows).to_parquet(out / "tags.parquet", index=False)
    seeds = {ids[i]: v for i, v in tagged.items()}
    pd.DataFrame(
        _describe(a, lab // 2, ids, seeds, 0) + _describe(a, lab, ids, seeds, 1)
    ).to_parquet(out / "clusters.parquet", index=False)
    pd.DataFrame(
        {
            "file": ["cat.csv"] * 3,
            "row": [3, 9, 10],
            "stage": "read",
            "reason": ["missing id", "missing id", "bad url"],
        }
    ).to_parquet(out / "rejects.parquet", index=False)
    _save_graph(out / "graph.npz", a, ids)
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "seed": seed,
                "config": {"cluster": {"resolutions": [0.5, 2.0]}},
                "timings_s": {"read": 0.1, "graph": 0.5},
                "counts": {"items": n, "default_level": 1},
            }
        )
    )
    return out
