"""The OAuth 2.0 token endpoint's logic (client credentials and refresh tokens), without HTTP."""

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
BRAIN_ALL_SCOPE = "brain_all_scope"
# The scope's other words name what the app may call; `brain_all_scope` is the word Baidu's SDK looks
# for to choose token calls over bce-auth-v1 signatures.
BASE_SCOPE = ("public", "vis-faceverify_faceverify_v2")
REFRESH_TTL = 10 * 365 * 24 * 3600
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
        found = self.apps.token(digest(refresh_token), REFRESH)
        app = self.apps.app(found[0]) if found and found[1] > time.time() else None
        if app is None:
            raise OAuthError(401, "expired_token", "refresh token is invalid or expired")
        return app

    def _issue(self, app: AppRecord) -> dict[str, Any]:
        now = int(time.time())
        access = f"24.{secrets.token_hex(16)}.{self.ttl}.{now + self.ttl}.{app.app_id}"
        refresh = f"25.{secrets.token_hex(16)}.{REFRESH_TTL}.{now + REFRESH_TTL}.{app.app_id}"
        self.apps.save_token(digest(access), app.app_id, ACCESS, now + self.ttl)
        self.apps.save_token(digest(refresh), app.app_id, REFRESH, now + REFRESH_TTL)
        scope = [*BASE_SCOPE, BRAIN_ALL_SCOPE] if app.brain_all_scope else list(BASE_SCOPE)
        return {
            "access_token": access,
            "expires_in": self.ttl,
            "refresh_token": refresh,
            "scope": " ".join(scope),
        }

    def app_for(self, access_token: str) -> AppRecord:
        """The app an access token acts for: 110 if it was never issued or was revoked, 111 if expired."""
        found = self.apps.token(digest(presented_token(access_token)), ACCESS)
        app = self.apps.app(found[0]) if found else None
        if found is None or app is None:
            raise FaceApiError(ErrorCode.TOKEN_INVALID)
        if found[1] <= time.time():
            raise FaceApiError(ErrorCode.TOKEN_EXPIRED)
        return app
