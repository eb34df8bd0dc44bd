"""Blank (uniform) images: their perceptual hashes say nothing, so they are kept apart.

Every uniform image, whatever its colour, gets one of a few hash codes, so hash-based
near-duplicate grouping would put every blank image of a catalog in one group. The run, the
update and the Spark pipeline find those rows (:func:`blank_hash_rows`), warn once
(:func:`blank_hash_message`) and group them only by their files' bytes
(:func:`blank_hash_keys`, the ``isolate`` keys of :func:`ccgraph.graph.find_duplicates`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ccgraph.containers import Embeddings
from ccgraph.embed._loading import file_digest, map_ordered
from ccgraph.embed.images import HASH_KINDS, HashEmbedder
from ccgraph.exceptions import DataQualityWarning

__all__ = [
    "blank_file_keys",
    "blank_hash_codes",
    "blank_hash_keys",
    "blank_hash_message",
    "blank_hash_rows",
]


def blank_hash_codes(kind: str, hash_size: int = 8) -> np.ndarray:
    """The distinct codes :class:`HashEmbedder` gives a uniform (blank) image.

    Parameters
    ----------
    kind
        Hash kind (``"phash"``, ``"dhash"``, ``"whash"``, ``"ahash"``).
    hash_size
        Side of the hash (``hash_size**2`` bits).

    Returns
    -------
    numpy.ndarray
        uint8 ``[m, ceil(hash_size**2 / 8)]`` packed codes, one row per distinct code of a
        black, a grey and a white image (``m`` is 1 or 2; see :func:`blank_hash_rows`).

    Examples
    --------
    >>> blank_hash_codes("dhash").tolist()
    [[0, 0, 0, 0, 0, 0, 0, 0]]
    """
    from PIL import Image

    embedder = HashEmbedder(kind, hash_size, n_jobs=1)
    codes = [embedder._prepare(Image.new("RGB", (64, 64), (g, g, g))) for g in (0, 128, 255)]
    return np.unique(np.stack(codes), axis=0)


def blank_hash_rows(embeddings: Embeddings) -> np.ndarray:
    """Boolean mask of the perceptual-hash rows equal to the hash of a uniform (blank) image.

    Every uniform image, whatever its colour, gets the same one or two codes (pHash: only the
    DC bit, set unless the image is black; dHash, aHash, wHash: all zero), so the codes say
    nothing about the picture and every blank image of a catalog lies at Hamming distance 0
    from every other. dHash also gives the zero code to a thumbnail whose rows never
    brighten left to right (e.g. a smooth gradient): it carries no information either.
    ``embeddings`` that are not :class:`HashEmbedder` codes (``params["kind"]`` and
    ``params["hash_size"]``) give an all-False mask. The codes are
    :func:`blank_hash_codes`.

    Examples
    --------
    >>> emb = Embeddings(np.array([[0] * 8, [7] * 8], dtype=np.uint8), np.array(["a", "b"]),
    ...                  kind="binary", params={"kind": "dhash", "hash_size": 8})
    >>> blank_hash_rows(emb).tolist()
    [True, False]
    """
    params = embeddings.params
    kind, size = params.get("kind"), params.get("hash_size")
    if embeddings.kind != "binary" or kind not in HASH_KINDS or not isinstance(size, int):
        return np.zeros(embeddings.n_items, dtype=bool)
    blanks = blank_hash_codes(kind, size)
    codes = np.asarray(embeddings.vectors)
    if codes.shape[1:] != blanks.shape[1:]:
        return np.zeros(embeddings.n_items, dtype=bool)
    return (codes[:, None, :] == blanks[None, :, :]).all(axis=2).any(axis=1)


def blank_hash_message(
    n_blank: int, n_items: int, *, kind: str, ids: Sequence[str] | np.ndarray
) -> str:
    """The :class:`~ccgraph.exceptions.DataQualityWarning` text about blank hashes.

    ``n_blank`` of ``n_items`` images have a ``kind`` hash of :func:`blank_hash_codes`;
    ``ids`` are theirs in row order (the first five are named). One text for every engine.
    """
    shown = [str(i) for i in ids[:5]]
    return (
        f"{n_blank} of {n_items} images have the {kind} hash of a blank (uniform) image "
        f"(e.g. ids {shown}): the hash says nothing about them, so they are kept out of the "
        "near-duplicate groups (only byte-identical files are grouped); check or drop those "
        "images"
    )


def blank_file_keys(
    image_paths: Sequence[str | None], rows: Sequence[int], *, n_jobs: int = 1
) -> list[str]:
    """One key per entry of ``rows``: the sha256 of the file ``image_paths[row]``.

    A row without a readable file gets a key of its own (``"unreadable file, row <row>"``),
    so it is grouped with nothing.
    """
    paths = [p if isinstance(p, (str, Path)) and str(p) else None for p in image_paths]

    def digest(r: int) -> str | None:
        path = paths[r]
        return file_digest(path) if path else None

    found = map_ordered(digest, rows, n_jobs=n_jobs)
    return [d or f"unreadable file, row {r}" for r, d in zip(rows, found, strict=True)]


def blank_hash_keys(
    embeddings: Embeddings, image_paths: Sequence[str | None], *, n_jobs: int = 1
) -> list[str | None] | None:
    """``isolate`` keys for :func:`~ccgraph.graph.find_duplicates` that keep blank images apart.

    Returns ``None`` when no row of ``embeddings`` is a blank hash (:func:`blank_hash_rows`);
    else, with a :class:`~ccgraph.exceptions.DataQualityWarning` (how many, a few ids), one
    entry per row: ``None`` for an ordinary row, the sha256 of a blank row's file (its
    ``image_paths`` entry), so that only byte-identical blank files are grouped.
    """
    blank = blank_hash_rows(embeddings)
    if not blank.any():
        return None
    rows = np.flatnonzero(blank)
    kind = str(embeddings.params.get("kind"))
    warnings.warn(
        blank_hash_message(len(rows), embeddings.n_items, kind=kind, ids=embeddings.ids[rows]),
        DataQualityWarning,
        stacklevel=2,
    )
    keys: list[str | None] = [None] * embeddings.n_items
    for r, key in zip(
        rows, blank_file_keys(image_paths, rows.tolist(), n_jobs=n_jobs), strict=True
    ):
        keys[r] = key
    return keys
