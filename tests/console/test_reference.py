"""Item 9 of the console's operator work: /docs shows an example request and answer for every
operation, each example is run against a real server here (and recorded with
RENLIAN_RECORD_EXAMPLES=1), the menu's labels are unique, and error codes are a table."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import cv2
import httpx

from renlian.api import examples
from renlian.api.reference import OPERATIONS
from tests.conftest import Server, b64, read
from tests.console.browser import PHONE, Page, photo, v3

V2 = "/rest/2.0/face/v2"
V3 = "/rest/2.0/face/v3"
# The order the examples run in, each on what the earlier ones made: the v2 library, then v3's.
ORDER = [
    (examples.TOKEN, "get"),
    (examples.TOKEN, "post"),
    ("/rest/2.0/face/v1/detect", "get"),
    ("/rest/2.0/face/v1/detect", "post"),
    (f"{V2}/detect", "get"),
    (f"{V2}/detect", "post"),
    (f"{V2}/match", "get"),
    (f"{V2}/match", "post"),
    (f"{V2}/faceset/user/add", "post"),
    (f"{V2}/identify", "post"),
    (f"{V2}/verify", "post"),
    (f"{V2}/faceset/user/get", "get"),
    (f"{V2}/faceset/user/get", "post"),
    (f"{V2}/faceset/group/getlist", "get"),
    (f"{V2}/faceset/group/getlist", "post"),
    (f"{V2}/faceset/group/getusers", "get"),
    (f"{V2}/faceset/group/getusers", "post"),
    (f"{V2}/faceset/group/adduser", "post"),
    (f"{V2}/faceset/group/deleteuser", "post"),
    (f"{V2}/faceset/user/update", "post"),
    (f"{V2}/faceset/user/delete", "post"),
    (f"{V3}/faceset/group/add", "post"),
    (f"{V3}/faceset/user/add", "post"),
    (f"{V3}/faceset/user/update", "post"),
    (f"{V3}/faceset/user/get", "post"),
    (f"{V3}/faceset/face/getlist", "post"),
    (f"{V3}/faceset/group/getlist", "post"),
    (f"{V3}/faceset/group/getusers", "post"),
    (f"{V3}/faceset/user/copy", "post"),
    (f"{V3}/detect", "post"),
    (f"{V3}/match", "post"),
    (f"{V3}/search", "post"),
    (f"{V3}/multi-search", "post"),
    (f"{V3}/faceverify", "post"),
    (f"{V3}/faceset/user/delete", "post"),
    (f"{V3}/faceset/face/delete", "post"),
    (f"{V3}/faceset/group/delete", "post"),
]


def shape(value: Any) -> Any:
    """What an answer holds, values left out: keys, the shape of a list's first item, and types."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, int | float) else type(value).__name__


def filled(value: Any, values: dict[str, str]) -> Any:
    """The example with its placeholders replaced by real values."""
    if isinstance(value, dict):
        return {key: filled(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [filled(item, values) for item in value]
    if isinstance(value, str):
        for placeholder, real in values.items():
            value = value.replace(placeholder, real)
    return value


def operation_id(path: str, method: str) -> str:
    if path == examples.TOKEN:
        return f"oauth_token_{method}"
    operation = next(op for op in OPERATIONS if op.path == path)
    return f"{operation.operation_id}_{method}" if len(operation.methods) > 1 else operation.operation_id


def test_every_operation_has_an_example_in_the_order() -> None:
    every = [(op.path, method) for op in OPERATIONS for method in op.methods]
    assert sorted(ORDER) == sorted([*every, (examples.TOKEN, "get"), (examples.TOKEN, "post")])
    assert set(examples.REQUESTS) == {op.path for op in OPERATIONS} | {examples.TOKEN}


def test_every_example_runs_against_the_server(console: Server) -> None:
    smaller = cv2.resize(read("astronaut.jpg"), (0, 0), fx=0.8, fy=0.8)
    values = {
        examples.PHOTO: photo("astronaut.jpg"),
        examples.SAME_PERSON: b64(smaller),
        examples.SOMEONE_ELSE: photo("grace_hopper.jpg"),
        examples.API_KEY: console.app["api_key"],
        examples.SECRET_KEY: console.app["secret_key"],
    }
    small = {
        **values,
        examples.PHOTO: b64(cv2.resize(read("astronaut.jpg"), (160, 160))),
        examples.SOMEONE_ELSE: b64(cv2.resize(read("grace_hopper.jpg"), (160, 160))),
    }
    # Left over by an interrupted run: the examples start from an empty library.
    for group in (examples.GROUP, examples.COPY):
        v3(console, "faceset/group/delete", {"group_id": group})
    console.call(f"{V2}/faceset/user/delete", uid=examples.V2_USER)
    for group in examples.PREREQUISITE_GROUPS:
        assert v3(console, "faceset/group/add", {"group_id": group})["error_code"] == 0

    recording = os.environ.get("RENLIAN_RECORD_EXAMPLES") == "1"
    recorded = {} if recording else examples.answers()
    answers = {}
    try:
        for path, method in ORDER:
            # A photo in a URL: small, as a client sending one there would keep it.
            body = filled(examples.REQUESTS[path], small if method == "get" else values)
            url = console.base_url + path
            params = {} if path == examples.TOKEN else {"access_token": console.token}
            if method == "get":
                response = httpx.get(url, params={**params, **body}, timeout=60)
            elif isinstance(body, list) or path.startswith(V3):  # v3 bodies are JSON
                response = httpx.post(url, params=params, json=body, timeout=60)
            else:
                response = httpx.post(url, params=params, data=body, timeout=60)
            answer = response.json()
            assert answer.get("error_code", 0) == 0 and response.status_code == 200, (path, answer)
            key = operation_id(path, method)
            for secret in ("access_token", "refresh_token"):
                if secret in answer:
                    answer[secret] = examples.RECORDED_TOKEN
            answers[key] = answer
            if not recording:
                assert shape(answer) == shape(recorded[key]), (key, answer, recorded[key])
            if path.endswith("/face/getlist"):
                values[examples.FACE_TOKEN] = answer["result"]["face_list"][0]["face_token"]
    finally:
        v3(console, "faceset/group/delete", {"group_id": examples.GROUP})
    if recording:
        examples.ANSWERS.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
    assert base64.b64decode(values[examples.SAME_PERSON])  # a real photo stood in for each placeholder


def test_the_reference_page(page: Page, console: Server) -> None:
    page.driver.get(console.base_url + "/docs")
    page.wait(lambda d: len(page.all("#operations section")) == len(ORDER))
    labels = [link.text for link in page.all("#toc a")]
    assert len(labels) == len(set(labels)) == len(ORDER), labels
    assert "GET v2/detect" in labels and "POST v2/detect" in labels
    for path, method in ORDER:
        section = page.find(f"#{operation_id(path, method)}")
        request = section.find_element("css selector", "pre.example-request").text
        answer = section.find_element("css selector", "pre.example-answer").text
        assert request.startswith("curl -s") and path in request, (path, request)
        credential = "access_token=$TOKEN" if path.startswith("/rest/") else examples.API_KEY
        assert credential in request, request
        assert json.loads(answer) == examples.answers()[operation_id(path, method)]
        if path == examples.TOKEN:
            continue  # OAuth's errors are HTTP statuses, not Baidu's codes
        codes = section.find_elements("css selector", "table")[-1]
        rows = codes.find_elements("css selector", "tbody tr")
        assert rows and rows[0].find_elements("css selector", "td")[0].text.isdigit(), path
    page.js("window.scrollTo(0, 0)")
    page.shot("laptop-docs-menu")
    page.js("document.querySelector('#v3_search pre.example-request').scrollIntoView()")
    page.shot("laptop-docs-example")
    page.screen(PHONE)
    page.js("document.querySelector('#v3_search pre.example-answer').scrollIntoView()")
    page.shot("phone-docs-example")
