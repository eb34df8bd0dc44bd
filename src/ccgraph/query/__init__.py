"""Read-only per-image answers from a finished run: clusters, related items and tags.

``open_run(path)`` returns a :class:`RunIndex`; its ``clusters``, ``related`` and ``tags``
answer for an item of the run, and ``query_vector`` / ``query_text`` / ``query_image`` for a
new item, from its nearest stored items. ``query_batch`` answers many at once. Nothing is
written into the run directory. Importing this package loads numpy and pandas only.
"""

from __future__ import annotations

from ccgraph.query.answers import ClusterAnswer, ItemAnswer
from ccgraph.query.index import RunIndex, open_run
from ccgraph.query.persist import StoredEmbeddings, embedding_extras, stored_embeddings

__all__ = [
    "ClusterAnswer",
    "ItemAnswer",
    "RunIndex",
    "StoredEmbeddings",
    "embedding_extras",
    "open_run",
    "stored_embeddings",
]
