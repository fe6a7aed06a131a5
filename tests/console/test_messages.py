"""Item 6 of the console's operator work: messages that help. The server's own reason, in the page's
language; the ID rules beside every ID field, and in the browser's refusals; photos the browser
reads converted before upload; a group deleted only by its typed name, with what goes with it."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from renlian import console as console_package
from renlian.errors import V3_FIELD_ERRORS, ErrorCode
from tests.conftest import Server, b64, read
from tests.console.browser import LAPTOP, PHONE, RECORD_CALLS, Page, calls, v3

STRINGS = Path(console_package.__file__).parent / "static" / "strings.js"


def labels(lang: str) -> dict[str, str]:
    english, chinese = STRINGS.read_text().split("\n  zh: {")
    block = chinese if lang == "zh" else english
    return dict(re.findall(r'^    "([a-z0-9_.]+)":\s*"((?:[^"\\]|\\.)*)"', block, re.MULTILINE))


def test_every_code_the_server_answers_has_words_in_both_languages() -> None:
    codes = {error.v3_code for error in ErrorCode} | {code for code, _ in V3_FIELD_ERRORS.values()}
    for lang in ("en", "zh"):
        known = labels(lang)
        missing = sorted(code for code in codes if f"error.{code}" not in known)
        assert missing == [], (lang, missing)


def enrol_new(page: Page, user: str, picture: Path) -> None:
    form = "#enrol-new"
    field = page.find(f"{form} input[name=user_id]")
    field.clear()
    field.send_keys(user)
    page.choose(form, picture)
    page.wait(lambda d: page.find(f"{form} button[type=submit]").is_enabled())
    page.find(f"{form} button[type=submit]").click()


def test_messages_in_both_languages(page: Page, console: Server, tmp_path: Path) -> None:
    # A failed sign-in, in Chinese: the token endpoint's error worded, not passed through.
    page.find("#signout").click()
    page.language("zh")
    page.visible("#api-key").send_keys(console.app["api_key"])
    page.find("#secret-key").send_keys("not-the-secret")
    page.find("#signin-form button[type=submit]").click()
    page.has_text("#signin-error", "登录失败：API Key 或 Secret Key 不正确（invalid_client）。")
    page.language("en")
    page.has_text("#signin-error", "Sign-in failed: the API key or the secret key is wrong (invalid_client).")
    # The refused token request is the browser's own log line, expected here.
    page.driver.get_log("browser")  # type: ignore[no-untyped-call]
    page.sign_in(console.app)

    assert v3(console, "faceset/group/add", {"group_id": "messages"})["error_code"] == 0
    page.go("#/library/messages")
    page.visible("#enrol-new")
    page.js(RECORD_CALLS)

    # The ID rules beside the ID fields, and in the browser's refusal, in the page's language.
    assert "letters, digits and _" in page.find("#enrol-new .rule").text
    assert "letters, digits and _ (at most 48)" in page.find("#groups-panel .rule").text
    page.language("zh")
    assert "字母、数字和 _" in page.find("#enrol-new .rule").text
    field = page.find("#enrol-new input[name=user_id]")
    field.send_keys("bad-id")
    page.choose("#enrol-new", "astronaut.jpg")
    page.find("#enrol-new button[type=submit]").click()
    assert (
        page.js("return arguments[0].validationMessage", field)
        == "用户 ID 由字母、数字和 _ 组成（最多 128 字节）。"
    )
    assert calls(page, "faceset/user/add") == [] and calls(page, "faceset/user/get") == []
    page.shot("laptop-id-rule-zh", show="#enrol-new .rule")

    # The server's reasons, translated where the console knows the code, with the server's detail:
    # a photo with no face, and a file that starts like a JPEG but is not one.
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 128, np.uint8))
    enrol_new(page, "nobody", blank)
    page.has_text("#enrol-new .form-error", "错误 222202：照片中没有人脸。")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"not really a photo" * 20)
    enrol_new(page, "broken", broken)
    error = page.visible("#enrol-new .form-error")
    page.wait(lambda d: error.text.startswith("错误 222203：照片未通过服务器的图片检查。（"))
    assert re.search(r"[A-Za-z]{3,}", error.text), "the server's own detail is kept"
    page.shot("laptop-server-reason-zh", show="#enrol-new .form-error")
    page.language("en")
    page.wait(lambda d: error.text.startswith("Error 222203: The photo failed the server's image check. ("))

    # A WebP, which the server does not decode: converted to JPEG in the browser and enrolled.
    webp = tmp_path / "hopper.webp"
    assert cv2.imwrite(str(webp), read("grace_hopper.jpg"))
    enrol_new(page, "hopper", webp)
    page.wait(lambda d: page.js("return location.hash") == "#/library/messages/hopper")
    page.visible("#faces img")
    assert calls(page, "faceset/user/add")[-1]["image"].startswith("/9j/")

    # Deleting a group: what goes with it, and its name to type.
    body = {"group_id": "messages", "user_id": "collins", "image_type": "BASE64"}
    for picture in ("astronaut.jpg", "biden.jpg"):
        added = v3(console, "faceset/user/add", {**body, "image": b64(read(picture))})
        assert added["error_code"] == 0, added
    page.go("#/library/messages")
    page.js("window.scrollTo(0, 0)")
    page.visible("#group-delete").click()
    page.visible("#confirm-name")
    page.has_text(
        "#confirm-text",
        "Delete group messages? Its 2 users and 3 faces go with it, for good: "
        "searches will no longer find them.",
    )
    ok = page.find("#confirm button[value=ok]")
    assert not ok.is_enabled()
    page.find("#confirm-name").send_keys("message")
    assert not ok.is_enabled()
    page.find("#confirm button[value=cancel]").click()
    assert "messages" in v3(console, "faceset/group/getlist", {})["result"]["group_id_list"]

    # In Chinese, on a phone, the name typed in full.
    page.screen(PHONE)
    page.language("zh")
    page.js("window.scrollTo(0, 0)")
    page.visible("#group-delete").click()
    page.visible("#confirm-name").send_keys("messages")
    assert "输入用户组 ID messages 以确认删除" in page.find("#confirm").text
    assert "2 个用户和 3 张人脸" in page.find("#confirm-text").text
    page.shot("phone-group-delete-zh")
    page.find("#confirm button[value=ok]").click()
    page.wait(lambda d: page.js("return location.hash") == "#/library")
    assert "messages" not in v3(console, "faceset/group/getlist", {})["result"]["group_id_list"]
    page.language("en")
    page.screen(LAPTOP)
