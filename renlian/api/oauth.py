"""/oauth/2.0/token: access tokens for an app's API key and secret key (OAuth 2.0 client credentials)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from renlian.api.deps import UnauthenticatedParams
from renlian.api.services import ServicesDep
from renlian.auth.tokens import OAuthError

router = APIRouter()


@router.api_route("/oauth/2.0/token", methods=["GET", "POST"])
async def token(p: UnauthenticatedParams, svc: ServicesDep) -> JSONResponse:
    try:
        return JSONResponse(await svc.pools.auth.run(svc.tokens.grant, p.values))
    except OAuthError as exc:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description}, status_code=exc.status
        )
