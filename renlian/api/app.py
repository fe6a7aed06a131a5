"""The FastAPI application: lifespan (models, pools), the error envelope, health, and the routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renlian import __version__
from renlian.api import console, envelope, oauth, reference
from renlian.api.deps import AnyCall
from renlian.api.observe import RequestObserver
from renlian.api.pools import Pools, ThreadPool
from renlian.api.recent import RecentCalls
from renlian.api.services import Services, log_id
from renlian.api.v2 import detect, faceset, match, search
from renlian.api.v3 import faces as v3_faces
from renlian.api.v3 import faceset as v3_faceset
from renlian.api.v3 import search as v3_search
from renlian.auth.guard import Guard
from renlian.auth.quotas import Quotas
from renlian.auth.tokens import TokenService
from renlian.core.faces import FaceOperations
from renlian.core.facetokens import FaceTokenCache
from renlian.core.search import Recognition
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import FaceLibrary
from renlian.library.loading import load_index
from renlian.metrics import Metrics
from renlian.settings import Settings
from renlian.store.open import open_store
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.recognizer import EMBEDDING_DIMS

logger = logging.getLogger("renlian")

REST_PREFIX = "/rest/"
STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = {"docs.js": "text/javascript", "docs.css": "text/css"}


def create_app(settings: Settings, load_analyzer: Callable[[], FaceAnalyzer]) -> FastAPI:
    """The app; `load_analyzer` runs once, off the event loop, before the first request is served."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Start-up and the last close run while no request is served, so they take the loop's default
        # executor: no request ever waits on it (api/pools.py has the threads requests use).
        store, apps = await asyncio.to_thread(open_store, settings)
        try:
            # Tokens are MACs now and no request writes a token row, so only this clears old ones.
            await asyncio.to_thread(apps.purge_tokens)
        except FaceApiError:
            logger.exception("could not purge expired token rows; the next start tries again")
        # The index needs no model: load both at once, and start in the longer of the two times.
        analyzer, loaded = await asyncio.gather(
            asyncio.to_thread(load_analyzer),
            asyncio.to_thread(
                partial(
                    load_index,
                    store,
                    settings.recognizer,
                    EMBEDDING_DIMS[settings.recognizer],
                    search_threads=settings.threads_per_worker,
                )
            ),
        )
        analyzer.observe = metrics.observe_model
        library = await asyncio.to_thread(
            partial(
                FaceLibrary,
                store,
                analyzer,
                settings.max_group_faces,
                poll_seconds=settings.index_poll_seconds,
                max_lag_seconds=settings.index_max_lag_seconds,
                lock_timeout=max(1.0, settings.db_busy_timeout_seconds),
                index=loaded,
            )
        )
        pools = Pools.from_settings(settings)
        tokens = TokenService(apps, settings.token_ttl_seconds)
        quotas = Quotas(apps, settings.max_concurrent_requests)
        metrics.watch_index(library.index.faces_per_app)
        if library.sync is not None:
            metrics.watch_sync(library.sync)
        limits = settings.image_limits()
        ops = FaceOperations(
            analyzer,
            library,
            limits,
            settings.image_fetcher(),
            FaceTokenCache(settings.face_token_cache, settings.face_token_ttl_seconds),
        )
        app.state.services = Services(
            analyzer=analyzer,
            library=library,
            ops=ops,
            recognition=Recognition(ops, library),
            tokens=tokens,
            guard=Guard(
                apps, tokens, quotas, settings.max_clock_skew_seconds, settings.max_signature_seconds
            ),
            pools=pools,
            limits=limits,
        )
        logger.info(
            "models loaded (recognizer %s); %d inference workers x %d threads; "
            "%d URL download, %d store and %d auth threads",
            settings.recognizer,
            settings.inference_workers,
            settings.threads_per_worker,
            settings.fetch_threads,
            settings.store_threads,
            settings.auth_threads,
        )
        flusher = asyncio.create_task(_flush_usage_every_second(quotas, pools.auth))
        try:
            yield
        finally:
            flusher.cancel()
            try:
                await pools.auth.run(quotas.flush)
            except FaceApiError:
                logger.exception("could not save the last usage counts")
            pools.shutdown()
            # Snapshots of the groups written since start-up: the next start loads them.
            await asyncio.to_thread(library.close)
            store.close()

    metrics = Metrics(settings.recognizer)
    recent = RecentCalls()
    app = FastAPI(title="renlian", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    # The console's usage page reads what the request observer tallies.
    app.state.recent_calls = recent
    app.include_router(detect.router)
    app.include_router(match.router)
    app.include_router(faceset.router)
    app.include_router(search.router)
    app.include_router(oauth.router)
    app.include_router(v3_faces.router)
    app.include_router(v3_search.router)
    app.include_router(v3_faceset.router)
    app.include_router(console.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        # Relative, so that a server behind a proxy's path prefix still lands on its own console.
        return RedirectResponse("console/", status_code=307)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        ready = getattr(request.app.state, "services", None) is not None
        return JSONResponse({"status": "ok" if ready else "loading"}, status_code=200 if ready else 503)

    app.openapi = reference.openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def api_reference() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    @app.get("/docs/{asset}", include_in_schema=False)
    async def api_reference_asset(asset: str) -> FileResponse:
        if asset not in DOCS_ASSETS:
            raise StarletteHTTPException(404)
        return FileResponse(STATIC / asset, media_type=DOCS_ASSETS[asset])

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Registered last so that it only catches what no router claimed.
    @app.api_route(REST_PREFIX + "{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def unknown_service(path: str, call: AnyCall) -> JSONResponse:
        raise FaceApiError(ErrorCode.SERVICE_NOT_SUPPORT, f"/rest/{path} is not a service")

    _install_error_handlers(app)
    # Outermost: it sees every answer, the 216500 of an unexpected failure included.
    app.add_middleware(RequestObserver, metrics=metrics, recent=recent)
    return app


async def _flush_usage_every_second(quotas: Quotas, auth: ThreadPool) -> None:
    while True:
        await asyncio.sleep(1.0)
        try:
            await auth.run(quotas.flush)
        except Exception:
            # A failed flush keeps its counts pending for the next one; it must not stop the loop.
            logger.exception("could not save usage counts")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FaceApiError)
    async def face_api_error(request: Request, exc: FaceApiError) -> JSONResponse:
        return envelope.error_for(request.url.path, log_id(request), exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        failure = FaceApiError(ErrorCode.INVALID_PARAM, str(exc.errors()[:1]))
        return envelope.error_for(request.url.path, log_id(request), failure)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith(REST_PREFIX):
            code = ErrorCode.SERVICE_NOT_SUPPORT if exc.status_code in (404, 405) else ErrorCode.INVALID_PARAM
            return envelope.error_for(request.url.path, log_id(request), FaceApiError(code, str(exc.detail)))
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
            request = Request(scope)
            request_id = log_id(request)
            # The traceback stays in the server log, keyed by log_id; the client learns only the code.
            logger.exception("unexpected failure, log_id %d", request_id)
            failure = FaceApiError(ErrorCode.UNKNOWN_ERROR)
            await envelope.error_for(request.url.path, request_id, failure)(scope, receive, send)
