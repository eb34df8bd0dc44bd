"""Embeddings in Spark: the single-machine embedders run inside ``mapInPandas``.

Each Python worker builds the embedder once and keeps it in a module global (a model loads
once per executor process, not once per batch); sentence-transformers models are also cached
by :mod:`ccgraph.embed.text`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

    from ccgraph.config import EmbedConfig

__all__ = ["EMBED_SCHEMA", "blank_keys", "embed_items", "pack_codes"]

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
                code[pos] = pack_codes(emb.vectors)
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


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """Packed hash codes (uint8 rows) as the ``code`` column: int64 of the first 8 bytes.

    The bytes are read big-endian (the first byte is the most significant) into a signed
    int64; rows shorter than 8 bytes are padded with zero bytes on the right.

    Examples
    --------
    >>> pack_codes(np.array([[0, 0, 0, 0, 0, 0, 1, 0], [128, 0, 0, 0, 0, 0, 0, 0]], np.uint8))
    array([                 256, -9223372036854775808])
    """
    packed = np.zeros((len(codes), 8), dtype=np.uint8)
    packed[:, : min(8, codes.shape[1])] = codes[:, :8]
    return packed.view(">i8").ravel().astype(np.int64)


def blank_keys(
    codes: DataFrame,
    *,
    kind: str,
    ids: np.ndarray,
    image_paths: Sequence[str | None],
    hash_size: int = 8,
    n_jobs: int = 1,
) -> tuple[np.ndarray, list[str]] | None:
    """The items whose hash is a blank image's, and their files' sha256, as on one machine.

    Parameters
    ----------
    codes
        ``idx, code`` (:func:`embed_items` codes of the embedded items).
    kind, hash_size
        The hash the codes were made with.
    ids, image_paths
        Every catalog item's id and resolved image path, by ``idx``.
    n_jobs
        Threads reading the blank items' files (on the driver).

    Returns
    -------
    tuple of numpy.ndarray and list of str, or None
        None when no code is a blank hash (:func:`ccgraph.embed.blank.blank_hash_codes`,
        packed by :func:`pack_codes`); else the blank items' ``idx`` (ascending) and their
        keys (:func:`ccgraph.embed.blank.blank_file_keys`), after the
        :class:`~ccgraph.exceptions.DataQualityWarning` of
        :func:`ccgraph.embed.blank.blank_hash_keys`. Only the blank rows are collected.
    """
    from pyspark.sql import functions as F

    from ccgraph.embed.blank import blank_file_keys, blank_hash_codes, blank_hash_message
    from ccgraph.exceptions import DataQualityWarning

    blanks = [int(c) for c in pack_codes(blank_hash_codes(kind, hash_size))]
    found: pd.DataFrame = codes.where(F.col("code").isin(blanks)).select("idx").toPandas()
    if not len(found):
        return None
    rows = np.sort(found["idx"].to_numpy(np.int64))
    text = blank_hash_message(len(rows), codes.count(), kind=kind, ids=np.asarray(ids)[rows])
    warnings.warn(text, DataQualityWarning, stacklevel=2)
    return rows, blank_file_keys(image_paths, rows.tolist(), n_jobs=n_jobs)
