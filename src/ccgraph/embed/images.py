"""Image embedders: perceptual hashes and pixel vectors (the CNN lives in :mod:`.cnn`).

All image embedders share one driver (:class:`ImageEmbedder`): items without a local file are
rejected with a counted reason, files are decoded on a thread pool by
:func:`~ccgraph.embed._loading.load_image` (EXIF orientation, any mode to RGB, bomb guard), and
any file that fails becomes a reject row while the others go on.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ccgraph._deps import import_optional
from ccgraph._validation import check_choice, check_int
from ccgraph.containers import Embeddings, as_ids
from ccgraph.embed._loading import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    file_digest,
    image_sources,
    load_image,
    map_ordered,
    pixel_limit,
)
from ccgraph.embed.base import (
    EmbedOutput,
    embedder_key,
    empty_embeddings,
    make_rejects,
    progress_bar,
    resolve_n_jobs,
)
from ccgraph.exceptions import InputError, ParameterError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["HashEmbedder", "ImageEmbedder", "PixelEmbedder"]

logger = logging.getLogger(__name__)

HASH_KINDS = ("phash", "dhash", "whash", "ahash")
NO_LOCAL_IMAGE = "no local image (URL only)"
NO_IMAGE = "no image path or URL"


class ImageEmbedder:
    """Shared driver of the image embedders; subclasses define one image's features.

    Subclasses set ``name``, ``kind`` and ``dim`` and implement :meth:`_prepare` (runs in a
    worker thread on one decoded RGB image) and optionally :meth:`_finish` (runs in the calling
    thread on a stacked batch of prepared arrays, e.g. a CNN forward pass).
    """

    name = "image"
    kind = "dense"
    version = "1"
    dim = 0
    batch_size = 256
    draft: int | None = 256
    zero_reason = "zero feature vector"

    def __init__(
        self,
        *,
        n_jobs: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        base_dir: str | Path | None = None,
        show_progress: bool = False,
    ) -> None:
        self.n_jobs = resolve_n_jobs(None if n_jobs is None else check_int("n_jobs", n_jobs, low=1))
        self.max_pixels = check_int("max_pixels", max_pixels, low=1)
        self.base_dir = base_dir
        self.show_progress = bool(show_progress)

    @property
    def params(self) -> dict[str, Any]:
        """Output-defining parameters (JSON-serialisable)."""
        return {}

    def key(self) -> str:
        """Cache key: sha256 of name, version and :attr:`params`."""
        return embedder_key(self.name, self.version, self.params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({inner})"

    def content_keys(self, items: pd.DataFrame) -> list[str | None]:
        """sha256 of each item's image file (``None`` when there is no readable file)."""
        paths, _ = image_sources(items, base_dir=self.base_dir)
        return list(map_ordered(lambda p: file_digest(p) if p else None, paths, n_jobs=self.n_jobs))

    def _prepare(self, image: PILImage.Image) -> np.ndarray:
        raise NotImplementedError

    def _finish(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def _work(self, path: str) -> tuple[np.ndarray | None, str | None]:
        try:
            image = load_image(path, max_pixels=self.max_pixels, draft=self.draft)
            return self._prepare(image), None
        except ImageLoadError as exc:
            return None, exc.reason
        except Exception as exc:  # a feature function failing on one odd image
            return None, f"feature extraction failed ({type(exc).__name__}: {exc})"

    def embed(self, items: pd.DataFrame) -> EmbedOutput:
        """Embed the images of ``items`` (columns ``id``, ``image_path``, optional ``url``).

        Items without a local path, and files that cannot be decoded, become reject rows;
        the returned embeddings hold the other items in input order.
        """
        if "id" not in items.columns:
            raise InputError(f"items need an `id` column; got {list(items.columns)}")
        start = time.perf_counter()
        # Missing, empty or repeated ids fail here, before any image is decoded.
        ids = as_ids(items["id"].astype(str).to_numpy())
        paths, urls = image_sources(items, base_dir=self.base_dir)
        rejects: list[tuple[str | None, int | None, str | None, str]] = []
        jobs: list[int] = []
        for i, (p, u) in enumerate(zip(paths, urls, strict=True)):
            if p is None:
                rejects.append((u, i + 1, ids[i], NO_LOCAL_IMAGE if u else NO_IMAGE))
            else:
                jobs.append(i)
        rows: list[int] = []
        parts: list[np.ndarray] = []
        buf_rows: list[int] = []
        buf: list[np.ndarray] = []

        def flush() -> None:
            if buf:
                parts.append(np.asarray(self._finish(np.stack(buf))))
                rows.extend(buf_rows)
                buf.clear()
                buf_rows.clear()

        window = max(4 * self.n_jobs, self.batch_size)
        with (
            pixel_limit(self.max_pixels),
            progress_bar(len(jobs), f"embed {self.name}", enabled=self.show_progress) as advance,
        ):
            results = map_ordered(
                lambda i: self._work(str(paths[i])), jobs, n_jobs=self.n_jobs, window=window
            )
            for i, (arr, reason) in zip(jobs, results, strict=True):
                if reason is not None:
                    rejects.append((paths[i], i + 1, ids[i], reason))
                else:
                    buf_rows.append(i)
                    buf.append(arr)  # type: ignore[arg-type]
                    if len(buf) >= self.batch_size:
                        flush()
                advance(1)
            flush()
        emb = self._assemble(parts, rows, ids, paths, rejects)
        rejects.sort(key=lambda r: r[1] or 0)
        elapsed = time.perf_counter() - start
        reasons = Counter(r[3] for r in rejects)
        logger.info(
            "%s: embedded %d of %d images in %.2f s; rejected %d %s",
            self.name,
            emb.n_items,
            len(ids),
            elapsed,
            len(rejects),
            dict(reasons.most_common(5)),
        )
        stats = {
            "n_items": len(ids),
            "n_embedded": emb.n_items,
            "n_rejected": len(rejects),
            "seconds": elapsed,
        }
        return EmbedOutput(emb, make_rejects(rejects), stats)

    def _assemble(
        self,
        parts: list[np.ndarray],
        rows: list[int],
        ids: np.ndarray,
        paths: list[str | None],
        rejects: list[tuple[str | None, int | None, str | None, str]],
    ) -> Embeddings:
        params = {"embedder": self.name, **self.params}
        if not rows:
            return empty_embeddings(self.dim, self.kind, params)
        vectors = np.concatenate(parts, axis=0)
        idx = np.asarray(rows)
        if self.kind == "binary":
            return Embeddings(
                np.ascontiguousarray(vectors, dtype=np.uint8), ids[idx], "binary", params
            )
        vectors = vectors.astype(np.float32, copy=False)
        norms = np.linalg.norm(vectors, axis=1)
        ok = norms > 1e-12
        for j in np.flatnonzero(~ok):
            i = int(idx[j])
            rejects.append((paths[i], i + 1, ids[i], self.zero_reason))
        if not ok.any():
            return empty_embeddings(self.dim, self.kind, params)
        vectors = vectors[ok] / norms[ok, None]
        return Embeddings(np.ascontiguousarray(vectors), ids[idx[ok]], "dense", params)


class HashEmbedder(ImageEmbedder):
    """Perceptual hashes (pHash, dHash, wHash, aHash) from :mod:`imagehash`, packed into bytes.

    Parameters
    ----------
    kind
        ``"phash"`` (DCT), ``"dhash"`` (gradient), ``"whash"`` (Haar wavelet) or ``"ahash"``
        (mean).
    hash_size
        Side of the hash matrix: ``hash_size ** 2`` bits (8 gives the usual 64-bit hash;
        ``whash`` needs a power of two).
    n_jobs, max_pixels, base_dir, show_progress
        Decoding threads (default: all cores), bomb guard, root for relative paths, progress bar.

    Notes
    -----
    Output: :class:`~ccgraph.Embeddings` with ``kind="binary"`` and uint8 ``[n, ceil(b / 8)]``
    codes. Bit ``j`` of the hash (row-major order of imagehash's boolean matrix ``h.hash``) is
    byte ``j // 8``, bit ``7 - j % 8`` (most significant bit first, :func:`numpy.packbits`), so
    ``codes[i].tobytes().hex()`` equals ``str(h)`` for 64-bit hashes and the Hamming distance
    ``popcount(a ^ b)`` equals imagehash's ``h1 - h2``.

    For speed, JPEGs are decoded at a reduced DCT scale that keeps both sides at least 256
    pixels (except for ``whash``, whose wavelet scale depends on the full size); pHash, dHash
    and aHash work on thumbnails of at most 32 x 32, and on 40 Flickr8k photos upscaled 4x
    this changed at most 1 of 64 bits against hashing the full decode.

    References
    ----------
    .. [1] Zauner, C. (2010). Implementation and benchmarking of perceptual image hash
       functions. Master's thesis, Upper Austria University of Applied Sciences.

    Examples
    --------
    >>> HashEmbedder("dhash").params["bits"]
    64
    """

    kind = "binary"
    batch_size = 4096

    def __init__(
        self,
        kind: str = "phash",
        hash_size: int = 8,
        *,
        n_jobs: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        base_dir: str | Path | None = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__(
            n_jobs=n_jobs, max_pixels=max_pixels, base_dir=base_dir, show_progress=show_progress
        )
        self.hash_kind = check_choice("kind", kind, HASH_KINDS)
        self.hash_size = check_int("hash_size", hash_size, low=2, high=64)
        if kind == "whash" and hash_size & (hash_size - 1):
            raise ParameterError(f"`hash_size` must be a power of 2 for whash; got {hash_size}")
        self.name = self.hash_kind
        self.dim = math.ceil(self.hash_size**2 / 8)
        # wHash picks its wavelet scale from the full image size: decode at full resolution.
        self.draft = None if kind == "whash" else 256
        self._imagehash = import_optional("imagehash", "image")

    @property
    def params(self) -> dict[str, Any]:
        """Hash kind, size, bit count and the imagehash / Pillow versions."""
        import PIL

        return {
            "kind": self.hash_kind,
            "hash_size": self.hash_size,
            "bits": self.hash_size**2,
            "imagehash": self._imagehash.__version__,
            "pillow": PIL.__version__,
        }

    def _prepare(self, image: PILImage.Image) -> np.ndarray:
        ih = self._imagehash
        fn = {
            "phash": ih.phash,
            "dhash": ih.dhash,
            "whash": ih.whash,
            "ahash": ih.average_hash,
        }[self.hash_kind]
        bits = np.asarray(fn(image, hash_size=self.hash_size).hash, dtype=bool).ravel()
        return np.packbits(bits)


class PixelEmbedder(ImageEmbedder):
    r"""Raw pixel vectors of a small square thumbnail, centred and unit-normalised.

    Parameters
    ----------
    size
        The image is resized (ignoring its aspect ratio, box filter) to ``size x size``.
    grey
        Use one grey channel (ITU-R 601 luma) instead of RGB.
    n_jobs, max_pixels, base_dir, show_progress
        As for :class:`HashEmbedder`.

    Notes
    -----
    With intensities :math:`x \in [0, 1]^{d}` (``d = size^2`` or ``3 size^2``, HWC order), the
    vector is :math:`v = (x - \bar{x}) / \lVert x - \bar{x} \rVert_2` with :math:`\bar{x}`
    the image's own mean intensity, so the cosine similarity of two images is the Pearson
    correlation of their pixels: invariant to overall brightness and contrast. A uniform image
    has no direction and is rejected ("uniform image").

    Examples
    --------
    >>> PixelEmbedder(size=16, grey=True).dim
    256
    """

    version = "1"
    zero_reason = "uniform image: no pixel variation to compare"

    def __init__(
        self,
        size: int = 32,
        grey: bool = False,
        *,
        n_jobs: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        base_dir: str | Path | None = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__(
            n_jobs=n_jobs, max_pixels=max_pixels, base_dir=base_dir, show_progress=show_progress
        )
        self.size = check_int("size", size, low=2, high=512)
        self.grey = bool(grey)
        self.name = "pixels"
        self.dim = self.size * self.size * (1 if self.grey else 3)

    @property
    def params(self) -> dict[str, Any]:
        """Side, colour mode, centring and the Pillow version."""
        import PIL

        return {
            "size": self.size,
            "grey": self.grey,
            "center": "per-image mean",
            "pillow": PIL.__version__,
        }

    def _prepare(self, image: PILImage.Image) -> np.ndarray:
        from PIL import Image

        im = image.convert("L") if self.grey else image
        small = im.resize((self.size, self.size), Image.Resampling.BOX)
        x = np.asarray(small, dtype=np.float64).reshape(-1) / 255.0
        if x.max() == x.min():
            return np.zeros(x.shape, dtype=np.float32)  # rejected as uniform
        return (x - x.mean()).astype(np.float32)
