"""Calibrated tag confidences on Spark, fitted by the single-machine code on held-out seeds.

The hidden items are drawn by :func:`ccgraph.propagate.calibration.holdout_split` and the
partly hidden ones by :func:`~ccgraph.propagate.calibration.holdout_tags` (the same draws as
the local run for the same ``rng``), the spreading without their seeds runs on Spark, only
those items' top-k rows reach the driver, and they are labelled and fitted by
:func:`~ccgraph.propagate.calibration.label_holdout` and
:func:`~ccgraph.propagate.calibration.fit_from_predictions`, as in
:func:`ccgraph.propagate.fit_calibrator` (two maps: items without / with observed tags).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.containers import TagSet
from ccgraph.exceptions import InputError
from ccgraph.propagate.calibration import HIDE_FRACTION, TAG_FRACTION

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ccgraph._random import RngLike
    from ccgraph.propagate.calibration import Calibrator
    from ccgraph.spark._iterate import SparkOperator

__all__ = ["calibrate", "fit_calibrator", "seed_frame"]

log = logging.getLogger(__name__)


def seed_frame(spark: SparkSession, matrix: sp.spmatrix) -> DataFrame:
    """A seed matrix (items x tags) as the long table ``idx, tag, weight`` Spark spreads."""
    y = sp.coo_matrix(matrix)
    pdf = pd.DataFrame({"idx": y.row.astype(np.int64), "tag": y.col.astype(np.int64),
                        "weight": y.data.astype(np.float64)})  # fmt: skip
    return spark.createDataFrame(pdf, "idx long, tag long, weight double")


def fit_calibrator(
    op: SparkOperator,
    seeds: TagSet,
    *,
    rng: RngLike = None,
    hide_fraction: float = HIDE_FRACTION,
    tag_fraction: float | None = TAG_FRACTION,
    method: str = "isotonic",
    tol: float = 1e-6,
    max_iter: int = 100,
    top_k: int = 10,
    prune: int | None = 32,
    freeze: int | None = 12,
) -> Calibrator:
    """Fit a tag-confidence calibrator on held-out seed items, spreading on Spark.

    Parameters
    ----------
    op
        The spreading operator (:func:`ccgraph.spark.propagate.operator`; its ``alpha``).
    seeds
        All observed tags, rows in the operator's ``idx`` order.
    rng
        Seed or Generator of the hidden set; the local run's seed gives the local hidden set.
    hide_fraction, tag_fraction, method
        As :func:`ccgraph.propagate.fit_calibrator`.
    tol, max_iter, top_k, prune, freeze
        The Spark spreading settings (those of the run being calibrated).

    Returns
    -------
    Calibrator
        ``describe()`` as the local one (``hide_fraction, repeats, alpha, tag_fraction``
        and the ``tagged`` map's).

    Raises
    ------
    InputError
        Too few seeded items to hide ``hide_fraction`` of them.
    """
    from pyspark.sql import functions as F

    from ccgraph.propagate._holdout import calibration_holdout
    from ccgraph.propagate.calibration import fit_from_predictions, label_holdout
    from ccgraph.spark.propagate import spread_tags

    if not isinstance(seeds, TagSet):
        raise InputError(f"`seeds` must be a TagSet; got {type(seeds).__name__}")
    hidden, train = calibration_holdout(
        seeds.matrix, hide_fraction=hide_fraction, tag_fraction=tag_fraction, rng=rng
    )
    spark = op.edges.sparkSession
    out, _, _ = spread_tags(op, seed_frame(spark, train), tol=tol, max_iter=max_iter,
                            top_k=top_k, prune=prune, freeze=freeze,
                            relative_mass=True)  # fmt: skip
    hid = spark.createDataFrame(pd.DataFrame({"idx": hidden.astype(np.int64)}), "idx long")
    pdf: pd.DataFrame = (
        out.join(F.broadcast(hid), "idx")
        .select("idx", "tag", "score", "rank", "relative_mass")
        .toPandas()
    )
    pdf = pdf.sort_values(["idx", "rank"], kind="stable")
    log.info("calibration: %d held-out rows of %d hidden items", len(pdf), len(hidden))
    observed = np.diff(train.indptr)[pdf["idx"].to_numpy()]
    df = label_holdout(seeds, pdf["idx"], pdf["tag"], pdf["score"], pdf["rank"],
                       pdf["relative_mass"], observed=observed)  # fmt: skip
    params: dict[str, Any] = {"hide_fraction": hide_fraction, "repeats": 1, "alpha": op.alpha}
    if tag_fraction is not None:
        params["tag_fraction"] = tag_fraction
    return fit_from_predictions(df, method=method, params=params)


def calibrate(
    scores: DataFrame, calibrator: Calibrator, seeds: DataFrame | None = None
) -> DataFrame:
    """Replace ``confidence`` by the calibrated one, on the executors.

    Parameters
    ----------
    scores
        :func:`ccgraph.spark.propagate.spread_tags` output with ``relative_mass``.
    calibrator
        A fitted :class:`~ccgraph.propagate.Calibrator`.
    seeds
        The observed tags (:func:`seed_frame`: ``idx, tag, weight``): each item's count
        picks the calibrator's map (``tagged`` for items with observed tags). None: every
        item is read as untagged (a one-map calibrator needs no more).

    Returns
    -------
    pyspark.sql.DataFrame
        The same rows and columns; ``confidence = calibrator.predict(score, rank,
        relative_mass, observed)``.
    """
    from pyspark.sql import functions as F

    if "relative_mass" not in scores.columns:
        raise InputError(
            "`scores` needs a `relative_mass` column (spread_tags(relative_mass=True))"
        )
    columns = scores.columns
    two = False
    frame = scores
    if seeds is not None and calibrator.tagged is not None:
        two = True
        counts = seeds.groupBy("idx").agg(F.count("*").alias("_observed"))
        frame = scores.join(counts, "idx", "left").fillna(0, subset=["_observed"])

    def apply(batches: Any) -> Any:
        for b in batches:
            observed = b["_observed"].to_numpy() if two else None
            conf = calibrator.predict(b["score"].to_numpy(np.float64), b["rank"].to_numpy(),
                                      b["relative_mass"].to_numpy(np.float64),
                                      observed)  # fmt: skip
            yield b[columns].assign(confidence=np.asarray(conf, dtype=np.float64))

    return frame.mapInPandas(apply, scores.schema)
