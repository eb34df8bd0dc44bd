"""Bad catalog input: each case raises a ccgraph error naming the file / row / column, or
records the bad value in the rejects."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from ccgraph.exceptions import CcgraphError, InputError, ParameterError
from ccgraph.io import read_catalog


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text, encoding="utf-8")
    return f


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("empty.csv", "", r"empty\.csv: the file is empty"),
        ("blank.csv", "\n  \n", r"blank\.csv: the file is empty"),
        ("empty.jsonl", "", r"empty\.jsonl: the file is empty"),
        ("empty.parquet", b"", r"empty\.parquet: the file is empty"),
        (
            "latin.csv",
            b"id,title\n1,ok\n2,caf\xe9\n",
            r"latin\.csv: not UTF-8 text at line 3 "
            r"\(data row 2\), byte 19",
        ),
        (
            "ragged.csv",
            "id,title\n1,a\n2,b,extra,more\n",
            r"ragged\.csv: malformed CSV: "
            r"Expected 2 fields in line 3, saw 4",
        ),
        ("quote.csv", 'id,title\n1,"never closed\n2,b\n', r"quote\.csv: malformed CSV: .*EOF"),
        (
            "semi.csv",
            "id;title;tags\n1;a;b\n",
            r"semi\.csv: only one column found.*"
            r"semicolon-separated",
        ),
        ("tabs.csv", "id\ttitle\n1\ta\n", r"tabs\.csv: only one column found.*tab-separated"),
        (  # commas inside the tab-separated fields used to give a ragged-row error instead
            "tabs_commas.csv",
            "id\ttitle\n1\ta, b\n2\tc, d, e\n",
            r"tabs_commas\.csv: only one column found.*tab-separated.*\.tsv tab",
        ),
        (
            "utf16.csv",
            "id,title\n1,a\n".encode("utf-16"),
            r"utf16\.csv: the file is UTF-16 text.*iconv -f utf-16 -t utf-8",
        ),
        (
            "noid.csv",
            "name,title\n1,a\n",
            r"noid\.csv: no id column.*columns present: "
            r"\['name', 'title'\]",
        ),
        ("bad.jsonl", '{"id": 1}\n{"id": 2,\n', r"bad\.jsonl: line 2: not valid JSON"),
        ("list.jsonl", '{"id": 1}\n[1, 2]\n', r"list\.jsonl: line 2: a JSON list"),
        (  # before: the ids became the text "[1]" and "{'x': 2}"
            "list_id.jsonl",
            '{"id": "a"}\n\n{"id": [1], "title": "b"}\n{"id": {"x": 2}}\n',
            r"list_id\.jsonl: line 3: the id \(column 'id'\) is a list \(\[1\]\).*2 rows",
        ),
        (
            "object_id.jsonl",
            '{"identifier": {"x": 2}, "provider": "flickr", "foreign_identifier": "f1", '
            '"meta_data": null, "tags": null, "url": "u"}\n',
            r"object_id\.jsonl: line 1: the id \(column 'identifier'\) is an object",
        ),
        ("junk.parquet", b"PAR1 not really", r"junk\.parquet: not a readable Parquet file"),
        ("notes.xlsx", b"PK", r"notes\.xlsx: unknown catalog file type '\.xlsx'"),
        ("header.csv", "id,title\n", r"no usable items in .*header\.csv"),
        (  # before: extra fields in the first row silently became the index: ids shifted
            "first_row_extra.csv",
            "id,title\na,b,c\nd,e\n",
            r"first_row_extra\.csv: line 2 has 3 fields but the header has 2; .*double quotes",
        ),
        (  # before: a tab inside a TSV field of the first row shifted every id ('b"', 'y')
            "tab_in_field.tsv",
            'id\ttitle\n"a\tb"\tx\nc\ty\n',
            r"tab_in_field\.tsv: line 2 has 3 fields .*TSV has no quoting",
        ),
        (  # before: the second `title` was read as an extra column `title.1`
            "twice.csv",
            "id,title,title\na,x,y\n",
            r"twice\.csv: the header names the column\(s\) \['title'\] more than once",
        ),
    ],
)
def test_bad_files_raise_input_error(
    tmp_path: Path, name: str, content: str | bytes, pattern: str
) -> None:
    f = _write(tmp_path, name, content)
    with pytest.raises(InputError, match=pattern):
        read_catalog(f)


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"catalog file not found: .*nope\.csv"):
        read_catalog(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"no file matches the catalog pattern .*\*\.tsv"):
        read_catalog(str(tmp_path / "*.tsv"))
    with pytest.raises(InputError, match=r"no catalog files .* in the directory"):
        read_catalog(tmp_path)
    with pytest.raises(InputError, match="empty list"):
        read_catalog([])


def test_mapped_column_missing(tmp_path: Path) -> None:
    f = _write(tmp_path, "c.csv", "id,title\n1,a\n")
    with pytest.raises(InputError, match=r"c\.csv: column 'caption' \(mapped to `description`\)"):
        read_catalog(f, columns={"description": "caption"})


def test_openverse_without_id_columns(tmp_path: Path) -> None:
    f = _write(tmp_path, "o.csv", "title,tags\na,[]\n")
    with pytest.raises(InputError, match=r"o\.csv: no id column for the openverse format"):
        read_catalog(f, format="openverse")


def test_duplicate_error_names_file_row_and_id(tmp_path: Path) -> None:
    f = _write(tmp_path, "d.csv", "id,title\n1,a\n2,b\n1,c\n")
    with pytest.raises(
        InputError,
        match=r"d\.csv: row 3: duplicate id '1' \(first in .*d\.csv "
        r"row 1\)",
    ):
        read_catalog(f, on_duplicate="error")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-3", "-3.0 is not a non-negative"),
        ("lots", "'lots' is not a number"),
        ("inf", "inf is not a non-negative finite"),
    ],
)
def test_bad_popularity_goes_to_rejects(tmp_path: Path, value: str, problem: str) -> None:
    f = _write(tmp_path, "p.csv", f"id,views\n1,5\n2,{value}\n")
    cat = read_catalog(f, columns={"popularity": "views"})
    assert cat.items["id"].tolist() == ["1", "2"]
    assert math.isnan(cat.items["popularity_raw"].iloc[1])
    assert cat.rejects[["row", "id", "stage"]].values.tolist() == [[2, "2", "popularity"]]
    assert problem in cat.rejects["reason"].iloc[0]
    assert "'views'" in cat.rejects["reason"].iloc[0]


def _openverse_row(**fields: str) -> dict[str, str]:
    row = {
        "identifier": "",
        "provider": "flickr",
        "foreign_identifier": "",
        "url": "x.org/a.jpg",
        "title": "t",
        "meta_data": "",
        "tags": "",
        "removed_from_source": "f",
    }
    row.update(fields)
    return row


def test_dirty_openverse_rows(tmp_path: Path) -> None:
    rows = [
        _openverse_row(identifier="ok", tags=json.dumps([{"name": "dog"}])),
        _openverse_row(identifier="badtags", tags='[{"name": "dog"'),
        _openverse_row(provider="", title="no id at all"),
        _openverse_row(identifier="neg", meta_data=json.dumps({"views": "-4"})),
        _openverse_row(identifier="word", meta_data=json.dumps({"global_usage_count": "many"})),
        _openverse_row(identifier="badmeta", meta_data="{not json"),
        _openverse_row(identifier="noname", tags=json.dumps([{"provider": "x"}, {"name": "cat"}])),
        _openverse_row(
            identifier="badacc",
            tags=json.dumps(
                [{"name": "sky", "accuracy": "high"}, {"name": "sea", "accuracy": 1.5}]
            ),
        ),
        _openverse_row(identifier="gone", removed_from_source="t"),
        _openverse_row(foreign_identifier="42"),
    ]
    f = tmp_path / "ov.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    cat = read_catalog(f)
    assert cat.items["id"].tolist() == [
        "ok",
        "badtags",
        "neg",
        "word",
        "badmeta",
        "noname",
        "badacc",
        "flickr:42",
    ]
    assert cat.items["url"].iloc[0] == "https://x.org/a.jpg"
    got = {(r.row, r.id, r.stage): r.reason for r in cat.rejects.itertuples()}
    assert set(got) == {
        (2, "badtags", "tags"),
        (3, "", "read"),
        (4, "neg", "popularity"),
        (5, "word", "popularity"),
        (6, "badmeta", "meta_data"),
        (7, "noname", "tags"),
        (8, "badacc", "tags"),
        (9, "gone", "read"),
    }
    assert "not valid JSON" in got[(2, "badtags", "tags")]
    assert "no id" in got[(3, "", "read")]
    assert "meta_data.views" in got[(4, "neg", "popularity")]
    assert "has no name" in got[(7, "noname", "tags")]
    assert "'high'" in got[(8, "badacc", "tags")] and "1.5" in got[(8, "badacc", "tags")]
    assert got[(9, "gone", "read")] == "removed from source"
    tags = cat.tags.groupby("id")["tag"].agg(list).to_dict()
    assert tags == {"ok": ["dog"], "noname": ["cat"]}


def test_gzip_input(tmp_path: Path) -> None:
    f = tmp_path / "c.csv.gz"
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        fh.write("id,title\n1,a\n")
    assert read_catalog(f).items["id"].tolist() == ["1"]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"format": "excel"}, r"`format` must be one of"),
        ({"on_duplicate": "keep"}, r"`on_duplicate` must be one of"),
        ({"limit": 0}, r"`limit` must be an integer >= 1; got 0"),
        ({"tags_sep": ""}, r"`tags_sep` must be a non-empty string"),
        ({"columns": {"colour": "c"}}, r"`columns` maps unknown fields \['colour'\]"),
        ({"hygiene": {"lowercase": "maybe"}}, r"`hygiene` is not a valid TagHygiene"),
    ],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict, pattern: str) -> None:
    f = _write(tmp_path, "c.csv", "id\n1\n")
    with pytest.raises(ParameterError, match=pattern):
        read_catalog(f, **kwargs)


def test_every_error_is_a_ccgraph_error(tmp_path: Path) -> None:
    with pytest.raises(CcgraphError):
        read_catalog(tmp_path / "missing.csv")


def test_every_row_removed_from_source_points_at_include_removed(tmp_path: Path) -> None:
    f = _write(tmp_path, "gone.csv", "identifier,title,removed_from_source\n1,a,t\n2,b,t\n")
    with pytest.raises(InputError, match=r"gone\.csv: 2 rows rejected.*data\.include_removed"):
        read_catalog(f, format="openverse")
    kept = read_catalog(f, format="openverse", include_removed=True)
    assert kept.items["id"].tolist() == ["1", "2"]


def test_a_list_id_in_a_mapped_parquet_column_is_refused(tmp_path: Path) -> None:
    # before: the id became the text "[1 2]"
    f = tmp_path / "ids.parquet"
    pd.DataFrame({"key": [["1", "2"], ["3"]], "name": ["a", "b"]}).to_parquet(f)
    with pytest.raises(InputError, match=r"ids\.parquet: row 1: the id \(column 'key'\) is a list"):
        read_catalog(f, columns={"id": "key", "title": "name"})


def test_hostile_openverse_cells(tmp_path: Path) -> None:
    # before: JSON nested 100,000 deep in `tags` or `meta_data` raised RecursionError (a
    # traceback); a `meta_data.description` object became the text "{'a': 1}"; a
    # `standardized_popularity` of 2 or "abc" was kept / dropped silently; a tag named
    # Infinity became the tag "inf"
    deep_list = "[" * 100_000 + "]" * 100_000
    deep_obj = '{"a":' * 50_000 + "1" + "}" * 50_000
    rows = [
        _openverse_row(identifier="deeptags", tags=deep_list),
        _openverse_row(identifier="deepmeta", meta_data=deep_obj),
        _openverse_row(identifier="desc", meta_data=json.dumps({"description": {"a": 1}})),
        _openverse_row(identifier="std2", standardized_popularity="2"),
        _openverse_row(identifier="stdword", standardized_popularity="abc"),
        _openverse_row(identifier="stdok", standardized_popularity="0.25"),
        _openverse_row(identifier="infname", tags='[{"name": Infinity}, {"name": "cat"}]'),
    ]
    f = tmp_path / "ov.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    cat = read_catalog(f)
    assert cat.items["id"].tolist() == [r["identifier"] for r in rows]
    got = {(r.id, r.stage): r.reason for r in cat.rejects.itertuples()}
    assert "nested too deeply" in got[("deeptags", "tags")]
    assert "nested too deeply" in got[("deepmeta", "meta_data")]
    assert "description is a JSON dict" in got[("desc", "meta_data")]
    assert "above 1" in got[("std2", "popularity")]
    assert "'abc'" in got[("stdword", "popularity")]
    assert "has no name" in got[("infname", "tags")]
    assert ("stdok", "popularity") not in got
    items = cat.items.set_index("id")
    assert items.loc["desc", "description"] == ""
    assert math.isnan(items.loc["std2", "standardized_popularity"])
    assert items.loc["stdok", "standardized_popularity"] == 0.25
    assert cat.tags.groupby("id")["tag"].agg(list).to_dict() == {"infname": ["cat"]}


def test_deeply_nested_json_lines_row_is_named(tmp_path: Path) -> None:
    # before: RecursionError from json.loads (a traceback)
    f = _write(
        tmp_path,
        "deep.jsonl",
        '{"id": "a"}\n{"id": "b", "tags": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
    )
    with pytest.raises(InputError, match=r"deep\.jsonl: line 2: JSON nested too deeply"):
        read_catalog(f)


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_repeated_header_line_is_refused(tmp_path: Path, sep: str) -> None:
    # before: files joined with `cat` read the second header as an item whose id is "id"
    suffix = "csv" if sep == "," else "tsv"
    header = sep.join(["id", "title", "tags"])
    text = "\n".join([header, sep.join(["a", "A", "x"]), header, sep.join(["b", "B", "y"])])
    f = _write(tmp_path, f"joined.{suffix}", text + "\n")
    with pytest.raises(InputError, match=rf"joined\.{suffix}: row 2 repeats the header line"):
        read_catalog(f)
    # an id that merely equals a column name is still an ordinary item
    ok = _write(tmp_path, "ok.csv", "id,title\nid,not a header\n")
    assert read_catalog(ok).items["id"].tolist() == ["id"]


@pytest.mark.parametrize("sep", [",", "\t"])
def test_rows_with_fewer_fields_than_the_header_are_warned(tmp_path: Path, sep: str) -> None:
    from ccgraph.exceptions import DataQualityWarning

    # before: a title with an unquoted line break became two padded rows, the second an item
    # whose id is "part two" (pandas pads short rows without a word)
    suffix = "csv" if sep == "," else "tsv"
    rows = [["id", "title", "tags", "views"], ["a", "A", "x", "3"], ["b", "part one"]]
    rows += [["part two", "y", "4"], ["c", "C", "z", "5"]]
    f = _write(tmp_path, f"broken.{suffix}", "\n".join(sep.join(r) for r in rows) + "\n")
    with pytest.warns(DataQualityWarning, match=r"2 rows have fewer fields than the header's 4 "
                      r"\(first: line 3, 2 fields\)"):  # fmt: skip
        read_catalog(f)


def test_quoted_separators_and_full_rows_give_no_short_row_warning(tmp_path: Path) -> None:
    import warnings

    from ccgraph.exceptions import DataQualityWarning

    text = 'id,title,tags\na,"one, two, three",x\nb,"",\nc,"multi\nline",y\n'
    f = _write(tmp_path, "fine.csv", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        items = read_catalog(f).items
    assert items["id"].tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("empty_name", ["b_empty.csv", "b_empty.jsonl", "b_empty.csv.gz"])
def test_an_empty_file_in_a_folder_is_skipped_like_a_header_only_one(
    tmp_path: Path, empty_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # before: one 0-byte file refused the whole folder ("the file is empty"), while a
    # header-only file among good ones was skipped with a warning
    _write(tmp_path, "a.csv", "id,title,tags\n1,one,red\n2,two,blue\n")
    _write(tmp_path, "c.jsonl", '{"id": "3", "title": "three", "tags": "red"}\n')
    _write(tmp_path, "d_header.csv", "id,title,tags\n")
    _write(tmp_path, empty_name, b"")
    with caplog.at_level("WARNING", logger="ccgraph.io.catalog"):
        cat = read_catalog(tmp_path)
    assert cat.ids.tolist() == ["1", "2", "3"]
    assert cat.rejects.empty
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("d_header.csv has a header but no data rows" in m for m in warned)
    assert any(f"{empty_name} is empty (0 bytes" in m and "skipped" in m for m in warned)


def test_a_folder_of_empty_files_is_still_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.csv", "")
    _write(tmp_path, "b.jsonl", "")
    with pytest.raises(InputError, match=r"a\.csv: the file is empty"):
        read_catalog(tmp_path)
