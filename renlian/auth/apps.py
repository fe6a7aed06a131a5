"""Creating apps and their credentials, from the operating system's cryptographic random source."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import replace

from renlian.store.base import AppRecord

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def new_app(name: str, *, brain_all_scope: bool = True) -> AppRecord:
    """An app with Baidu-shaped credentials: a numeric app id, a 24-character API key and a
    32-character secret key (about 143 and 190 bits of randomness)."""
    return AppRecord(
        app_id=str(10_000_000 + secrets.randbelow(90_000_000)),
        name=name,
        api_key=random_text(24),
        secret_key=random_text(32),
        brain_all_scope=brain_all_scope,
        qps_limit=None,
        daily_limit=None,
        total_limit=None,
        closed=frozenset(),
        created_at=int(time.time()),
    )


def with_new_secret(app: AppRecord) -> AppRecord:
    return replace(app, secret_key=random_text(32))
