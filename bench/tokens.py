"""Access tokens: what issuing them costs the store, and how fast one core checks them.

    python -m bench.tokens [--requests 10000] [--checks 20000] [--write-docs]

Issuing: a real `renlian serve` (SQLite, a temporary data dir, an app made by `renlian apps create`)
answers `--requests` client-credentials requests over HTTP, half GET and half POST, from a few client
threads; the tokens table's rows and the bytes of the store and its write-ahead log are read before
and after. Tokens are MACs (renlian/auth/tokens.py), so both must be unchanged.

Checking: `TokenService.app_for`, the call every token request makes, run `--checks` times in one
thread pinned to one core, against a SQLite store holding the app: a token of today's format (a read
of the app and two HMACs) and, for comparison, one of the old format (its row, then the app), and
the read of the app alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.datasets import machine, write_section
from renlian.auth.apps import new_app
from renlian.auth.tokens import ACCESS, TokenService, issue
from renlian.store.sqlite import SQLiteStore
from renlian.store.sqlite_apps import SQLiteAppStore
from tests.conftest import start_server

DOCS = Path(__file__).resolve().parent.parent / "docs" / "security.md"
CLIENTS = 4


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


def issue_many(requests: int) -> tuple[tuple[int, int, int], tuple[int, int, int], Counter[int], float]:
    """(store state before, after, HTTP statuses, seconds) for `requests` token requests."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            url = server.base_url + "/oauth/2.0/token"
            fields = {
                "grant_type": "client_credentials",
                "client_id": server.app["api_key"],
                "client_secret": server.app["secret_key"],
            }

            # One client with kept-alive connections: the figure is the server's, not TLS set-up's
            # (a new httpx client loads the CA bundle each time).
            with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as client:

                def ask(number: int) -> int:
                    if number % 2:
                        return client.post(url, data=fields).status_code
                    return client.get(url, params=fields).status_code

                before = store_state(server.data_dir)
                started = time.perf_counter()
                with ThreadPoolExecutor(CLIENTS) as pool:
                    statuses = Counter(pool.map(ask, range(requests)))
                seconds = time.perf_counter() - started
            after = store_state(server.data_dir)
        finally:
            server.stop()
    return before, after, statuses, seconds


def per_second(check: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        check()
    return count / (time.perf_counter() - started)


def check_rates(checks: int) -> dict[str, float]:
    """Checks per second on one core: a MAC token, an old-format row token, the app read alone."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "renlian.sqlite3")
        apps = SQLiteAppStore(store)
        app = new_app("bench")
        apps.create_app(app)
        now = int(time.time())
        row_token = f"24.{secrets.token_hex(16)}.2592000.{now + 3600}.{app.app_id}"
        with store.transaction() as db:
            db.execute(
                "INSERT INTO tokens (token_sha256, app_id, kind, expires_at) VALUES (?, ?, ?, ?)",
                (hashlib.sha256(row_token.encode()).hexdigest(), app.app_id, ACCESS, now + 3600),
            )
        service = TokenService(apps, 2592000)
        mac_token = issue(app, ACCESS, 2592000, now)
        assert service.app_for(mac_token) == app and service.app_for(row_token) == app
        try:
            return {
                "mac": per_second(lambda: service.app_for(mac_token), checks),
                "row": per_second(lambda: service.app_for(row_token), checks),
                "app": per_second(lambda: apps.app(app.app_id), checks),
            }
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="token requests over HTTP")
    parser.add_argument("--checks", type=int, default=20_000, help="token checks per kind")
    parser.add_argument("--write-docs", action="store_true", help="update docs/security.md")
    args = parser.parse_args()

    before, after, statuses, seconds = issue_many(args.requests)
    rates = check_rates(args.checks)
    answered = ", ".join(f"{count} x HTTP {status}" for status, count in sorted(statuses.items()))
    lines = [
        f"Measured {machine()}: `python -m bench.tokens --requests {args.requests} --checks {args.checks}`.",
        "",
        "| | token rows | store file | write-ahead log |",
        "|---|---|---|---|",
        f"| before {args.requests} token requests | {before[0]} | {before[1]} B | {before[2]} B |",
        f"| after ({answered}; {args.requests / seconds:.0f} a second from {CLIENTS} clients) "
        f"| {after[0]} | {after[1]} B | {after[2]} B |",
        "",
        "| token check on one core (`TokenService.app_for`, SQLite store) | checks a second |",
        "|---|---|",
        f"| a token of today's format: the app's row read, two HMAC-SHA256 | {rates['mac']:,.0f} |",
        f"| a token of the old format: its row read, then the app's | {rates['row']:,.0f} |",
        f"| the app's row read alone, for comparison | {rates['app']:,.0f} |",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_section(DOCS, "tokens", lines)


if __name__ == "__main__":
    main()
