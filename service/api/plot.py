"""``POST /v1/schedules/plot``: a picture of one curve, or of several overlaid, as SVG or PNG.

The body is a ``POST /v1/schedules`` body, or the comparison form with ``schedules`` (and
optional ``labels``) instead of ``schedule``. Curves go through the same checks as
``/v1/schedules`` (the value limit, the stepping budget, the engine's errors as 422s), are
computed whole by the engine, and only then downsampled for drawing
(:func:`service.plotting.minmax_downsample`), so a spike one step wide stays visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rules.errors import ScheduleError
from schemas.fields import LearningRates
from schemas.numbers import AN_INTEGER
from schemas.schedules import ScheduleSpec
from service import encoding, plotting
from service.api import schedules
from service.api.bodies import GatedRoute
from service.api.curve_job import check_values, plan
from service.api.deps import SettingsDep
from service.config import Settings
from service.curve_pool import curve_pool
from service.engine import Curve, StepRange, compute
from service.engine.nodes import Node
from service.engine.types import FloatArray
from service.limits import (
    MAX_CURVES,
    MAX_INT,
    MAX_LABEL_CHARS,
    MAX_LINES,
    MAX_PLOT_HEIGHT,
    MAX_PLOT_WIDTH,
    MIN_PLOT_HEIGHT,
    MIN_PLOT_WIDTH,
)

router = APIRouter(prefix="/v1/schedules", tags=["schedules"], route_class=GatedRoute)

Width = Annotated[int, Query(ge=MIN_PLOT_WIDTH, le=MAX_PLOT_WIDTH, description="Width in pixels.")]
"""A picture's width query parameter (schedules' plots and LR range tests')."""
Height = Annotated[
    int, Query(ge=MIN_PLOT_HEIGHT, le=MAX_PLOT_HEIGHT, description="Height in pixels.")
]
"""A picture's height query parameter."""

SVG = "image/svg+xml"
PNG = "image/png"
FORMATS: dict[str, plotting.Format] = {SVG: "svg", PNG: "png"}
"""Media types the plot is offered in, the default first."""
_IMAGE_TYPES = tuple(FORMATS)
"""The types of ``FORMATS`` in order, as :func:`service.encoding.negotiate` is offered them."""

Label = Annotated[
    str, Field(min_length=1, max_length=MAX_LABEL_CHARS, pattern=r"^[^\x00-\x1f\x7f\ufffe\uffff]+$")
]
"""A legend entry: text without control characters or U+FFFE/U+FFFF (not allowed in XML)."""


class PlotRequest(BaseModel):
    """A ``POST /v1/schedules`` body, or several schedules to overlay (``schedules``).

    Give exactly one of ``schedule`` and ``schedules``; ``lr``, ``steps``, ``start`` and
    ``stride`` apply to every curve.
    """

    model_config = ConfigDict(extra="forbid")

    schedule: ScheduleSpec | None = Field(
        default=None, description="One schedule: the body of `POST /v1/schedules`."
    )
    schedules: Annotated[list[ScheduleSpec], Field(min_length=1, max_length=MAX_CURVES)] | None = (
        Field(default=None, description=f"Up to {MAX_CURVES} schedules to overlay.")
    )
    labels: Annotated[list[Label], Field(min_length=1, max_length=MAX_CURVES)] | None = Field(
        default=None,
        description="One legend entry per curve (default: the schedule types).",
    )
    lr: LearningRates = Field(
        default=0.001,
        description="The optimizer's learning rate: one number, or one per param group.",
    )
    steps: Annotated[
        int,
        Field(ge=0, le=MAX_INT, description="Length of the schedule (exclusive end)."),
        AN_INTEGER,
    ]
    start: Annotated[int, Field(ge=0, le=MAX_INT, description="First step drawn."), AN_INTEGER] = 0
    stride: Annotated[
        int, Field(ge=1, le=MAX_INT, description="Distance between steps."), AN_INTEGER
    ] = 1

    @field_validator("labels")
    @classmethod
    def _one_label_per_curve(cls, labels: list[str] | None, info: ValidationInfo) -> Any:
        curves = info.data.get("schedules")
        if labels is not None and curves is not None and len(labels) != len(curves):
            raise ValueError(
                f"{len(labels)} labels for {len(curves)} schedules: give one label per schedule"
            )
        return labels

    @property
    def lrs(self) -> list[float]:
        """The learning rate of every param group."""
        return list(self.lr) if isinstance(self.lr, list) else [self.lr]

    def curves(self) -> list[tuple[str, ScheduleSpec, tuple[str | int, ...]]]:
        """``(label, spec, loc)`` of every curve to draw; ``loc`` is the spec's body path."""
        if self.schedule is not None and self.schedules is not None:
            raise ScheduleError(
                "give either `schedule` (one curve) or `schedules` (curves to compare), not both",
                ("schedules",),
            )
        if self.schedule is not None:
            if self.labels is not None and len(self.labels) != 1:
                raise ScheduleError(
                    f"{len(self.labels)} labels for one schedule: give one label", ("labels",)
                )
            label = self.labels[0] if self.labels else self.schedule.type
            return [(label, self.schedule, ("schedule",))]
        if self.schedules is None:
            raise ScheduleError(
                "Field required: give `schedule`, or `schedules` to compare several",
                ("schedule",),
            )
        labels = self.labels or _default_labels([spec.type for spec in self.schedules])
        return [
            (label, spec, ("schedules", index))
            for index, (label, spec) in enumerate(zip(labels, self.schedules, strict=True))
        ]


def _default_labels(types: list[str]) -> list[str]:
    """The types, numbered where one occurs more than once (``StepLR #1``, ``StepLR #2``)."""
    return [
        f"{kind} #{types[: index + 1].count(kind)}" if types.count(kind) > 1 else kind
        for index, kind in enumerate(types)
    ]


def _examples() -> dict[str, dict[str, Any]]:
    comparison = {
        "summary": "Comparison: several schedules overlaid",
        "description": "Warmup + cosine against OneCycleLR, both over 1000 steps.",
        "value": {
            "schedules": [
                {
                    "type": "SequentialLR",
                    "schedulers": [
                        {"type": "LinearLR", "start_factor": 0.01, "total_iters": 100},
                        {"type": "CosineAnnealingLR", "T_max": 900},
                    ],
                    "milestones": [100],
                },
                {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 1000},
            ],
            "labels": ["warmup + cosine", "one cycle"],
            "lr": 0.1,
            "steps": 1000,
        },
    }
    return {"comparison": comparison, **schedules._examples()}


_TEXT = {"schema": {"type": "string"}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.post(
    "/plot",
    summary="Draw a learning-rate curve",
    response_class=Response,
    responses={
        200: {
            "description": (
                "The picture: SVG by default, PNG with `Accept: image/png`. LR per param group "
                "against the step, momentum (dashed) on a second axis when the schedule cycles "
                "it; one colour per curve when several are compared."
            ),
            "content": {SVG: _TEXT, PNG: _BINARY},
        },
        304: {"description": "Not modified: `If-None-Match` matched the picture's ETag."},
        406: {"description": "No acceptable media type in `Accept`."},
        501: {"description": "Plotting is not installed (`pip install 'lrsched[plot]'`)."},
    },
)
async def plot_schedule(
    request: Annotated[PlotRequest, Body(openapi_examples=_examples())],
    settings: SettingsDep,
    http: Request,
    scale: Annotated[
        plotting.Scale,
        Query(description="The lr axis: `linear`, or `log` (non-positive values left out)."),
    ] = "linear",
    width: Width = 800,
    height: Height = 450,
    accept: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The curve of ``schedule`` (or of each of ``schedules``) over ``range(start, steps, stride)``.

    Values are computed exactly as by ``POST /v1/schedules`` and then reduced to the
    smallest and largest value per pixel column before drawing. The title is the schedule
    type, or the labels of a comparison.
    """
    media_type = _media_type(accept)
    _require_plotting()
    curves = request.curves()
    steps = StepRange(request.start, request.steps, request.stride)
    roots = _plan(curves, request.lrs, steps, settings)
    canonical = f"{request.model_dump_json()}|{scale}|{width}x{height}".encode()
    tag = encoding.etag(canonical, media_type, "lr", f"{schedules.VERSION}/{plotting.version()}")
    headers = {"ETag": tag, "Vary": "Accept"}
    unchanged = Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    wildcard = encoding.is_wildcard(if_none_match)  # `*` matches only a picture that exists
    if encoding.matches(if_none_match, tag) and not wildcard:
        return unchanged
    picture = _Picture(curves, roots, request.lrs, steps, scale, width, height, media_type)
    ticket = curve_pool(http).admit(http, len(curves) * len(request.lrs) * len(steps))
    try:
        body = await ticket.run(picture.draw)
    finally:
        ticket.close()
    if wildcard:
        return unchanged
    return Response(body, media_type=media_type, headers=headers)


@dataclass(frozen=True)
class _Picture:
    """What to draw; :meth:`draw` computes the curves and renders them (on the curve pool)."""

    curves: list[tuple[str, ScheduleSpec, tuple[str | int, ...]]]
    roots: list[Node]
    lrs: list[float]
    steps: StepRange
    scale: plotting.Scale
    width: int
    height: int
    media_type: str

    def draw(self) -> bytes:
        """The rendered picture; raises :class:`ScheduleError` for an undrawable curve."""
        lrs = np.asarray(self.lrs, dtype=np.float64)
        x = self.steps.indices()
        series: list[plotting.Series] = []
        for (label, _, loc), root in zip(self.curves, self.roots, strict=True):
            curve = _compute(root, lrs, self.steps, loc)
            problem = plotting.undrawable(curve.lr)
            if problem is None and curve.momentum is not None:
                problem = plotting.undrawable(curve.momentum)
            if problem is not None:
                raise ScheduleError(f"{label}: {problem}", loc)
            name = None if len(self.curves) == 1 else label
            series += plotting.curve_series(curve, x, name, len(series), self.width)
        title = " vs ".join(label for label, _, _ in self.curves)
        picture = plotting.Plot(title, series, self.scale, self.width, self.height)
        return plotting.render(picture, FORMATS[self.media_type])


def _media_type(accept: str | None) -> str:
    """The image type ``Accept`` asks for, or 406."""
    media_type = negotiate(accept)
    if media_type is None:
        raise HTTPException(
            status.HTTP_406_NOT_ACCEPTABLE,
            f"cannot answer with {accept!r}; acceptable: {', '.join(FORMATS)}",
        )
    return media_type


def _require_plotting() -> None:
    """501 unless matplotlib, the optional ``plot`` extra, is installed."""
    try:
        plotting.require()
    except plotting.PlottingUnavailable as error:
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, str(error)) from None


def negotiate(accept: str | None) -> str | None:
    """The image type to answer with for ``Accept``; ``None`` if none is acceptable."""
    return encoding.negotiate(accept, _IMAGE_TYPES, ("*/*", "image/*"))


def _plan(
    curves: list[tuple[str, ScheduleSpec, tuple[str | int, ...]]],
    lrs: list[float],
    steps: StepRange,
    settings: Settings,
) -> list[Node]:
    """Check the limits of ``/v1/schedules`` over all curves together, and build each tree."""
    lines = len(curves) * len(lrs)
    if lines > MAX_LINES:
        raise ScheduleError(
            f"{len(curves)} curves x {len(lrs)} param groups make {lines} lines; at most "
            f"{MAX_LINES} in one picture: draw fewer groups or curves",
            ("lr",),
        )
    shape = {"curves": len(curves), "groups": len(lrs), "steps": len(steps)}
    check_values(shape, settings.max_values)
    specs = [(spec, loc) for _, spec, loc in curves]
    roots, _ = plan(specs, len(lrs), steps, settings)
    return roots


def _compute(root: Node, lrs: FloatArray, steps: StepRange, loc: tuple[str | int, ...]) -> Curve:
    try:
        return compute(root, lrs, steps)
    except ScheduleError as error:
        raise error.within(*loc) from None
