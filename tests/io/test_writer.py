"""RunWriter: files handed over while a run is assembled equal write_run's, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ccgraph.exceptions import InputError, OutputError
from ccgraph.io import load_run, write_run
from ccgraph.io.run import RunWriter
from tests.io.test_run import _result


def _bytes(root: Path) -> dict[str, bytes]:
    """Every file of a run directory but the manifest (whose ``created`` is a timestamp)."""
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.name != "manifest.json"}


def _manifest(root: Path) -> dict:
    man = json.loads((root / "manifest.json").read_text())
    man.pop("created")
    return man


EXTRAS = {"vectors": np.arange(12, dtype=np.float32).reshape(4, 3), "rows": np.arange(5)}


@pytest.mark.parametrize("order", ["arrays_first", "tables_first", "two_threads", "nothing_early"])
def test_parts_given_early_make_the_same_run(tmp_path: Path, order: str) -> None:
    result = _result(extras=dict(EXTRAS))
    write_run(result, tmp_path / "ref")
    with RunWriter(tmp_path / "run") as w:
        if order == "arrays_first":
            w.add_extras(result.extras)
            w.add_graph(result.graph)
            w.add_table("items", result.items)
        elif order == "tables_first":
            w.add_table("tags", result.tags)
            w.add_table("clusters", result.clusters)
            w.add_extras({"rows": result.extras["rows"]})
            w.add_graph(result.graph)
            w.add_graph(result.graph)  # the same part twice is written once
        elif order == "two_threads":
            w.add_table("tags", result.tags)
            w.grow()  # a second writer thread from here on
            w.add_table("items", result.items)
            w.add_extras(result.extras)
        path = w.finish(result)
    assert _bytes(path) == _bytes(tmp_path / "ref")
    assert _manifest(path) == _manifest(tmp_path / "ref")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref", "run"]  # no temp dir left
    np.testing.assert_array_equal(load_run(path).extras["vectors"], EXTRAS["vectors"])


def test_a_part_that_differs_from_the_result_is_refused(tmp_path: Path) -> None:
    result = _result()
    with RunWriter(tmp_path / "run") as w:
        w.add_table("items", result.items.copy())
        with pytest.raises(InputError, match=r"items\.parquet was given twice"):
            w.finish(result)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp dir left


def test_an_extra_missing_from_the_result_is_refused(tmp_path: Path) -> None:
    result = _result()
    with RunWriter(tmp_path / "run") as w:
        w.add_extras({"stray": np.zeros(3)})
        with pytest.raises(InputError, match=r"stray\.npy"):
            w.finish(result)
    assert list(tmp_path.iterdir()) == []


def test_an_error_while_assembling_keeps_the_old_run(tmp_path: Path) -> None:
    target = tmp_path / "run"
    write_run(_result(manifest={"seed": 1}), target)
    with pytest.raises(RuntimeError, match="assembly failed"), RunWriter(target) as w:
        w.add_graph(_result().graph)
        raise RuntimeError("assembly failed")
    assert load_run(target).manifest["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_refuses_to_overwrite_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "run"
    write_run(_result(), target)
    with pytest.raises(OutputError, match="pass overwrite=True"):
        RunWriter(target, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_table_without_its_columns_is_refused_when_given(tmp_path: Path) -> None:
    result = _result()
    with RunWriter(tmp_path / "run") as w, pytest.raises(InputError, match="lacks the columns"):
        w.add_table("items", result.items.drop(columns=["degree"]))


def test_a_staged_array_given_early_is_moved_and_hashed(tmp_path: Path) -> None:
    import hashlib

    from tests.io.test_adopt import _staged

    value = np.arange(40, dtype=np.float32).reshape(8, 5)
    mm = _staged(tmp_path / "stage", "emb", value)
    result = _result({"emb": mm})
    with RunWriter(tmp_path / "run", adopt=[tmp_path / "stage/emb.npy"]) as w:
        w.add_extras(result.extras)
        path = w.finish(result)
    np.save(tmp_path / "want.npy", value)
    got = (path / "emb.npy").read_bytes()
    assert got == (tmp_path / "want.npy").read_bytes()
    assert not (tmp_path / "stage/emb.npy").exists()
    man = json.loads((path / "manifest.json").read_text())
    assert man["files"]["emb.npy"]["sha256"] == hashlib.sha256(got).hexdigest()


def test_workers_run_jobs_pass_errors_and_cancel_pending_ones() -> None:
    import threading

    from ccgraph.io._workers import Workers

    pool = Workers()
    pool.grow(1)
    gate = threading.Event()
    first = pool.submit(lambda: gate.wait(5) and 1)
    failing = pool.submit(lambda: 1 / 0)
    pending = pool.submit(lambda: 3)
    gate.set()
    assert first.result(5) == 1
    with pytest.raises(ZeroDivisionError):
        failing.result(5)
    assert pending.result(5) == 3
    started, blocked = threading.Event(), threading.Event()
    slow = pool.submit(lambda: started.set() or blocked.wait(5))
    never = pool.submit(lambda: 4)
    pool.grow(1)  # still one thread: the second job waits behind the first
    assert started.wait(5)
    threading.Timer(0.2, blocked.set).start()
    pool.shutdown(cancel=True)
    assert slow.result() is True and never.cancelled()
