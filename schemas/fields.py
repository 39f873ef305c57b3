"""Field types shared by the schedule models: finite numbers, per-group values, expressions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeAlias

import numpy as np
from pydantic import AfterValidator, Field, StrictInt, Tag

from rules.errors import Loc, ScheduleError
from schemas.numbers import A_NUMBER, AN_INTEGER
from service.engine.expressions import Expression, compile_expression
from service.engine.types import FloatArray

MAX_GROUPS = 1024
"""Most param groups a request may describe."""
MAX_INT = 10**15
"""Largest magnitude accepted for integer options (steps, periods, milestones)."""

# Every number below refuses strings (schemas.numbers): the marker comes last, after the
# constraints. A union member carrying the marker is tagged with the name pydantic gave it
# before, so the ``loc`` of its errors stays ``[..., "lr", "list[float]", 0]``.

FiniteFloat = Annotated[float, Field(allow_inf_nan=False), A_NUMBER]
BoundedInt = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT), AN_INTEGER]
PositiveStrictInt = Annotated[StrictInt, Field(gt=0, le=MAX_INT), AN_INTEGER]
"""A positive int: PyTorch checks ``isinstance(x, int)``, so ``3.0`` is refused (and, this
being strict, ``true``, though Python would take it)."""
Number: TypeAlias = (
    Annotated[int, Field(ge=-MAX_INT, le=MAX_INT), AN_INTEGER, Tag("constrained-int")]
    | Annotated[
        float,
        Field(allow_inf_nan=False, ge=-MAX_INT, le=MAX_INT),
        A_NUMBER,
        Tag("constrained-float"),
    ]
)
"""An int or a float, kept as given: PyTorch treats ``3`` and ``2.5`` differently."""
PerGroup: TypeAlias = (
    Annotated[FiniteFloat, Tag("float")]
    | Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_GROUPS), Tag("list[float]")]
)
"""One value for every param group, or a list with one value per group."""
LearningRate = Annotated[float, Field(ge=0.0, allow_inf_nan=False), A_NUMBER]
"""An optimizer learning rate: PyTorch's optimizers reject negative ones."""
LearningRates: TypeAlias = (
    Annotated[LearningRate, Tag("constrained-float")]
    | Annotated[
        list[LearningRate],
        Field(min_length=1, max_length=MAX_GROUPS),
        Tag("list[constrained-float]"),
    ]
)
"""The optimizer's lr: one for every param group, or one per group."""


class CompiledSource(str):
    """An expression's source as the request gave it, carrying its compiled form: validation
    compiles every expression, and building the schedule uses that rather than compiling it
    again (the compile cache may not hold every expression of a request)."""

    __slots__ = ("expression",)
    expression: Expression

    def __new__(cls, expression: Expression) -> CompiledSource:
        source = super().__new__(cls, expression.source)
        source.expression = expression
        return source

    def __copy__(self) -> CompiledSource:
        return self  # immutable, as its expression is

    def __deepcopy__(self, memo: dict[int, object]) -> CompiledSource:
        return self

    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return _compiles, (str(self),)


def _compiles(source: str) -> str:
    return CompiledSource(compile_expression(source))


def _compiled(source: str) -> Expression:
    """The compiled form of a validated source (compiled here if it was not validated)."""
    if isinstance(source, CompiledSource):
        return source.expression
    return compile_expression(source)


ExpressionSource = Annotated[
    str,
    Field(
        max_length=1000,
        description=(
            "Python lambda source (`lambda epoch: 0.95 ** epoch`) or a bare expression in "
            "`epoch`; see the expression language in the API description."
        ),
    ),
    AfterValidator(_compiles),
]
PerGroupExpression: TypeAlias = (
    ExpressionSource | Annotated[list[ExpressionSource], Field(min_length=1, max_length=MAX_GROUPS)]
)


def per_group(value: float | list[float], groups: int, loc: Loc) -> FloatArray:
    """``value`` for each of ``groups`` param groups, as PyTorch's ``_format_param`` checks."""
    if isinstance(value, list):
        if len(value) != groups:
            raise ScheduleError(
                f"{loc[-1]} must have the same length as optimizer.param_groups: "
                f"{len(value)} values for {groups} param groups",
                loc,
            )
        return np.asarray(value, dtype=np.float64)
    return np.full(groups, float(value))


def expressions(value: str | list[str], groups: int, loc: Loc) -> list[Expression]:
    """The compiled expression of each param group (one list entry per group, or shared)."""
    if isinstance(value, list):
        if len(value) != groups:
            raise ScheduleError(f"Expected {groups} lr_lambdas, but got {len(value)}", loc)
        return [_compiled(source) for source in value]
    return [_compiled(value)] * groups
