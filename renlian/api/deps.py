"""The one path every /rest request is read through: a request slot, credentials, then the body, once.

Order matters for a hostile client. The server-wide slot comes first, so at most
`max_concurrent_requests` bodies are ever in memory. Credentials in the query string or the
Authorization header are checked before a byte of the body is read. Only a client that puts its
access_token in the form body (allowed by Baidu's document) has its body read first, and that read
is bounded by the endpoint's limit like every other. Looking up tokens and apps touches the store,
so it runs off the event loop, in the auth pool, where no slow download or store scan holds the
threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from renlian.api.body import Fields, is_form, parse_fields, read_body
from renlian.api.params import (
    DEFAULT_IMAGE_LIMIT,
    DETECT_IMAGE_LIMIT,
    FACEVERIFY_IMAGES_LIMIT,
    MATCH_IMAGES_LIMIT,
    SMALL_BODY_LIMIT,
    Params,
    body_limit,
)
from renlian.api.services import services
from renlian.auth.guard import Credentials


@dataclass(frozen=True)
class Call:
    """An admitted request: the app it acts for (every face-library row is scoped by its app_id) and
    its parameters; a body that is a JSON array (v3's match and faceverify) gives `items`, one set of
    parameters per element, and only the query string's in `params`."""

    app_id: str
    params: Params
    items: list[Params] | None = None


async def _fields(request: Request, limit: int) -> Fields | list[Fields]:
    return await parse_fields(request.headers, await read_body(request, limit))


def rest_call(
    capability: str | None, limit: int, *, reads_body: bool = True
) -> Callable[[Request], AsyncIterator[Call]]:
    """The dependency that admits a request for `capability` with a body of at most `limit` bytes:
    the one place credentials, quotas and bodies are read. It holds one of the server's request
    slots until the response is done. Without `reads_body` the body is read only if it must be
    searched for an access_token."""

    async def admit(request: Request) -> AsyncIterator[Call]:
        svc = services(request)
        guard = svc.guard
        guard.quotas.enter()
        try:
            body: Fields | list[Fields] | None = None
            token = request.query_params.get("access_token")
            signed = "authorization" in request.headers
            if not signed and token is None and is_form(request.headers.get("content-type", "")):
                body = await _fields(request, limit)
                token = body.get("access_token") if isinstance(body, dict) else None
            credentials = Credentials(
                method=request.method,
                path=request.url.path,
                query=list(request.query_params.multi_items()),
                headers={name.lower(): value for name, value in request.headers.items()},
                access_token=None if signed else token,
            )
            app = await svc.pools.auth.run(guard.enter, credentials, capability)
            request.state.app_id = app.app_id  # for the request log
            if body is None:
                body = await _fields(request, limit) if reads_body else {}
            query = request.query_params.multi_items()
            if isinstance(body, list):
                yield Call(app.app_id, Params.merged(query, {}), [Params.merged([], item) for item in body])
            else:
                yield Call(app.app_id, Params.merged(query, body))
        finally:
            guard.quotas.leave()

    return admit


async def unauthenticated_params(request: Request) -> Params:
    """Parameters of a request that carries no credentials (the token endpoint); small bodies only."""
    body = await _fields(request, SMALL_BODY_LIMIT)
    return Params.merged(request.query_params.multi_items(), body if isinstance(body, dict) else {})


DetectCall = Annotated[Call, Depends(rest_call("detect", body_limit(DETECT_IMAGE_LIMIT)))]
FaceverifyCall = Annotated[Call, Depends(rest_call("detect", body_limit(FACEVERIFY_IMAGES_LIMIT)))]
MatchCall = Annotated[Call, Depends(rest_call("match", body_limit(MATCH_IMAGES_LIMIT)))]
IdentifyCall = Annotated[Call, Depends(rest_call("identify", body_limit(DEFAULT_IMAGE_LIMIT)))]
VerifyCall = Annotated[Call, Depends(rest_call("verify", body_limit(DEFAULT_IMAGE_LIMIT)))]
FacesetCall = Annotated[Call, Depends(rest_call("faceset", body_limit(DEFAULT_IMAGE_LIMIT)))]
# Unknown services: credentials are checked (an unauthenticated client learns nothing about paths);
# the body is read only when the token may be in it.
AnyCall = Annotated[Call, Depends(rest_call(None, body_limit(MATCH_IMAGES_LIMIT), reads_body=False))]
UnauthenticatedParams = Annotated[Params, Depends(unauthenticated_params)]
