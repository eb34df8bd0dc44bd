"""Settings the Spark engine does not implement are refused before a session starts."""

from __future__ import annotations

import pytest

from ccgraph.config import config_from_mapping
from ccgraph.exceptions import ConfigError
from ccgraph.spark.pipeline import run_spark


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"graph": {"weighting": "gaussian"}}, "graph.weighting"),
        ({"propagate": {"tags": {"cluster_prior": 0.2}}}, "cluster_prior"),
        ({"propagate": {"tags": {"tagprop_weight": "auto"}}}, "tagprop_weight"),
        ({"embed": {"image": {"kind": "phash"}}}, "one modality"),
        ({"embed": {"text": {"enabled": False}}}, "one modality"),
    ],
)
def test_unsupported_settings_raise_config_error(section: dict, match: str) -> None:
    cfg = config_from_mapping(
        {"data": {"path": "x.csv"}, "execution": {"engine": "spark"}, **section}
    )
    with pytest.raises(ConfigError, match=match):
        run_spark(cfg)
