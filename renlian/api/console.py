"""The web console: a static page at /console/ and one endpoint for the thumbnails of enrolled faces.

The page (renlian/console/static) signs in with an app's API key and secret key at /oauth/2.0/token
and then calls the public v3 API with the token, like any other client: it has no private way in.
The one thing the public API does not give it is a face's picture, so
`GET /console/api/faces/{face_token}.jpg?access_token=...` returns the aligned crop the library keeps
of an enrolled face. It is admitted by the same guard as every /rest call (credentials first, then
the app's faceset switch and quotas), and it looks the face up only within the token's app: another
app's face_token answers 404, exactly like one that never existed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from renlian.api.deps import Call, rest_call
from renlian.api.params import SMALL_BODY_LIMIT
from renlian.api.services import ServicesDep
from renlian.core.facetokens import TOKEN
from renlian.errors import ErrorCode, FaceApiError

PREFIX = "/console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# The page runs only its own files; it never embeds or is embedded, and its URLs (which carry the
# access token for thumbnails) are never sent to another site as a Referer.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Small files, fetched again after an upgrade: revalidated every time.
    "Cache-Control": "no-cache",
}

# A face crop is biometric data: the browser must not keep it on disk.
THUMBNAIL_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}

# The guard's refusals as HTTP statuses: an <img> element reads no JSON envelope.
REFUSALS = {
    ErrorCode.INVALID_TOKEN_PARAM: 401,
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.CLUSTER_LIMIT: 429,
    ErrorCode.DAILY_LIMIT: 429,
    ErrorCode.QPS_LIMIT: 429,
    ErrorCode.TOTAL_LIMIT: 429,
}

router = APIRouter(include_in_schema=False)

_admit = rest_call("faceset", SMALL_BODY_LIMIT, reads_body=False)


async def _thumbnail_call(request: Request) -> AsyncIterator[Call]:
    """rest_call's admission, with a refusal answered as an HTTP status instead of an envelope."""
    admission = _admit(request)
    try:
        call = await anext(admission)
    except FaceApiError as exc:
        status = REFUSALS.get(exc.error, 403)
        raise HTTPException(status, f"{exc.error.code} {exc.message}") from exc
    try:
        yield call
    finally:
        # Runs rest_call on past its yield, to its end: its finally gives the request slot back.
        await anext(admission, None)


ThumbnailCall = Annotated[Call, Depends(_thumbnail_call)]


@cache
def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file the page is made of, by name, with its content type: read once from the package.
    Only these names are served, so no request path can reach any other file."""
    folder = resources.files("renlian.console") / "static"
    found = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in CONTENT_TYPES and not entry.name.startswith("."):
            found[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return found


def _asset(name: str) -> Response:
    found = _assets().get(name)
    if found is None:
        raise HTTPException(404, "not found")
    content, media_type = found
    return Response(content, media_type=media_type, headers=PAGE_HEADERS)


@router.get(PREFIX + "/api/faces/{face_token}.jpg")
async def face_thumbnail(face_token: str, call: ThumbnailCall, svc: ServicesDep) -> Response:
    """The aligned crop of one of the calling app's enrolled faces, by its face_token."""
    if not TOKEN.fullmatch(face_token):
        # The store matches a prefix of the photo's checksum: only a whole token may reach it.
        raise HTTPException(404, "not found")
    jpeg = await svc.pools.store.run(svc.library.store.crop_by_token, call.app_id, face_token)
    if jpeg is None:
        raise HTTPException(404, "not found")
    return Response(jpeg, media_type="image/jpeg", headers=THUMBNAIL_HEADERS)


@router.get(PREFIX)
async def console_root() -> RedirectResponse:
    # The page's relative URLs (app.js, style.css) resolve under /console/ only with the slash.
    return RedirectResponse(PREFIX + "/", status_code=308)


@router.get(PREFIX + "/")
async def console_page() -> Response:
    return _asset("index.html")


@router.get(PREFIX + "/{name}")
async def console_asset(name: str) -> Response:
    return _asset(name)
