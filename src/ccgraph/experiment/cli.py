"""``ccgraph experiment plan | assign | analyse | power | simulate``: thin wrappers over the API."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ccgraph.exceptions import DataQualityWarning, InputError, OutputError, ParameterError
from ccgraph.experiment._inputs import (
    join_attributes,
    read_exposure,
    read_run_graph,
    read_run_items,
    read_table,
)

__all__ = ["add_commands", "read_run_graph", "read_run_items", "read_table"]

logger = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` command and its sub-commands."""
    exp = subparsers.add_parser(
        "experiment", help="plan, assign, analyse and size a cluster-substitution experiment"
    )
    sub = exp.add_subparsers(dest="experiment_command", metavar="COMMAND", required=True)

    p = sub.add_parser("plan", help="choose an alternate from the same cluster per result row")
    p.add_argument("run_dir", type=Path, help="finished ccgraph run directory")
    p.add_argument("results", type=Path, help="result lists: query, position, id (.parquet/.csv)")
    p.add_argument("--out", type=Path, required=True, help="plan Parquet file to write")
    p.add_argument("--rule", choices=("random", "closest", "least_exposed"), default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cluster-column", default="cluster", help="cluster level (default cluster)")
    p.add_argument(
        "--exposure",
        type=Path,
        help="impressions per item (columns id, impressions) "
        "for least_exposed; default: the run's popularity column",
    )
    p.add_argument(
        "--attributes",
        type=Path,
        help="extra item columns to filter on (id, "
        "license, provider, ...), joined to the run's items by id",
    )
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="license=by,cc0 | provider=flickr | min_cluster_strength=0.3 (repeatable)",
    )
    p.set_defaults(func=_plan)

    a = sub.add_parser("assign", help="assign units to arms by a salted hash")
    a.add_argument("units", type=Path, help="units (.txt one per line, .csv or .parquet)")
    a.add_argument("--salt", required=True)
    a.add_argument("--allocation", type=float, default=0.5, help="treatment share")
    a.add_argument("--aa", action="store_true", help="A/A test: arms A1 and A2")
    a.add_argument("--column", default=None, help="unit column (default 'unit' or the first)")
    a.add_argument("--out", type=Path, required=True, help=".csv or .parquet: unit, bucket, arm")
    a.set_defaults(func=_assign)

    n = sub.add_parser("analyse", aliases=["analyze"], help="effects with unit-clustered CIs")
    n.add_argument("log", type=Path, help="impression log (.parquet/.csv)")
    n.add_argument("--out", type=Path, required=True, help="directory for result.json/.md")
    n.add_argument("--method", choices=("delta", "bootstrap"), default="delta")
    n.add_argument("--n-boot", type=int, default=2000)
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--expected-allocation", type=float, default=0.5)
    n.add_argument("--confidence", type=float, default=0.95)
    n.add_argument("--arms", default=None, help="control,treatment arm names")
    n.add_argument("--run", type=Path, default=None, help="run dir: clusters of original ids")
    n.set_defaults(func=_analyse)

    w = sub.add_parser("power", help="sample size for an effect, or the MDE for a traffic")
    w.add_argument("--baseline-ctr", type=float, required=True)
    w.add_argument("--effect", type=float, help="lift to detect (gives the sample size)")
    w.add_argument("--relative", action="store_true", help="--effect is relative")
    w.add_argument("--impressions", type=float, help="impressions per day (gives the MDE)")
    w.add_argument("--days", type=float, default=14.0)
    w.add_argument("--allocation", type=float, default=0.5)
    w.add_argument("--alpha", type=float, default=0.05)
    w.add_argument("--power", type=float, default=0.8)
    w.add_argument("--icc", type=float, default=0.0)
    w.add_argument("--impressions-per-unit", type=float, default=None)
    w.add_argument("--design-effect", type=float, default=None)
    w.add_argument("--method", choices=("cohen_h", "pooled"), default="cohen_h")
    w.add_argument("--out", type=Path, default=None, help="also write the answer as JSON")
    w.set_defaults(func=_power)

    s = sub.add_parser("simulate", help="synthetic log with a known effect")
    s.add_argument("--out", type=Path, required=True, help="log Parquet (truth beside it)")
    s.add_argument("--n-units", type=int, default=2000)
    s.add_argument("--impressions-per-unit", type=float, default=20.0)
    s.add_argument("--baseline-ctr", type=float, default=0.1)
    s.add_argument("--effect", type=float, default=0.0)
    s.add_argument("--relative", action="store_true")
    s.add_argument(
        "--unit-sd",
        "--unit-heterogeneity",
        dest="unit_sd",
        type=float,
        default=0.5,
        help="unit random-effect sd (logit; `unit_heterogeneity` in simulate_log)",
    )
    s.add_argument("--n-positions", type=int, default=10)
    s.add_argument("--position-bias", choices=("log", "geometric", "none"), default="log")
    s.add_argument("--n-clusters", type=int, default=20)
    s.add_argument("--hurt-clusters", type=int, default=0)
    s.add_argument("--allocation", type=float, default=0.5)
    s.add_argument("--salt", default="simulation")
    s.add_argument("--aa", action="store_true")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_simulate)


def _plan(args: argparse.Namespace) -> int:
    from ccgraph.experiment.plan import plan_substitutions

    _check_table_suffix(args.out)
    items = read_run_items(args.run_dir)
    if args.attributes is not None:
        items = join_attributes(items, args.attributes)
    results = read_table(args.results)
    graph = read_run_graph(args.run_dir) if args.rule == "closest" else None
    exposure = None
    if args.rule == "least_exposed":
        exposure = read_exposure(args.exposure, items)
    plan = plan_substitutions(
        items,
        results,
        rule=args.rule,
        graph=graph,
        exposure=exposure,
        filters=_parse_filters(args.filter),
        cluster_column=args.cluster_column,
        rng=args.seed,
    )
    _write_frame(plan, args.out)
    counts = plan["reason"].fillna("planned").value_counts()
    sys.stdout.write(
        f"wrote {args.out}: {len(plan)} rows; "
        + ", ".join(f"{k}: {v}" for k, v in counts.items())
        + "\n"
    )
    return 0


def _assign(args: argparse.Namespace) -> int:
    from ccgraph.experiment.assign import assign, bucket

    table = read_table(args.units)
    col = args.column or ("unit" if "unit" in table.columns else table.columns[0])
    if col not in table.columns:
        raise InputError(f"{args.units}: no column {col!r}")
    units = table[col]
    if len(units) == 0:
        raise InputError(f"{args.units}: no units to assign (the file has no rows)")
    _check_table_suffix(args.out)
    repeated = int(units.duplicated().sum())
    units = units.drop_duplicates()  # a unit's arm is fixed: one row per unit
    out = pd.DataFrame(
        {
            "unit": units.astype(str),
            "bucket": bucket(units, salt=args.salt),
            "arm": assign(units, salt=args.salt, allocation=args.allocation, aa=args.aa),
        }
    )
    _write_frame(out, args.out)
    sys.stdout.write(
        f"wrote {args.out}: "
        + ", ".join(f"{k}: {v}" for k, v in out["arm"].value_counts().sort_index().items())
        + (f" ({repeated} repeated rows of a unit written once)" if repeated else "")
        + "\n"
    )
    return 0


def _analyse(args: argparse.Namespace) -> int:
    from ccgraph.experiment.analyse import analyse

    log = read_table(args.log)
    arms = None
    if args.arms:
        parts = [a.strip() for a in args.arms.split(",")]
        if len(parts) != 2:
            raise ParameterError(f"--arms needs 'control,treatment'; got {args.arms!r}")
        arms = (parts[0], parts[1])
    from ccgraph.experiment.logcheck import check_log

    with warnings.catch_warnings():  # analyse() below checks again and warns once
        warnings.simplefilter("ignore", DataQualityWarning)
        check_log(log, arms=arms, source=str(args.log))  # errors name the file and its data row
    items = read_run_items(args.run) if args.run is not None else None
    if items is not None and "cluster" in log.columns:
        # An explicit --run wins over a `cluster` column of the log (which analyse reads first).
        logger.warning(
            "--run given: the per-cluster breakdown uses the run's clusters of `original_id`, "
            "not the log's own `cluster` column"
        )
        log = log.drop(columns="cluster")
    result = analyse(
        log,
        method=args.method,
        n_boot=args.n_boot,
        rng=args.seed,
        expected_allocation=args.expected_allocation,
        arms=arms,
        items=items,
        confidence=args.confidence,
    )
    from ccgraph.io.atomic import atomic_paths

    out = Path(args.out)
    _mkdir(out)
    from ccgraph.experiment.breakdown import empty_breakdown

    names = ("result.json", "result.md", "clusters.parquet")
    clusters = result.clusters if result.clusters is not None else empty_breakdown()
    # together: an interrupt or a full disk never leaves a new result.json by an old result.md
    # (nor an earlier analysis's cluster table beside this one's result)
    with atomic_paths(*(out / name for name in names)) as tmps:
        tmps[0].write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
        tmps[1].write_text(result.summary(), encoding="utf-8")
        clusters.to_parquet(tmps[2], index=False)
    sys.stdout.write(result.summary())
    return 0


def _power(args: argparse.Namespace) -> int:
    from ccgraph.experiment.power import minimum_detectable_effect, sample_size

    common: dict[str, Any] = {
        "baseline_ctr": args.baseline_ctr,
        "allocation": args.allocation,
        "alpha": args.alpha,
        "power": args.power,
        "method": args.method,
        "icc": args.icc,
        "impressions_per_unit": args.impressions_per_unit,
        "design_effect": args.design_effect,
    }
    if (args.effect is None) == (args.impressions is None):
        raise ParameterError(
            "give --effect (for the sample size) or --impressions per day "
            "(for the minimum detectable effect)"
            + (", not both" if args.effect is not None else "; got neither")
        )
    if args.effect is not None:
        ans: Any = sample_size(effect=args.effect, relative=args.relative, **common)
        text = (
            # per arm rounded up as in n_total (before: 12 + 12 printed beside a total of 26)
            f"impressions needed: {ans.n_total:,} ({math.ceil(ans.n_control - 1e-9):,} control, "
            f"{math.ceil(ans.n_treatment - 1e-9):,} treatment; design effect "
            f"{ans.design_effect:.3g}, "
            f"{args.method})"
        )
        if ans.units_total is not None:
            text += f"; units: {ans.units_total:,}"
    else:
        ans = minimum_detectable_effect(
            impressions_per_day=args.impressions, days=args.days, **common
        )
        text = (
            f"minimum detectable effect: {ans.absolute:+.5f} absolute "
            f"({ans.relative:+.2%} relative) over {args.days:g} days "
            f"(design effect {ans.design_effect:.3g}, {args.method})"
        )
    sys.stdout.write(text + "\n")
    if args.out is not None:
        _write_text(args.out, json.dumps(ans.to_dict(), indent=2))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from ccgraph.experiment.simulate import simulate_log

    _check_table_suffix(args.out)
    sim = simulate_log(
        n_units=args.n_units,
        impressions_per_unit=args.impressions_per_unit,
        baseline_ctr=args.baseline_ctr,
        effect=args.effect,
        relative=args.relative,
        unit_heterogeneity=args.unit_sd,
        n_positions=args.n_positions,
        position_bias=args.position_bias,
        n_clusters=args.n_clusters,
        hurt_clusters=args.hurt_clusters,
        allocation=args.allocation,
        salt=args.salt,
        aa=args.aa,
        rng=args.seed,
    )
    from ccgraph.io.atomic import atomic_paths

    truth_path = Path(args.out).with_suffix(".truth.json")
    _mkdir(Path(args.out).parent)
    # together: never a new log beside the truth of an older one
    with atomic_paths(args.out, truth_path) as (log_tmp, truth_tmp):
        _save_frame(sim.log, log_tmp, Path(args.out))
        truth = {"truth": sim.truth.to_dict(), "params": sim.params}
        truth_tmp.write_text(json.dumps(truth, indent=2), encoding="utf-8")
    sys.stdout.write(
        f"wrote {args.out} ({len(sim.log):,} impressions) and {truth_path}; "
        f"true difference {sim.truth.difference:+.5f}\n"
    )
    return 0


def _parse_filters(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise ParameterError(f"--filter needs KEY=VALUE; got {item!r}")
        if key.startswith(("min_", "max_")):
            try:
                out[key] = float(value)
            except ValueError as exc:
                raise ParameterError(f"--filter {key} needs a number; got {value!r}") from exc
        else:
            out[key] = [v.strip() for v in value.split(",") if v.strip()]
    return out


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create directory ({exc})") from exc


def _check_table_suffix(path: Path) -> None:
    if Path(path).suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise OutputError(f"{path}: unsupported output type; name a .parquet or .csv file")


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    from ccgraph.io.atomic import atomic_path

    path = Path(path)
    _check_table_suffix(path)
    _mkdir(path.parent)
    # removed again on any failure, Ctrl-C and SIGTERM included; OSError -> OutputError
    with atomic_path(path) as tmp:
        _save_frame(frame, tmp, path)


def _save_frame(frame: pd.DataFrame, tmp: Path, path: Path) -> None:
    """Write ``frame`` to ``tmp`` in the format of ``path``'s suffix (``.csv`` or Parquet)."""
    if path.suffix.lower() == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)


def _write_text(path: Path, text: str) -> None:
    from ccgraph.io.atomic import atomic_write_text

    path = Path(path)
    _mkdir(path.parent)
    atomic_write_text(path, text)
