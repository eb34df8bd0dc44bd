"""Run directory: write_run / load_run round trip, contract check, determinism, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, RunResult
from ccgraph.exceptions import IdMismatchError, InputError, OutputError
from ccgraph.io import load_run, write_run
from tests.conftest import shared_data_dir

IDS = ["a", "b", "c", "d", "e"]


def _result(extras: dict | None = None, manifest: dict | None = None) -> RunResult:
    g = np.random.default_rng(0)
    dense = np.triu(g.random((5, 5)) * (g.random((5, 5)) < 0.6), 1)
    graph = KnnGraph.from_adjacency(dense + dense.T, IDS, params={"k": 2, "metric": "cosine"})
    items = pd.DataFrame(
        {
            "id": IDS,
            "cluster": np.array([0, 0, 1, 1, 1], dtype=np.int64),
            "cluster_l0": np.array([0, 0, 0, 0, 0], dtype=np.int64),
            "cluster_strength": np.linspace(0.2, 1, 5),
            "duplicate_group": np.array([0, 0, 1, 2, 3], dtype=np.int64),
            "is_canonical": [True, False, True, True, True],
            "popularity_observed": [10.0, np.nan, 3.0, np.nan, np.nan],
            "popularity": [0.8, 0.1, 0.4, 0.2, 0.05],
            "popularity_source": ["observed", "inferred", "observed", "inferred", "none"],
            "popularity_confidence": [1.0, 0.5, 1.0, 0.3, 0.0],
            "degree": graph.degree,
        }
    )
    tags = pd.DataFrame(
        {
            "id": ["a", "b", "b"],
            "tag": ["dog", "dog", "park"],
            "score": np.array([1.0, 0.7, 0.4], dtype=np.float32),
            "confidence": np.array([1.0, 0.6, 0.3], dtype=np.float32),
            "rank": pd.array([None, 1, 2], dtype="Int64"),
            "source": ["observed", "inferred", "inferred"],
            "origin": ["user", None, None],
            "tag_raw": ["Dog", None, None],
        }
    )
    clusters = pd.DataFrame(
        {
            "level": np.array([0, 1, 1], dtype=np.int64),
            "cluster": np.array([0, 0, 1], dtype=np.int64),
            "size": np.array([5, 2, 3], dtype=np.int64),
            "label": ["all", "dogs", "cats"],
            "top_tags": [["dog", "park"], ["dog"], []],
            "top_tag_scores": [[0.9, 0.2], [0.8], []],
            "representative_ids": [["a", "c"], ["a"], ["c", "d"]],
            "density": [0.5, 1.0, 0.66],
            "conductance": [0.0, 0.3, 0.2],
        }
    )
    rejects = pd.DataFrame(
        {
            "file": ["x.csv"],
            "row": np.array([7], dtype=np.int64),
            "id": ["zz"],
            "stage": ["read"],
            "reason": ["duplicate id"],
        }
    )
    man = {"config": {"graph": {"k": 2}}, "seed": 0, "timings_s": {"read": 0.1, "graph": 0.2}}
    man.update(manifest or {})
    return RunResult(items, tags, clusters, rejects, graph, man, extras=extras or {})


def test_round_trip(tmp_path: Path) -> None:
    emb = np.arange(10, dtype=np.float32).reshape(5, 2)
    side = pd.DataFrame({"id": IDS, "x": range(5)})
    res = _result(extras={"embeddings_text": emb, "neighbours": side})
    out = write_run(res, tmp_path / "run")
    back = load_run(out)
    for name in ("items", "tags", "clusters", "rejects"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(res, name))
    assert back.ids.tolist() == IDS
    assert (back.graph.adjacency != res.graph.adjacency).nnz == 0
    assert back.graph.params == {"k": 2, "metric": "cosine"}
    assert back.path == out
    man = back.manifest
    assert man["schema_version"] == 1 and man["seed"] == 0 and "created" in man
    assert man["counts"]["items"] == 5 and man["counts"]["inferred_tags"] == 2
    assert man["counts"]["clusters"] == {"0": 1, "1": 2}
    assert man["counts"]["edges"] == res.graph.n_edges
    assert sorted(back.extras) == ["embeddings_text", "neighbours"]
    arr = back.extras["embeddings_text"]
    np.testing.assert_array_equal(arr, emb)
    assert not arr.flags.writeable
    pd.testing.assert_frame_equal(back.extras["neighbours"], side)


def test_graph_npz_is_plain_full_symmetric(tmp_path: Path) -> None:
    res = _result()
    out = write_run(res, tmp_path / "run")
    with np.load(out / "graph.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["data", "ids", "indices", "indptr", "shape"]
        a = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        assert z["ids"].dtype.kind == "U"
    np.testing.assert_allclose(a.toarray(), a.toarray().T)
    np.testing.assert_allclose(a.toarray(), res.graph.adjacency.toarray())


def test_check_run_dir_tool_passes(tmp_path: Path) -> None:
    tool = shared_data_dir().parent / "tools" / "check_run_dir.py"
    if not tool.exists():
        pytest.skip(f"contract checker not found at {tool}")
    out = write_run(_result(), tmp_path / "run")
    proc = subprocess.run([sys.executable, str(tool), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "matches the contract: 5 items" in proc.stdout


def test_outputs_are_byte_identical(tmp_path: Path) -> None:
    a = write_run(_result(), tmp_path / "a")
    b = write_run(_result(), tmp_path / "b")
    for name in (
        "items.parquet",
        "tags.parquet",
        "clusters.parquet",
        "rejects.parquet",
        "graph.npz",
    ):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    ma.pop("created"), mb.pop("created")
    assert ma == mb


def test_overwrite_replaces_previous_run(tmp_path: Path) -> None:
    target = tmp_path / "run"
    write_run(_result(manifest={"seed": 1}), target)
    write_run(_result(manifest={"seed": 2}), target)
    assert load_run(target).manifest["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(OutputError, match="pass overwrite=True"):
        write_run(_result(), target, overwrite=False)


def test_failed_write_keeps_old_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run"
    write_run(_result(manifest={"seed": 1}), target)
    from ccgraph.io import _writer

    real = _writer._write_table

    def flaky(table: object, path: Path) -> tuple[int, str]:
        if "clusters" in path.name:
            raise OSError("disk full")
        return real(table, path)

    monkeypatch.setattr(_writer, "_write_table", flaky)
    # a failed write is an OutputError naming the run directory (it was the bare OSError)
    with pytest.raises(OutputError, match=f"cannot write to {target}: disk full") as info:
        write_run(_result(manifest={"seed": 2}), target)
    assert isinstance(info.value.__cause__, OSError)
    assert load_run(target).manifest["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_refuses_foreign_directory(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match=r"refusing to replace .*mine.*not a ccgraph run"):
        write_run(_result(), target)
    assert (target / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot write to .*a_file"):
        write_run(_result(), blocker / "run")


def test_bad_results_refused(tmp_path: Path) -> None:
    res = _result()
    no_col = RunResult(
        res.items.drop(columns="degree"),
        res.tags,
        res.clusters,
        res.rejects,
        res.graph,
        res.manifest,
    )
    with pytest.raises(InputError, match=r"RunResult.items lacks the columns \['degree'\]"):
        write_run(no_col, tmp_path / "r1")
    shuffled = RunResult(
        res.items.iloc[::-1], res.tags, res.clusters, res.rejects, res.graph, res.manifest
    )
    with pytest.raises(IdMismatchError):
        write_run(shuffled, tmp_path / "r2")
    with pytest.raises(InputError, match="must be a numpy array or a DataFrame"):
        write_run(_result(extras={"x": [1, 2]}), tmp_path / "r3")
    with pytest.raises(InputError, match=r"clashes with the file items\.parquet"):
        write_run(_result(extras={"items": pd.DataFrame({"a": [1]})}), tmp_path / "r4")
    with pytest.raises(InputError, match="plain file stem"):
        write_run(_result(extras={"../up": np.zeros(2)}), tmp_path / "r5")
    assert not any(tmp_path.iterdir())


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run directory not found"):
        load_run(tmp_path / "none")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"manifest\.json is missing"):
        load_run(empty)
    out = write_run(_result(), tmp_path / "run")
    man = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**man, "schema_version": 2}))
    with pytest.raises(InputError, match="schema_version 2 is not supported"):
        load_run(out)
    (out / "manifest.json").write_text(json.dumps(man))
    (out / "tags.parquet").unlink()
    with pytest.raises(InputError, match=r"incomplete run directory: missing \['tags.parquet'\]"):
        load_run(out)
    out = write_run(_result(), tmp_path / "run2")
    with (out / "items.parquet").open("ab") as fh:
        fh.write(b"junk")
    with pytest.raises(InputError, match=r"items\.parquet has .* bytes but the manifest records"):
        load_run(out)


CHILD = """
import sys
import numpy as np
from ccgraph.containers import KnnGraph, RunResult
from ccgraph.io import write_run
from tests.io.test_run import _result

small = _result(manifest={"seed": 99})
n = 60_000
g = np.random.default_rng(1)
big = RunResult(small.items, small.tags, small.clusters, small.rejects, small.graph,
                small.manifest, extras={"vectors": g.random((n, 64), dtype=np.float32)})
print("ready", flush=True)
while True:
    write_run(big, sys.argv[1])
"""


def test_sigkill_mid_write_keeps_a_complete_run(tmp_path: Path) -> None:
    import os
    import signal
    import time

    target = tmp_path / "run"
    write_run(_result(manifest={"seed": 1}), target)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tmps = [p for p in tmp_path.iterdir() if p.name.startswith(".run.tmp-")]
            if any(any(t.iterdir()) for t in tmps if t.exists()):
                break
            time.sleep(0.005)
        else:
            pytest.fail("the writer never started a temporary directory")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert any(p.name.startswith(".run.tmp-") for p in tmp_path.iterdir())
    back = load_run(target)  # the old run, or a later one that was complete
    assert back.manifest["seed"] in (1, 99)
    write_run(_result(manifest={"seed": 2}), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert load_run(target).manifest["seed"] == 2


def test_manifest_records_size_and_sha256_of_every_file(tmp_path: Path) -> None:
    """The files are written and hashed on worker threads: check them against hashlib."""
    import hashlib

    big = np.arange(300_000, dtype=np.float32).reshape(-1, 3)
    extras = {"big": big, "small": np.arange(5), "table": pd.DataFrame({"x": [1, 2]})}
    out = write_run(_result(extras=extras), tmp_path / "run")
    man = json.loads((out / "manifest.json").read_text())
    on_disk = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert sorted(man["files"]) == on_disk
    for name, info in man["files"].items():
        data = (out / name).read_bytes()
        assert info == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    ref = tmp_path / "ref.npy"
    np.save(ref, big, allow_pickle=False)
    assert (out / "big.npy").read_bytes() == ref.read_bytes()
    assert man["extras"] == {"big": "big.npy", "small": "small.npy", "table": "table.parquet"}


@pytest.mark.parametrize("path", [5, None, ["run"]])
def test_load_run_of_a_non_path_is_a_parameter_error(path: object) -> None:
    # before: TypeError from pathlib
    from ccgraph.exceptions import ParameterError

    with pytest.raises(ParameterError, match=r"`path` must be a run directory .*got"):
        load_run(path)  # type: ignore[arg-type]
