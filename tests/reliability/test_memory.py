"""The memory guard: estimates per stage, and a run that refuses before allocating."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ccgraph
import ccgraph.propagate
from ccgraph import _memory, _stages
from ccgraph._memory import StageEstimate, budget_bytes, check_budget, estimate_run
from ccgraph.config import load_config
from ccgraph.exceptions import MemoryBudgetError
from ccgraph.graph.knn import AUTO_EXACT_MAX_N, choose_backend
from tests.reliability._project import Project

GIB = 1024**3


def _by_stage(**kw: object) -> dict[str, int]:
    return {e.stage: e.bytes for e in estimate_run(**kw)}  # type: ignore[arg-type]


def test_estimates_grow_with_each_size() -> None:
    base = _by_stage(n=50_000, d=384, k=15, t=1000)
    assert set(base) == {"knn", "graph", "cluster", "tags"}
    more_items = _by_stage(n=100_000, d=384, k=15, t=1000)
    assert all(more_items[s] > base[s] for s in base)
    wider = _by_stage(n=50_000, d=768, k=15, t=1000)
    assert all(wider[s] > base[s] for s in base)  # every stage holds the embeddings
    more_k = _by_stage(n=50_000, d=384, k=30, t=1000)
    assert all(more_k[s] > base[s] for s in ("graph", "cluster", "tags"))


def test_smaller_tag_block_lowers_the_tag_estimate() -> None:
    full = _by_stage(n=300_000, d=384, k=15, t=1000)["tags"]
    narrow = _by_stage(n=300_000, d=384, k=15, t=1000, tag_block=8)["tags"]
    assert narrow < full
    few_tags = _by_stage(n=300_000, d=384, k=15, t=4)["tags"]
    assert few_tags <= narrow


def test_budget_source_and_refusal_message() -> None:
    limit, source = budget_bytes(2.5)
    assert limit == int(2.5 * GIB) and "memory_limit_gb" in source
    limit, source = budget_bytes(None)
    assert limit > 0 and source == "available memory"
    est = StageEstimate("tags", 3 * GIB, "set a smaller `propagate.tags.tag_block`")
    check_budget(est, limit_bytes=4 * GIB)
    with pytest.raises(MemoryBudgetError) as info:
        check_budget(est, limit_bytes=2 * GIB, source="`execution.memory_limit_gb`")
    msg = str(info.value)
    assert "stage 'tags' needs about 3.0 GiB" in msg
    assert "budget is 2.0 GiB (`execution.memory_limit_gb`)" in msg
    assert msg.endswith("set a smaller `propagate.tags.tag_block`; or raise the limit")


def test_tiny_limit_refuses_before_the_knn(tmp_path: Path, monkeypatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the graph was built despite the memory guard")

    monkeypatch.setattr(_stages, "build_graph", never)
    p = Project(tmp_path)
    p.set("execution.memory_limit_gb", 0.01)
    with pytest.raises(MemoryBudgetError) as info:
        ccgraph.run(load_config(p.write()))
    msg = str(info.value)
    assert "stage 'knn' needs about" in msg and "MiB" in msg
    assert "budget is 0.0 GiB (`execution.memory_limit_gb`)" in msg
    assert "use fewer items (`data.limit`)" in msg and msg.endswith("or raise the limit")
    assert not (tmp_path / "run").exists()
    assert not list((tmp_path / ".run.cache").glob("checkpoints/*.npz"))


def test_each_stage_is_checked_before_it_starts(tmp_path: Path, monkeypatch) -> None:
    # Estimates under the limit for every stage but the tags: the run gets through the graph
    # and the clustering, then refuses before spreading the tags.
    calls: list[str] = []
    real_spread = ccgraph.propagate.spread_tags

    def spy(*args: object, **kwargs: object) -> object:
        calls.append("spread")
        return real_spread(*args, **kwargs)

    def estimates(**kw: object) -> list[StageEstimate]:
        small = {"knn": 1, "graph": 1, "cluster": 1}
        return [StageEstimate(s, b, f"advice for {s}") for s, b in small.items()] + [
            StageEstimate("tags", 100 * GIB, "set a smaller `propagate.tags.tag_block`")
        ]

    monkeypatch.setattr(_memory, "estimate_run", estimates)
    monkeypatch.setattr(ccgraph.propagate, "spread_tags", spy)
    p = Project(tmp_path)
    p.set("execution.memory_limit_gb", 1.0)
    with pytest.raises(MemoryBudgetError, match=r"stage 'tags' needs about 100\.0 GiB.*tag_block"):
        ccgraph.run(load_config(p.write()))
    assert calls == []
    # the graph stage ran and was checkpointed before the refusal
    assert len(list((tmp_path / ".run.cache").glob("checkpoints/graph-*.npz"))) == 1


def test_the_memory_benchmark_section_names_the_auto_rule_and_each_knn_backend() -> None:
    # before: the section said "exact up to 50k items, pynndescent above" while `auto` is now
    # exact up to AUTO_EXACT_MAX_N dense items and cells above, and no row named its backend
    doc = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
    if not doc.is_file():
        pytest.skip("docs/benchmarks.md not present")
    text = doc.read_text(encoding="utf-8")
    section = text[text.index("<!-- bench:memory -->") : text.index("<!-- /bench:memory -->")]
    assert f"Backend `auto` (exact up to {AUTO_EXACT_MAX_N:,} dense items, the cells" in section
    rows = re.findall(r"^\| ([\d,]+)[^|]*\| knn \((\w+)\) \|", section, flags=re.M)
    assert rows and len(rows) == section.count("| knn")
    stale = [(n, b) for n, b in rows if b != choose_backend(int(n.replace(",", "")), "cosine")]
    assert not stale or "earlier `auto` rule" in section
    assert {b for _, b in rows} <= {"exact", "cells", "pynndescent"}
