"""Dependencies every /rest route shares: who is calling (and may they), and the request's parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from renlian.api.params import Params, read_params
from renlian.api.services import services
from renlian.auth.guard import Credentials


@dataclass(frozen=True)
class Caller:
    """The app a request acts for; every face-library row is scoped by its app_id."""

    app_id: str


async def _access_token(request: Request) -> str | None:
    token = request.query_params.get("access_token")
    if token is None and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form_token = (await request.form()).get("access_token")
        token = form_token if isinstance(form_token, str) else None
    return token


def authenticated(capability: str | None) -> Callable[[Request], AsyncIterator[Caller]]:
    """The dependency that admits a request for `capability`: the one place credentials and quotas
    are checked. It holds one of the server's concurrent-request slots until the response is done."""

    async def admit(request: Request) -> AsyncIterator[Caller]:
        guard = services(request).guard
        credentials = Credentials(
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            headers={name.lower(): value for name, value in request.headers.items()},
            access_token=None if "authorization" in request.headers else await _access_token(request),
        )
        app = guard.identify(credentials)
        guard.admit(app, capability)
        try:
            yield Caller(app.app_id)
        finally:
            guard.quotas.release()

    return admit


DETECT = authenticated("detect")
MATCH = authenticated("match")
IDENTIFY = authenticated("identify")
VERIFY = authenticated("verify")
FACESET = authenticated("faceset")
ANY = authenticated(None)


FacesetCaller = Annotated[Caller, Depends(FACESET)]
IdentifyCaller = Annotated[Caller, Depends(IDENTIFY)]
VerifyCaller = Annotated[Caller, Depends(VERIFY)]
AnyCaller = Annotated[Caller, Depends(ANY)]


async def params(request: Request) -> Params:
    return await read_params(request)


ParamsDep = Annotated[Params, Depends(params)]
