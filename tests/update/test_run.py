"""End-to-end updates of a small planted run (see conftest.base_run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ccgraph
from ccgraph.cluster import adjusted_rand_index
from ccgraph.containers import REJECT_COLUMNS, TAG_COLUMNS, Catalog
from ccgraph.exceptions import DataQualityWarning, InputError, OutputError, ParameterError
from ccgraph.graph import build_knn_graph
from ccgraph.update import update_run
from ccgraph.update._persist import read_embeddings
from tests.update._data import centres, planted, table, write_openverse, write_vectors

CORE = ("items.parquet", "tags.parquet", "clusters.parquet", "rejects.parquet", "graph.npz")


def _batch(folder: Path, labels: np.ndarray, start: int, *, seed: int) -> tuple[Path, Path]:
    """New rows ``it<start>..`` around the planted centres; returns the CSV and vectors."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"it{i:04d}" for i in range(start, start + len(labels))]
    frame = table(ids, labels, seed=seed)
    frame["views"] = np.where(np.arange(len(ids)) % 2 == 0, 5000.0, np.nan)  # very popular
    frame.to_csv(folder / "batch.csv", index=False)
    x = planted(labels, centres(), seed=seed)
    return folder / "batch.csv", write_vectors(folder / "batch_vectors.parquet", ids, x)


def _empty_catalog() -> Catalog:
    return Catalog(
        pd.DataFrame({"id": pd.Series([], dtype=str)}),
        pd.DataFrame(columns=TAG_COLUMNS),
        pd.DataFrame(columns=REJECT_COLUMNS),
    )


def test_zero_new_items_is_a_noop(base_run: Path, tmp_path: Path) -> None:
    out = update_run(base_run, _empty_catalog(), out=tmp_path / "a")
    assert out.manifest["stages"]["update"]["noop"]
    for name in CORE:
        assert (tmp_path / "a" / name).read_bytes() == (base_run / name).read_bytes(), name
    # re-sending rows the run already has, unchanged, is no change either
    rows = pd.read_csv(base_run.parent / "catalog.csv").head(12)
    rows.to_csv(tmp_path / "again.csv", index=False)
    again = update_run(
        base_run,
        tmp_path / "again.csv",
        out=tmp_path / "b",
        overrides=[f"embed.precomputed.path={base_run.parent / 'vectors.parquet'}"],
    )
    assert again.manifest["stages"]["update"]["changes"]["unchanged"] == 12
    for name in CORE:
        assert (tmp_path / "b" / name).read_bytes() == (base_run / name).read_bytes(), name
    drift = json.loads((tmp_path / "b" / "drift.json").read_text())
    assert not drift["rebuild_recommended"] and drift["levels"][0]["churn"] == 0.0


def test_update_adds_items_and_keeps_observed_tags_and_popularity(
    base_run: Path, tmp_path: Path
) -> None:
    labels = np.array([0, 1, 2, 3] * 5)
    csv, vec = _batch(tmp_path, labels, 160, seed=7)
    new = update_run(
        base_run, csv, out=tmp_path / "run2", overrides=[f"embed.precomputed.path={vec}"]
    )
    old = ccgraph.load_run(base_run)
    assert len(new.items) == 180
    np.testing.assert_array_equal(new.ids[:160], old.ids)
    # observed tags of old items: the same rows
    cols = ["id", "tag", "score", "origin", "tag_raw"]

    def observed(t: pd.DataFrame) -> pd.DataFrame:
        o = t[(t["source"] == "observed") & t["id"].isin(old.ids)][cols]
        return o.sort_values(cols).reset_index(drop=True)

    pd.testing.assert_frame_equal(observed(new.tags), observed(old.tags))
    # inferred tags never repeat an observed tag of the same item
    inf = new.tags[new.tags["source"] == "inferred"]
    obs = new.tags[new.tags["source"] == "observed"]
    assert inf.merge(obs, on=["id", "tag"]).empty
    # observed popularity: raw and standardised values unchanged although the batch is popular
    o = old.items.set_index("id")
    n = new.items.set_index("id").loc[o.index]
    was = o["popularity_source"] == "observed"
    assert (n.loc[was, "popularity_source"] == "observed").all()
    np.testing.assert_array_equal(
        n.loc[was, "popularity_observed"].to_numpy(), o.loc[was, "popularity_observed"].to_numpy()
    )
    np.testing.assert_array_equal(
        n.loc[was, "popularity"].to_numpy(), o.loc[was, "popularity"].to_numpy()
    )
    # new items join their planted topic's cluster, old items keep their IDs
    for lvl in ("cluster_l0", "cluster_l1"):
        assert (n[lvl] == o[lvl]).all()
    topic_cluster = o.groupby(np.repeat(np.arange(4), 40))["cluster_l0"].agg(lambda s: s.mode()[0])
    added = new.items.iloc[160:]
    assert (added["cluster_l0"].to_numpy() == topic_cluster.to_numpy()[labels]).all()
    assert (new.path / "drift.md").is_file()
    assert new.manifest["stages"]["update"]["changes"]["added"] == 20


def test_graph_after_update_equals_a_full_exact_build(base_run: Path, tmp_path: Path) -> None:
    labels = np.array([0, 1, 2, 3, 1, 2])
    csv, vec = _batch(tmp_path, labels, 160, seed=8)
    new = update_run(
        base_run,
        csv,
        out=tmp_path / "run2",
        overrides=[f"embed.precomputed.path={vec}", "propagate.tags.enabled=false"],
        remove=["it0003", "it0100"],
    )
    emb = read_embeddings(new.extras, new.ids, {})["precomputed"]
    full = build_knn_graph(emb, k=8, min_degree=2, backend="exact")
    assert abs(full.adjacency - new.graph.adjacency).max() < 1e-6
    assert full.adjacency.nnz == new.graph.adjacency.nnz
    assert new.manifest["stages"]["graph"]["edges"] == "local"  # rebuilt around changes only
    assert 0 < new.manifest["stages"]["graph"]["n_rebuilt_rows"] < 160


def test_removed_items_leave_the_graph_cleanly(base_run: Path, tmp_path: Path) -> None:
    old = ccgraph.load_run(base_run)
    # remove the best-connected items, flagged removed_from_source in an Openverse file
    hubs = old.ids[np.argsort(-old.graph.degree, kind="stable")[:6]].tolist()
    csv = write_openverse(tmp_path / "gone.csv", [{"id": h, "removed": True} for h in hubs])
    new = update_run(
        base_run,
        csv,
        out=tmp_path / "run2",
        overrides=["data.format=openverse", "propagate.tags.enabled=false"],
    )
    assert new.manifest["stages"]["update"]["changes"]["removed"] == 6
    assert not set(hubs) & set(new.ids)
    assert not set(hubs) & set(new.tags["id"])
    a = new.graph.adjacency
    assert a.shape == (154, 154) and abs(a - a.T).max() == 0
    assert (a.diagonal() == 0).all()
    assert (new.graph.degree > 0).all()  # no neighbour left isolated
    assert (new.items["degree"] >= 2).all()  # the min_degree repair holds everywhere
    for key, value in new.extras.items():
        if key.endswith("_rows"):
            assert np.asarray(value).max() < 154
    lists = np.asarray(new.extras["knn_precomputed_indices"])
    assert lists.min() >= 0 and lists.max() < 154
    # and the input run is untouched
    assert set(hubs) <= set(ccgraph.load_run(base_run).ids)


def test_replaced_item_is_reembedded_and_edit_only_changes_tags(
    base_run: Path, tmp_path: Path
) -> None:
    old = ccgraph.load_run(base_run)
    rows = pd.read_csv(base_run.parent / "catalog.csv")
    moved = rows[rows["key"] == "it0000"].copy()  # topic 0 item moved to topic 2
    edited = rows[rows["key"] == "it0001"].copy()  # same vector, new tag
    edited["labels"] = "forest,renamed"
    pd.concat([moved, edited]).to_csv(tmp_path / "b.csv", index=False)
    vec = pd.read_parquet(base_run.parent / "vectors.parquet").set_index("id")
    x2 = planted(np.array([2]), centres(), seed=11)[0]
    write_vectors(tmp_path / "v.parquet", ["it0000", "it0001"], [x2, vec.loc["it0001", "vector"]])
    new = update_run(
        base_run,
        tmp_path / "b.csv",
        out=tmp_path / "run2",
        overrides=[f"embed.precomputed.path={tmp_path / 'v.parquet'}"],
    )
    ch = new.manifest["stages"]["update"]["changes"]
    assert (ch["replaced"], ch["edited"], ch["added"]) == (1, 1, 0)
    emb = read_embeddings(new.extras, new.ids, {})["precomputed"]
    np.testing.assert_allclose(np.asarray(emb.vectors)[0], x2, atol=1e-6)
    o = old.items.set_index("id")
    n = new.items.set_index("id")
    topic2 = o["cluster_l0"].iloc[80]
    assert n.loc["it0000", "cluster_l0"] == topic2 != o.loc["it0000", "cluster_l0"]
    tags = new.tags[(new.tags["id"] == "it0001") & (new.tags["source"] == "observed")]
    assert set(tags["tag"]) == {"forest", "renamed"}


def test_update_agrees_with_a_full_rebuild(base_run: Path, tmp_path: Path) -> None:
    labels = np.array([0, 1, 2, 3] * 4 + [4] * 12)  # a topic the run never saw
    csv, vec = _batch(tmp_path, labels, 160, seed=9)
    new = update_run(
        base_run,
        csv,
        out=tmp_path / "upd",
        overrides=[f"embed.precomputed.path={vec}", "propagate.tags.enabled=false"],
    )
    both = tmp_path / "full"
    both.mkdir()
    old_rows = pd.read_csv(base_run.parent / "catalog.csv")
    pd.concat([old_rows, pd.read_csv(csv)]).to_csv(both / "catalog.csv", index=False)
    pd.concat(
        [pd.read_parquet(base_run.parent / "vectors.parquet"), pd.read_parquet(vec)]
    ).to_parquet(both / "vectors.parquet")
    cfg = (base_run.parent / "config.yaml").read_text()
    (both / "config.yaml").write_text(cfg)
    full = ccgraph.run(both / "config.yaml", write=False)
    assert adjusted_rand_index(full.items["cluster_l0"], new.items["cluster_l0"]) > 0.95
    minted = new.items["cluster_l0"].to_numpy()[160 + 16 :]
    assert len(set(minted.tolist())) == 1
    assert minted[0] >= ccgraph.load_run(base_run).manifest["stages"]["persist"]["next_id"][0]


def test_refuses_to_overwrite_its_input_and_runs_without_arrays(
    base_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(OutputError, match="never rewrites"):
        update_run(base_run, _empty_catalog(), out=base_run)
    old = ccgraph.load_run(base_run)
    bare = ccgraph.RunResult(
        old.items, old.tags, old.clusters, old.rejects, old.graph, {**old.manifest}
    )
    ccgraph.write_run(bare, tmp_path / "bare")
    labels = np.array([0, 1])
    csv, vec = _batch(tmp_path, labels, 160, seed=1)
    with pytest.raises(InputError, match="run it again"):
        update_run(
            tmp_path / "bare", csv, out=tmp_path / "x", overrides=[f"embed.precomputed.path={vec}"]
        )


@pytest.mark.parametrize(
    "override", ["graph.k=30", "graph.metric=euclidean", "cluster.resolutions=[1.0]"]
)
def test_update_refuses_settings_the_run_was_made_with(tmp_path, override) -> None:
    from ccgraph.exceptions import ConfigError
    from ccgraph.update.run import _config

    manifest = {"config": {"data": {"path": "x.csv"}, "graph": {"k": 15}}}
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        _config(manifest, [override])


def test_update_accepts_overrides_of_where_the_batch_is() -> None:
    from ccgraph.update.run import _config

    manifest = {"config": {"data": {"path": "x.csv"}, "graph": {"k": 15}}}
    cfg = _config(
        manifest,
        ["embed.precomputed.path=/abs/new.npy", "update.tags=full", "graph.backend=exact"],
    )
    assert cfg.update.tags == "full"
    assert cfg.graph.k == 15


def test_a_bad_override_is_named_as_an_override() -> None:
    from ccgraph.exceptions import ConfigError
    from ccgraph.update.run import _config

    manifest = {"config": {"data": {"path": "x.csv"}, "graph": {"k": 15}}}
    with pytest.raises(ConfigError, match=r"overrides \(--set\).*update\.refine.*'fast'"):
        _config(manifest, ["update.refine=fast"])
    assert _config(manifest, ["update.refine=leidenalg"]).update.refine == "leidenalg"


def test_an_existing_output_is_refused_before_any_work(
    base_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ccgraph.io

    out = tmp_path / "taken"
    ccgraph.write_run(ccgraph.load_run(base_run), out)
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setattr(ccgraph.io, "load_run", lambda *a, **k: pytest.fail("worked first"))
    with pytest.raises(OutputError, match=r"already holds a run.*--overwrite"):
        update_run(base_run, _empty_catalog(), out=out)
    assert sorted(p.name for p in out.iterdir()) == before  # untouched
    assert not list(tmp_path.glob(".taken.tmp-*"))  # and no staging folder left


@pytest.mark.parametrize("fails", ["clusters", "popularity"])
def test_a_failing_stage_leaves_no_output_and_no_temporary_folder(
    base_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """The run writer starts writing after the graph stage: an error later removes it all."""
    import ccgraph.update.clusters
    import ccgraph.update.popularity

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("stage failed")

    module = ccgraph.update.clusters if fails == "clusters" else ccgraph.update.popularity
    name = "update_levels" if fails == "clusters" else "update_popularity"
    monkeypatch.setattr(module, name, boom)
    csv, vec = _batch(tmp_path / "batch", np.array([0, 1, 2, 3]), 160, seed=3)
    with pytest.raises(RuntimeError, match="stage failed"):
        update_run(base_run, csv, out=tmp_path / "out", overrides=[f"embed.precomputed.path={vec}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch"]  # no run, no .out.tmp-*


def test_refuses_an_output_inside_its_input_or_around_it(base_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(OutputError, match=r"inside .*run.*add to its input run"):
        update_run(run, _empty_catalog(), out=run / "next")
    assert sorted(p.name for p in run.iterdir()) == before
    outer = tmp_path / "outer"  # a run that holds the input run in a subfolder
    ccgraph.write_run(ccgraph.load_run(base_run), outer)
    shutil.copytree(base_run, outer / "inner")
    with pytest.raises(OutputError, match="replace the folder of its input run"):
        update_run(outer / "inner", _empty_catalog(), out=outer, overwrite=True)
    assert (outer / "inner" / "manifest.json").exists()
    assert len(ccgraph.load_run(outer / "inner").ids) == len(ccgraph.load_run(base_run).ids)


def test_added_items_without_vectors_get_the_runs_warning(base_run: Path, tmp_path: Path) -> None:
    # before: "6 added" with 2 of them isolated (degree 0, a cluster each) and no warning,
    # while `ccgraph run` warns (DataQualityWarning) about items without any embedding
    labels = np.array([0, 1, 2, 3, 0, 1])
    csv, vec = _batch(tmp_path, labels, 160, seed=11)
    pd.read_parquet(vec).head(4).to_parquet(tmp_path / "v4.parquet")
    with pytest.warns(DataQualityWarning, match=r"2 of 6 items have no embedding") as rec:
        update_run(
            base_run,
            csv,
            out=tmp_path / "new",
            overrides=[f"embed.precomputed.path={tmp_path / 'v4.parquet'}"],
        )
    msg = " ".join(str(w.message) for w in rec)
    assert "it0164" in msg and "isolated" in msg


def _npy_with_ids(folder: Path, frame: pd.DataFrame) -> list[str]:
    np.save(folder / "v.npy", np.stack(frame["vector"].to_list()).astype(np.float32))
    (folder / "ids.txt").write_text("\n".join(frame["id"]) + "\n")
    return [
        f"embed.precomputed.path={folder / 'v.npy'}",
        f"embed.precomputed.ids_path={folder / 'ids.txt'}",
    ]


def test_a_vectors_file_must_hold_the_resent_items_and_no_foreign_ids(
    base_run: Path, tmp_path: Path
) -> None:
    # before: re-sent items missing from ids.txt were counted "replaced" and lost all their
    # edges, and ids of the file in neither the batch nor the run were ignored; a run refuses
    rows = pd.read_csv(base_run.parent / "catalog.csv").head(4)
    rows["name"] = rows["name"] + " (edited)"
    rows.to_csv(tmp_path / "b.csv", index=False)
    vectors = pd.read_parquet(base_run.parent / "vectors.parquet")
    lacking = _npy_with_ids(tmp_path, vectors.head(3))  # it0003 has no vector
    with pytest.raises(InputError, match=r"ids\.txt|v\.npy") as err:
        update_run(base_run, tmp_path / "b.csv", out=tmp_path / "o1", overrides=lacking)
    assert "it0003" in str(err.value) and "1 items" in str(err.value)
    extra = vectors.head(4).copy()
    extra.loc[0, "id"] = "nowhere-17"  # and it0000 lacks one: the foreign id is named first
    extra = pd.concat([extra, vectors.iloc[[0]]], ignore_index=True)
    foreign = _npy_with_ids(tmp_path, extra)
    with pytest.raises(InputError, match=r"v\.npy: 1 ids are not in the batch nor in the run"):
        update_run(base_run, tmp_path / "b.csv", out=tmp_path / "o2", overrides=foreign)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_a_bad_seed_is_refused_before_any_work(
    base_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: the seed was only checked by the cluster stage, after the graph was updated
    import ccgraph.io

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run was read before the seed was checked")

    monkeypatch.setattr(ccgraph.io, "load_run", no_work)
    for bad in (-4, 1.5, True):
        with pytest.raises(ParameterError, match=r"`rng` \(`ccgraph update --seed`\).*got"):
            update_run(base_run, _empty_catalog(), out=tmp_path / "o", rng=bad)  # type: ignore[arg-type]
