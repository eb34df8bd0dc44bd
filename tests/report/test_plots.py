from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from ccgraph.report.plots import cluster_map_plot, resolution_sweep_plot, size_distribution_plot


def test_plots_write_pngs_with_descriptive_alt_text(tmp_path):
    sizes = {"level 0": np.array([50, 30, 1, 1]), "level 1": np.array([10] * 7 + [3])}
    alt = size_distribution_plot(sizes, tmp_path / "s.png")
    assert "level 0: 4 clusters, median size 15.5, largest 50, 2 singletons" in alt
    assert "level 1: 8 clusters, median size 10, largest 10" in alt
    sweep = pd.DataFrame(
        {"resolution": [0.25, 1.0, 4.0], "n_clusters": [3, 8, 40], "quality": [0.5, 0.6, 0.4]}
    )
    alt = resolution_sweep_plot(sweep, tmp_path / "r.png")
    assert "resolution 4: 40 clusters, quality 0.400" in alt
    g = np.random.default_rng(0)
    xy = g.normal(size=(500, 2))
    labels = g.integers(0, 30, 500)
    alt = cluster_map_plot(xy, labels, tmp_path / "m.png", highlight=list(range(25)), n_total=2000)
    assert "a sample of 500 of 2000 items" in alt and "20 largest clusters" in alt
    for name in ("s.png", "r.png", "m.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and min(im.size) > 200
            assert np.asarray(im.convert("L")).std() > 5  # not blank
