"""Headless Chromium through Selenium and the system chromedriver (no downloads)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--allow-file-access-from-files",
    "--window-size=1280,2000",
]


def chromium_binary() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def chromedriver_binary() -> str | None:
    """Path of a chromedriver binary, or None."""
    for cand in ("chromedriver", "/usr/lib/chromium/chromedriver"):
        if path := shutil.which(cand) or (cand if os.path.exists(cand) else None):
            return path
    return None


@contextmanager
def chromium(**_: Any) -> Iterator[Any]:
    """A Selenium Chrome driver on a fresh profile, console logging captured."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    profile = tempfile.mkdtemp(prefix="ccgraph-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium_binary() or ""
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(chromedriver_binary()))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


IMAGES_JS = """
return Array.from(document.images).map(function (im) {
  return {src: im.getAttribute('src'), alt: im.getAttribute('alt'),
          complete: im.complete, w: im.naturalWidth, h: im.naturalHeight};
});
"""

TIMING_JS = """
var t = performance.getEntriesByType('navigation')[0];
return {load: t.loadEventEnd, dom: t.domContentLoadedEventEnd,
        resources: performance.getEntriesByType('resource').length};
"""


def open_page(driver: Any, page: Path) -> dict[str, Any]:
    """Load ``page``; return its images, console errors and navigation timing (ms)."""
    driver.get(page.resolve().as_uri())
    images = driver.execute_script(IMAGES_JS)
    timing = driver.execute_script(TIMING_JS)
    logs = driver.get_log("browser")
    errors = [e for e in logs if e.get("level") in ("SEVERE", "ERROR")]
    return {"images": images, "timing": timing, "errors": errors, "logs": logs}
