"""The ASGI application: ``app = create_app()``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.api import ops, plateau, schedules, sessions
from service.config import Settings, get_settings
from service.engine.errors import ScheduleError
from service.store_holder import StoreHolder


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    holder = StoreHolder(settings.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.get()  # open the store before serving: a bad LRSCHED_STORE fails at startup
        try:
            yield
        finally:
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
    )
    app.state.settings = settings
    app.state.store = holder
    app.add_exception_handler(ScheduleError, _schedule_error_handler)
    app.include_router(ops.router)
    app.include_router(schedules.router)
    app.include_router(plateau.router)
    app.include_router(sessions.router)
    return app


app = create_app()
