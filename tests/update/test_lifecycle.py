"""Updates applied one after another, checked against full runs and the update's invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ccgraph
from ccgraph.exceptions import DataQualityWarning
from ccgraph.update import update_run
from tests.update._data import centres, planted, table, write_inputs, write_vectors


def _rows(base_run: Path, ids: list[str]) -> pd.DataFrame:
    rows = pd.read_csv(base_run.parent / "catalog.csv")
    return rows.set_index("key").loc[ids].reset_index()


def _vectors(base_run: Path, ids: list[str]) -> np.ndarray:
    vec = pd.read_parquet(base_run.parent / "vectors.parquet").set_index("id")
    return np.stack(vec.loc[ids, "vector"].to_numpy())


def _step(run: Path, folder: Path, rows: pd.DataFrame, x: np.ndarray, **kw: object) -> Path:
    """One update of ``run`` with the catalog ``rows`` (``key`` ids) and their vectors ``x``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "batch.csv", index=False)
    write_vectors(folder / "v.parquet", rows["key"].astype(str).tolist(), x)
    overrides = [f"embed.precomputed.path={folder / 'v.parquet'}", *kw.pop("overrides", [])]
    out = update_run(run, folder / "batch.csv", out=folder / "run", overrides=overrides, **kw)
    assert out.path is not None
    return out.path


def test_update_of_an_updated_run_keeps_the_calibrator(base_run: Path, tmp_path: Path) -> None:
    # the second update reads the calibrator the first one recorded (it used to record only a
    # note, and the second update failed on it)
    run = base_run
    c = centres()
    for step in range(3):
        ids = [f"new{step}_{j}" for j in range(4)]
        labels = np.arange(4)
        rows = table(ids, labels, seed=step)
        run = _step(run, tmp_path / f"s{step}", rows, planted(labels, c, seed=50 + step))
    base = ccgraph.load_run(base_run).manifest["stages"]["tags"]["calibrator"]
    last = ccgraph.load_run(run)
    assert last.manifest["stages"]["tags"]["calibrator"] == base
    assert len(last.items) == 172
    inferred = last.tags[last.tags["source"] == "inferred"]
    assert inferred["confidence"].between(0, 1).all()


def test_a_row_also_listed_to_remove_is_removed_with_a_warning(
    base_run: Path, tmp_path: Path
) -> None:
    ids = ["it0007", "it0008"]
    with pytest.warns(DataQualityWarning, match="both rows of the batch and listed to remove"):
        run = _step(
            base_run,
            tmp_path / "s",
            _rows(base_run, ids),
            _vectors(base_run, ids),
            remove=["it0007"],
        )
    out = ccgraph.load_run(run)
    assert "it0007" not in set(out.ids) and "it0008" in set(out.ids)
    assert out.manifest["stages"]["update"]["changes"]["removed"] == 1


def test_popularity_enabled_on_a_run_made_without_it_matches_a_full_run(
    tmp_path: Path,
) -> None:
    # a run without popularity keeps no constants: every provider is standardised afresh,
    # as a full run does (recovering the constants used to fail on the empty table)
    labels = np.repeat(np.arange(4), 20)
    ids = [f"p{i:03d}" for i in range(80)]
    x = planted(labels, centres(), seed=2)
    cfg = write_inputs(tmp_path / "base", ids[:76], labels[:76], x[:76])
    text = cfg.read_text().replace("tags: {top_k: 3}", "tags: {enabled: false}")
    cfg.write_text(text.replace("propagate:", "propagate:\n  popularity: {enabled: false}"))
    run = ccgraph.run(cfg).path
    assert run is not None
    rows = table(ids, labels).iloc[76:]
    new = ccgraph.load_run(
        _step(run, tmp_path / "s", rows, x[76:], overrides=["propagate.popularity.enabled=true"])
    )
    full_cfg = write_inputs(tmp_path / "full", ids, labels, x)
    full_cfg.write_text(full_cfg.read_text().replace("tags: {top_k: 3}", "tags: {enabled: false}"))
    full = ccgraph.run(full_cfg)
    a = new.items.set_index("id")
    b = full.items.set_index("id").loc[a.index]
    assert (a["popularity_source"] == b["popularity_source"]).all()
    assert (a["popularity_source"] != "none").all()
    np.testing.assert_allclose(a["popularity"], b["popularity"], atol=1e-8)


def test_five_updates_agree_with_a_full_run_over_the_final_catalog(
    base_run: Path, tmp_path: Path
) -> None:
    # each step adds 3 items, moves one item's vector, edits one item's title and tags, and
    # removes one; the exact kNN makes the final graph comparable edge for edge
    ids = pd.read_csv(base_run.parent / "catalog.csv")["key"].astype(str).tolist()
    rows = {i: r for i, r in zip(ids, _rows(base_run, ids).to_dict("records"), strict=True)}
    vecs = dict(zip(ids, _vectors(base_run, ids), strict=True))
    g = np.random.default_rng(4)
    c = centres()
    run, prev = base_run, ccgraph.load_run(base_run)
    for step in range(5):
        new = [f"s{step}_{j}" for j in range(3)]
        lab = g.integers(0, 4, 3)
        for i, r, v in zip(
            new,
            table(new, lab, seed=step).to_dict("records"),
            planted(lab, c, seed=60 + step),
            strict=True,
        ):
            rows[i], vecs[i] = r, v
        old = [i for i in ids if i in rows]
        moved, edited, gone = (old[int(j)] for j in g.choice(len(old), 3, replace=False))
        vecs[moved] = planted(np.array([g.integers(0, 4)]), c, seed=70 + step)[0]
        rows[edited] = {**rows[edited], "name": f"edited {step}", "labels": "snow,photo"}
        del rows[gone], vecs[gone]
        sent = [*new, moved, edited]
        run = _step(run, tmp_path / f"s{step}", pd.DataFrame([rows[i] for i in sent]),
                    np.stack([vecs[i] for i in sent]), remove=[gone])  # fmt: skip
        cur = ccgraph.load_run(run)
        # old items that the step did not send keep their observed popularity bit for bit
        o = prev.items.set_index("id")
        n = cur.items.set_index("id")
        same = o.index[~o.index.isin([*sent, gone]) & (o["popularity_source"] == "observed")]
        np.testing.assert_array_equal(n.loc[same, "popularity"], o.loc[same, "popularity"])
        kept = o.index[o.index.isin(n.index)]
        assert (n.loc[kept, "cluster_l0"] == o.loc[kept, "cluster_l0"]).mean() >= 0.95
        prev = cur
        ids = [*ids, *new]
    final = [i for i in ids if i in rows]
    full_dir = tmp_path / "full"
    full_dir.mkdir()
    pd.DataFrame([rows[i] for i in final]).to_csv(full_dir / "catalog.csv", index=False)
    write_vectors(full_dir / "vectors.parquet", final, np.stack([vecs[i] for i in final]))
    (full_dir / "config.yaml").write_text((base_run.parent / "config.yaml").read_text())
    full = ccgraph.run(full_dir / "config.yaml")
    assert sorted(prev.ids) == sorted(full.ids)
    pos = pd.Index(full.ids).get_indexer(prev.ids)
    want = full.graph.adjacency[pos][:, pos]
    assert abs(prev.graph.adjacency - want).max() < 1e-6
    assert prev.graph.adjacency.nnz == want.nnz
    cols = ["id", "tag", "score", "origin"]

    def observed(t: pd.DataFrame) -> pd.DataFrame:
        return t[t["source"] == "observed"][cols].sort_values(cols).reset_index(drop=True)

    pd.testing.assert_frame_equal(observed(prev.tags), observed(full.tags))
    a = prev.items.set_index("id")
    b = full.items.set_index("id").loc[a.index]
    assert (a["popularity_observed"].fillna(-1) == b["popularity_observed"].fillna(-1)).all()
    assert (a["is_canonical"] == b["is_canonical"]).all()
