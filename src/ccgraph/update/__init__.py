"""Incremental updates of a run directory: add, replace and remove items without a rebuild.

:func:`update_run` reads a finished run (its tables plus the embeddings and kNN lists it keeps),
embeds only the batch, updates the kNN lists and the edges around the change, refines the
clusters from the previous ones with stable IDs, spreads tags and popularity again, and writes a
new run directory with a drift report. Importing this package loads numpy, pandas and the
config models only.
"""

from __future__ import annotations

from ccgraph.update.drift import drift_report, splits_and_merges
from ccgraph.update.knn import update_knn_lists
from ccgraph.update.run import update_run

__all__ = ["drift_report", "splits_and_merges", "update_knn_lists", "update_run"]
