from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccgraph.exceptions import DataQualityWarning, ParameterError
from ccgraph.propagate import build_seeds

TAGS = pd.DataFrame(
    {
        "id": ["a", "a", "b", "b", "c", "zz"],
        "tag": ["cat", "pet", "cat", "cat", "dog", "cat"],
        "source": ["user", "machine", "machine", "user", "machine", "user"],
        "weight": [1.0, 0.9, 0.7, 1.0, 0.8, 1.0],
    }
)


def test_weights_by_source():
    with pytest.warns(DataQualityWarning, match=r"1 of 6 tag rows .*\['zz'\]"):  # not an item
        s = build_seeds(TAGS, ["a", "b", "c"], user_weight=0.5, machine_weight="accuracy")
    m = pd.DataFrame(s.matrix.toarray(), index=s.ids, columns=s.tags)
    assert m.loc["a", "cat"] == 0.5
    assert m.loc["a", "pet"] == pytest.approx(0.9)
    assert m.loc["b", "cat"] == pytest.approx(0.7)  # repeated (id, tag): the larger weight
    assert m.loc["c", "dog"] == pytest.approx(0.8)
    with pytest.warns(DataQualityWarning, match=r"\['zz'\]"):
        const = build_seeds(TAGS, ["a", "b", "c"], machine_weight=0.3)
    mc = pd.DataFrame(const.matrix.toarray(), index=const.ids, columns=const.tags)
    assert mc.loc["a", "pet"] == pytest.approx(0.3) and mc.loc["b", "cat"] == 1.0


def test_sources_and_min_count():
    with pytest.warns(DataQualityWarning, match=r"\['zz'\]"):  # "zz" is not an item
        s = build_seeds(TAGS, ["a", "b", "c"], sources=["user"])
    assert list(s.tags) == ["cat"]
    with pytest.warns(DataQualityWarning, match=r"\['zz'\]"):
        s2 = build_seeds(TAGS, ["a", "b", "c"], min_count=2)
    assert list(s2.tags) == ["cat"]
    np.testing.assert_array_equal(s2.is_tagged, [True, True, False])


def test_bad_parameters():
    with pytest.raises(ParameterError, match="machine_weight"):
        build_seeds(TAGS, ["a"], machine_weight="mean")
    with pytest.raises(ParameterError, match="sources"):
        build_seeds(TAGS, ["a"], sources=["robot"])
