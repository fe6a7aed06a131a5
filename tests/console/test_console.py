"""The web console at /console/: its files, its thumbnail endpoint's scoping, and the page's first
tour in a real browser (Debian's chromium, headless: tests/console/browser.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from renlian import console as console_package
from tests.conftest import DATA, Server, b64, create_app, read
from tests.console.browser import LAPTOP, PHONE, Page, photo, v3

# The first face's colour on detect's canvas (app.js, COLORS[0]).
FIRST_FACE_RGB = (0x0E, 0xA5, 0xE9)


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
        ("zip.js", "text/javascript"),
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
        # A copy of its own (a face_token names the photo): the other tests enrol the original elsewhere.
        "image": b64(read("grace_hopper.jpg")),
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


def test_console_in_chromium(console: Server, browser: webdriver.Chrome, shots: Path) -> None:
    page = Page(browser, console.base_url, shots)
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
    page.visible("#confirm-name").send_keys("staff")
    page.confirm()
    page.wait(lambda d: page.js("return location.hash") == "#/library")
    page.wait(lambda d: "staff" not in page.find("#group-list").text)
    groups = v3(console, "faceset/group/getlist", {})["result"]["group_id_list"]
    assert "staff" not in groups and "visitors" in groups

    # Signing out forgets the token.
    page.find("#signout").click()
    page.visible("#signin-form")
    assert page.js("return sessionStorage.getItem('renlian.console.token')") is None

    page.no_errors_logged()


def _box_corner(server: Server) -> list[int]:
    """A pixel on the top edge of detect's box for the astronaut, from the API."""
    found = v3(server, "detect", {"image": photo("astronaut.jpg"), "image_type": "BASE64"})
    box = found["result"]["face_list"][0]["location"]
    return [round(box["left"] + box["width"] / 2), round(box["top"])]
