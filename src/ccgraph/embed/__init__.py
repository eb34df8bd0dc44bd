"""Embeddings of catalog items: captions, images (hashes, pixels, CNN) and precomputed vectors.

Every embedder follows the :class:`Embedder` protocol: ``embed(items)`` returns an
:class:`EmbedOutput` with vectors for the items that worked and reject rows for the others.
:func:`embed_with_cache` reuses earlier work through a content-addressed cache and
:func:`embed_catalog` runs what a config's ``embed`` section enables. Importing this package
loads no heavy dependency (torch, sentence-transformers and imagehash load on first use).
"""

from __future__ import annotations

from ccgraph.embed.base import Embedder, EmbedOutput, make_rejects
from ccgraph.embed.cache import EmbeddingCache, embed_with_cache
from ccgraph.embed.catalog import embed_catalog, make_image_embedder
from ccgraph.embed.cnn import CnnEmbedder
from ccgraph.embed.images import HashEmbedder, ImageEmbedder, PixelEmbedder
from ccgraph.embed.precomputed import load_precomputed
from ccgraph.embed.text import TextEmbedder, caption_texts, embed_text

__all__ = [
    "CnnEmbedder",
    "EmbedOutput",
    "Embedder",
    "EmbeddingCache",
    "HashEmbedder",
    "ImageEmbedder",
    "PixelEmbedder",
    "TextEmbedder",
    "caption_texts",
    "embed_catalog",
    "embed_text",
    "embed_with_cache",
    "load_precomputed",
    "make_image_embedder",
    "make_rejects",
]
