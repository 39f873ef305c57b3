"""``/v1/plateau``: ReduceLROnPlateau replayed over a metric history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from fastapi.openapi.models import Example

from rules.errors import ScheduleError
from schemas.plateau import PlateauReplayRequest, PlateauReplayResponse, group_lrs
from service.api.bodies import GatedRoute
from service.config import Settings
from service.curve_pool import curve_pool
from service.engine import plateau as engine
from service.engine import registry

router = APIRouter(prefix="/v1/plateau", tags=["plateau"], route_class=GatedRoute)

_EXAMPLES: dict[str, Example] = {
    "loss": {
        "summary": "A loss that stalls (patience 2, cooldown 1)",
        "description": "Halve the LR after more than 2 steps without a 0.01% improvement.",
        "value": {
            "schedule": {
                "type": "ReduceLROnPlateau",
                "mode": "min",
                "factor": 0.5,
                "patience": 2,
                "cooldown": 1,
                "min_lr": 0.0001,
            },
            "lr": 0.1,
            "metrics": [1.0, 0.9, 0.95, 0.93, 0.94, 0.96, 0.97, "nan", 0.91, 0.85],
        },
    },
    "accuracy": {
        "summary": "An accuracy to maximize, absolute threshold",
        "description": "Mode max: an improvement must beat the best accuracy by 0.01.",
        "value": {
            "schedule": {
                "type": "ReduceLROnPlateau",
                "mode": "max",
                "threshold": 0.01,
                "threshold_mode": "abs",
                "patience": 1,
            },
            "lr": 0.01,
            "metrics": [0.5, 0.61, 0.615, 0.618, 0.7, 0.705, 0.702],
        },
    },
    "groups": {
        "summary": "Two param groups, one min_lr each",
        "description": "Each group is cut to max(lr * factor, its min_lr) on every bad step.",
        "value": {
            "schedule": {
                "type": "ReduceLROnPlateau",
                "patience": 0,
                "factor": 0.1,
                "min_lr": [0.001, 0.0],
            },
            "lr": [0.1, 0.01],
            "metrics": [2.0, 2.0, 2.0, "inf"],
        },
    },
}


@router.post(
    "/replay",
    summary="Replay ReduceLROnPlateau over a metric history",
    response_model=PlateauReplayResponse,
    responses={
        status.HTTP_413_CONTENT_TOO_LARGE: {
            "description": "More than LRSCHED_MAX_VALUES values (groups x metrics) requested.",
        },
    },
)
async def replay(
    request: Request,
    body: Annotated[PlateauReplayRequest, Body(openapi_examples=_EXAMPLES)],
) -> Response:
    """The LR of every param group after each `step(metric)`, exactly as PyTorch computes it.

    The optimizer is built with one param group per item of `lr`, then
    `ReduceLROnPlateau(optimizer, **schedule)` is constructed and `step(metric)` called for
    each metric in order. `lr[g][i]` is group `g`'s LR after the `i`-th step;
    `reduced[i]` says whether that step changed some group's LR.
    """
    settings: Settings = request.app.state.settings
    lrs = group_lrs(body.lr)
    values = len(lrs) * len(body.metrics)
    if values > settings.max_values:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(lrs)} param groups x {len(body.metrics)} metrics = {values} values, "
            f"more than the limit of {settings.max_values} (LRSCHED_MAX_VALUES)",
        )
    try:
        config = registry.plateau_config(body.schedule, len(lrs))
    except ScheduleError as error:
        raise error.within("schedule") from None
    ticket = curve_pool(request).admit(request, values)
    try:
        return await ticket.run(_replayed, config, lrs, body.metrics)
    finally:
        ticket.close()


def _replayed(config: engine.PlateauConfig, lrs: list[float], metrics: list[float]) -> Response:
    """The replay's answer, serialized in the worker thread (FastAPI would encode the model
    on the event loop)."""
    result = engine.replay(config, lrs, metrics)
    answer = PlateauReplayResponse(lr=result.lr.tolist(), reduced=result.reduced.tolist())
    return Response(answer.model_dump_json(), media_type="application/json")
