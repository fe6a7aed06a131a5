"""The text log cannot be forged: a value a client sent (here a decoded request path) with control
characters in it is written with escapes, on the line of the record that carries it."""

from __future__ import annotations

import io
import logging
import time

import httpx

from renlian.logs import TEXT_FORMAT, TextFormatter, escape
from tests.conftest import Server


def test_control_characters_are_escaped() -> None:
    assert escape("a\nb\r\x1b[2J\\x0a\u2028") == "a\\x0ab\\x0d\\x1b[2J\\\\x0a\\x2028"
    assert escape("人脸 ok") == "人脸 ok"  # printable text, Chinese included, is left alone


def test_a_record_stays_one_line_and_a_traceback_keeps_its_lines() -> None:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(TextFormatter(TEXT_FORMAT))
    logger = logging.getLogger("renlian.test_logs")
    logger.addHandler(handler)
    try:
        logger.warning("path=%s", "/x\n2026-12-07 INFO renlian.access: forged")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = sink.getvalue().splitlines()
    assert lines[0].endswith("path=/x\\x0a2026-12-07 INFO renlian.access: forged")
    assert not any(line.startswith("2026-12-07 INFO") for line in lines)
    assert lines[-1] == "ValueError: boom"  # the traceback is the server's own text, not escaped


def test_an_encoded_newline_in_a_path_forges_no_line_of_the_server_log(server: Server) -> None:
    answer = httpx.post(
        server.base_url + "/rest/2.0/face/v2/x%0A2026-12-07%2000:00:00%20INFO%20renlian.access:%20FORGED",
        params={"access_token": server.token},
        timeout=30,
    )
    assert answer.json()["error_code"] == 216102
    carrying: list[str] = []
    deadline = time.monotonic() + 10
    while not carrying and time.monotonic() < deadline:  # the line is written once the answer is sent
        time.sleep(0.05)
        log = (server.data_dir.parent / "server.log").read_text()
        carrying = [line for line in log.splitlines() if "FORGED" in line]
    assert carrying and all("x\\x0a2026-12-07" in line for line in carrying), carrying
