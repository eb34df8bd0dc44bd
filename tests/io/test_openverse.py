"""The Openverse reader on the real sample files, checked against a csv/json oracle."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccgraph.config import TagHygiene
from ccgraph.io import read_catalog

NO_HYGIENE = TagHygiene(
    lowercase=False, drop_patterns=[], merge_variants=False, split_hashtags=False
)
F2023 = "openverse_api_sample_images_to_clean_2023.csv"
F2018 = "cccatalog_api_mocked_images_behance_2018.csv"


def _rows(path: Path) -> list[dict[str, str]]:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    quoting = csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter, quoting=quoting))


def _oracle_id(row: dict[str, str]) -> str:
    for key in ("identifier", "id"):
        if row.get(key, "").strip() not in ("", "\\N"):
            return row[key].strip()
    return f"{row['provider']}:{row['foreign_identifier']}"


def _oracle_tags(row: dict[str, str]) -> list[dict]:
    text = row.get("tags", "")
    if text in ("", "\\N"):
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else []


@pytest.fixture(scope="module")
def raw2023(openverse_dir_module: Path) -> list[dict[str, str]]:
    return _rows(openverse_dir_module / F2023)


@pytest.fixture(scope="module")
def openverse_dir_module() -> Path:
    from tests.conftest import require_data

    return require_data("openverse-samples")


@pytest.fixture(scope="module")
def cat2023(openverse_dir_module: Path):
    return read_catalog(openverse_dir_module / F2023, format="openverse", hygiene=NO_HYGIENE)


def test_2023_counts_match_oracle(cat2023, raw2023) -> None:
    removed = [r for r in raw2023 if r["removed_from_source"] == "t"]
    kept = [r for r in raw2023 if r["removed_from_source"] != "t"]
    assert len(cat2023.items) == len(kept)
    assert cat2023.items["id"].tolist() == [_oracle_id(r) for r in kept]
    rej = cat2023.rejects
    gone = rej[rej["reason"] == "removed from source"]
    assert sorted(gone["id"]) == sorted(_oracle_id(r) for r in removed)
    positions = {_oracle_id(r): i + 1 for i, r in enumerate(raw2023)}
    assert all(positions[i] == row for i, row in zip(gone["id"], gone["row"], strict=True))


def _spec_bare(m: re.Match[str]) -> str:
    """A run of backslash-less ``uHHHH`` escapes, decoded when the spec calls it plausible."""
    run = m.group(0)
    decoded = run.replace("u", "\\u").encode("ascii").decode("unicode_escape")
    near = m.string[max(m.start() - 1, 0) : m.start()] + m.string[m.end() : m.end() + 1]
    ok = (len(decoded) > 1 or any(c.isalpha() for c in near)) and all(
        ord(c) > 127 and unicodedata.category(c)[0] in "LM" for c in decoded
    )
    ok = ok and all(any(d.isdigit() for d in h) for h in run.split("u")[1:])
    return decoded if ok else run


def _spec_tag(name: str) -> str:
    """The normalisation the spec asks for, written independently of the library."""
    decoded = name.encode("latin-1", "backslashreplace").decode("unicode_escape")
    decoded = re.sub(r"(?:u[0-9a-fA-F]{4})+", _spec_bare, decoded)
    text = " ".join(unicodedata.normalize("NFKC", decoded).split())
    return text.strip("\"'`“”‘’„«»").strip()


def test_2023_tags_and_weights_match_oracle(cat2023, raw2023) -> None:
    expected = []
    for r in raw2023:
        if r["removed_from_source"] == "t":
            continue
        seen = {}
        for t in _oracle_tags(r):
            acc = t.get("accuracy")
            weight = float(acc) if acc is not None else 1.0
            key = _spec_tag(t["name"])
            if not any(ch.isalnum() for ch in key):
                continue
            if key not in seen or weight > seen[key][1]:
                seen[key] = ("machine" if acc is not None else "user", weight, t["provider"])
        expected += [(_oracle_id(r), k, *v) for k, v in seen.items()]
    got = cat2023.tags
    assert len(got) == len(expected)
    got_set = {
        (i, t, s, round(w, 6), p)
        for i, t, s, w, p in zip(
            got["id"], got["tag"], got["source"], got["weight"], got["provider"], strict=True
        )
    }
    assert got_set == {(i, t, s, round(w, 6), p) for i, t, s, w, p in expected}
    machine = got[got["source"] == "machine"]
    assert (machine["provider"] == "clarifai").all()
    assert (machine["weight"] > 0.7).all() and (machine["weight"] <= 1.0).all()
    assert (got.loc[got["source"] == "user", "weight"] == 1.0).all()


def test_2023_popularity_from_meta_data(cat2023, raw2023) -> None:
    oracle = {}
    for r in raw2023:
        meta = json.loads(r["meta_data"]) if r["meta_data"] else {}
        if "views" in meta:
            oracle[_oracle_id(r)] = ("views", float(meta["views"]))
        elif "global_usage_count" in meta:
            oracle[_oracle_id(r)] = ("global_usage_count", float(meta["global_usage_count"]))
    items = cat2023.items.set_index("id")
    for item_id, row in items.iterrows():
        if item_id in oracle:
            assert (row["popularity_metric"], row["popularity_raw"]) == oracle[item_id]
        else:
            assert row["popularity_metric"] == "" and math.isnan(row["popularity_raw"])
    std = pd.to_numeric(
        pd.Series({_oracle_id(r): r["standardized_popularity"] for r in raw2023}),
        errors="coerce",
    )
    np.testing.assert_allclose(
        items["standardized_popularity"].to_numpy(), std.reindex(items.index).to_numpy()
    )


def test_2023_dirty_values_repaired(cat2023, raw2023) -> None:
    items = cat2023.items
    assert items["url"].str.match(r"https?://").all()
    assert items["landing_url"].str.match(r"https?://|$").all()
    assert cat2023.params["fixes"]["landing_url scheme added"] > 0
    assert not items["title"].str.contains(r"\\x[0-9a-f]{2}|&#\d+;").any()
    assert set(items["license"]) <= {
        "by",
        "by-sa",
        "by-nd",
        "by-nc",
        "by-nc-sa",
        "by-nc-nd",
        "cc0",
        "pdm",
    }


def test_2023_include_removed(openverse_dir_module: Path, raw2023) -> None:
    cat = read_catalog(openverse_dir_module / F2023, include_removed=True)
    assert len(cat.items) == len(raw2023)
    assert int(cat.items["removed"].sum()) == sum(r["removed_from_source"] == "t" for r in raw2023)
    assert len(cat.rejects) == 0


def test_behance_2018(openverse_dir_module: Path) -> None:
    raw = _rows(openverse_dir_module / F2018)
    cat = read_catalog(openverse_dir_module / F2018)
    assert cat.items["id"].tolist() == [r["id"] for r in raw]
    first = cat.items.set_index("id").loc["12085569"]
    assert first["title"] == "French Kiss by PublicisMachine"
    assert first["creator"].endswith("ja…")  # "&#8230;" in the file
    assert first["description"].startswith("Merging together can be awkward.")
    tags = cat.tags.loc[cat.tags["id"] == "12085569", "tag"].tolist()
    assert tags == ["web", "campaign", "viral", "frenchkiss", "publicis", "pagetakeover", "type"]
    assert (cat.tags["source"] == "user").all()
    second = cat.items.set_index("id").loc["12085568"]
    assert second["creator"] == "Philipp Rösler"  # literal "\xf6" in the file
    n_tagged = sum(bool(_oracle_tags(r)) for r in raw)
    assert cat.tags["id"].nunique() == n_tagged


def test_provider_tsvs(openverse_dir_module: Path) -> None:
    folder = openverse_dir_module / "provider_api_examples"
    cat = read_catalog(folder, hygiene=NO_HYGIENE)
    raw = [r for f in sorted(folder.glob("*.tsv")) for r in _rows(f)]
    ids = [_oracle_id(r) for r in raw]
    assert cat.items["id"].tolist() == list(dict.fromkeys(ids))
    dup = cat.rejects[cat.rejects["reason"] == "duplicate id"]
    assert len(dup) == len(ids) - len(set(ids))
    assert (cat.items["description"] != "\\N").all()
    assert not (cat.items[["title", "creator", "thumbnail"]] == "\\N").any().any()
    rawpixel = [r for r in raw if r["provider"] == "rawpixel"]
    first = _oracle_id(rawpixel[0])
    got = cat.tags.loc[cat.tags["id"] == first, "tag_raw"].tolist()
    assert got == list(dict.fromkeys(t["name"] for t in _oracle_tags(rawpixel[0])))
    title = cat.items.set_index("id").loc[first, "title"]
    assert "–" in title and "&ndash;" not in title


def test_merge_unions_tags_of_repeated_rows(openverse_dir_module: Path) -> None:
    path = openverse_dir_module / "provider_api_examples" / "flickr_1557512401.tsv"
    raw = _rows(path)
    union = defaultdict(set)
    for r in raw:
        union[_oracle_id(r)] |= {t["name"] for t in _oracle_tags(r)}
    cat = read_catalog(path, on_duplicate="merge", hygiene=NO_HYGIENE)
    assert len(cat.items) == len(union)
    got = cat.tags.groupby("id")["tag_raw"].agg(set).to_dict()
    assert got == {k: v for k, v in union.items() if v}
    assert len(cat.rejects) == 0


def test_all_three_layouts_combined(openverse_dir_module: Path) -> None:
    cat = read_catalog(openverse_dir_module)  # the folder, read recursively
    files = sorted(openverse_dir_module.rglob("*.csv")) + sorted(
        openverse_dir_module.rglob("*.tsv")
    )
    assert sorted(cat.params["formats"]) == sorted(map(str, files))
    assert set(cat.params["formats"].values()) == {"openverse"}
    raw = [r for f in files for r in _rows(f)]
    kept = [r for r in raw if r.get("removed_from_source") != "t"]
    assert len(cat.items) == len({_oracle_id(r) for r in kept})
    assert len(cat.rejects) == len(raw) - len(cat.items)
    assert cat.items["id"].is_unique
    assert cat.params["counts"]["items"] == len(cat.items)
    assert {"user", "machine"} == set(cat.tags["source"])
    assert not cat.tags["tag"].str.startswith("uploaded:by=").any()
    assert (cat.tags.groupby(["id", "tag"]).size() == 1).all()


def test_limit_keeps_first_usable_rows(openverse_dir_module: Path, raw2023) -> None:
    cat = read_catalog(openverse_dir_module / F2023, limit=10)
    kept = [r for r in raw2023 if r["removed_from_source"] != "t"][:10]
    assert cat.items["id"].tolist() == [_oracle_id(r) for r in kept]
    last_row = next(i + 1 for i, r in enumerate(raw2023) if _oracle_id(r) == _oracle_id(kept[-1]))
    assert (cat.rejects["row"] < last_row).all()
    assert len(cat.rejects) == sum(r["removed_from_source"] == "t" for r in raw2023[:last_row])
    assert set(cat.tags["id"]) <= set(cat.items["id"])


def test_read_log_line_does_not_count_removed_rows_as_items(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # before: "3 rows -> 3 items, 3 tags, 0 rejects" although one row is dropped as removed
    tags = [json.dumps([{"name": n, "provider": "flickr"}]) for n in ("tree", "lake", "road")]
    f = tmp_path / "ov.csv"
    pd.DataFrame(
        {
            "identifier": ["a", "b", "c"],
            "foreign_identifier": ["1", "2", "3"],
            "provider": "flickr",
            "url": "https://x/y.jpg",
            "meta_data": "{}",
            "tags": tags,
            "removed_from_source": ["f", "t", "f"],
        }
    ).to_csv(f, index=False)
    with caplog.at_level(logging.INFO, logger="ccgraph.io.catalog"):
        cat = read_catalog(f)
    assert len(cat.items) == 2
    assert "3 rows -> 2 items, 2 tags, 0 rejects, 1 removed from source" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ccgraph.io.catalog"):
        read_catalog(f, include_removed=True)
    assert "3 rows -> 3 items, 3 tags, 0 rejects (" in caplog.text
