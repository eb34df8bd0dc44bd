"""The Planetoid protocol inside the harness.

Every method on the fixed Cora / CiteSeer split, accuracy with bootstrap CIs over the 1,000
test nodes, paired differences with graph-only label propagation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.config import Config, EvaluateConfig
from ccgraph.containers import Embeddings, KnnGraph, TagSet
from ccgraph.evaluate.clusters import cluster_agreement
from ccgraph.evaluate.datasets import CitationDataset, dataset_path, load_planetoid
from ccgraph.evaluate.methods import MethodInputs, MethodSkipped, run_method
from ccgraph.evaluate.metrics import bootstrap_ci
from ccgraph.evaluate.output import EvaluationResult
from ccgraph.evaluate.planetoid import (
    PUBLISHED,
    PlanetoidResult,
    planetoid_feature_aware,
    planetoid_label_propagation,
    planetoid_sklearn_label_spreading,
    planetoid_spread_tags,
)
from ccgraph.exceptions import ConfigError

__all__ = ["REFERENCE", "run_planetoid"]

log = logging.getLogger(__name__)

REFERENCE = "label_propagation"


def _tag_method(data: CitationDataset, name: str) -> PlanetoidResult:
    """A harness tag method on the split: classes as tags, features = row-normalised words."""
    graph = KnnGraph.from_adjacency(data.adjacency, data.ids)
    y = np.zeros((data.n_nodes, data.n_classes), dtype=np.float32)
    y[data.train, data.labels[data.train]] = 1
    seeds = TagSet(
        sp.csr_matrix(y), data.ids, np.array([f"class{c}" for c in range(data.n_classes)])
    )
    x = sp.csr_matrix(data.features, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sp.diags(np.where(norms > 0, 1 / np.where(norms > 0, norms, 1), 0)) @ x
    feats = Embeddings(x.toarray().astype(np.float32), data.ids, "dense", {"kind": "bow"})
    res = run_method(
        name, MethodInputs(graph, seeds, feats, depth=data.n_classes, k_neighbors=10, seed=0)
    )
    dense = res.scores.toarray()
    dense[res.scores.toarray() == 0] = -np.inf
    counts = np.bincount(data.labels[data.train], minlength=data.n_classes)
    pred = np.where(np.isfinite(dense).any(axis=1), dense.argmax(axis=1), counts.argmax())
    pred[data.train] = data.labels[data.train]
    val = float((pred[data.val] == data.labels[data.val]).mean())
    correct = pred[data.test] == data.labels[data.test]
    return PlanetoidResult(
        data.name,
        name,
        val,
        float(correct.mean()),
        correct,
        {k: v for k, v in res.params.items() if np.isscalar(v)},
    )


def _runners(data: CitationDataset) -> dict[str, Callable[[], PlanetoidResult]]:
    return {
        "label_propagation": lambda: planetoid_label_propagation(data),
        "spread": lambda: planetoid_spread_tags(data),
        "feature_aware": lambda: planetoid_feature_aware(data),
        "label_spreading": lambda: planetoid_sklearn_label_spreading(data),
        "prior": lambda: _tag_method(data, "prior"),
        "random": lambda: _tag_method(data, "random"),
        "knn_vote": lambda: _tag_method(data, "knn_vote"),
        "tagprop": lambda: _tag_method(data, "tagprop"),
    }


def _clusters(data: CitationDataset, seed: int) -> dict[str, Any]:
    try:
        from ccgraph.cluster import leiden
    except ImportError as exc:
        return {"skipped": f"ccgraph.cluster not available: {exc}"}
    graph = KnnGraph.from_adjacency(data.adjacency, data.ids)
    part = leiden(graph, resolution=1.0, rng=seed)
    return {"clusters": int(part.n_clusters), **cluster_agreement(part.membership, data.labels)}


def run_planetoid(
    cfg: Config, settings: EvaluateConfig, *, rng: np.random.Generator
) -> EvaluationResult:
    """Run the configured methods and baselines on the Planetoid split of ``evaluate.dataset``."""
    if settings.dataset not in ("cora", "citeseer"):
        raise ConfigError("`protocol: planetoid` needs `evaluate.dataset: cora` or `citeseer`")
    path = cfg.resolve(cfg.data.path if isinstance(cfg.data.path, str) else cfg.data.path[0])
    data = load_planetoid(settings.dataset, data_dir=dataset_path(path, "citation-graphs"))
    runners = _runners(data)
    names = list(dict.fromkeys([REFERENCE, *settings.methods, *settings.baselines]))
    results: list[PlanetoidResult] = []
    skipped: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            results.append(runners[name]())
        except MethodSkipped as exc:
            skipped[name] = str(exc)
            continue
        except ImportError as exc:
            skipped[name] = f"not available: {exc}"
            continue
        seconds[name] = round(time.perf_counter() - t0, 2)
    per_repeat = pd.DataFrame(
        [
            {"repeat": 0, "seed": 0, "method": r.method, "metric": m, "value": v, "n_items": n}
            for r in results
            for m, v, n in (
                ("val_accuracy", r.val_accuracy, len(data.val)),
                ("accuracy", r.test_accuracy, len(data.test)),
            )
        ]
    )
    cols = [r.test_correct.astype(np.float64) for r in results]
    ref = next((r for r in results if r.method == REFERENCE), None)
    names_ci = [("summary", r.method) for r in results]
    if ref is not None:
        for r in results:
            if r.method != REFERENCE:
                cols.append(r.test_correct.astype(np.float64) - ref.test_correct)
                names_ci.append(("diff", r.method))
    ci = bootstrap_ci(np.column_stack(cols), n_boot=settings.bootstrap, rng=rng)
    summary, comps = [], []
    for (kind, m), row in zip(names_ci, ci.itertuples(index=False), strict=True):
        if kind == "summary":
            summary.append(
                {
                    "method": m,
                    "metric": "accuracy",
                    "mean": row.mean,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "n": int(row.n),
                    "interval": "bootstrap over test nodes",
                }
            )
        else:
            comps.append(
                {
                    "method": m,
                    "reference": REFERENCE,
                    "metric": "accuracy",
                    "difference": row.mean,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "n": int(row.n),
                }
            )
    for r in results:
        summary.append(
            {
                "method": r.method,
                "metric": "val_accuracy",
                "mean": r.val_accuracy,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "n": len(data.val),
                "interval": "none (selection set)",
            }
        )
    published = {f"{m} ({data.name})": v[data.name] for m, v in PUBLISHED.items()}
    info = {
        "protocol": "planetoid",
        "dataset": data.name,
        "title": f"{data.name} (Planetoid split)",
        "description": (
            f"{data!r}. Test accuracy on the {len(data.test)} test nodes with the 95 % "
            f"bootstrap interval over test nodes; every hyperparameter chosen on the "
            f"{len(data.val)} validation nodes."
        ),
        "settings": settings.model_dump(mode="json"),
        "chosen": {r.method: r.params for r in results},
        "seconds": seconds,
        "skipped": skipped,
        "published": published,
        "clusters": _clusters(data, int(cfg.seed)),
        "counts": [
            {"split": "train", "nodes": len(data.train)},
            {"split": "val", "nodes": len(data.val)},
            {"split": "test", "nodes": len(data.test)},
        ],
        "counts_index": "split",
    }
    return EvaluationResult(
        summary=pd.DataFrame(summary),
        comparisons=pd.DataFrame(
            comps, columns=["method", "reference", "metric", "difference", "ci_low", "ci_high", "n"]
        ),
        per_repeat=per_repeat,
        info=info,
    )
