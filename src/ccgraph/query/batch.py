"""Many queries at once: a list of ids or a Parquet table in, one row per query out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ccgraph._validation import check_choice, check_int
from ccgraph.exceptions import CcgraphError, InputError
from ccgraph.query.answers import ItemAnswer

if TYPE_CHECKING:
    from ccgraph.query.index import RunIndex

__all__ = ["BATCH_INPUT_COLUMNS", "answer_row", "query_batch"]

#: Input columns of a batch table; each row fills exactly one of them.
BATCH_INPUT_COLUMNS = ("id", "text", "image_path", "vector")


def _read_queries(queries: Any) -> pd.DataFrame:
    if isinstance(queries, (str, os.PathLike)):
        path = Path(queries)
        if not path.is_file():
            raise InputError(f"batch input file not found: {path}")
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        where = str(path)
    elif isinstance(queries, pd.DataFrame):
        frame, where = queries, "`queries`"
    elif isinstance(queries, (Sequence, np.ndarray, pd.Series)) and not isinstance(queries, bytes):
        frame, where = pd.DataFrame({"id": list(queries)}), "`queries`"
    else:
        raise InputError(
            "`queries` must be a list of ids, a DataFrame or a Parquet path; "
            f"got {type(queries).__name__}"
        )
    cols = [c for c in BATCH_INPUT_COLUMNS if c in frame.columns]
    if not cols:
        raise InputError(
            f"{where} needs one of the columns {list(BATCH_INPUT_COLUMNS)}; "
            f"got {list(frame.columns)}"
        )
    filled = frame[cols].notna().sum(axis=1).to_numpy()
    bad = np.flatnonzero(filled != 1)
    if len(bad):
        raise InputError(
            f"{where}: each row must give exactly one of {cols}; rows {(bad + 1).tolist()[:5]} "
            f"(1-based) give {filled[bad].tolist()[:5]} of them (0: all null, e.g. an empty "
            "id): fill or drop those rows"
        )
    return frame.reset_index(drop=True)


#: Unknown ids listed in one message.
_SHOWN_IDS = 10


def _check_ids(index: RunIndex, ids: pd.Series) -> None:
    """Raise one :class:`InputError` listing every id row that is not an item of the run."""
    unknown: list[str] = []
    for i in np.flatnonzero(ids.notna().to_numpy()):
        try:
            index.position(ids.iloc[i])
        except InputError:
            unknown.append(f"row {i + 1} {ids.iloc[i]!r}")
    if unknown:
        shown = ", ".join(unknown[:_SHOWN_IDS])
        more = f" and {len(unknown) - _SHOWN_IDS} more" if len(unknown) > _SHOWN_IDS else ""
        raise InputError(
            f"{len(unknown)} of {int(ids.notna().sum())} batch ids are not items of the run "
            f"({len(index.ids)} items): {shown}{more}; fix or drop those rows, or answer the "
            "others and note these in the `error` column (errors='record'; on the command "
            "line, the default `--errors record`)"
        )


def answer_row(ans: ItemAnswer, kind: str) -> dict[str, Any]:
    """Flatten one answer into a batch output row (lists for the ranked parts)."""
    c = ans.clusters
    rel = ans.related[ans.related["relation"] == "related"]
    dup = ans.related[ans.related["relation"] == "duplicate"]
    sec = c.secondary[c.secondary["level"] == c.default_level]
    row: dict[str, Any] = {
        "query": ans.query,
        "kind": kind,
        "cluster": c.cluster,
        "cluster_strength": c.strength,
    }
    for lev, cl, st in c.levels[["level", "cluster", "strength"]].itertuples(index=False):
        row[f"cluster_l{lev}"] = int(cl)
        row[f"strength_l{lev}"] = float(st)
    row.update(
        secondary_clusters=sec["cluster"].astype(int).tolist(),
        secondary_shares=sec["share"].astype(float).tolist(),
        related_ids=rel["id"].astype(str).tolist(),
        related_scores=rel["score"].astype(float).tolist(),
        duplicate_ids=dup["id"].astype(str).tolist(),
        tags=ans.tags["tag"].astype(str).tolist(),
        tag_sources=ans.tags["source"].astype(str).tolist(),
        tag_confidences=ans.tags["confidence"].astype(float).tolist(),
        error=None,
    )
    return row


def query_batch(
    index: RunIndex,
    queries: Any,
    *,
    n: int = 20,
    epsilon: float = 1e-4,
    alpha: float = 0.85,
    duplicates: str = "separate",
    k: int | None = None,
    modality: str | None = None,
    errors: str = "raise",
) -> pd.DataFrame:
    """Answer many queries; one output row per input row.

    Parameters
    ----------
    index
        The opened run.
    queries
        A list of item ids, or a DataFrame / Parquet path with one of the columns ``id`` (an
        item of the run), ``text`` (new item, embedded with the run's text model),
        ``image_path`` (new image) or ``vector`` (list of floats of one stored modality,
        optionally named per row in a ``modality`` column).
    n, epsilon, alpha, duplicates
        As in :meth:`RunIndex.related`.
    k, modality
        As in :func:`ccgraph.query.newitems.query_vectors` (new items only).
    errors
        ``"raise"``: a bad query raises :class:`InputError` naming its row (ids that are not
        items of the run are all listed in one message, before any answer is computed);
        ``"record"``: its message goes to the ``error`` column and the other answers are kept
        (the default of ``ccgraph query --batch``).

    Returns
    -------
    pandas.DataFrame
        ``query, kind, cluster, cluster_strength, cluster_l<i>, strength_l<i>,
        secondary_clusters, secondary_shares, related_ids, related_scores, duplicate_ids,
        tags, tag_sources, tag_confidences, error`` (list columns hold the ranked answers;
        an empty batch gives these columns and no rows).
    """
    check_choice("errors", errors, ("raise", "record"))
    frame = _read_queries(queries)
    opts: dict[str, Any] = dict(n=n, epsilon=epsilon, alpha=alpha, duplicates=duplicates)
    new_opts: dict[str, Any] = dict(opts, k=k)
    index._check_related(n, epsilon, alpha, duplicates)
    if k is not None:  # a bad k is the caller's, not one row's: raise even with errors="record"
        check_int("k", k, low=1)
    out: list[dict[str, Any] | None] = [None] * len(frame)
    fails: dict[int, str] = {}

    def record(i: int, exc: CcgraphError) -> None:
        if errors == "raise":
            raise InputError(f"batch row {i + 1}: {exc}") from None
        fails[i] = str(exc)

    if "id" in frame.columns and errors == "raise":
        _check_ids(index, frame["id"])
    if "id" in frame.columns:
        for i in np.flatnonzero(frame["id"].notna().to_numpy()):
            try:
                out[i] = answer_row(index.query(frame["id"].iloc[i], **opts), "id")
            except CcgraphError as exc:
                record(int(i), exc)
    if "text" in frame.columns:
        rows = np.flatnonzero(frame["text"].notna().to_numpy())
        texts = frame["text"].iloc[rows].astype(str).tolist()
        blank = [r for r, t in zip(rows, texts, strict=True) if not t.strip()]
        for r in blank:
            record(int(r), InputError("`text` is empty"))
        rows = np.array([r for r in rows if r not in set(blank)], dtype=np.int64)
        if len(rows):
            from ccgraph.query.newitems import embed_texts, query_vectors

            texts = frame["text"].iloc[rows].astype(str).tolist()
            try:  # one model call for all texts
                vecs = embed_texts(index, texts)
                answers = query_vectors(index, vecs, modality="text", labels=texts, **new_opts)
            except CcgraphError as exc:
                for r in rows:
                    record(int(r), exc)
            else:
                for r, ans in zip(rows, answers, strict=True):
                    out[r] = answer_row(ans, "text")
    if "image_path" in frame.columns:
        for i in np.flatnonzero(frame["image_path"].notna().to_numpy()):
            if not str(frame["image_path"].iloc[i]).strip():
                record(int(i), InputError("`image_path` is empty: give an image file's path"))
                continue
            try:
                ans = index.query_image(str(frame["image_path"].iloc[i]), **new_opts)
                out[i] = answer_row(ans, "image")
            except CcgraphError as exc:
                record(int(i), exc)
    if "vector" in frame.columns:
        for i in np.flatnonzero(frame["vector"].notna().to_numpy()):
            mod = frame["modality"].iloc[i] if "modality" in frame.columns else None
            mod = modality if mod is None or pd.isna(mod) else str(mod)
            try:
                vec = np.asarray(frame["vector"].iloc[i], dtype=np.float64)
                ans = index.query_vector(vec, modality=mod, **new_opts)
                out[i] = answer_row(ans, "vector")
            except (CcgraphError, ValueError, TypeError) as exc:
                record(int(i), exc if isinstance(exc, CcgraphError) else InputError(str(exc)))
    cols = [c for c in BATCH_INPUT_COLUMNS if c in frame.columns]
    for row, msg in fails.items():
        out[row] = {
            "query": str(frame[cols].iloc[row].dropna().iloc[0])[:200],
            "kind": None,
            "error": msg,
        }
    if not out:  # an empty batch: the documented columns, no rows
        return pd.DataFrame(columns=_output_columns(index.n_levels))
    return pd.DataFrame(out)


def _output_columns(n_levels: int) -> list[str]:
    """The columns of :func:`answer_row`, in its order, for a run with ``n_levels`` levels."""
    levels = [f"{p}_l{lev}" for lev in range(n_levels) for p in ("cluster", "strength")]
    return [
        "query",
        "kind",
        "cluster",
        "cluster_strength",
        *levels,
        "secondary_clusters",
        "secondary_shares",
        "related_ids",
        "related_scores",
        "duplicate_ids",
        "tags",
        "tag_sources",
        "tag_confidences",
        "error",
    ]
