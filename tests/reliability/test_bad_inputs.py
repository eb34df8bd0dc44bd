"""The bad-input corpus: every broken input gives a ccgraph error (CLI: exit 2) whose message
names the file, row/column or config key and says what to do; inputs that are odd but usable
give a sensible run and say what they did.

Each case breaks one thing in a small working project (:class:`tests.reliability._project.
Project`) and runs it end to end, through ``ccgraph.run`` and through ``ccgraph run``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ccgraph
from ccgraph.cli import main
from ccgraph.config import load_config
from ccgraph.exceptions import (
    CcgraphError,
    ConfigError,
    DataQualityWarning,
    InputError,
    MemoryBudgetError,
    OutputError,
)
from tests.reliability._project import Project, squash, write_images


@dataclass(frozen=True)
class Case:
    """One broken input: how to break the project and what the error must say."""

    name: str
    breaks: Callable[[Project], None]
    error: type[CcgraphError]
    where: str  # regex: the file, row/column or config key
    advice: str  # regex: what to do about it


CASES: list[Case] = []


def case(error: type[CcgraphError], where: str, advice: str) -> Callable:
    """Register the decorated function as a corpus case."""

    def register(fn: Callable[[Project], None]) -> Callable[[Project], None]:
        CASES.append(Case(fn.__name__, fn, error, where, advice))
        return fn

    return register


# --- catalog files ---------------------------------------------------------------------------


@case(InputError, r"catalog\.csv: malformed CSV: Expected 5 fields in line 4", r"check the quoting")
def ragged_row(p: Project) -> None:
    p.catalog_text = p.rows.to_csv(index=False).replace("it002,", "it002,x,y,", 1)


@case(InputError, r"catalog\.csv: malformed CSV: EOF inside string", r"check the quoting")
def unclosed_quote(p: Project) -> None:
    p.catalog_text = p.rows.to_csv(index=False).replace("picture 39", '"picture 39', 1)


@case(InputError, r"catalog\.csv: malformed CSV .*line 5", r"quot")
def unbalanced_quote_swallows_next_row(p: Project) -> None:
    # pandas alone reads this without complaint and silently loses row it004
    p.catalog_text = p.rows.to_csv(index=False).replace("picture 3", '"picture 3', 1)


@case(InputError, r"catalog\.csv: only one column found", r"save it with commas")
def semicolon_delimiter(p: Project) -> None:
    p.catalog_text = p.rows.to_csv(index=False, sep=";")


@case(InputError, r"catalog\.csv: only one column found.*tab-separated", r"save it with commas")
def tab_delimiter(p: Project) -> None:
    p.catalog_text = p.rows.to_csv(index=False, sep="\t")


@case(InputError, r"catalog\.csv: no id column", r"data\.columns\.id")
def missing_id_column(p: Project) -> None:
    p.rows = p.rows.rename(columns={"id": "key"})


@case(InputError, r"catalog\.csv: column 'key' \(mapped to `id`\) not found", r"data\.columns")
def mapped_id_column_absent(p: Project) -> None:
    p.set("data.columns", {"id": "key", "popularity": "views"})


@case(InputError, r"catalog\.csv: row 6: duplicate id 'it003'", r"on_duplicate")
def duplicate_ids_error(p: Project) -> None:
    p.rows.loc[5, "id"] = "it003"
    p.set("data.on_duplicate", "error")


@case(InputError, r"catalog\.csv: the file is empty", r"header line")
def empty_file(p: Project) -> None:
    p.catalog_text = b""


@case(InputError, r"catalog\.csv: the file is empty", r"header line")
def blank_lines_only(p: Project) -> None:
    p.catalog_text = "\n\n   \n"


@case(InputError, r"catalog\.csv.*no data rows|no usable items in .*catalog\.csv", r"add rows")
def header_only(p: Project) -> None:
    p.catalog_text = "id,title,tags,views,provider\n"


@case(InputError, r"catalog\.csv: not UTF-8 text at line 5", r"re-save the file as UTF-8")
def latin1_text(p: Project) -> None:
    text = p.rows.to_csv(index=False).replace("picture 3", "caf\u00e9 3", 1)
    p.catalog_text = text.encode("latin-1")


@case(InputError, r"no usable items in .*catalog\.csv.*empty id", r"column")
def every_id_empty(p: Project) -> None:
    p.rows["id"] = ""


@case(InputError, r"catalog\.xlsx: unknown catalog file type", r"use \.csv")
def unknown_extension(p: Project) -> None:
    p.path("catalog.xlsx").write_bytes(b"PK\x03\x04 not really")
    p.set("data.path", "catalog.xlsx")


@case(InputError, r"catalog\.parquet: not a readable Parquet file", r"re-export|write it again")
def corrupt_parquet_catalog(p: Project) -> None:
    p.path("catalog.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    p.set("data.path", "catalog.parquet")


@case(InputError, r"items\.jsonl: line 3: not valid JSON", r"one JSON object")
def broken_jsonl(p: Project) -> None:
    lines = [json.dumps(r) for r in p.rows.to_dict("records")]
    lines[2] = lines[2][:-5]
    p.path("items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    p.set("data.path", "items.jsonl")


@case(InputError, r"catalog file not found: .*nowhere\.csv", r"give a file, a directory or a glob")
def catalog_missing(p: Project) -> None:
    p.set("data.path", "nowhere.csv")


@case(InputError, r"no file matches the catalog pattern '.*parts/\*\.csv'", r"data\.path")
def glob_matches_nothing(p: Project) -> None:
    p.path("parts").mkdir()
    p.set("data.path", "parts/*.csv")


@case(InputError, r"no catalog files .* in the directory .*empty_dir", r"data\.path")
def directory_without_catalogs(p: Project) -> None:
    p.path("empty_dir").mkdir()
    (p.path("empty_dir") / "notes.md").write_text("nothing here")
    p.set("data.path", "empty_dir")


# --- precomputed vectors ---------------------------------------------------------------------


@case(InputError, r"vectors\.parquet: 1 rows hold NaN.*rows \[4\] \(ids \['it004'\]\)", r"fix|drop")
def nan_vector(p: Project) -> None:
    p.vectors[4, 2] = np.nan


@case(InputError, r"vectors\.parquet: 2 rows hold NaN or infinite", r"fix|drop")
def inf_vectors(p: Project) -> None:
    p.vectors[[1, 7], 0] = np.inf


@case(InputError, r"vectors\.parquet: 1 all-zero rows .*'it009'", r"drop them")
def zero_vector(p: Project) -> None:
    p.vectors[9] = 0.0


@case(InputError, r"vectors\.parquet: column 'vector' has vectors of different lengths", r"same")
def ragged_dimensions(p: Project) -> None:
    vecs = list(p.vectors)
    vecs[3] = vecs[3][:5]
    pd.DataFrame({"id": p.rows["id"], "vector": vecs}).to_parquet(p.path("vectors.parquet"))


@case(InputError, r"vectors\.npy: 40 rows but .*39", r"one id a line|ids_path")
def npy_row_count_mismatch(p: Project) -> None:
    np.save(p.path("vectors.npy"), p.vectors)
    p.path("ids.txt").write_text("\n".join(p.rows["id"][:39]) + "\n")
    p.set("embed.precomputed", {"path": "vectors.npy", "ids_path": "ids.txt"})


@case(
    InputError, r"vectors\.npy: 40 rows but the given ids lists 42 ids.*catalog's item", r"ids_path"
)
def npy_without_ids_differs_from_catalog(p: Project) -> None:
    np.save(p.path("vectors.npy"), p.vectors)
    extra = p.rows.iloc[:2].assign(id=["new1", "new2"])
    p.rows = pd.concat([p.rows, extra], ignore_index=True)
    p.set("embed.precomputed.path", "vectors.npy")


@case(InputError, r"vectors\.parquet: 2 ids are not in the catalog, e\.g\. \['ghost0'", r"remove")
def vector_ids_not_in_catalog(p: Project) -> None:
    p.vector_ids = [*p.rows["id"][:-2], "ghost0", "ghost1"]


@case(InputError, r"vectors\.parquet: repeated ids, e\.g\. \['it001'\]", r"one vector per id")
def repeated_vector_ids(p: Project) -> None:
    p.vector_ids = list(p.rows["id"])
    p.vector_ids[2] = "it001"


@case(InputError, r"vectors\.parquet: no id column 'id'", r"embed\.precomputed\.id_column")
def vectors_without_id_column(p: Project) -> None:
    pd.DataFrame({"key": p.rows["id"], "vector": list(p.vectors)}).to_parquet(
        p.path("vectors.parquet")
    )


@case(InputError, r"precomputed vectors file not found: .*missing\.npy", r"embed\.precomputed")
def vectors_missing(p: Project) -> None:
    p.set("embed.precomputed.path", "missing.npy")


@case(InputError, r"vectors\.csv: unsupported extension '\.csv'", r"use \.npy or \.parquet")
def vectors_wrong_format(p: Project) -> None:
    pd.DataFrame(p.vectors).to_csv(p.path("vectors.csv"))
    p.set("embed.precomputed.path", "vectors.csv")


@case(InputError, r"vectors\.npy: not a readable \.npy array", r"numpy\.save|np\.save")
def vectors_npy_garbage(p: Project) -> None:
    p.path("vectors.npy").write_bytes(b"\x93NUMPY garbage")
    p.set("embed.precomputed.path", "vectors.npy")


@case(InputError, r"vectors\.npy: expected a 2-D array", r"\[n_items, dim\]")
def vectors_one_dimensional(p: Project) -> None:
    np.save(p.path("vectors.npy"), p.vectors[:, 0])
    p.set("embed.precomputed.path", "vectors.npy")


# --- graph sizes -----------------------------------------------------------------------------


@case(ConfigError, r"`graph\.k` is 40 but only 40 items", r"set graph\.k below 40")
def k_equals_n(p: Project) -> None:
    p.set("graph.k", 40)


@case(ConfigError, r"`graph\.k` is 5 but only 4 items", r"set graph\.k below 4")
def k_above_n(p: Project) -> None:
    p.rows = p.rows.iloc[:4]
    p.vectors = p.vectors[:4]


@case(InputError, r"1 usable item", r"at least 3")
def single_item(p: Project) -> None:
    p.rows = p.rows.iloc[:1]
    p.vectors = p.vectors[:1]


@case(InputError, r"2 usable items", r"at least 3")
def two_items(p: Project) -> None:
    p.rows = p.rows.iloc[:2]
    p.vectors = p.vectors[:2]


# --- images ----------------------------------------------------------------------------------


@case(InputError, r"no image could be embedded.*not a readable image", r"image_root|image_path")
def every_image_corrupt(p: Project) -> None:
    for f in write_images(p):
        f.write_bytes(b"\x89PNG\r\n\x1a\n but then garbage")


@case(InputError, r"no image could be embedded.*empty file", r"image_root|image_path")
def every_image_zero_bytes(p: Project) -> None:
    for f in write_images(p):
        f.write_bytes(b"")


@case(InputError, r"no image could be embedded.*too many pixels", r"embed\.image\.max_pixels")
def every_image_oversized(p: Project) -> None:
    write_images(p)
    p.set("embed.image.max_pixels", 100)


@case(
    InputError, r"no image could be embedded.*elsewhere'? is not an existing folder", r"image_root"
)
def image_root_wrong(p: Project) -> None:
    write_images(p)
    p.set("data.image_root", "elsewhere")


# --- configuration ---------------------------------------------------------------------------


@case(ConfigError, r"config\.yaml: `graph\.neighbours`: unknown key", r"check the spelling")
def unknown_key(p: Project) -> None:
    p.set("graph.neighbours", 10)


@case(ConfigError, r"config\.yaml: `grpah`: unknown key", r"check the spelling")
def unknown_section(p: Project) -> None:
    p.set("grpah", {"k": 10})


@case(ConfigError, r"`graph\.k`: .*valid integer.*'many'", r"integer")
def wrong_type(p: Project) -> None:
    p.set("graph.k", "many")


@case(ConfigError, r"`propagate\.tags\.alpha`: .*less than 1.*1\.5", r"less than 1")
def out_of_range(p: Project) -> None:
    p.set("propagate.tags.alpha", 1.5)


@case(ConfigError, r"`data\.format`: .*'auto', 'openverse' or 'table'.*'excel'", r"'table'")
def bad_choice(p: Project) -> None:
    p.set("data.format", "excel")


@case(ConfigError, r"`data\.path`: required key is missing", r"required")
def data_path_missing(p: Project) -> None:
    del p.config["data"]["path"]


@case(ConfigError, r"--set expects KEY=VALUE", r"graph\.k=30")
def malformed_override(p: Project) -> None:
    p.overrides.append("graph.k")


@case(ConfigError, r"no embedding is enabled", r"embed\.precomputed\.path")
def no_embedding(p: Project) -> None:
    p.set("embed.precomputed.path", None)


@case(
    ConfigError, r"`cluster\.default_level`: must be 'auto' or a level in \[0, 0\] .*got 3", r"auto"
)
def default_level_out_of_range(p: Project) -> None:
    p.set("cluster.default_level", 3)


@case(ConfigError, r"`cluster\.previous_run`: .*old_run is not a ccgraph run", r"point it at")
def previous_run_missing(p: Project) -> None:
    p.set("cluster.previous_run", "old_run")


@case(ConfigError, r"`graph\.fusion\.method: concat` needs dense vectors", r"method: adjacency")
def concat_with_hashes(p: Project) -> None:
    write_images(p)
    p.set("embed.precomputed.path", "vectors.parquet")
    p.set("graph.fusion.method", "concat")


# --- output ----------------------------------------------------------------------------------


@case(OutputError, r"refusing to replace .*run: it is not empty", r"choose another output")
def output_dir_foreign(p: Project) -> None:
    p.path("run").mkdir()
    p.path("run/thesis.docx").write_text("precious")


@case(OutputError, r"refusing to replace .*run: it is a file", r"choose another output")
def output_dir_is_file(p: Project) -> None:
    p.path("run").write_text("a file")


@case(OutputError, r"cannot write to .*blocker", r"choose a writable output directory")
def output_parent_is_file(p: Project) -> None:
    p.path("blocker").write_text("a file where a directory should be")
    p.set("output.dir", "blocker/run")


@case(OutputError, r"already holds a run", r"output\.overwrite")
def output_exists_without_overwrite(p: Project) -> None:
    p.path("run").mkdir()
    p.path("run/manifest.json").write_text('{"schema_version": 1, "ccgraph_version": "0"}')
    p.set("output.overwrite", False)


@case(MemoryBudgetError, r"stage 'knn' needs about .* GiB.*memory_limit_gb", r"data\.limit")
def memory_limit_tiny(p: Project) -> None:
    p.set("execution.memory_limit_gb", 0.001)


def _ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


@pytest.mark.parametrize("bad", CASES, ids=_ids(CASES))
def test_bad_input_gives_clear_error(
    bad: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = Project(tmp_path)
    bad.breaks(project)
    cfg = project.write()
    with pytest.raises(CcgraphError) as info:
        ccgraph.run(load_config(cfg, project.overrides))
    msg = squash(str(info.value))
    assert isinstance(info.value, bad.error), f"{type(info.value).__name__}: {msg}"
    assert re.search(bad.where, msg), msg
    assert re.search(bad.advice, msg), msg
    assert not (tmp_path / "run").is_dir() or bad.name.startswith("output")
    capsys.readouterr()
    assert main(["run", str(cfg), "-q", *project.cli_args()]) == 2
    err = squash(capsys.readouterr().err)
    err = err[err.find("ccgraph: error: ") :]  # after the stages' log lines (stderr too)
    assert err.startswith("ccgraph: error: "), err
    assert "Traceback" not in err
    assert re.search(bad.where, err), err


def test_corpus_size() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


# --- odd but usable inputs: a sensible run that says what it did ----------------------------


@pytest.fixture
def ccgraph_log() -> list[logging.LogRecord]:
    """Records of the ``ccgraph`` loggers (the CLI turns their propagation off)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger("ccgraph")
    handler, level = Keep(logging.INFO), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield records
    root.removeHandler(handler)
    root.setLevel(level)


def _run(p: Project) -> ccgraph.RunResult:
    return ccgraph.run(load_config(p.write(), p.overrides))


def _said(records: list[logging.LogRecord], pattern: str, level: int = logging.WARNING) -> bool:
    return any(r.levelno >= level and re.search(pattern, r.getMessage()) for r in records)


def test_every_item_untagged_runs_without_inferred_tags(
    tmp_path: Path, ccgraph_log: list[logging.LogRecord]
) -> None:
    p = Project(tmp_path)
    p.rows["tags"] = ""
    result = _run(p)
    assert result.tags.empty
    assert result.manifest["counts"]["inferred_tags"] == 0
    assert len(result.items) == 40 and result.items["cluster"].notna().all()
    assert _said(ccgraph_log, r"no tag can seed the spreading \(0 tagged items")


def test_junk_tags_only_give_empty_vocabulary_warning(
    tmp_path: Path, ccgraph_log: list[logging.LogRecord]
) -> None:
    p = Project(tmp_path)
    p.rows["tags"] = ["geotagged,12345,x" if i % 2 else "" for i in range(40)]
    result = _run(p)
    assert (result.tags["source"] == "inferred").sum() == 0
    assert _said(ccgraph_log, r"no tag can seed the spreading.*data\.tags\.min_count")


def test_min_count_above_every_tag_says_so(
    tmp_path: Path, ccgraph_log: list[logging.LogRecord]
) -> None:
    p = Project(tmp_path)
    p.set("data.tags.min_count", 1000)
    result = _run(p)
    assert (result.tags["source"] == "inferred").sum() == 0
    assert (result.tags["source"] == "observed").sum() > 0  # observed tags are still written
    assert _said(ccgraph_log, r"min_count` = 1000")


def test_every_item_tagged_keeps_observed_tags(tmp_path: Path) -> None:
    p = Project(tmp_path)
    topics = np.array(["beach", "forest", "city", "snow"])[p.labels]
    p.rows["tags"] = [f"{t},photo" for t in topics]
    result = _run(p)
    observed = result.tags[result.tags["source"] == "observed"]
    assert len(observed) == 80
    assert set(zip(observed["id"], observed["tag"], strict=True)) == {
        (i, t) for i, topic in zip(p.ids, topics, strict=True) for t in (topic, "photo")
    }
    inferred = result.tags[result.tags["source"] == "inferred"]
    assert inferred.merge(observed, on=["id", "tag"]).empty  # never re-inferred


def test_single_tag_vocabulary(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.rows["tags"] = ["beach" if lab == 0 and i % 3 else "" for i, lab in enumerate(p.labels)]
    result = _run(p)
    inferred = result.tags[result.tags["source"] == "inferred"]
    assert set(inferred["tag"]) <= {"beach"}
    # the tag spreads to untagged items of its own topic, not across topics
    topic = dict(zip(p.ids, p.labels, strict=True))
    top = inferred.sort_values("score", ascending=False).head(5)
    assert all(topic[i] == 0 for i in top["id"])


def test_three_items_is_the_smallest_graph(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.rows, p.vectors = p.rows.iloc[:3], p.vectors[:3]
    p.set("graph.k", 2)
    with pytest.warns(DataQualityWarning, match=r"calibration skipped.*tag more items"):
        result = _run(p)
    assert len(result.items) == 3
    assert (result.graph.degree >= 1).all()


def test_duplicate_ids_are_rejected_with_their_row(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.rows.loc[5, "id"] = "it003"
    p.vector_ids = [i for i in p.ids if i != "it005"]
    p.vectors = np.delete(p.vectors, 5, axis=0)
    result = _run(p)
    rej = result.rejects[result.rejects["reason"] == "duplicate id"]
    assert rej[["row", "id"]].values.tolist() == [[6, "it003"]]
    assert rej["file"].str.endswith("catalog.csv").all()
    assert len(result.items) == 39


def test_invalid_tags_json_rejects_the_tags_not_the_item(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.rows.loc[4, "tags"] = '["beach", "photo"'
    result = _run(p)
    rej = result.rejects[result.rejects["stage"] == "tags"]
    assert rej["row"].tolist() == [5] and rej["id"].tolist() == ["it004"]
    assert rej["reason"].str.contains("not valid JSON").all()
    assert "it004" in set(result.items["id"])
    assert "it004" not in set(result.tags.loc[result.tags["source"] == "observed", "id"])


@pytest.mark.parametrize(("value", "problem"), [("-5", "non-negative"), ("lots", "not a number")])
def test_bad_popularity_is_rejected_and_inferred(tmp_path: Path, value: str, problem: str) -> None:
    p = Project(tmp_path)
    p.rows.loc[3, "views"] = value
    result = _run(p)
    rej = result.rejects[result.rejects["stage"] == "popularity"]
    assert rej["id"].tolist() == ["it003"]
    assert rej["reason"].str.contains("'views'").all() and rej["reason"].str.contains(problem).all()
    row = result.items.set_index("id").loc["it003"]
    assert pd.isna(row["popularity_observed"])
    assert row["popularity_source"] == "inferred"
    assert 0 <= row["popularity"] <= 1


def test_some_images_broken_are_rejected_by_file(tmp_path: Path) -> None:
    from PIL import Image

    p = Project(tmp_path)
    files = write_images(p)
    files[1].write_bytes(b"")
    files[2].write_bytes(b"GIF89a truncated")
    Image.new("RGB", (200, 200)).save(files[3])  # 40,000 pixels > max_pixels
    files[4].unlink()
    p.set("embed.image.max_pixels", 10_000)
    with pytest.warns(DataQualityWarning, match=r"4 of 40 items have no embedding"):
        result = _run(p)
    rej = result.rejects[result.rejects["stage"] == "embed"].set_index("id")
    assert rej.loc["it001", "reason"] == "empty file (0 bytes)"
    assert rej.loc["it002", "reason"].startswith("not a readable image")
    assert rej.loc["it003", "reason"].startswith("too many pixels")
    assert rej.loc["it004", "reason"] == "file not found"
    assert rej.loc["it001", "file"] == str(files[1])
    assert len(result.items) == 40  # the items stay; they are isolated
    degree = result.items.set_index("id")["degree"]
    assert (degree[["it001", "it002", "it003", "it004"]] == 0).all()


def test_vectors_for_some_items_only(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.vectors, p.vector_ids = p.vectors[:30], p.ids[:30]
    with pytest.warns(DataQualityWarning, match=r"10 of 40 items have no embedding"):
        result = _run(p)
    assert (result.items["degree"].to_numpy()[30:] == 0).all()
    assert (result.items["degree"].to_numpy()[:30] > 0).all()


def test_output_checks_fail_before_any_work(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.path("run").mkdir()
    p.path("run/notes.txt").write_text("mine")
    p.set("embed.precomputed.path", "missing.npy")  # would fail later, in the embed stage
    with pytest.raises(OutputError, match="refusing to replace"):
        _run(p)
    assert p.path("run/notes.txt").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_output_parent(tmp_path: Path) -> None:  # pragma: no cover - not as root
    p = Project(tmp_path)
    ro = p.path("ro")
    ro.mkdir()
    ro.chmod(0o555)
    p.set("output.dir", "ro/run")
    try:
        with pytest.raises(OutputError, match=r"cannot write to .*ro.*choose a writable"):
            _run(p)
    finally:
        ro.chmod(0o755)


def test_limit_with_vectors_for_the_whole_catalog(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.set("data.limit", 25)
    result = _run(p)
    assert result.items["id"].tolist() == p.ids[:25]
    assert (result.items["degree"] > 0).all()
