"""The FastAPI application: lifespan (models, pool), the error envelope, health, and the routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renlian import __version__
from renlian.api import envelope
from renlian.api.deps import AnyCall
from renlian.api.inference import InferencePool
from renlian.api.routes import detect, faceset, match, oauth, search
from renlian.api.services import Services, log_id
from renlian.auth.guard import Guard
from renlian.auth.quotas import Quotas
from renlian.auth.tokens import TokenService
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import FaceLibrary
from renlian.settings import Settings
from renlian.store.sqlite import SQLiteStore
from renlian.store.sqlite_apps import SQLiteAppStore
from renlian.vision.analyzer import FaceAnalyzer

logger = logging.getLogger("renlian")

REST_PREFIX = "/rest/"


def create_app(settings: Settings, load_analyzer: Callable[[], FaceAnalyzer]) -> FastAPI:
    """The app; `load_analyzer` runs once, off the event loop, before the first request is served."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        analyzer = await asyncio.to_thread(load_analyzer)
        store = SQLiteStore(settings.store_path(), busy_timeout=settings.db_busy_timeout_seconds)
        library = await asyncio.to_thread(FaceLibrary, store, analyzer, settings.max_group_faces)
        pool = InferencePool(settings.inference_workers)
        apps = SQLiteAppStore(store)
        tokens = TokenService(apps, settings.token_ttl_seconds)
        quotas = Quotas(apps, settings.max_concurrent_requests)
        app.state.services = Services(
            analyzer=analyzer,
            library=library,
            tokens=tokens,
            guard=Guard(
                apps, tokens, quotas, settings.max_clock_skew_seconds, settings.max_signature_seconds
            ),
            pool=pool,
            limits=settings.image_limits(),
        )
        logger.info(
            "models loaded (recognizer %s); %d inference workers x %d threads",
            settings.recognizer,
            settings.inference_workers,
            settings.threads_per_worker,
        )
        flusher = asyncio.create_task(_flush_usage_every_second(quotas))
        try:
            yield
        finally:
            flusher.cancel()
            try:
                await asyncio.to_thread(quotas.flush)
            except FaceApiError:
                logger.exception("could not save the last usage counts")
            pool.shutdown()
            store.close()

    app = FastAPI(title="renlian", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(detect.router)
    app.include_router(match.router)
    app.include_router(faceset.router)
    app.include_router(search.router)
    app.include_router(oauth.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        ready = getattr(request.app.state, "services", None) is not None
        return JSONResponse({"status": "ok" if ready else "loading"}, status_code=200 if ready else 503)

    # Registered last so that it only catches what no router claimed.
    @app.api_route(REST_PREFIX + "{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def unknown_service(path: str, call: AnyCall) -> JSONResponse:
        raise FaceApiError(ErrorCode.SERVICE_NOT_SUPPORT, f"/rest/{path} is not a service")

    _install_error_handlers(app)
    return app


async def _flush_usage_every_second(quotas: Quotas) -> None:
    while True:
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(quotas.flush)
        except Exception:
            # A failed flush keeps its counts pending for the next one; it must not stop the loop.
            logger.exception("could not save usage counts")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FaceApiError)
    async def face_api_error(request: Request, exc: FaceApiError) -> JSONResponse:
        return envelope.error(log_id(request), exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope.error(log_id(request), FaceApiError(ErrorCode.INVALID_PARAM, str(exc.errors()[:1])))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith(REST_PREFIX):
            code = ErrorCode.SERVICE_NOT_SUPPORT if exc.status_code in (404, 405) else ErrorCode.INVALID_PARAM
            return envelope.error(log_id(request), FaceApiError(code, str(exc.detail)))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app.add_middleware(UnexpectedErrors)


class UnexpectedErrors:
    """216500 for an exception nothing else handled, on a connection that stays open.

    Starlette's handler for `Exception` re-raises after answering, and the server then drops the
    keep-alive connection, so a client's next request on it fails; this middleware answers instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if started:
                raise
            request_id = log_id(Request(scope))
            # The traceback stays in the server log, keyed by log_id; the client learns only the code.
            logger.exception("unexpected failure, log_id %d", request_id)
            await envelope.error(request_id, FaceApiError(ErrorCode.UNKNOWN_ERROR))(scope, receive, send)
