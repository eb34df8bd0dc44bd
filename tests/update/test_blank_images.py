"""Blank images after an update: kept out of duplicate groups as a full run keeps them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ccgraph
from ccgraph.exceptions import DataQualityWarning
from ccgraph.update import update_run
from tests._blank_images import picture_files, run_config

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("imagehash")


def _groups(run: ccgraph.RunResult) -> dict[str, int]:
    return dict(zip(run.items["id"], run.items["duplicate_group"], strict=True))


def test_a_new_blank_image_joins_only_byte_identical_files(tmp_path: Path) -> None:
    paths = picture_files(tmp_path)
    noise = [f"n{i:02d}" for i in range(16)]
    base_names = [*noise[:14], "black", "blue"]
    with pytest.warns(DataQualityWarning, match="blank"):
        base = ccgraph.run(run_config(tmp_path / "base", base_names, paths))
    batch = tmp_path / "batch.csv"
    new = ["red", "blue_copy", *noise[14:]]
    rows = [{"key": n, "name": f"picture {n}", "file": str(paths[n])} for n in new]
    pd.DataFrame(rows).to_csv(batch, index=False)
    with pytest.warns(DataQualityWarning, match="blank"):
        updated = update_run(base.path, batch, out=tmp_path / "updated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        full = ccgraph.run(run_config(tmp_path / "full", base_names + new, paths))
    got, want = _groups(updated), _groups(full)
    # the oracle: the full run over all items groups blue with its copy and nothing else
    assert want["blue"] == want["blue_copy"]
    assert len({want["black"], want["blue"], want["red"]}) == 3
    assert got["blue"] == got["blue_copy"]
    assert len({got["black"], got["blue"], got["red"]}) == 3
    ids = sorted(got)
    a, b = (pd.factorize(np.array([g[i] for i in ids]))[0] for g in (got, want))
    assert (a == b).all()
