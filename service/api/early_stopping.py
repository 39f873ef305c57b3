"""``/v1/early-stopping``: an early-stopping rule replayed over a metric history."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from fastapi.openapi.models import Example

from schemas.early_stopping import (
    EarlyStopping,
    EarlyStoppingProgress,
    EarlyStoppingReplayRequest,
    EarlyStoppingReplayResponse,
)
from service.api.bodies import GatedRoute
from service.api.deps import SettingsDep
from service.engine import early_stopping as engine
from service.engine import registry

router = APIRouter(prefix="/v1/early-stopping", tags=["early stopping"], route_class=GatedRoute)

_EXAMPLES: dict[str, Example] = {
    "keras": {
        "summary": "Keras: patience 2, min_delta 0.01",
        "description": "Stops at epoch 3: two epochs without a 0.01 improvement on 0.9.",
        "value": {
            "early_stopping": {"semantics": "keras", "patience": 2, "min_delta": 0.01},
            "metrics": [1.0, 0.9, 0.895, 0.9, 0.91],
        },
    },
    "hf": {
        "summary": "Hugging Face: accuracy, patience 1",
        "description": "0.7005 beats 0.7 by less than min_delta: stop at epoch 2.",
        "value": {
            "early_stopping": {
                "semantics": "hf",
                "mode": "max",
                "patience": 1,
                "min_delta": 0.001,
            },
            "metrics": [0.61, 0.7, 0.7005, 0.72],
        },
    },
    "lightning": {
        "summary": "Lightning: a NaN stops (check_finite)",
        "description": "Lightning stops on a non-finite metric before counting patience.",
        "value": {
            "early_stopping": {"semantics": "lightning", "patience": 3},
            "metrics": [2.0, 1.5, "nan", 1.0],
        },
    },
}


def options(config: engine.EarlyStoppingConfig) -> EarlyStopping:
    """The options as they would be sent to get ``config`` (``check_finite`` is Lightning's)."""
    check_finite = config.check_finite if config.semantics == "lightning" else None
    return EarlyStopping(**{**asdict(config), "check_finite": check_finite})


def progress(state: engine.EarlyStoppingState) -> EarlyStoppingProgress:
    """The wire form of an early-stopping state."""
    return EarlyStoppingProgress(
        stop=state.stop,
        best_epoch=state.best_epoch,
        best_metric=state.best,
        wait=state.wait,
        stop_epoch=state.stop_epoch,
        stop_reason=state.reason,
    )


@router.post(
    "/replay",
    summary="Replay early stopping over a metric history",
    responses={
        status.HTTP_413_CONTENT_TOO_LARGE: {"description": "More than LRSCHED_MAX_VALUES metrics."}
    },
)
def replay(
    settings: SettingsDep,
    body: Annotated[EarlyStoppingReplayRequest, Body(openapi_examples=_EXAMPLES)],
) -> EarlyStoppingReplayResponse:
    """After each epoch's metric (epoch 0 first), whether the chosen library's callback stops.

    The same rule early-stopping sessions apply to each epoch's reduced metric.
    """
    if len(body.metrics) > settings.max_values:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(body.metrics)} metrics, more than the limit of {settings.max_values} "
            "(LRSCHED_MAX_VALUES)",
        )
    result = engine.replay(registry.early_stopping_config(body.early_stopping), body.metrics)
    return EarlyStoppingReplayResponse(
        stop=result.stop, stop_epoch=result.state.stop_epoch, state=progress(result.state)
    )
