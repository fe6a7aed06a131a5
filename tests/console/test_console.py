"""The web console at /console/: its files, its thumbnail endpoint's scoping, and the page itself in a
real browser (Debian's chromium, headless, driven by selenium through Debian's chromium-driver).

Nothing here downloads a browser: scripts/test installs the two Debian packages where they are
missing, and without them the browser test is skipped. Screenshots (laptop 1366x768, phone 390x844)
go to the test's temporary folder and, when RENLIAN_SCREENSHOTS names a folder, there as well.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from renlian import console as console_package
from tests.conftest import DATA, Server, create_app, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
V3 = "/rest/2.0/face/v3/"
LAPTOP = (1366, 768)
PHONE = (390, 844)
# The first face's colour on detect's canvas (app.js, COLORS[0]).
FIRST_FACE_RGB = (0x0E, 0xA5, 0xE9)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own, so that the page sees only the groups these tests make."""
    running = start_server(tmp_path_factory.mktemp("console"))
    yield running
    running.stop()


def v3(server: Server, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    response = httpx.post(
        server.base_url + V3 + path, params={"access_token": token or server.token}, json=body, timeout=60
    )
    answer: dict[str, Any] = response.json()
    return answer


def photo(name: str) -> str:
    return base64.b64encode((DATA / name).read_bytes()).decode()


def test_page_files(console: Server) -> None:
    moved = httpx.get(console.base_url + "/console")
    assert moved.status_code == 308 and moved.headers["location"] == "/console/"
    page = httpx.get(console.base_url + "/console/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    for name, kind in [
        ("app.js", "text/javascript"),
        ("strings.js", "text/javascript"),
        ("style.css", "text/css"),
    ]:
        asset = httpx.get(f"{console.base_url}/console/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind), name
    # Only the page's own files: nothing else of the package, no path out of the folder.
    for path in ("nothing.js", "__init__.py", "..%2F__init__.py", "%2E%2E/console.py", "static/app.js"):
        assert httpx.get(f"{console.base_url}/console/{path}").status_code == 404, path
    # The secret key goes only to the token endpoint: the script never stores it.
    script = httpx.get(console.base_url + "/console/app.js").text
    assert "client_secret" in script and "localStorage.setItem(TOKEN_KEY" not in script


def test_thumbnails_are_scoped_to_the_app(console: Server) -> None:
    assert v3(console, "faceset/group/add", {"group_id": "scoped"})["error_code"] == 0
    enrol = {
        "group_id": "scoped",
        "user_id": "hopper",
        "image": photo("grace_hopper.jpg"),
        "image_type": "BASE64",
    }
    added = v3(console, "faceset/user/add", enrol)
    assert added["error_code"] == 0, added
    token = added["result"]["face_token"]
    url = f"{console.base_url}/console/api/faces/{token}.jpg"

    mine = httpx.get(url, params={"access_token": console.token})
    assert mine.status_code == 200 and mine.headers["content-type"] == "image/jpeg"
    assert mine.content.startswith(b"\xff\xd8") and mine.headers["cache-control"] == "private, no-store"

    # Another app's token: the face does not exist for it, exactly like a face that never did.
    other = console.token_for(create_app(console.data_dir, "other-app"))
    assert httpx.get(url, params={"access_token": other}).status_code == 404
    assert httpx.get(url.replace(token, "0" * 32), params={"access_token": console.token}).status_code == 404
    # The store matches a prefix of the photo's checksum: a part of a token finds nothing.
    short = url.replace(token, token[:8])
    assert httpx.get(short, params={"access_token": console.token}).status_code == 404
    # Credentials come first: without them nothing is looked up.
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, params={"access_token": "not-a-token"}).status_code == 401

    v3(console, "faceset/group/delete", {"group_id": "scoped"})
    assert httpx.get(url, params={"access_token": console.token}).status_code == 404


def test_both_languages_have_every_label() -> None:
    strings = (Path(console_package.__file__).parent / "static" / "strings.js").read_text()
    english, chinese = strings.split("\n  zh: {")
    keys = [set(re.findall(r'^    "([a-z0-9_.]+)":', block, re.MULTILINE)) for block in (english, chinese)]
    assert len(keys[0]) > 100 and keys[0] == keys[1]


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
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


class Page:
    """The console in the browser, with the few moves the test makes."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, shots: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.shots = shots
        self.saved: list[Path] = []

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait(self, condition: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
        # The page redraws its lists after each answer: an element found a moment ago may be gone.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        return WebDriverWait(self.driver, timeout, 0.05, ignored).until(condition)

    def visible(self, css: str) -> WebElement:
        element: WebElement = self.wait(
            lambda d: d.find_element(By.CSS_SELECTOR, css).is_displayed() and self.find(css)
        )
        return element

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def go(self, hash_route: str) -> None:
        self.js("location.hash = arguments[0]", hash_route)

    def screen(self, size: tuple[int, int]) -> None:
        """The viewport of a laptop, or of a phone (mobile emulation: the viewport meta tag counts)."""
        width, height = size
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == PHONE},
        )

    def shot(self, name: str) -> None:
        self.js("document.activeElement && document.activeElement.blur()")
        path = self.shots / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), name
        self.saved.append(path)

    def choose(self, form: str, name: str) -> None:
        """Picks a photo with the form's file input, as the file picker does."""
        self.find(f"{form} input[type=file]").send_keys(str(DATA / name))

    def confirm(self) -> None:
        self.visible("#confirm button[value=ok]").click()

    def has_text(self, css: str, text: str) -> None:
        self.wait(lambda d: self.find(css).text == text)

    def toast(self, text: str) -> None:
        self.wait(lambda d: text in self.find("#toast").text)


def test_console_in_chromium(console: Server, browser: webdriver.Chrome, tmp_path: Path) -> None:
    page = Page(browser, console.base_url, tmp_path)
    page.screen(LAPTOP)
    browser.get(console.base_url + "/console/")
    page.js("localStorage.clear(); sessionStorage.clear()")
    browser.get(console.base_url + "/console/")

    # Sign in with the app's keys; the page keeps the token and nothing of the secret.
    page.visible("#api-key").send_keys(console.app["api_key"])
    page.find("#secret-key").send_keys(console.app["secret_key"])
    page.shot("laptop-signin")
    page.find("#signin-form button[type=submit]").click()
    page.visible("#tabs")
    page.visible("#group-add")
    stored = page.js("return JSON.stringify([{...sessionStorage}, {...localStorage}])")
    assert console.app["secret_key"] not in stored and "renlian.console.token" in stored
    assert page.find("#secret-key").get_attribute("value") == ""

    # Groups: one to enrol into, one to copy the user to.
    for group in ("visitors", "staff"):
        page.find("#new-group").send_keys(group)
        page.find("#group-add button").click()
        page.has_text("#users-title", f"Users in {group}")

    # Enrol a photo through the file input; the user's page shows the stored crop.
    form = "#enrol-new"
    page.find(f"{form} input[name=user_id]").send_keys("collins")
    page.find(f"{form} input[name=user_info]").send_keys("Eileen Collins")
    page.choose(form, "astronaut.jpg")
    page.visible(f"{form} .preview")
    page.find(f"{form} button[type=submit]").click()
    page.visible("#faces img")
    assert page.js("return location.hash") == "#/library/staff/collins"
    assert page.find("#user-info").text == "Eileen Collins"
    thumbnail_loaded = "const i = document.querySelector('#faces img'); return i.complete && i.naturalWidth"
    assert page.wait(lambda d: page.js(thumbnail_loaded)) == 112

    # A second photo for the same user, from the user's own page.
    page.choose("#enrol-more", "grace_hopper.jpg")
    page.find("#enrol-more button[type=submit]").click()
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces img")) == 2)
    page.wait(
        lambda d: page.js("return [...document.querySelectorAll('#faces img')].every(i => i.naturalWidth)")
    )
    page.shot("laptop-user")

    # Copy the user to the other group.
    Select(page.find("#copy-target")).select_by_value("visitors")
    page.find("#copy-form button").click()
    page.toast("collins copied to visitors")
    users = v3(console, "faceset/group/getusers", {"group_id": "visitors"})["result"]["user_id_list"]
    assert users == ["collins"]

    # Search the group with a photo: the user, with the score that says it is them.
    page.go("#/search")
    page.wait(lambda d: "staff" in page.find("#search-group").text)
    Select(page.find("#search-group")).select_by_value("staff")
    page.choose("#search-form", "astronaut.jpg")
    page.find("#search-form button[type=submit]").click()
    found = page.visible("#search-results li")
    assert found.find_element(By.CSS_SELECTOR, ".user-id").text == "collins"
    assert float(found.find_element(By.CSS_SELECTOR, ".score-value").text) >= 80
    page.wait(lambda d: page.js("return document.querySelector('#search-results img').naturalWidth") > 0)
    page.shot("laptop-search")

    # Detect: the photo on a canvas, with the box drawn in the first face's colour.
    page.go("#/detect")
    page.choose("#detect-drop", "astronaut.jpg")
    page.wait(lambda d: page.find("#detect-canvas").get_attribute("data-faces") == "1")
    box_pixel = page.js(
        "const c = document.querySelector('#detect-canvas');"
        "const face = arguments[0];"
        "return [...c.getContext('2d').getImageData(face[0], face[1], 1, 1).data].slice(0, 3);",
        _box_corner(console),
    )
    assert max(abs(a - b) for a, b in zip(box_pixel, FIRST_FACE_RGB, strict=True)) < 40, box_pixel
    card = page.find("#detect-faces .face-card").text
    assert "Age" in card and "Gender" in card and "Occlusion" in card
    page.shot("laptop-detect")

    # Compare two people: a low score, and what it means at 80.
    page.go("#/compare")
    files = browser.find_elements(By.CSS_SELECTOR, "#compare-form input[type=file]")
    files[0].send_keys(str(DATA / "astronaut.jpg"))
    files[1].send_keys(str(DATA / "grace_hopper.jpg"))
    page.find("#compare-form button[type=submit]").click()
    page.visible("#compare-result")
    assert float(page.find("#compare-score").text) < 80
    assert "Below 80" in page.find("#compare-verdict").text
    page.shot("laptop-compare")

    # A phone: one column, only the level picked.
    page.screen(PHONE)
    page.go("#/library")
    page.visible("#group-list a")
    assert not page.find("#users-panel").is_displayed()
    page.shot("phone-groups")
    page.go("#/library/staff/collins")
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces img")) == 2)
    assert not page.find("#groups-panel").is_displayed() and page.find("#user-back").is_displayed()
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-user")
    page.go("#/detect")
    page.visible("#detect-canvas")
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-detect")

    # Chinese labels, kept across a reload (as is the session).
    page.find("#lang").click()
    page.wait(lambda d: page.find("#tabs a[data-view=library]").text == "人脸库")
    assert page.js("return document.documentElement.lang") == "zh-CN"
    browser.refresh()
    page.wait(lambda d: page.find("#tabs a[data-view=detect]").text == "人脸检测")
    page.go("#/library/staff/collins")
    page.visible("#faces img")
    assert page.find("#user-delete").text == "删除用户"
    page.shot("phone-user-zh")
    page.find("#lang").click()
    page.wait(lambda d: page.find("#tabs a[data-view=library]").text == "Library")
    page.screen(LAPTOP)

    # Delete a face, then the user, then the group.
    page.find("#faces li:nth-child(2) button").click()
    page.confirm()
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces img")) == 1)
    page.visible("#user-delete").click()
    page.confirm()
    page.wait(lambda d: page.js("return location.hash") == "#/library/staff")
    page.visible("#users-empty")
    page.find("#group-delete").click()
    page.confirm()
    page.wait(lambda d: page.js("return location.hash") == "#/library")
    page.wait(lambda d: "staff" not in page.find("#group-list").text)
    groups = v3(console, "faceset/group/getlist", {})["result"]["group_id_list"]
    assert "staff" not in groups and "visitors" in groups

    # Signing out forgets the token.
    page.find("#signout").click()
    page.visible("#signin-form")
    assert page.js("return sessionStorage.getItem('renlian.console.token')") is None

    # The page broke no rule of its own (a Content-Security-Policy violation would be logged here).
    logged = browser.get_log("browser")  # type: ignore[no-untyped-call]
    problems = [entry for entry in logged if entry["level"] == "SEVERE"]
    assert problems == []

    target = os.environ.get("RENLIAN_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in page.saved:
            shutil.copy(shot, Path(target) / shot.name)


def _box_corner(server: Server) -> list[int]:
    """A pixel on the top edge of detect's box for the astronaut, from the API."""
    found = v3(server, "detect", {"image": photo("astronaut.jpg"), "image_type": "BASE64"})
    box = found["result"]["face_list"][0]["location"]
    return [round(box["left"] + box["width"] / 2), round(box["top"])]
