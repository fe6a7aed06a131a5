"""The console's fixtures: a server of its own, one headless chromium for every browser test, and
the folder their screenshots go to.

Screenshots (laptop 1366x768, phone 390x844) go to a temporary folder and, when RENLIAN_SCREENSHOTS
names a folder, are copied there at the end (docs/console.md shows them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import Server, start_server
from tests.console.browser import CHROMEDRIVER, CHROMIUM, LAPTOP, Page


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own, so that the page sees only the groups these tests make."""
    running = start_server(tmp_path_factory.mktemp("console"))
    yield running
    running.stop()


@pytest.fixture(scope="package")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("screenshots")
    yield folder
    target = os.environ.get("RENLIAN_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in folder.glob("*.png"):
            shutil.copy(shot, Path(target) / shot.name)


@pytest.fixture(scope="package")
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/test installs them)")
    profile = tempfile.mkdtemp(prefix="renlian-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium then never runs its manager, which would download one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: webdriver.Chrome, console: Server, shots: Path) -> Iterator[Page]:
    """The console signed in as the console server's app, on a laptop screen, in English."""
    opened = Page(browser, console.base_url, shots)
    opened.screen(LAPTOP)
    opened.sign_in(console.app)
    yield opened
    opened.no_errors_logged()
