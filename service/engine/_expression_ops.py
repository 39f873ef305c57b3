"""Python's number semantics, vectorized: the operations behind ``service.engine.expressions``.

Every operation takes and returns a :class:`Value`: one Python number per argument value,
stored as float64 values, a flag saying which of them are Python ``int`` (``bool`` included),
and an error code saying where Python would already have raised. Keeping the int flag lets us
tell ``10 ** 400`` (an int too large for a float: PyTorch fails to convert it) from
``1e300 * 1e300`` (a float that quietly becomes ``inf``); keeping error codes per element lets
``1 / e if e > 0 else 1.0`` be fine at ``e == 0``, because the conditional selects the error
codes with the same condition as the values.

Error codes are 1-based indices into the compiled expression's message table (0: no error).
An element keeps its first error (Python's evaluation order: left operand, right operand, then
the operation itself); its value is meaningless from then on. Callers evaluate under
``np.errstate(all="ignore")``: invalid or overflowing elements are detected here, not warned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]
Codes = NDArray[np.int16]
FloatUfunc = Callable[[Floats], Floats]
Comparison = Callable[[Floats, Floats], Flags]


@dataclass(frozen=True, slots=True)
class Value:
    """Python numbers, one per argument value: ``values``, ``is_int`` and ``error`` codes."""

    values: Floats
    is_int: Flags
    error: Codes


def constant(shape: tuple[int, ...], number: float, is_int: bool) -> Value:
    """A literal or named constant, repeated for every argument value."""
    return Value(
        np.full(shape, number, dtype=np.float64),
        np.full(shape, is_int, dtype=np.bool_),
        np.zeros(shape, dtype=np.int16),
    )


def argument(x: Floats) -> Value:
    """The argument itself: PyTorch passes a Python int."""
    return Value(x, np.ones(x.shape, dtype=np.bool_), np.zeros(x.shape, dtype=np.int16))


def _first(*errors: Codes) -> Codes:
    """Per element, the first non-zero code (Python evaluates left to right)."""
    result = errors[0]
    for later in errors[1:]:
        result = np.where(result != 0, result, later)
    return result


def _raise_where(error: Codes, condition: Flags, code: int) -> Codes:
    """Record ``code`` where ``condition`` holds and nothing was raised before."""
    return np.where((error == 0) & condition, np.int16(code), error)


def _ints_checked(values: Floats, is_int: Flags, error: Codes, too_large: int) -> Value:
    """An int result beyond float range cannot become a learning rate: raise ``too_large``."""
    return Value(values, is_int, _raise_where(error, is_int & ~np.isfinite(values), too_large))


def truthy(value: Value) -> Flags:
    """Python's ``bool(number)``: non-zero, NaN included."""
    non_zero: Flags = value.values != 0
    return non_zero


def arithmetic(
    operation: Callable[[Floats, Floats], Floats], left: Value, right: Value, too_large: int
) -> Value:
    """``+``, ``-``, ``*``: int when both are ints; floats overflow to inf without raising."""
    is_int = left.is_int & right.is_int
    values = operation(left.values, right.values)
    return _ints_checked(values, is_int, _first(left.error, right.error), too_large)


def negative(operand: Value) -> Value:
    """Unary minus keeps the type."""
    return Value(-operand.values, operand.is_int, operand.error)


def true_divide(left: Value, right: Value, by_zero: int) -> Value:
    """``/``: always a float; a zero divisor raises ZeroDivisionError."""
    error = _raise_where(_first(left.error, right.error), right.values == 0, by_zero)
    values = np.true_divide(left.values, right.values)
    return Value(values, np.zeros(values.shape, dtype=np.bool_), error)


def floor_divide(left: Value, right: Value, by_zero: int) -> Value:
    """``//`` with Python's rounding toward -inf (``np.floor_divide`` follows CPython)."""
    error = _raise_where(_first(left.error, right.error), right.values == 0, by_zero)
    values = np.floor_divide(left.values, right.values)
    return Value(values, left.is_int & right.is_int, error)


def modulo(left: Value, right: Value, by_zero: int) -> Value:
    """``%`` taking the divisor's sign, as Python does (``np.mod`` follows CPython)."""
    error = _raise_where(_first(left.error, right.error), right.values == 0, by_zero)
    values = np.mod(left.values, right.values)
    return Value(values, left.is_int & right.is_int, error)


class PowerErrors(NamedTuple):
    """Codes for the ways ``a ** b`` raises (or, for a complex result, is refused)."""

    zero_to_negative: int
    complex_result: int
    overflow: int
    too_large: int


def power(base: Value, exponent: Value, codes: PowerErrors, *, always_float: bool) -> Value:
    """``a ** b`` / ``pow(a, b)``, or ``math.pow(a, b)`` when ``always_float``.

    Special values follow C99 ``pow``, as CPython's float power does. Raised for finite operands
    only: ``0.0 ** negative`` (ZeroDivisionError; ValueError in ``math.pow``), a negative base
    with a fractional exponent (complex in Python, refused here) and overflow (OverflowError).
    ``int ** non-negative int`` is an exact int in Python; beyond float range it is refused.
    """
    a, b = base.values, exponent.values
    values = np.power(a, b)
    finite = np.isfinite(a) & np.isfinite(b)
    if always_float:
        is_int = np.zeros(values.shape, dtype=np.bool_)
    else:
        is_int = base.is_int & exponent.is_int & (b >= 0)
    zero_to_negative = finite & (a == 0) & (b < 0)
    error = _first(base.error, exponent.error)
    error = _raise_where(error, zero_to_negative, codes.zero_to_negative)
    error = _raise_where(error, finite & (a < 0) & (b != np.floor(b)), codes.complex_result)
    overflow = finite & np.isinf(values)
    error = _raise_where(error, overflow & ~is_int, codes.overflow)
    return _ints_checked(values, is_int, error, codes.too_large)


def compare_chain(operands: Iterable[Value], comparisons: list[Comparison]) -> Value:
    """``a < b <= c``: each operand evaluated once, later ones only while all hold so far.

    ``operands`` is consumed one at a time: given a generator, only two of them are alive at
    once, however long the chain.
    """
    remaining = iter(operands)
    left = next(remaining)
    holds = np.ones(left.values.shape, dtype=np.bool_)
    error = left.error
    for comparison, right in zip(comparisons, remaining, strict=True):
        error = _first(error, np.where(holds, right.error, np.int16(0)))
        holds = holds & comparison(left.values, right.values)
        left = right
    return Value(holds.astype(np.float64), np.ones(holds.shape, dtype=np.bool_), error)


def logical_not(operand: Value) -> Value:
    """``not a``: a bool."""
    values = (operand.values == 0).astype(np.float64)
    return Value(values, np.ones(values.shape, dtype=np.bool_), operand.error)


def logical_and(left: Value, right: Value) -> Value:
    """``a and b``: ``b`` where ``a`` is truthy (only there is ``b`` evaluated), else ``a``."""
    take = truthy(left)
    return Value(
        np.where(take, right.values, left.values),
        np.where(take, right.is_int, left.is_int),
        _first(left.error, np.where(take, right.error, np.int16(0))),
    )


def logical_or(left: Value, right: Value) -> Value:
    """``a or b``: ``a`` where it is truthy, else ``b`` (only there is ``b`` evaluated)."""
    take = truthy(left)
    return Value(
        np.where(take, left.values, right.values),
        np.where(take, left.is_int, right.is_int),
        _first(left.error, np.where(take, np.int16(0), right.error)),
    )


def if_else(condition: Value, body: Value, orelse: Value) -> Value:
    """``body if condition else orelse``: only the chosen branch counts, errors included."""
    take = truthy(condition)
    return Value(
        np.where(take, body.values, orelse.values),
        np.where(take, body.is_int, orelse.is_int),
        _first(condition.error, np.where(take, body.error, orelse.error)),
    )


def extremum(operands: Iterable[Value], *, largest: bool) -> Value:
    """``min(a, b, ...)`` / ``max(...)``: like Python, keep the earlier operand unless a later
    one compares strictly less (greater); with NaN that keeps whichever came first, and of
    ``0.0`` and ``-0.0`` the first too (unlike ``np.minimum``/``np.maximum``).

    ``operands`` is consumed one at a time and folded into one accumulator: given a generator,
    only the accumulator and one operand are alive at once, however many operands there are.
    """
    remaining = iter(operands)
    first = next(remaining)
    # Copies: the first operand's arrays may be shared (the argument's values are the input).
    values, is_int, error = first.values.copy(), first.is_int.copy(), first.error.copy()
    for other in remaining:
        take = other.values > values if largest else other.values < values
        np.copyto(values, other.values, where=take)
        np.copyto(is_int, other.is_int, where=take)
        np.copyto(error, other.error, where=error == 0)
    return Value(values, is_int, error)


def absolute(operand: Value) -> Value:
    """``abs(a)`` keeps the type."""
    return Value(np.abs(operand.values), operand.is_int, operand.error)


def round_to_int(operand: Value, rounding: FloatUfunc, not_finite: int) -> Value:
    """``math.floor`` / ``math.ceil`` / ``int`` (``np.trunc``) / ``round`` (``np.rint``, half to
    even): an int; a float inf (OverflowError) or NaN (ValueError) raises. Ints pass through
    unchanged. An int has no sign of zero: ``int(-0.5)`` is ``0``, not ``-0.0``."""
    invalid = ~operand.is_int & ~np.isfinite(operand.values)
    values = rounding(operand.values) + 0.0
    return Value(
        values,
        np.ones(values.shape, dtype=np.bool_),
        _raise_where(operand.error, invalid, not_finite),
    )


def to_float(operand: Value) -> Value:
    """``float(a)``: the same number, as a float (ints beyond float range already raised)."""
    return Value(operand.values, np.zeros(operand.values.shape, dtype=np.bool_), operand.error)


EXACT_POWERS_OF_TEN = 22
"""``10.0 ** n`` is exact in float64 up to this ``n``."""


def round_digits(operand: Value, ndigits: int) -> Value:
    """``round(a, ndigits)``: a float rounded to ``ndigits`` decimals (an int to a multiple of
    ``10 ** -ndigits``), keeping its type; infinities and NaN pass through.

    Python rounds the float's exact binary value, half to even, and converts the decimal back
    with correct rounding. Here the exact scaled value ``a * 10**n`` (``a / 10**-n``) is known
    as a float plus the sign of its rounding error (:func:`_scaled_exactly`), which decides
    the rounding exactly; scaling the integer back is correctly rounded, as Python's
    conversion is. Elements out of that method's reach (a scaled value past 2**52 or not
    finite, ``|ndigits| > 22``) are rounded by Python itself, one by one.
    """
    x, is_int = operand.values, operand.is_int
    scaled, error_sign = _scaled_exactly(x, ndigits)
    # Only a scaled value exactly halfway between integers can round the other way than the
    # exact one (which is within half an ulp of it): then the error's sign decides.
    halfway = np.abs(np.fmod(2 * scaled, 2.0)) == 1.0
    rounded = np.where(
        halfway & (error_sign != 0), np.floor(scaled) + (error_sign > 0), np.rint(scaled)
    )
    rounded = np.copysign(rounded, scaled)  # a negative float rounded to 0 is -0.0
    scale = 10.0 ** min(abs(ndigits), EXACT_POWERS_OF_TEN)
    values = rounded / scale if ndigits >= 0 else rounded * scale
    unchanged = is_int & (ndigits >= 0)
    values = np.where(unchanged, x, values)
    unclear = ~np.isfinite(scaled) | (np.abs(scaled) >= 2.0**52)
    if abs(ndigits) > EXACT_POWERS_OF_TEN:
        unclear = np.ones(x.shape, dtype=np.bool_)
    unclear &= ~unchanged & (operand.error == 0) & ~(is_int & ~np.isfinite(x))
    for i in np.flatnonzero(unclear).tolist():
        values[i] = float(round(int(x[i]) if is_int[i] else float(x[i]), ndigits))
    values = np.where(is_int, values + 0.0, values)
    return Value(values, is_int, operand.error)


def _scaled_exactly(x: Floats, ndigits: int) -> tuple[Floats, Floats]:
    """``t = fl(x * 10**n)`` (``fl(x / 10**-n)``) and the sign of ``exact - t``.

    Error-free transformations (Dekker's product with Veltkamp's split, no fused multiply-add
    needed): for ``n >= 0`` the product's rounding error is computed exactly; for ``n < 0``
    the sign of ``x - t * 10**-n`` is, from the exact product ``t * 10**-n`` (``x`` minus its
    leading part is exact, being a subtraction of close numbers). Only used where ``|t| <
    2**52``, where no intermediate overflows or underflows matters.
    """
    scale = 10.0 ** min(abs(ndigits), EXACT_POWERS_OF_TEN)
    if ndigits >= 0:
        scaled = x * scale
        return scaled, np.sign(_product_error(x, scale, scaled))
    scaled = x / scale
    leading = scaled * scale
    return scaled, np.sign((x - leading) - _product_error(scaled, scale, leading)) / scale


def _product_error(a: Floats, b: float, product: Floats) -> Floats:
    """``a * b - product`` exactly, for ``product = fl(a * b)`` (Dekker's TwoProduct)."""
    a_high, a_low = _split(a)
    b_high, b_low = _split(np.asarray(b))
    error: Floats = ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low
    return error


def _split(a: Floats) -> tuple[Floats, Floats]:
    """Veltkamp's split of ``a`` into two halves of 26 bits, ``high + low == a`` exactly."""
    c = 134217729.0 * a  # 2**27 + 1
    high = c - (c - a)
    return high, a - high


def float_function(
    function: FloatUfunc, operand: Value, invalid: Callable[[Floats, Floats], Flags], code: int
) -> Value:
    """A one-argument ``math`` function: a float; ``invalid(argument, result)`` says where
    Python raises (ValueError for a domain error, OverflowError for a finite argument whose
    result overflows)."""
    values = function(operand.values)
    error = _raise_where(operand.error, invalid(operand.values, values), code)
    return Value(values, np.zeros(values.shape, dtype=np.bool_), error)


def logarithm_base(operand: Value, base: Value, domain: int, base_one: int) -> Value:
    """``math.log(x, base)`` = ``log(x) / log(base)``: both must be positive (ValueError);
    base 1 divides by zero (ZeroDivisionError)."""
    error = _first(operand.error, base.error)
    error = _raise_where(error, operand.values <= 0, domain)
    error = _raise_where(error, base.values <= 0, domain)
    denominator = np.log(base.values)
    error = _raise_where(error, denominator == 0, base_one)
    values = np.log(operand.values) / denominator
    return Value(values, np.zeros(values.shape, dtype=np.bool_), error)
