"""The evaluation result object and its files.

``metrics.json``, ``per_repeat.parquet`` and ``evaluation.md``, each written to a temporary
file, then moved into place.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.exceptions import OutputError
from ccgraph.io.atomic import atomic_paths, make_temp_dir

__all__ = ["EvaluationResult", "check_writable", "to_markdown", "write_result"]

#: Metrics shown in the Markdown comparison table, in this order (others stay in the JSON).
HEADLINE = (
    "accuracy",
    "val_accuracy",
    "precision@1",
    "precision@5",
    "recall@5",
    "f1@5",
    "recall@10",
    "ap",
    "map_tags",
    "n_plus@5",
    "coverage",
    "ece@10",
)

LABELS = {"ap": "MAP (items)", "map_tags": "MAP (tags)", "n_plus@5": "N+ (@5)"}


@dataclass(frozen=True, slots=True, eq=False)
class EvaluationResult:
    """Everything one evaluation produced.

    Attributes
    ----------
    summary
        ``method, metric, mean, ci_low, ci_high, n, interval``.
    comparisons
        ``method, reference, metric, difference, ci_low, ci_high, n`` (paired bootstrap).
    per_repeat
        ``repeat, seed, method, metric, value, n_items``.
    per_item
        Pooled per-item metrics (``repeat, method, item, ...``).
    reliability
        Reliability tables (``repeat, method, bin_low, bin_high, count, mean_confidence,
        accuracy``).
    info
        Protocol, settings, counts, skipped methods, timings.
    path
        The directory written, if any.
    """

    summary: pd.DataFrame
    comparisons: pd.DataFrame
    per_repeat: pd.DataFrame
    per_item: pd.DataFrame = field(default_factory=pd.DataFrame)
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def table(self, metrics: tuple[str, ...] = HEADLINE) -> pd.DataFrame:
        """Methods x metrics, cells ``"mean [low, high]"``."""
        s = self.summary[self.summary["metric"].isin(metrics)]
        cells = s.assign(
            cell=[
                _cell(m, lo, hi, k)
                for m, lo, hi, k in zip(
                    s["mean"], s["ci_low"], s["ci_high"], s["metric"], strict=True
                )
            ]
        )
        wide = cells.pivot(index="method", columns="metric", values="cell")
        cols = [m for m in metrics if m in wide.columns]
        order = list(dict.fromkeys(self.summary["method"]))
        return wide.reindex(index=order, columns=cols).fillna("")

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        methods = self.summary["method"].nunique() if len(self.summary) else 0
        return f"EvaluationResult({self.info.get('protocol')}, {methods} methods{where})"


def _fmt(v: float, integer: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if integer and float(v).is_integer():
        return f"{int(v)}"
    return f"{v:.1f}" if integer else f"{v:.3f}"


def _cell(mean: float, lo: float, hi: float, metric: str = "") -> str:
    integer = metric.startswith("n_plus")
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return _fmt(mean, integer)
    return f"{_fmt(mean, integer)} [{_fmt(lo, integer)}, {_fmt(hi, integer)}]"


def _md_table(df: pd.DataFrame, index_name: str) -> list[str]:
    head = [index_name, *[LABELS.get(c, c) for c in df.columns]]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx), *map(str, row.tolist())]) + " |")
    return lines


def to_markdown(result: EvaluationResult) -> str:
    """The comparison tables, counts and protocol notes as Markdown."""
    info = result.info
    st = info.get("settings", {})
    lines = [f"# Evaluation: {info.get('title') or info.get('protocol')}", ""]
    if info.get("description"):
        lines += [info["description"], ""]
    elif st:
        lines += [
            f"Protocol `{st.get('protocol')}`, hide fraction {st.get('hide_fraction')}, "
            f"only source {st.get('only_source') or 'any'}, {st.get('repeats')} repeats; "
            f"ranking depth {st.get('depth')}; {st.get('bootstrap')} bootstrap resamples. "
            "Cells are the mean over all evaluated items of all repeats with the 95 % "
            "percentile bootstrap interval over items (MAP (tags): over tags; N+ and ECE: "
            "min-max over repeats).",
            "",
        ]
    lines += _md_table(result.table(), "method")
    lines.append("")
    if len(result.comparisons):
        comp = result.comparisons[result.comparisons["metric"].isin(HEADLINE)]
        if len(comp):
            ref = comp["reference"].iloc[0]
            lines += [f"## Paired differences with `{ref}` (95 % bootstrap CI)", ""]
            wide = comp.assign(
                cell=[
                    _cell(d, lo, hi)
                    for d, lo, hi in zip(
                        comp["difference"], comp["ci_low"], comp["ci_high"], strict=True
                    )
                ]
            )
            wide = wide.pivot(index="method", columns="metric", values="cell")
            wide = wide.reindex(
                index=list(dict.fromkeys(comp["method"])),
                columns=[m for m in HEADLINE if m in wide.columns],
            ).fillna("")
            lines += _md_table(wide, "method")
            lines.append("")
    if info.get("published"):
        lines += ["## Published reference points", ""]
        lines += [f"- {k}: {v}" for k, v in info["published"].items()]
        lines.append("")
    cl = info.get("clusters")
    if cl:
        lines += ["## Clusters (Leiden, modularity, resolution 1, on the evaluation graph)", ""]
        if isinstance(cl, dict):
            lines += [f"- {k}: {_fmt(v) if isinstance(v, float) else v}" for k, v in cl.items()]
        else:
            frame = pd.DataFrame(cl).set_index("repeat")
            frame = frame.apply(
                lambda c: c.map(lambda v: _fmt(v) if isinstance(v, float) else str(v))
            )
            lines += _md_table(frame, "repeat")
        lines.append("")
    pop = {
        k: v
        for k, v in (info.get("popularity") or {}).items()
        if isinstance(v, dict) and "spearman" in v
    }
    if pop:
        split = info["popularity"].get("_split", {})
        lines += [
            "## Popularity (held-out observed values, first repeat's graph)",
            "",
            f"{split.get('hidden')} of {split.get('observed')} observed values hidden; rank "
            "correlation with the hidden standardised value, 95 % bootstrap CI over items.",
            "",
            "| method | Spearman | Kendall | n | coverage |",
            "| --- | --- | --- | --- | --- |",
        ]
        for m, v in pop.items():
            sp_ci, kd_ci = (
                v.get("spearman 95% CI", [np.nan] * 2),
                v.get("kendall 95% CI", [np.nan] * 2),
            )
            lines.append(
                f"| {m} | {_cell(v['spearman'], *sp_ci)} | "
                f"{_cell(v['kendall'], *kd_ci)} | {v['n']} | {_fmt(v['coverage'])} |"
            )
        lines.append("")
    if info.get("skipped"):
        lines += ["## Skipped", ""]
        lines += [f"- `{k}`: {v}" for k, v in info["skipped"].items()]
        lines.append("")
    if info.get("counts"):
        counts = pd.DataFrame(info["counts"]).set_index(
            info["counts_index"] if "counts_index" in info else "repeat"
        )
        lines += ["## Counts", ""]
        lines += _md_table(counts.astype(str), counts.index.name or "repeat")
        lines.append("")
    if info.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in info["notes"]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def to_json(result: EvaluationResult) -> dict[str, Any]:
    """``metrics.json`` content: summary and comparisons as method -> metric mappings."""
    summary: dict[str, dict[str, Any]] = {}
    for row in result.summary.itertuples(index=False):
        summary.setdefault(row.method, {})[row.metric] = row.mean
        summary[row.method][f"{row.metric} 95% CI"] = [row.ci_low, row.ci_high]
    comps: dict[str, dict[str, Any]] = {}
    for row in result.comparisons.itertuples(index=False):
        comps.setdefault(f"{row.method} - {row.reference}", {})[row.metric] = row.difference
        comps[f"{row.method} - {row.reference}"][f"{row.metric} 95% CI"] = [row.ci_low, row.ci_high]
    rel = {}
    if len(result.reliability):
        agg = result.reliability.groupby(["method", "bin_low", "bin_high"], as_index=False).agg(
            count=("count", "sum"),
            confidence=("mean_confidence", "mean"),
            accuracy=("accuracy", "mean"),
        )
        for m, grp in agg.groupby("method", sort=False):
            rel[m] = grp.drop(columns="method").to_dict(orient="records")
    return _json_safe(
        {
            **{k: v for k, v in result.info.items() if k != "description"},
            "summary": summary,
            "comparisons": comps,
            "reliability": rel,
        }
    )


def check_writable(directory: str | Path) -> None:
    """Raise :class:`OutputError` now if the evaluation could not be written into ``directory``.

    Creates the folder (as :func:`write_result` would) and a temporary folder in it, removed
    at once, so a read-only or full file system, a file in the way or a too-long name is
    reported before the evaluation runs.
    """
    make_temp_dir(Path(directory) / "metrics.json").rmdir()


def write_result(result: EvaluationResult, directory: str | Path) -> EvaluationResult:
    """Write ``metrics.json``, ``per_repeat.parquet`` and ``evaluation.md`` into ``directory``.

    The three replace the files of an earlier evaluation together (or, on a failure or an
    interrupt, none does), so the folder never mixes two evaluations.
    """
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the evaluation directory {out}: {exc}") from exc
    text = json.dumps(to_json(result), indent=1)
    md = to_markdown(result)
    names = ("metrics.json", "per_repeat.parquet", "evaluation.md")
    with atomic_paths(*(out / name for name in names)) as (metrics, per_repeat, markdown):
        metrics.write_text(text, encoding="utf-8")
        result.per_repeat.to_parquet(per_repeat, index=False)
        markdown.write_text(md, encoding="utf-8")
    return replace(result, path=out)
