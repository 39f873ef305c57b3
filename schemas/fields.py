"""Field types shared by the schedule models: finite numbers, per-group values, expressions."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from pydantic import AfterValidator, Field, StrictInt, Tag

from schemas.numbers import A_NUMBER, AN_INTEGER
from service.engine.registry import compile_source
from service.limits import MAX_GROUPS, MAX_INT, MAX_LENGTH

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


ExpressionSource = Annotated[
    str,
    Field(
        max_length=MAX_LENGTH,
        description=(
            "Python lambda source (`lambda epoch: 0.95 ** epoch`) or a bare expression in "
            "`epoch`; see the expression language in the API description."
        ),
    ),
    AfterValidator(compile_source),
]
PerGroupExpression: TypeAlias = (
    ExpressionSource | Annotated[list[ExpressionSource], Field(min_length=1, max_length=MAX_GROUPS)]
)
