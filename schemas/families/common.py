"""Field types and helpers shared by the family models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from schemas.fields import BoundedInt
from schemas.numbers import A_NUMBER, AN_INTEGER
from service.limits import MAX_INT, MAX_REAL

Steps = Annotated[int, Field(ge=0, le=MAX_INT, description="A number of steps (>= 0)."), AN_INTEGER]
PositiveSteps = Annotated[
    int, Field(gt=0, le=MAX_INT, description="A number of steps (> 0)."), AN_INTEGER
]
AnySteps = BoundedInt
Real = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_REAL, le=MAX_REAL), A_NUMBER]
NonNegative = Annotated[float, Field(allow_inf_nan=False, ge=0.0, le=MAX_REAL), A_NUMBER]


def config(example: dict[str, Any], doc: str | None, title: str | None = None) -> ConfigDict:
    """Model config: no unknown fields, the example and the library's docs in the schema."""
    extra: dict[str, Any] = {"examples": [example]}
    if doc is not None:
        extra["externalDocs"] = {"url": doc}
    settings = ConfigDict(extra="forbid", json_schema_extra=extra)
    if title is not None:
        settings["title"] = title
    return settings
