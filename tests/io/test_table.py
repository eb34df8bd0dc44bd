"""The generic table reader: CSV / TSV / Parquet / JSONL through a column mapping."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from ccgraph.config import DataConfig, TagHygiene
from ccgraph.exceptions import DataQualityWarning, InputError
from ccgraph.io import read_catalog, read_catalog_from_config

NO_HYGIENE = TagHygiene(lowercase=False, drop_patterns=[], merge_variants=False)
ROWS = [
    {"key": "a", "name": "A dog", "kw": "dog;park", "views": "10", "file": "a.jpg"},
    {"key": "b", "name": "A cat", "kw": "cat", "views": "", "file": "b.jpg"},
    {"key": "c", "name": "Two dogs", "kw": "", "views": "3.5", "file": "sub/c.jpg"},
]
MAPPING = {"id": "key", "title": "name", "tags": "kw", "popularity": "views", "image_path": "file"}


def _check(cat, root: Path) -> None:
    assert cat.items["id"].tolist() == ["a", "b", "c"]
    assert cat.items["title"].tolist() == ["A dog", "A cat", "Two dogs"]
    pops = cat.items["popularity_raw"].tolist()
    assert pops[0] == 10 and math.isnan(pops[1]) and pops[2] == 3.5
    assert set(cat.items["popularity_metric"]) == {"views"}
    assert cat.tags[["id", "tag", "source", "weight"]].values.tolist() == [
        ["a", "dog", "user", 1.0],
        ["a", "park", "user", 1.0],
        ["b", "cat", "user", 1.0],
    ]
    assert cat.items["image_path"].tolist() == [
        str(root / "a.jpg"),
        str(root / "b.jpg"),
        str(root / "sub" / "c.jpg"),
    ]
    assert len(cat.rejects) == 0


def test_csv_with_mapping(tmp_path: Path) -> None:
    f = tmp_path / "cat.csv"
    pd.DataFrame(ROWS).to_csv(f, index=False)
    _check(read_catalog(f, columns=MAPPING, tags_sep=";", image_root=tmp_path), tmp_path)


def test_tsv_and_txt(tmp_path: Path) -> None:
    for name, sep in [("cat.tsv", "\t"), ("cat.txt", "|")]:
        f = tmp_path / name
        pd.DataFrame(ROWS).to_csv(f, index=False, sep=sep)
        _check(read_catalog(f, columns=MAPPING, tags_sep=";"), tmp_path)


def test_parquet_with_list_tags(tmp_path: Path) -> None:
    frame = pd.DataFrame(ROWS)
    frame["kw"] = [["dog", "park"], ["cat"], []]
    frame["views"] = [10, None, 3.5]
    f = tmp_path / "cat.parquet"
    frame.to_parquet(f)
    _check(read_catalog(f, columns=MAPPING), tmp_path)


def test_jsonl_with_json_tags(tmp_path: Path) -> None:
    f = tmp_path / "cat.jsonl"
    lines = []
    for r in ROWS:
        rec = dict(r)
        rec["kw"] = json.dumps([t for t in r["kw"].split(";") if t])
        rec["views"] = float(r["views"]) if r["views"] else None
        lines.append(json.dumps(rec))
    f.write_text("\n".join(lines) + "\n\n")
    _check(read_catalog(f, columns=MAPPING), tmp_path)


def test_machine_tags_in_table_json(tmp_path: Path) -> None:
    f = tmp_path / "cat.csv"
    tags = json.dumps([{"name": "Dog", "provider": "clarifai", "accuracy": 0.8}, "park"])
    pd.DataFrame({"id": ["x"], "tags": [tags], "provider": ["flickr"]}).to_csv(f, index=False)
    cat = read_catalog(f)
    assert cat.tags[["tag", "tag_raw", "source", "provider", "weight"]].values.tolist() == [
        ["dog", "Dog", "machine", "clarifai", 0.8],
        ["park", "park", "user", "flickr", 1.0],
    ]


def test_unmapped_columns_kept_as_extras(tmp_path: Path) -> None:
    f = tmp_path / "cat.csv"
    pd.DataFrame({"id": ["1", "2"], "label": ["x", "y"]}).to_csv(f, index=False)
    cat = read_catalog(f)
    assert cat.items["label"].tolist() == ["x", "y"]
    assert list(cat.items.columns[:3]) == ["id", "title", "description"]


def _dup_file(tmp_path: Path) -> Path:
    f = tmp_path / "dup.csv"
    f.write_text(
        "id,caption,tags\n"
        "p1,a dog runs,dog\n"
        "p2,a cat,cat\n"
        "p1,a brown dog,dog|brown\n"
        "p1,a dog runs,grass\n"
    )
    return f


def test_duplicates_reject_keeps_first(tmp_path: Path) -> None:
    cat = read_catalog(_dup_file(tmp_path), columns={"description": "caption"}, tags_sep="|")
    assert cat.items["description"].tolist() == ["a dog runs", "a cat"]
    assert cat.rejects[["row", "id", "stage", "reason"]].values.tolist() == [
        [3, "p1", "read", "duplicate id"],
        [4, "p1", "read", "duplicate id"],
    ]
    assert cat.tags.loc[cat.tags["id"] == "p1", "tag"].tolist() == ["dog"]


def test_duplicates_merge_joins_text_and_unions_tags(tmp_path: Path) -> None:
    cat = read_catalog(
        _dup_file(tmp_path),
        columns={"description": "caption"},
        tags_sep="|",
        on_duplicate="merge",
    )
    assert cat.items["id"].tolist() == ["p1", "p2"]
    assert cat.items["description"].tolist() == ["a dog runs a brown dog", "a cat"]
    assert cat.tags.loc[cat.tags["id"] == "p1", "tag"].tolist() == ["dog", "brown", "grass"]
    assert len(cat.rejects) == 0


def test_directory_reads_all_files_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("id,title\n3,c\n")
    (tmp_path / "a.csv").write_text("id,title\n1,a\n2,b\n")
    (tmp_path / "notes.md").write_text("ignored")
    cat = read_catalog(tmp_path)
    assert cat.items["id"].tolist() == ["1", "2", "3"]
    cross = read_catalog([tmp_path / "a.csv", tmp_path / "a.csv"])
    assert cross.items["id"].tolist() == ["1", "2"]


def test_duplicate_across_files_names_both(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "b.csv").write_text("id\n2\n1\n")
    cat = read_catalog(tmp_path)
    assert cat.rejects[["file", "row", "id"]].values.tolist() == [[str(tmp_path / "b.csv"), 2, "1"]]


def test_require_image(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"jpeg")
    f = tmp_path / "c.csv"
    f.write_text("id,image_path\na,a.jpg\nb,b.jpg\nc,\n")
    cat = read_catalog(f, image_root=tmp_path / "img", require_image=True)
    assert cat.items["id"].tolist() == ["a"]
    assert cat.rejects[["id", "reason"]].values.tolist() == [
        ["b", "image file not found"],
        ["c", "image file not found"],
    ]


def test_require_image_rejects_a_url_as_a_url(tmp_path: Path) -> None:
    # Used to reject it as "image file not found", or blame a missing image_root.
    (tmp_path / "c.jpg").write_bytes(b"jpeg")
    f = tmp_path / "c.csv"
    f.write_text("id,image_path\na,https://example.org/a.jpg\nb,s3://bucket/b.jpg\nc,c.jpg\n")
    cat = read_catalog(f, require_image=True)
    assert cat.items["id"].tolist() == ["c"]
    assert cat.rejects["id"].tolist() == ["a", "b"]
    for reason in cat.rejects["reason"]:
        assert reason.startswith("image_path is a URL") and "download" in reason


def test_require_image_with_a_missing_image_root_names_it(tmp_path: Path) -> None:
    # Used to reject every row as "image file not found" and then blame the column mapping.
    f = tmp_path / "c.csv"
    f.write_text("id,image_path\na,a.jpg\nb,b.jpg\n")
    with pytest.raises(InputError, match=r"`image_root` '.*nowhere' is not an existing folder"):
        read_catalog(f, image_root=tmp_path / "nowhere", require_image=True)


def test_config_adapter_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "data" / "img").mkdir(parents=True)
    (tmp_path / "data" / "img" / "a.jpg").write_bytes(b"jpeg")
    (tmp_path / "data" / "c.csv").write_text(
        "name,pic,caption\na,a.jpg,one\nb,b.jpg,two\na,a.jpg,x\n"
    )
    cfg = DataConfig(
        path="data/*.csv",
        format="table",
        columns={"id": "name", "image_path": "pic", "description": "caption"},
        image_root="data/img",
        require_image=True,
        on_duplicate="merge",
    )
    cat = read_catalog_from_config(cfg, tmp_path)
    assert cat.items["id"].tolist() == ["a"]
    assert cat.items["description"].tolist() == ["one x"]
    assert cat.items["image_path"].tolist() == [str(tmp_path / "data" / "img" / "a.jpg")]
    assert cat.rejects["reason"].tolist() == ["image file not found"]


def test_flickr8k_captions_merge(data_dir: Path) -> None:
    root = data_dir / "flickr8k-1000"
    raw = pd.read_csv(root / "captions.txt")
    cat = read_catalog(
        root / "captions.txt",
        columns={"id": "image", "description": "caption", "image_path": "image"},
        on_duplicate="merge",
        image_root=root / "images",
        require_image=True,
    )
    on_disk = {p.name for p in (root / "images").glob("*.jpg")}
    assert set(cat.items["id"]) == on_disk
    assert len(cat.rejects) == raw["image"].nunique() - len(on_disk)
    first = cat.items.iloc[0]
    captions = raw.loc[raw["image"] == first["id"], "caption"].str.strip().tolist()
    assert first["description"] == " ".join(dict.fromkeys(captions))


def test_directory_is_read_recursively_skipping_runs(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.csv").write_text("id\n2\n")
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "c.tsv").write_text("id\n3\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.csv").write_text("id\nh\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text('{"schema_version": 1, "ccgraph_version": "0"}')
    pd.DataFrame({"id": ["r"]}).to_parquet(run / "items.parquet")
    assert read_catalog(tmp_path).items["id"].tolist() == ["1", "2", "3"]


def _tags_csv(tmp_path: Path, tags: list[str]) -> Path:
    f = tmp_path / "cat.csv"
    pd.DataFrame({"id": [f"i{n}" for n in range(len(tags))], "kw": tags}).to_csv(f, index=False)
    return f


def test_tags_split_by_another_separator_warn_with_the_key(tmp_path: Path) -> None:
    # before: silently one tag "dog;park" per item
    f = _tags_csv(tmp_path, ["dog;park", "cat;sofa;indoor", "sea;beach", "cat", "tree;snow"])
    with pytest.warns(DataQualityWarning) as caught:
        cat = read_catalog(f, columns={"tags": "kw"}, tags_sep="|")
    msg = str(caught[0].message)
    assert "column 'kw'" in msg and "4 of 5 tag values contain ';'" in msg
    assert "set `data.tags_sep: ';'`" in msg and str(f) in msg
    assert "dog;park" in set(cat.tags["tag"])  # still read as written, only flagged


def test_no_separator_warning_for_single_tags_or_the_right_separator(tmp_path: Path) -> None:
    single = ["new york", "old town", "rock, paper", "sea", "sky"]  # one tag, one comma
    right = ["dog|park", "cat|sofa, red", "a,b|c", "x;y|z", "tree"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        read_catalog(_tags_csv(tmp_path, single), columns={"tags": "kw"}, tags_sep="|")
        read_catalog(_tags_csv(tmp_path, right), columns={"tags": "kw"}, tags_sep="|")


def test_openverse_samples_raise_no_separator_warning(openverse_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        for f in sorted(openverse_dir.rglob("*.[ct]sv")):
            for sep in (",", "|", ";"):
                read_catalog(f, format="table", columns={"id": "foreign_identifier"}, tags_sep=sep)


def test_fields_match_columns_in_another_case(tmp_path: Path) -> None:
    # before: "ID,Title,Tags" was refused ("no id column") and "id,Title,TAGS" silently lost
    # every title and tag (the columns were kept as unrelated extras)
    (tmp_path / "a.csv").write_text("ID,Title, TAGS ,Popularity\nc1,cat pic,cat;pet,5\n")
    (tmp_path / "b.csv").write_text("id,title,Title\nd1,exact wins,other\n")
    cat = read_catalog(tmp_path, tags_sep=";")
    items = cat.items.set_index("id")
    assert items.loc["c1", "title"] == "cat pic"
    assert items.loc["c1", "popularity_raw"] == 5.0
    assert sorted(cat.tags.loc[cat.tags["id"] == "c1", "tag"]) == ["cat", "pet"]
    assert items.loc["d1", "title"] == "exact wins"  # an exact name beats a case match
    assert items.loc["d1", "Title"] == "other"
