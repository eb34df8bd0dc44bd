"""Acceptance: the report of a small real run opens in headless Chromium without errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ccgraph.report import write_report
from tests.conftest import REPO
from tests.report._browser import chromedriver_binary, chromium, chromium_binary, open_page

ARTIFACTS = REPO / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    if chromium_binary() is None or chromedriver_binary() is None:
        pytest.skip(
            "headless Chromium not found: install Debian's chromium and chromium-driver "
            "(`apt-get install chromium chromium-driver`; .ci/run installs chromium)"
        )
    pytest.importorskip("selenium", reason="the browser test drives Chromium with selenium")
    with chromium() as driver:
        yield driver


def test_flickr_report_in_headless_chromium(flickr_run: Path, browser, tmp_path):
    index = write_report(flickr_run, out=tmp_path / "report", max_clusters=10, thumbnails=24)
    page = open_page(browser, index)
    assert page["errors"] == [], page["errors"]
    thumbs = [i for i in page["images"] if "/thumbs/" in i["src"]]
    assert len(thumbs) >= 20
    broken = [i["src"] for i in page["images"] if not (i["complete"] and i["w"] > 0)]
    assert broken == []
    assert all(i["alt"] for i in page["images"])
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(int(height), 8000))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report_index.png"))
    cluster_page = sorted(index.parent.glob("cluster-*.html"))[0]
    page = open_page(browser, cluster_page)
    assert page["errors"] == []
    assert sum("/thumbs/" in i["src"] for i in page["images"]) >= 20
    assert all(i["complete"] and i["w"] > 0 for i in page["images"])
    browser.save_screenshot(str(ARTIFACTS / "report_cluster.png"))
    shutil.copytree(index.parent, ARTIFACTS / "report", dirs_exist_ok=True)
