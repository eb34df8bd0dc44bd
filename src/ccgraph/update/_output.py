"""Output helpers of an update: the spliced tags table, the drift files, the no-op run."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.config import Config
from ccgraph.containers import Catalog, RunResult, TagScores, check_same_ids
from ccgraph.update._persist import member

if TYPE_CHECKING:
    from ccgraph.io.run import RunWriter

__all__ = [
    "noop",
    "run_positions",
    "splice_tags",
    "subset",
    "summary",
    "write_drift",
]


def subset(catalog: Catalog, ids: np.ndarray) -> Catalog:
    keep = set(np.asarray(ids).astype(str).tolist())
    items = catalog.items[member(catalog.items["id"], keep)].reset_index(drop=True)
    tags = catalog.tags[member(catalog.tags["id"], keep)].reset_index(drop=True)
    return Catalog(items, tags, catalog.rejects.iloc[:0], dict(catalog.params))


def write_drift(path: Path, report: Mapping[str, Any]) -> None:
    from ccgraph.io.atomic import atomic_write_text
    from ccgraph.update.drift import drift_markdown

    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    atomic_write_text(path / "drift.json", text)
    atomic_write_text(path / "drift.md", drift_markdown(report))


def noop(
    old: RunResult,
    writer: RunWriter,
    source: Path,
    changes: Mapping[str, int],
    cfg: Config,
) -> RunResult:
    """Nothing changed: the same tables, graph and arrays in a new run directory."""
    from ccgraph.update.drift import drift_report

    levels = [c for c in old.items.columns if c.startswith("cluster_l")]
    default = int(old.manifest.get("stages", {}).get("cluster", {}).get("default_level", 0))
    report = drift_report(
        old.items,
        old.items,
        n_levels=len(levels),
        default_level=min(default, max(0, len(levels) - 1)),
        changes=changes,
        drift_threshold=cfg.update.drift_threshold,
        max_batch_fraction=cfg.update.max_batch_fraction,
        split_share=cfg.update.split_share,
    )
    manifest = copy.deepcopy(dict(old.manifest))
    manifest.setdefault("stages", {})["update"] = {
        "source_run": str(source),
        "noop": True,
        **summary(report),
    }
    extras = {k: np.asarray(old.extras[k]) for k in old.extras}
    result = RunResult(
        old.items, old.tags, old.clusters, old.rejects, old.graph, manifest, extras=extras
    )
    path = writer.finish(result)
    write_drift(path, report)
    return RunResult(
        old.items,
        old.tags,
        old.clusters,
        old.rejects,
        old.graph,
        manifest,
        path=path,
        extras=extras,
    )


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "changes": report["changes"],
        "churn": [lv["churn"] for lv in report["levels"]],
        "splits": [len(lv["splits"]) for lv in report["levels"]],
        "merges": [len(lv["merges"]) for lv in report["levels"]],
        "new_clusters": [len(lv["new_clusters"]) for lv in report["levels"]],
        "rebuild_recommended": report["rebuild_recommended"],
        "reasons": report["reasons"],
    }


def run_positions(column: Any, index: Any) -> np.ndarray:
    """Position in ``index`` (ids) of each value of ``column`` (-1 if absent), one lookup per run.

    Tables keep the rows of one item together, so looking up the first row of every run of
    equal ids is enough; runs are found and looked up on Arrow strings (no Python string per
    row). When the runs start ``index`` in order, no lookup is needed
    (:func:`~ccgraph.update._persist.leading_positions`).

    Examples
    --------
    >>> run_positions(pd.Series(["b", "b", "a", "x", "x"]), np.array(["a", "b"])).tolist()
    [1, 1, 0, -1, -1]
    >>> run_positions(pd.Series(["a", "a", "b"]), np.array(["a", "b"])).tolist()
    [0, 0, 1]
    """
    import pyarrow.compute as pc

    from ccgraph.update._persist import _as_arrow, leading_positions

    values = _as_arrow(column)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    differs = pc.not_equal(values.slice(1), values.slice(0, n - 1)).fill_null(True)
    starts = np.r_[0, np.flatnonzero(differs.to_numpy(zero_copy_only=False)) + 1]
    lengths = np.diff(np.r_[starts, n])
    return np.repeat(leading_positions(values.take(starts), index), lengths)


def splice_tags(
    old_tags: pd.DataFrame,
    catalog: Catalog,
    ids: np.ndarray,
    inferred: TagScores | None,
    redo: np.ndarray,
    *,
    old_pos: np.ndarray | None = None,
) -> pd.DataFrame:
    """The ``tags`` table: the run's rows for items not in ``redo``, fresh rows for the rest.

    Fresh rows come from :func:`ccgraph._assemble.tags_table` over the ``redo`` items only
    (``inferred`` covers ``ids``, or only ``ids[redo]``). Both parts are grouped by item in
    item order, so a stable sort on the item position splices them into the table a full
    assembly would give; each column is spliced with one gather over the run's rows followed
    by the fresh ones (an Arrow ``take`` for strings), without a pandas round trip over the
    kept rows. ``old_pos`` is the position in ``ids`` of each row of ``old_tags`` (-1:
    absent), if the caller has it (:func:`run_positions`).
    """
    import pyarrow as pa

    from ccgraph import _assemble

    if redo.all() or inferred is None:
        return _assemble.tags_table(catalog, ids, inferred)
    sub_ids = ids[redo]
    sub = inferred
    if len(inferred.ids) == len(sub_ids):
        check_same_ids(inferred.ids, sub_ids, what="splice_tags (inferred tags vs redo)")
    else:
        sub = TagScores(
            sp.csr_matrix(inferred.scores[redo]),
            sp.csr_matrix(inferred.confidence[redo]),
            sub_ids,
            inferred.tags,
            dict(inferred.params),
            converged=inferred.converged,
            n_iter=inferred.n_iter,
        )
    obs = catalog.tags
    sub_cat = Catalog(
        catalog.items.iloc[:0], obs[member(obs["id"], sub_ids)], catalog.rejects.iloc[:0]
    )
    fresh, fresh_rows = _assemble.tags_frame(sub_cat, sub_ids, sub)
    if old_pos is None:
        old_pos = run_positions(old_tags["id"], ids)
    keep = old_pos >= 0
    keep[keep] = ~redo[old_pos[keep]]
    fresh_pos = np.flatnonzero(redo)[fresh_rows]
    pos = np.concatenate([old_pos[keep], fresh_pos])
    order = np.argsort(pos, kind="stable")
    if list(old_tags.columns) != list(fresh.columns):
        both = pd.concat([old_tags[keep], fresh], ignore_index=True)
        return _tag_dtypes(both.iloc[order].reset_index(drop=True))
    # row of [the run's rows | the fresh rows] that lands at each output row
    src = np.concatenate([np.flatnonzero(keep), len(old_tags) + np.arange(len(fresh))])[order]
    take = pa.array(src)
    out: dict[str, Any] = {}
    for col in fresh.columns:
        if col == "rank":
            a, b = pd.array(old_tags[col], dtype="Int64"), pd.array(fresh[col], dtype="Int64")
            values = np.concatenate(
                [a.to_numpy(np.int64, na_value=0), b.to_numpy(np.int64, na_value=0)]
            )
            mask = np.concatenate([a.isna(), b.isna()])
            out[col] = pd.arrays.IntegerArray(values[src], mask[src])
        elif col in ("score", "confidence"):
            values = np.concatenate(
                [old_tags[col].to_numpy(np.float32), fresh[col].to_numpy(np.float32)]
            )
            out[col] = values[src]
        else:
            both = pa.concat_arrays([_arrow_strings(old_tags[col]), _arrow_strings(fresh[col])])
            out[col] = pd.arrays.ArrowStringArray(both.take(take))
    return pd.DataFrame(out)


def _tag_dtypes(out: pd.DataFrame) -> pd.DataFrame:
    for col in ("id", "tag", "source", "origin", "tag_raw"):
        out[col] = out[col].astype("string")
    out["score"] = out["score"].astype(np.float32)
    out["confidence"] = out["confidence"].astype(np.float32)
    out["rank"] = out["rank"].astype("Int64")
    return out


def _arrow_strings(column: pd.Series) -> Any:
    """A string column as one Arrow ``large_string`` array (the type pandas keeps them in)."""
    import pyarrow as pa

    arr = column.array
    if isinstance(arr, pd.arrays.ArrowStringArray):
        arr = arr._pa_array
    else:
        arr = pa.array(column.astype("string").array, type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):  # one chunk is taken as it is (no copy)
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())
