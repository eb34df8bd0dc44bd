"""Analyse a substitution experiment's impression/click log with unit-clustered inference.

Impressions of one unit (session, user) are correlated, so the unit, not the impression, is the
independent observation. CTR per arm is a ratio of sums over units, ``CTR = sum_u c_u / sum_u n_u``;
its variance comes from the delta method (Deng, Knoblich & Lu 2018) or from a Poisson bootstrap
over units (Chamandy et al. 2012). The naive per-impression two-proportion z-test is reported
only for comparison (it under-covers when units see many impressions).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.exceptions import DataQualityWarning
from ccgraph.experiment.breakdown import cluster_breakdown, cluster_labels
from ccgraph.experiment.logcheck import CheckedLog, check_log
from ccgraph.experiment.result import ExperimentResult

__all__ = ["analyse", "ratio_variance"]

_BOOT_CHUNK = 256


def ratio_variance(clicks: np.ndarray, impressions: np.ndarray) -> float:
    """Delta-method variance of ``sum(clicks) / sum(impressions)`` over independent units.

    Notes
    -----
    With ``r = C / N`` (``C = sum c_u``, ``N = sum n_u``) over ``m`` units,
    ``Var(r) ~= m / (m - 1) * sum_u (c_u - r n_u)^2 / N^2`` (the linearisation of the ratio;
    Deng, Knoblich & Lu 2018, eq. 4, with the sample covariance of ``(c_u, n_u)``).

    Examples
    --------
    >>> round(ratio_variance(np.array([1.0, 0.0, 2.0]), np.array([2.0, 2.0, 4.0])), 6)
    0.020508
    """
    c = np.asarray(clicks, dtype=np.float64)
    n = np.asarray(impressions, dtype=np.float64)
    m = len(c)
    total = n.sum()
    r = c.sum() / total
    return float(m / (m - 1) * np.sum((c - r * n) ** 2) / total**2)


def analyse(
    log: pd.DataFrame,
    *,
    method: str = "delta",
    n_boot: int = 2000,
    rng: RngLike = None,
    expected_allocation: float = 0.5,
    arms: tuple[str, str] | None = None,
    items: pd.DataFrame | None = None,
    cluster_column: str = "cluster",
    confidence: float = 0.95,
    fdr: float = 0.05,
    srm_threshold: float = 0.001,
    min_cluster_units: int = 2,
) -> ExperimentResult:
    """Estimate the effect of substitution on CTR from an impression/click log.

    Parameters
    ----------
    log
        One row per impression: ``unit, query, position, shown_id, original_id, arm, clicked``
        (and optionally the original item's cluster in ``cluster_column``).
    method
        ``"delta"`` (delta method over units) or ``"bootstrap"`` (Poisson bootstrap over units,
        percentile intervals) for the unit-clustered intervals.
    n_boot
        Bootstrap replicates.
    rng
        Seed or Generator for the bootstrap.
    expected_allocation
        Planned treatment share of units, for the sample-ratio-mismatch test.
    arms
        ``(control, treatment)`` names; inferred when the labels are ``control``/``treatment``
        or ``A1``/``A2`` (A/A).
    items
        Items table with ``id`` and ``cluster_column``, used for the per-cluster breakdown when
        the log has no cluster column (the original item's cluster is used).
    cluster_column
        Name of the cluster column (in the log, else in ``items``).
    confidence
        Level of every interval.
    fdr
        Benjamini-Hochberg false discovery rate for flagging clusters where substitution hurts.
    srm_threshold
        p-value under which the unit split is flagged as a sample ratio mismatch.
    min_cluster_units
        Clusters with fewer units in either arm are listed but not tested.

    Returns
    -------
    ExperimentResult

    Notes
    -----
    *Position-adjusted CTR.* With ``c_p`` the control CTR at position ``p``, an arm's expected
    clicks are ``E_a = sum_p N_{a,p} c_p`` and ``PACTR_a = C_a / E_a`` (so ``PACTR_C = 1``).
    The ratio ``R = PACTR_T / PACTR_C`` is robust to arms differing in position mix. Its
    delta-method interval is built on ``log R`` from per-unit influence values that include the
    uncertainty of the ``c_p`` (estimated from control units).

    *Tests.* The unit-clustered p-value is ``2 Phi(-|d| / se)``. The naive test pools clicks over
    impressions: ``z = d / sqrt(p (1 - p) (1/N_T + 1/N_C))``, interval
    ``d +- z_{1-a/2} sqrt(p_T q_T / N_T + p_C q_C / N_C)``. The sample-ratio test is Pearson's
    chi-square on the unit counts with one degree of freedom.

    References
    ----------
    .. [1] Deng, A., Knoblich, U., Lu, J. (2018). Applying the Delta Method in Metric Analytics.
       KDD.
    .. [2] Chamandy, N., Muralidharan, O., Najmi, A., Naidu, S. (2012). Estimating Uncertainty
       for Massive Data Streams. Google Technical Report.
    .. [3] Fabijan, A. et al. (2019). Diagnosing Sample Ratio Mismatch in Online Controlled
       Experiments. KDD.

    Examples
    --------
    >>> from ccgraph.experiment.simulate import simulate_log
    >>> sim = simulate_log(n_units=400, baseline_ctr=0.1, effect=0.03, rng=1)
    >>> res = analyse(sim.log)
    >>> lo, hi = res.difference_ci
    >>> bool(lo < sim.truth.difference < hi)
    True
    """
    check_choice("method", method, ("delta", "bootstrap"))
    n_boot = check_int("n_boot", n_boot, low=100)
    share = check_float(
        "expected_allocation",
        expected_allocation,
        low=0.0,
        high=1.0,
        low_inclusive=False,
        high_inclusive=False,
    )
    confidence = check_float("confidence", confidence, low=0.5, high=1.0, high_inclusive=False)
    fdr = check_float("fdr", fdr, low=0.0, high=1.0, low_inclusive=False)
    srm_threshold = check_float("srm_threshold", srm_threshold, low=0.0, high=1.0)
    min_cluster_units = check_int("min_cluster_units", min_cluster_units, low=2)
    checked = check_log(log, arms=arms)
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))

    m = len(checked.units)
    n_u = np.bincount(checked.unit_code, minlength=m).astype(np.float64)
    c_u = np.bincount(checked.unit_code, weights=checked.clicked, minlength=m)
    t = checked.unit_treated
    arm_ctr, arm_var = {}, {}
    for flag in (False, True):
        sel = t == flag
        arm_ctr[flag] = c_u[sel].sum() / n_u[sel].sum()
        arm_var[flag] = ratio_variance(c_u[sel], n_u[sel])
    _warn_degenerate_arms(checked, c_u, n_u)
    diff = arm_ctr[True] - arm_ctr[False]
    lift = arm_ctr[True] / arm_ctr[False] - 1.0 if arm_ctr[False] > 0 else math.nan
    pos = _position_adjusted(checked)

    if method == "delta":
        se = math.sqrt(arm_var[True] + arm_var[False])
        diff_ci = (diff - z * se, diff + z * se)
        lift_se = _lift_se(arm_ctr, arm_var)
        lift_ci = (lift - z * lift_se, lift + z * lift_se)
        ratio_ci = _exp_ci(pos["log_ratio"], pos["log_ratio_se"], z)
    else:
        boot = _bootstrap(checked, c_u, n_u, pos, n_boot, as_generator(rng))
        q = [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0]
        se = float(np.nanstd(boot["difference"], ddof=1))
        diff_ci = _quantiles(boot["difference"], q)
        lift_ci = _quantiles(boot["lift"], q)
        ratio_ci = _quantiles(boot["ratio"], q)
    p_value = float(2.0 * stats.norm.sf(abs(diff) / se)) if se > 0 else math.nan

    naive = _naive_test(checked, z)
    m_t, m_c = int(t.sum()), int((~t).sum())
    expected = np.array([m * (1.0 - share), m * share])
    chi2 = float(np.sum((np.array([m_c, m_t]) - expected) ** 2 / expected))
    srm_p = float(stats.chi2.sf(chi2, df=1))

    arms_frame = pd.DataFrame(
        {
            "arm": [checked.control, checked.treatment],
            "units": [m_c, m_t],
            "impressions": [int(n_u[~t].sum()), int(n_u[t].sum())],
            "clicks": [int(c_u[~t].sum()), int(c_u[t].sum())],
            "ctr": [arm_ctr[False], arm_ctr[True]],
            "ctr_se": [math.sqrt(arm_var[False]), math.sqrt(arm_var[True])],
            "position_adjusted_ctr": [1.0, pos["ratio"]],
        }
    )
    labels = cluster_labels(log, items=items, cluster_column=cluster_column)
    clusters = None
    if labels is not None:
        clusters = cluster_breakdown(checked, labels, fdr=fdr, min_units=min_cluster_units)
    return ExperimentResult(
        method=method,
        control=checked.control,
        treatment=checked.treatment,
        confidence=confidence,
        arms=arms_frame,
        difference=float(diff),
        difference_se=float(se),
        difference_ci=_floats(diff_ci),
        p_value=p_value,
        relative_lift=float(lift),
        relative_lift_ci=_floats(lift_ci),
        position_adjusted_ratio=float(pos["ratio"]),
        position_adjusted_ratio_ci=_floats(ratio_ci),
        naive_difference_ci=naive[0],
        naive_z=naive[1],
        naive_p_value=naive[2],
        srm_chi2=chi2,
        srm_p_value=srm_p,
        srm_flag=bool(srm_p < srm_threshold),
        expected_allocation=share,
        srm_threshold=srm_threshold,
        clusters=clusters,
        n_boot=n_boot if method == "bootstrap" else None,
    )


def _warn_degenerate_arms(log: CheckedLog, c_u: np.ndarray, n_u: np.ndarray) -> None:
    """Warn when an arm has no clicks (or only clicks): its CTR has a standard error of 0."""
    t = log.unit_treated
    odd = []
    for name, sel in ((log.control, ~t), (log.treatment, t)):
        clicks, imps = float(c_u[sel].sum()), float(n_u[sel].sum())
        if clicks == 0 or clicks == imps:
            what = "no clicks" if clicks == 0 else "a click on every impression"
            odd.append(f"arm {name!r} has {what} ({imps:,.0f} impressions)")
    if not odd:
        return
    undefined = (
        "; the relative lift and the position-adjusted ratio are undefined (NaN)"
        if float(c_u[~t].sum()) == 0
        else ""
    )
    warnings.warn(
        f"{' and '.join(odd)}: the standard error of such an arm's CTR is 0, so the intervals "
        f"understate the uncertainty or are empty (p = NaN when both arms are degenerate)"
        f"{undefined}; check "
        "the log's `clicked` column, or collect more traffic",
        DataQualityWarning,
        stacklevel=3,
    )


def _position_adjusted(log: CheckedLog) -> dict[str, Any]:
    """Point estimate and delta-method SE of ``log(PACTR_T / PACTR_C)`` (see Notes above)."""
    pcodes, _ = pd.factorize(log.position)
    n_pos = int(pcodes.max()) + 1
    ctrl, treat = ~log.treated, log.treated
    n_cp = np.bincount(pcodes[ctrl], minlength=n_pos).astype(np.float64)
    c_cp = np.bincount(pcodes[ctrl], weights=log.clicked[ctrl], minlength=n_pos)
    n_tp = np.bincount(pcodes[treat], minlength=n_pos).astype(np.float64)
    known = n_cp > 0
    c_p = np.divide(c_cp, n_cp, out=np.zeros(n_pos), where=known)
    keep = known[pcodes]
    dropped = int((treat & ~keep).sum())
    if dropped:
        warnings.warn(
            f"{dropped} treatment impressions are at positions with no control impressions; "
            "they are left out of the position-adjusted CTR",
            DataQualityWarning,
            stacklevel=3,
        )
    expected_i = c_p[pcodes]
    m = len(log.units)
    sel_t = treat & keep
    c_t = float(log.clicked[sel_t].sum())
    e_t = float(expected_i[sel_t].sum())
    out: dict[str, Any] = {"pcodes": pcodes, "n_pos": n_pos, "keep": keep}
    if e_t <= 0 or c_t <= 0:
        out.update(
            ratio=(c_t / e_t) if e_t > 0 else math.nan, log_ratio=math.nan, log_ratio_se=math.nan
        )
        return out
    w_p = np.divide(n_tp, n_cp, out=np.zeros(n_pos), where=known)
    psi_t = np.bincount(
        log.unit_code[sel_t],
        weights=log.clicked[sel_t] / c_t - expected_i[sel_t] / e_t,
        minlength=m,
    )
    psi_c = np.bincount(
        log.unit_code[ctrl],
        weights=-w_p[pcodes[ctrl]] * (log.clicked[ctrl] - expected_i[ctrl]) / e_t,
        minlength=m,
    )
    var = 0.0
    for sel, psi in ((log.unit_treated, psi_t), (~log.unit_treated, psi_c)):
        vals = psi[sel]
        var += len(vals) / (len(vals) - 1) * float(np.sum((vals - vals.mean()) ** 2))
    out.update(ratio=c_t / e_t, log_ratio=math.log(c_t / e_t), log_ratio_se=math.sqrt(var))
    return out


def _bootstrap(
    log: CheckedLog,
    c_u: np.ndarray,
    n_u: np.ndarray,
    pos: dict[str, Any],
    n_boot: int,
    gen: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Poisson(1) bootstrap over units: replicate totals are weight-matrix products."""
    t = log.unit_treated
    m, n_pos = len(t), pos["n_pos"]
    pc = pos["pcodes"]
    # units x positions: clicks and impressions (treatment clicks only where control has data)
    shape = (m, n_pos)
    ones = np.ones(len(pc))
    imp = sp.csr_matrix((ones, (log.unit_code, pc)), shape=shape)
    clk = sp.csr_matrix((log.clicked, (log.unit_code, pc)), shape=shape)
    idx_t, idx_c = np.flatnonzero(t), np.flatnonzero(~t)
    imp_t, imp_c, clk_t, clk_c = imp[idx_t].T, imp[idx_c].T, clk[idx_t].T, clk[idx_c].T
    diffs, lifts, ratios = [], [], []
    for start in range(0, n_boot, _BOOT_CHUNK):
        b = min(_BOOT_CHUNK, n_boot - start)
        w = gen.poisson(1.0, size=(b, m)).astype(np.float64)
        w_t, w_c = w[:, idx_t], w[:, idx_c]
        with np.errstate(invalid="ignore", divide="ignore"):
            r_t = (w_t @ c_u[idx_t]) / (w_t @ n_u[idx_t])
            r_c = (w_c @ c_u[idx_c]) / (w_c @ n_u[idx_c])
            diffs.append(r_t - r_c)
            lifts.append(r_t / r_c - 1.0)
            n_cp = (imp_c @ w_c.T).T
            c_p = np.where(n_cp > 0, (clk_c @ w_c.T).T / n_cp, 0.0)
            n_tp = (imp_t @ w_t.T).T
            c_tp = (clk_t @ w_t.T).T
            usable = n_cp > 0  # positions without control data in a replicate are skipped
            e_t = np.sum(n_tp * c_p * usable, axis=1)
            ratios.append(np.sum(c_tp * usable, axis=1) / e_t)
    return {
        "difference": np.concatenate(diffs),
        "lift": np.concatenate(lifts),
        "ratio": np.concatenate(ratios),
    }


def _naive_test(log: CheckedLog, z: float) -> tuple[tuple[float, float], float, float]:
    t = log.treated
    n_t, n_c = float(t.sum()), float((~t).sum())
    p_t, p_c = log.clicked[t].mean(), log.clicked[~t].mean()
    d = p_t - p_c
    pool = (log.clicked.sum()) / (n_t + n_c)
    se0 = math.sqrt(pool * (1 - pool) * (1 / n_t + 1 / n_c))
    se1 = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    zval = d / se0 if se0 > 0 else math.nan
    p = float(2 * stats.norm.sf(abs(zval))) if se0 > 0 else math.nan
    return (float(d - z * se1), float(d + z * se1)), float(zval), p


def _lift_se(ctr: dict[bool, float], var: dict[bool, float]) -> float:
    """Delta method: ``Var(r_T / r_C) ~= (r_T / r_C)^2 (V_T / r_T^2 + V_C / r_C^2)``."""
    if ctr[True] <= 0 or ctr[False] <= 0:
        return math.nan
    return (
        ctr[True]
        / ctr[False]
        * math.sqrt(var[True] / ctr[True] ** 2 + var[False] / ctr[False] ** 2)
    )


def _exp_ci(center: float, se: float, z: float) -> tuple[float, float]:
    if not (math.isfinite(center) and math.isfinite(se)):
        return (math.nan, math.nan)
    return (math.exp(center - z * se), math.exp(center + z * se))


def _quantiles(values: np.ndarray, q: list[float]) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(finite, q)
    return (float(lo), float(hi))


def _floats(pair: tuple[float, float]) -> tuple[float, float]:
    return (float(pair[0]), float(pair[1]))
