from __future__ import annotations

import numpy as np
import pytest

from ccgraph.experiment import analyse, benjamini_hochberg, simulate_log

multitest = pytest.importorskip("statsmodels.stats.multitest")


def test_bh_matches_statsmodels():
    g = np.random.default_rng(0)
    p = np.concatenate([g.uniform(size=40), g.uniform(0, 0.01, size=10)])
    want = multitest.multipletests(p, method="fdr_bh")[1]
    assert np.allclose(benjamini_hochberg(p), want)
    with_nan = np.r_[p[:5], np.nan]
    got = benjamini_hochberg(with_nan)
    assert np.isnan(got[-1])
    assert np.allclose(got[:5], multitest.multipletests(p[:5], method="fdr_bh")[1])


def test_flags_exactly_the_hurt_clusters():
    sim = simulate_log(
        n_units=4000,
        baseline_ctr=0.12,
        effect=0.02,
        unit_heterogeneity=0.8,
        n_clusters=15,
        hurt_clusters=3,
        hurt_shift=-1.5,
        rng=4,
    )
    res = analyse(sim.log)
    flagged = set(res.clusters.loc[res.clusters.hurts, "cluster"])
    assert flagged == {0, 1, 2}
    # per-cluster differences track the truth
    est = res.clusters.set_index("cluster")["difference"].sort_index().to_numpy()
    assert np.corrcoef(est, sim.truth.cluster_difference)[0, 1] > 0.9


def test_no_flags_without_harm():
    sim = simulate_log(n_units=2000, baseline_ctr=0.1, effect=0.0, n_clusters=25, rng=7)
    res = analyse(sim.log)
    assert not res.clusters.hurts.any()


def test_cluster_from_items_matches_log_column():
    sim = simulate_log(n_units=300, baseline_ctr=0.1, effect=0.02, n_clusters=6, rng=1)
    items = (
        sim.log[["original_id", "cluster"]].drop_duplicates().rename(columns={"original_id": "id"})
    )
    a = analyse(sim.log).clusters
    b = analyse(sim.log.drop(columns="cluster"), items=items).clusters
    assert np.allclose(a["difference"], b["difference"])
    assert analyse(sim.log.drop(columns="cluster")).clusters is None


def test_small_clusters_not_tested():
    sim = simulate_log(n_units=40, impressions_per_unit=2, n_clusters=60, rng=2)
    res = analyse(sim.log)
    small = (res.clusters.units_control < 2) | (res.clusters.units_treatment < 2)
    assert small.any()
    assert res.clusters.loc[small, "p_hurt"].isna().all()
    assert not res.clusters.loc[small, "hurts"].any()
