"""Embeddings in Spark: the single-machine embedders run inside ``mapInPandas``.

Each Python worker builds the embedder once and keeps it in a module global (a model loads
once per executor process, not once per batch); sentence-transformers models are also cached
by :mod:`ccgraph.embed.text`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from ccgraph.config import EmbedConfig

__all__ = ["EMBED_SCHEMA", "embed_items"]

log = logging.getLogger(__name__)

#: ``vec`` for dense vectors, ``code`` for 64-bit hashes, ``reason`` for rejected items.
EMBED_SCHEMA = "idx long, vec array<float>, code long, reason string"

_EMBEDDERS: dict[str, Any] = {}


def _embedder(key: str, factory: Any) -> Any:
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = factory()
    return _EMBEDDERS[key]


def embed_items(
    items: DataFrame,
    cfg: EmbedConfig,
    *,
    modality: str,
    base_dir: str | None = None,
) -> DataFrame:
    """Embed the items of a DataFrame with the embedder the config names.

    Parameters
    ----------
    items
        ``idx, id`` plus ``text`` (captions, for ``modality="text"``) or ``image_path`` /
        ``url`` (for ``"image"``).
    cfg
        The ``embed`` config section.
    modality
        ``"text"`` or ``"image"``.
    base_dir
        Relative image paths resolve against it.

    Returns
    -------
    pyspark.sql.DataFrame
        :data:`EMBED_SCHEMA`: dense ``vec`` (text, pixels, CNN) or ``code`` (perceptual hashes,
        as a signed int64 of the 8 code bytes, big-endian) per item, or ``reason`` when the
        item could not be embedded.

    Notes
    -----
    Captions are embedded once per distinct text (``distinct`` on the text's sha256, then a
    join back to the items), as :class:`ccgraph.embed.TextEmbedder` does on one machine:
    items sharing a caption get bitwise-identical vectors, so their kNN ties are exact.
    """
    from pyspark.sql import functions as F

    if modality == "text":
        t = cfg.text
        key = f"text:{t.model}:{t.batch_size}:{t.max_chars}"

        def factory() -> Any:
            from ccgraph.embed.text import TextEmbedder

            return TextEmbedder(t.model, t.batch_size, t.max_chars, n_jobs=1)

        text = F.substring(F.coalesce(F.col("text"), F.lit("")), 1, t.max_chars)  # as embedded
        keyed = items.select("idx", text.alias("text")).withColumn("tkey", F.sha2("text", 256))
        texts = keyed.select("tkey", "text").dropDuplicates(["tkey"])
        run = _embed_batches(key, factory, ["id", "text"], key_col="tkey")
        vecs = texts.withColumn("id", F.col("tkey")).mapInPandas(
            run, "tkey string, vec array<float>, code long, reason string"
        )
        return keyed.select("idx", "tkey").join(vecs, "tkey").select("idx", "vec", "code", "reason")
    if modality != "image":
        raise ValueError(f"modality must be 'text' or 'image'; got {modality!r}")
    im = cfg.image
    key = f"image:{im.model_dump_json()}:{base_dir}"

    def factory_image() -> Any:
        from ccgraph.embed.catalog import make_image_embedder

        return make_image_embedder(im, base_dir=base_dir, n_jobs=1)

    present = [c for c in ["id", "image_path", "url"] if c in items.columns]
    run = _embed_batches(key, factory_image, present, key_col="idx")
    return items.select("idx", *present).mapInPandas(run, EMBED_SCHEMA)


def _embed_batches(key: str, factory: Any, present: list[str], *, key_col: str) -> Any:
    """The ``mapInPandas`` function: embed each batch, one output row per input row.

    Output columns: ``key_col`` (copied from the input), ``vec``, ``code``, ``reason``.
    """
    import pandas as pd

    def run(batches: Any) -> Any:
        embedder = _embedder(key, factory)
        for b in batches:
            if not len(b):
                continue
            out = embedder.embed(b[present].reset_index(drop=True))
            emb = out.embeddings
            pos = pd.Index(b["id"].astype(str)).get_indexer(emb.ids)
            n = len(b)
            vec: list[Any] = [None] * n
            code = np.zeros(n, dtype=np.int64)
            has_code = np.zeros(n, dtype=bool)
            if emb.kind == "binary":
                packed = np.zeros((len(pos), 8), dtype=np.uint8)
                packed[:, : min(8, emb.vectors.shape[1])] = emb.vectors[:, :8]
                code[pos] = packed.view(">i8").ravel()
                has_code[pos] = True
            else:
                for i, row in zip(pos, emb.vectors, strict=True):
                    vec[i] = row.astype(np.float32)
            reason = pd.Series([None] * n, dtype=object)
            if len(out.rejects):
                rej = pd.Index(b["id"].astype(str)).get_indexer(out.rejects["id"].astype(str))
                ok = rej >= 0
                reason.iloc[rej[ok]] = out.rejects["reason"].astype(str).to_numpy()[ok]
            yield pd.DataFrame({
                key_col: b[key_col].to_numpy(),
                "vec": vec,
                # nullable int64: null where the item has no code (pandas 3 arrays lack .where)
                "code": pd.arrays.IntegerArray(code, ~has_code),
                "reason": reason,
            })  # fmt: skip

    return run
