from __future__ import annotations

import math
import warnings

import pytest
from scipy import stats

from ccgraph.exceptions import ParameterError
from ccgraph.experiment.power import (
    design_effect,
    minimum_detectable_effect,
    power_two_proportions,
    sample_size,
)

sm_power = pytest.importorskip("statsmodels.stats.power")
sm_prop = pytest.importorskip("statsmodels.stats.proportion")

GRID = [
    (0.10, 0.02, 0.5, 0.05, 0.8),
    (0.03, 0.003, 0.5, 0.05, 0.9),
    (0.25, -0.02, 0.2, 0.01, 0.8),
    (0.05, 0.01, 0.7, 0.10, 0.95),
    (0.50, 0.05, 0.5, 0.05, 0.5),
]


@pytest.mark.parametrize(("p", "eff", "share", "alpha", "power"), GRID)
def test_cohen_h_matches_normal_ind_power(p, eff, share, alpha, power):
    got = sample_size(baseline_ctr=p, effect=eff, allocation=share, alpha=alpha, power=power)
    h = sm_prop.proportion_effectsize(p + eff, p)
    ratio = share / (1 - share)
    want = sm_power.NormalIndPower().solve_power(
        effect_size=h, alpha=alpha, power=power, ratio=ratio
    )
    assert got.n_control == pytest.approx(want, rel=1e-6)
    assert got.n_treatment == pytest.approx(want * ratio, rel=1e-6)


@pytest.mark.parametrize(("p", "eff", "share", "alpha", "power"), GRID)
def test_pooled_matches_statsmodels_onetail(p, eff, share, alpha, power):
    got = sample_size(
        baseline_ctr=p, effect=eff, allocation=share, alpha=alpha, power=power, method="pooled"
    )
    k = share / (1 - share)
    # statsmodels: sample 1 has prop2 + diff (= control here), nobs2 = ratio * nobs1
    want = sm_prop.samplesize_proportions_2indep_onetail(
        diff=-eff, prop2=p + eff, power=power, ratio=k, alpha=alpha
    )
    assert got.n_control == pytest.approx(want, rel=1e-9)


def test_pooled_hand_computed():
    # p_C = 0.05, p_T = 0.10, equal groups, alpha 0.05 two-sided, power 0.8 (Fleiss 2003 form)
    za, zb = 1.959963984540054, 0.8416212335729143
    pbar = 0.075
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(0.05 * 0.95 + 0.1 * 0.9)) ** 2
    n /= 0.05**2
    got = sample_size(baseline_ctr=0.05, effect=0.05, method="pooled")
    assert got.n_control == pytest.approx(n, rel=1e-9)
    assert got.n_total == 2 * math.ceil(n)


def test_one_sided_and_relative():
    got = sample_size(baseline_ctr=0.1, effect=0.1, relative=True, alternative="one-sided")
    h = sm_prop.proportion_effectsize(0.11, 0.1)
    want = sm_power.NormalIndPower().solve_power(
        effect_size=h, alpha=0.05, power=0.8, alternative="larger"
    )
    assert got.n_control == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("method", ["cohen_h", "pooled"])
def test_power_function_matches_statsmodels(method):
    p_c, p_t, n_c, n_t = 0.1, 0.115, 5000, 3000
    got = power_two_proportions(
        p_control=p_c, p_treatment=p_t, n_control=n_c, n_treatment=n_t, method=method
    )
    if method == "cohen_h":
        h = sm_prop.proportion_effectsize(p_t, p_c)
        want = sm_power.NormalIndPower().power(h, nobs1=n_c, alpha=0.05, ratio=n_t / n_c)
    else:
        pbar = (n_c * p_c + n_t * p_t) / (n_c + n_t)
        sd0 = math.sqrt(pbar * (1 - pbar) * (1 / n_c + 1 / n_t))
        sd1 = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
        # the far tail is ignored: one tail at alpha / 2
        want = sm_power.normal_power_het(
            p_t - p_c, 1, 0.025, std_null=sd0, std_alternative=sd1, alternative="larger"
        )
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("method", ["cohen_h", "pooled"])
def test_mde_round_trip(method):
    m = minimum_detectable_effect(
        baseline_ctr=0.08, impressions_per_day=5000, days=14, allocation=0.3, method=method
    )
    assert m.n_control + m.n_treatment == pytest.approx(70_000)
    pw = power_two_proportions(
        p_control=0.08,
        p_treatment=0.08 + m.absolute,
        n_control=m.n_control,
        n_treatment=m.n_treatment,
        method=method,
    )
    assert pw == pytest.approx(0.8, abs=1e-8)
    assert m.relative == pytest.approx(m.absolute / 0.08)


def test_mde_matches_statsmodels_effect_size():
    m = minimum_detectable_effect(baseline_ctr=0.1, n_total=20_000)
    h = sm_prop.proportion_effectsize(0.1 + m.absolute, 0.1)
    assert sm_power.NormalIndPower().power(h, nobs1=10_000, alpha=0.05) == pytest.approx(0.8)
    # statsmodels' own root finder agrees to its tolerance
    h_sm = sm_power.NormalIndPower().solve_power(nobs1=10_000, alpha=0.05, power=0.8, ratio=1)
    p_t = math.sin(math.asin(math.sqrt(0.1)) + h_sm / 2) ** 2
    assert m.absolute == pytest.approx(p_t - 0.1, rel=1e-3)


def test_design_effect_inflates_sizes():
    assert design_effect(icc=0.05, impressions_per_unit=21) == pytest.approx(2.0)
    base = sample_size(baseline_ctr=0.1, effect=0.01)
    clus = sample_size(baseline_ctr=0.1, effect=0.01, icc=0.05, impressions_per_unit=21)
    assert clus.n_control == pytest.approx(2 * base.n_control)
    assert clus.units_total == math.ceil(clus.n_total / 21)
    direct = sample_size(baseline_ctr=0.1, effect=0.01, design_effect=2.0)
    assert direct.n_control == pytest.approx(clus.n_control)
    m1 = minimum_detectable_effect(baseline_ctr=0.1, n_total=40_000)
    m2 = minimum_detectable_effect(baseline_ctr=0.1, n_total=80_000, design_effect=2.0)
    assert m1.absolute == pytest.approx(m2.absolute, rel=1e-9)


def test_bad_parameters():
    with pytest.raises(ParameterError, match="effect"):
        sample_size(baseline_ctr=0.1, effect=0.0)
    with pytest.raises(ParameterError, match="effect"):
        sample_size(baseline_ctr=0.95, effect=0.1)
    with pytest.raises(ParameterError, match="baseline_ctr"):
        sample_size(baseline_ctr=1.5, effect=0.1)
    with pytest.raises(ParameterError, match="impressions_per_unit"):
        sample_size(baseline_ctr=0.1, effect=0.01, icc=0.1)
    with pytest.raises(ParameterError, match="method"):
        sample_size(baseline_ctr=0.1, effect=0.01, method="exact")
    with pytest.raises(ParameterError, match="n_total"):
        minimum_detectable_effect(baseline_ctr=0.1)
    with pytest.raises(ParameterError, match="power"):
        minimum_detectable_effect(baseline_ctr=0.1, n_total=4, power=0.99999)


@pytest.mark.parametrize("m", [0, -5, 0.5])
def test_impressions_per_unit_below_one_is_refused_even_without_icc(m):
    # before: 0 -> ZeroDivisionError; -5 -> "units: -3,257"
    from ccgraph.experiment import sample_size

    with pytest.raises(ParameterError, match=r"`impressions_per_unit` must be a float >= 1"):
        sample_size(baseline_ctr=0.05, effect=0.01, impressions_per_unit=m)


def test_an_undetectably_small_effect_warns():
    # before: effect=1e-12 gave ~2.8e24 impressions without a word
    from ccgraph.exceptions import DataQualityWarning
    from ccgraph.experiment import sample_size

    with pytest.warns(DataQualityWarning, match=r"needs 2\.\d+e\+24 impressions.*too small"):
        s = sample_size(baseline_ctr=0.1, effect=1e-12)
    # closed form: 2 (z_a + z_b)^2 / h^2 per arm, h ~ effect / sqrt(p (1 - p)) for a tiny effect
    h = 1e-12 / math.sqrt(0.1 * 0.9)
    z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    assert s.n_total == pytest.approx(4 * z**2 / h**2, rel=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_size(baseline_ctr=0.1, effect=1e-5)  # ~1.4e10 impressions: no warning
