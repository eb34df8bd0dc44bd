"""``ccgraph estimate``: the scaling model, its inputs from a config, and the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ccgraph.cli import main
from ccgraph.config import load_config
from ccgraph.estimate import SPARK_HOURS, estimate, estimate_config, load_model
from ccgraph.exceptions import ConfigError, InputError, ParameterError

MODEL = {
    "stages": {
        "rest": {"a": 2.0, "b": 1.0},
        "graph": {"a": 10.0, "b": 1.2},
        "tags": {"a": 4.0, "b": 1.0},
    },
    "memory": {"m0_mb": 300.0, "m1_mb_per_item": 0.005},
}


def test_power_laws_by_hand():
    e = estimate(400_000, model=MODEL, available_gb=24.0)
    assert e.stages_s["rest"] == pytest.approx(8.0)
    assert e.stages_s["graph"] == pytest.approx(10.0 * 4.0**1.2)
    assert e.stages_s["tags"] == pytest.approx(16.0)
    assert e.total_s == pytest.approx(8.0 + 10.0 * 4.0**1.2 + 16.0)
    assert e.peak_gb == pytest.approx((300.0 + 0.005 * 400_000) / 1024)
    assert e.recommendation == "fits on this machine"


def test_shape_scales_the_stage_costs():
    base = estimate(100_000, model=MODEL, available_gb=24.0)
    wide = estimate(100_000, d=768, k=30, model=MODEL, available_gb=24.0)
    assert wide.stages_s["graph"] == pytest.approx(4 * base.stages_s["graph"])  # d x2, k x2
    assert wide.stages_s["tags"] == pytest.approx(2 * base.stages_s["tags"])  # k x2
    exact = estimate(100_000, n_tags=5000, solver="exact", model=MODEL, available_gb=24.0)
    assert exact.stages_s["tags"] == pytest.approx(5 * base.stages_s["tags"])
    assert wide.peak_gb > base.peak_gb


def test_recommends_spark_when_memory_or_time_runs_out():
    big = estimate(500_000_000, model=MODEL, available_gb=24.0)
    assert "Spark" in big.recommendation and "GB" in big.recommendation
    slow = estimate(1000, embed_rate=1e-2, model=MODEL, available_gb=24.0)
    assert slow.total_s > SPARK_HOURS * 3600 and "Spark" in slow.recommendation


def test_bad_inputs_name_the_parameter(tmp_path):
    with pytest.raises(ParameterError, match="n_items"):
        estimate(0, model=MODEL)
    bad = tmp_path / "m.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="regenerate"):
        load_model(bad)


def test_packaged_model_is_fitted_on_small_sizes_only():
    model = load_model()
    assert max(model["fitted_on"]) <= 100_000
    assert {"graph", "cluster", "tags"} <= set(model["stages"])
    e = estimate(1_000_000, model=model, available_gb=24.0)
    assert 0 < e.total_s < 3600


def _config(tmp_path, n=120, d=24):
    ids = [f"i{i}" for i in range(n)]
    pd.DataFrame({"id": ids, "title": ["t"] * n}).to_parquet(tmp_path / "cat.parquet")
    np.save(tmp_path / "v.npy", np.ones((n, d), dtype=np.float32))
    (tmp_path / "c.yaml").write_text(
        "data: {path: cat.parquet, format: table}\n"
        "embed: {text: {enabled: false}, precomputed: {path: v.npy}}\n"
        "graph: {k: 10}\n"
    )
    return tmp_path / "c.yaml"


def test_config_gives_n_d_k(tmp_path):
    path = _config(tmp_path)
    e = estimate_config(load_config(path), model=MODEL)
    assert e.inputs["n_items"] == 120 and e.inputs["d"] == 24 and e.inputs["k"] == 10
    assert "embed (model)" not in e.stages_s
    e2 = estimate_config(load_config(path, overrides=["embed.text.enabled=true"]), model=MODEL)
    assert e2.inputs["d"] == 24 + 384 and e2.stages_s["embed (model)"] > 0


def test_command_prints_json(tmp_path, capsys):
    path = _config(tmp_path)
    assert main(["estimate", str(path), "--items", "250000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_items"] == 250_000 and out["total_s"] > 0
    assert main(["estimate", str(path)]) == 0
    assert "peak memory" in capsys.readouterr().out


def test_precomputed_width_is_read_or_refused_by_name(tmp_path):
    # before: a Parquet file counted as d = 384 whatever its width; a missing, unreadable or
    # 1-d .npy raised FileNotFoundError / ValueError / IndexError
    path = _config(tmp_path)
    pq = tmp_path / "v.parquet"
    pd.DataFrame({"id": ["a", "b"], "vector": [np.zeros(40), np.ones(40)]}).to_parquet(pq)
    e = estimate_config(load_config(path, overrides=[f"embed.precomputed.path={pq}"]), model=MODEL)
    assert e.inputs["d"] == 40
    wide = tmp_path / "w.parquet"
    pd.DataFrame({"id": ["a"], "x0": [1.0], "x1": [2.0], "x2": [3.0]}).to_parquet(wide)
    e = estimate_config(
        load_config(path, overrides=[f"embed.precomputed.path={wide}"]), model=MODEL
    )
    assert e.inputs["d"] == 3
    np.save(tmp_path / "flat.npy", np.zeros(5))
    (tmp_path / "junk.npy").write_text("junk")
    for name, pattern in [
        (
            "missing.npy",
            r"vectors file not found: .*missing\.npy; check `embed\.precomputed\.path`",
        ),
        ("flat.npy", r"flat\.npy: expected a 2-d array .* got \(5,\)"),
        ("junk.npy", r"junk\.npy: not a readable \.npy array"),
    ]:
        cfg = load_config(path, overrides=[f"embed.precomputed.path={tmp_path / name}"])
        with pytest.raises(InputError, match=pattern):
            estimate_config(cfg, model=MODEL)


def test_items_are_counted_in_the_files_read_catalog_reads(tmp_path):
    # before: a directory `data.path` (the README's openverse config) was "matches no file",
    # a .csv.gz counted its compressed lines, and a header-only file failed naming `n_items`
    import gzip

    import ccgraph

    path = _config(tmp_path)
    folder = tmp_path / "cat"
    folder.mkdir()
    rows = "".join(f"a{i},t{i}\n" for i in range(30))
    (folder / "a.csv").write_text("id,title\n" + rows)
    (folder / "b.csv.gz").write_bytes(
        gzip.compress(("id,title\n" + rows.replace("a", "b")).encode())
    )
    (folder / "c.jsonl").write_text("".join(f'{{"id": "c{i}"}}\n' for i in range(7)))
    cfg = load_config(path, overrides=[f"data.path={folder}"])
    expected = len(ccgraph.read_catalog(folder).ids)
    assert estimate_config(cfg, model=MODEL).inputs["n_items"] == expected == 67
    (tmp_path / "head.csv").write_text("id,title\n")
    cfg = load_config(path, overrides=["data.path=head.csv"])
    with pytest.raises(ConfigError, match=r"`data\.path` \['head\.csv'\] holds no data rows"):
        estimate_config(cfg, model=MODEL)
    cfg = load_config(path, overrides=["data.path=nowhere/*.csv"])
    with pytest.raises(ConfigError, match=r"nowhere/\*\.csv.*give --items N"):
        estimate_config(cfg, model=MODEL)
