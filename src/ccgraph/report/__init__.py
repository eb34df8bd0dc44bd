"""Static HTML report of a run: summary, plots, cluster contact sheets, similar images.

``write_report(run_dir)`` reads a finished run directory and writes one self-contained folder
(``index.html``, a page per large cluster, ``assets/``) that opens from disk without a server.
"""

from __future__ import annotations

from ccgraph.report.html import write_report

__all__ = ["write_report"]
