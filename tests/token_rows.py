"""Token rows as renlian wrote them before its tokens were MACs: stores made then still hold them."""

from __future__ import annotations

import sqlite3


def add_token_row(db: sqlite3.Connection, token_sha256: str, app_id: str, kind: str, expires_at: int) -> None:
    db.execute(
        "INSERT INTO tokens (token_sha256, app_id, kind, expires_at) VALUES (?, ?, ?, ?)",
        (token_sha256, app_id, kind, expires_at),
    )
