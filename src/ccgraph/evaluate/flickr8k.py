"""Flickr8k as a tagged catalog: tags are content words of the captions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ccgraph._validation import check_int
from ccgraph.containers import Catalog
from ccgraph.evaluate.datasets import resolve_data_dir
from ccgraph.exceptions import InputError

__all__ = ["CAPTION_STOPWORDS", "caption_tags", "load_flickr8k"]

#: English function words and the caption boilerplate of Flickr8k ("a", "is", "are", colours of
#: grammar, not content). Content words left after removing these become the image's tags.
CAPTION_STOPWORDS = frozenset(
    """a an the and or but of in on at to for from with without by into onto over under up down
    out off near next behind front top bottom through across along around about above below
    between while as is are was were be been being am has have had do does did doing this that
    these those there here it its it's he she they them their his her him we you i me my our your
    who whom which what where when why how some any each other another one two three four five
    several many much more most few lot lots very just not no yes so too than then also only own
    same such can will would should could may might must shall all both either neither if because
    while during before after again further once s t very still even back away together onto
    something someone somebody thing things stand stands standing sit sits sitting look looks
    looking look get gets getting go goes going make makes making take takes taking while
    other another picture image photo camera""".split()
)

_WORD = re.compile(r"[a-z]+")


def caption_tags(
    captions: pd.DataFrame,
    *,
    stopwords: Iterable[str] = CAPTION_STOPWORDS,
    min_captions: int = 2,
) -> pd.DataFrame:
    """Tags from captions: content words that ``min_captions`` captions of the image use.

    Parameters
    ----------
    captions
        Table ``image, caption`` (several captions per image).
    stopwords
        Words that are never tags.
    min_captions
        A word becomes a tag of the image when at least this many of its captions contain it
        (one annotator's passing word is noise).

    Returns
    -------
    pandas.DataFrame
        Long tags table ``id, tag, tag_raw, source, provider, weight`` (``source = "user"``,
        ``weight`` = share of the image's captions that use the word).

    Examples
    --------
    >>> caps = pd.DataFrame({"image": ["a", "a", "a"],
    ...                      "caption": ["A dog runs", "The dog jumps", "A brown dog runs"]})
    >>> caption_tags(caps)["tag"].tolist()
    ['dog', 'runs']
    """
    min_captions = check_int("min_captions", min_captions, low=1)
    stop = frozenset(stopwords)
    rows: list[tuple[str, str]] = []
    pairs = zip(captions["image"].astype(str), captions["caption"].astype(str), strict=True)
    for image, caption in pairs:
        words = {w for w in _WORD.findall(caption.lower()) if len(w) > 1 and w not in stop}
        rows.extend((image, w) for w in words)
    long = pd.DataFrame(rows, columns=["id", "tag"])
    n_caps = captions.groupby(captions["image"].astype(str)).size()
    counts = long.groupby(["id", "tag"], sort=True).size().rename("n").reset_index()
    counts = counts[counts["n"] >= min_captions]
    # numpy division: an empty selection keeps a float dtype (pandas infers str for it)
    per_image = counts["id"].map(n_caps).to_numpy(np.float64)
    weight = (counts["n"].to_numpy(np.float64) / per_image).astype(np.float32)
    return pd.DataFrame(
        {
            "id": counts["id"].to_numpy(),
            "tag": counts["tag"].to_numpy(),
            "tag_raw": counts["tag"].to_numpy(),
            "source": "user",
            "provider": "flickr8k-captions",
            "weight": weight,
        }
    ).reset_index(drop=True)


def load_flickr8k(
    path: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    min_captions: int = 2,
) -> Catalog:
    """The 1,000 Flickr8k images as a catalog whose tags are content words of their captions.

    Titles and descriptions are left empty on purpose: the captions are the ground truth, so
    they must not reach any embedding (score these tags on image-only graphs).

    Parameters
    ----------
    path
        The ``flickr8k-1000`` folder (default: inside the shared data folder).
    data_dir
        The shared data folder, used when ``path`` is None.
    min_captions
        See :func:`caption_tags`.
    """
    root = Path(path) if path is not None else resolve_data_dir(data_dir) / "flickr8k-1000"
    cap_path, img_dir = root / "captions.txt", root / "images"
    if not cap_path.is_file() or not img_dir.is_dir():
        raise InputError(f"{root} must hold captions.txt and images/ (the flickr8k-1000 folder)")
    captions = pd.read_csv(cap_path, dtype=str, keep_default_na=False)
    if not {"image", "caption"} <= set(captions.columns):
        raise InputError(f"{cap_path}: expected the header `image,caption`")
    images = sorted(p.name for p in img_dir.glob("*.jpg"))
    captions = captions[captions["image"].isin(set(images))]
    items = pd.DataFrame(
        {
            "id": images,
            "title": "",
            "description": "",
            "provider": "flickr8k",
            "image_path": [str(img_dir / name) for name in images],
        }
    )
    tags = caption_tags(captions, min_captions=min_captions)
    if tags.empty and len(captions):
        most = int(captions.groupby("image").size().max())
        raise InputError(
            f"{cap_path}: no word is in {min_captions} captions of one image (an image has at "
            f"most {most}); lower `evaluate.min_captions` (`min_captions`)"
        )
    return Catalog(items, tags, params={"path": str(root), "tags": "caption content words"})
