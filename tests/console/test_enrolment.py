"""Item 1 of the console's operator work: enrolment that cannot put one person's face under another's
ID, and that asks the server to check the photo."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from selenium.webdriver.support.ui import Select

from tests.conftest import Server, read
from tests.console.browser import LAPTOP, PHONE, RECORD_CALLS, Page, calls, v3


def blurred(tmp: Path) -> Path:
    """The astronaut out of focus: a face the detector finds, and NORMAL quality refuses (223114)."""
    path = tmp / "blurred.jpg"
    cv2.imwrite(str(path), cv2.GaussianBlur(read("astronaut.jpg"), (0, 0), 6))
    return path


def enrol_new(page: Page, user: str, info: str, photo: Path | str) -> None:
    form = "#enrol-new"
    for name, value in (("user_id", user), ("user_info", info)):
        field = page.find(f"{form} input[name={name}]")
        field.clear()
        field.send_keys(value)
    page.choose(form, photo)
    page.visible(f"{form} .preview")
    page.find(f"{form} button[type=submit]").click()


def test_enrolment_refuses_a_taken_id_and_checks_quality(page: Page, console: Server, tmp_path: Path) -> None:
    assert v3(console, "faceset/group/add", {"group_id": "enrol_checks"})["error_code"] == 0
    page.go("#/library/enrol_checks")
    page.visible("#enrol-new")
    page.js(RECORD_CALLS)

    # A new user, with the checks' defaults: NORMAL quality, no liveness check.
    enrol_new(page, "collins", "Eileen Collins", "astronaut.jpg")
    page.wait(lambda d: page.js("return location.hash") == "#/library/enrol_checks/collins")
    page.visible("#faces img")
    sent = calls(page, "faceset/user/add")[-1]
    assert sent["quality_control"] == "NORMAL" and sent["liveness_control"] == "NONE", sent

    # Another person under the same ID: refused before anything is sent, with a link to the user.
    page.go("#/library/enrol_checks")
    page.visible("#enrol-new")
    enrol_new(page, "collins", "Grace Hopper", "grace_hopper.jpg")
    error = page.visible("#enrol-new .form-error")
    page.wait(lambda d: "collins already exists in enrol_checks" in error.text)
    link = page.find("#enrol-new .form-error a")
    assert str(link.get_attribute("href")).endswith("#/library/enrol_checks/collins")
    assert len(calls(page, "faceset/user/add")) == 1
    record = v3(console, "faceset/user/get", {"user_id": "collins", "group_id": "enrol_checks"})
    assert record["result"]["user_list"][0]["user_info"] == "Eileen Collins"
    faces = v3(console, "faceset/face/getlist", {"user_id": "collins", "group_id": "enrol_checks"})
    assert len(faces["result"]["face_list"]) == 1
    page.shot("laptop-enrol-taken-id", show="#enrol-new .form-error")

    # The same refusal in Chinese, at a phone's width.
    page.screen(PHONE)
    page.language("zh")
    page.wait(lambda d: "enrol_checks 中已有用户 collins" in page.find("#enrol-new .form-error").text)
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-enrol-taken-id-zh", show="#enrol-new .form-error")
    page.language("en")
    page.screen(LAPTOP)

    # Adding a photo to the existing user is the explicit action on the user's own page.
    page.find("#enrol-new .form-error a").click()
    page.visible("#enrol-more")
    page.choose("#enrol-more", "grace_hopper.jpg")
    page.find("#enrol-more button[type=submit]").click()
    page.wait(lambda d: len(page.all("#faces img")) == 2)
    assert calls(page, "faceset/user/add")[-1]["quality_control"] == "NORMAL"

    # A blurred photo fails NORMAL quality: the server's code and its reason are shown, nothing is
    # enrolled; the same photo goes in once the operator lowers the check.
    page.go("#/library/enrol_checks")
    page.visible("#enrol-new")
    enrol_new(page, "blurry", "", blurred(tmp_path))
    error = page.visible("#enrol-new .form-error")
    page.wait(lambda d: "223114" in error.text and "blur" in error.text)
    assert (
        v3(console, "faceset/user/get", {"user_id": "blurry", "group_id": "enrol_checks"})["error_code"]
        == 223103
    )
    # Without the quality check, the liveness check the operator picked still refuses it (the
    # blur hides the skin's texture the liveness model looks at), with its own reason.
    Select(page.find("#enrol-new select[name=quality_control]")).select_by_value("NONE")
    Select(page.find("#enrol-new select[name=liveness_control]")).select_by_value("LOW")
    page.find("#enrol-new button[type=submit]").click()
    page.wait(lambda d: "223120" in error.text and "liveness" in error.text)
    sent = calls(page, "faceset/user/add")[-1]
    assert (sent["quality_control"], sent["liveness_control"]) == ("NONE", "LOW"), json.dumps(sent)
    page.shot("laptop-enrol-refused", show="#enrol-new .form-error")
    Select(page.find("#enrol-new select[name=liveness_control]")).select_by_value("NONE")
    page.find("#enrol-new button[type=submit]").click()
    page.wait(lambda d: page.js("return location.hash") == "#/library/enrol_checks/blurry")
