from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ccgraph.exceptions import DataQualityWarning
from ccgraph.experiment import analyse, ratio_variance, simulate_log

sm = pytest.importorskip("statsmodels.api")
sm_prop = pytest.importorskip("statsmodels.stats.proportion")


def _hand_log():
    """4 control units and 4 treatment units, clicks and impressions chosen by hand."""
    rows = []
    spec = {
        "control": {"c1": (1, 4), "c2": (0, 2), "c3": (2, 5), "c4": (1, 3)},
        "treatment": {"t1": (2, 4), "t2": (1, 2), "t3": (3, 6), "t4": (0, 2)},
    }
    for arm, units in spec.items():
        for unit, (clicks, imps) in units.items():
            for j in range(imps):
                rows.append((unit, "q", j % 3, "x", "x", arm, int(j < clicks)))
    cols = ["unit", "query", "position", "shown_id", "original_id", "arm", "clicked"]
    return pd.DataFrame(rows, columns=cols), spec


def test_hand_computed_ctr_difference_and_delta_se():
    log, spec = _hand_log()
    res = analyse(log)
    ctr_c, ctr_t = 4 / 14, 6 / 14
    assert res.arms.set_index("arm").loc["control", "ctr"] == pytest.approx(ctr_c)
    assert res.arms.set_index("arm").loc["treatment", "ctr"] == pytest.approx(ctr_t)
    assert res.difference == pytest.approx(ctr_t - ctr_c)
    assert res.relative_lift == pytest.approx(ctr_t / ctr_c - 1)

    # textbook delta method on unit means: Var(ybar / xbar) ~ (s_y^2 - 2 r s_xy + r^2 s_x^2)
    # / (m xbar^2), with sample (co)variances
    def delta(units):
        y = np.array([c for c, _ in units.values()], float)
        x = np.array([n for _, n in units.values()], float)
        r = y.mean() / x.mean()
        cov = np.cov(y, x, ddof=1)
        return (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (len(y) * x.mean() ** 2)

    var = delta(spec["control"]) + delta(spec["treatment"])
    assert res.difference_se == pytest.approx(math.sqrt(var))
    z = stats.norm.isf(0.025)
    assert res.difference_ci[0] == pytest.approx(res.difference - z * math.sqrt(var))
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(res.difference) / math.sqrt(var)))


def test_ratio_variance_equals_cluster_robust_ols():
    sim = simulate_log(n_units=80, baseline_ctr=0.2, effect=0.04, unit_heterogeneity=1.0, rng=3)
    log = sim.log
    res = analyse(log)
    x = sm.add_constant((log.arm == "treatment").astype(float).to_numpy())
    groups = pd.factorize(log.unit)[0]
    fit = sm.OLS(log.clicked.astype(float).to_numpy(), x).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    assert res.difference == pytest.approx(fit.params[1])
    m = res.arms.units.to_numpy()
    cr0 = np.sum(res.arms.ctr_se.to_numpy() ** 2 * (m - 1) / m)  # drop our m/(m-1) factor
    assert cr0 == pytest.approx(fit.bse[1] ** 2, rel=1e-9)


def test_ratio_variance_small():
    c, n = np.array([1.0, 0.0, 2.0]), np.array([2.0, 2.0, 4.0])
    r = 3 / 8
    assert ratio_variance(c, n) == pytest.approx(1.5 * np.sum((c - r * n) ** 2) / 64)


def test_naive_test_matches_statsmodels():
    sim = simulate_log(n_units=200, baseline_ctr=0.1, effect=0.02, rng=5)
    log = sim.log
    res = analyse(log)
    t = log.arm == "treatment"
    count = [log.clicked[t].sum(), log.clicked[~t].sum()]
    nobs = [t.sum(), (~t).sum()]
    z, p = sm_prop.proportions_ztest(count, nobs)
    assert res.naive_z == pytest.approx(z)
    assert res.naive_p_value == pytest.approx(p)
    lo, hi = sm_prop.confint_proportions_2indep(
        count[0], nobs[0], count[1], nobs[1], method="wald", compare="diff"
    )
    assert res.naive_difference_ci == pytest.approx((lo, hi))


def test_naive_ci_narrower_than_clustered_with_correlated_units():
    sim = simulate_log(
        n_units=500, impressions_per_unit=40, baseline_ctr=0.1, unit_heterogeneity=1.5, rng=6
    )
    res = analyse(sim.log)
    naive = res.naive_difference_ci[1] - res.naive_difference_ci[0]
    clustered = res.difference_ci[1] - res.difference_ci[0]
    assert clustered > 1.5 * naive


def test_bootstrap_agrees_with_delta():
    sim = simulate_log(n_units=1500, baseline_ctr=0.1, effect=0.02, unit_heterogeneity=1.0, rng=8)
    d = analyse(sim.log)
    b = analyse(sim.log, method="bootstrap", n_boot=1000, rng=0)
    assert b.difference == d.difference
    assert b.difference_se == pytest.approx(d.difference_se, rel=0.12)
    for lo_hi_b, lo_hi_d in [
        (b.difference_ci, d.difference_ci),
        (b.relative_lift_ci, d.relative_lift_ci),
        (b.position_adjusted_ratio_ci, d.position_adjusted_ratio_ci),
    ]:
        width = lo_hi_d[1] - lo_hi_d[0]
        assert lo_hi_b[0] == pytest.approx(lo_hi_d[0], abs=0.15 * width)
        assert lo_hi_b[1] == pytest.approx(lo_hi_d[1], abs=0.15 * width)
    assert b.n_boot == 1000 and d.n_boot is None
    again = analyse(sim.log, method="bootstrap", n_boot=1000, rng=0)
    assert again.difference_ci == b.difference_ci


def test_position_adjusted_removes_position_mix():
    # same CTR at each position in both arms (0.5 at position 1, 0.1 at position 2) but the
    # treatment arm is shown mostly at position 1: raw CTR differs, adjusted ratio is 1
    rows = []
    for u in range(10):
        for p, n, c in [(1, 2, 1), (2, 10, 1)]:
            rows += [(f"c{u}", p, int(j < c), "control") for j in range(n)]
        for p, n, c in [(1, 10, 5), (2, 10, 1)]:
            rows += [(f"t{u}", p, int(j < c), "treatment") for j in range(n)]
    log = pd.DataFrame(rows, columns=["unit", "position", "clicked", "arm"])
    log["query"], log["shown_id"], log["original_id"] = "q", "x", "x"
    res = analyse(log)
    assert res.difference == pytest.approx(6 / 20 - 2 / 12)
    assert res.position_adjusted_ratio == pytest.approx(1.0)
    assert res.arms.position_adjusted_ctr.tolist() == pytest.approx([1.0, 1.0])
    # hand computation: expected treatment clicks = 10*0.5 + 10*0.1 per unit
    log.loc[(log.arm == "treatment") & (log.position == 2), "clicked"] = 0
    res2 = analyse(log)
    assert res2.position_adjusted_ratio == pytest.approx(50 / 60)


def test_position_adjusted_ci_covers_simulated_truth():
    # position bias identical in both arms: the ratio equals CTR_T / CTR_C
    sim = simulate_log(n_units=3000, baseline_ctr=0.1, effect=0.02, rng=11)
    res = analyse(sim.log)
    lo, hi = res.position_adjusted_ratio_ci
    assert lo < 1.2 < hi


def test_srm_matches_scipy_and_flags():
    sim = simulate_log(n_units=2000, impressions_per_unit=3, baseline_ctr=0.1, rng=1)
    res = analyse(sim.log)
    counts = sim.log.groupby("arm")["unit"].nunique()
    want = stats.chisquare([counts["control"], counts["treatment"]])
    assert res.srm_chi2 == pytest.approx(want.statistic)
    assert res.srm_p_value == pytest.approx(want.pvalue)
    assert not res.srm_flag
    # drop 30 % of the treatment units: a logging bug
    t_units = sim.log.loc[sim.log.arm == "treatment", "unit"].unique()
    broken = sim.log[~sim.log.unit.isin(t_units[: int(0.3 * len(t_units))])]
    assert analyse(broken).srm_flag
    # ... unless that split was planned
    share = broken.groupby("arm")["unit"].nunique()["treatment"] / broken.unit.nunique()
    assert not analyse(broken, expected_allocation=share).srm_flag


def test_aa_log_arms_inferred():
    sim = simulate_log(n_units=300, aa=True, rng=2)
    res = analyse(sim.log)
    assert (res.control, res.treatment) == ("A1", "A2")


def test_views_are_consistent_and_serialisable():
    sim = simulate_log(n_units=300, baseline_ctr=0.1, effect=0.02, rng=3)
    res = analyse(sim.log)
    frame = res.to_frame()
    row = frame.set_index("metric").loc["difference"]
    assert row.estimate == res.difference and row.ci_low == res.difference_ci[0]
    text = res.summary()
    assert "CTR difference" in text and "naive" in text
    blob = json.loads(json.dumps(res.to_dict()))
    assert blob["difference"] == pytest.approx(res.difference)
    assert len(blob["clusters"]) == len(res.clusters)


@pytest.mark.parametrize(
    ("control", "treatment", "pattern"),
    [
        (0, 0, r"arm 'control' has no clicks .* and arm 'treatment' has no clicks"),
        (0, None, r"arm 'control' has no clicks .*relative lift and the position-adjusted"),
        (None, 1, r"arm 'treatment' has a click on every impression"),
    ],
)
def test_an_arm_without_click_variation_warns(control, treatment, pattern):
    # before: "CI +0.0000 to +0.0000, p = nan" (or a too-narrow CI) without a word
    log = simulate_log(n_units=60, baseline_ctr=0.2, rng=3).log
    for arm, value in (("control", control), ("treatment", treatment)):
        if value is not None:
            log.loc[log["arm"] == arm, "clicked"] = bool(value)
    with pytest.warns(DataQualityWarning, match=pattern):
        res = analyse(log)
    if control == 0:
        assert math.isnan(res.relative_lift)
