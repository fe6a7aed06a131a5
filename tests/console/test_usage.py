"""Item 7 of the console's operator work: the signed-in app's usage, calls and errors per API over
the last hours and days, from what the server already keeps, and which app the page is signed in to."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import Server, create_app
from tests.console.browser import LAPTOP, PHONE, Page, photo, v3


def usage(server: Server, token: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(
        server.base_url + "/console/api/usage", params={"access_token": token or server.token}, timeout=30
    ).json()
    return answer


def test_usage_of_the_signed_in_app(page: Page, console: Server) -> None:
    before = usage(console)
    # Calls of this app: three detects, two of them refused (no face: a blank photo), a group listing.
    image = {"image_type": "BASE64"}
    assert v3(console, "detect", {**image, "image": photo("astronaut.jpg")})["error_code"] == 0
    blank = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
    for _ in range(2):
        assert v3(console, "detect", {**image, "image": blank})["error_code"] != 0
    assert v3(console, "faceset/group/getlist", {})["error_code"] == 0
    # Another app's calls are not this one's.
    other = console.token_for(create_app(console.data_dir, "usage-other"))
    for _ in range(3):
        v3(console, "faceset/group/getlist", {}, token=other)

    # The stored daily counts follow within the quota flush (a second).
    deadline = time.monotonic() + 10
    while usage(console)["days"][-1]["calls"] < before["days"][-1]["calls"] + 4:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    after = usage(console)
    apis = {api["endpoint"]: api for api in after["apis"]}
    detect = apis["/rest/2.0/face/v3/detect"]
    old = {api["endpoint"]: api for api in before["apis"]}.get(
        "/rest/2.0/face/v3/detect", {"calls": 0, "errors": 0}
    )
    assert detect["calls"] - old["calls"] == 3 and detect["errors"] - old["errors"] == 2
    other_usage = usage(console, other)
    assert [api["endpoint"] for api in other_usage["apis"]] == ["/rest/2.0/face/v3/faceset/group/getlist"]
    assert other_usage["apis"][0]["calls"] == 3 and len(other_usage["days"]) == 14

    # The page: which app, per day, per hour, per API with its error codes.
    page.go("#/usage")
    app = console.app
    page.has_text("#app-name", f"App {app['name']} · {app['app_id']}")
    page.has_text("#usage-app", f"Signed in to app {app['name']} (app_id {app['app_id']}).")
    assert len(page.all("#usage-days .bar")) == 14 and len(page.all("#usage-hours .bar")) == 24
    assert int(page.all("#usage-days .bar")[-1].get_attribute("data-value") or 0) >= 4
    assert int(page.all("#usage-hours .bar")[-1].get_attribute("data-value") or 0) >= 4
    rows = {row.find_elements("css selector", "td")[0].text: row for row in page.all("#usage-apis tbody tr")}
    cells = [cell.text for cell in rows["v3/detect"].find_elements("css selector", "td")]
    assert int(cells[1]) >= 3 and int(cells[2]) >= 2 and "× " in cells[3]
    assert "has-errors" in str(rows["v3/detect"].get_attribute("class"))
    page.shot("laptop-usage", show="#usage-hours")

    # In Chinese, on a phone.
    page.screen(PHONE)
    page.language("zh")
    page.has_text("#app-name", f"应用 {app['name']} · {app['app_id']}")
    page.wait(lambda d: page.find("#usage-limits").text.startswith("今日 "))
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-usage-zh")
    page.language("en")
    page.screen(LAPTOP)
