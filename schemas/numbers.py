"""Numbers on the wire that JSON cannot spell: infinities and NaN.

JSON has no ``Infinity`` or ``NaN``. Wherever a value may be non-finite (a metric, a plateau
``best``, ``mode_worse``) the API writes it as one of the strings ``"inf"``, ``"-inf"``,
``"nan"`` and accepts it back in that form. :data:`NonFiniteFloat` is that convention as a
reusable pydantic type.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = ["NONFINITE_STRINGS", "NonFiniteFloat", "format_nonfinite", "parse_nonfinite"]

NONFINITE_STRINGS: tuple[str, str, str] = ("inf", "-inf", "nan")
"""The canonical spellings, as written by the service."""

_SPELLINGS: dict[str, float] = {
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
    "nan": math.nan,
}


def parse_nonfinite(value: Any) -> float:
    """A JSON number as a float, or a non-finite spelling (case-insensitive) as inf/-inf/nan.

    Accepted strings: ``inf``, ``+inf``, ``infinity``, ``+infinity``, ``-inf``, ``-infinity``,
    ``nan`` in any letter case. Anything else (numeric strings, booleans, null) is an error
    of type ``float_or_nonfinite``.
    """
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    elif isinstance(value, str):
        parsed = _SPELLINGS.get(value.strip().lower())
        if parsed is not None:
            return parsed
    raise PydanticCustomError(
        "float_or_nonfinite",
        'Input should be a number or one of the strings "inf", "-inf", "nan"',
    )


def format_nonfinite(value: float) -> float | str:
    """``value`` itself when finite, else the string ``"inf"``, ``"-inf"`` or ``"nan"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


NonFiniteFloat = Annotated[
    float,
    BeforeValidator(parse_nonfinite),
    PlainSerializer(format_nonfinite, return_type=float | str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "enum": list(NONFINITE_STRINGS)},
            ],
            "description": 'A number, or "inf", "-inf" or "nan" for a non-finite value.',
            "examples": [0.731, "inf", "nan"],
        }
    ),
]
"""A float that may be non-finite: a JSON number, or ``"inf"``, ``"-inf"``, ``"nan"``.

Validation also takes ``"+inf"``, ``"Infinity"``, ``"-Infinity"``, ``"NaN"`` (any case);
JSON serialization writes non-finite values as the canonical strings, finite ones as numbers.
"""
