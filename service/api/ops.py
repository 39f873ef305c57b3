"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from service import metrics
from service.api.auth import require_metrics_key
from service.store_holder import StoreHolder

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """A probe's answer."""

    status: str


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    """The process is up (no dependency is checked)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "The session store does not answer.", "model": Health}},
)
def readyz(request: Request, response: Response) -> Health:
    """The session store answers; 503 while it does not."""
    holder: StoreHolder = request.app.state.store
    try:
        ready = holder.get().ping()
    except Exception:  # any failure to reach the store means "not ready", never a 500
        ready = False
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable")
    return Health(status="ok")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: {"description": "LRSCHED_METRICS_KEY is set and was not sent."},
    },
    dependencies=[Depends(require_metrics_key)],
)
def prometheus_metrics(request: Request) -> Response:
    """Request counts and latencies by route and status, and the domain counters.

    With ``LRSCHED_METRICS_KEY`` set, send it as ``Authorization: Bearer`` or ``X-API-Key``.
    """
    holder: StoreHolder = request.app.state.store
    try:
        metrics.SESSIONS_LIVE.set(holder.get().count_live())
    except Exception:  # an unreachable store must not take the metrics down with it
        pass
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
