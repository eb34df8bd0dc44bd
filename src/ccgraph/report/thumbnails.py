"""Local JPEG thumbnails for the report, cached by the content hash of the source image.

A thumbnail is made once per distinct image content (and size / quality setting) and kept in a
cache folder; the report copies the ones it shows into its own ``assets/thumbs/``. Missing,
unreadable or corrupt files give ``None`` and the report falls back to a text card.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import NamedTuple

from ccgraph._deps import import_optional
from ccgraph._validation import check_int

__all__ = ["Thumb", "ThumbnailStore", "content_key", "make_thumbnail"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def content_key(path: str | Path, *, max_side: int = 160, quality: int = 80) -> str | None:
    """Hex digest naming the thumbnail of ``path`` (its bytes plus the settings), or ``None``.

    Examples
    --------
    >>> content_key("/no/such/file.jpg") is None
    True
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{max_side}:{quality}:".encode())
    try:
        if not Path(path).is_file():  # a device (/dev/zero) or FIFO would be read forever
            return None
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _render(source: Path, target: Path, max_side: int, quality: int) -> bool:
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                opened.draft("RGB", (max_side, max_side))
                im = ImageOps.exif_transpose(opened)
                if im.mode in ("RGBA", "LA", "P", "PA"):
                    im = im.convert("RGBA")
                    bg = Image.new("RGB", im.size, (255, 255, 255))
                    bg.paste(im, mask=im.getchannel("A"))
                    im = bg
                elif im.mode != "RGB":
                    im = im.convert("RGB")
                im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                if min(im.size) < 1:
                    return False
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                im.save(tmp, "JPEG", quality=quality, optimize=True, progressive=False)
                os.replace(tmp, target)
                return True
    except Exception as exc:  # Pillow raises many types for bad files
        log.info("no thumbnail for %s: %s", source, exc)
        return False


def make_thumbnail(
    source: str | Path, cache_dir: str | Path, *, max_side: int = 160, quality: int = 80
) -> Path | None:
    """Return the cached JPEG thumbnail of ``source``, making it if needed.

    Parameters
    ----------
    source
        Image file (any format Pillow reads; EXIF orientation is applied, transparency is
        flattened onto white).
    cache_dir
        Folder of cached thumbnails, named ``<content hash>.jpg``; created if absent.
    max_side
        Longest side of the thumbnail in pixels (aspect ratio kept, never enlarged).
    quality
        JPEG quality (1-95).

    Returns
    -------
    pathlib.Path or None
        The thumbnail, or ``None`` when the file is missing, unreadable or not a valid image.
    """
    max_side = check_int("max_side", max_side, low=8, high=4096)
    quality = check_int("quality", quality, low=1, high=95)
    import_optional("PIL", "report")
    key = content_key(source, max_side=max_side, quality=quality)
    if key is None:
        return None
    cache = Path(cache_dir)
    target = cache / f"{key}.jpg"
    if target.exists():
        return target
    failed = cache / f"{key}.bad"
    if failed.exists():
        return None
    cache.mkdir(parents=True, exist_ok=True)
    if _render(Path(source), target, max_side, quality):
        return target
    failed.touch()
    return None


class Thumb(NamedTuple):
    """A thumbnail inside the report: relative URL and pixel size."""

    url: str
    width: int
    height: int


class ThumbnailStore:
    """Thumbnails of the items a report shows, copied once into ``assets/thumbs``.

    Parameters
    ----------
    assets_dir
        The report's ``assets/`` folder.
    cache_dir
        The thumbnail cache (kept between report builds).
    max_side, quality
        As in :func:`make_thumbnail`.
    """

    def __init__(
        self, assets_dir: Path, cache_dir: Path, *, max_side: int = 160, quality: int = 80
    ) -> None:
        self.folder = assets_dir / "thumbs"
        self.cache_dir = cache_dir
        self.max_side = max_side
        self.quality = quality
        self._done: dict[str, Thumb | None] = {}

    def get(self, source: str | Path | None) -> Thumb | None:
        """Return the thumbnail of ``source`` (URL ``assets/thumbs/<hash>.jpg``), or ``None``."""
        if source is None or str(source) == "":
            return None
        key = str(source)
        if key in self._done:
            return self._done[key]
        thumb = make_thumbnail(source, self.cache_dir, max_side=self.max_side, quality=self.quality)
        out = None
        if thumb is not None:
            from PIL import Image

            self.folder.mkdir(parents=True, exist_ok=True)
            dest = self.folder / thumb.name
            if not dest.exists():
                shutil.copyfile(thumb, dest)
            with Image.open(dest) as im:
                w, h = im.size
            out = Thumb(f"assets/thumbs/{thumb.name}", int(w), int(h))
        self._done[key] = out
        return out

    @property
    def count(self) -> int:
        """Number of distinct thumbnails copied into the report."""
        return len({t.url for t in self._done.values() if t is not None})
