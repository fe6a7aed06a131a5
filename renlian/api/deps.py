"""Dependencies every /rest route shares: who is calling, and the request's parameters and log id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from renlian.api.params import Params, read_params

DEFAULT_APP_ID = "default"


@dataclass(frozen=True)
class Caller:
    """The app a request acts for; every face-library row will be scoped by app_id."""

    app_id: str


async def authenticate(request: Request) -> Caller:
    """The one place credentials are checked, in front of every /rest route.

    Apps, OAuth tokens and bce-auth-v1 signatures are not implemented yet (docs/compat.md): every
    request acts for the built-in app "default".
    """
    return Caller(app_id=DEFAULT_APP_ID)


async def params(request: Request) -> Params:
    return await read_params(request)


ParamsDep = Annotated[Params, Depends(params)]
CallerDep = Annotated[Caller, Depends(authenticate)]
