"""Power, sample size and minimum detectable effect for a difference of two CTRs.

Two textbook normal approximations are offered (``method``):

``"cohen_h"``
    The arcsine-transformed effect ``h = 2 asin(sqrt(p_T)) - 2 asin(sqrt(p_C))`` with unit
    variance per observation, as :class:`statsmodels.stats.power.NormalIndPower` with
    :func:`statsmodels.stats.proportion.proportion_effectsize` (both tails of a two-sided test).
``"pooled"``
    The classic formula with the pooled variance under the null and the unpooled variance under
    the alternative (Fleiss, Levin & Paik 2003, eq. 4.14 without continuity correction), as
    :func:`statsmodels.stats.proportion.samplesize_proportions_2indep_onetail` (far tail ignored).

Both count *independent* observations. Impressions of one unit (session, user) are correlated,
so the impression counts are inflated by the design effect ``1 + (m - 1) ICC`` (Kish 1965), with
``m`` impressions per unit and ``ICC`` the intra-unit correlation of clicks.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from scipy import optimize, stats

from ccgraph._validation import check_choice, check_float
from ccgraph.exceptions import DataQualityWarning, ParameterError

__all__ = [
    "MinimumDetectableEffect",
    "SampleSize",
    "design_effect",
    "minimum_detectable_effect",
    "power_two_proportions",
    "sample_size",
]

METHODS = ("cohen_h", "pooled")
ALTERNATIVES = ("two-sided", "one-sided")
#: Above this many impressions :func:`sample_size` warns that the effect is too small to detect.
ABSURD_IMPRESSIONS = 1e12


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Impressions (and units, when the impressions per unit are known) needed per arm."""

    n_control: float
    n_treatment: float
    n_total: int
    units_total: int | None
    design_effect: float
    baseline_ctr: float
    treatment_ctr: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MinimumDetectableEffect:
    """The smallest true lift the test detects with the requested power."""

    absolute: float
    relative: float
    baseline_ctr: float
    n_control: float
    n_treatment: float
    design_effect: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def design_effect(
    *, icc: float = 0.0, impressions_per_unit: float | None = None, value: float | None = None
) -> float:
    """Return the variance inflation of clustered impressions, ``1 + (m - 1) * icc``.

    ``value`` gives the design effect directly (>= 1) instead.

    Examples
    --------
    >>> design_effect(icc=0.02, impressions_per_unit=11)
    1.2
    """
    return _deff(icc, impressions_per_unit, value)


def _deff(icc: float, impressions_per_unit: float | None, value: float | None) -> float:
    if impressions_per_unit is not None:  # also turns impressions into units when icc is 0
        impressions_per_unit = check_float("impressions_per_unit", impressions_per_unit, low=1.0)
    if value is not None:
        if icc:
            raise ParameterError("give either `design_effect` or `icc`, not both")
        return check_float("design_effect", value, low=1.0)
    icc = check_float("icc", icc, low=0.0, high=1.0)
    if icc == 0.0:
        return 1.0
    if impressions_per_unit is None:
        raise ParameterError("`impressions_per_unit` is needed with a non-zero `icc`")
    m = check_float("impressions_per_unit", impressions_per_unit, low=1.0)
    return 1.0 + (m - 1.0) * icc


def power_two_proportions(
    *,
    p_control: float,
    p_treatment: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
    method: str = "cohen_h",
    alternative: str = "two-sided",
) -> float:
    """Return the power of the two-proportion z-test with independent observations.

    Notes
    -----
    ``cohen_h``: with ``n_eff = 1 / (1/n_C + 1/n_T)``, power
    ``= Phi(|h| sqrt(n_eff) - z) + Phi(-|h| sqrt(n_eff) - z)`` (second term two-sided only),
    ``z = z_{1 - alpha/2}`` (or ``z_{1 - alpha}``).
    ``pooled``: ``sd0 = sqrt(pbar qbar (1/n_C + 1/n_T))`` with
    ``pbar = (n_C p_C + n_T p_T) / (n_C + n_T)``, ``sd1 = sqrt(p_C q_C / n_C + p_T q_T / n_T)``,
    power ``= Phi((|Delta| - z sd0) / sd1)`` (far tail ignored).

    Examples
    --------
    >>> round(power_two_proportions(p_control=0.1, p_treatment=0.12, n_control=3000,
    ...                             n_treatment=3000), 3)
    0.698
    """
    p_c = check_float(
        "p_control", p_control, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    p_t = check_float(
        "p_treatment", p_treatment, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    n_c = check_float("n_control", n_control, low=0.0, low_inclusive=False)
    n_t = check_float("n_treatment", n_treatment, low=0.0, low_inclusive=False)
    alpha = check_float(
        "alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    check_choice("method", method, METHODS)
    check_choice("alternative", alternative, ALTERNATIVES)
    return _power(p_c, p_t, n_c, n_t / n_c, alpha, method, alternative)


def sample_size(
    *,
    baseline_ctr: float,
    effect: float,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    allocation: float = 0.5,
    method: str = "cohen_h",
    alternative: str = "two-sided",
    icc: float = 0.0,
    impressions_per_unit: float | None = None,
    design_effect: float | None = None,
) -> SampleSize:
    """Return the impressions needed per arm to detect ``effect`` with the given power.

    Parameters
    ----------
    baseline_ctr
        Control CTR ``p_C`` in (0, 1).
    effect
        The lift to detect: ``p_T - p_C`` (absolute) or ``p_T / p_C - 1`` (``relative=True``).
    relative
        Read ``effect`` as a relative lift.
    alpha, power
        Test size and power.
    allocation
        Treatment share of the traffic, ``n_T / (n_C + n_T)``.
    method
        ``"cohen_h"`` (matches ``NormalIndPower``) or ``"pooled"`` (matches
        ``samplesize_proportions_2indep_onetail``); see the module docstring.
    alternative
        ``"two-sided"`` or ``"one-sided"`` (the tail of the effect's sign).
    icc, impressions_per_unit, design_effect
        Clustering of impressions by unit: the independent-observation sizes are multiplied by
        ``1 + (impressions_per_unit - 1) * icc`` (or by ``design_effect`` when given).

    Returns
    -------
    SampleSize
        ``n_control`` / ``n_treatment`` (impressions, unrounded, design effect included),
        ``n_total`` (sum of the per-arm sizes rounded up) and ``units_total`` (when
        ``impressions_per_unit`` is given).

    Warns
    -----
    DataQualityWarning
        When ``n_total`` exceeds :data:`ABSURD_IMPRESSIONS` (1e12): the effect is too small
        to detect in practice (often an effect given on the wrong scale).

    Examples
    --------
    >>> s = sample_size(baseline_ctr=0.10, effect=0.02)
    >>> round(s.n_control)
    3835
    """
    p_c, p_t = _ctrs(baseline_ctr, effect, relative)
    alpha, power, share = _alpha_power_share(alpha, power, allocation)
    check_choice("method", method, METHODS)
    check_choice("alternative", alternative, ALTERNATIVES)
    deff = _deff(icc, impressions_per_unit, design_effect)
    k = share / (1.0 - share)
    if method == "cohen_h":
        n_c = _solve_n_cohen(p_c, p_t, k, alpha, power, alternative)
    else:
        n_c = _n_pooled(p_c, p_t, k, alpha, power, alternative)
    n_c, n_t = n_c * deff, n_c * k * deff
    total = math.ceil(n_c - 1e-9) + math.ceil(n_t - 1e-9)
    units = None
    if impressions_per_unit is not None:
        units = math.ceil(total / float(impressions_per_unit) - 1e-9)
    if total > ABSURD_IMPRESSIONS:
        warnings.warn(
            f"detecting effect={effect:g} ({'relative' if relative else 'absolute'}) at "
            f"baseline_ctr={p_c:g} needs {total:.3g} impressions (> {ABSURD_IMPRESSIONS:.0e}): "
            "the effect is too small to detect in practice; check its scale (an absolute CTR "
            "difference, or a relative lift with relative=True / --relative)",
            DataQualityWarning,
            stacklevel=2,
        )
    return SampleSize(n_c, n_t, total, units, deff, p_c, p_t, method)


def minimum_detectable_effect(
    *,
    baseline_ctr: float,
    impressions_per_day: float | None = None,
    days: float | None = None,
    n_total: float | None = None,
    allocation: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
    method: str = "cohen_h",
    alternative: str = "two-sided",
    icc: float = 0.0,
    impressions_per_unit: float | None = None,
    design_effect: float | None = None,
) -> MinimumDetectableEffect:
    """Return the smallest increase ``p_T - p_C`` detected with the requested power.

    The traffic is ``impressions_per_day * days`` or ``n_total`` impressions, split by
    ``allocation``; the design effect (see :func:`sample_size`) shrinks it to the effective
    number of independent observations. The MDE for a decrease is close to (slightly smaller
    than) the reported increase.

    Examples
    --------
    >>> m = minimum_detectable_effect(baseline_ctr=0.10, impressions_per_day=1000, days=7)
    >>> round(m.absolute, 4), round(m.relative, 3)
    (0.021, 0.21)
    """
    p_c = check_float(
        "baseline_ctr", baseline_ctr, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    alpha, power, share = _alpha_power_share(alpha, power, allocation)
    check_choice("method", method, METHODS)
    check_choice("alternative", alternative, ALTERNATIVES)
    if n_total is None:
        if impressions_per_day is None or days is None:
            raise ParameterError("give `n_total`, or both `impressions_per_day` and `days`")
        n = check_float(
            "impressions_per_day", impressions_per_day, low=0.0, low_inclusive=False
        ) * check_float("days", days, low=0.0, low_inclusive=False)
    else:
        if impressions_per_day is not None or days is not None:
            raise ParameterError("give either `n_total` or `impressions_per_day` and `days`")
        n = check_float("n_total", n_total, low=0.0, low_inclusive=False)
    deff = _deff(icc, impressions_per_unit, design_effect)
    n_c_raw, n_t_raw = n * (1.0 - share), n * share
    n_c_eff, k = n_c_raw / deff, share / (1.0 - share)

    def gap(p_t: float) -> float:
        return _power(p_c, p_t, n_c_eff, k, alpha, method, alternative) - power

    hi = 1.0 - 1e-12
    if gap(hi) < 0:
        raise ParameterError(
            f"no increase over baseline_ctr={p_c} reaches power {power} with {n:g} impressions "
            f"(design effect {deff:g}); add traffic or lower the power"
        )
    p_t = optimize.brentq(gap, p_c + 1e-12, hi, xtol=1e-14, rtol=1e-12)
    return MinimumDetectableEffect(p_t - p_c, p_t / p_c - 1.0, p_c, n_c_raw, n_t_raw, deff, method)


def _ctrs(baseline_ctr: float, effect: float, relative: bool) -> tuple[float, float]:
    p_c = check_float(
        "baseline_ctr", baseline_ctr, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    eff = check_float("effect", effect)
    p_t = p_c * (1.0 + eff) if relative else p_c + eff
    if eff == 0.0 or not 0.0 < p_t < 1.0:
        raise ParameterError(
            f"`effect` must be non-zero and give a treatment CTR in (0, 1); got {effect} "
            f"({'relative' if relative else 'absolute'}), treatment CTR {p_t:g}"
        )
    return p_c, p_t


def _alpha_power_share(alpha: float, power: float, allocation: float) -> tuple[float, ...]:
    alpha = check_float(
        "alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    power = check_float(
        "power", power, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    if power <= alpha:
        raise ParameterError(f"`power` must exceed `alpha`; got power={power}, alpha={alpha}")
    share = check_float(
        "allocation", allocation, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    return alpha, power, share


def _crit(alpha: float, alternative: str) -> float:
    return float(stats.norm.isf(alpha / 2 if alternative == "two-sided" else alpha))


def _power(
    p_c: float, p_t: float, n_c: float, k: float, alpha: float, method: str, alternative: str
) -> float:
    z = _crit(alpha, alternative)
    n_t = k * n_c
    if method == "cohen_h":
        h = abs(2 * math.asin(math.sqrt(p_t)) - 2 * math.asin(math.sqrt(p_c)))
        shift = h * math.sqrt(1.0 / (1.0 / n_c + 1.0 / n_t))
        out = stats.norm.cdf(shift - z)
        if alternative == "two-sided":
            out += stats.norm.cdf(-shift - z)
        return float(out)
    pbar = (n_c * p_c + n_t * p_t) / (n_c + n_t)
    sd0 = math.sqrt(pbar * (1 - pbar) * (1.0 / n_c + 1.0 / n_t))
    sd1 = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
    return float(stats.norm.cdf((abs(p_t - p_c) - z * sd0) / sd1))


def _n_pooled(
    p_c: float, p_t: float, k: float, alpha: float, power: float, alternative: str
) -> float:
    z_a, z_b = _crit(alpha, alternative), float(stats.norm.isf(1.0 - power))
    pbar = (p_c + k * p_t) / (1.0 + k)
    sd0 = math.sqrt(pbar * (1 - pbar) * (1.0 + 1.0 / k))
    sd1 = math.sqrt(p_c * (1 - p_c) + p_t * (1 - p_t) / k)
    return max(z_a * sd0 + z_b * sd1, 0.0) ** 2 / (p_t - p_c) ** 2


def _solve_n_cohen(
    p_c: float, p_t: float, k: float, alpha: float, power: float, alternative: str
) -> float:
    h = abs(2 * math.asin(math.sqrt(p_t)) - 2 * math.asin(math.sqrt(p_c)))
    z_a, z_b = _crit(alpha, alternative), float(stats.norm.isf(1.0 - power))
    start = ((z_a + z_b) / h) ** 2 * (1.0 + 1.0 / k)  # one-tail closed form: a bracket
    if alternative == "one-sided":
        return start

    def gap(n: float) -> float:
        return _power(p_c, p_t, n, k, alpha, "cohen_h", alternative) - power

    lo = 1e-9
    if gap(lo) >= 0:
        return lo
    return float(optimize.brentq(gap, lo, start * 1.01 + 1.0, xtol=1e-10, rtol=1e-13))
