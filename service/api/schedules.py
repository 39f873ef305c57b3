"""``POST /v1/schedules``: the curve of a schedule, as JSON, ``.npy`` or raw float32."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Header, HTTPException, Query, Response, status

from schemas.requests import ScheduleRequest
from schemas.responses import ScheduleResponse
from schemas.schedules import SCHEDULE_MODELS, build
from service import encoding, metrics
from service.api.deps import SettingsDep
from service.engine import StepRange, compute, stepping_cost
from service.engine.errors import ScheduleError

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])

VERSION = "1"
"""Bumped whenever a change to the engine may change any value (invalidates ETags)."""
STEPPING_BUDGET = 8
"""Stepped schedules may evaluate at most this many times ``max_values`` per-step maps."""


def _examples() -> dict[str, dict[str, Any]]:
    examples: dict[str, dict[str, Any]] = {}
    for model in SCHEDULE_MODELS:
        extra = model.model_config.get("json_schema_extra")
        assert isinstance(extra, dict)
        spec = extra["examples"][0]  # type: ignore[index]
        examples[model.__name__] = {
            "summary": model.__name__,
            "description": (model.__doc__ or "").strip(),
            "value": {"schedule": spec, "lr": 0.1, "steps": 1000},
        }
    return examples


_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.post(
    "",
    summary="Compute a learning-rate curve",
    response_model=ScheduleResponse,
    responses={
        200: {
            "description": (
                "The curve. JSON by default; `Accept: application/x-npy` gives a float64 "
                "`.npy` of shape (groups, n); `Accept: application/octet-stream` gives raw "
                "little-endian float32, shape in `X-Shape`. `?series=momentum` selects the "
                "momentum for the binary forms."
            ),
            "content": {encoding.NPY: _BINARY, encoding.FLOAT32: _BINARY},
        },
        304: {"description": "Not modified: `If-None-Match` matched the curve's ETag."},
        406: {"description": "No acceptable media type in `Accept`."},
    },
)
def compute_schedule(
    request: Annotated[ScheduleRequest, Body(openapi_examples=_examples())],
    settings: SettingsDep,
    series: Annotated[
        encoding.Series,
        Query(description="Which series the binary forms carry: `lr` or `momentum`."),
    ] = "lr",
    accept: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The lr of every param group at steps ``range(start, steps, stride)``.

    *The LR at step k* is ``optimizer.param_groups[g]["lr"]`` after the scheduler was
    constructed and ``step()`` was then called k times; values equal PyTorch 2.13's.
    """
    media_type = encoding.negotiate(accept)
    if media_type is None:
        raise HTTPException(
            status.HTTP_406_NOT_ACCEPTABLE,
            f"cannot answer with {accept!r}; acceptable: {', '.join(encoding.MEDIA_TYPES)}",
        )
    steps = StepRange(request.start, request.steps, request.stride)
    lrs = request.lrs
    values = len(steps) * len(lrs)
    if values > settings.max_values:
        raise ScheduleError(
            f"the request asks for {values} values ({len(lrs)} groups x {len(steps)} steps); "
            f"at most {settings.max_values} (LRSCHED_MAX_VALUES): ask for a range with "
            "start/stride, or fewer steps",
            ("steps",),
        )
    root = _build(request, len(lrs))
    cost = stepping_cost(root, steps) * len(lrs)
    if cost > STEPPING_BUDGET * settings.max_values:
        raise ScheduleError(
            f"this schedule is computed step by step (it composes schedulers or depends on "
            f"its history), which would take {cost} evaluations up to step {steps.last}; at "
            f"most {STEPPING_BUDGET * settings.max_values}: ask for fewer steps",
            ("steps",),
        )
    tag = encoding.etag(request.model_dump_json().encode(), media_type, series, VERSION)
    headers = {"ETag": tag, "Vary": "Accept"}
    if encoding.matches(if_none_match, tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:
        curve = compute(root, np.asarray(lrs, dtype=np.float64), steps)
    except ScheduleError as error:
        raise error.within("schedule") from None
    metrics.CURVES.labels(type=request.schedule.type).inc()
    metrics.VALUES.inc(curve.lr.size)
    if media_type != encoding.JSON and series == "momentum" and curve.momentum is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "type": "value_error",
                    "loc": ["query", "series"],
                    "msg": f"series=momentum: {request.schedule.type} does not cycle momentum",
                }
            ],
        )
    encoded = encoding.encode(curve, steps, media_type, series)
    return Response(encoded.body, media_type=encoded.media_type, headers=headers | encoded.headers)


def _build(request: ScheduleRequest, groups: int) -> Any:
    try:
        return build(request.schedule, groups)
    except ScheduleError as error:
        raise error.within("schedule") from None
