"""Numbers and booleans on the wire: no strings taken for them, and the non-finite spellings.

**No strings.** A schedule spec holds a PyTorch constructor's arguments, and PyTorch gets what
JSON decodes to: ``StepLR(step_size="3")`` fails at its first step, ``ExponentialLR(gamma=
"0.5")`` at ``lr * "0.5"``, and ``CyclicLR(cycle_momentum="no")`` cycles momentum, since a
non-empty string is true. pydantic's lax mode would quietly convert all of these, so every
number and boolean of a request body is declared with the markers and type here:

- :data:`AN_INTEGER` and :data:`A_NUMBER` reject strings (of any content) and leave the rest to
  pydantic's lax int and float: ``true``/``false`` stay the ints 1/0 (``StepLR(step_size=True)``
  is what PyTorch accepts, since Python's ``bool`` is an ``int``), a float field takes JSON
  integers, an int field an integral float (``3.0``), as before.
- :data:`Boolean` takes ``true``/``false`` and the ints ``0``/``1``, which PyTorch reads as
  false/true; any other number, and any string, is an error.

They behave the same under ``model_validate`` (the parsed JSON, as FastAPI validates bodies)
and ``model_validate_json`` (the raw bytes). A marker goes *last* in ``Annotated``, after the
``Field`` constraints: pydantic keeps constraints that come before a validator in the core
schema (``minimum``/``maximum`` in the JSON schema), but turns those after one into separate
checks that the JSON schema shows as unknown ``ge``/``le`` keys.

**Non-finite numbers.** JSON has no ``Infinity`` or ``NaN``. Wherever a value may be
non-finite (a metric, a plateau ``best``, ``mode_worse``) the API writes it as one of the
strings ``"inf"``, ``"-inf"``, ``"nan"`` and accepts it back in that form.
:data:`NonFiniteFloat` is that convention as a reusable pydantic type (it takes no other
strings, nor booleans).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "AN_INTEGER",
    "A_NUMBER",
    "NONFINITE_STRINGS",
    "Boolean",
    "NonFiniteFloat",
    "format_nonfinite",
    "parse_boolean",
    "parse_nonfinite",
]


def _not_a_string(error_type: str, expected: str) -> Callable[[Any], Any]:
    """A before-validator refusing strings with a ``error_type`` error naming ``expected``."""

    def check(value: Any) -> Any:
        if isinstance(value, str | bytes | bytearray):
            raise PydanticCustomError(error_type, f"Input should be {expected}, not a string")
        return value

    return check


AN_INTEGER = BeforeValidator(_not_a_string("int_type", "a valid integer"))
"""``Annotated`` marker (last, after the constraints) of an integer option: no strings."""
A_NUMBER = BeforeValidator(_not_a_string("float_type", "a valid number"))
"""``Annotated`` marker (last, after the constraints) of a number option: no strings."""


def parse_boolean(value: Any) -> bool:
    """``true``/``false`` as themselves, the ints ``0``/``1`` as false/true; nothing else.

    PyTorch tests options such as ``cycle_momentum`` for truth, so 0 and 1 mean what they say
    there. Other numbers are ``bool_parsing`` errors; strings (``"no"`` is true in Python)
    and other types are ``bool_type`` errors.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, int | float):
        raise PydanticCustomError(
            "bool_parsing", "Input should be a valid boolean: true, false, 0 or 1"
        )
    if isinstance(value, str | bytes | bytearray):
        raise PydanticCustomError("bool_type", "Input should be a valid boolean, not a string")
    raise PydanticCustomError("bool_type", "Input should be a valid boolean")


Boolean = Annotated[bool, Strict(), BeforeValidator(parse_boolean)]
"""A boolean option: ``true``, ``false``, ``0`` or ``1`` (see :func:`parse_boolean`)."""

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
