"""A small version of the coverage study in benchmarks/experiment.py."""

from __future__ import annotations

import numpy as np

from ccgraph.experiment import analyse, simulate_log


def test_clustered_ci_covers_and_naive_under_covers():
    n_sims = 100
    delta, naive, aa_reject = [], [], []
    for i in range(n_sims):
        sim = simulate_log(
            n_units=200,
            impressions_per_unit=20,
            baseline_ctr=0.1,
            effect=0.02,
            unit_heterogeneity=1.2,
            salt=f"smoke{i}",
            rng=i,
        )
        res = analyse(sim.log)
        truth = sim.truth.difference
        delta.append(res.difference_ci[0] <= truth <= res.difference_ci[1])
        naive.append(res.naive_difference_ci[0] <= truth <= res.naive_difference_ci[1])
        null = simulate_log(
            n_units=200,
            impressions_per_unit=20,
            baseline_ctr=0.1,
            unit_heterogeneity=1.2,
            aa=True,
            salt=f"aa{i}",
            rng=10_000 + i,
        )
        aa_reject.append(analyse(null.log).p_value < 0.05)
    assert 0.88 <= np.mean(delta) <= 0.995
    assert np.mean(naive) < np.mean(delta) - 0.05
    assert np.mean(aa_reject) <= 0.12
