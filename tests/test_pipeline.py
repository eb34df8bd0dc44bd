"""End-to-end runs of the pipeline on small inputs (precomputed vectors: no model needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ccgraph
from ccgraph.cli import main
from tests.conftest import REPO, blobs, shared_data_dir


def make_catalog(tmp_path: Path, n: int = 120, seed: int = 0) -> Path:
    """A table catalog of ``n`` items in 4 topics with tags on half of them, plus vectors."""
    x, labels = blobs(n=n, d=16, centers=4, spread=0.2, seed=seed)
    topics = np.array(["beach", "forest", "city", "snow"])
    rows = []
    for i in range(n):
        tags = f"{topics[labels[i]]},photo" if i % 2 == 0 else ""
        views = float(10 * (labels[i] + 1) + i % 7) if i % 3 == 0 else np.nan
        rows.append(
            {
                "key": f"it{i:04d}",
                "name": f"picture {i}",
                "labels": tags,
                "views": views,
                "src": "flickr",
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "catalog.csv", index=False)
    pd.DataFrame(
        {"id": [f"it{i:04d}" for i in range(n)], "vector": list(x.astype(np.float64))}
    ).to_parquet(tmp_path / "vectors.parquet")
    return tmp_path / "catalog.csv"


def write_config(tmp_path: Path, **extra: str) -> Path:
    make_catalog(tmp_path)
    text = """
data:
  path: catalog.csv
  format: table
  columns: {id: key, title: name, tags: labels, popularity: views, provider: src}
  tags: {min_count: 2}
embed:
  text: {enabled: false}
  precomputed: {path: vectors.parquet}
graph: {k: 8, min_degree: 2}
cluster: {resolutions: [0.5, 1.0]}
propagate:
  tags: {top_k: 3, explain: true}
output: {dir: run}
seed: 3
"""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    return cfg


def test_run_writes_contract_directory(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = ccgraph.run(cfg)
    run = tmp_path / "run"
    assert result.path == run.resolve()
    checker = shared_data_dir().parent / "tools" / "check_run_dir.py"
    if checker.exists():
        proc = subprocess.run(
            [sys.executable, str(checker), str(run)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    items = pd.read_parquet(run / "items.parquet")
    assert len(items) == 120
    assert {"cluster_l0", "cluster_l1", "cluster_strength", "is_canonical"} <= set(items.columns)
    # the four planted topics are recovered at the coarse level
    truth = np.array([int(i[2:]) for i in items["id"]])
    _, labels = blobs(n=120, d=16, centers=4, spread=0.2, seed=0)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(labels[truth], items["cluster_l0"]) > 0.9
    tags = pd.read_parquet(run / "tags.parquet")
    inferred = tags[tags["source"] == "inferred"]
    observed = tags[tags["source"] == "observed"]
    # untagged items get their topic's tag as the top inferred tag
    top = inferred[inferred["rank"] == 1].set_index("id")["tag"]
    untagged = items.loc[~items["id"].isin(observed["id"]), "id"]
    topic = pd.Series(["beach", "forest", "city", "snow"])[labels[truth]].to_numpy()
    want = pd.Series(topic, index=items["id"])
    hits = [top.get(i) in (want[i], "photo") for i in untagged]
    assert np.mean(hits) > 0.9
    # observed tags are never repeated as inferred for the same item
    both = inferred.merge(observed, on=["id", "tag"])
    assert both.empty
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 3
    assert set(manifest["timings_s"]) >= {"read", "embed", "graph", "cluster", "tags"}
    assert manifest["counts"]["items"] == 120


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    main(["run", str(cfg), "--out", str(tmp_path / "a"), "-q"])
    main(["run", str(cfg), "--out", str(tmp_path / "b"), "-q"])
    for name in (
        "items.parquet",
        "tags.parquet",
        "clusters.parquet",
        "rejects.parquet",
        "graph.npz",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_load_run_round_trip(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = ccgraph.run(cfg)
    back = ccgraph.load_run(result.path)
    pd.testing.assert_frame_equal(
        back.items.reset_index(drop=True),
        result.items.reset_index(drop=True),
        check_dtype=False,
    )
    assert (back.graph.adjacency != result.graph.adjacency).nnz == 0


def test_cli_run_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    assert main(["run", str(cfg), "-q", "--set", "graph.k=500"]) == 2
    assert "graph.k" in capsys.readouterr().err
    assert main(["run", str(cfg), "-q"]) == 0
    assert "120 items" in capsys.readouterr().out


def test_foreign_output_directory_is_refused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "thesis.docx").write_text("precious")
    with pytest.raises(ccgraph.CcgraphError, match="run"):
        ccgraph.run(cfg)
    assert (tmp_path / "run" / "thesis.docx").read_text() == "precious"


def test_an_input_inside_the_run_it_replaces_is_refused(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path)
    ccgraph.run(ccgraph.load_config(cfg_path))
    shutil.move(tmp_path / "vectors.parquet", tmp_path / "run" / "vectors.parquet")
    cfg = ccgraph.load_config(
        cfg_path, ["embed.precomputed.path=run/vectors.parquet", "output.overwrite=true"]
    )
    with pytest.raises(ccgraph.CcgraphError, match=r"`embed.precomputed.path` .* inside the run"):
        ccgraph.run(cfg)
    assert (tmp_path / "run" / "vectors.parquet").exists()
    # beside the run (or the previous run itself) is fine
    shutil.move(tmp_path / "run" / "vectors.parquet", tmp_path / "vectors.parquet")
    ccgraph.run(ccgraph.load_config(cfg_path, ["output.overwrite=true"]))


@pytest.mark.slow
def test_openverse_sample_with_text_model(tmp_path: Path, openverse_dir: Path) -> None:
    cfg = ccgraph.load_config(
        REPO / "configs" / "openverse-sample.yaml",
        [
            "data.limit=300",
            f"data.path={openverse_dir / 'openverse_api_sample_images_to_clean_2023.csv'}",
            f"embed.cache_dir={tmp_path / 'cache'}",
        ],
    )
    result = ccgraph.run(cfg, out=tmp_path / "run")
    assert len(result.items) == 300
    assert result.manifest["counts"]["inferred_tags"] > 0
    assert result.manifest["stages"]["embed"]["text"]


def test_explanations_written_when_asked(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = ccgraph.run(cfg)
    expl = pd.read_parquet(result.path / "explanations.parquet")
    inferred = result.tags[result.tags["source"] == "inferred"]
    assert {"id", "tag", "neighbour_id", "contribution"} <= set(expl.columns)
    # every explanation is about an inferred (id, tag) pair and names a real graph neighbour
    pairs = set(zip(inferred["id"], inferred["tag"], strict=True))
    assert set(zip(expl["id"], expl["tag"], strict=True)) <= pairs
    pos = {x: i for i, x in enumerate(result.graph.ids)}
    adj = result.graph.adjacency
    assert all(
        adj[pos[a], pos[b]] > 0 or a == b
        for a, b in zip(expl["id"], expl["neighbour_id"], strict=True)
    )


def test_too_few_embedded_items_names_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: "`graph.k` is 8 but only 2 items have this embedding; set graph.k below 2
    # (e.g. --set graph.k=1)" -- advice that cannot work (a graph needs 3 items)
    cfg = write_config(tmp_path)
    vec = pd.read_parquet(tmp_path / "vectors.parquet").head(2)
    vec.to_parquet(tmp_path / "vectors.parquet")
    assert main(["run", str(cfg), "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "only 2 of 120 items have 'precomputed' embeddings; a similarity graph needs at least 3"
        in err
    )
    assert "graph.k=1" not in err


def test_input_paths_name_a_glob_by_its_folder(tmp_path: Path) -> None:
    from ccgraph._stages import input_paths

    cfg = ccgraph.load_config(
        write_config(tmp_path), ["data.path=[shards/2026-*/part*.csv, a.csv]"]
    )
    got = input_paths(cfg)
    assert got["data.path[0]"] == tmp_path / "shards"
    assert got["data.path[1]"] == tmp_path / "a.csv"
    assert got["embed.precomputed.path"] == tmp_path / "vectors.parquet"
    assert got["embed.cache_dir"] is None


@pytest.mark.parametrize("config", [5, ["data"], None])
def test_run_of_a_config_that_is_neither_path_nor_mapping(config: object) -> None:
    # before: TypeError ('int' object is not iterable) from dict(config)
    with pytest.raises(ccgraph.ParameterError, match=r"`config` must be a Config, .*got"):
        ccgraph.run(config)  # type: ignore[arg-type]


def _check_run_dir(run: Path) -> None:
    checker = shared_data_dir().parent / "tools" / "check_run_dir.py"
    if checker.exists():
        proc = subprocess.run(
            [sys.executable, str(checker), str(run)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _observed(run: Path) -> pd.DataFrame:
    tags = pd.read_parquet(run / "tags.parquet")
    obs = tags[tags["source"] == "observed"].sort_values(["id", "tag"], kind="stable")
    return obs.reset_index(drop=True)


def test_tagprop_weight_auto_writes_a_calibrated_blend(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    assert main(["run", str(cfg), "--out", str(tmp_path / "plain"), "-q"]) == 0
    blend_args = ["--set", "propagate.tags.tagprop_weight=auto", "--set", "graph.k=6"]
    assert main(["run", str(cfg), "--out", str(tmp_path / "blend"), "-q", *blend_args]) == 0
    run = tmp_path / "blend"
    _check_run_dir(run)
    pd.testing.assert_frame_equal(_observed(run), _observed(tmp_path / "plain"))
    tags = pd.read_parquet(run / "tags.parquet")
    inferred = tags[tags["source"] == "inferred"]
    assert len(inferred) > 0
    assert inferred["confidence"].between(0, 1).all()
    observed = set(zip(*(_observed(run)[c] for c in ("id", "tag")), strict=True))
    assert not observed & set(zip(inferred["id"], inferred["tag"], strict=True))
    stage = json.loads((run / "manifest.json").read_text())["stages"]["tags"]
    grid = dict((w, s) for w, s in stage["tagprop"]["grid"])
    assert stage["tagprop_weight"] in grid
    assert grid[stage["tagprop_weight"]] == max(grid.values())
    assert stage["tagprop"]["k"] == 6  # tagprop_k defaults to graph.k
    assert set(stage["tagprop"]["calibration"]) == {"tagged"}  # untagged: the two probabilities


def test_tagprop_weight_null_leaves_outputs_bit_identical(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    main(["run", str(cfg), "--out", str(tmp_path / "a"), "-q"])
    null = ["--set", "propagate.tags.tagprop_weight=null"]
    main(["run", str(cfg), "--out", str(tmp_path / "b"), "-q", *null])
    for name in ("items.parquet", "tags.parquet", "clusters.parquet", "graph.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    stages = [json.loads((tmp_path / d / "manifest.json").read_text())["stages"] for d in "ab"]
    assert stages[0]["tags"] == stages[1]["tags"]


def test_update_of_a_tagprop_run_is_refused(tmp_path: Path) -> None:
    from ccgraph.exceptions import InputError
    from ccgraph.update import update_run

    cfg = write_config(tmp_path)
    main(["run", str(cfg), "--out", str(tmp_path / "blend"), "-q",
          "--set", "propagate.tags.tagprop_weight=0.5"])  # fmt: skip
    with pytest.raises(InputError, match=r"propagate\.tags\.tagprop_weight.*ccgraph run"):
        update_run(tmp_path / "blend", tmp_path / "catalog.csv", out=tmp_path / "up")
    assert not (tmp_path / "up").exists()
