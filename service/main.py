"""The ASGI application: ``app = create_app()``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from rules.errors import ScheduleError
from service import logs, metrics
from service.api import early_stopping, errors, lr_finder, ops, plateau, plot, schedules, sessions
from service.api.auth import require_api_key
from service.api_docs import mount_api_docs
from service.config import Settings, env_name, get_settings
from service.curve_pool import CurvePool
from service.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from service.playground import mount_playground
from service.security import SecurityHeadersMiddleware
from service.store_holder import StoreHolder
from service.stores import QuotaExceededError, StoreBusyError, StoreUnavailableError
from service.timeouts import TimeoutMiddleware


async def _store_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """The session store is down or contended: 503, and the client may retry (reports are
    idempotent)."""
    message = (
        "the session is updated concurrently too often; retry"
        if isinstance(exc, StoreBusyError)
        else "the session store is unavailable; retry"
    )
    return JSONResponse({"detail": message}, status_code=503, headers={"Retry-After": "1"})


async def _quota_exceeded_handler(request: Request, exc: Exception) -> JSONResponse:
    """429 for a session past its API key's live-session quota, naming the limit's setting."""
    assert isinstance(exc, QuotaExceededError)
    setting = env_name("max_sessions_per_key")
    detail = {
        "msg": f"this API key already holds {exc.max_live} live sessions, the most allowed "
        f"({setting}; with API keys off, all callers share one quota): delete a session "
        "or let one expire",
        "limit": "max_sessions_per_key",
        "setting": setting,
        "max": exc.max_live,
    }
    return JSONResponse({"detail": detail}, status_code=429)


_DESCRIPTION = (
    "Every PyTorch LR scheduler as a vectorized curve, and ReduceLROnPlateau over a "
    "metric history. *The LR at step k* is `optimizer.param_groups[g]['lr']` after the "
    "scheduler was constructed and `step()` was called k times."
)
"""The OpenAPI document's description of the service."""

_V1_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid `X-API-Key` (when LRSCHED_API_KEYS is set)."},
    504: {"description": "Not answered within LRSCHED_REQUEST_TIMEOUT_SECONDS."},
}
"""Answers every ``/v1`` route may give besides its own, as documented in OpenAPI."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    logs.configure(settings.log_level)
    holder = StoreHolder(settings.store, on_conflict=metrics.STORE_CONFLICTS.inc)
    pool = CurvePool(settings)
    app = FastAPI(
        title="lrsched",
        version="0.1.0",
        summary="Learning-rate schedules as a service.",
        description=_DESCRIPTION,
        lifespan=_lifespan(holder, pool),
        docs_url=None,  # served from local assets by mount_api_docs, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = holder
    app.state.curve_pool = pool
    _add_exception_handlers(app)
    _include_routers(app)
    mount_playground(app)
    mount_api_docs(app)
    _add_middleware(app, settings)
    return app


def _lifespan(
    holder: StoreHolder, pool: CurvePool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the store before serving (a bad LRSCHED_STORE fails at startup); at shutdown
    close it and stop the curve pool."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.get()
        try:
            yield
        finally:
            await holder.aclose()
            holder.close()
            pool.shutdown()

    return lifespan


def _add_exception_handlers(app: FastAPI) -> None:
    """How each refusal becomes an HTTP answer: validation 422s, HTTP errors, the engine's
    refusals, a client gone mid-body, and the session store's 503s and 429."""
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.http_error)
    app.add_exception_handler(ScheduleError, errors.schedule_error)
    app.add_exception_handler(ClientDisconnect, errors.client_disconnected)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable_handler)
    app.add_exception_handler(StoreBusyError, _store_unavailable_handler)
    app.add_exception_handler(QuotaExceededError, _quota_exceeded_handler)


def _include_routers(app: FastAPI) -> None:
    """The operations routes open to all; every ``/v1`` router behind the API-key gate."""
    app.include_router(ops.router)
    api_keys = [Depends(require_api_key)]
    for router in (
        schedules.router,
        plot.router,
        plateau.router,
        early_stopping.router,
        sessions.router,
        lr_finder.router,
    ):
        app.include_router(router, dependencies=api_keys, responses=_V1_RESPONSES)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware stack, added innermost first: the body limit (its 413 is the
    HTTPException handler's JSON, as any other error), timeout, CORS (when origins are
    configured), security headers, then observability outermost, so that every request
    gets an id, a log line and metrics, 504s and 413s included."""
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_body_bytes)
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_seconds)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origin_list),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "X-Request-ID",
                "If-None-Match",
            ],
            expose_headers=["ETag", "X-Shape", "X-Request-ID"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ObservabilityMiddleware)


app = create_app()
