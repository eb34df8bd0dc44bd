"""Spark session helpers: the one row of a global aggregate, AQE switched off in a loop."""

from __future__ import annotations

import pandas as pd
import pytest

from ccgraph.exceptions import CcgraphError

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def test_agg_row_returns_the_aggregate_and_refuses_an_empty_frame(spark):
    from pyspark.sql import functions as F

    from ccgraph.spark.session import agg_row

    df = spark.createDataFrame(pd.DataFrame({"x": [1.5, 2.0, 4.0]}))
    assert agg_row(df.agg(F.sum("x"), F.count(F.lit(1))))[:] == (7.5, 3)
    empty = df.where(F.col("x") > 10)
    assert agg_row(empty.agg(F.sum("x")))[0] is None  # an aggregate of nothing is one null row
    with pytest.raises(CcgraphError, match="no row"):
        agg_row(empty)


def test_iterative_turns_aqe_off_and_restores_the_setting(spark):
    from ccgraph.spark.session import iterative

    key = "spark.sql.adaptive.enabled"
    before = spark.conf.get(key)
    with iterative(spark):
        assert spark.conf.get(key) == "false"
    assert spark.conf.get(key) == before
