from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from ccgraph.exceptions import ParameterError
from ccgraph.experiment.assign import assign
from ccgraph.experiment.simulate import position_bias_curve, simulate_log, simulation_truth


def _monte_carlo(truth, *, sd, curve, hurt, n_clusters, gamma, n=2_000_000, seed=0):
    g = np.random.default_rng(seed)
    b = g.normal(0, sd, n)
    e = curve[g.integers(0, len(curve), n)]
    k = g.integers(0, n_clusters, n)
    p_c = e * special.expit(truth.intercept + b)
    p_t = e * special.expit(truth.intercept + b + truth.treatment_shift + gamma * (k < hurt))
    return p_c.mean(), p_t.mean()


@pytest.mark.parametrize(
    ("sd", "bias", "hurt"), [(0.0, "none", 0), (1.0, "log", 0), (1.5, "geometric", 4)]
)
def test_truth_matches_monte_carlo(sd, bias, hurt):
    truth = simulation_truth(
        baseline_ctr=0.08,
        effect=0.015,
        unit_heterogeneity=sd,
        position_bias=bias,
        n_clusters=20,
        hurt_clusters=hurt,
        hurt_shift=-1.0,
    )
    assert truth.ctr_control == pytest.approx(0.08, abs=1e-12)
    assert truth.difference == pytest.approx(0.015, abs=1e-12)
    curve = position_bias_curve(bias, n_positions=10)
    c, t = _monte_carlo(truth, sd=sd, curve=curve, hurt=hurt, n_clusters=20, gamma=-1.0)
    assert c == pytest.approx(0.08, abs=6e-4)
    assert t - c == pytest.approx(0.015, abs=8e-4)
    assert np.mean(truth.cluster_difference) == pytest.approx(0.015, abs=1e-12)
    if hurt:
        assert (truth.cluster_difference[:hurt] < 0).all()


def test_relative_effect():
    truth = simulation_truth(baseline_ctr=0.1, effect=0.2, relative=True, unit_heterogeneity=0.7)
    assert truth.ctr_treatment == pytest.approx(0.12)
    assert truth.relative_lift == pytest.approx(0.2)


def test_log_shape_and_arms():
    sim = simulate_log(n_units=300, baseline_ctr=0.1, effect=0.02, salt="abc", rng=1)
    log = sim.log
    assert list(log.columns) == [
        "unit",
        "query",
        "position",
        "shown_id",
        "original_id",
        "arm",
        "clicked",
        "cluster",
    ]
    per_unit = log.groupby("unit")["arm"].first()
    assert (per_unit.to_numpy() == assign(per_unit.index, salt="abc")).all()
    ctrl = log[log.arm == "control"]
    treat = log[log.arm == "treatment"]
    assert (ctrl.shown_id == ctrl.original_id).all()
    assert (treat.shown_id != treat.original_id).all()
    same_cluster = treat.shown_id.str.split("-").str[0] == treat.original_id.str.split("-").str[0]
    assert same_cluster.all()
    assert log.position.between(1, 10).all()


def test_large_log_ctr_close_to_truth():
    sim = simulate_log(
        n_units=20_000, impressions_per_unit=10, baseline_ctr=0.1, effect=0.03, rng=2
    )
    ctr = sim.log.groupby("arm")["clicked"].mean()
    assert ctr["control"] == pytest.approx(0.1, abs=0.004)
    assert ctr["treatment"] - ctr["control"] == pytest.approx(0.03, abs=0.006)


def test_unit_heterogeneity_correlates_impressions():
    def icc(sd):
        sim = simulate_log(
            n_units=3000,
            impressions_per_unit=20,
            impressions_distribution="fixed",
            baseline_ctr=0.2,
            position_bias="none",
            unit_heterogeneity=sd,
            rng=3,
        )
        rates = sim.log.groupby("unit")["clicked"].mean()
        p = sim.log["clicked"].mean()
        # variance of unit means beyond binomial noise, over p(1-p): an ICC estimate
        return (rates.var() - p * (1 - p) / 20) / (p * (1 - p))

    assert abs(icc(0.0)) < 0.01
    assert icc(1.0) > 0.05


def test_aa_and_fixed_counts():
    sim = simulate_log(
        n_units=50, impressions_distribution="fixed", impressions_per_unit=7, aa=True
    )
    assert set(sim.log.arm) == {"A1", "A2"}
    assert (sim.log.shown_id == sim.log.original_id).all()
    assert (sim.log.groupby("unit").size() == 7).all()


def test_seeded():
    a = simulate_log(n_units=40, rng=5).log
    b = simulate_log(n_units=40, rng=5).log
    assert a.equals(b)


def test_bad_parameters():
    with pytest.raises(ParameterError, match="baseline_ctr"):
        simulate_log(n_units=10, baseline_ctr=0.9)  # above the mean examination probability
    with pytest.raises(ParameterError, match="A/A"):
        simulate_log(n_units=10, effect=0.01, aa=True)
    with pytest.raises(ParameterError, match="position_bias"):
        position_bias_curve([0.5, 2.0], n_positions=2)
    with pytest.raises(ParameterError, match="n_units"):
        simulate_log(n_units=1)
