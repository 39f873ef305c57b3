"""One curve's computation, shared by ``POST /v1/schedules`` and ``/v1/schedules/plot``.

:func:`check_values` and :func:`plan` are the one size and budget check of both routes
(``LRSCHED_MAX_VALUES``, then the engine's stepping and expression budgets); :class:`Job`
builds, computes and encodes one validated curve request, on the event loop or the curve
pool (:func:`run`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from fastapi import HTTPException, status

from rules.errors import ScheduleError
from schemas.requests import ScheduleRequest
from schemas.schedules import ScheduleSpec, build
from service import encoding, metrics
from service.cache import Entry
from service.config import Settings
from service.curve_pool import Ticket
from service.engine import (
    Curve,
    Curve32,
    StepRange,
    check_costs,
    compute,
    compute_float32,
    lr_chunks,
)
from service.engine.nodes import Node

T = TypeVar("T")

Loc = tuple[str | int, ...]
"""Where a schedule is in the request body (``("schedule",)``, ``("schedules", 2)``)."""


def check_values(shape: dict[str, int], max_values: int) -> int:
    """The number of values a request asks for, the product of ``shape`` (``{"groups": 2,
    "steps": 1000}``, in the order the message names them); past ``max_values``
    (``LRSCHED_MAX_VALUES``) a 422 naming ``steps``."""
    values = math.prod(shape.values())
    if values > max_values:
        asked = " x ".join(f"{count} {name}" for name, count in shape.items())
        raise ScheduleError(
            f"the request asks for {values} values ({asked}); at most {max_values} "
            "(LRSCHED_MAX_VALUES): ask for a range with start/stride, or fewer steps",
            ("steps",),
        )
    return values


def plan(
    specs: list[tuple[ScheduleSpec, Loc]], groups: int, steps: StepRange, settings: Settings
) -> tuple[list[Node], int]:
    """The tree of each schedule, once all together passed the engine's budgets; and the
    stepped evaluations they need. An engine refusal names the schedule's place."""
    roots: list[Node] = []
    for spec, loc in specs:
        try:
            roots.append(build(spec, groups))
        except ScheduleError as error:
            raise error.within(*loc) from None
    return roots, check_costs(roots, steps, groups, settings.max_values)


class Job:
    """One validated request's computation: build, check the cost, compute, encode."""

    def __init__(
        self,
        request: ScheduleRequest,
        steps: StepRange,
        media_type: str,
        series: encoding.Series,
        settings: Settings,
    ) -> None:
        self.request = request
        self.steps = steps
        self.media_type = media_type
        self.series: encoding.Series = series
        self.settings = settings
        self._root: Node | None = None
        self._work = 0

    def work(self) -> int:
        """Values plus stepped evaluations; builds the tree and enforces the stepping budget."""
        if self._root is None:
            lrs = self.request.lrs
            [root], cost = plan(
                [(self.request.schedule, ("schedule",))], len(lrs), self.steps, self.settings
            )
            self._root, self._work = root, cost + len(self.steps) * len(lrs)
        return self._work

    def curve(self) -> Curve | Curve32:
        """The curve: float32 for the float32 media type, float64 otherwise."""
        self.work()
        root, lrs = self._root, self.request.lrs
        assert root is not None
        calculate = compute_float32 if self.media_type == encoding.FLOAT32 else compute
        try:
            curve = calculate(root, np.asarray(lrs, dtype=np.float64), self.steps)
        except ScheduleError as error:
            raise error.within("schedule") from None
        metrics.child(metrics.CURVES, self.request.schedule.type).inc()
        metrics.VALUES.inc(curve.lr.size)
        if self.media_type != encoding.JSON and self.series == "momentum":
            if curve.momentum is None:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    [
                        {
                            "type": "value_error",
                            "loc": ["query", "series"],
                            "msg": f"series=momentum: {self.request.schedule.type} does not "
                            "cycle momentum",
                        }
                    ],
                )
        return curve

    def lazy_stream(self) -> encoding.Stream | None:
        """The body computed piece by piece as it is sent, if this curve allows it
        (:func:`service.engine.lr_chunks`: one group, no momentum); ``None`` otherwise."""
        if self.series != "lr" and self.media_type != encoding.JSON:
            return None
        self.work()
        assert self._root is not None
        dtype = np.dtype("<f4" if self.media_type == encoding.FLOAT32 else "<f8")
        lrs = np.asarray(self.request.lrs, dtype=np.float64)
        try:
            pieces = lr_chunks(self._root, lrs, self.steps, dtype)
        except ScheduleError as error:
            raise error.within("schedule") from None
        if pieces is None:
            return None
        metrics.child(metrics.CURVES, self.request.schedule.type).inc()
        metrics.VALUES.inc(len(self.steps))
        if self.media_type == encoding.JSON:
            return encoding.json_pieces(pieces, self.steps)
        return encoding.stream_pieces(pieces, len(self.steps), dtype, self.media_type)

    def encoded(self) -> Entry:
        """The whole response body (what the cache keeps)."""
        curve = self.curve()
        if isinstance(curve, Curve32):
            assert self.media_type == encoding.FLOAT32
            values = curve.lr if self.series == "lr" else curve.momentum
            assert values is not None
            shape = {"X-Shape": f"{values.shape[0]},{values.shape[1]}"}
            return Entry(np.ascontiguousarray(values).tobytes(), encoding.FLOAT32, shape)
        encoded = encoding.encode(curve, self.steps, self.media_type, self.series)
        return Entry(encoded.body, encoded.media_type, encoded.headers)


async def run(ticket: Ticket | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: on the event loop without a ticket (inline work), else on the curve pool."""
    if ticket is None:
        return fn(*args)
    return await ticket.run(fn, *args)
