"""Item 2 of the console's operator work: a group of any size has a count, a filter over the whole
group, pages, and a link to every user."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import Server, create_app
from tests.console.browser import LAPTOP, PHONE, Page
from tests.console.crowd import fill_group

USERS = 1500


def listing(server: Server, group: str, token: str | None = None, **params: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/console/api/groups/{group}/users",
        params={"access_token": token or server.token, **params},
        timeout=30,
    )


@pytest.fixture(scope="module")
def crowd(console: Server) -> str:
    fill_group(console, "crowd", USERS)
    # The server's index follows the store's writes within a poll.
    deadline = time.monotonic() + 30
    while listing(console, "crowd").json()["face_num"] < USERS:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return "crowd"


def test_a_group_of_1500_users(page: Page, crowd: str) -> None:

    page.go("#/library/crowd")
    page.has_text("#users-count", "1,500 users, 1,500 faces")
    assert len(page.all("#user-list li")) == 100
    page.has_text("#users-range", "1–100 of 1,500")
    assert not page.find("#users-prev").is_enabled()
    page.find("#users-next").click()
    page.has_text("#users-range", "101–200 of 1,500")
    assert page.all("#user-list a")[0].text.startswith("user_0100")
    page.shot("laptop-group-pages")

    # The filter searches the whole group on the server, by ID or by info.
    page.find("#user-filter").send_keys("user_149")
    page.has_text("#users-count", "10 of 1,500 users match “user_149”")
    assert [a.text.split("\n")[0] for a in page.all("#user-list a")] == [
        f"user_{n}" for n in range(1490, 1500)
    ]
    assert not page.find("#users-pager").is_displayed()
    page.shot("laptop-group-filter")
    page.find("#user-filter").clear()
    page.find("#user-filter").send_keys("Person 1234")
    page.has_text("#users-count", "1 of 1,500 users match “Person 1234”")
    page.find("#user-filter").send_keys("5")
    page.wait(lambda d: page.find("#users-empty").is_displayed())
    assert "Person 12345" in page.find("#users-empty").text

    # A direct link reaches any user, however far down the group's list.
    page.go("#/library/crowd/user_1499")
    page.has_text("#user-title", "user_1499")
    page.has_text("#user-info", "Person 1499")
    page.wait(
        lambda d: page.js("const i = document.querySelector('#faces img'); return i && i.naturalWidth") == 112
    )
    # A user that is not in the group: said so, and back to the group.
    page.go("#/library/crowd/nobody_here")
    page.toast("nobody_here is not in crowd")
    page.wait(lambda d: page.js("return location.hash") == "#/library/crowd")

    # Chinese, on a phone.
    page.screen(PHONE)
    page.language("zh")
    page.find("#user-filter").clear()
    page.find("#user-filter").send_keys("x")  # a change, so that the emptied filter is read
    page.find("#user-filter").clear()
    page.find("#user-filter").send_keys("user_1")
    page.has_text("#users-count", "1,500 个用户中有 500 个匹配“user_1”")
    page.has_text("#users-range", "第 1–100 个，共 500 个")
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-group-filter-zh")
    page.language("en")
    page.screen(LAPTOP)


def test_the_user_listing_is_the_apps_own(console: Server, crowd: str) -> None:
    assert listing(console, "crowd", length="1").json()["user_list"] == [
        {"user_id": "user_0000", "user_info": "Person 0"}
    ]
    other = console.token_for(create_app(console.data_dir, "listing-other"))
    # Another app's group does not exist for this one; nor does a malformed or unknown group.
    for group, token in (("crowd", other), ("no_such_group", None), ("bad%20id", None), ("a,b", None)):
        assert listing(console, group, token).status_code == 404, group
    assert listing(console, "crowd", "not-a-token").status_code == 401
    assert httpx.get(f"{console.base_url}/console/api/groups/crowd/users").status_code == 401
    for bad in ({"length": "1001"}, {"length": "0"}, {"start": "-1"}, {"start": "x"}):
        refused = listing(console, "crowd", **bad)
        assert refused.status_code == 400 and next(iter(bad)) in refused.json()["detail"], bad
