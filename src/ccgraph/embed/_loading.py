"""Robust image loading: every failure becomes a short reason string, never a crash.

:func:`load_image` opens one file with Pillow and returns an RGB image, or raises
:class:`ImageLoadError` whose ``reason`` goes into the rejects table. :func:`map_ordered` runs a
function over many items on a thread pool with a bounded window (Pillow releases the GIL while
decoding, so threads use both cores without copying images between processes).
"""

from __future__ import annotations

import hashlib
import stat
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from ccgraph.io._text import REMOTE_IMAGE, is_url

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageLoadError",
    "file_digest",
    "image_sources",
    "load_image",
    "map_ordered",
    "pixel_limit",
    "to_rgb",
]

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default guard (1024 * 1024 * 1024 // 4 // 3)
_CHUNK = 1 << 20
T = TypeVar("T")
R = TypeVar("R")


class ImageLoadError(Exception):
    """An image could not be used; ``reason`` is the short text for the rejects table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (str, Path)) and bool(pd.isna(value)))


def image_sources(
    items: pd.DataFrame, *, base_dir: str | Path | None = None
) -> tuple[list[str | None], list[str | None]]:
    """Return each item's local image path (resolved) and URL, ``None`` where absent.

    A relative ``image_path`` is resolved against ``base_dir`` when given (the catalog reader
    normally resolves paths against the configured image root already).
    """
    n = len(items)
    raw_paths = items["image_path"].tolist() if "image_path" in items.columns else [None] * n
    raw_urls = items["url"].tolist() if "url" in items.columns else [None] * n
    paths: list[str | None] = []
    for p in raw_paths:
        if _is_missing(p) or not str(p).strip():
            paths.append(None)
            continue
        if is_url(str(p)):  # kept as written (a Path would fold "//"): load_image rejects it
            paths.append(str(p).strip())
            continue
        path = Path(str(p).strip()).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        paths.append(str(path))
    urls = [None if _is_missing(u) or not str(u).strip() else str(u).strip() for u in raw_urls]
    return paths, urls


def file_digest(path: str | Path) -> str | None:
    """Return the sha256 hex digest of a file's bytes, or ``None`` if it cannot be read."""
    if not Path(path).is_file():  # a device (/dev/zero) or FIFO would be read forever
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


@contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Set Pillow's decompression-bomb limit to ``max_pixels`` for the body, then restore it.

    Inside the body Pillow's :class:`~PIL.Image.DecompressionBombWarning` is raised as an error
    (so an oversized image is rejected, not decoded); :func:`load_image` also checks the header
    size itself, so the guard holds even if other code changes Pillow's global limit meanwhile.
    """
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _composite_on_white(im: PILImage.Image) -> PILImage.Image:
    from PIL import Image

    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(im: PILImage.Image) -> PILImage.Image:
    """Convert any Pillow mode to 8-bit RGB.

    - ``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La`` and any image with a ``transparency`` entry
      (palette or greyscale with ``tRNS``) are composited over white.
    - 16- and 32-bit integer greyscale (``I;16*``, ``I``) is scaled from ``[0, 65535]`` to
      ``[0, 255]`` (Pillow's own conversion would clip everything above 255 to white).
    - Float greyscale (``F``) is taken as ``[0, 1]`` if its maximum is at most 1, else as
      ``[0, 255]``, and clipped.
    - ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` use Pillow's conversion.
    """
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        return _composite_on_white(im)
    if mode.startswith("I"):
        arr = np.asarray(im, dtype=np.float64)
        grey = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        grey = np.clip(np.nan_to_num(arr * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return im.convert("RGB")


def load_image(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: int | None = None
) -> PILImage.Image:
    """Open an image file and return it fully decoded as an upright 8-bit RGB image.

    Parameters
    ----------
    path
        The file.
    max_pixels
        Decompression-bomb guard: an image whose header declares more pixels is rejected
        before any pixel is decoded.
    draft
        For JPEG, let the decoder downscale by a power of two while keeping both sides at least
        this many pixels (much faster for large photos); ``None`` decodes at full size.

    Raises
    ------
    ImageLoadError
        With a short reason: a URL instead of a local path (images are never downloaded),
        file not found, empty file, not an image, too many pixels, truncated or corrupt data.

    Notes
    -----
    The EXIF ``Orientation`` tag is applied (:func:`PIL.ImageOps.exif_transpose`); a broken
    EXIF block is ignored rather than rejecting the image. Modes are converted by
    :func:`to_rgb`. Colour profiles (ICC) are not applied.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if is_url(str(path)):
        raise ImageLoadError(REMOTE_IMAGE)
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ImageLoadError("file not found") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read file ({exc.strerror or exc})") from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise ImageLoadError(f"invalid file path ({exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImageLoadError("not a regular file")
    if st.st_size == 0:
        raise ImageLoadError("empty file (0 bytes)")
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageLoadError(
                    f"too many pixels ({w}x{h} = {w * h:,} > max_pixels {max_pixels:,}; "
                    "decompression-bomb guard)"
                )
            if draft is not None and im.format == "JPEG":
                im.draft(None, (draft, draft))
            im.load()
            try:
                upright = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block must not lose the image
                upright = im
            rgb = to_rgb(upright if upright is not None else im)
            if rgb is im:
                rgb = im.copy()
            return rgb
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError("not a readable image (unknown format or corrupt header)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"too many pixels ({exc}; decompression-bomb guard)") from None
    except MemoryError:
        raise ImageLoadError("out of memory while decoding") from None
    except Exception as exc:  # Pillow plugins raise many types for bad data
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower():
            raise ImageLoadError(f"truncated image ({msg})") from None
        raise ImageLoadError(f"corrupt image data ({type(exc).__name__}: {msg})") from None


def map_ordered(
    fn: Callable[[T], R], items: Iterable[T], *, n_jobs: int, window: int | None = None
) -> Iterator[R]:
    """Yield ``fn(x)`` for each item in order, computed by ``n_jobs`` threads.

    At most ``window`` (default ``4 * n_jobs``) calls are in flight, so memory stays bounded
    and the consumer's own work (for example a CNN batch) overlaps with decoding.
    """
    if n_jobs <= 1:
        for x in items:
            yield fn(x)
        return
    limit = window or 4 * n_jobs
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="ccgraph-img") as pool:
        pending: deque[Future[R]] = deque()
        for x in items:
            pending.append(pool.submit(fn, x))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
