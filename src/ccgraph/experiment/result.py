"""The frozen result of :func:`ccgraph.experiment.analyse`, with table, text and JSON views."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ExperimentResult"]


@dataclass(frozen=True, slots=True, eq=False)
class ExperimentResult:
    """Estimates of a two-arm click-through experiment.

    Attributes
    ----------
    method
        ``"delta"`` or ``"bootstrap"``: how the unit-clustered intervals were computed.
    control, treatment
        Arm names.
    confidence
        Confidence level of every interval (e.g. 0.95).
    arms
        One row per arm: ``arm, units, impressions, clicks, ctr, ctr_se`` (unit-clustered) and
        ``position_adjusted_ctr`` (clicks / expected clicks at the arm's positions, with the
        expected CTR at each position estimated from control).
    difference, difference_se, difference_ci, p_value
        ``CTR_T - CTR_C`` with its unit-clustered standard error, interval and two-sided p-value.
    relative_lift, relative_lift_ci
        ``CTR_T / CTR_C - 1`` and its interval.
    position_adjusted_ratio, position_adjusted_ratio_ci
        ``PACTR_T / PACTR_C``: treatment clicks over the clicks control would get at the same
        positions; 1 means no effect.
    naive_difference_ci, naive_z, naive_p_value
        The per-impression two-proportion z-test (pooled z, Wald interval). It treats
        impressions as independent and is too optimistic when a unit sees many impressions;
        shown for comparison only.
    srm_chi2, srm_p_value, srm_flag, expected_allocation
        Sample-ratio-mismatch chi-square test of the unit counts against the planned split
        (flagged when ``srm_p_value < srm_threshold``).
    clusters
        Per-cluster breakdown (or None without cluster labels): ``cluster, units_control,
        units_treatment, impressions_control, impressions_treatment, ctr_control,
        ctr_treatment, difference, se, p_value, p_hurt, q_hurt, hurts``.
    n_boot
        Bootstrap replicates (``method="bootstrap"``), else None.
    """

    method: str
    control: str
    treatment: str
    confidence: float
    arms: pd.DataFrame
    difference: float
    difference_se: float
    difference_ci: tuple[float, float]
    p_value: float
    relative_lift: float
    relative_lift_ci: tuple[float, float]
    position_adjusted_ratio: float
    position_adjusted_ratio_ci: tuple[float, float]
    naive_difference_ci: tuple[float, float]
    naive_z: float
    naive_p_value: float
    srm_chi2: float
    srm_p_value: float
    srm_flag: bool
    expected_allocation: float
    srm_threshold: float
    clusters: pd.DataFrame | None
    n_boot: int | None

    def to_frame(self) -> pd.DataFrame:
        """One row per reported quantity: ``metric, estimate, ci_low, ci_high, p_value, note``."""
        label = f"unit-clustered ({self.method})"
        rows: list[tuple[Any, ...]] = []
        for r in self.arms.itertuples(index=False):
            rows.append(
                (
                    f"ctr[{r.arm}]",
                    r.ctr,
                    r.ctr - _z(self.confidence) * r.ctr_se,
                    r.ctr + _z(self.confidence) * r.ctr_se,
                    math.nan,
                    "unit-clustered (delta)",
                )
            )
        rows += [
            ("difference", self.difference, *self.difference_ci, self.p_value, label),
            ("relative_lift", self.relative_lift, *self.relative_lift_ci, math.nan, label),
            (
                "position_adjusted_ratio",
                self.position_adjusted_ratio,
                *self.position_adjusted_ratio_ci,
                math.nan,
                label,
            ),
            (
                "difference_naive",
                self.difference,
                *self.naive_difference_ci,
                self.naive_p_value,
                "per-impression z-test: ignores clustering by unit",
            ),
            (
                "srm_chi2",
                self.srm_chi2,
                math.nan,
                math.nan,
                self.srm_p_value,
                "sample ratio mismatch" if self.srm_flag else "no sample ratio mismatch",
            ),
        ]
        return pd.DataFrame(
            rows, columns=["metric", "estimate", "ci_low", "ci_high", "p_value", "note"]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (tables as lists of records)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, pd.DataFrame):
                value = _records(value)
            elif isinstance(value, tuple):
                value = [_scalar(v) for v in value]
            else:
                value = _scalar(value)
            out[name] = value
        return out

    def summary(self) -> str:
        """Return a short markdown report."""
        pct = round(self.confidence * 100)
        lines = [
            f"# Substitution experiment: {self.treatment} vs {self.control}",
            "",
            "| arm | units | impressions | clicks | CTR | position-adjusted CTR |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.arms.itertuples(index=False):
            lines.append(
                f"| {r.arm} | {r.units:,} | {r.impressions:,} | {r.clicks:,} | "
                f"{r.ctr:.4f} | {r.position_adjusted_ctr:.3f} |"
            )
        lo, hi = self.difference_ci
        rlo, rhi = self.relative_lift_ci
        plo, phi = self.position_adjusted_ratio_ci
        nlo, nhi = self.naive_difference_ci
        lines += [
            "",
            f"- CTR difference: {self.difference:+.4f} ({pct}% CI {lo:+.4f} to {hi:+.4f}, "
            f"p = {self.p_value:.3g}; unit-clustered, {self.method})",
            f"- relative lift: {self.relative_lift:+.2%} ({pct}% CI {rlo:+.2%} to {rhi:+.2%})",
            f"- position-adjusted ratio: {self.position_adjusted_ratio:.3f} "
            f"({pct}% CI {plo:.3f} to {phi:.3f})",
            f"- naive per-impression z-test (ignores clustering, for comparison): "
            f"CI {nlo:+.4f} to {nhi:+.4f}, p = {self.naive_p_value:.3g}",
            f"- sample ratio check: chi2 = {self.srm_chi2:.2f}, p = {self.srm_p_value:.3g} "
            f"(expected treatment share {self.expected_allocation:g}): "
            + ("**MISMATCH: do not trust the estimates**" if self.srm_flag else "ok"),
        ]
        if self.clusters is not None:
            bad = self.clusters[self.clusters["hurts"]]
            tested = int(self.clusters["p_hurt"].notna().sum())
            lines.append(
                f"- clusters where substitution hurts (BH q < 0.05): {len(bad)} of {tested} tested"
            )
            for r in bad.sort_values("q_hurt").head(20).itertuples(index=False):
                lines.append(f"  - cluster {r.cluster}: {r.difference:+.4f} (q = {r.q_hurt:.3g})")
        return "\n".join(lines) + "\n"


def _z(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.isf((1.0 - confidence) / 2.0))


def _scalar(v: Any) -> Any:
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else float(v)
    return v


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _scalar(v) for k, v in row.items()} for row in frame.to_dict("records")]
