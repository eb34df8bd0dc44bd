"""``write_run(adopt=...)``: a staged ``.npy`` moves into the run, bytes as ``np.save`` writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ccgraph.io import write_run
from ccgraph.io.run import staged_file
from tests.io.test_run import _result


def _staged(folder: Path, name: str, value: np.ndarray) -> np.memmap:
    folder.mkdir(parents=True, exist_ok=True)
    mm = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=value.dtype,
                                   shape=value.shape)  # fmt: skip
    mm[:] = value
    return mm


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int64])
def test_adopted_file_is_moved_and_equals_np_save(tmp_path: Path, dtype: type) -> None:
    value = (np.arange(3 * 7).reshape(3, 7) % 5).astype(dtype)
    mm = _staged(tmp_path / "stage", "emb", value)
    out = write_run(_result({"emb": mm}), tmp_path / "run", adopt=[tmp_path / "stage/emb.npy"])
    np.save(tmp_path / "want.npy", value)
    got = (out / "emb.npy").read_bytes()
    assert got == (tmp_path / "want.npy").read_bytes()
    assert not (tmp_path / "stage/emb.npy").exists()  # moved, not copied
    man = json.loads((out / "manifest.json").read_text())
    assert man["files"]["emb.npy"]["sha256"] == hashlib.sha256(got).hexdigest()


def test_files_not_given_up_are_never_moved(tmp_path: Path) -> None:
    value = np.ones((4, 3), dtype=np.float32)
    mm = _staged(tmp_path / "user", "vectors", value)
    out = write_run(_result({"vectors": mm}), tmp_path / "run")
    assert (tmp_path / "user/vectors.npy").exists()
    np.testing.assert_array_equal(np.load(out / "vectors.npy"), value)


def test_only_a_whole_file_is_adopted(tmp_path: Path) -> None:
    mm = _staged(tmp_path / "stage", "big", np.arange(20, dtype=np.float32).reshape(5, 4))
    path = (tmp_path / "stage/big.npy").resolve()
    assert staged_file(mm, {path}) == path
    assert staged_file(np.asarray(mm), {path}) == path  # a plain view of the whole map
    assert staged_file(mm[1:], {path}) is None
    assert staged_file(mm[:, :2], {path}) is None
    assert staged_file(np.array(mm), {path}) is None  # a copy
    out = write_run(_result({"part": mm[1:]}), tmp_path / "run", adopt=[path])
    np.testing.assert_array_equal(np.load(out / "part.npy"), np.asarray(mm)[1:])
    assert path.exists()


def test_a_folder_given_up_adopts_the_files_directly_inside(tmp_path: Path) -> None:
    from ccgraph.io.run import RunWriter

    stage = tmp_path / "stage"
    with RunWriter(tmp_path / "run", adopt=[stage]) as writer:  # made before the arrays exist
        inside = _staged(stage, "emb", np.arange(12, dtype=np.float32).reshape(4, 3))
        deeper = _staged(stage / "sub", "other", np.ones((2, 2), dtype=np.float32))
        out = writer.finish(_result({"emb": inside, "other": deeper}))
    assert not (stage / "emb.npy").exists()  # moved into the run
    assert (stage / "sub/other.npy").exists()  # not directly inside: copied, left alone
    np.testing.assert_array_equal(np.load(out / "emb.npy"), np.asarray(inside))
    np.testing.assert_array_equal(np.load(out / "other.npy"), np.ones((2, 2), dtype=np.float32))
