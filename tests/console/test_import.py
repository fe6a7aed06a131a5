"""Item 5 of the console's operator work: a bulk import in the browser, from a zip or a folder of
`<user_id>/<photos>`, with a progress bar, resumable, and a report of every photo that failed and
why, by renlian import's rules."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import cv2
import httpx
import numpy as np

from tests.conftest import DATA, Server, read
from tests.console.browser import LAPTOP, PHONE, RECORD_CALLS, Page, calls, v3


def encoded(name: str, ext: str) -> bytes:
    ok, data = cv2.imencode(ext, read(name))
    assert ok
    return data.tobytes()


def archive(tmp: Path) -> Path:
    """people/<user_id>/<photo> with four good users, four bad photos and files to be ignored."""
    joe = (DATA / "biden.jpg").read_bytes()
    blurred = cv2.imencode(".jpg", cv2.GaussianBlur(read("astronaut.jpg"), (0, 0), 6))[1].tobytes()
    blank = cv2.imencode(".png", np.full((300, 300, 3), 128, np.uint8))[1].tobytes()
    members = {
        "people/ada/ada1.jpg": (DATA / "astronaut.jpg").read_bytes(),
        "people/ada/ada2.png": encoded("astronaut.jpg", ".png"),
        "people/barack/barack.jpg": (DATA / "obama.jpg").read_bytes(),
        "people/grace/grace.jpg": (DATA / "grace_hopper.jpg").read_bytes(),
        "people/joe/joe.JPG": joe,
        # The same file twice: the second one is in the group already.
        "people/joe/copy_of_joe.jpg": joe,
        "people/bad-id/photo.jpg": joe,
        "people/blurry/blurred.jpg": blurred,
        "people/broken/broken.jpg": b"this is not a photo",
        "people/noface/blank.png": blank,
        # Ignored, as renlian import ignores them.
        "people/notes.txt": b"loose file",
        "people/ada/readme.txt": b"not a photo",
        "people/ada/extra/deep.jpg": joe,
        "__MACOSX/people/ada/._ada1.jpg": b"metadata",
    }
    path = tmp / "people.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in members.items():
            # Both kinds every zip tool writes: stored (photos often are) and deflated.
            kind = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            zipped.writestr(name, data, compress_type=kind)
    return path


FAILURES = {
    "people/bad-id/photo.jpg": "222018",
    "people/blurry/blurred.jpg": "223114",
    "people/broken/broken.jpg": "222203",
    "people/noface/blank.png": "222202",
}


def report(page: Page) -> dict[str, tuple[str, str]]:
    rows = [row.text for row in page.all("#import-report tbody tr")]
    found = {}
    for row in page.all("#import-report tbody tr"):
        path, code, reason = (cell.text for cell in row.find_elements("css selector", "td"))
        found[path] = (code, reason)
    assert len(found) == len(rows)
    return found


def throttle(page: Page, latency_ms: int) -> None:
    """Every request of the page takes at least this long: time enough to stop an import midway."""
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def test_bulk_import_from_a_zip(page: Page, console: Server, tmp_path: Path) -> None:
    assert v3(console, "faceset/group/add", {"group_id": "bulk"})["error_code"] == 0
    zipped = archive(tmp_path)
    page.go("#/library/bulk")
    page.visible("#users-import").click()
    page.wait(lambda d: page.js("return location.hash") == "#/import/bulk")
    page.wait(lambda d: page.js("return document.querySelector('#import-group').value") == "bulk")
    page.find("#import-zip").send_keys(str(zipped))
    page.has_text("#import-chosen", "people.zip: 10 photos of 8 users, 4 other files ignored.")

    # Slowed down, then stopped after two photos: the rest waits.
    throttle(page, 400)
    page.find("#import-start").click()
    page.wait(lambda d: int(page.find("#import-progress").get_attribute("value") or 0) >= 2)
    page.find("#import-stop").click()
    page.wait(lambda d: page.find("#import-status").text.startswith("Stopped at"))
    first_run = int(page.find("#import-progress").get_attribute("value") or 0)
    assert 2 <= first_run < 10
    throttle(page, 0)

    # The tab closed and opened again: the same zip resumes where the first run stopped.
    page.driver.refresh()
    page.visible("#import-form")
    page.js(RECORD_CALLS)
    page.wait(lambda d: page.js("return document.querySelector('#import-group').value") == "bulk")
    page.find("#import-zip").send_keys(str(zipped))
    page.visible("#import-chosen")
    page.find("#import-start").click()
    page.wait(lambda d: page.find("#import-status").text.startswith("Done"), timeout=120)
    # The first run's photos are not sent again; both runs together enrolled five and skipped one.
    status = page.find("#import-status").text
    found = re.fullmatch(
        r"Done, 10 photos: (\d+) done by an earlier run, (\d+) enrolled, "
        r"(\d+) already in the group, 4 failed\.",
        status,
    )
    assert found, status
    resumed, enrolled, skipped = (int(part) for part in found.groups())
    assert resumed + enrolled + skipped == 6 and resumed >= 1
    sent = calls(page, "faceset/user/add")
    # bad-id is refused by its name alone, before any request, as renlian import does.
    assert len(sent) == 10 - resumed - 1
    assert all(body["quality_control"] == "NORMAL" and body["user_info"] == body["user_id"] for body in sent)

    # Each failure with its code and the server's reason.
    failures = report(page)
    assert {path: code for path, (code, _) in failures.items()} == FAILURES
    assert "blur" in failures["people/blurry/blurred.jpg"][1]
    assert "letters, digits and _" in failures["people/bad-id/photo.jpg"][1]
    page.find("#import-ignored summary").click()
    ignored = page.find("#import-ignored").text
    for name in ("notes.txt", "readme.txt", "deep.jpg", "._ada1.jpg"):
        assert name in ignored, ignored
    page.shot("laptop-import-report", show="#import-status")

    listed = v3(console, "faceset/group/getusers", {"group_id": "bulk"})["result"]["user_id_list"]
    assert sorted(listed) == ["ada", "barack", "grace", "joe"]
    ada = v3(console, "faceset/face/getlist", {"user_id": "ada", "group_id": "bulk"})["result"]["face_list"]
    assert len(ada) == 2

    # In Chinese, on a phone.
    page.screen(PHONE)
    page.language("zh")
    assert page.find("#import-status").text.startswith("完成，共 10 张照片")
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-import-report-zh", show="#import-status")
    page.language("en")
    page.screen(LAPTOP)


def test_bulk_import_from_a_folder(page: Page, console: Server, tmp_path: Path) -> None:
    assert v3(console, "faceset/group/add", {"group_id": "bulk_folder"})["error_code"] == 0
    folder = tmp_path / "staff"
    for user, name in (("grace", "grace_hopper.jpg"), ("barack", "obama.jpg")):
        (folder / user).mkdir(parents=True)
        (folder / user / name).write_bytes((DATA / name).read_bytes())
    page.go("#/import/bulk_folder")
    page.wait(lambda d: page.js("return document.querySelector('#import-group').value") == "bulk_folder")
    page.find("#import-folder").send_keys(str(folder))
    page.has_text("#import-chosen", "staff: 2 photos of 2 users, 0 other files ignored.")
    page.find("#import-start").click()
    page.wait(lambda d: page.find("#import-status").text.startswith("Done"))
    assert "2 enrolled" in page.find("#import-status").text
    listed = v3(console, "faceset/group/getusers", {"group_id": "bulk_folder"})["result"]["user_id_list"]
    assert sorted(listed) == ["barack", "grace"]


def test_the_signed_in_app(console: Server) -> None:
    """The resume record's key, and the name the page shows: the app's ID and name, never a key."""
    url = console.base_url + "/console/api/app"
    answer = httpx.get(url, params={"access_token": console.token})
    assert answer.json() == {"app_id": console.app["app_id"], "name": console.app["name"]}
    assert answer.headers["cache-control"] == "private, no-store"
    assert httpx.get(url).status_code == 401
