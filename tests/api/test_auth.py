"""Credentials over real HTTP: OAuth tokens, bce-auth-v1 signatures, app switches and quotas."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import numpy as np

from tests.conftest import Server, b64, create_app, start_server
from tests.token_rows import add_token_row

TOKEN = "/oauth/2.0/token"
GETLIST = "/rest/2.0/face/v2/faceset/group/getlist"
DETECT = "/rest/2.0/face/v2/detect"


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renlian.cli", "apps", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def grant(server: Server, app: dict[str, str], method: str = "GET", **extra: str) -> httpx.Response:
    fields = {
        "grant_type": "client_credentials",
        "client_id": app["api_key"],
        "client_secret": app["secret_key"],
    }
    fields.update(extra)
    if method == "GET":
        return httpx.get(server.base_url + TOKEN, params=fields)
    return httpx.post(server.base_url + TOKEN, data=fields)


def error_code(response: httpx.Response) -> Any:
    return response.json().get("error_code")


def test_token_endpoint_get_and_post(server: Server) -> None:
    for method in ("GET", "POST"):
        body = grant(server, server.app, method).json()
        assert set(body) == {"access_token", "expires_in", "refresh_token", "scope"}
        assert body["expires_in"] == 30 * 24 * 3600
        assert "brain_all_scope" in body["scope"].split(" ")
        assert body["access_token"].startswith("24.") and body["access_token"].endswith(
            "." + server.app["app_id"]
        )
        assert error_code(server.post(GETLIST, token=body["access_token"])) is None


def test_token_errors_in_baidu_oauth_shape(server: Server) -> None:
    wrong = grant(server, {**server.app, "secret_key": "x" * 32})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid_client", "error_description": "Client authentication failed"}
    unknown = grant(server, {**server.app, "api_key": "nobody"})
    assert unknown.json() == {"error": "invalid_client", "error_description": "unknown client id"}
    bad_grant = grant(server, server.app, grant_type="password")
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "unsupported_grant_type")
    missing = httpx.get(server.base_url + TOKEN, params={"grant_type": "client_credentials"})
    assert missing.json()["error"] == "invalid_request"


def test_refresh_token_grant(server: Server) -> None:
    first = grant(server, server.app).json()
    refreshed = httpx.post(
        server.base_url + TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    ).json()
    assert refreshed["access_token"] != first["access_token"]
    assert error_code(server.post(GETLIST, token=refreshed["access_token"])) is None
    bogus = httpx.post(server.base_url + TOKEN, data={"grant_type": "refresh_token", "refresh_token": "25.x"})
    assert bogus.status_code == 401


def mac_token(app: dict[str, str], expires_at: int, prefix: str = "24", ttl: int = 2592000) -> str:
    """A token built by hand as docs/security.md describes it (HMAC-SHA256 under a key derived from
    the secret key, cut to 128 bits), not by renlian's code."""
    unsigned = f"{ttl}.{expires_at}.1.31415926.{app['app_id']}"
    key = hmac.new(app["secret_key"].encode(), b"renlian token key 1", hashlib.sha256).digest()
    mac = hmac.new(key, f"{prefix}.{unsigned}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{prefix}.{mac}.{unsigned}"


def test_missing_unknown_and_expired_tokens(server: Server) -> None:
    assert error_code(httpx.post(server.base_url + GETLIST)) == 100
    assert error_code(server.post(GETLIST, token="24.not-a-token")) == 110
    now = int(time.time())
    assert error_code(server.post(GETLIST, token=mac_token(server.app, now + 60))) is None
    assert error_code(server.post(GETLIST, token=mac_token(server.app, now - 1))) == 111
    # A token in the form body works like one in the query string.
    fresh = grant(server, server.app).json()["access_token"]
    assert error_code(httpx.post(server.base_url + GETLIST, data={"access_token": fresh})) is None


def store_state(data_dir: Path) -> tuple[int, int, int]:
    """(token rows, store file bytes, write-ahead log bytes)."""
    path = data_dir / "renlian.sqlite3"
    db = sqlite3.connect(path)
    try:
        (rows,) = db.execute("SELECT COUNT(*) FROM tokens").fetchone()
    finally:
        db.close()
    wal = path.with_name(path.name + "-wal")
    return rows, path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def test_tokens_cost_no_store_write_and_work_on_every_process(tmp_path: Path) -> None:
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    first = start_server(tmp_path / "first")
    second: Server | None = None
    try:
        app = first.app
        before = store_state(first.data_dir)
        issued = [grant(first, app, ("GET", "POST")[n % 2]).json() for n in range(200)]
        refreshed = [
            httpx.post(
                first.base_url + TOKEN,
                data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
            ).json()
            for body in issued[:20]
        ]
        assert store_state(first.data_dir) == before  # no row, no byte
        tokens = [body["access_token"] for body in issued + refreshed]
        assert len(set(tokens)) == len(tokens)
        # Baidu's shape, which the SDKs' query strings carry as it is (test_sdk_node.py).
        assert all(re.fullmatch(r"24\.[0-9a-f]{32}\.[0-9.]+", token) for token in tokens)
        assert all(re.fullmatch(r"25\.[0-9a-f]{32}\.[0-9.]+", body["refresh_token"]) for body in issued)
        # A second process on the same store checks the first one's tokens by itself.
        second = start_server(tmp_path / "second", {"RENLIAN_DATA_DIR": str(first.data_dir)}, app=app)
        for node in (first, second):
            assert error_code(node.post(GETLIST, token=tokens[0])) is None
            assert error_code(node.post(GETLIST, token=tokens[-1])) is None
        # Tampered: the MAC, the expiry, the app, the kind; each is refused as an unknown token.
        token = tokens[0]
        prefix, mac, ttl, expires, rest = token.split(".", 4)
        other = create_app(first.data_dir, "other")
        flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
        for tampered in (
            f"{prefix}.{flipped}.{ttl}.{expires}.{rest}",
            f"{prefix}.{mac}.{ttl}.{int(expires) + 3600}.{rest}",
            f"{prefix}.{mac}.{ttl}.{expires}.{rest.rsplit('.', 1)[0]}.{other['app_id']}",
            "25." + token.removeprefix("24."),
            issued[0]["refresh_token"],
        ):
            assert error_code(second.post(GETLIST, token=tampered)) == 110, tampered
        # Rotating the secret revokes the tokens on every process, the refresh tokens too.
        cli(first, "rotate-secret", app["app_id"])
        for node in (first, second):
            assert error_code(node.post(GETLIST, token=tokens[0])) == 110
        stale = httpx.post(
            second.base_url + TOKEN,
            data={"grant_type": "refresh_token", "refresh_token": issued[1]["refresh_token"]},
        )
        assert stale.status_code == 401
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_tokens_issued_before_tokens_were_macs_work_until_they_expire(server: Server) -> None:
    app = create_app(server.data_dir, "rows")
    now = int(time.time())
    live = f"24.{secrets.token_hex(16)}.2592000.{now + 3600}.{app['app_id']}"
    expired = f"24.{secrets.token_hex(16)}.2592000.{now - 60}.{app['app_id']}"
    refresh = f"25.{secrets.token_hex(16)}.315360000.{now + 3600}.{app['app_id']}"
    db = sqlite3.connect(server.data_dir / "renlian.sqlite3")
    with db:
        for token, kind, expires_at in ((live, "access", now + 3600), (expired, "access", now - 60)):
            add_token_row(db, hashlib.sha256(token.encode()).hexdigest(), app["app_id"], kind, expires_at)
        add_token_row(db, hashlib.sha256(refresh.encode()).hexdigest(), app["app_id"], "refresh", now + 3600)
    db.close()
    assert error_code(server.post(GETLIST, token=live)) is None
    assert error_code(server.post(GETLIST, token=live + "?aipSdk=node")) is None
    assert error_code(server.post(GETLIST, token=expired)) == 111
    renewed = httpx.post(
        server.base_url + TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert error_code(server.post(GETLIST, token=renewed.json()["access_token"])) is None
    cli(server, "rotate-secret", app["app_id"])
    assert error_code(server.post(GETLIST, token=live)) == 110


def signed_headers(
    app: dict[str, str],
    method: str,
    path: str,
    query: dict[str, str],
    host: str,
    when: datetime,
    expiration: str = "1800",
) -> dict[str, str]:
    """bce-auth-v1 headers computed the way baidu-aip's AipBase._getAuthHeaders computes them."""
    timestamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"Host": host, "x-bce-date": timestamp}
    scope = f"bce-auth-v1/{app['api_key']}/{timestamp}/{expiration}"
    signing_key = hmac.new(app["secret_key"].encode(), scope.encode(), hashlib.sha256).hexdigest()
    canonical_headers = "\n".join(
        sorted(f"{quote(k.strip(), '').lower()}:{quote(v.strip(), '')}" for k, v in headers.items())
    )
    canonical = "\n".join(
        [
            method,
            quote(path),
            "&".join(sorted(urlencode(query).split("&"))) if query else "",
            canonical_headers,
        ]
    )
    signature = hmac.new(signing_key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"{scope}/host;x-bce-date/{signature}"
    return headers


def signed_post(
    server: Server,
    app: dict[str, str],
    *,
    host: str = "127.0.0.1",
    age: float = 0,
    send_host: str | None = None,
    secret: str | None = None,
    expiration: str = "1800",
) -> httpx.Response:
    query = {"aipSdk": "python", "aipVersion": "1_6_7"}
    when = datetime.now(UTC) - timedelta(seconds=age)
    headers = signed_headers(
        {**app, "secret_key": secret or app["secret_key"]}, "POST", GETLIST, query, host, when, expiration
    )
    if send_host:
        headers["Host"] = send_host
    return httpx.post(server.base_url + GETLIST, params=query, headers=headers)


def test_bce_auth_v1_signatures(server: Server) -> None:
    app = server.app
    assert error_code(signed_post(server, app)) is None
    assert error_code(signed_post(server, app, secret="y" * 32)) == 110
    assert error_code(signed_post(server, {**app, "api_key": "unknown"})) == 110
    assert error_code(signed_post(server, app, age=3600)) == 111  # older than its 1800 s window
    assert error_code(signed_post(server, app, age=-900)) == 111  # further ahead than the 300 s skew
    assert error_code(signed_post(server, app, age=-60)) is None  # small skew is tolerated
    # The host the client signed must be the host it sent.
    assert error_code(signed_post(server, app, send_host="attacker.example")) == 110
    malformed = httpx.post(server.base_url + GETLIST, headers={"authorization": "bce-auth-v1/only/three"})
    assert error_code(malformed) == 100
    no_host = httpx.post(
        server.base_url + GETLIST,
        headers={"authorization": f"bce-auth-v1/{app['api_key']}/2026-01-01T00:00:00Z/1800/x-bce-date/abc"},
    )
    assert error_code(no_host) == 100


def default_signed_post(
    server: Server, app: dict[str, str], altered: dict[str, str] | None = None
) -> httpx.Response:
    """A POST signed as BCE's SDKs sign with no signed-headers list: the canonical request holds
    host, content-length, content-type, content-md5 and every x-bce-* header, and the authorization
    names none of them (`.../1800//signature`). `altered` headers are changed after signing."""
    body = b"start=0&end=10"
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "Host": "127.0.0.1",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        "x-bce-date": timestamp,
        "x-bce-request-id": "8f7b8e2c-1",
    }
    query = {"aipSdk": "java"}
    scope = f"bce-auth-v1/{app['api_key']}/{timestamp}/1800"
    signing_key = hmac.new(app["secret_key"].encode(), scope.encode(), hashlib.sha256).hexdigest()
    canonical = "\n".join(
        [
            "POST",
            quote(GETLIST),
            urlencode(query),
            "\n".join(sorted(f"{quote(k.lower(), '')}:{quote(v.strip(), '')}" for k, v in headers.items())),
        ]
    )
    signature = hmac.new(signing_key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    sent = {**headers, **(altered or {}), "authorization": f"{scope}//{signature}"}
    return httpx.post(server.base_url + GETLIST, params=query, headers=sent, content=body)


def test_an_empty_signed_headers_field_signs_bces_default_headers(server: Server) -> None:
    app = server.app
    assert error_code(default_signed_post(server, app)) is None
    # Each header of the default set is signed: changed after signing, the signature fails.
    for altered in (
        {"Content-Type": "application/json"},
        {"Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()},
        {"x-bce-request-id": "replayed"},
        {"x-bce-extra": "added after signing"},
        {"Host": "attacker.example"},
    ):
        assert error_code(default_signed_post(server, app, altered)) == 110, altered
    # The default set is signed or nothing is: a request without a Host header is refused (HTTP/1.0).
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request = (
        f"POST {GETLIST} HTTP/1.0\r\nauthorization: bce-auth-v1/{app['api_key']}/{timestamp}/1800//"
        f"{'0' * 64}\r\ncontent-length: 0\r\n\r\n"
    ).encode()
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error_code"] == 100


def test_a_signature_is_valid_for_the_servers_window_whatever_it_claims(server: Server) -> None:
    app = server.app
    # A correctly signed header that claims a billion seconds: replayable for decades if trusted.
    assert error_code(signed_post(server, app, age=7200, expiration="1000000000")) == 111
    assert error_code(signed_post(server, app, age=1700, expiration="1000000000")) is None
    assert error_code(signed_post(server, app, age=60, expiration="120")) is None
    assert error_code(signed_post(server, app, age=200, expiration="120")) == 111


def test_malformed_signatures_get_auth_codes(server: Server) -> None:
    key = server.app["api_key"]
    for header, code in (
        (f"bce-auth-v1/{key}/2026-01-01T00:00:00Z/²/host/abc", 100),
        (f"bce-auth-v1/{key}/2026-01-01T00:00:00Z/{'9' * 5000}/host/abc", 100),
        (f"bce-auth-v1/{key}/２０２６-01-01T00:00:00Z/1800/host/abc", 100),
    ):
        sent = {b"authorization": header.encode()}  # as UTF-8 bytes, which httpx passes through
        assert error_code(httpx.post(server.base_url + GETLIST, headers=sent)) == code, header[:60]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Non-ASCII in the signature itself: a mismatch like any other, not a crash.
    header = f"bce-auth-v1/{key}/{now}/1800/host/é{'0' * 63}"
    sent = {b"authorization": header.encode()}
    assert error_code(httpx.post(server.base_url + GETLIST, headers=sent)) == 110


def test_rotating_the_secret_revokes_tokens(server: Server) -> None:
    app = create_app(server.data_dir, "rotating")
    token = server.token_for(app)
    assert error_code(server.post(GETLIST, token=token)) is None
    cli(server, "rotate-secret", app["app_id"])
    assert error_code(server.post(GETLIST, token=token)) == 110
    assert grant(server, app).status_code == 401


def test_a_closed_capability_is_216015(server: Server, astronaut: np.ndarray) -> None:
    app = create_app(server.data_dir, "closing")
    token = server.token_for(app)
    cli(server, "set", app["app_id"], "--close", "detect")
    assert error_code(server.post(DETECT, {"image": b64(astronaut)}, token=token)) == 216015
    assert error_code(server.post(GETLIST, token=token)) is None  # other capabilities stay open
    cli(server, "set", app["app_id"], "--open", "detect")
    assert error_code(server.post(DETECT, {"image": b64(astronaut)}, token=token)) is None


def test_apps_cli_lists_and_deletes(server: Server) -> None:
    app = create_app(server.data_dir, "short_lived")
    listed = cli(server, "list").stdout
    assert app["api_key"] in listed and '"name": "short_lived"' in listed
    token = server.token_for(app)
    cli(server, "delete", app["app_id"])
    assert error_code(server.post(GETLIST, token=token)) == 110
    assert app["api_key"] not in cli(server, "list").stdout


def test_quotas_and_their_persistence(tmp_path: Path, astronaut: np.ndarray) -> None:
    first = start_server(tmp_path, {"RENLIAN_MAX_CONCURRENT_REQUESTS": "1"})
    app = first.app
    try:
        cli(first, "set", app["app_id"], "--qps", "2")
        # A third request within a second of two admitted ones is refused. A loaded machine can
        # spread three requests over more than a second, so ask until one is refused (or clearly
        # never will be).
        codes: list[int | None] = []
        while 18 not in codes and len(codes) < 12:
            codes.append(error_code(first.post(GETLIST)))
        assert codes[-1] == 18 and set(codes[:-1]) == {None} and len(codes) >= 3, codes
        # The admitted requests are counted (the refused one is not): a daily quota of that many
        # plus 3 allows 3 more.
        counted = len(codes) - 1
        cli(first, "set", app["app_id"], "--qps", "0", "--daily", str(counted + 3))
        assert [error_code(first.post(GETLIST)) for _ in range(4)] == [None, None, None, 17]
        # One request at a time: a second one while a slow detect runs is refused with 4.
        cli(first, "set", app["app_id"], "--daily", "0")
        many = {"image": b64(np.tile(astronaut, (4, 4, 1))), "max_face_num": "16", "face_fields": "landmark"}

        def compete() -> tuple[list[Any], list[int | None]]:
            results: list[Any] = []
            slow = threading.Thread(target=lambda: results.append(error_code(first.post(DETECT, many))))
            slow.start()
            # Let the detect take the only slot first (it is admitted as soon as its headers arrive,
            # and then runs for a few hundred milliseconds); only then compete with it.
            threading.Event().wait(0.2)
            refused = []
            while slow.is_alive():
                refused.append(error_code(first.post(GETLIST)))
            slow.join()
            return results, refused

        # On a loaded machine the detect can lose the race for the slot; it must win one of a few.
        outcomes = [compete() for _ in range(3)]
        assert any(results == [None] and 4 in refused for results, refused in outcomes), outcomes
        cli(first, "set", app["app_id"], "--daily", str(counted + 3))
    finally:
        first.stop()
    # Daily and total counts survive a restart: the day's quota is still used up.
    second = start_server(tmp_path, app=app)
    try:
        assert error_code(second.post(GETLIST)) == 17
        cli(second, "set", app["app_id"], "--daily", "0", "--total", "1")
        assert error_code(second.post(GETLIST)) == 19
    finally:
        second.stop()
