"""Item 4 of the console's operator work: every face in a photo, each one's best match drawn on it,
and a face enrolled straight from what detect found."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, read
from tests.console.browser import LAPTOP, PHONE, RECORD_CALLS, Page, calls, v3

PEOPLE = ("astronaut.jpg", "biden.jpg", "grace_hopper.jpg", "obama.jpg")
COLUMNS, ROWS = 6, 4


def group_photo(tmp: Path) -> Path:
    """24 faces: the four committed portraits, six times each, scaled to tiles of one grid."""
    tiles = [cv2.resize(read(PEOPLE[n % len(PEOPLE)]), (200, 240)) for n in range(COLUMNS * ROWS)]
    grid = np.vstack([np.hstack(tiles[row * COLUMNS : (row + 1) * COLUMNS]) for row in range(ROWS)])
    path = tmp / "group-of-24.jpg"
    cv2.imwrite(str(path), grid, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return path


def test_every_face_in_a_photo(page: Page, console: Server, tmp_path: Path) -> None:
    assert v3(console, "faceset/group/add", {"group_id": "tiles"})["error_code"] == 0
    page.go("#/detect")
    page.visible("#detect-drop")
    page.js(RECORD_CALLS)

    # All 24 faces, and a count that says so.
    page.choose("#detect-drop", group_photo(tmp_path))
    page.wait(lambda d: page.find("#detect-canvas").get_attribute("data-faces") == "24")
    page.has_text("#detect-summary", "24 faces found.")
    assert len(page.all("#detect-faces .face-card")) == 24
    assert calls(page, "/detect")[-1]["max_face_num"] == 120

    # The first face, enrolled as a new user straight from the detect result, by its face_token.
    page.all("#detect-faces .face-card button")[0].click()
    page.visible("#enrol-face")
    Select(page.find("#enrol-face-group")).select_by_value("tiles")
    page.find("#enrol-face input[name=user_id]").send_keys("first_face")
    page.find("#enrol-face input[name=user_info]").send_keys("the largest face")
    page.wait(lambda d: page.js("return document.querySelector('#enrol-face-preview').naturalWidth") == 112)
    page.shot("laptop-detect-enrol-face", show="#enrol-face")
    page.find("#enrol-face button[type=submit]").click()
    page.toast("first_face enrolled in tiles")
    assert not page.find("#enrol-face").is_displayed()
    sent = calls(page, "faceset/user/add")[-1]
    assert sent["image_type"] == "FACE_TOKEN" and sent["quality_control"] == "NORMAL", sent
    faces = v3(console, "faceset/face/getlist", {"user_id": "first_face", "group_id": "tiles"})
    assert len(faces["result"]["face_list"]) == 1

    # The same face again under the same ID: refused, as any new user with a taken ID.
    page.all("#detect-faces .face-card button")[1].click()
    page.visible("#enrol-face")
    page.find("#enrol-face input[name=user_id]").send_keys("first_face")
    page.find("#enrol-face button[type=submit]").click()
    page.wait(lambda d: "first_face already exists in tiles" in page.find("#enrol-face .form-error").text)
    page.find("#enrol-face button[value=cancel]").click()

    # Every face searched in the group: multi-search for the largest ten, the other fourteen one by
    # one by face_token; the six tiles of that person are them, the 18 others nobody at 80.
    Select(page.find("#detect-group")).select_by_value("tiles")
    page.find("#detect-search button[type=submit]").click()
    page.wait(lambda d: page.find("#detect-canvas").get_attribute("data-matched") == "6", timeout=60)
    page.has_text("#detect-search-summary", "6 of 24 faces are someone in tiles (80 or more).")
    assert len(calls(page, "multi-search")) == 1 and len(calls(page, "/search")) == 14
    matched = page.all("#detect-faces .face-card.matched")
    assert len(matched) == 6 and all("first_face" in card.text for card in matched)
    page.shot("laptop-detect-24-faces")

    # In Chinese, on a phone.
    page.screen(PHONE)
    page.language("zh")
    page.has_text("#detect-summary", "检测到 24 张人脸。")
    page.has_text("#detect-search-summary", "24 张人脸中有 6 张是 tiles 中的用户（80 分及以上）。")
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-detect-24-faces-zh", show="#detect-canvas")
    page.language("en")
    page.screen(LAPTOP)
