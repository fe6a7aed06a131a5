"""bce-auth-v1 request signatures, verified exactly as Baidu's SDK computes them.

    authorization: bce-auth-v1/{api_key}/{timestamp}/{expiration}/{signed headers}/{signature}
    signing key  = hex(HMAC-SHA256(secret_key, "bce-auth-v1/{api_key}/{timestamp}/{expiration}"))
    signature    = hex(HMAC-SHA256(signing key, canonical request))
    canonical    = METHOD \\n quote(path) \\n sorted urlencoded query pairs joined by & \\n
                   sorted "lower(quote(name)):quote(value)" lines of the signed headers

The body is not signed (bce-auth-v1 does not sign it). Headers are taken as received, so the host
the client signed must be the Host header it sent. An empty signed-headers field means BCE's default
set: host, content-length, content-type, content-md5 and every x-bce-* header the request carries.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from renlian.errors import ErrorCode, FaceApiError

PREFIX = "bce-auth-v1"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# What BCE signs when the header names no headers, besides every x-bce-* header present.
DEFAULT_SIGNED = frozenset({"host", "content-length", "content-type", "content-md5"})
BCE_PREFIX = "x-bce-"


@dataclass(frozen=True)
class Authorization:
    api_key: str
    timestamp: str
    expiration: int
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{PREFIX}/{self.api_key}/{self.timestamp}/{self.expiration}"


# ASCII digits only, and few of them: str.isdigit() admits "²", which int() rejects, and int() of
# thousands of digits is refused (or slow) too.
_EXPIRATION = re.compile(r"[0-9]{1,10}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def parse(header: str) -> Authorization:
    parts = header.strip().split("/")
    if len(parts) != 6 or parts[0] != PREFIX or not _EXPIRATION.fullmatch(parts[3]):
        raise FaceApiError(ErrorCode.INVALID_TOKEN_PARAM, "authorization is not a bce-auth-v1 header")
    signed = tuple(name.strip().lower() for name in parts[4].split(";") if name.strip())
    # An empty field is BCE's default set, which holds host (checked once the headers are known).
    if parts[4] and "host" not in signed:
        raise _unsigned_host()
    return Authorization(parts[1], parts[2], int(parts[3]), signed, parts[5])


def _unsigned_host() -> FaceApiError:
    return FaceApiError(ErrorCode.INVALID_TOKEN_PARAM, "a bce-auth-v1 signature must sign the host header")


def signed_names(authorization: Authorization, headers: dict[str, str]) -> tuple[str, ...]:
    """The headers (lower-case names) the signature covers: those it names, or, when it names none,
    BCE's default set as BCE's SDKs sign it: those of the set that the request carries with a value.
    The default set must still cover a Host header."""
    if authorization.signed_headers:
        return authorization.signed_headers
    names = tuple(
        name
        for name, value in headers.items()
        if value.strip() and (name in DEFAULT_SIGNED or name.startswith(BCE_PREFIX))
    )
    if "host" not in names:
        raise _unsigned_host()
    return names


def issued_at(authorization: Authorization) -> datetime:
    if not _TIMESTAMP.fullmatch(authorization.timestamp):
        raise FaceApiError(ErrorCode.INVALID_TOKEN_PARAM, "the signature's timestamp is malformed")
    try:
        return datetime.strptime(authorization.timestamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise FaceApiError(ErrorCode.INVALID_TOKEN_PARAM, "the signature's timestamp is malformed") from exc


def canonical_request(
    method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], signed: tuple[str, ...]
) -> str:
    pairs = sorted(urlencode([pair]) for pair in query)
    lines = sorted(f"{quote(name, '').lower()}:{quote(headers.get(name, '').strip(), '')}" for name in signed)
    return "\n".join([method.upper(), quote(path), "&".join(pairs), "\n".join(lines)])


def sign(secret_key: str, authorization: Authorization, canonical: str) -> str:
    signing_key = hmac.new(secret_key.encode(), authorization.scope.encode(), hashlib.sha256).hexdigest()
    return hmac.new(signing_key.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def verify(secret_key: str, authorization: Authorization, canonical: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters, which a header may carry.
    claimed = authorization.signature.lower().encode("utf-8", "replace")
    return hmac.compare_digest(sign(secret_key, authorization, canonical).encode(), claimed)
