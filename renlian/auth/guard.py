"""Who is calling: an access token, or a bce-auth-v1 signature; then the app's switches and quotas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from renlian.auth import signature
from renlian.auth.quotas import Quotas
from renlian.auth.tokens import TokenService
from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import AppRecord, AppStore


@dataclass(frozen=True)
class Credentials:
    """What a request carries that can identify its app, read from wherever HTTP put it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    access_token: str | None


class Guard:
    def __init__(
        self,
        apps: AppStore,
        tokens: TokenService,
        quotas: Quotas,
        max_clock_skew: int,
        max_signature_seconds: int,
    ) -> None:
        self.apps = apps
        self.tokens = tokens
        self.quotas = quotas
        self.max_clock_skew = max_clock_skew
        self.max_signature_seconds = max_signature_seconds

    def enter(self, credentials: Credentials, capability: str | None) -> AppRecord:
        """The app the credentials name, admitted for `capability`; it reads the store, so it runs off
        the event loop."""
        app = self.identify(credentials)
        self.admit(app, capability)
        return app

    def identify(self, credentials: Credentials) -> AppRecord:
        header = credentials.headers.get("authorization")
        if header:
            return self._signed(credentials, header)
        if not credentials.access_token:
            raise FaceApiError(ErrorCode.INVALID_TOKEN_PARAM, "send access_token, or sign with bce-auth-v1")
        return self.tokens.app_for(credentials.access_token)

    def _signed(self, credentials: Credentials, header: str) -> AppRecord:
        authorization = signature.parse(header)
        signed = signature.signed_names(authorization, credentials.headers)
        app = self.apps.app_by_key(authorization.api_key)
        if app is None:
            raise FaceApiError(ErrorCode.TOKEN_INVALID, "unknown API key in the signature")
        age = (datetime.now(UTC) - signature.issued_at(authorization)).total_seconds()
        # The client writes its own expiration period, and bce-auth-v1 does not sign the body: a
        # captured header claiming decades would authorise any body on its path for decades. The
        # server's cap is the replay window whatever the header says (docs/security.md).
        window = min(authorization.expiration, self.max_signature_seconds)
        if age > window or age < -self.max_clock_skew:
            raise FaceApiError(
                ErrorCode.TOKEN_EXPIRED,
                f"the signature's timestamp is outside its {window} s window "
                f"(allowing {self.max_clock_skew} s of clock skew)",
            )
        canonical = signature.canonical_request(
            credentials.method,
            credentials.path,
            credentials.query,
            credentials.headers,
            signed,
        )
        if not signature.verify(app.secret_key, authorization, canonical):
            raise FaceApiError(ErrorCode.TOKEN_INVALID, "the bce-auth-v1 signature does not match")
        return app

    def admit(self, app: AppRecord, capability: str | None) -> None:
        if capability in app.closed:
            raise FaceApiError(ErrorCode.MODULE_CLOSED, f"{capability} is closed for this app")
        self.quotas.admit(app)
