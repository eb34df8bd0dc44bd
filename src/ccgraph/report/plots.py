"""Static plots of a run (matplotlib, Agg canvas; no global pyplot state).

Every function writes one PNG and returns a text description used as the image's alt text, so
the numbers a plot shows are also readable without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ccgraph._deps import import_optional

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["cluster_map_plot", "resolution_sweep_plot", "size_distribution_plot"]

_DPI = 100
_GREY = "#c8c8c8"


def _figure(width: float, height: float) -> Figure:
    import_optional("matplotlib", "report")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})


def size_distribution_plot(sizes: dict[str, np.ndarray], path: Path) -> str:
    """Rank-size plot of the clusters of each level (log-log; sizes sorted descending).

    Parameters
    ----------
    sizes
        Level name -> array of cluster sizes.
    path
        PNG to write.

    Returns
    -------
    str
        Alt text summarising each level (count, median, largest, singletons).
    """
    fig = _figure(5.6, 3.6)
    ax = fig.add_subplot()
    parts = []
    for name, s in sizes.items():
        s = np.sort(np.asarray(s))[::-1]
        if not len(s):
            continue
        rank = np.arange(1, len(s) + 1)
        style = "o-" if len(s) <= 40 else "-"
        ax.plot(rank, s, style, markersize=4, linewidth=1.6, label=f"{name} ({len(s)})")
        parts.append(
            f"{name}: {len(s)} clusters, median size {float(np.median(s)):g}, "
            f"largest {int(s[0])}, {int((s == 1).sum())} singletons"
        )
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("cluster rank (largest first)")
    ax.set_ylabel("cluster size (items)")
    ax.legend(frameon=False, fontsize="small")
    ax.grid(alpha=0.3, which="major")
    _save(fig, path)
    return "Cluster sizes by rank, per level. " + "; ".join(parts) + "."


def resolution_sweep_plot(sweep: pd.DataFrame, path: Path) -> str:
    """Plot the number of clusters (and quality, when known) against the resolution.

    Parameters
    ----------
    sweep
        One row per resolution: ``resolution``, ``n_clusters``, optional ``median_size`` and
        ``quality``.
    path
        PNG to write.

    Returns
    -------
    str
        Alt text listing the points.
    """
    from matplotlib.ticker import FixedLocator, NullLocator

    fig = _figure(5.6, 3.6)
    ax = fig.add_subplot()
    x = sweep["resolution"].to_numpy(float)
    ax.plot(x, sweep["n_clusters"], "o-", color="#1f5fa8", label="clusters")
    ax.set_xlabel("resolution")
    ax.set_ylabel("number of clusters", color="#1f5fa8")
    if (x > 0).all() and len(x) > 1 and x.max() / x.min() > 5:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(x))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(x, [f"{v:g}" for v in x])
    if sweep["n_clusters"].max() / max(sweep["n_clusters"].min(), 1) > 20:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    has_q = "quality" in sweep and sweep["quality"].notna().any()
    if has_q:
        ax2 = ax.twinx()
        ax2.plot(x, sweep["quality"], "s--", color="#b3541e", label="quality")
        ax2.set_ylabel("quality (modularity)", color="#b3541e")
    _save(fig, path)
    pts = []
    for _, r in sweep.iterrows():
        q = f", quality {r['quality']:.3f}" if has_q and pd.notna(r["quality"]) else ""
        pts.append(f"resolution {r['resolution']:g}: {int(r['n_clusters'])} clusters{q}")
    return "Resolution sweep. " + "; ".join(pts) + "."


def cluster_map_plot(
    xy: np.ndarray,
    labels: np.ndarray,
    path: Path,
    *,
    highlight: list[int],
    n_total: int,
) -> str:
    """Scatter of the 2-D layout, coloured by cluster (``highlight`` in colour, others grey).

    Parameters
    ----------
    xy
        ``(m, 2)`` coordinates of the items shown.
    labels
        Their cluster labels.
    path
        PNG to write.
    highlight
        Cluster labels drawn in colour and labelled at their median position (at most 20).
    n_total
        Number of items in the run (the map may show a subsample).

    Returns
    -------
    str
        Alt text.
    """
    from matplotlib import colormaps

    fig = _figure(7.0, 5.6)
    ax = fig.add_subplot()
    m = len(xy)
    size = float(np.clip(3000.0 / max(m, 1), 1.0, 18.0))
    lo = np.percentile(xy, 0.5, axis=0) if m else np.zeros(2)
    hi = np.percentile(xy, 99.5, axis=0) if m else np.ones(2)
    pad = 0.08 * np.maximum(hi - lo, 1e-9)
    shown = np.isin(labels, highlight)
    rest = xy[~shown]
    ax.scatter(rest[:, 0], rest[:, 1], s=size, c=_GREY, linewidths=0, rasterized=True)
    cmap = colormaps["tab20"]
    for i, c in enumerate(highlight[:20]):
        sel = labels == c
        if not sel.any():
            continue
        colour = cmap(i % 20)
        ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=colour, linewidths=0, rasterized=True)
        cx, cy = np.median(xy[sel], axis=0)
        ax.annotate(
            str(c),
            (cx, cy),
            ha="center",
            va="center",
            fontsize=9,
            weight="bold",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": colour, "alpha": 0.85},
        )
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("spectral axis 1")
    ax.set_ylabel("spectral axis 2")
    _save(fig, path)
    sub = f" (a sample of {m} of {n_total} items)" if m < n_total else f" ({m} items)"
    return (
        f"Map of the similarity graph{sub}; the {min(len(highlight), 20)} largest clusters are "
        f"coloured and numbered ({', '.join(map(str, highlight[:20]))}), others are grey."
    )
