"""The catalog side of an update: plan_changes and run_catalog against plain references."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import ITEM_COLUMNS, TAG_COLUMNS, Catalog, RunResult
from ccgraph.exceptions import DataQualityWarning
from ccgraph.update._catalog import plan_changes, run_catalog

NAMES = st.sampled_from([f"i{k}" for k in range(12)])


@settings(max_examples=60, deadline=None)
@given(
    run=st.lists(NAMES, unique=True, max_size=10),
    batch=st.lists(st.tuples(NAMES, st.booleans()), max_size=10, unique_by=lambda t: t[0]),
    listed=st.lists(NAMES, max_size=3),
)
def test_plan_changes_sorts_the_batch_as_sets_do(
    run: list[str], batch: list[tuple[str, bool]], listed: list[str]
) -> None:
    items = pd.DataFrame(
        {"id": [b[0] for b in batch], "removed": pd.array([b[1] for b in batch], dtype=bool)}
    )
    cat = Catalog(items, pd.DataFrame(columns=list(TAG_COLUMNS)))
    gone = {i for i, flag in batch if flag} | set(listed)
    rest = [i for i, _ in batch if i not in gone]
    for run_ids in (np.array(run, dtype=str), pd.Series(run, dtype="string")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = plan_changes(run_ids, cat, listed)
        # listed ids that are not in the run are reported; flagged rows never in it are not
        warned = [
            w
            for w in caught
            if issubclass(w.category, DataQualityWarning) and "not in the run" in str(w.message)
        ]
        assert bool(warned) == bool(set(listed) - set(run))
        both = [w for w in caught if "listed to remove" in str(w.message)]
        assert bool(both) == bool({i for i, flag in batch if not flag} & set(listed))
        assert got.removed.tolist() == sorted(gone & set(run))
        assert got.unknown_removals == sorted(gone - set(run))
        assert got.added.tolist() == [i for i in rest if i not in run]
        assert got.present.tolist() == [i for i in rest if i in run]


def _run_catalog_reference(old: RunResult) -> Catalog:
    """The former implementation (a Python string per value), as the oracle."""
    items = old.items
    frame = pd.DataFrame({"id": items["id"].astype(str).to_numpy()})
    for col in ITEM_COLUMNS[1:]:
        if col == "popularity_raw":
            frame[col] = pd.to_numeric(items.get("popularity_observed"), errors="coerce")
        elif col in items.columns:
            frame[col] = items[col].fillna("").astype(str).to_numpy()
        elif col == "removed":
            frame[col] = False
    obs = old.tags[old.tags["source"].astype(str) == "observed"]
    tags = pd.DataFrame(
        {
            "id": obs["id"].astype(str).to_numpy(),
            "tag": obs["tag"].astype(str).to_numpy(),
            "tag_raw": obs["tag_raw"].astype(str).to_numpy(),
            "source": obs["origin"].astype(str).to_numpy(),
            "provider": pd.array([pd.NA] * len(obs), dtype="string"),
            "weight": pd.to_numeric(obs["score"], errors="coerce").to_numpy(np.float64),
        }
    )
    return Catalog(frame, tags[list(TAG_COLUMNS)])


def test_run_catalog_equals_the_reference(tmp_path) -> None:
    from ccgraph.io import load_run, write_run
    from tests.io.test_run import _result

    result = _result()
    items = result.items.assign(
        title=pd.array(["x", None, "z", "", "é"], dtype="string"),
        provider=pd.array(["p", "q", None, "p", "q"], dtype="string"),
    )
    path = write_run(
        RunResult(items, result.tags, result.clusters, result.rejects, result.graph, {}),
        tmp_path / "run",
    )
    old = load_run(path)  # the columns as a run directory gives them back
    got, want = run_catalog(old), _run_catalog_reference(old)
    pd.testing.assert_frame_equal(got.items, want.items)
    pd.testing.assert_frame_equal(got.tags, want.tags)
