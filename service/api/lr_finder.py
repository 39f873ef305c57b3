"""``/v1/lr-finder``: the LR range test as a session every rank of a job agrees on.

The same machinery as plateau sessions (``service.sessions``: one atomic store update per
report, exactly once, in order, ranks combined with ``reduce``), with steps for epochs and
training losses for metrics; ``engine.lr_finder`` decides each step.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Header, HTTPException, Request, Response, status
from fastapi.openapi.models import Example

from schemas.lr_finder import (
    FastaiSuggestions,
    LrFinderAnswer,
    LrFinderCreate,
    LrFinderCreated,
    LrFinderReport,
    LrFinderResult,
    LrFinderView,
    LrSuggestions,
)
from service import plotting, sessions
from service.api.auth import Owner
from service.api.bodies import GatedRoute
from service.api.deps import AsyncUpdatesDep, StoreDep, TenantDep
from service.api.plot import FORMATS, Height, Width, negotiate
from service.api.sessions import (
    AUTH_RESPONSES,
    BearerCredentials,
    SessionDep,
    SessionIdPath,
    apply_report,
    bearer_token,
    creation_route,
    store_new_session,
)
from service.curve_pool import curve_pool
from service.engine import lr_finder as engine
from service.engine import registry

router = APIRouter(prefix="/v1/lr-finder", tags=["lr finder"], route_class=GatedRoute)

_NOT_A_FINDER = "not an LR range test session"

_CREATE_EXAMPLES: dict[str, Example] = {
    "ddp": {
        "summary": "Exponential, 1e-7 to 10 in 100 steps, 4 ranks",
        "description": "fastai's defaults; the ranks' losses are averaged each step.",
        "value": {"start_lr": 1e-7, "end_lr": 10.0, "num_steps": 100, "world_size": 4},
    },
    "torch-lr-finder": {
        "summary": "torch-lr-finder's smoothing (smooth_f=0.05), diverge at 5x",
        "description": "ema smoothing with smooth = 1 - smooth_f.",
        "value": {
            "start_lr": 1e-5,
            "end_lr": 1.0,
            "num_steps": 200,
            "smooth": 0.95,
            "smoothing": "ema",
            "diverge_threshold": 5.0,
        },
    },
}


@router.post(
    "",
    **creation_route(
        "Start an LR range test",
        "Invalid options (e.g. end_lr <= start_lr), or past a limit.",
    ),
)
def create_lr_finder(
    body: Annotated[LrFinderCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    store: StoreDep,
    tenant: TenantDep,
) -> LrFinderCreated:
    """A range test whose ranks report `{step, loss, rank}`; step 0 trains with `start_lr`."""
    config = registry.lr_finder_config(body)
    session = sessions.new_lr_finder(config, world_size=body.world_size, reduce=body.reduce)
    created = store_new_session(store, session, body.ttl_seconds, tenant)
    return LrFinderCreated(
        id=created.record.id,
        token=created.token,
        lr=session.state.lrs[0],
        step=0,
        num_steps=config.num_steps,
        expires_at=created.record.expires_at,
    )


@router.post(
    "/{session_id}/reports",
    summary="Report a step's loss",
    response_model=LrFinderAnswer,
    responses={
        **AUTH_RESPONSES,
        409: {"description": "The report skips ahead: `detail.expected_epoch` is the next step."},
        503: {"description": "The store is unavailable or contended; retry (Retry-After)."},
    },
)
async def report_loss(
    body: LrFinderReport,
    session_id: SessionIdPath,
    credentials: BearerCredentials,
    updates: AsyncUpdatesDep,
    owner: Owner,
) -> Response:
    """One rank's loss at one step; the answer is the lr for the next step, and `stop`.

    The step is decided when every rank has reported it; a retried report of a decided step
    returns its recorded decision and changes nothing.
    """
    token = bearer_token(credentials)
    report = (body.step, body.loss, body.rank)
    outcome = await apply_report(updates, session_id, token, owner, report)
    finder = outcome.finder
    if finder is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_A_FINDER)
    answer = LrFinderAnswer(
        step=outcome.epoch,
        decided=outcome.decided,
        lr=outcome.lrs[0],
        stop=finder.stop,
        stop_reason=finder.reason,
        smoothed_loss=finder.smoothed if outcome.decided else None,
        waiting_for=list(outcome.waiting_for),
    )
    return Response(answer.model_dump_json(), media_type="application/json")


def _finder(record: Any) -> tuple[sessions.Session, engine.LrFinderConfig]:
    session = sessions.decode_session(record.document)
    if session.lr_finder is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NOT_A_FINDER)
    return session, session.lr_finder


@router.get("/{session_id}", summary="Read a range test", responses=AUTH_RESPONSES)
def read_lr_finder(record: SessionDep) -> LrFinderView:
    """The next step to report, the lr to train it with, whether the test is over."""
    session, config = _finder(record)
    finder = session.finder
    options = LrFinderCreate(
        **asdict(config),
        world_size=session.world_size,
        reduce=session.reduce,
        ttl_seconds=record.ttl_seconds,
    )
    return LrFinderView(
        step=session.epoch,
        lr=session.state.lrs[0],
        stop=finder is not None and finder.stop,
        stop_reason=None if finder is None else finder.reason,
        pending_ranks=sorted(session.pending),
        options=options,
    )


@router.get("/{session_id}/result", summary="The curve and suggestions", responses=AUTH_RESPONSES)
def read_result(record: SessionDep, store: StoreDep) -> LrFinderResult:
    """Every decided step's lr, combined loss and smoothed loss, and the suggestions of
    fastai, Lightning and torch-lr-finder on that curve (each library's own rule)."""
    session, config = _finder(record)
    return _result(session, config, store.history(record.id, 0, config.num_steps))


def _result(
    session: sessions.Session, config: engine.LrFinderConfig, rows: list[tuple[int, bytes]]
) -> LrFinderResult:
    """The result of the range test ``session``, from its ``rows`` of history."""
    lrs, losses, smoothed = _curve(config, [sessions.decode_decision(row) for _, row in rows])
    suggested = engine.suggest(lrs, smoothed, config.num_steps)
    finder = session.finder
    return LrFinderResult(
        lr=lrs,
        loss=losses,
        smoothed_loss=smoothed,
        stop=finder is not None and finder.stop,
        stop_reason=None if finder is None else finder.reason,
        suggestions=LrSuggestions(
            fastai=FastaiSuggestions(
                minimum=suggested.fastai_minimum,
                steep=suggested.fastai_steep,
                valley=suggested.fastai_valley,
                slide=suggested.fastai_slide,
            ),
            lightning=suggested.lightning,
            torch_lr_finder=suggested.torch_lr_finder,
        ),
    )


def _curve(
    config: engine.LrFinderConfig, decisions: list[sessions.Decision]
) -> tuple[list[float], list[float], list[float]]:
    """The (lr, loss, smoothed loss) of every step up to the one that stopped the test
    (steps reported after it leave the test as it was and are not points of the curve)."""
    lrs, losses, smoothed = [], [], []
    for decision in decisions:
        finder = decision.finder
        if finder is None or finder.smoothed is None or finder.steps != decision.epoch + 1:
            break
        lrs.append(engine.lr_at(config, decision.epoch))
        losses.append(decision.metric)
        smoothed.append(finder.smoothed)
    return lrs, losses, smoothed


@router.get(
    "/{session_id}/plot",
    summary="Plot the curve and suggestions",
    response_class=Response,
    responses={
        **AUTH_RESPONSES,
        200: {"content": {media: {} for media in FORMATS}, "description": "The picture."},
        406: {"description": "Accept names neither SVG nor PNG."},
        501: {"description": "matplotlib is not installed."},
        503: {"description": "The curve pool admits no more work now (`Retry-After`)."},
    },
)
async def plot_result(
    http: Request,
    record: SessionDep,
    updates: AsyncUpdatesDep,
    width: Width = 800,
    height: Height = 450,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Loss against lr (log x): raw and smoothed, with every library's suggestion marked."""
    media_type = negotiate(accept)
    if media_type is None:
        raise HTTPException(status.HTTP_406_NOT_ACCEPTABLE, f"cannot answer with {accept!r}")
    try:
        plotting.require()
    except plotting.PlottingUnavailable as error:
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, str(error)) from None
    session, config = _finder(record)
    rows = await updates.history_async(record.id, 0, config.num_steps)
    # Drawn on the curve pool, admitted like a curve plot: never on the threads that
    # synchronous routes share, and never more at once than the pool admits.
    ticket = curve_pool(http).admit(http, config.num_steps)

    def draw() -> bytes:  # the result too: suggestions over 10,000 steps take milliseconds
        return _drawn(_result(session, config, rows), width, height, media_type)

    try:
        picture = await ticket.run(draw)
    finally:
        ticket.close()
    return Response(picture, media_type=media_type)


def _drawn(result: LrFinderResult, width: int, height: int, media_type: str) -> bytes:
    """The plot of ``result`` as ``media_type``."""
    suggested = {
        **{f"fastai {k}": v for k, v in result.suggestions.fastai.model_dump().items()},
        "lightning": result.suggestions.lightning,
        "torch-lr-finder": result.suggestions.torch_lr_finder,
    }
    test = plotting.RangeTest(
        lr=np.asarray(result.lr, dtype=np.float64),
        loss=np.asarray(result.loss, dtype=np.float64),
        smoothed=np.asarray(result.smoothed_loss, dtype=np.float64),
        suggestions=[(name, lr) for name, lr in suggested.items() if lr is not None],
        width=width,
        height=height,
    )
    return plotting.render_range_test(test, FORMATS[media_type])


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a range test",
    responses=AUTH_RESPONSES,
)
def delete_lr_finder(record: SessionDep, store: StoreDep) -> Response:
    """Remove the range test and its steps."""
    _finder(record)
    store.delete(record.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
