"""Item 8 of the console's operator work: `/` leads to the console, the console and /docs link to each
other, the first screen has no empty card, and /metrics labels what used to pass as success or
`unknown`: failed token requests, static files, thumbnails and the console's own reads."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Server, b64, read
from tests.console.browser import PHONE, Page, v3


def samples(server: Server) -> dict[str, float]:
    text = httpx.get(server.base_url + "/metrics").text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_the_root_the_console_and_the_reference_lead_to_each_other(page: Page, console: Server) -> None:
    moved = httpx.get(console.base_url + "/")
    assert moved.status_code == 307 and moved.headers["location"] == "console/"

    # The first screen after signing in: groups and their users, no empty card beside them.
    page.driver.get(console.base_url + "/")
    page.wait(lambda d: d.current_url.startswith(console.base_url + "/console/"))
    page.visible("#groups-panel")
    assert not page.find("#user-panel").is_displayed()
    page.shot("laptop-first-screen")

    # The console links to the reference, which links back.
    page.find("#docs-link").click()
    page.wait(lambda d: d.current_url == console.base_url + "/docs")
    page.visible("#operations section")
    page.find("#console-link").click()
    page.wait(lambda d: d.current_url.startswith(console.base_url + "/console/"))
    page.visible("#tabs")  # still signed in: the token lives in the tab's sessionStorage
    page.language("zh")
    page.has_text("#docs-link", "API 文档")
    page.screen(PHONE)
    assert page.find("#docs-link").is_displayed()
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.language("en")


def test_metrics_label_what_is_not_the_api(console: Server) -> None:
    base = console.base_url
    token = "/oauth/2.0/token"
    keys = {"grant_type": "client_credentials", "client_id": console.app["api_key"]}
    before = samples(console)

    # A failed sign-in: its own code and its status, never the success code 0.
    refused = httpx.post(base + token, data={**keys, "client_secret": "wrong"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert (
        httpx.post(base + token, data={**keys, "client_secret": console.app["secret_key"]}).status_code == 200
    )

    # A thumbnail, found and not; the page and its files; the reference's files; the console's reads.
    added = v3(
        console,
        "faceset/user/add",
        {"group_id": "metered", "user_id": "m", "image": b64(read("obama.jpg")), "image_type": "BASE64"},
    )
    face = added["result"]["face_token"]
    thumbnails = base + "/console/api/faces/{}.jpg"
    assert httpx.get(thumbnails.format(face), params={"access_token": console.token}).status_code == 200
    assert httpx.get(thumbnails.format("0" * 32), params={"access_token": console.token}).status_code == 404
    for path in ("/console/", "/console/app.js", "/console/nothing.js", "/docs/docs.js", "/no/such/path"):
        httpx.get(base + path)
    httpx.get(base + "/console/api/usage", params={"access_token": console.token})

    after = samples(console)

    def grew(name: str, by: float = 1) -> bool:
        return after.get(name, 0) - before.get(name, 0) >= by

    requests = 'renlian_requests_total{{endpoint="{}",error_code="{}",protocol="{}"}}'
    responses = 'renlian_http_responses_total{{endpoint="{}",status="{}"}}'
    assert grew(requests.format(token, "invalid_client", "oauth"))
    assert grew(responses.format(token, "401"))
    assert grew(requests.format(token, "0", "oauth")) and grew(responses.format(token, "200"))
    thumbnail = "/console/api/faces/{face_token}.jpg"
    assert grew(requests.format(thumbnail, "0", "other")) and grew(
        requests.format(thumbnail, "http_404", "other")
    )
    assert grew(responses.format(thumbnail, "404"))
    assert grew(requests.format("/console/", "0", "other"))
    assert grew(requests.format("/console/{name}", "0", "other"))
    assert grew(requests.format("/console/{name}", "http_404", "other"))
    assert grew(requests.format("/docs/{asset}", "0", "other"))
    assert grew(requests.format("/console/api/usage", "0", "other"))
    assert grew(requests.format("unknown", "http_404", "other"))
    # Labels are route templates: no face_token, file name or key is a label.
    text = httpx.get(base + "/metrics").text
    for value in (face, "nothing.js", console.app["api_key"], console.token):
        assert value not in text
    assert not re.search(r'endpoint="/console/[a-z]+\.js"', text)
