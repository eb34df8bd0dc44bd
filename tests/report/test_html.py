from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ccgraph.exceptions import InputError, OutputError, ParameterError
from ccgraph.report import write_report
from tests.report._html import parse


def check_page(path: Path, root: Path) -> None:
    """Accessibility and self-containment rules every page must keep."""
    page = parse(path)
    html = page.all("html")
    assert html and html[0].get("lang") == "en"
    assert not page.all("script") and not page.all("iframe")
    levels = page.headings()
    assert levels[0] == 1 and levels.count(1) == 1
    for a, b in pairwise(levels):
        assert b <= a + 1, f"{path.name}: heading h{a} followed by h{b}"
    for img in page.all("img"):
        assert img.get("alt"), f"{path.name}: <img src={img.get('src')}> has no alt text"
    for i, (tag, _) in enumerate(page.tags):
        if tag == "table":
            assert page.tags[i + 1][0] == "caption", f"{path.name}: table without caption"
    resources = [a.get("src") for a in page.all("img")]
    resources += [a.get("href") for a in page.all("link")]
    for url in resources:
        assert url and not urlparse(url).scheme and not url.startswith("/"), url
        assert (root / url).is_file(), f"{path.name}: missing resource {url}"
    for a in page.all("a"):
        href = a.get("href") or ""
        if urlparse(href).scheme in ("http", "https"):
            assert "noopener" in (a.get("rel") or "")
            continue
        target = href.split("#")[0]
        if target:
            assert (root / target).is_file(), f"{path.name}: broken link {href}"


def test_synthetic_run_report_structure(synthetic_run):
    index = write_report(synthetic_run, max_clusters=3, thumbnails=10, n_similar=4)
    root = index.parent
    assert root == synthetic_run / "report" and index.name == "index.html"
    pages = sorted(root.glob("*.html"))
    for p in pages:
        check_page(p, root)
    text = index.read_text()
    # titles are escaped, not interpreted
    assert "<b>" not in text and "Photo &lt;b&gt;" in text
    # URL-only items are shown as cards with their tags, never as images
    srcs = [i["src"] for i in parse(index).all("img")]
    assert srcs == [
        "assets/plots/cluster_sizes.png",
        "assets/plots/resolution_sweep.png",
        "assets/plots/map.png",
    ]
    assert 'class="card"' in text
    # rejects grouped by reason: 2 x "missing id", 1 x "bad url"
    assert re.search(r"<td>read</td><td>missing id</td><td>2</td>", text)
    # the three largest clusters each got a page, in size order
    sizes = pd.read_parquet(synthetic_run / "items.parquet")["cluster"].value_counts()
    expected = sorted(sizes.index, key=lambda c: (-sizes[c], c))[:3]
    assert {p.name for p in pages} == {"index.html", *(f"cluster-{c}.html" for c in expected)}
    assert "cluster sizes by rank" in text.lower()
    # untagged items (even rows) are sampled for the inferred-tag section
    assert "had no tags of their own" in text


def test_similar_panels_show_heaviest_neighbours_in_order(synthetic_run):
    index = write_report(synthetic_run, max_clusters=1, n_similar=3, n_panels=1)
    with np.load(synthetic_run / "graph.npz") as z:
        import scipy.sparse as sp

        a = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        ids = z["ids"].astype(str)
    text = index.read_text()
    panel = text[text.index('id="similar"') : text.index('id="inferred"')]
    q = int(re.search(r"Most similar to “(?:<bdi>)?Photo &lt;b&gt;(\d+)", panel).group(1))
    row = a.getrow(q).toarray().ravel()
    best = sorted(np.flatnonzero(row), key=lambda j: (-row[j], j))[:3]
    shown = [int(m) for m in re.findall(r"example.org/item(\d+)", panel)]
    assert shown[0] == q and shown[1:4] == best
    weights = [float(w) for w in re.findall(r"weight ([0-9.]+)", panel)]
    assert weights == pytest.approx([round(row[j], 3) for j in best], abs=1e-3)
    assert ids[q] == f"item{q:04d}"


def test_images_thumbnailed_and_corrupt_ones_become_cards(synthetic_run, tmp_path):
    items = pd.read_parquet(synthetic_run / "items.parquet")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (320, 200), (30, 120, 200)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    items["image_path"] = [
        str(good) if i % 2 else ("bad.jpg" if i % 4 else "") for i in range(len(items))
    ]
    items.to_parquet(synthetic_run / "items.parquet", index=False)
    index = write_report(synthetic_run, image_root=tmp_path, cache_dir=tmp_path / "cache")
    page = parse(index)
    imgs = [i for i in page.all("img") if "thumbs" in (i.get("src") or "")]
    assert imgs and all(i.get("width") == "160" and i.get("height") == "100" for i in imgs)
    assert len({i["src"] for i in imgs}) == 1  # one distinct picture, one file
    assert len(list((index.parent / "assets" / "thumbs").iterdir())) == 1
    assert 'class="card"' in index.read_text()  # corrupt and missing images fall back
    assert (tmp_path / "cache" / "thumbnails").is_dir()


def test_rebuild_replaces_report_and_refuses_foreign_folders(synthetic_run, tmp_path):
    out = tmp_path / "rep"
    write_report(synthetic_run, out=out)
    (out / "stale.html").write_text("old")
    write_report(synthetic_run, out=out)
    assert not (out / "stale.html").exists() and (out / "index.html").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not a ccgraph report"):
        write_report(synthetic_run, out=foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(OutputError, match="run directory itself"):
        write_report(synthetic_run, out=synthetic_run)


def test_a_mount_point_as_out_is_refused_before_writing(synthetic_run, tmp_path, monkeypatch):
    import os

    mount = tmp_path / "disk"
    mount.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real(p))
    with pytest.raises(OutputError, match="mount point"):
        write_report(synthetic_run, out=mount)
    assert os.listdir(mount) == [] and not list(tmp_path.glob(".*tmp*"))


def test_bad_inputs_raise_named_errors(synthetic_run, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_report(tmp_path / "nothing")
    with pytest.raises(ParameterError, match="`thumbnails`"):
        write_report(synthetic_run, thumbnails=-1)
    (synthetic_run / "graph.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"graph\.npz"):
        write_report(synthetic_run)
    (synthetic_run / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=r"manifest\.json"):
        write_report(synthetic_run)


def test_minimal_run_without_optional_files(synthetic_run):
    for name in ("tags.parquet", "clusters.parquet", "rejects.parquet"):
        (synthetic_run / name).unlink()
    (synthetic_run / "manifest.json").write_text(json.dumps({}))
    index = write_report(synthetic_run)
    check_page(index, index.parent)
    assert "This run inferred no tags." in index.read_text()


def test_unwritable_out_and_a_file_as_image_root_are_named(synthetic_run, tmp_path):
    # before: an `out` whose parent cannot hold folders raised a raw OSError (a traceback);
    # an `image_root` that is a file was accepted and every image silently became a card
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    with pytest.raises(OutputError, match=r"afile/rep: .*choose a writable `out`"):
        write_report(synthetic_run, out=blocker / "rep")
    assert blocker.read_text() == "mine"
    with pytest.raises(ParameterError, match=r"`image_root` '.*afile' is not a folder"):
        write_report(synthetic_run, image_root=blocker)


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg onload=alert(1)>",
    "' onmouseover='alert(1)",
    "</h4><iframe src=x>",
    "<!-- open comment",
    "a\x00b\x07c\x1b[31m\ufffe",
]


def test_hostile_strings_are_escaped_and_control_characters_dropped(synthetic_run):
    # before: a NUL / BEL / ESC in a title or tag reached the HTML (invalid characters) and an
    # inferred confidence of inf raised OverflowError in the template (a traceback)
    items = pd.read_parquet(synthetic_run / "items.parquet")
    n = len(items)
    items["title"] = [HOSTILE[i % len(HOSTILE)] + "مرحبا 🎉" for i in range(n)]
    items["provider"] = HOSTILE[1]
    items["license"] = HOSTILE[3]
    urls = ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,<script>x</script>"]
    items["url"] = [urls[i % 3] if i % 2 else 'https://ok.example/"onclick="x' for i in range(n)]
    items.to_parquet(synthetic_run / "items.parquet", index=False)
    tags = pd.read_parquet(synthetic_run / "tags.parquet")
    tags["tag"] = [HOSTILE[i % len(HOSTILE)] for i in range(len(tags))]
    inferred = np.flatnonzero(tags["source"] == "inferred")
    bad_conf = [np.inf, -np.inf, np.nan, 7.0, -3.0]
    for j, row in enumerate(inferred):
        tags.loc[row, "confidence"] = bad_conf[j % len(bad_conf)]
    tags.to_parquet(synthetic_run / "tags.parquet", index=False)
    clusters = pd.read_parquet(synthetic_run / "clusters.parquet")
    clusters["label"] = HOSTILE[4]
    clusters["top_tags"] = [[HOSTILE[0], HOSTILE[6]]] * len(clusters)
    clusters.to_parquet(synthetic_run / "clusters.parquet", index=False)

    index = write_report(synthetic_run, max_clusters=4, thumbnails=8, n_untagged=20)
    pages = sorted(index.parent.glob("*.html"))
    assert len(pages) >= 2
    for p in pages:
        check_page(p, index.parent)
        page = parse(p)
        injected = {"script", "svg", "iframe", "textarea"} & {t for t, _ in page.tags}
        assert not injected, f"{p.name}: {injected}"
        for tag, attrs in page.tags:
            assert not any(k.startswith("on") for k in attrs), (p.name, tag, attrs)
            if tag == "a":
                assert urlparse(attrs.get("href") or "").scheme in ("", "http", "https")
            if tag == "img":
                assert attrs.get("src") != "x"
        text = p.read_text(encoding="utf-8")
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe]", text), p.name
        assert "<!-- open" not in text
        for width in re.findall(r"width: (-?\d+)%", text):
            assert 0 <= int(width) <= 100
    text = index.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "مرحبا 🎉" in text
    assert "abc[31m" in text  # the title survives without its control characters


def test_a_very_long_cluster_label_is_cut_in_headings(synthetic_run):
    # before: a 5,000-character label (long tags) made a 5,000-character heading
    clusters = pd.read_parquet(synthetic_run / "clusters.parquet")
    clusters["label"] = "lighthouse " * 500
    clusters.to_parquet(synthetic_run / "clusters.parquet", index=False)
    index = write_report(synthetic_run, max_clusters=4, thumbnails=8, n_untagged=20)
    for p in sorted(index.parent.glob("*.html")):
        page = p.read_text(encoding="utf-8")
        for heading in re.findall(r"<h[1-4][^>]*>(.*?)</h[1-4]>", page, flags=re.S):
            text = re.sub(r"<[^>]+>", "", heading)
            assert "lighthouse" not in text or len(text) < 200, (p.name, len(text))
        assert "lighthouse lighthouse" in page  # the label is still shown, cut


def test_summary_says_which_embedding_found_the_duplicate_groups(synthetic_run):
    """Groups found from captions are named as caption duplicates; no search, no groups."""
    path = synthetic_run / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.setdefault("stages", {})["duplicates"] = {"modality": "text", "n_duplicates": 51}
    path.write_text(json.dumps(manifest))
    text = write_report(synthetic_run, max_clusters=1, thumbnails=2, n_similar=2).read_text()
    facts = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", text))
    assert facts["Near-duplicate groups"] == (
        "51 duplicates, found from the text embeddings; caption duplicates, not image duplicates"
    )
    manifest["stages"]["duplicates"] = {"enabled": False, "modality": None}
    path.write_text(json.dumps(manifest))
    text = write_report(synthetic_run, max_clusters=1, thumbnails=2, n_similar=2).read_text()
    facts = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", text))
    assert facts["Near-duplicate groups"] == "not searched"
