"""Synthetic impression/click logs with a known treatment effect and correlated units.

The model is a position-based click model (examination x attractiveness) with a unit-level random
effect on the logit of attractiveness, so impressions of one unit are correlated, as in real
search logs where some sessions click far more than others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.exceptions import ParameterError
from ccgraph.experiment.assign import assign

__all__ = [
    "SimulatedLog",
    "SimulationTruth",
    "position_bias_curve",
    "simulate_log",
    "simulation_truth",
]

_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(120)


@dataclass(frozen=True, slots=True, eq=False)
class SimulationTruth:
    """The population values the analysis estimates (the estimand), computed analytically.

    ``difference`` is ``CTR_T - CTR_C`` where ``CTR_a`` is the click probability of an impression
    drawn from the simulation's distribution (unit effect, position, cluster) in arm ``a``: the
    limit of ``sum(clicks) / sum(impressions)`` per arm as the number of units grows.
    ``cluster_difference[k]`` is the same difference restricted to impressions of cluster ``k``.
    """

    ctr_control: float
    ctr_treatment: float
    difference: float
    relative_lift: float
    cluster_difference: np.ndarray
    intercept: float
    treatment_shift: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        out = asdict(self)
        out["cluster_difference"] = self.cluster_difference.tolist()
        return out


@dataclass(frozen=True, slots=True, eq=False)
class SimulatedLog:
    """A simulated log (columns as :func:`ccgraph.experiment.analyse` expects) and its truth."""

    log: pd.DataFrame
    truth: SimulationTruth
    params: dict[str, Any] = field(default_factory=dict)


def position_bias_curve(
    kind: str | Sequence[float] = "log", *, n_positions: int = 10, decay: float = 0.7
) -> np.ndarray:
    """Return the examination probability of positions ``1..n_positions``.

    ``"log"``: ``1 / log2(p + 1)`` (the DCG discount); ``"geometric"``: ``decay ** (p - 1)``;
    ``"none"``: all ones; or the values themselves (each in (0, 1]).

    Examples
    --------
    >>> position_bias_curve("log", n_positions=3).round(3).tolist()
    [1.0, 0.631, 0.5]
    """
    n = check_int("n_positions", n_positions, low=1)
    if isinstance(kind, str):
        check_choice("position_bias", kind, ("log", "geometric", "none"))
        p = np.arange(1, n + 1, dtype=np.float64)
        if kind == "log":
            return 1.0 / np.log2(p + 1.0)
        if kind == "geometric":
            d = check_float("position_decay", decay, low=0.0, high=1.0, low_inclusive=False)
            return d ** (p - 1.0)
        return np.ones(n)
    curve = np.asarray(kind, dtype=np.float64)
    if curve.shape != (n,) or not np.all((curve > 0) & (curve <= 1)):
        raise ParameterError(
            f"`position_bias` values must be {n} numbers in (0, 1]; got {curve.tolist()}"
        )
    return curve


def simulation_truth(
    *,
    baseline_ctr: float,
    effect: float,
    relative: bool = False,
    position_bias: str | Sequence[float] = "log",
    position_decay: float = 0.7,
    n_positions: int = 10,
    unit_heterogeneity: float = 0.5,
    n_clusters: int = 20,
    hurt_clusters: int = 0,
    hurt_shift: float = -1.0,
) -> SimulationTruth:
    """Solve the model's intercept and treatment shift, and return the exact estimand.

    Notes
    -----
    ``P(click) = e_p * sigmoid(mu + b_u + delta * T + gamma * T * H_k)`` with
    ``b_u ~ N(0, sd^2)``, position ``p`` uniform on ``1..n_positions`` with examination ``e_p``,
    cluster ``k`` uniform on ``n_clusters`` and ``H_k = 1`` for the first ``hurt_clusters``
    clusters (``gamma = hurt_shift``). With ``ebar = mean(e_p)`` and
    ``S(x) = E_b[sigmoid(x + b)]`` (Gauss-Hermite quadrature, 120 nodes),
    ``CTR_C = ebar S(mu)`` and ``CTR_T = ebar [(1 - f) S(mu + delta) + f S(mu + delta + gamma)]``
    with ``f = hurt_clusters / n_clusters``; ``mu`` solves ``CTR_C = baseline_ctr`` and ``delta``
    solves ``CTR_T = baseline_ctr + effect`` (both by Brent's method), so the true difference is
    ``effect`` up to the root-finding tolerance (~1e-13).
    """
    base = check_float(
        "baseline_ctr", baseline_ctr, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    eff = check_float("effect", effect)
    target = base * (1.0 + eff) if relative else base + eff
    sd = check_float("unit_heterogeneity", unit_heterogeneity, low=0.0)
    n_clusters = check_int("n_clusters", n_clusters, low=1)
    hurt = check_int("hurt_clusters", hurt_clusters, low=0, high=n_clusters)
    gamma = check_float("hurt_shift", hurt_shift)
    ebar = float(
        position_bias_curve(position_bias, n_positions=n_positions, decay=position_decay).mean()
    )
    for name, value in (("baseline_ctr", base), ("treatment CTR", target)):
        if not 0.0 < value < ebar:
            raise ParameterError(
                f"{name} must lie in (0, {ebar:.4g}) (the mean examination probability of the "
                f"position bias); got {value:.4g}"
            )
    f = hurt / n_clusters

    def s(x: float) -> float:
        return _mean_sigmoid(x, sd)

    mu = optimize.brentq(lambda x: ebar * s(x) - base, -60.0, 60.0, xtol=1e-14, rtol=1e-14)

    def ctr_t(d: float) -> float:
        return ebar * ((1.0 - f) * s(mu + d) + f * s(mu + d + gamma))

    if eff == 0.0 and hurt == 0:
        delta = 0.0
    else:
        lo, hi = -80.0 - abs(gamma), 80.0 + abs(gamma)
        if not ctr_t(lo) < target < ctr_t(hi):
            raise ParameterError(f"treatment CTR {target:.4g} is not reachable with these settings")
        delta = optimize.brentq(lambda d: ctr_t(d) - target, lo, hi, xtol=1e-14, rtol=1e-14)
    p_c, p_t = ebar * s(mu), ctr_t(delta)
    per_cluster = np.full(n_clusters, ebar * (s(mu + delta) - s(mu)))
    per_cluster[:hurt] = ebar * (s(mu + delta + gamma) - s(mu))
    per_cluster.setflags(write=False)
    return SimulationTruth(p_c, p_t, p_t - p_c, p_t / p_c - 1.0, per_cluster, mu, delta)


def simulate_log(
    *,
    n_units: int,
    impressions_per_unit: float = 20.0,
    impressions_distribution: str = "poisson",
    baseline_ctr: float = 0.1,
    effect: float = 0.0,
    relative: bool = False,
    position_bias: str | Sequence[float] = "log",
    position_decay: float = 0.7,
    unit_heterogeneity: float = 0.5,
    n_positions: int = 10,
    n_clusters: int = 20,
    items_per_cluster: int = 50,
    hurt_clusters: int = 0,
    hurt_shift: float = -1.0,
    n_queries: int = 500,
    allocation: float = 0.5,
    salt: str = "simulation",
    aa: bool = False,
    rng: RngLike = None,
) -> SimulatedLog:
    """Simulate an impression/click log of a substitution experiment with a known effect.

    Parameters
    ----------
    n_units
        Randomisation units (sessions), assigned to arms by :func:`~ccgraph.experiment.assign`
        with ``salt`` and ``allocation`` (so arm sizes vary binomially, as in production).
    impressions_per_unit, impressions_distribution
        Mean impressions per unit; ``"poisson"`` draws ``1 + Poisson(mean - 1)``, ``"fixed"``
        gives every unit ``round(mean)``.
    baseline_ctr, effect, relative
        Control CTR, and the true CTR difference ``CTR_T - CTR_C`` (or relative lift
        ``CTR_T / CTR_C - 1`` with ``relative=True``) over all impressions.
    position_bias, position_decay, n_positions
        Examination curve (see :func:`position_bias_curve`); positions are 1-based and uniform.
    unit_heterogeneity
        Standard deviation of each unit's random effect on the click logit (0 = independent
        impressions); larger values mean stronger within-unit correlation.
    n_clusters, items_per_cluster, hurt_clusters, hurt_shift
        Synthetic catalog: each impression's original item is uniform over ``n_clusters`` x
        ``items_per_cluster`` items; in the treatment arm it is replaced by another item of its
        cluster. In the first ``hurt_clusters`` clusters substitution adds ``hurt_shift`` to the
        click logit (bad clusters); the overall ``effect`` still holds.
    n_queries
        Size of the synthetic query pool (queries are labels only).
    allocation, salt
        Treatment share and hashing salt passed to :func:`~ccgraph.experiment.assign`.
    aa
        A/A log: arms ``A1``/``A2`` and nothing substituted (``effect`` must be 0).
    rng
        Seed or Generator.

    Returns
    -------
    SimulatedLog
        ``log`` with columns ``unit, query, position, shown_id, original_id, arm, clicked,
        cluster`` and ``truth`` (:func:`simulation_truth`).

    Examples
    --------
    >>> sim = simulate_log(n_units=50, baseline_ctr=0.1, effect=0.02, rng=0)
    >>> sorted(sim.log["arm"].unique()), round(sim.truth.difference, 6)
    (['control', 'treatment'], 0.02)
    """
    n_units = check_int("n_units", n_units, low=2)
    mean_imp = check_float("impressions_per_unit", impressions_per_unit, low=1.0)
    check_choice("impressions_distribution", impressions_distribution, ("poisson", "fixed"))
    n_positions = check_int("n_positions", n_positions, low=1)
    items_per_cluster = check_int("items_per_cluster", items_per_cluster, low=2)
    n_queries = check_int("n_queries", n_queries, low=1)
    if aa and (effect != 0 or hurt_clusters):
        raise ParameterError("an A/A simulation needs `effect=0` and `hurt_clusters=0`")
    truth = simulation_truth(
        baseline_ctr=baseline_ctr,
        effect=effect,
        relative=relative,
        position_bias=position_bias,
        position_decay=position_decay,
        n_positions=n_positions,
        unit_heterogeneity=unit_heterogeneity,
        n_clusters=n_clusters,
        hurt_clusters=hurt_clusters,
        hurt_shift=hurt_shift,
    )
    gen = as_generator(rng)
    units = np.array([f"u{i}" for i in range(n_units)], dtype=object)
    arms = assign(units, salt=salt, allocation=allocation, aa=aa)
    treated_unit = arms == ("A2" if aa else "treatment")
    if impressions_distribution == "poisson":
        counts = 1 + gen.poisson(mean_imp - 1.0, size=n_units)
    else:
        counts = np.full(n_units, round(mean_imp), dtype=np.int64)
    unit_idx = np.repeat(np.arange(n_units), counts)
    n = len(unit_idx)
    b = gen.normal(0.0, float(unit_heterogeneity), size=n_units)
    position = gen.integers(1, n_positions + 1, size=n)
    cluster = gen.integers(0, n_clusters, size=n)
    item = gen.integers(0, items_per_cluster, size=n)
    treated = treated_unit[unit_idx] & (not aa)
    logit = truth.intercept + b[unit_idx]
    logit += treated * (truth.treatment_shift + hurt_shift * (cluster < hurt_clusters))
    exam = position_bias_curve(position_bias, n_positions=n_positions, decay=position_decay)
    clicked = gen.random(n) < exam[position - 1] * special.expit(logit)
    alt = (item + gen.integers(1, items_per_cluster, size=n)) % items_per_cluster
    shown = np.where(treated, alt, item)
    names = np.array(
        [f"c{k}-i{j}" for k in range(n_clusters) for j in range(items_per_cluster)], dtype=object
    )
    queries = np.array([f"q{j}" for j in range(n_queries)], dtype=object)
    log = pd.DataFrame(
        {
            "unit": units[unit_idx],
            "query": queries[gen.integers(0, n_queries, size=n)],
            "position": position,
            "shown_id": names[cluster * items_per_cluster + shown],
            "original_id": names[cluster * items_per_cluster + item],
            "arm": arms[unit_idx],
            "clicked": clicked,
            "cluster": cluster,
        }
    )
    params = {
        "n_units": n_units,
        "impressions_per_unit": mean_imp,
        "impressions_distribution": impressions_distribution,
        "baseline_ctr": baseline_ctr,
        "effect": effect,
        "relative": relative,
        "unit_heterogeneity": unit_heterogeneity,
        "n_positions": n_positions,
        "n_clusters": n_clusters,
        "hurt_clusters": hurt_clusters,
        "hurt_shift": hurt_shift,
        "allocation": allocation,
        "salt": salt,
        "aa": aa,
        "position_bias": position_bias
        if isinstance(position_bias, str)
        else list(map(float, position_bias)),
    }
    return SimulatedLog(log, truth, params)


def _mean_sigmoid(x: float, sd: float) -> float:
    """``E[sigmoid(x + b)]`` for ``b ~ N(0, sd^2)`` by Gauss-Hermite quadrature."""
    if sd == 0.0:
        return float(special.expit(x))
    vals = special.expit(x + np.sqrt(2.0) * sd * _NODES)
    return float(_WEIGHTS @ vals / np.sqrt(np.pi))
