"""The console in Debian's chromium, headless, driven by selenium through Debian's chromium-driver:
the moves the browser tests make, and the calls they check the page against.

Nothing here downloads a browser: scripts/test installs the two Debian packages where they are
missing, and without them the browser tests are skipped.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import DATA, Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
V3 = "/rest/2.0/face/v3/"
LAPTOP = (1366, 768)
PHONE = (390, 844)


def v3(server: Server, path: str, body: Any, token: str | None = None) -> dict[str, Any]:
    response = httpx.post(
        server.base_url + V3 + path, params={"access_token": token or server.token}, json=body, timeout=60
    )
    answer: dict[str, Any] = response.json()
    return answer


# Wraps the page's fetch so that the test sees every v3 body the page sends (images cut short).
RECORD_CALLS = """
window.__calls = [];
const original = window.fetch;
window.fetch = (url, options = {}) => {
  if (String(url).includes('/rest/2.0/face/v3/') && typeof options.body === 'string') {
    const body = JSON.parse(options.body);
    // The image's first bytes only (base64 "/9j/" is a JPEG's): enough to tell what was sent.
    if (body.image) body.image = body.image.slice(0, 8);
    window.__calls.push({path: new URL(url).pathname, body});
  }
  return original(url, options);
};
"""


def calls(page: Page, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.js("return window.__calls")
    return [call["body"] for call in found if call["path"].endswith(path)]


def photo(name: str) -> str:
    return base64.b64encode((DATA / name).read_bytes()).decode()


class Page:
    """The console in the browser, with the moves the tests make."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, shots: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.shots = shots

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, condition: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
        # The page redraws its lists after each answer: an element found a moment ago may be gone.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        return WebDriverWait(self.driver, timeout, 0.05, ignored).until(condition)

    def visible(self, css: str, timeout: float = 30) -> WebElement:
        element: WebElement = self.wait(
            lambda d: d.find_element(By.CSS_SELECTOR, css).is_displayed() and self.find(css), timeout
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

    def shot(self, name: str, show: str | None = None) -> None:
        """A screenshot of the viewport, scrolled first so that `show` (a selector) is in it."""
        self.js("document.activeElement && document.activeElement.blur()")
        if show:
            self.js("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", show)
        assert self.driver.save_screenshot(str(self.shots / f"{name}.png")), name

    def choose(self, form: str, path: Path | str) -> None:
        """Picks a photo with the form's file input, as the file picker does."""
        chosen = path if isinstance(path, Path) else DATA / path
        self.find(f"{form} input[type=file]").send_keys(str(chosen))

    def confirm(self) -> None:
        self.visible("#confirm button[value=ok]").click()

    def has_text(self, css: str, text: str) -> None:
        self.wait(lambda d: self.find(css).text == text)

    def toast(self, text: str) -> None:
        self.wait(lambda d: text in self.find("#toast").text)

    def language(self, lang: str) -> None:
        """English or Chinese labels, through the switch at the top."""
        want = "zh-CN" if lang == "zh" else "en"
        if self.js("return document.documentElement.lang") != want:
            self.find("#lang").click()
            self.wait(lambda d: self.js("return document.documentElement.lang") == want)

    def sign_in(self, app: dict[str, str]) -> None:
        """A fresh page (nothing kept from an earlier test), signed in with the app's keys."""
        self.driver.get(self.base_url + "/console/")
        self.js("localStorage.clear(); sessionStorage.clear()")
        self.driver.get(self.base_url + "/console/")
        self.visible("#api-key").send_keys(app["api_key"])
        self.find("#secret-key").send_keys(app["secret_key"])
        self.find("#signin-form button[type=submit]").click()
        self.visible("#tabs")

    def no_errors_logged(self) -> None:
        """The page broke no rule of its own (a Content-Security-Policy violation is logged)."""
        logged = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        problems = [entry for entry in logged if entry["level"] == "SEVERE"]
        assert problems == [], problems
