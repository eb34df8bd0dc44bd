from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from ccgraph.evaluate.datasets import load_citation_npz, load_planetoid, resolve_data_dir
from ccgraph.evaluate.flickr8k import caption_tags, load_flickr8k
from ccgraph.exceptions import InputError
from tests.conftest import require_data


def test_planetoid_cora_shapes_and_split():
    root = require_data("citation-graphs", "planetoid")
    d = load_planetoid("cora", data_dir=root.parent.parent)
    assert d.n_nodes == 2708 and d.features.shape == (2708, 1433) and d.n_classes == 7
    assert (len(d.train), len(d.val), len(d.test)) == (140, 500, 1000)
    assert np.bincount(d.labels[d.train]).tolist() == [20] * 7
    assert not set(d.train) & set(d.val) and not set(d.val) & set(d.test)
    assert d.test.min() >= 1708 and (d.labels >= 0).all()
    a = d.adjacency
    assert (a != a.T).nnz == 0 and a.diagonal().sum() == 0 and a.nnz // 2 == 5278


def test_planetoid_citeseer_isolated_test_range_nodes():
    require_data("citation-graphs", "planetoid")
    d = load_planetoid("CiteSeer", data_dir=require_data("citation-graphs"))
    assert d.n_nodes == 3327 and (len(d.train), len(d.val), len(d.test)) == (120, 500, 1000)
    missing = np.flatnonzero(d.labels < 0)
    assert len(missing) == 15
    assert not set(missing) & set(d.test)  # Kipf's fix: zero rows, in no split
    assert d.features[missing].nnz == 0


def test_npz_loaders():
    require_data("citation-graphs", "npz")
    cora = load_citation_npz("cora", data_dir=require_data())
    assert cora.n_nodes == 2708 and cora.features.shape[1] == 1433 and len(cora.train) == 0
    cs = load_citation_npz("citeseer", data_dir=require_data())
    assert cs.n_nodes == 3312 and cs.n_classes == 6


def test_missing_data_is_a_clear_input_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CCGRAPH_DATA_DIR", raising=False)
    with pytest.raises(InputError, match="does not exist"):
        resolve_data_dir(tmp_path / "nowhere")
    with pytest.raises(InputError, match="citation-graphs"):
        load_planetoid("cora", data_dir=tmp_path)
    monkeypatch.setenv("CCGRAPH_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(InputError, match="CCGRAPH_DATA_DIR"):
        resolve_data_dir()


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_planetoid_unpickler_refuses_foreign_objects(tmp_path):
    folder = tmp_path / "citation-graphs" / "planetoid"
    folder.mkdir(parents=True)
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        (folder / f"ind.cora.{part}").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(InputError, match="unexpected object"):
        load_planetoid("cora", data_dir=tmp_path)


def test_caption_tags_by_hand():
    caps = pd.DataFrame(
        {
            "image": ["a"] * 3 + ["b"] * 2,
            "caption": [
                "A dog runs on the beach .",
                "The black dog runs",
                "dogs at the beach",
                "A red car",
                "a car parked",
            ],
        }
    )
    t = caption_tags(caps, min_captions=2)
    assert set(zip(t["id"], t["tag"], strict=True)) == {
        ("a", "dog"),
        ("a", "runs"),
        ("a", "beach"),
        ("b", "car"),
    }
    assert t.set_index(["id", "tag"]).loc[("a", "dog"), "weight"] == pytest.approx(2 / 3)
    assert set(caption_tags(caps, min_captions=1)["tag"]) >= {"black", "dogs", "red"}


def test_flickr8k_catalog_has_no_caption_text():
    root = require_data("flickr8k-1000")
    cat = load_flickr8k(root)
    assert cat.n_items == 1000
    assert (cat.items["title"] == "").all() and (cat.items["description"] == "").all()
    assert cat.tags["id"].isin(set(cat.items["id"])).all()
    assert cat.tags.groupby("id").size().median() >= 3
    assert {"dog", "man", "water"} <= set(cat.tags["tag"])


def _tiny_flickr(tmp_path):
    root = tmp_path / "flickr8k-1000"
    (root / "images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (root / "images" / name).write_bytes(b"")
    pd.DataFrame(
        {"image": ["a.jpg", "a.jpg", "b.jpg"], "caption": ["a red dog", "the dog", "a cat"]}
    ).to_csv(root / "captions.txt", index=False)
    return root


def test_min_captions_above_every_image_is_named(tmp_path):
    # before: TypeError "operation 'rtruediv' not supported for dtype 'str' with dtype 'int64'"
    root = _tiny_flickr(tmp_path)
    assert caption_tags(pd.read_csv(root / "captions.txt"), min_captions=9).empty
    assert load_flickr8k(root, min_captions=2).tags["tag"].tolist() == ["dog"]
    with pytest.raises(InputError, match=r"no word is in 9 captions .* at most 2\); lower"):
        load_flickr8k(root, min_captions=9)


def test_a_missing_data_set_folder_falls_back_with_a_warning(tmp_path, monkeypatch, caplog):
    # before: the shared copy was used silently in place of the configured folder
    from ccgraph.evaluate.datasets import dataset_path

    _tiny_flickr(tmp_path)
    monkeypatch.setenv("CCGRAPH_DATA_DIR", str(tmp_path))
    got = dataset_path(tmp_path / "elsewhere", "flickr8k-1000")
    assert got == tmp_path / "flickr8k-1000"
    assert f"data set folder {tmp_path / 'elsewhere'} does not exist; using the shared" in (
        caplog.text
    )
