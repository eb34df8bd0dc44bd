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


@case(InputError, r"vectors\.npy: 40 rows but the given ids lists 42 ids.*catalog's item", r"ids_path")
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


@case(InputError, r"no image could be embedded.*file not found", r"image_root")
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


@case(ConfigError, r"`cluster\.default_level` must be 'auto' or in \[0, 0\]; got 3", r"auto")
def default_level_out_of_range(p: Project) -> None:
    p.set("cluster.default_level", 3)


@case(ConfigError, r"`cluster\.previous_run`: .*items\.parquet does not exist", r"point it at")
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


@case(MemoryBudgetError, r"stage 'knn' needs about .* GiB", r"graph\.k|pynndescent")
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
    assert err.startswith("ccgraph: error: "), err
    assert "Traceback" not in err
    assert re.search(bad.where, err), err


def test_corpus_size() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
