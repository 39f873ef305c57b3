"""The ASGI application: ``app = create_app()``."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service import logs, metrics
from service.api import early_stopping, lr_finder, ops, plateau, plot, schedules, sessions
from service.api.auth import require_api_key
from service.api_docs import mount_api_docs
from service.config import Settings, env_name, get_settings
from service.engine.errors import ScheduleError
from service.middleware import ObservabilityMiddleware
from service.playground import mount_playground
from service.security import SecurityHeadersMiddleware
from service.store_holder import StoreHolder
from service.stores import QuotaExceededError, StoreBusyError, StoreUnavailableError
from service.timeouts import TimeoutMiddleware


async def _schedule_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Answer a configuration the engine rejects like any other validation error: 422."""
    assert isinstance(exc, ScheduleError)
    detail = [{"type": "value_error", "loc": ["body", *exc.loc], "msg": exc.message}]
    if exc.step is not None:
        detail.append(
            {
                "type": "value_error",
                "loc": ["body", "steps"],
                "msg": f"PyTorch fails at step {exc.step}, inside the requested range "
                f"(steps <= {exc.step} would stop before it): {exc.message}",
            }
        )
    return JSONResponse({"detail": detail}, status_code=422)


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, safe for any input: what JSON cannot carry (a lone surrogate, a raw
    NaN or Infinity in the body) is echoed escaped or spelled as a string instead of failing
    the error response."""
    assert isinstance(exc, RequestValidationError)
    detail = _encodable(jsonable_encoder(exc.errors()))
    return JSONResponse({"detail": detail}, status_code=422)


def _encodable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return value


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTPException, except that a body Starlette could not parse at
    all (nested past the parser's recursion limit, not UTF-8) is a 422 naming the body."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        detail = [
            {
                "type": "json_invalid",
                "loc": ["body"],
                "msg": "the body could not be parsed as JSON (nested too deeply, or not UTF-8)",
            }
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    if exc.status_code == 405:
        # Starlette answers from the first route whose path matches, so its Allow header
        # lists only that route's methods; RFC 9110 wants every method the resource has.
        allow = ", ".join(_allowed_methods(request))
        exc = StarletteHTTPException(
            405, exc.detail, headers={**(exc.headers or {}), "Allow": allow}
        )
    return await http_exception_handler(request, exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of the application answers at this request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    logs.configure(settings.log_level)
    holder = StoreHolder(settings.store, on_conflict=metrics.STORE_CONFLICTS.inc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.get()  # open the store before serving: a bad LRSCHED_STORE fails at startup
        try:
            yield
        finally:
            await holder.aclose()
            holder.close()

    app = FastAPI(
        title="lrsched",
        version="0.1.0",
        summary="Learning-rate schedules as a service.",
        description=(
            "Every PyTorch LR scheduler as a vectorized curve, and ReduceLROnPlateau over a "
            "metric history. *The LR at step k* is `optimizer.param_groups[g]['lr']` after the "
            "scheduler was constructed and `step()` was called k times."
        ),
        max_body_size=settings.max_body_bytes,
        lifespan=lifespan,
        docs_url=None,  # served from local assets by mount_api_docs, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = holder
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(ScheduleError, _schedule_error_handler)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable_handler)
    app.add_exception_handler(StoreBusyError, _store_unavailable_handler)
    app.add_exception_handler(QuotaExceededError, _quota_exceeded_handler)
    app.include_router(ops.router)
    api_keys = [Depends(require_api_key)]
    v1_responses: dict[int | str, dict[str, Any]] = {
        401: {"description": "Missing or invalid `X-API-Key` (when LRSCHED_API_KEYS is set)."},
        504: {"description": "Not answered within LRSCHED_REQUEST_TIMEOUT_SECONDS."},
    }
    for router in (
        schedules.router,
        plot.router,
        plateau.router,
        early_stopping.router,
        sessions.router,
        lr_finder.router,
    ):
        app.include_router(router, dependencies=api_keys, responses=v1_responses)
    mount_playground(app)
    mount_api_docs(app)
    # Outermost last: every request gets an id, a log line and metrics, 504s included.
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
    return app


app = create_app()
