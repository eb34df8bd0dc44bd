"""``write_report``: a self-contained static HTML report of a finished run.

The report is one folder (``index.html``, one page per large cluster and ``assets/``) with
relative links only: no server, no network, no JavaScript, no external CSS or fonts. It is
built in a temporary sibling folder and moved into place when complete.
"""

from __future__ import annotations

import errno
import logging
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ccgraph import __version__
from ccgraph._deps import import_optional
from ccgraph._random import RngLike, derive_seed
from ccgraph._validation import check_int
from ccgraph.exceptions import OutputError, ParameterError
from ccgraph.io.atomic import (
    OUT_OF_SPACE,
    check_name_length,
    check_not_mount_point,
    make_temp_dir,
    output_error,
    remove_stale_temp_dirs,
    swap_directory,
)
from ccgraph.report import plots
from ccgraph.report._evaluation import markdown_to_html, metrics_tables
from ccgraph.report._load import RunData, load_run_dir
from ccgraph.report._views import (
    Items,
    _short,
    counts_table,
    duplicates_fact,
    rejects_table,
    timings_table,
)
from ccgraph.report.layout import map_layout
from ccgraph.report.select import (
    cluster_sizes_by_level,
    default_level,
    large_clusters,
    pick_members,
    resolution_sweep,
    sample_untagged,
    top_neighbours,
)
from ccgraph.report.thumbnails import ThumbnailStore

__all__ = ["write_report"]

log = logging.getLogger(__name__)

MARKER = ".ccgraph-report"
_STRIP = 6
_MAP_ITEMS = 20_000
#: A cluster's label in headings and titles is cut to this many characters.
_LABEL_MAX = 80


#: C0/C1 control characters other than tab and newline, and the non-characters U+FFFE/U+FFFF:
#: invalid in HTML, so a NUL or BEL in a title or tag is dropped from the page.
_CONTROL = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])
_CONTROL.update(dict.fromkeys([0xFFFE, 0xFFFF]))


def _printable(value: Any) -> Any:
    """Jinja ``finalize``: drop the characters HTML forbids from every printed string."""
    if isinstance(value, str):
        cleaned = value.translate(_CONTROL)
        return type(value)(cleaned) if cleaned != value else value
    return value


def _seed(base: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([base, *keys])


def _image_roots(run: RunData, image_root: str | Path | None) -> list[Path]:
    roots = [Path(image_root).expanduser()] if image_root is not None else []
    roots += [run.path, run.path.parent]
    data = run.manifest.get("config", {}).get("data", {}).get("path")
    for p in data if isinstance(data, list) else [data]:
        if isinstance(p, str) and p:
            q = Path(p).expanduser()
            for base in [q] if q.is_absolute() else [run.path / q, run.path.parent / q]:
                roots.append(base if base.is_dir() else base.parent)
    roots.append(Path.cwd())
    return list(dict.fromkeys(roots))


#: errno values of a failed write (not of an unreadable image, which the thumbnails skip).
_OUTPUT_ERRNOS = OUT_OF_SPACE | {errno.EROFS}


def _stage_dir(out_dir: Path) -> Path:
    """A fresh temporary folder beside ``out_dir``, after removing those of killed writers."""
    remove_stale_temp_dirs(out_dir)
    try:
        return make_temp_dir(out_dir)
    except OutputError as exc:
        if not isinstance(exc.__cause__, OSError):  # a name too long: the message says so
            raise
        raise OutputError(
            f"cannot write the report beside {out_dir}: {exc.__cause__.strerror or exc}; "
            "choose a writable `out` folder (`ccgraph report --out`)"
        ) from exc


def _check_out(out: Path, run_dir: Path) -> None:
    check_name_length(out)
    check_not_mount_point(out)
    if out.resolve() == run_dir.resolve():
        raise OutputError(f"`out` must not be the run directory itself ({out})")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise OutputError(
            f"{out} exists and is not a ccgraph report; choose another `out` or remove it"
        )


def _panel(items: Items, adjacency: Any, row: int, n: int) -> dict[str, Any]:
    idx, w = top_neighbours(adjacency, [row], n)[0]
    return {
        "query": items.view(row),
        "neighbours": [items.view(int(j), weight=float(x)) for j, x in zip(idx, w, strict=True)],
    }


def _panel_queries(big: Any, items: Items, n_panels: int, seed: int) -> list[int]:
    """One representative per large cluster (preferring items with an image), then random."""
    chosen: list[int] = []
    for reps in big["representative_ids"]:
        rows = items.index_of(reps)
        if rows:
            with_image = [r for r in rows if items.paths[r]]
            chosen.append((with_image or rows)[0])
        if len(chosen) >= n_panels:
            return chosen
    degree = np.diff(items.run.adjacency.indptr)
    pool = np.setdiff1d(np.flatnonzero(degree > 0), chosen)
    k = min(n_panels - len(chosen), len(pool))
    if k > 0:
        chosen += np.sort(_seed(seed, 2).choice(pool, size=k, replace=False)).tolist()
    return chosen


def write_report(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    max_clusters: int = 30,
    thumbnails: int = 24,
    n_similar: int = 12,
    n_panels: int = 6,
    n_untagged: int = 12,
    cache_dir: str | Path | None = None,
    image_root: str | Path | None = None,
    rng: RngLike = 0,
) -> Path:
    """Write the HTML report of the run directory ``run_dir``.

    Parameters
    ----------
    run_dir
        A finished run directory (``items.parquet``, ``graph.npz``, ``manifest.json``, and
        optionally ``tags.parquet``, ``clusters.parquet``, ``rejects.parquet``, ``evaluation/``).
    out
        Report folder (default ``RUN_DIR/report``); replaced if it holds an earlier report.
    max_clusters
        Largest clusters of the default level given their own page.
    thumbnails
        Members shown on each cluster page's contact sheet.
    n_similar
        Neighbours shown in each "similar images" panel (heaviest edges first).
    n_panels
        "Similar images" panels on the index page.
    n_untagged
        Sampled untagged items shown with their inferred tags.
    cache_dir
        Thumbnail cache kept between builds (default: ``.<out name>.cache`` beside ``out``).
    image_root
        Extra folder against which relative ``image_path`` values are resolved (tried first;
        then the run directory, its parent, the config's data path and the working directory).
    rng
        Seed of the samples shown (members, panels, untagged items) and of the map layout.

    Returns
    -------
    pathlib.Path
        The report's ``index.html``.

    Raises
    ------
    InputError
        The run directory is missing or a file in it cannot be read.
    OutputError
        ``out`` exists and is not an earlier ccgraph report.
    """
    max_clusters = check_int("max_clusters", max_clusters, low=0)
    thumbnails = check_int("thumbnails", thumbnails, low=0)
    n_similar = check_int("n_similar", n_similar, low=0)
    n_panels = check_int("n_panels", n_panels, low=0)
    n_untagged = check_int("n_untagged", n_untagged, low=0)
    seed = derive_seed(rng)
    if image_root is not None and not Path(image_root).expanduser().is_dir():
        raise ParameterError(
            f"`image_root` {str(image_root)!r} is not a folder; give the folder that relative "
            "image paths resolve against (`ccgraph report --image-root`)"
        )
    jinja2 = import_optional("jinja2", "report")
    run = load_run_dir(run_dir)
    out_dir = Path(out).expanduser() if out is not None else run.path / "report"
    _check_out(out_dir, run.path)
    cache = (
        Path(cache_dir).expanduser()
        if cache_dir is not None
        else out_dir.parent / f".{out_dir.name}.cache"
    )
    tmp = _stage_dir(out_dir)
    try:
        (tmp / "assets" / "plots").mkdir(parents=True)
        store = ThumbnailStore(tmp / "assets", cache / "thumbnails")
        items = Items(run, store, image_roots=_image_roots(run, image_root))
        pages = _build(
            run, items, tmp, max_clusters, thumbnails, n_similar, n_panels, n_untagged, seed
        )
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("ccgraph.report", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=_printable,
        )
        for name, (template, ctx) in pages.items():
            html = env.get_template(template).render(version=__version__, **ctx)
            (tmp / name).write_text(html, encoding="utf-8")
        css = resources.files("ccgraph.report").joinpath("templates", "style.css").read_text()
        (tmp / "assets" / "style.css").write_text(css, encoding="utf-8")
        (tmp / MARKER).write_text(f"ccgraph {__version__} report of {run.path}\n")
        swap_directory(tmp, out_dir, exists=out_dir.exists())
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
            raise output_error(out_dir, exc) from exc
        raise
    log.info("report written to %s (%d thumbnails)", out_dir, store.count)
    return out_dir / "index.html"


def _build(
    run: RunData,
    items: Items,
    folder: Path,
    max_clusters: int,
    thumbnails: int,
    n_similar: int,
    n_panels: int,
    n_untagged: int,
    seed: int,
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Select everything shown, make plots and thumbnails; return page name -> context."""
    man = run.manifest
    level = default_level(run.items, man)
    big = large_clusters(run.items, run.clusters, level=level, max_clusters=max_clusters)
    adjacency = run.adjacency
    labels = items.clusters

    figures = []
    sizes = cluster_sizes_by_level(run.items)
    alt = plots.size_distribution_plot(sizes, folder / "assets/plots/cluster_sizes.png")
    figures.append(("assets/plots/cluster_sizes.png", alt, "Cluster size distribution"))
    sweep = resolution_sweep(man, run.items)
    if sweep is not None:
        alt = plots.resolution_sweep_plot(sweep, folder / "assets/plots/resolution_sweep.png")
        figures.append(("assets/plots/resolution_sweep.png", alt, "Resolution sweep"))
    index, xy = map_layout(adjacency, labels, max_items=_MAP_ITEMS, rng=seed)
    alt = plots.cluster_map_plot(
        xy,
        labels[index],
        folder / "assets/plots/map.png",
        highlight=[int(c) for c in big["cluster"][:20]],
        n_total=run.n_items,
    )
    map_figure = ("assets/plots/map.png", alt, "Map of items coloured by cluster")

    members_of = {int(c): np.flatnonzero(labels == c) for c in big["cluster"]}
    shown: dict[int, np.ndarray] = {}
    for k, row in enumerate(big.itertuples()):
        reps = items.index_of(row.representative_ids)
        shown[row.cluster] = pick_members(
            members_of[row.cluster], reps, max(thumbnails, 1), rng=_seed(seed, 1, k)
        )
    queries = _panel_queries(big, items, n_panels, seed)
    untagged, really_untagged = sample_untagged(run.tags, items.ids, n_untagged, rng=_seed(seed, 3))
    wanted = {int(i) for s in shown.values() for i in s} | set(queries) | set(untagged.tolist())
    for q in queries + [int(s[0]) for s in shown.values() if len(s)]:
        wanted.update(top_neighbours(adjacency, [q], n_similar)[0][0].tolist())
    items.load_tags(wanted)

    nav = [
        ("summary", "Run summary"),
        ("clusters", "Clusters"),
        ("similar", "Similar images"),
        ("inferred", "Inferred tags"),
    ]
    eval_ctx = _evaluation(run, folder)
    if eval_ctx is not None:
        nav.append(("evaluation", "Evaluation"))
    cluster_rows = []
    pages: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in big.itertuples():
        members = shown[row.cluster]
        page = f"cluster-{row.cluster}.html"
        scores = list(row.top_tag_scores) + [None] * len(row.top_tags)
        tags = list(zip(row.top_tags, scores[: len(row.top_tags)], strict=True))
        info = {
            "cluster": row.cluster,
            "page": page,
            "size": row.size,
            "label": _short(
                row.label or ", ".join(row.top_tags[:3]) or f"cluster {row.cluster}",
                _LABEL_MAX,
            ),
            "top_tags": tags,
            "density": row.density,
            "conductance": row.conductance,
            "strip": [items.view(i) for i in members[:_STRIP]],
        }
        cluster_rows.append(info)
        rep_rows = set(items.index_of(row.representative_ids))
        pages[page] = (
            "cluster.html",
            {
                "title": f"Cluster {row.cluster}: {info['label']}",
                "c": info,
                "representatives": [items.view(i) for i in members if i in rep_rows],
                "sheet": [items.view(i) for i in members[:thumbnails]],
                "similar": _panel(items, adjacency, int(members[0]), n_similar)
                if len(members)
                else None,
                "level": level,
            },
        )
    counts = man.get("counts", {})
    summary = {
        "data_path": man.get("config", {}).get("data", {}).get("path", ""),
        "data_format": man.get("config", {}).get("data", {}).get("format", ""),
        "created": man.get("created", ""),
        "ccgraph_version": man.get("ccgraph_version", ""),
        "seed": man.get("seed", ""),
        "n_items": run.n_items,
        "n_edges": int(adjacency.nnz // 2),
        "n_rejects": len(run.rejects),
        "duplicates": duplicates_fact(man.get("stages", {}).get("duplicates")),
        "counts": counts_table(counts) if counts else None,
        "rejects": rejects_table(run.rejects),
        "timings": timings_table(man.get("timings_s", {})) if man.get("timings_s") else None,
    }
    pages["index.html"] = (
        "index.html",
        {
            "title": f"ccgraph run report: {run.path.name}",
            "nav": nav,
            "summary": summary,
            "figures": figures,
            "map_figure": map_figure,
            "clusters": cluster_rows,
            "n_clusters": len(np.unique(labels)),
            "level": level,
            "panels": [_panel(items, adjacency, q, n_similar) for q in queries],
            "untagged": [items.view(i) for i in untagged],
            "really_untagged": really_untagged,
            "evaluation": eval_ctx,
        },
    )
    return pages


def _evaluation(run: RunData, folder: Path) -> dict[str, Any] | None:
    if run.evaluation is None and run.evaluation_md is None and not run.evaluation_figures:
        return None
    from markupsafe import Markup

    figs = []
    if run.evaluation_figures:
        (folder / "assets" / "evaluation").mkdir(parents=True, exist_ok=True)
    for p in run.evaluation_figures:
        shutil.copyfile(p, folder / "assets" / "evaluation" / p.name)
        figs.append(
            (f"assets/evaluation/{p.name}", f"Evaluation figure {p.stem.replace('_', ' ')}")
        )
    return {
        "tables": metrics_tables(run.evaluation) if run.evaluation is not None else [],
        "markdown": Markup(markdown_to_html(run.evaluation_md)) if run.evaluation_md else None,
        "figures": figs,
    }
