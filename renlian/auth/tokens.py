"""The OAuth 2.0 token endpoint's logic (client credentials and refresh tokens), without HTTP.

A token is a MAC, not a row: issuing one writes nothing, and any node that can read the app checks
it. Baidu's dotted shape (32 hex digits, then only digits and dots), with a key version and a nonce
before the app id:

    24.{mac}.{ttl}.{expires_at}.{key version}.{nonce}.{app_id}      (25. for a refresh token)

mac is the first 128 bits of HMAC-SHA256 over the rest of the token, keyed by a key derived from the
app's secret key: rotating the secret revokes every token of the app, and deleting the app revokes
them because the app is gone. The nonce (8 random digits) only keeps two tokens issued in the same
second apart.
Tokens issued before tokens were MACs (`24.{random}.{ttl}.{expires_at}.{app_id}`) are rows of the
tokens table, found by their sha256, until they expire (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import AppRecord, AppStore

ACCESS = "access"
REFRESH = "refresh"
PREFIXES = {ACCESS: "24", REFRESH: "25"}
BRAIN_ALL_SCOPE = "brain_all_scope"
# The scope's other words name what the app may call; `brain_all_scope` is the word Baidu's SDK looks
# for to choose token calls over bce-auth-v1 signatures.
BASE_SCOPE = ("public", "vis-faceverify_faceverify_v2")
REFRESH_TTL = 10 * 365 * 24 * 3600
# How a token's MAC key is derived from the secret key; a new derivation takes a new version, and
# tokens of the old one stay checkable by theirs until they expire.
KEY_VERSION = 1
_KEY_LABELS = {KEY_VERSION: b"renlian token key 1"}
_MAC_TOKEN = re.compile(
    r"(?P<prefix>2[45])\.(?P<mac>[0-9a-f]{32})\.(?P<body>[0-9]{1,10}\.(?P<expires>[0-9]{1,12})\."
    r"(?P<version>[0-9]{1,3})\.[0-9]{8}\.(?P<app_id>[0-9A-Za-z_-]{1,64}))"
)
# The shape of the tokens issued before: only these are looked up in the tokens table.
_ROW_TOKEN = re.compile(r"2[45]\.[0-9a-f]{32}\.[0-9]{1,10}\.[0-9]{1,12}\.[0-9A-Za-z_-]{1,64}")
# name=value pairs joined by "&", as a query string writes them, and nothing else.
_QUERY_TAIL = re.compile(r"[^=&?#]+=[^&?#]*(?:&[^=&?#]+=[^&?#]*)*")


class OAuthError(Exception):
    """An OAuth error in Baidu's shape: {"error": ..., "error_description": ...} with an HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _mac(secret_key: str, version: int, unsigned: str) -> str:
    # hmac.digest is OpenSSL's one-shot HMAC: several times faster than building hmac.new objects,
    # and every request with a token pays for two.
    key = hmac.digest(secret_key.encode(), _KEY_LABELS[version], "sha256")
    return hmac.digest(key, unsigned.encode(), "sha256").hex()[:32]


def issue(app: AppRecord, kind: str, ttl: int, now: int) -> str:
    unsigned = f"{ttl}.{now + ttl}.{KEY_VERSION}.{secrets.randbelow(10**8):08d}.{app.app_id}"
    prefix = PREFIXES[kind]
    return f"{prefix}.{_mac(app.secret_key, KEY_VERSION, f'{prefix}.{unsigned}')}.{unsigned}"


def presented_token(value: str) -> str:
    """The token in an access_token value, which Baidu's Node SDK suffixes with a second query string.

    Every version of the Node SDK (`baidu-aip-sdk` 1.5.1 to 4.16.16) appends
    `?aipSdk=node&access_token=<token>` to the path and then `?aipSdk=node` to the whole URL, so its
    query string is `aipSdk=node&access_token=<token>?aipSdk=node` and the value that arrives is
    `<token>?aipSdk=node`; Baidu's cloud must accept that, since the SDK has sent it since its first
    release. Issued tokens never contain "?", so the token is the text before the first "?" and must
    still be an issued token in full; the text after it must be a query string (name=value pairs),
    or the whole value stands and is unknown (110).
    """
    token, question_mark, tail = value.partition("?")
    if question_mark and token and _QUERY_TAIL.fullmatch(tail):
        return token
    return value


class TokenService:
    def __init__(self, apps: AppStore, ttl_seconds: int) -> None:
        self.apps = apps
        self.ttl = ttl_seconds

    def grant(self, params: dict[str, str]) -> dict[str, Any]:
        grant_type = params.get("grant_type")
        if grant_type == "client_credentials":
            app = self._client(params.get("client_id"), params.get("client_secret"))
        elif grant_type == "refresh_token":
            app = self._refreshed(params.get("refresh_token"))
        elif not grant_type:
            raise OAuthError(400, "invalid_request", "grant_type is required")
        else:
            raise OAuthError(400, "unsupported_grant_type", "The authorization grant type is not supported")
        return self._issue(app)

    def _client(self, client_id: str | None, client_secret: str | None) -> AppRecord:
        if not client_id or not client_secret:
            raise OAuthError(400, "invalid_request", "client_id and client_secret are required")
        app = self.apps.app_by_key(client_id)
        if app is None:
            raise OAuthError(401, "invalid_client", "unknown client id")
        if not hmac.compare_digest(app.secret_key.encode(), client_secret.encode()):
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        return app

    def _refreshed(self, refresh_token: str | None) -> AppRecord:
        if not refresh_token:
            raise OAuthError(400, "invalid_request", "refresh_token is required")
        found = self._check(refresh_token, REFRESH)
        if found is None or found[1] <= time.time():
            raise OAuthError(401, "expired_token", "refresh token is invalid or expired")
        return found[0]

    def _issue(self, app: AppRecord) -> dict[str, Any]:
        now = int(time.time())
        scope = [*BASE_SCOPE, BRAIN_ALL_SCOPE] if app.brain_all_scope else list(BASE_SCOPE)
        return {
            "access_token": issue(app, ACCESS, self.ttl, now),
            "expires_in": self.ttl,
            "refresh_token": issue(app, REFRESH, REFRESH_TTL, now),
            "scope": " ".join(scope),
        }

    def app_for(self, access_token: str) -> AppRecord:
        """The app an access token acts for: 110 if it was never issued or was revoked, 111 if expired."""
        found = self._check(presented_token(access_token), ACCESS)
        if found is None:
            raise FaceApiError(ErrorCode.TOKEN_INVALID)
        if found[1] <= time.time():
            raise FaceApiError(ErrorCode.TOKEN_EXPIRED)
        return found[0]

    def _check(self, token: str, kind: str) -> tuple[AppRecord, int] | None:
        """(the app, the expiry) of a token of `kind` that its app's current secret issued, or that
        the tokens table still holds; None for any other text."""
        parsed = _MAC_TOKEN.fullmatch(token)
        if parsed is None:
            return self._row(token, kind)
        version = int(parsed["version"])
        if parsed["prefix"] != PREFIXES[kind] or version not in _KEY_LABELS:
            return None
        app = self.apps.app(parsed["app_id"])
        if app is None:
            return None
        expected = _mac(app.secret_key, version, f"{parsed['prefix']}.{parsed['body']}")
        if not hmac.compare_digest(expected, parsed["mac"]):
            return None
        return app, int(parsed["expires"])

    def _row(self, token: str, kind: str) -> tuple[AppRecord, int] | None:
        if not _ROW_TOKEN.fullmatch(token):
            return None
        found = self.apps.token(digest(token), kind)
        app = self.apps.app(found[0]) if found else None
        return (app, found[1]) if found and app else None
