"""The steps a compiled expression is made of (private to ``service.engine.expressions``).

A :data:`Program` is a tree of steps: each accepted node of the expression becomes one of the
functions below with everything but the argument array ``x`` bound by functools.partial,
evaluating its operands' programs and then one operation of ``_expression_ops``. The tables
say which numpy operation each operator and function of the language is, and where Python
raises for it.

Cost of a program: each operation it performs per evaluation is charged a *work* per argument
and a number of *call floors* (see :data:`CALL_FLOOR` and :data:`SLOW`), summed while compiling;
``Expression.cost`` turns them into the estimate the service refuses costly requests by.

Working set of a program (``_expression_ops`` allocates each result anew): a node's operands are
evaluated one after another, and while one is evaluated only its earlier siblings' results are
alive (for ``a if c else b`` two of them; for ``min``/``max`` and comparison chains, of any
length, one accumulated result). So at any moment at most about two results per node on the
path from the root are alive, plus a few temporaries of the operation under way: with paths at
most MAX_DEPTH nodes long, at most about 2 * MAX_DEPTH + 6 results of the argument array's size,
each 11 bytes an element (float64 values, bool int flags, int16 error codes), whatever the
expression. ``Expression.evaluate`` bounds the argument array's size on top of that.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator

import numpy as np

from service.engine import _expression_ops as ops

Program = Callable[[ops.Floats], ops.Value]

CALL_FLOOR = 4096
"""What one operation costs per evaluation whatever the number of arguments, in arguments'
worth of its work: numpy's per-call overhead. Measured here (2 vCPUs, numpy 2.4): a numpy ufunc
costs about 0.6 us a call plus 0.2-0.7 ns an element, so a call is worth about 1,000-3,000
elements; an operation of a program (its values, int flags and error codes: 3-5 numpy calls)
costs 4-8 us a call plus about 2 ns an argument, so a call is worth about 3,600 arguments."""

SLOW: dict[str, tuple[int, int]] = {
    "pow": (80, 3),
    "modulo": (480, 2),
    "modulo by a constant": (16, 2),
    "sin": (36, 1),
    "cos": (36, 1),
    "exp": (40, 1),
    "tan": (4, 1),
    "log": (4, 1),
    "log2": (4, 1),
    "log10": (4, 1),
    "log with a base": (10, 2),
    "round to digits": (900, 6),
}
"""Work per argument and call floors of the operations that cost more than one unit and one
floor (every other operation, literals and the argument included), measured at their worst
here in units of about 2 ns: ``**`` 150 ns (``0.95 ** 20000``: a subnormal result), ``%`` and
``//`` 900 ns (``1e308 % 1e-300``: a remainder over 2,000 bits of exponent) but 25 ns for the
argument by a constant of magnitude 1 or more (``epoch // 30``: at most 50 bits), ``sin`` and
``cos`` 65 ns (huge arguments need an exact reduction), ``exp`` 75 ns (subnormal results),
``tan`` and logarithms 5-8 ns; ``**`` costs 22 us a call, ``%``, ``//`` and ``log(x, b)`` 14 us.
``round(x, ndigits)`` is charged at its worst, every element rounded by Python itself (1.7 us
here: scaled values past 2**52, or ``|ndigits| > 22``), and 6 floors for its dozen numpy calls;
ordinary arguments take 20-30 ns."""


def _never(argument: ops.Floats, result: ops.Floats) -> ops.Flags:
    return np.zeros(argument.shape, dtype=np.bool_)


# name -> (numpy function, where Python raises given argument and result, why; "" if never)
FLOAT_FUNCTIONS: dict[
    str, tuple[ops.FloatUfunc, Callable[[ops.Floats, ops.Floats], ops.Flags], str]
]
FLOAT_FUNCTIONS = {
    "sqrt": (np.sqrt, lambda x, r: x < 0, "square root of a negative number"),
    "exp": (np.exp, lambda x, r: np.isfinite(x) & np.isinf(r), "result too large"),
    "log": (np.log, lambda x, r: x <= 0, "logarithm of a number <= 0"),
    "log2": (np.log2, lambda x, r: x <= 0, "logarithm of a number <= 0"),
    "log10": (np.log10, lambda x, r: x <= 0, "logarithm of a number <= 0"),
    "cos": (np.cos, lambda x, r: np.isinf(x), "cosine of infinity"),
    "sin": (np.sin, lambda x, r: np.isinf(x), "sine of infinity"),
    "tan": (np.tan, lambda x, r: np.isinf(x), "tangent of infinity"),
    "tanh": (np.tanh, _never, ""),
}
ARITHMETIC: dict[type[ast.operator], Callable[[ops.Floats, ops.Floats], ops.Floats]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
}
DIVISIONS = {ast.Div: ops.true_divide, ast.FloorDiv: ops.floor_divide, ast.Mod: ops.modulo}
COMPARISONS: dict[type[ast.cmpop], ops.Comparison] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
TO_INT: dict[str, ops.FloatUfunc] = {
    "floor": np.floor,
    "ceil": np.ceil,
    "int": np.trunc,
    "round": np.rint,
}
"""The functions that turn a number into an int, and how (``np.rint``: half to even)."""


# Each node's program is one of the steps below with everything but ``x`` bound by
# functools.partial. A partial is two objects, where a closure is a function, its closure tuple
# and a cell per variable: compiling allocates less, and the collector has less to walk.


def constant(number: float, is_int: bool, x: ops.Floats) -> ops.Value:
    return ops.constant(x.shape, number, is_int)


def unary(
    operation: Callable[[ops.Value], ops.Value], operand: Program, x: ops.Floats
) -> ops.Value:
    return operation(operand(x))


def binary(
    operation: Callable[[ops.Value, ops.Value], ops.Value],
    left: Program,
    right: Program,
    x: ops.Floats,
) -> ops.Value:
    return operation(left(x), right(x))


def arithmetic(
    function: Callable[[ops.Floats, ops.Floats], ops.Floats],
    too_large: int,
    left: Program,
    right: Program,
    x: ops.Floats,
) -> ops.Value:
    return ops.arithmetic(function, left(x), right(x), too_large)


def division(
    divide: Callable[[ops.Value, ops.Value, int], ops.Value],
    by_zero: int,
    left: Program,
    right: Program,
    x: ops.Floats,
) -> ops.Value:
    return divide(left(x), right(x), by_zero)


def power(
    codes: ops.PowerErrors, always_float: bool, base: Program, exponent: Program, x: ops.Floats
) -> ops.Value:
    return ops.power(base(x), exponent(x), codes, always_float=always_float)


def compare_chain(
    comparisons: list[ops.Comparison], operands: list[Program], x: ops.Floats
) -> ops.Value:
    return ops.compare_chain(_one_by_one(operands, x), comparisons)


def if_else(test: Program, body: Program, orelse: Program, x: ops.Floats) -> ops.Value:
    return ops.if_else(test(x), body(x), orelse(x))


def extremum(largest: bool, operands: list[Program], x: ops.Floats) -> ops.Value:
    return ops.extremum(_one_by_one(operands, x), largest=largest)


def round_to_int(
    rounding: ops.FloatUfunc, not_finite: int, operand: Program, x: ops.Floats
) -> ops.Value:
    return ops.round_to_int(operand(x), rounding, not_finite)


def round_digits(ndigits: int, operand: Program, x: ops.Floats) -> ops.Value:
    return ops.round_digits(operand(x), ndigits)


def logarithm_base(
    domain: int, base_one: int, operand: Program, base: Program, x: ops.Floats
) -> ops.Value:
    return ops.logarithm_base(operand(x), base(x), domain, base_one)


def float_function(
    function: ops.FloatUfunc,
    invalid: Callable[[ops.Floats, ops.Floats], ops.Flags],
    code: int,
    operand: Program,
    x: ops.Floats,
) -> ops.Value:
    return ops.float_function(function, operand(x), invalid, code)


def _one_by_one(programs: list[Program], x: ops.Floats) -> Iterator[ops.Value]:
    """The programs' values at ``x``, each computed only when the previous one is consumed."""
    return (program(x) for program in programs)
