"""How /rest requests are read: credentials before bodies, bounded bodies, and inputs that cannot crash."""

from __future__ import annotations

import base64
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np

from tests.conftest import Server, b64

DETECT = "/rest/2.0/face/v2/detect"
MATCH = "/rest/2.0/face/v2/match"
IDENTIFY = "/rest/2.0/face/v2/identify"
VERIFY = "/rest/2.0/face/v2/verify"
ADD = "/rest/2.0/face/v2/faceset/user/add"
UPDATE = "/rest/2.0/face/v2/faceset/user/update"
GET = "/rest/2.0/face/v2/faceset/user/get"
GETLIST = "/rest/2.0/face/v2/faceset/group/getlist"
IDENTIFY_BODY_LIMIT = 10 * 1024 * 1024 * 5 // 4 + 64 * 1024
FACEVERIFY = "/rest/2.0/face/v3/faceverify"
# Eight images of detect's 2 MiB, with the same headroom.
FACEVERIFY_BODY_LIMIT = 8 * 2 * 1024 * 1024 * 5 // 4 + 64 * 1024


def raw_exchange(server: Server, head: str, body_chunks: list[bytes], timeout: float = 10) -> dict[str, Any]:
    """Send a request head and then some body bytes over a socket, and read the JSON answer; the
    body may be shorter than announced, so an answer proves the server did not wait for the rest."""
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: what the test wants to see
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 200"), answer[:300]
    body = rest.partition(b"\r\n\r\n")[2]
    if b"{" not in body:
        raise AssertionError(f"no JSON in {answer[:300]!r}")
    return dict(json.loads(body[body.index(b"{") : body.rindex(b"}") + 1]))


def test_bad_credentials_are_refused_before_the_body_is_read(server: Server) -> None:
    head = (
        f"POST {IDENTIFY}?access_token=never-issued HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9000000\r\n\r\n"
    )
    # Only a sliver of the announced 9 MB is sent: the answer must not wait for the rest.
    answer = raw_exchange(server, head, [b"group_id=g&images="])
    assert answer["error_code"] == 110


def test_a_declared_body_over_the_limit_is_refused_unread(server: Server) -> None:
    head = (
        f"POST {IDENTIFY}?access_token={server.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {IDENTIFY_BODY_LIMIT + 1}\r\n\r\n"
    )
    assert raw_exchange(server, head, [b"group_id=g"])["error_code"] == 216202


def test_a_chunked_body_is_refused_once_it_passes_the_limit(server: Server) -> None:
    head = (
        f"POST {IDENTIFY}?access_token={server.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"A" * (1024 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    # A little past the limit, and never the closing zero-length chunk: only a server that counts
    # bytes as they stream in can answer this.
    count = IDENTIFY_BODY_LIMIT // len(chunk) + 2
    assert raw_exchange(server, head, [framed] * count)["error_code"] == 216202


def large_photo(astronaut: np.ndarray) -> str:
    """About 1.6 MB of base64 (a noisy 1400 px photo with one face): under the spec's 2 MB."""
    big = cv2.resize(astronaut, (1400, 1400), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(big.astype(np.int16) + np.random.default_rng(0).integers(-12, 12, big.shape), 0, 255)
    _, encoded = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 97])
    return base64.b64encode(encoded.tobytes()).decode()


def test_a_token_in_the_form_body_allows_the_full_detect_size(server: Server, astronaut: np.ndarray) -> None:
    # Over the 1 MiB a form field could once have.
    image = large_photo(astronaut)
    assert 1024 * 1024 < len(image) < 2 * 1024 * 1024
    body = httpx.post(
        server.base_url + DETECT, data={"access_token": server.token, "image": image}, timeout=60
    ).json()
    assert body.get("error_code") is None and body["result_num"] == 1, body


def test_faceverify_takes_eight_images_of_detects_size(server: Server, astronaut: np.ndarray) -> None:
    image = large_photo(astronaut)
    assert 1.4e6 < len(image) < 2 * 1024 * 1024
    body = [{"image": image, "image_type": "BASE64", "option": "COMMON"}] * 8  # about 12.6 MB of JSON
    answer = httpx.post(
        server.base_url + FACEVERIFY, params={"access_token": server.token}, json=body, timeout=120
    ).json()
    assert answer["error_code"] == 0, (answer["error_code"], answer["error_msg"])
    assert len(answer["result"]["face_list"]) == 8


def test_faceverify_refuses_a_body_over_its_limit_and_an_image_over_detects(server: Server) -> None:
    head = (
        f"POST {FACEVERIFY}?access_token={server.token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {FACEVERIFY_BODY_LIMIT + 1}\r\n\r\n"
    )
    # v3 answers 216202 (image size error) as 222203, "image check fail".
    assert raw_exchange(server, head, [b'[{"image": "'])["error_code"] == 222203
    # The body's room is for eight images: one alone is still held to detect's 2 MiB.
    body = [{"image": "A" * (2 * 1024 * 1024 + 4), "image_type": "BASE64"}]
    answer = httpx.post(
        server.base_url + FACEVERIFY, params={"access_token": server.token}, json=body, timeout=60
    ).json()
    assert answer["error_code"] == 222203, answer


def test_data_uri_images_work_in_every_image_field(server: Server, astronaut: np.ndarray) -> None:
    uri = "data:image/jpeg;base64," + b64(astronaut)
    assert server.call(DETECT, image=uri)["result_num"] == 1
    assert server.call(MATCH, images=f"{uri},{uri}")["result"][0]["score"] > 90
    assert "error_code" not in server.call(ADD, uid="uri", user_info="u", group_id="uris", images=uri)
    assert "error_code" not in server.call(UPDATE, uid="uri", images=f"{uri},{b64(astronaut, '.png')}")
    assert server.call(IDENTIFY, group_id="uris", images=uri)["result"][0]["uid"] == "uri"
    assert server.call(VERIFY, uid="uri", group_id="uris", images=uri, top_num="5")["result_num"] == 2


def test_images_per_request_are_capped(server: Server, astronaut: np.ndarray) -> None:
    many = ",".join([b64(cv2.resize(astronaut, (128, 128)))] * 11)
    assert (
        server.call(UPDATE, uid="capped", group_id="caps", action_type="replace", images=many)["error_code"]
        == 216103
    )


def test_malformed_numbers_and_ids_get_spec_codes(server: Server, astronaut: np.ndarray) -> None:
    image = b64(cv2.resize(astronaut, (128, 128)))
    for bad in ("²", "１", "1" * 5000, "1e3", " "):
        assert server.call(DETECT, image=image, max_face_num=bad).get("error_code") == 216100, bad
    for bad in ("abc\n", "a b", "ä", "x" * 129, "abc\x00"):
        assert server.call(GET, uid=bad)["error_code"] == 216111, repr(bad)
    assert server.call(IDENTIFY, group_id="g\nh", images=image)["error_code"] == 216100
    assert server.call(GETLIST, start="٣")["error_code"] == 216100


def test_log_ids_are_exact_in_javascript_and_increase(server: Server) -> None:
    ids = [server.call(GETLIST)["log_id"] for _ in range(5)]
    assert all(0 < log_id < 2**53 for log_id in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # They follow the clock: an id made now is within a second of now's milliseconds times 1024.
    assert abs(ids[-1] / 1024 - time.time() * 1000) < 1000
