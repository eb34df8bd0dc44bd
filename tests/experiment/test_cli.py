from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from ccgraph.exceptions import CcgraphError
from ccgraph.experiment.cli import add_commands


def _run(argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    ids = [f"i{k}" for k in range(12)]
    pd.DataFrame(
        {
            "id": ids,
            "cluster": [0] * 6 + [1] * 6,
            "duplicate_group": pd.array([None, None, 3, 3] + [None] * 8, dtype="Int64"),
            "popularity": np.linspace(0, 1, 12),
            "cluster_strength": [0.9] * 12,
        }
    ).to_parquet(d / "items.parquet")
    w = np.zeros((12, 12))
    for i in range(11):
        w[i, i + 1] = w[i + 1, i] = 0.5 + 0.01 * i
    from scipy import sparse

    csr = sparse.csr_matrix(w)
    np.savez(
        d / "graph.npz",
        data=csr.data,
        indices=csr.indices,
        indptr=csr.indptr,
        shape=np.array(csr.shape),
        ids=np.array(ids),
    )
    return d


@pytest.mark.parametrize("rule", ["random", "closest", "least_exposed"])
def test_plan_command(run_dir, tmp_path, rule, capsys):
    results = tmp_path / "results.csv"
    pd.DataFrame(
        {"query": ["q"] * 3 + ["r"], "position": [0, 1, 2, 0], "id": ["i0", "i2", "i7", "nope"]}
    ).to_csv(results, index=False)
    extra = tmp_path / "attrs.csv"
    pd.DataFrame({"id": [f"i{k}" for k in range(12)], "license": ["by"] * 11 + ["nc"]}).to_csv(
        extra, index=False
    )
    out = tmp_path / "plan.parquet"
    code = _run(
        [
            "experiment",
            "plan",
            str(run_dir),
            str(results),
            "--out",
            str(out),
            "--rule",
            rule,
            "--attributes",
            str(extra),
            "--filter",
            "license=by",
            "--filter",
            "min_cluster_strength=0.5",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    plan = pd.read_parquet(out)
    assert len(plan) == 4 and plan["reason"].iloc[3] == "unknown id"
    assert plan["alternate_id"].iloc[:3].notna().all()
    assert "i11" not in set(plan["alternate_id"].dropna())  # license filter
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".parquet"])
def test_assign_command(tmp_path, suffix):
    units = [f"user-{k}" for k in range(1, 9)]
    src = tmp_path / f"units{suffix}"
    if suffix == ".txt":
        src.write_text("\n".join(units) + "\n")
    elif suffix == ".csv":
        pd.DataFrame({"session": units}).to_csv(src, index=False)
    else:
        pd.DataFrame({"unit": units}).to_parquet(src)
    out = tmp_path / "arms.csv"
    assert _run(["experiment", "assign", str(src), "--salt", "exp1", "--out", str(out)]) == 0
    got = pd.read_csv(out)
    from ccgraph.experiment import assign

    assert got["arm"].tolist() == assign(units, salt="exp1").tolist()
    assert (
        _run(["experiment", "assign", str(src), "--salt", "exp1", "--aa", "--out", str(out)]) == 0
    )
    assert set(pd.read_csv(out)["arm"]) <= {"A1", "A2"}


def test_simulate_then_analyse(tmp_path, run_dir):
    log = tmp_path / "log.parquet"
    assert (
        _run(
            [
                "experiment",
                "simulate",
                "--out",
                str(log),
                "--n-units",
                "300",
                "--effect",
                "0.02",
                "--hurt-clusters",
                "2",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    truth = json.loads(log.with_suffix(".truth.json").read_text())
    assert truth["truth"]["difference"] == pytest.approx(0.02)
    out = tmp_path / "analysis"
    assert (
        _run(
            [
                "experiment",
                "analyse",
                str(log),
                "--out",
                str(out),
                "--method",
                "bootstrap",
                "--n-boot",
                "200",
            ]
        )
        == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "bootstrap"
    assert "CTR difference" in (out / "result.md").read_text()
    clusters = pd.read_parquet(out / "clusters.parquet")
    assert len(clusters) == 20

    # the same folder, a log without clusters: no earlier cluster table is left as this one's
    pd.read_parquet(log).drop(columns="cluster").to_parquet(plain := tmp_path / "plain.parquet")
    assert _run(["experiment", "analyse", str(plain), "--out", str(out)]) == 0
    assert json.loads((out / "result.json").read_text())["clusters"] is None
    again = pd.read_parquet(out / "clusters.parquet")
    assert again.empty
    assert list(again.columns) == list(clusters.columns)
    measures = clusters.columns.drop("cluster")  # the labels' type is the log's
    assert again[measures].dtypes.tolist() == clusters[measures].dtypes.tolist()


POWER = ["experiment", "power", "--baseline-ctr", "0.1", "--effect", "0.01"]


def test_power_command(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert (
        _run(
            ["experiment", "power", "--baseline-ctr", "0.1", "--effect", "0.02", "--out", str(out)]
        )
        == 0
    )
    assert json.loads(out.read_text())["n_total"] == 7670
    assert (
        _run(
            [
                "experiment",
                "power",
                "--baseline-ctr",
                "0.1",
                "--impressions",
                "1000",
                "--days",
                "7",
                "--icc",
                "0.01",
                "--impressions-per-unit",
                "20",
            ]
        )
        == 0
    )
    assert "minimum detectable effect" in capsys.readouterr().out
    # before: "give --effect ... or --impressions ..., not both" when neither was given
    with pytest.raises(CcgraphError, match=r"--effect .*; got neither"):
        _run(["experiment", "power", "--baseline-ctr", "0.1"])
    with pytest.raises(CcgraphError, match=r"--effect .*, not both"):
        _run([*POWER, "--impressions", "10", "--days", "2"])
    # before: ZeroDivisionError
    with pytest.raises(CcgraphError, match=r"`impressions_per_unit` must be a float >= 1"):
        _run([*POWER, "--impressions-per-unit", "0"])


def test_simulate_accepts_the_parameter_name_its_errors_use(tmp_path):
    # before: the error named `unit_heterogeneity`, a flag the command did not have
    with pytest.raises(CcgraphError, match=r"`unit_heterogeneity` must be a float >= 0"):
        out = str(tmp_path / "s.parquet")
        _run(
            [
                "experiment",
                "simulate",
                "--out",
                out,
                "--n-units",
                "10",
                "--unit-heterogeneity",
                "-1",
            ]
        )


def test_user_errors_are_ccgraph_errors(tmp_path, run_dir):
    with pytest.raises(CcgraphError, match="not found"):
        _run(["experiment", "analyse", str(tmp_path / "missing.parquet"), "--out", str(tmp_path)])
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"unit": ["a"], "arm": ["control"]}).to_csv(bad, index=False)
    with pytest.raises(CcgraphError, match="missing column"):
        _run(["experiment", "analyse", str(bad), "--out", str(tmp_path / "o")])
    with pytest.raises(CcgraphError, match="KEY=VALUE"):
        _run(
            [
                "experiment",
                "plan",
                str(run_dir),
                str(bad),
                "--out",
                str(tmp_path / "p.pq"),
                "--filter",
                "license",
            ]
        )


def _plan_with_attributes(run_dir, tmp_path, attributes: pd.DataFrame) -> pd.DataFrame:
    results = tmp_path / "results.csv"
    pd.DataFrame({"query": ["q"] * 2, "position": [0, 1], "id": ["i0", "i7"]}).to_csv(
        results, index=False
    )
    extra = tmp_path / "attrs.csv"
    attributes.to_csv(extra, index=False)
    out = tmp_path / "plan.parquet"
    argv = ["experiment", "plan", str(run_dir), str(results), "--out", str(out)]
    assert _run([*argv, "--attributes", str(extra), "--filter", "license=by", "--seed", "1"]) == 0
    return pd.read_parquet(out)


def test_attributes_fill_a_column_the_run_has_empty(run_dir, tmp_path):
    # before: the run's own (empty) `license` column silently won over the file's, so every row
    # was "filtered"
    items = pd.read_parquet(run_dir / "items.parquet").assign(license="")
    items.to_parquet(run_dir / "items.parquet")
    lic = ["by"] * 11 + ["nc"]
    plan = _plan_with_attributes(
        run_dir, tmp_path, pd.DataFrame({"id": items["id"], "license": lic})
    )
    assert plan["alternate_id"].notna().all() and "i11" not in set(plan["alternate_id"])


@pytest.mark.parametrize(
    ("attributes", "pattern"),
    [
        ({"id": ["i1"], "cluster": [5]}, r"'cluster' would replace the run's own results"),
        ({"id": ["i1", "i1"], "license": ["by", "nc"]}, r"id 'i1' has rows with different"),
        ({"id": ["x9"], "license": ["by"]}, r"none of its 1 ids is an item of the run"),
    ],
)
def test_attribute_files_that_cannot_be_joined(run_dir, tmp_path, attributes, pattern):
    with pytest.raises(CcgraphError, match=pattern):
        _plan_with_attributes(run_dir, tmp_path, pd.DataFrame(attributes))


def test_assign_refuses_empty_input_and_unknown_output_types(tmp_path, capsys):
    # before: an empty file wrote an empty table ("wrote a.csv: "); --out a.json wrote Parquet
    # bytes into a .json file; a repeated unit was written twice
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(CcgraphError, match=r"no units to assign"):
        _run(["experiment", "assign", str(empty), "--salt", "s", "--out", str(tmp_path / "a.csv")])
    units = tmp_path / "u.txt"
    units.write_text("u1\nu2\nu2\n")
    with pytest.raises(CcgraphError, match=r"a\.json: unsupported output type"):
        _run(["experiment", "assign", str(units), "--salt", "s", "--out", str(tmp_path / "a.json")])
    assert not (tmp_path / "a.json").exists()
    assert (
        _run(["experiment", "assign", str(units), "--salt", "s", "--out", str(tmp_path / "a.csv")])
        == 0
    )
    assert pd.read_csv(tmp_path / "a.csv")["unit"].tolist() == ["u1", "u2"]
    assert "1 repeated rows of a unit written once" in capsys.readouterr().out


def test_analyse_with_run_uses_the_run_clusters_over_the_log_column(tmp_path, run_dir, caplog):
    # before: a `cluster` column in the log silently won over the explicit --run
    from ccgraph.experiment import simulate_log

    log = simulate_log(n_units=80, baseline_ctr=0.2, rng=1).log
    ids = [f"i{k}" for k in range(12)]
    log["original_id"] = [ids[i % 12] for i in range(len(log))]
    src = tmp_path / "log.parquet"
    log.to_parquet(src)
    out = tmp_path / "an"
    assert _run(["experiment", "analyse", str(src), "--out", str(out), "--run", str(run_dir)]) == 0
    clusters = pd.read_parquet(out / "clusters.parquet")
    assert set(clusters["cluster"].astype(int)) <= {0, 1}  # the run's clusters, not 0..19
    assert "uses the run's clusters of `original_id`" in caplog.text


def test_analyse_names_the_log_file_and_the_line_of_a_bad_value(tmp_path):
    n = 30
    log = pd.DataFrame(
        {
            "unit": [f"u{i % 6}" for i in range(n)],
            "query": "q",
            "position": np.arange(n) % 4,
            "shown_id": "a",
            "original_id": "a",
            "arm": ["control" if i % 6 < 3 else "treatment" for i in range(n)],
            "clicked": [0, 1, 1] * (n // 3),
        }
    )
    log.loc[12, "position"] = -2
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    with pytest.raises(CcgraphError) as err:
        _run(["experiment", "analyse", str(path), "--out", str(tmp_path / "o")])
    row = int(str(err.value).split("data row ")[1].split()[0])
    assert str(err.value).startswith(f"{path}: log column `position`")
    line = path.read_text().splitlines()[row]  # line 0 is the header
    assert pd.read_csv(path).iloc[row - 1]["position"] == -2
    assert ",-2," in line


def test_power_per_arm_sizes_add_up_to_the_total(capsys):
    # before: "impressions needed: 26 (12 control, 12 treatment; ...)" (rounded, not rounded up)
    import re

    assert (
        _run(["experiment", "power", "--baseline-ctr", "0.1", "--effect", "5", "--relative"]) == 0
    )
    line = capsys.readouterr().out
    total, control, treatment = (
        int(x.replace(",", ""))
        for x in re.search(
            r"needed: ([\d,]+) \(([\d,]+) control, ([\d,]+) treatment", line
        ).groups()
    )
    assert control + treatment == total


def test_power_warns_when_the_effect_is_too_small_to_detect(capsys):
    # before: "impressions needed: 2,825,...(25 digits)" printed without a warning
    from ccgraph.exceptions import DataQualityWarning

    with pytest.warns(DataQualityWarning, match="too small to detect"):
        assert _run(["experiment", "power", "--baseline-ctr", "0.1", "--effect", "1e-12"]) == 0
    assert "impressions needed" in capsys.readouterr().out
