"""Template-ready views of a run: items (thumbnail or card), summary tables, tag lookups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.report._evaluation import Table, format_value
from ccgraph.report._load import RunData
from ccgraph.report.thumbnails import Thumb, ThumbnailStore

__all__ = ["ItemView", "Items", "counts_table", "duplicates_fact", "rejects_table", "timings_table"]

_TITLE_MAX = 70


@dataclass
class ItemView:
    """One item as the templates show it."""

    index: int
    id: str
    title: str
    alt: str
    thumb: Thumb | None
    cluster: int
    tags: list[str] = field(default_factory=list)
    inferred: list[tuple[str, float]] = field(default_factory=list)
    provider: str = ""
    license: str = ""
    url: str = ""
    weight: float | None = None


def _short(text: str, n: int = _TITLE_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _col(items: pd.DataFrame, name: str) -> np.ndarray:
    if name not in items:
        return np.full(len(items), "", dtype=object)
    return items[name].astype(object).where(items[name].notna(), "").astype(str).to_numpy()


class Items:
    """Lazily built :class:`ItemView` objects (thumbnails are made on first use)."""

    def __init__(self, run: RunData, store: ThumbnailStore, *, image_roots: Sequence[Path]) -> None:
        self.run = run
        self.store = store
        self.roots = list(image_roots)
        items = run.items
        self.ids = items["id"].to_numpy().astype(str)
        self.titles = _col(items, "title")
        self.paths = _col(items, "image_path")
        self.providers = _col(items, "provider")
        self.licenses = _col(items, "license")
        self.urls = _col(items, "url")
        self.clusters = items["cluster"].to_numpy()
        self._tags: dict[str, list[str]] = {}
        self._inferred: dict[str, list[tuple[str, float]]] = {}
        self._cache: dict[int, ItemView] = {}

    def load_tags(self, indices: Iterable[int], *, n_tags: int = 6) -> None:
        """Look up observed and inferred tags of the items that will be shown."""
        tags = self.run.tags
        want = {self.ids[i] for i in indices} - set(self._tags)
        if tags.empty or not want:
            return
        sub = tags[tags["id"].isin(want)]
        src = sub["source"].astype(str) if "source" in sub else pd.Series("observed", sub.index)
        obs = sub[src == "observed"]
        for key, grp in obs.groupby("id", sort=False):
            self._tags[str(key)] = list(dict.fromkeys(grp["tag"].astype(str)))[:n_tags]
        inf = sub[src == "inferred"]
        if not inf.empty:
            conf = inf["confidence"] if "confidence" in inf else inf.get("score")
            # a confidence outside [0, 1] (or NaN / inf) would break the bar's width
            num = pd.to_numeric(conf, errors="coerce").replace([np.inf, -np.inf], np.nan)
            inf = inf.assign(_c=num.fillna(0.0).clip(0.0, 1.0))
            inf = inf.sort_values(["id", "_c"], ascending=[True, False], kind="stable")
            for key, grp in inf.groupby("id", sort=False):
                self._inferred[str(key)] = [
                    (str(t), float(c)) for t, c in zip(grp["tag"], grp["_c"], strict=True)
                ][:n_tags]

    def image_file(self, i: int) -> Path | None:
        """Return the item's image file, resolving a relative path against the known roots."""
        raw = self.paths[i]
        if not raw:
            return None
        p = Path(raw).expanduser()
        if p.is_absolute():
            return p
        for root in self.roots:
            if (root / p).exists():
                return root / p
        return None

    def view(self, i: int, *, weight: float | None = None) -> ItemView:
        """Return the view of item ``i`` (``weight``: edge weight to a panel's query item)."""
        i = int(i)
        base = self._cache.get(i)
        if base is None:
            ident = self.ids[i]
            title = self.titles[i]
            tags = self._tags.get(ident, [])
            thumb = self.store.get(self.image_file(i))
            if title:
                alt = _short(title, 160)
            elif tags:
                alt = f"Image {ident}: " + ", ".join(tags[:5])
            else:
                alt = f"Image {ident}"
            base = ItemView(
                index=i,
                id=ident,
                title=_short(title) if title else ident,
                alt=alt,
                thumb=thumb,
                cluster=int(self.clusters[i]),
                tags=tags,
                inferred=self._inferred.get(ident, []),
                provider=self.providers[i],
                license=self.licenses[i],
                url=self.urls[i] if self.urls[i].startswith(("http://", "https://")) else "",
            )
            self._cache[i] = base
        if weight is None:
            return base
        v = ItemView(**{**base.__dict__, "weight": float(weight)})
        return v

    def index_of(self, ids: Iterable[Any]) -> list[int]:
        """Row indices of the given ids (unknown ids are skipped)."""
        pos = pd.Index(self.ids).get_indexer([str(x) for x in ids])
        return [int(p) for p in pos if p >= 0]


def counts_table(counts: Mapping[str, Any]) -> Table:
    """Return the manifest's ``counts`` as a two-column table."""
    rows = [[str(k).replace("_", " "), format_value(v)] for k, v in counts.items()]
    return Table("Counts recorded in the manifest", ["quantity", "value"], rows)


def timings_table(timings: Mapping[str, Any]) -> Table:
    """Per-stage wall times with their share of the total."""
    vals = {str(k): float(v) for k, v in timings.items() if isinstance(v, (int, float))}
    total = sum(vals.values()) or 1.0
    rows = [[k, f"{v:.2f}", f"{100 * v / total:.0f} %"] for k, v in vals.items()]
    rows.append(["total", f"{sum(vals.values()):.2f}", "100 %"])
    return Table("Wall time per pipeline stage", ["stage", "seconds", "share"], rows)


def rejects_table(rejects: pd.DataFrame, *, top: int = 15) -> Table:
    """Rejected rows counted by stage and reason (the ``top`` commonest, then the rest)."""
    cols = ["stage", "reason", "rows"]
    if rejects.empty or "reason" not in rejects:
        return Table("Rejected rows by reason", cols, [])
    stage = rejects["stage"].astype(str) if "stage" in rejects else pd.Series("", rejects.index)
    grp = (
        pd.DataFrame({"stage": stage, "reason": rejects["reason"].astype(str)})
        .value_counts()
        .reset_index(name="rows")
    )
    grp = grp.sort_values(["rows", "stage", "reason"], ascending=[False, True, True])
    rows = [
        [r.stage, _short(r.reason, 160), format_value(int(r.rows))]
        for r in grp.head(top).itertuples()
    ]
    if len(grp) > top:
        rows.append(
            ["", f"{len(grp) - top} other reasons", format_value(int(grp["rows"].iloc[top:].sum()))]
        )
    return Table("Rejected rows by reason", cols, rows)


def duplicates_fact(params: Mapping[str, Any] | None) -> str:
    """How the run's near-duplicate groups were found, for the summary (``""``: not recorded).

    Examples
    --------
    >>> duplicates_fact({"modality": "text", "n_duplicates": 844})
    '844 duplicates, found from the text embeddings; caption duplicates, not image duplicates'
    >>> duplicates_fact({"enabled": False, "modality": None})
    'not searched'
    """
    if not params:
        return ""
    modality = params.get("modality")
    if not params.get("enabled", True) or not modality:
        return "not searched" + (f" ({params['skipped']})" if params.get("skipped") else "")
    n = params.get("n_duplicates")
    found = f"{n:,} duplicates, " if isinstance(n, int) else ""
    note = "; caption duplicates, not image duplicates" if modality == "text" else ""
    return f"{found}found from the {modality} embeddings{note}"
