"""Spark implementations of the item-sized stages (``execution.engine: spark``).

Public DataFrame API only (``mapInPandas``, ``applyInPandas``, joins, windows), so the same code
runs on a classic cluster and on Spark Connect; no JVM jar is needed. Importing this package
does not import pyspark. See ``docs/scale.md`` for what runs where.

- :mod:`~ccgraph.spark.session`: ``get_session``, ``add_index``, ``materialize``
- :mod:`~ccgraph.spark.embed`: ``embed_items`` (the single-machine embedders in ``mapInPandas``)
- :mod:`~ccgraph.spark.knn`: ``knn_dense`` (divide-and-merge), ``hamming_pairs`` (chunk join)
- :mod:`~ccgraph.spark.graph`: ``mutual_graph``, ``connected_components``, ``duplicate_groups``
- :mod:`~ccgraph.spark.propagate`: ``personalized_pagerank``, ``infer_popularity``,
  ``spread_tags``
- :mod:`~ccgraph.spark.cluster`: ``leiden_on_driver`` (memory-checked), ``coarsen_refine``
- :mod:`~ccgraph.spark.pipeline`: ``run_spark(config)``
"""

from __future__ import annotations

from ccgraph.spark.cluster import coarsen_refine, collect_graph, leiden_on_driver
from ccgraph.spark.graph import connected_components, duplicate_groups, mutual_graph
from ccgraph.spark.knn import hamming_pairs, knn_dense
from ccgraph.spark.pipeline import run_spark
from ccgraph.spark.propagate import infer_popularity, personalized_pagerank, spread_tags
from ccgraph.spark.session import get_session, spark_available

__all__ = [
    "coarsen_refine",
    "collect_graph",
    "connected_components",
    "duplicate_groups",
    "get_session",
    "hamming_pairs",
    "infer_popularity",
    "knn_dense",
    "leiden_on_driver",
    "mutual_graph",
    "personalized_pagerank",
    "run_spark",
    "spark_available",
    "spread_tags",
]
