"""Embed a whole catalog as the ``embed`` section of a config asks: text, image, precomputed."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ccgraph._logging import timed
from ccgraph.embed.base import Embedder, EmbedOutput, make_rejects
from ccgraph.embed.cache import embed_with_cache
from ccgraph.exceptions import ConfigError, InputError

if TYPE_CHECKING:
    from ccgraph.config import EmbedConfig, ImageEmbedConfig
    from ccgraph.containers import Catalog, Embeddings
    from ccgraph.embed.images import ImageEmbedder

__all__ = ["embed_catalog", "make_image_embedder"]

logger = logging.getLogger(__name__)


def make_image_embedder(
    cfg: ImageEmbedConfig,
    *,
    base_dir: str | Path | None = None,
    n_jobs: int | None = None,
    show_progress: bool = False,
) -> ImageEmbedder:
    """Build the image embedder that ``embed.image`` names (``kind`` must not be ``none``)."""
    from ccgraph.embed.cnn import CnnEmbedder
    from ccgraph.embed.images import HASH_KINDS, HashEmbedder, PixelEmbedder

    common = {
        "n_jobs": n_jobs,
        "max_pixels": cfg.max_pixels,
        "base_dir": base_dir,
        "show_progress": show_progress,
    }
    if cfg.kind in HASH_KINDS:
        return HashEmbedder(cfg.kind, **common)  # type: ignore[arg-type]
    if cfg.kind == "pixels":
        return PixelEmbedder(cfg.pixels_size, cfg.pixels_grey, **common)  # type: ignore[arg-type]
    if cfg.kind == "cnn":
        return CnnEmbedder(cfg.batch_size, **common)  # type: ignore[arg-type]
    raise ConfigError(f"`embed.image.kind` {cfg.kind!r} does not name an image embedder")


def _no_image_error(rejects: pd.DataFrame, cfg: ImageEmbedConfig) -> InputError:
    """The error for a run in which not one image could be used, with the commonest reasons."""
    reasons = rejects["reason"].astype(str).str.replace(r" \(.*", "", regex=True)
    counts = {str(k): int(v) for k, v in reasons.value_counts().head(3).items()}
    example = rejects["file"].dropna().astype(str)
    folders = {str(Path(f).parent) for f in example}
    missing = sorted(f for f in folders if not Path(f).is_dir())
    if missing and len(missing) == len(folders):
        top = Path(missing[0])
        while top.parent != top and not top.parent.is_dir():
            top = top.parent  # name the outermost folder that is missing
        return InputError(
            f"no image could be embedded: the image folder {str(top)!r} is not an existing "
            f"folder (all {len(rejects)} items were rejected); set `data.image_root` to the folder "
            "that the relative `image_path` values resolve against, or turn images off with "
            "`embed.image.kind: none`"
        )
    advice = (
        "raise `embed.image.max_pixels` (the decompression-bomb guard, now "
        f"{cfg.max_pixels:,} pixels)"
        if next(iter(counts), "").startswith("too many pixels")
        else "check the image files and the `image_path` column (relative paths resolve "
        "against `data.image_root`, default the catalog's folder)"
    )
    return InputError(
        f"no image could be embedded: all {len(rejects)} items were rejected (by reason: "
        f"{counts}; e.g. {example.iloc[0] if len(example) else 'no path'}); {advice}, or turn "
        "images off with `embed.image.kind: none`"
    )


def _known_ids(catalog: Catalog) -> np.ndarray | None:
    """Ids a vectors file may list: the catalog's and its rejected rows' (None: any id).

    After ``data.limit`` cut the catalog short, any id is allowed (the rest were not read).
    """
    if catalog.params.get("limit") is not None:
        return None
    rejected = catalog.rejects["id"].dropna().astype(str).to_numpy()
    extra = np.setdiff1d(rejected[rejected != ""], catalog.ids)
    return np.concatenate([catalog.ids, extra])


def _catalog_rows(emb: Embeddings, ids: np.ndarray) -> Embeddings:
    """Keep the vectors of catalog items only, in catalog order."""
    pos = pd.Index(ids).get_indexer(emb.ids)
    if (pos >= 0).all() and (np.diff(pos) > 0).all():
        return emb
    keep = np.flatnonzero(pos >= 0)
    logger.info(
        "ignored %d vectors of items rejected from the catalog or beyond `data.limit`",
        len(pos) - len(keep),
    )
    return emb.take(keep[np.argsort(pos[keep], kind="stable")])


def _run(
    embedder: Embedder, items: pd.DataFrame, cache_dir: str | Path | None, show_progress: bool
) -> EmbedOutput:
    if cache_dir is None:
        return embedder.embed(items)
    return embed_with_cache(embedder, items, cache_dir, show_progress=show_progress)


def embed_catalog(
    catalog: Catalog,
    cfg: EmbedConfig,
    *,
    base_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    n_jobs: int | None = None,
    show_progress: bool = False,
) -> tuple[dict[str, Embeddings], pd.DataFrame]:
    """Compute every embedding the config enables.

    Parameters
    ----------
    catalog
        Items (``id``, ``title``, ``description``, ``image_path``, ``url``) and long tags.
    cfg
        The ``embed`` config section.
    base_dir
        Relative ``image_path`` values and ``embed.precomputed`` paths resolve against it
        (normally the config file's folder).
    cache_dir
        Content-addressed cache folder; ``None`` disables caching (``embed.cache_dir`` is
        resolved by the caller).
    n_jobs
        Decoding threads and torch threads (default: all cores).
    show_progress
        Progress bars.

    Returns
    -------
    embeddings : dict of str to Embeddings
        ``"text"``, ``"image"``, ``"precomputed"`` for the enabled modalities. The image
        embeddings cover only the items whose image loaded; precomputed ones only the items
        the file lists; both in catalog order.
    rejects : pandas.DataFrame
        ``file, row, id, stage, reason`` (``stage == "embed"``); ``row`` is the item's 1-based
        position in ``catalog.items``.

    Raises
    ------
    ConfigError
        When no modality is enabled.
    """
    from ccgraph.embed.precomputed import load_precomputed
    from ccgraph.embed.text import TextEmbedder, caption_texts

    out: dict[str, Embeddings] = {}
    rejects = [make_rejects([])]
    # With a cache, embed_with_cache draws the bar; an embedder's own bar would nest in it.
    inner_progress = show_progress and cache_dir is None
    items = catalog.items
    if cfg.text.enabled:
        with timed("embed text", logger):
            texts = caption_texts(
                items, catalog.tags, fields=cfg.text.fields, max_chars=cfg.text.max_chars
            )
            if texts and all(not t.strip() for t in texts):
                raise InputError(
                    f"every caption is empty: the fields {list(cfg.text.fields)} hold no text "
                    f"for any of the {len(texts)} items; map the text columns in "
                    "`data.columns`, change `embed.text.fields`, or turn text off with "
                    "`embed.text.enabled: false`"
                )
            embedder = TextEmbedder(
                cfg.text.model,
                cfg.text.batch_size,
                cfg.text.max_chars,
                n_jobs=n_jobs,
                show_progress=inner_progress,
            )
            frame = pd.DataFrame({"id": items["id"].astype(str), "text": texts})
            res = _run(embedder, frame, cache_dir, show_progress)
            n_empty = sum(1 for t in texts if not t.strip())
            emb = replace(
                res.embeddings, params={**res.embeddings.params, "n_empty_captions": n_empty}
            )
            out["text"] = emb
            if n_empty:
                logger.warning("%d of %d items have an empty caption", n_empty, len(texts))
    if cfg.image.kind != "none":
        with timed(f"embed image ({cfg.image.kind})", logger):
            embedder_img = make_image_embedder(
                cfg.image, base_dir=base_dir, n_jobs=n_jobs, show_progress=inner_progress
            )
            cols = [c for c in ("id", "image_path", "url") if c in items.columns]
            res = _run(embedder_img, items[cols], cache_dir, show_progress)
            out["image"] = res.embeddings
            rejects.append(res.rejects)
            if res.embeddings.n_items == 0:
                raise _no_image_error(res.rejects, cfg.image)
    if cfg.precomputed.path:
        path = Path(cfg.precomputed.path).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        ids_path = cfg.precomputed.ids_path
        if ids_path is not None and base_dir is not None and not Path(ids_path).is_absolute():
            ids_path = str(Path(base_dir) / ids_path)
        with timed("load precomputed vectors", logger):
            out["precomputed"] = _catalog_rows(
                load_precomputed(
                    path,
                    ids=catalog.ids if ids_path is None else None,
                    ids_path=ids_path,
                    id_column=cfg.precomputed.id_column,
                    vector_column=cfg.precomputed.vector_column,
                    catalog_ids=_known_ids(catalog),
                ),
                catalog.ids,
            )
    if not out:
        raise ConfigError(
            "no embedding is enabled: set `embed.text.enabled: true`, `embed.image.kind` or "
            "`embed.precomputed.path`"
        )
    all_rejects = pd.concat(rejects, ignore_index=True)
    logger.info(
        "embeddings: %s; %d rejects",
        {k: v.shape for k, v in out.items()},
        len(all_rejects),
    )
    return out, all_rejects
