"""Config-driven calls of the stages after clustering, shared by a run and an update.

:func:`ccgraph.pipeline.run` and :func:`ccgraph.update.update_run` describe the clusters of
every level, spread tags and read the popularity inputs the same way; these functions map the
config onto the public API once, so both stay short sequences of stage calls.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.config import Config
from ccgraph.containers import Catalog, Embeddings, KnnGraph, Partition, TagScores, TagSet
from ccgraph.exceptions import DataQualityWarning

__all__ = [
    "describe_levels",
    "popularity_inputs",
    "run_counts",
    "run_manifest",
    "spread_stage",
    "sweep_info",
    "tags_info",
]


def sweep_info(levels: Sequence[Partition]) -> list[dict[str, Any]]:
    """One row per level, coarse to fine (the report plots it as the resolution sweep)."""
    return [
        {
            "level": i,
            "resolution": float(p.params.get("resolution", float("nan"))),
            "n_clusters": p.n_clusters,
            "quality": float(p.quality),
            "median_item_cluster_size": float(np.median(p.sizes[p.membership]))
            if len(p.membership)
            else 0.0,
        }
        for i, p in enumerate(levels)
    ]


def label_texts(items: pd.DataFrame) -> pd.Series | None:
    """The text whose words describe clusters: each item's title, else its description.

    Catalogs such as Flickr8k have captions but no titles; their clusters are then labelled
    from the captions instead of ``"cluster <id>"``. The title column itself is returned when
    no title is missing (an Arrow-backed column is tokenised from its buffers).

    Examples
    --------
    >>> items = pd.DataFrame({"title": ["Red car", None, " "], "description": ["x", "A dog", None]})
    >>> label_texts(items).tolist()
    ['Red car', 'A dog', None]
    """
    title = items["title"] if "title" in items.columns else None
    desc = items["description"] if "description" in items.columns else None
    if title is None or desc is None:
        return title if title is not None else desc
    empty = (title.isna() | (title.astype(str).str.strip() == "")).to_numpy(dtype=bool)
    if not empty.any():
        return title
    out = title.astype(object).copy()
    out[empty] = desc.astype(object)[empty].to_numpy()
    return out.where(out.notna(), None)


def describe_levels(
    graph: KnnGraph,
    levels: Sequence[Partition],
    catalog: Catalog,
    seeds: TagSet,
    cfg: Config,
    *,
    terms: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> pd.DataFrame:
    """``clusters.parquet``: :func:`~ccgraph.cluster.describe_clusters` of every level.

    ``terms``: :func:`item_terms` of the catalog and seeds, if the caller made it already.
    """
    from ccgraph.cluster.describe import describe_partitions

    if terms is None:
        terms = item_terms(len(graph.ids), catalog, seeds)
    # sublinear per uploader: a tag dump repeated on many photos does not fill the labels
    uploaders = catalog.items["creator"] if "creator" in catalog.items.columns else None
    return describe_partitions(
        graph,
        levels,
        terms,
        top_tags=cfg.cluster.top_tags,
        n_representatives=cfg.cluster.n_representatives,
        uploaders=uploaders,
    )


def item_terms(n_items: int, catalog: Catalog, seeds: TagSet) -> tuple[sp.csr_matrix, np.ndarray]:
    """Item x term counts of the tags and titles, and the vocabulary (shared by every level).

    :func:`~ccgraph.cluster.describe.term_matrix` of the catalog's tags and label texts. It
    needs no clusters, so a caller can make it while the clusters are found.
    """
    from ccgraph.cluster.describe import term_matrix

    return term_matrix(n_items, tags=seeds, texts=label_texts(catalog.items))


def spread_stage(
    graph: KnnGraph,
    seeds: TagSet,
    partition: Partition,
    cfg: Config,
    *,
    embeddings: Mapping[str, Embeddings] | None = None,
) -> tuple[TagScores, dict[str, Any]]:
    """:func:`~ccgraph.propagate.spread_tags` with ``propagate.tags``; the manifest entry.

    With ``propagate.tags.tagprop_weight`` set, the tags are
    :func:`~ccgraph.propagate.spread_tagprop.spread_tagprop_tags`: the spreading blended with
    TagProp's votes, the neighbours searched among the tagged items in ``embeddings``' dense
    modalities fused (:func:`~ccgraph.propagate.tagprop.fused_features`, as the evaluation
    harness does); ``stages.tags`` then records ``tagprop_weight`` and the confidence maps.
    """
    from ccgraph.propagate import spread_tags

    t = cfg.propagate.tags
    kwargs: dict[str, Any] = {
        "alpha": t.alpha,
        "tol": t.tol,
        "max_iter": t.max_iter,
        "tag_block": t.tag_block,
        "calibration_tag_fraction": t.calibration_tag_fraction,
        "cluster_prior": t.cluster_prior,
        "partition": partition,
        "dtype": t.dtype,
        "reorder": t.reorder,
        "solver": t.solver,
        "prune": t.prune,
        "freeze": t.freeze,
    }
    if t.tagprop_weight is not None:
        inferred = _blend_stage(graph, seeds, cfg, kwargs, embeddings)
    else:
        inferred = spread_tags(
            graph,
            seeds,
            top_k=t.top_k,
            min_confidence=t.min_confidence,
            calibrator=t.calibrator,
            rng=cfg.seed,
            **kwargs,
        )
    return inferred, tags_info(inferred)


def _blend_stage(
    graph: KnnGraph,
    seeds: TagSet,
    cfg: Config,
    kwargs: Mapping[str, Any],
    embeddings: Mapping[str, Embeddings] | None,
) -> TagScores:
    from ccgraph.exceptions import ConfigError
    from ccgraph.propagate.spread_tagprop import spread_tagprop_tags
    from ccgraph.propagate.tagprop import fused_features

    t = cfg.propagate.tags
    features = fused_features(embeddings or {}, graph.ids)
    if features is None:
        raise ConfigError(
            "propagate.tags.tagprop_weight needs a dense embedding (text, image or precomputed "
            "vectors) for TagProp's neighbours; this run has none: set it to null"
        )
    return spread_tagprop_tags(
        graph,
        features,
        seeds,
        weight=t.tagprop_weight,  # type: ignore[arg-type]
        k=t.tagprop_k or cfg.graph.k,
        spread_kwargs=kwargs,
        top_k=t.top_k,
        min_confidence=t.min_confidence,
        rng=cfg.seed,
    )


def tags_info(inferred: TagScores) -> dict[str, Any]:
    """Manifest entry ``stages.tags``: the spreading's params, convergence and sweeps."""
    return {**dict(inferred.params), "converged": inferred.converged, "n_iter": inferred.n_iter}


#: Outlier ids named in a popularity warning.
_SHOWN_OUTLIERS = 5


def popularity_inputs(
    catalog: Catalog, *, percentile: float = 85.0
) -> tuple[np.ndarray, np.ndarray]:
    """Raw popularity (NaN where unobserved) and provider of every catalog item.

    Warns (:class:`~ccgraph.exceptions.DataQualityWarning`) about values far above the rest of
    their provider's, naming the ids and the column.
    """
    from ccgraph.propagate.popularity import OUTLIER_GAP, extreme_outliers

    items = catalog.items
    raw = pd.to_numeric(items["popularity_raw"], errors="coerce").to_numpy(np.float64)
    provider = items["provider"].fillna("").astype(str).to_numpy()
    for name, rows, sets_constant in extreme_outliers(raw, provider, percentile=percentile):
        metric = items["popularity_metric"] if "popularity_metric" in items.columns else None
        column = sorted({str(m) for m in metric.iloc[rows] if m}) if metric is not None else []
        shown = ", ".join(f"{items['id'].iloc[i]} ({raw[i]:.4g})" for i in rows[:_SHOWN_OUTLIERS])
        more = f" and {len(rows) - _SHOWN_OUTLIERS} more" if len(rows) > _SHOWN_OUTLIERS else ""
        effect = (
            f"they set the provider's {percentile:g}th-percentile constant, so its other "
            "items' standardised popularity is about 0"
            if sets_constant
            else "they standardise to about 1"
        )
        warnings.warn(
            f"popularity column {', '.join(map(repr, column)) or '(unknown)'}: {len(rows)} "
            f"values of provider {name!r} are over {OUTLIER_GAP:.0e} times its other values "
            f"(ids {shown}{more}); {effect}. Check these values (a sentinel or a unit error?) "
            "and fix or blank them in the catalog",
            DataQualityWarning,
            stacklevel=2,
        )
    return raw, provider


def run_counts(
    items: pd.DataFrame,
    tags: pd.DataFrame,
    rejects: pd.DataFrame,
    graph: Any,
    levels: list[Any],
    default_level: int,
    seeds: Any,
) -> dict[str, Any]:
    """Manifest entry ``counts``: items, rejects, edges, clusters, tags, duplicates, popularity."""
    observed = _equals(tags["source"], "observed")
    inferred = _equals(tags["source"], "inferred")
    # per distinct id: has it an observed / an inferred row (integer codes, no string sets)
    runs = _id_runs(tags["id"])
    if runs is not None:  # per run of equal ids: any observed / inferred row in it
        starts, codes, n_ids = runs
        observed_in, inferred_in = (np.logical_or.reduceat(m, starts) for m in (observed, inferred))
    else:
        codes, n_ids = _id_codes(tags["id"])
        observed_in, inferred_in = observed, inferred
    has_observed = np.zeros(n_ids, dtype=bool)
    has_observed[codes[observed_in & (codes >= 0)]] = True
    has_inferred = np.zeros(n_ids, dtype=bool)
    has_inferred[codes[inferred_in & (codes >= 0)]] = True
    return {
        "items": len(items),
        "rejects": len(rejects),
        "edges": graph.n_edges,
        "clusters": levels[default_level].n_clusters,
        "clusters_per_level": [p.n_clusters for p in levels],
        "default_level": default_level,
        "tagged_items": int(has_observed.sum()),
        "vocabulary": int(seeds.n_tags),
        "observed_tags": int(observed.sum()),
        "inferred_tags": int(inferred.sum()),
        "untagged_items_with_inferred_tags": int((has_inferred & ~has_observed).sum()),
        "duplicate_groups": _repeated_values(items["duplicate_group"]),
        "popularity_observed": int(_equals(items["popularity_source"], "observed").sum()),
        "popularity_inferred": int(_equals(items["popularity_source"], "inferred").sum()),
    }


def _repeated_values(column: pd.Series) -> int:
    """``(column.groupby(column).size() > 1).sum()``: values held by two rows or more.

    An integer column without missing values is counted with :func:`numpy.bincount` over
    its codes instead of a pandas groupby.
    """
    values = column.to_numpy()
    if values.dtype.kind not in "iu":
        return int((column.groupby(column).size() > 1).sum())
    from ccgraph.cluster._common import unique_inverse

    _, codes = unique_inverse(values)
    return int((np.bincount(codes) > 1).sum())


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """``column == value`` as a numpy bool mask (Arrow's kernel on an Arrow-backed column)."""
    import pyarrow.compute as pc

    arr = column.array
    if isinstance(arr, pd.arrays.ArrowStringArray):
        found = pc.equal(arr._pa_array, value).fill_null(False)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(column.to_numpy() == value, dtype=bool)


def _id_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """``pd.factorize(column)`` codes (-1 for missing) and the number of distinct values.

    Tables list the rows of one item together, so only the first row of every run of equal
    values is factorised; the codes are the same partition of the rows either way.
    """
    runs = _id_runs(column)
    if runs is None:
        codes, uniq = pd.factorize(column)
        return codes, len(uniq)
    starts, head_codes, n_ids = runs
    return np.repeat(head_codes, np.diff(np.r_[starts, len(column)])), n_ids


def _id_runs(column: pd.Series) -> tuple[np.ndarray, np.ndarray, int] | None:
    """First row of every run of equal values, their factorize codes, the number of values.

    Only for a non-empty Arrow-backed column (None otherwise); a missing value starts a run
    of its own, with code -1.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.array
    n = len(column)
    if not isinstance(arr, pd.arrays.ArrowStringArray) or n == 0:
        return None
    values = arr._pa_array
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    differs = pc.not_equal(values.slice(1), values.slice(0, n - 1)).fill_null(True)
    starts = np.r_[0, np.flatnonzero(differs.to_numpy(zero_copy_only=False)) + 1]
    head_codes, uniq = pd.factorize(pd.arrays.ArrowStringArray(values.take(starts)))
    return starts, head_codes, len(uniq)


def run_manifest(
    cfg: Config,
    *,
    timings: Mapping[str, float],
    counts: Mapping[str, Any],
    stages: Mapping[str, Any],
) -> dict[str, Any]:
    """``manifest.json`` of a run with this config (the resolved config without ``base_dir``)."""
    from ccgraph import _assemble

    return _assemble.manifest(
        cfg.model_dump(mode="json", exclude={"base_dir"}),
        seed=cfg.seed,
        timings=timings,
        counts=counts,
        stages=stages,
    )
