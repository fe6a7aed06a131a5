"""Item 3 of the console's operator work: a search says what it found, in words, at the operator's
threshold, and never shows a candidate as a match."""

from __future__ import annotations

import math

from selenium.webdriver.support.ui import Select

from tests.conftest import Server
from tests.console.browser import LAPTOP, PHONE, Page, photo, v3


def search(page: Page, group: str, picture: str) -> None:
    page.go("#/search")
    page.wait(lambda d: group in page.find("#search-group").text)
    Select(page.find("#search-group")).select_by_value(group)
    page.choose("#search-form", picture)
    page.find("#search-form button[type=submit]").click()
    page.visible("#search-headline")


def threshold(page: Page, value: int) -> None:
    field = page.find("#search-threshold")
    field.clear()
    field.send_keys(str(value))


def test_search_says_what_it_found(page: Page, console: Server) -> None:
    group = "searchable"
    assert v3(console, "faceset/group/add", {"group_id": group})["error_code"] == 0
    for user, picture in (("collins", "astronaut.jpg"), ("hopper", "grace_hopper.jpg")):
        body = {"group_id": group, "user_id": user, "image": photo(picture), "image_type": "BASE64"}
        assert v3(console, "faceset/user/add", body)["error_code"] == 0

    # Someone enrolled: the best match, at its score, as a match.
    search(page, group, "astronaut.jpg")
    page.wait(lambda d: page.find("#search-headline").text.startswith("Best match: collins at "))
    best = page.find("#search-results li.match")
    assert best.find_element("css selector", ".user-id").text == "collins"
    assert float(best.find_element("css selector", ".score-value").text) >= 80
    # Hopper is below 80: a candidate, apart from the matches.
    candidate = page.find("#search-candidates li.candidate")
    assert candidate.find_element("css selector", ".user-id").text == "hopper"
    assert "Candidates below 80" in page.find("#search-candidates-title").text
    page.shot("laptop-search-match", show="#search-headline")

    # Someone not enrolled: nobody reaches 80, said first; the users found are candidates only.
    search(page, group, "obama.jpg")
    page.has_text("#search-headline", f"No one scores 80 or more in {group}.")
    assert page.all("#search-results li") == []
    candidates = page.all("#search-candidates li.candidate")
    assert len(candidates) == 2
    assert "same" not in str(page.find("#search-headline").get_attribute("class")).split()
    page.shot("laptop-search-nobody", show="#search-headline")

    # The threshold is the operator's: lowered under the best candidate's score, that one becomes the
    # best match, with no new request (the server was asked for every candidate).
    answer = v3(
        console,
        "search",
        {"image": photo("obama.jpg"), "image_type": "BASE64", "group_id_list": group, "match_threshold": 0},
    )
    top = answer["result"]["user_list"][0]
    threshold(page, math.floor(top["score"]))
    page.wait(lambda d: page.find("#search-headline").text.startswith(f"Best match: {top['user_id']} at "))
    threshold(page, 80)
    page.has_text("#search-headline", f"No one scores 80 or more in {group}.")

    # In Chinese, on a phone.
    page.screen(PHONE)
    page.language("zh")
    page.has_text("#search-headline", f"{group} 中没有人达到 80 分。")
    assert "低于 80 分的候选人" in page.find("#search-candidates-title").text
    assert page.js("return document.documentElement.scrollWidth") <= PHONE[0]
    page.shot("phone-search-nobody-zh", show="#search-headline")
    page.language("en")
    page.screen(LAPTOP)
