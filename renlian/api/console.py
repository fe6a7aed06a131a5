"""The web console: a static page at /console/ and a few read-only endpoints the public API lacks.

The page (renlian/console/static) signs in with an app's API key and secret key at /oauth/2.0/token
and then calls the public v3 API with the token, like any other client: it has no private way in.
What the public API does not give it, it reads under /console/api/, from what the server already
keeps:

- `app`: the app the token acts for, its ID and name (the page shows which app it is signed in to);
- `faces/{face_token}.jpg`: the aligned crop the library keeps of an enrolled face (thumbnails);
- `groups/{group_id}/users`: a page of a group's users with the group's user and face counts,
  filtered over the whole group (getusers has no count and no filter);
- `usage`: the app's calls per day, from the daily counts the quotas keep in the store, and its calls
  and errors per API and hour, from what this process's request observer tallied (api/recent.py).

Each is admitted by the same guard as every /rest call (credentials first, then the app's faceset
switch and quotas) and reads only the token's app: another app's face or group answers 404, exactly
like one that never existed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from renlian.api.deps import Call, rest_call
from renlian.api.params import SMALL_BODY_LIMIT
from renlian.api.recent import HOURS, RecentCalls
from renlian.api.services import Services, ServicesDep
from renlian.core.facetokens import TOKEN
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.ids import parse_groups

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

# A face crop is biometric data, and a user list personal data: the browser must not keep them on disk.
PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}

# The guard's refusals as HTTP statuses: an <img> element reads no JSON envelope, and the page reads
# the console's own endpoints the same way.
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


# The days of stored counts the usage page shows, today included.
USAGE_DAYS = 14
# A page of users: as many as getusers gives at most.
MAX_USERS_PAGE = 1000
# Every row of a group, in one read: LIMIT needs a number.
ALL_ROWS = 2**31 - 1


async def _console_call(request: Request) -> AsyncIterator[Call]:
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


ConsoleCall = Annotated[Call, Depends(_console_call)]


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


@router.get(PREFIX + "/api/app")
async def signed_in_app(call: ConsoleCall, svc: ServicesDep) -> JSONResponse:
    """The app the token acts for: its ID and name, never its keys."""
    app = await svc.pools.auth.run(svc.guard.apps.app, call.app_id)
    if app is None:
        raise HTTPException(404, "not found")
    return JSONResponse({"app_id": app.app_id, "name": app.name}, headers=PRIVATE_HEADERS)


@router.get(PREFIX + "/api/faces/{face_token}.jpg")
async def face_thumbnail(face_token: str, call: ConsoleCall, svc: ServicesDep) -> Response:
    """The aligned crop of one of the calling app's enrolled faces, by its face_token."""
    if not TOKEN.fullmatch(face_token):
        # The store matches a prefix of the photo's checksum: only a whole token may reach it.
        raise HTTPException(404, "not found")
    jpeg = await svc.pools.library.run(svc.library.store.crop_by_token, call.app_id, face_token)
    if jpeg is None:
        raise HTTPException(404, "not found")
    return Response(jpeg, media_type="image/jpeg", headers=PRIVATE_HEADERS)


def _bounded(name: str, value: str, low: int, high: int) -> int:
    """A whole number in [low, high], or 400 saying which parameter is wrong: the page reads HTTP
    statuses here, where FastAPI's own check would answer with the API's envelope."""
    if not value.isdigit() or not low <= int(value) <= high:
        raise HTTPException(400, f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _group_listing(
    svc: Services, app_id: str, group: str, needle: str, start: int, length: int
) -> dict[str, Any] | None:
    """The group's counts and one page of its users whose ID or info holds `needle` (any case)."""
    store = svc.library.store
    if not store.group_registered(app_id, group):
        return None
    # One read of the group's rows: a filter has to look at every user, and so does a count.
    users = store.group_users(app_id, group, 0, ALL_ROWS)
    folded = needle.casefold()
    matched = [user for user in users if folded in user.uid.casefold() or folded in user.user_info.casefold()]
    index = svc.library.index.group(app_id, group)
    return {
        "group_id": group,
        "user_num": len(users),
        "face_num": len(index) if index is not None else 0,
        "match_num": len(matched),
        "user_list": [
            {"user_id": user.uid, "user_info": user.user_info} for user in matched[start : start + length]
        ],
    }


@router.get(PREFIX + "/api/groups/{group_id}/users")
async def group_users(
    group_id: str,
    call: ConsoleCall,
    svc: ServicesDep,
    needle: Annotated[str, Query(alias="filter")] = "",
    start: str = "0",
    length: str = "100",
) -> JSONResponse:
    """A page of the group's users (ID and info) whose ID or info contains `filter`, with the
    group's user and face counts and the number that match."""
    try:
        (group,) = parse_groups(group_id)
    except (FaceApiError, ValueError) as exc:
        raise HTTPException(404, "not found") from exc
    first, size = _bounded("start", start, 0, ALL_ROWS), _bounded("length", length, 1, MAX_USERS_PAGE)
    listing = await svc.pools.library.run(
        _group_listing, svc, call.app_id, group, needle.strip(), first, size
    )
    if listing is None:
        raise HTTPException(404, f"group {group} does not exist")
    return JSONResponse(listing, headers=PRIVATE_HEADERS)


def _daily_calls(svc: Services, app_id: str, today: date) -> dict[str, Any]:
    """The app's admitted requests on each of the last USAGE_DAYS days and in all, as the quotas
    count them in the store (every node adds its own, about once a second)."""
    days = [today - timedelta(days=back) for back in range(USAGE_DAYS - 1, -1, -1)]
    counts = [svc.guard.apps.usage(app_id, day.isoformat()) for day in days]
    return {
        "days": [
            {"day": day.isoformat(), "calls": on_day} for day, (on_day, _) in zip(days, counts, strict=True)
        ],
        "total": counts[-1][1],
    }


def _hourly_calls(recent: RecentCalls, app_id: str) -> dict[str, Any]:
    """The app's calls and errors per hour and per API since this process started, for HOURS hours."""
    hours: dict[int, dict[str, int]] = {}
    apis: dict[str, dict[str, Any]] = {}
    for tally in recent.of_app(app_id, HOURS):
        hour = hours.setdefault(tally.hour, {"calls": 0, "errors": 0})
        hour["calls"] += tally.calls
        hour["errors"] += tally.errors
        api = apis.setdefault(
            tally.endpoint, {"endpoint": tally.endpoint, "calls": 0, "errors": 0, "codes": {}}
        )
        api["calls"] += tally.calls
        api["errors"] += tally.errors
        for code, answers in tally.codes.items():
            if code != "0":
                api["codes"][code] = api["codes"].get(code, 0) + answers
    return {
        "since": datetime.fromtimestamp(recent.started, UTC).isoformat(),
        "hours": [
            {"hour": datetime.fromtimestamp(hour * 3600, UTC).isoformat(), **counts}
            for hour, counts in sorted(hours.items())
        ],
        "apis": sorted(apis.values(), key=lambda api: (-api["calls"], api["endpoint"])),
    }


@router.get(PREFIX + "/api/usage")
async def usage(request: Request, call: ConsoleCall, svc: ServicesDep) -> JSONResponse:
    """The app's usage: its limits, calls per day (stored) and per hour and API (this process)."""
    app = await svc.pools.auth.run(svc.guard.apps.app, call.app_id)
    if app is None:
        raise HTTPException(404, "not found")
    daily = await svc.pools.library.run(_daily_calls, svc, call.app_id, datetime.now(UTC).date())
    answer = {
        "app_id": app.app_id,
        "name": app.name,
        "limits": {"qps": app.qps_limit, "daily": app.daily_limit, "total": app.total_limit},
        **daily,
        **_hourly_calls(request.app.state.recent_calls, call.app_id),
    }
    return JSONResponse(answer, headers=PRIVATE_HEADERS)


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
