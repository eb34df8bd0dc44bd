"""Coverage study of the experiment analysis: CI coverage, A/A false positives, power.

Simulates many small substitution experiments with a known effect and correlated impressions
within units (``ccgraph.experiment.simulate_log``), analyses each with the unit-clustered delta
method, the Poisson bootstrap over units, and the naive per-impression z-test, and reports how
often each 95 % interval covers the true difference, how often A/A runs reject at 5 %, and the
power the calculator predicts (with the design effect) against the observed rejection rate.

Run: ``PYTHONPATH=src python benchmarks/experiment.py [--sims 1000] [--boot 500] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import REPO, markdown_table, write_section

SCENARIOS = {
    # name: (n_units, impressions per unit, unit random-effect sd)
    "independent (sd 0)": (400, 20, 0.0),
    "correlated (sd 1.0)": (400, 20, 1.0),
    "strongly correlated (sd 1.5, 40/unit)": (400, 40, 1.5),
}
BASELINE, EFFECT = 0.10, 0.02
DOC = REPO / "docs" / "experiment.md"
START, END = "<!-- coverage-study -->", "<!-- /coverage-study -->"


def _one(job: tuple[str, int, bool, int]) -> dict[str, float]:
    from ccgraph.experiment import analyse, simulate_log

    name, seed, aa, n_boot = job
    n_units, imp, sd = SCENARIOS[name]
    sim = simulate_log(
        n_units=n_units,
        impressions_per_unit=imp,
        baseline_ctr=BASELINE,
        effect=0.0 if aa else EFFECT,
        unit_heterogeneity=sd,
        aa=aa,
        salt=f"{name}-{seed}-{aa}",
        rng=seed,
    )
    truth = sim.truth.difference
    d = analyse(sim.log)
    b = analyse(sim.log, method="bootstrap", n_boot=n_boot, rng=seed)
    out = {"estimate": d.difference, "se_delta": d.difference_se, "srm": float(d.srm_flag)}
    for key, ci, p in (
        ("delta", d.difference_ci, d.p_value),
        ("boot", b.difference_ci, b.p_value),
        ("naive", d.naive_difference_ci, d.naive_p_value),
    ):
        out[f"cover_{key}"] = float(ci[0] <= truth <= ci[1])
        out[f"width_{key}"] = ci[1] - ci[0]
        out[f"reject_{key}"] = float(not ci[0] <= 0.0 <= ci[1])
        out[f"p_{key}"] = p
    return out


def _icc(sd: float) -> float:
    """Intra-unit correlation of clicks implied by the simulation model (quadrature)."""
    from ccgraph.experiment import position_bias_curve, simulation_truth

    t = simulation_truth(baseline_ctr=BASELINE, effect=0.0, unit_heterogeneity=sd)
    x, w = np.polynomial.hermite.hermgauss(120)
    ebar = position_bias_curve("log", n_positions=10).mean()
    pb = ebar * special.expit(t.intercept + math.sqrt(2) * sd * x)  # click prob. of a unit
    mean = w @ pb / math.sqrt(math.pi)
    var = w @ (pb - mean) ** 2 / math.sqrt(math.pi)
    return float(var / (mean * (1 - mean)))


def _predicted_power(n_units: int, imp: float, sd: float) -> float:
    from ccgraph.experiment import design_effect, power_two_proportions

    # Poisson counts: the design effect uses m = E[n^2] / E[n] (Kish's size-weighted mean)
    m = imp + (imp - 1) / imp
    deff = design_effect(icc=_icc(sd), impressions_per_unit=m)
    n_arm = n_units * imp / 2 / deff
    return power_two_proportions(
        p_control=BASELINE,
        p_treatment=BASELINE + EFFECT,
        n_control=n_arm,
        n_treatment=n_arm,
        method="pooled",
    )


def _band(p: float, n: int) -> str:
    se = math.sqrt(p * (1 - p) / n)
    return f"{p:.3f} ± {1.96 * se:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sims", type=int, default=1000, help="experiments per scenario/arm")
    parser.add_argument("--boot", type=int, default=500, help="bootstrap replicates")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    rows, detail = [], []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name in SCENARIOS:
            n_units, imp, sd = SCENARIOS[name]
            jobs = [(name, s, False, args.boot) for s in range(args.sims)]
            jobs += [(name, 100_000 + s, True, args.boot) for s in range(args.sims)]
            res = list(pool.map(_one, jobs, chunksize=25))
            eff, null = res[: args.sims], res[args.sims :]

            def mean(rs, key):
                return float(np.mean([r[key] for r in rs]))

            n = args.sims
            emp_sd = float(np.std([r["estimate"] for r in eff], ddof=1))
            rows.append(
                [
                    name,
                    f"{_icc(sd):.3f}",
                    _band(mean(eff, "cover_delta"), n),
                    _band(mean(eff, "cover_boot"), n),
                    _band(mean(eff, "cover_naive"), n),
                    _band(mean(null, "reject_delta"), n),
                    _band(mean(null, "reject_boot"), n),
                    _band(mean(null, "reject_naive"), n),
                ]
            )
            detail.append(
                [
                    name,
                    f"{emp_sd:.5f}",
                    f"{mean(eff, 'se_delta'):.5f}",
                    f"{mean(eff, 'width_delta'):.4f}",
                    f"{mean(eff, 'width_boot'):.4f}",
                    f"{mean(eff, 'width_naive'):.4f}",
                    f"{mean(eff, 'reject_delta'):.3f}",
                    f"{_predicted_power(n_units, imp, sd):.3f}",
                    f"{mean(null, 'srm'):.3f}",
                ]
            )
    seconds = time.perf_counter() - t0

    table1 = markdown_table(
        [
            "scenario",
            "ICC",
            "coverage: delta",
            "coverage: bootstrap",
            "coverage: naive",
            "A/A reject: delta",
            "A/A reject: bootstrap",
            "A/A reject: naive",
        ],
        rows,
    )
    table2 = markdown_table(
        [
            "scenario",
            "empirical sd of estimate",
            "mean delta SE",
            "CI width: delta",
            "CI width: bootstrap",
            "CI width: naive",
            "power observed (delta)",
            "power predicted (pooled, design effect)",
            "SRM flags in A/A",
        ],
        detail,
    )
    body = (
        f"{args.sims} experiments with a true CTR difference of {EFFECT} (baseline {BASELINE}) "
        f"and {args.sims} A/A experiments per scenario; 400 units per experiment, impressions "
        f"per unit 1 + Poisson(mean - 1), log position bias over 10 positions, bootstrap "
        f"{args.boot} Poisson replicates. Intervals are 95 %; ± is the 95 % Monte Carlo "
        f"margin. {2 * args.sims * len(SCENARIOS)} experiments in {seconds:.0f} s with "
        f"{args.jobs} processes.\n\n{table1}\n\n{table2}\n"
    )
    command = (
        f"PYTHONPATH=src python benchmarks/experiment.py --sims {args.sims} --boot {args.boot}"
    )
    if args.no_write:
        sys.stdout.write(body)
        return
    write_section(
        "experiment", "Experiment analysis: CI coverage and A/A false positives", body, command
    )
    if DOC.exists():
        text = DOC.read_text()
        if START in text and END in text:
            block = f"{START}\nReproduce: `{command}`\n\n{body}{END}"
            text = text.split(START)[0] + block + text.split(END, 1)[1]
            DOC.write_text(text)


if __name__ == "__main__":
    main()
