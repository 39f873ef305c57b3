"""``/v1/sessions``: stateful ReduceLROnPlateau for remote and distributed trainers."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    Security,
    status,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from rules.errors import ScheduleError
from schemas.plateau import ReduceLROnPlateau
from schemas.sessions import (
    HistoryPage,
    HistoryRow,
    PlateauProgress,
    ReportRequest,
    ReportResponse,
    SessionCreate,
    SessionCreated,
    SessionView,
)
from service import metrics, sessions
from service.api import session_bodies
from service.api.auth import Owner, api_key_gate, require_api_key
from service.api.deps import AsyncUpdatesDep, StoreDep, TenantDep
from service.api.early_stopping import options as stopping_options
from service.api.early_stopping import progress as stopping_progress
from service.api.shortcuts import Passed, ShortcutRoute
from service.engine.plateau import PlateauState
from service.limits import MAX_HISTORY_ROWS, MAX_INT, SESSION_ID_MAX_LENGTH
from service.store_holder import StoreHolder
from service.stores import SessionRecord, SessionStore
from service.stores.base import AsyncUpdates, async_updates

# ShortcutRoute: every body passes the body gate; only the report route has a shortcut.
router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=ShortcutRoute)

_bearer = HTTPBearer(
    auto_error=False, description="The token returned when the session was created."
)
_UNAUTHORIZED = {"description": "No `Authorization: Bearer` token."}
_FORBIDDEN = {"description": "The token is not this session's."}
_NOT_FOUND = {
    "description": "No such session (never created, deleted or expired), or another API key's."
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _UNAUTHORIZED,
    403: _FORBIDDEN,
    404: _NOT_FOUND,
}
_OVER_QUOTA = {"description": "The API key holds LRSCHED_MAX_SESSIONS_PER_KEY live sessions."}


def creation_route(summary: str, invalid: str) -> dict[str, Any]:
    """The options of a ``POST`` that creates a session of any kind (each stores it through
    :func:`store_new_session`): 201, the route's own 422 (``invalid`` says when), and 429
    for an API key at its quota."""
    return {
        "status_code": status.HTTP_201_CREATED,
        "summary": summary,
        "responses": {422: {"description": invalid}, 429: _OVER_QUOTA},
    }


SessionIdPath = Annotated[
    str, Path(max_length=SESSION_ID_MAX_LENGTH, description="The session id.")
]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The bearer token sent, or 401."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return credentials.credentials


def authorized_session(
    session_id: SessionIdPath, store: StoreDep, credentials: BearerCredentials, owner: Owner
) -> SessionRecord:
    """The session named in the path, if the API key owns it and the bearer token is its own."""
    token = bearer_token(credentials)
    try:
        return sessions.authorize(store, session_id, token, owner)
    except sessions.SessionNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session not found") from None
    except sessions.SessionForbiddenError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong token for this session") from None


SessionDep = Annotated[SessionRecord, Depends(authorized_session)]


def _progress(state: PlateauState) -> PlateauProgress:
    return PlateauProgress(
        best=state.best,
        num_bad_epochs=state.num_bad_epochs,
        cooldown_counter=state.cooldown_counter,
        last_epoch=state.last_epoch,
    )


@router.post(
    "",
    **creation_route(
        "Create a plateau session",
        "Invalid options, or `world_size`/`ttl_seconds` past the limit.",
    ),
)
def create_session(body: SessionCreate, store: StoreDep, tenant: TenantDep) -> SessionCreated:
    """Start a session from ReduceLROnPlateau options, or resume one from a ``state_dict``.

    The session belongs to the API key that created it: other keys get 404 for it.
    """
    session = session_bodies.new_session(body)
    created = store_new_session(store, session, body.ttl_seconds, tenant)
    return SessionCreated(
        id=created.record.id,
        token=created.token,
        lr=list(session.state.lrs),
        epoch=session.epoch,
        state=_progress(session.state),
        expires_at=created.record.expires_at,
    )


def store_new_session(
    store: SessionStore, session: sessions.Session, ttl_seconds: int, tenant: sessions.Tenant
) -> sessions.Created:
    """The one gate every kind of session is created through (plateau, early stopping,
    LR range test): the tenant's quotas, a fresh id and token, and the count."""
    created = sessions.create(store, session, ttl_seconds, tenant)
    metrics.SESSIONS_CREATED.inc()
    return created


class ReportRoute(ShortcutRoute):
    """The report route, with a shortcut for the well-formed report every rank sends: a
    report whose body validates is checked and applied directly, its refusals (401 without
    a bearer token, 403, 404, 409) raised as the declared route raises them; anything else
    takes the declared route.
    """

    async def shortcut(self, request: Request, passed: Passed) -> Response | None:
        # The owner is the router's API-key gate's answer; a router without that gate still
        # has the declared route's ``Owner`` parameter, so ask it here the same way.
        if require_api_key in passed:
            return await _report_directly(request, passed[require_api_key])
        return await _report_directly(request, await api_key_gate(request))


async def report_metric(
    body: ReportRequest,
    session_id: SessionIdPath,
    credentials: BearerCredentials,
    updates: AsyncUpdatesDep,
    owner: Owner,
) -> Response:
    """One rank's metric for one epoch; the answer is the lr to use.

    The epoch is decided when every rank has reported it (``decided``); a retried report of
    a decided epoch returns its recorded decision and changes nothing.
    """
    return await _report(updates, session_id, bearer_token(credentials), owner, body)


router.add_api_route(
    "/{session_id}/reports",
    report_metric,
    methods=["POST"],
    summary="Report a metric",
    response_model=ReportResponse,
    responses={
        **AUTH_RESPONSES,
        409: {"description": "The report skips ahead: `detail.expected_epoch` is the next epoch."},
        503: {"description": "The store is unavailable or contended; retry (Retry-After)."},
    },
    route_class_override=ReportRoute,
)


async def _report_directly(http: Request, owner: str) -> Response | None:
    """:func:`report_metric` for a well-formed report of ``owner`` (the router's API-key
    gate passed), checked as the declared route would; ``None`` for anything the declared
    route must answer."""
    try:
        body = ReportRequest.model_validate_json(await http.body())
    except ValidationError:
        return None
    token = bearer_token(await _bearer(http))
    holder: StoreHolder = http.app.state.store
    return await _report(
        async_updates(holder.get()), http.path_params["session_id"], token, owner, body
    )


async def apply_report(
    updates: AsyncUpdates,
    session_id: str,
    token: str,
    owner: str,
    report: tuple[int, float, int],
) -> sessions.ReportOutcome:
    """:func:`sessions.report` of ``(epoch, metric, rank)``, its refusals as HTTP errors,
    counted in the metrics.

    Every session kind's report route goes through here (an LR range test's steps are the
    epochs, its losses the metrics).
    """
    epoch, metric, rank = report
    try:
        outcome = await sessions.report(
            updates, session_id, token, epoch, metric, rank, owner=owner
        )
    except sessions.SessionNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session not found") from None
    except sessions.SessionForbiddenError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong token for this session") from None
    except sessions.RankError as error:
        raise ScheduleError(str(error), ("rank",)) from None
    except sessions.EpochConflictError as error:
        metrics.child(metrics.REPORTS, "conflict").inc()
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            {"msg": str(error), "expected_epoch": error.expected, "epoch": error.got},
        ) from None
    metrics.child(metrics.REPORTS, outcome.kind).inc()
    return outcome


async def _report(
    updates: AsyncUpdates, session_id: str, token: str, owner: str, body: ReportRequest
) -> Response:
    """Apply the report and answer with the lr to use (serialized once, not re-validated)."""
    report = (body.epoch, body.metric, body.rank)
    outcome = await apply_report(updates, session_id, token, owner, report)
    stopping = outcome.stopping
    answer = ReportResponse(
        epoch=outcome.epoch,
        decided=outcome.decided,
        lr=list(outcome.lrs),
        reduced=outcome.reduced,
        state=_progress(outcome.state),
        waiting_for=list(outcome.waiting_for),
        stop=stopping is not None and stopping.stop,
        best_epoch=None if stopping is None else stopping.best_epoch,
        best_metric=None if stopping is None else stopping.best,
    )
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get("/{session_id}", summary="Read a session", responses=AUTH_RESPONSES)
def read_session(record: SessionDep) -> SessionView:
    """The current lr, the next epoch, the plateau counters, pending ranks and options."""
    session = sessions.decode_session(record.document)
    state, warmup, stopping = session.state, session.warmup, session.stopping
    return SessionView(
        id=record.id,
        lr=list(state.lrs),
        epoch=session.epoch,
        best=state.best,
        num_bad_epochs=state.num_bad_epochs,
        cooldown_counter=state.cooldown_counter,
        last_epoch=state.last_epoch,
        pending_ranks=sorted(session.pending),
        world_size=session.world_size,
        reduce=session.reduce,
        warmup_steps=0 if warmup is None else warmup.steps,
        warmup_start_factor=1.0 if warmup is None else warmup.start_factor,
        in_warmup=session.warming_up,
        schedule=_schedule(session),
        early_stopping=None
        if session.early_stopping is None
        else stopping_options(session.early_stopping).model_dump(mode="json"),
        stopping=None if stopping is None else stopping_progress(stopping),
        ttl_seconds=record.ttl_seconds,
        expires_at=record.expires_at,
    )


def _schedule(session: sessions.Session) -> dict[str, Any] | None:
    """The ReduceLROnPlateau options of ``session`` as they would be sent (None: none)."""
    config = session.config
    if config is None:
        return None
    schedule = ReduceLROnPlateau(
        type="ReduceLROnPlateau",
        mode=config.mode,
        factor=config.factor,
        patience=config.patience,
        threshold=config.threshold,
        threshold_mode=config.threshold_mode,
        cooldown=config.cooldown,
        min_lr=session.default_min_lr
        if session.default_min_lr is not None
        else list(config.min_lrs),
        eps=config.eps,
        patience_semantics=config.patience_semantics,
        min_delta=config.min_delta if config.threshold_mode == "both" else None,
        sign_safe_threshold=config.sign_safe,
        accumulation_size=config.accumulation_size,
    )
    return schedule.model_dump(mode="json")


@router.get("/{session_id}/history", summary="Decided epochs", responses=AUTH_RESPONSES)
def read_history(
    record: SessionDep,
    store: StoreDep,
    start: Annotated[int, Query(ge=0, le=MAX_INT, description="First epoch listed.")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_HISTORY_ROWS, description="Most rows returned.")
    ] = 1000,
) -> HistoryPage:
    """One row per decided epoch, in order: the combined metric, each rank's, the lr, reduced."""
    rows = store.history(record.id, start, limit + 1)
    decisions = [sessions.decode_decision(row) for _, row in rows[:limit]]
    return HistoryPage(
        rows=[
            HistoryRow(
                epoch=d.epoch,
                metric=d.metric,
                metrics=list(d.metrics),
                lr=list(d.lrs),
                reduced=d.reduced,
                warmup=d.warmup,
                stop=d.stopping is not None and d.stopping.stop,
            )
            for d in decisions
        ],
        next_start=rows[limit][0] if len(rows) > limit else None,
    )


@router.get(
    "/{session_id}/state_dict",
    summary="PyTorch state_dict",
    responses={
        **AUTH_RESPONSES,
        409: {"description": "An early-stopping-only session has no ReduceLROnPlateau."},
    },
    response_model=dict[str, Any],
)
def read_state_dict(record: SessionDep) -> dict[str, Any]:
    """``ReduceLROnPlateau.state_dict()`` after the same steps (non-finite values as strings).

    Load it with ``scheduler.load_state_dict(...)`` after turning the strings back into floats
    (``float("inf")``); the optimizer's lr is ``_last_lr``.
    """
    exported = sessions.state_dict(sessions.decode_session(record.document))
    if exported is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "this session only decides early stopping: it has no ReduceLROnPlateau state_dict",
        )
    return {key: _json_number(value) for key, value in exported.items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a session",
    responses=AUTH_RESPONSES,
)
def delete_session(record: SessionDep, store: StoreDep) -> Response:
    """Remove the session and its history."""
    store.delete(record.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
