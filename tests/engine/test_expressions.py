"""The expression compiler against Python itself.

The reference for every value and every error is Python evaluating the same lambda source on
Python ints, as PyTorch would call it. ``eval`` appears here, in the tests, only to build that
reference; the compiler under test never uses it.
"""

from __future__ import annotations

import ast
import math
import operator
import struct
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from service.engine import expressions
from service.engine.expressions import (
    CHUNK,
    Expression,
    ExpressionError,
    compile_expression,
)
from service.limits import MAX_DEPTH, MAX_LENGTH, MAX_NODES

FUNCTIONS = ("floor", "ceil", "sqrt", "exp", "log", "log2", "log10", "cos", "sin", "tan", "tanh")
NAMESPACE: dict[str, Any] = {
    "__builtins__": {},
    "math": math,
    "min": min,
    "max": max,
    "abs": abs,
    "pow": pow,
    "float": float,
    "int": int,
    "round": round,
    "pi": math.pi,
    "e": math.e,
    "inf": math.inf,
    **{name: getattr(math, name) for name in FUNCTIONS},
}
ARGUMENTS = np.arange(-50, 500, dtype=np.int64)
Floats = NDArray[np.float64]


class ComplexResultError(ArithmeticError):
    """Python returned a complex number: the compiler refuses those."""


class UnrepresentableError(Exception):
    """Python produced an int beyond 2**53, which float64 only approximates: not comparable."""


def python_lambda(source: str) -> Callable[[int], Any]:
    """The Python function PyTorch would call: the lambda itself, or one around a bare body."""
    tree = ast.parse(source.strip(), mode="eval").body
    text = source if isinstance(tree, ast.Lambda) else f"lambda epoch: {source}"
    function: Callable[[int], Any] = eval(text, dict(NAMESPACE))
    return function


def python_outcome(function: Callable[[int], Any], x: int) -> float | Exception:
    """What PyTorch gets: a float (ints converted as ``base_lr * value`` would), or the error."""
    try:
        result = function(x)
        if isinstance(result, complex):
            raise ComplexResultError(result)
        return float(result)
    except (ArithmeticError, ValueError) as exc:
        return exc


def assert_matches_python(source: str, arguments: Iterable[int] = ARGUMENTS) -> Expression:
    """Values equal Python's to 1e-12 and errors are reported exactly where Python raises."""
    x = np.asarray(list(arguments), dtype=np.int64)
    expression = compile_expression(source)
    function = python_lambda(source)
    outcomes = [python_outcome(function, int(value)) for value in x]
    raised = np.array([isinstance(outcome, Exception) for outcome in outcomes], dtype=bool)
    expected = np.array([np.nan if r else o for r, o in zip(raised, outcomes, strict=True)])
    evaluation = expression.evaluate(x)
    np.testing.assert_array_equal(evaluation.failed, raised, err_msg=source)
    np.testing.assert_allclose(evaluation.values, expected, rtol=1e-12, atol=0, err_msg=source)
    first = expression.domain_error(x)
    if raised.any():
        assert first is not None
        assert first[0] == x[np.argmax(raised)]
    else:
        assert first is None
    return expression


def rejection(source: str) -> str:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    return caught.value.message


# --- Python semantics, operator by operator ----------------------------------------------------

OPERATOR_SOURCES = [
    "epoch + 3",
    "epoch - 2.5",
    "epoch * 0.1",
    "-epoch",
    "+epoch",
    "- -epoch",
    "epoch / 7",
    "1 / epoch",
    "epoch / 0.5",
    "epoch // 7",
    "epoch // -7",
    "epoch // 2.5",
    "-epoch // 0.3",
    "100 // epoch",
    "epoch % 7",
    "epoch % -7",
    "epoch % 2.5",
    "-epoch % 0.3",
    "100 % epoch",
    "7.5 % epoch",
    "0.95 ** epoch",
    "2 ** epoch",
    "3 ** epoch",
    "epoch ** 2",
    "epoch ** -1",
    "epoch ** -2.5",
    "epoch ** 0.5",
    "(-2) ** epoch",
    "(-0.5) ** epoch",
    "epoch ** epoch",
    "1.1 ** (epoch * 20)",
    "10.0 ** epoch",
    "0.0 ** epoch",
    "0 ** epoch",
    "epoch ** 0",
    "epoch < 10",
    "epoch <= 10",
    "epoch > 10",
    "epoch >= 10",
    "epoch == 10",
    "epoch != 10",
    "0 < epoch < 10",
    "0 <= epoch < 100 <= epoch * 3",
    "(epoch > 3) * 0.5",
    "True * 0.5 + False",
    "1.0 if epoch < 30 else 0.1",
    "epoch and 1 / epoch",
    "epoch or 7",
    "epoch > 0 and 1 / epoch",
    "epoch == 0 or 1 / epoch",
    "epoch > 5 and epoch < 10 and epoch",
    "epoch < 5 or epoch > 10 or -epoch",
    "not epoch",
    "not epoch % 3",
    "1 / epoch if epoch > 0 else 1.0",
    "1 / epoch if epoch else (1 / (epoch - 1))",
    "(epoch if epoch % 2 else 0.5) ** 2",
]

FUNCTION_SOURCES = [
    "min(1.0, epoch / 100)",
    "max(0.0, 1 - epoch / 100)",
    "min(epoch, 10, 3 * epoch, 400 - epoch)",
    "max(epoch % 7, epoch % 5, 3)",
    "abs(epoch - 100)",
    "abs(-epoch * 0.5)",
    "floor(epoch / 7)",
    "ceil(epoch / 7)",
    "math.floor(epoch * 0.3) * 2",
    "math.ceil(-epoch * 0.3)",
    "sqrt(epoch)",
    "math.sqrt(epoch + 50)",
    "exp(epoch / 10)",
    "math.exp(epoch * 2)",
    "exp(-epoch)",
    "log(epoch)",
    "log(epoch, 2)",
    "log(epoch + 51, epoch + 51)",
    "math.log(epoch, 10)",
    "math.log(100, epoch)",
    "log2(epoch)",
    "log10(epoch)",
    "cos(pi * epoch / 50)",
    "math.sin(epoch)",
    "math.tan(epoch / 10)",
    "tanh(epoch / 100)",
    "pow(0.9, epoch)",
    "pow(epoch, 3)",
    "pow(epoch, -1)",
    "math.pow(epoch, 3)",
    "math.pow(epoch, 0.5)",
    "math.pow(epoch, -1)",
    "math.pow(1.5, epoch * 4)",
    "e ** (-epoch / 100)",
    "math.e * epoch",
    "math.pi + pi",
    "inf * epoch",
    "math.inf - epoch",
    "min(inf, epoch)",
    "epoch / inf",
    "epoch // inf",
    "epoch % inf",
    "cos(epoch * inf)",
    "floor(epoch * inf)",
    "floor(epoch / 0.0 if epoch < 0 else epoch)",
    "exp(epoch) * 0",
]


@pytest.mark.parametrize("source", OPERATOR_SOURCES)
def test_operator_matches_python(source: str) -> None:
    assert_matches_python(source)


@pytest.mark.parametrize("source", FUNCTION_SOURCES)
def test_function_and_constant_match_python(source: str) -> None:
    assert_matches_python(source)


PYTORCH_DOCS = [
    "lambda epoch: 0.95 ** epoch",
    "lambda epoch: epoch // 30",
    "lambda e: math.cos(math.pi * e / 50)",
    "lambda e: 1.0 if e < 30 else 0.1",
    "max(0.0, 1 - epoch / 100)",
    "lambda step: min(1.0, (step + 1) / 500) * 0.5 ** (step // 1000)",
]


@pytest.mark.parametrize("source", PYTORCH_DOCS)
def test_pytorch_docs_lambdas_match_python(source: str) -> None:
    assert_matches_python(source, range(0, 3000))


def test_pytorch_docs_lambdas_give_exact_values_at_boundaries() -> None:
    epochs = np.array([0, 1, 29, 30, 59, 60, 100, 999, 1000, 2000], dtype=np.int64)
    values = {source: compile_expression(source)(epochs) for source in PYTORCH_DOCS}
    assert values["lambda epoch: epoch // 30"].tolist() == [0, 0, 0, 1, 1, 2, 3, 33, 33, 66]
    assert values["lambda e: 1.0 if e < 30 else 0.1"].tolist() == [1.0] * 3 + [0.1] * 7
    # Bit-for-bit Python's floats (1 - 59 / 100 == 0.41000000000000003), clamped at 0.
    assert values["max(0.0, 1 - epoch / 100)"].tolist() == [
        *(1.0, 0.99, 1 - 29 / 100, 0.7, 1 - 59 / 100, 0.4),
        *(0.0, 0.0, 0.0, 0.0),
    ]
    np.testing.assert_allclose(
        values["lambda step: min(1.0, (step + 1) / 500) * 0.5 ** (step // 1000)"],
        [1 / 500, 2 / 500, 30 / 500, 31 / 500, 60 / 500, 61 / 500, 101 / 500, 1.0, 0.5, 0.25],
        rtol=1e-15,
    )
    np.testing.assert_allclose(
        values["lambda e: math.cos(math.pi * e / 50)"][[0, 6]], [1.0, 1.0], rtol=1e-15
    )
    np.testing.assert_allclose(values["lambda epoch: 0.95 ** epoch"][:2], [1.0, 0.95], rtol=0)


@pytest.mark.torch
def test_lambda_lr_in_pytorch_follows_the_compiled_expression() -> None:
    torch = pytest.importorskip("torch")
    source = "lambda step: min(1.0, (step + 1) / 50) * 0.5 ** (step // 100)"
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, python_lambda(source))
    lrs = []
    for _ in range(300):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = 0.1 * compile_expression(source)(np.arange(300, dtype=np.int64))
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_argument_may_have_any_name_and_shadows_the_constant_e() -> None:
    x = np.array([0, 1, 2], dtype=np.int64)
    assert compile_expression("lambda e: e * 2")(x).tolist() == [0.0, 2.0, 4.0]
    assert compile_expression("lambda step: e * step")(x).tolist() == [0.0, math.e, 2 * math.e]
    assert compile_expression("lambda e: math.e * e")(x).tolist() == [0.0, math.e, 2 * math.e]
    assert compile_expression("e * epoch")(x).tolist() == [0.0, math.e, 2 * math.e]
    assert compile_expression("lambda e, /: e + 1")(x).tolist() == [1.0, 2.0, 3.0]
    assert compile_expression("lambda cycle: 1 / 2.0 ** (cycle - 1)").argument == "cycle"
    assert compile_expression("0.5").argument == "epoch"


def test_int_results_beyond_float_range_are_errors_where_produced() -> None:
    x = np.array([1000, 1023, 1024, 1025], dtype=np.int64)
    expression = compile_expression("lambda e: 2 ** e")
    evaluation = expression.evaluate(x)
    assert evaluation.failed.tolist() == [False, False, True, True]
    assert evaluation.values[0] == 2.0**1000
    assert expression.domain_error(x) == (
        1024,
        "integer too large to convert to float in '2 ** e'",
    )
    # The float version overflows in Python too (OverflowError), with its own message.
    assert compile_expression("lambda e: 2.0 ** e").domain_error(x) == (
        1024,
        "result too large in '2.0 ** e'",
    )
    # Int products overflow; float products become inf without raising, as in Python.
    assert compile_expression("lambda e: 10 ** 300 * e ** 3").domain_error(x) == (
        1000,
        "integer too large to convert to float in '10 ** 300 * e ** 3'",
    )
    floats = compile_expression("lambda e: 1e300 * e ** 3").evaluate(x)
    assert floats.first_error is None
    assert floats.values.tolist() == [math.inf] * 4


# --- depends_on_argument -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "depends"),
    [
        ("lambda e: 0.95", False),
        ("lambda e: math.cos(math.pi / 3) * 2 ** 3", False),
        ("0.5 if True else 0.1", False),
        ("lambda e: e ** 0", True),
        ("lambda epoch: 0.95 ** epoch", True),
        ("max(0.0, 1 - epoch / 100)", True),
        ("lambda step: e", False),
        ("lambda e: e", True),
        ("lambda x: min(1, 2, x)", True),
        ("lambda x: 1 if x else 2", True),
    ],
)
def test_depends_on_argument_is_whether_the_argument_occurs(source: str, depends: bool) -> None:
    expression = compile_expression(source)
    assert expression.depends_on_argument is depends
    if not depends:
        values = expression(np.arange(5, dtype=np.int64))
        assert np.all(values == values[0])


# --- errors at evaluation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "first", "why"),
    [
        ("lambda e: 1 / (e - 3)", 3, "division by zero in '1 / (e - 3)'"),
        ("lambda e: 1 // (e - 3)", 3, "division by zero in '1 // (e - 3)'"),
        ("lambda e: 1 % (e - 3)", 3, "division by zero in '1 % (e - 3)'"),
        ("lambda e: 1.5 / (e * 0.0)", 0, "division by zero in '1.5 / (e * 0.0)'"),
        (
            "lambda e: (e - 4.0) ** -1",
            4,
            "0.0 cannot be raised to a negative power in '(e - 4.0) ** -1'",
        ),
        (
            "lambda e: (e - 5) ** 0.5",
            0,
            "negative number raised to a fractional power in '(e - 5) ** 0.5'",
        ),
        ("lambda e: 10.0 ** e", 309, "result too large in '10.0 ** e'"),
        ("lambda e: exp(e)", 710, "result too large in 'exp(e)'"),
        ("lambda e: math.pow(2, e)", 1024, "result too large in 'math.pow(2, e)'"),
        ("lambda e: log(e - 2)", 0, "logarithm of a number <= 0 in 'log(e - 2)'"),
        ("lambda e: log2(e)", 0, "logarithm of a number <= 0 in 'log2(e)'"),
        ("lambda e: log10(e)", 0, "logarithm of a number <= 0 in 'log10(e)'"),
        ("lambda e: log(2, e)", 0, "logarithm of a number <= 0 in 'log(2, e)'"),
        ("lambda e: log(2, e + 0)", 0, "logarithm of a number <= 0 in 'log(2, e + 0)'"),
        ("lambda e: log(5, e)", 0, "logarithm of a number <= 0 in 'log(5, e)'"),
        ("lambda e: sqrt(3 - e)", 4, "square root of a negative number in 'sqrt(3 - e)'"),
        ("lambda e: cos(e * inf)", 1, "cosine of infinity in 'cos(e * inf)'"),
        (
            "lambda e: floor(inf * (e - 2))",
            0,
            "cannot convert infinity or NaN to an integer in 'floor(inf * (e - 2))'",
        ),
        (
            "lambda e: 2 ** (e * 100)",
            11,
            "integer too large to convert to float in '2 ** (e * 100)'",
        ),
        # The node's source is quoted where it is: lines split as the parser splits them (not
        # at form feeds), columns counted in UTF-8 bytes, long quotes shortened.
        ("lambda e: (1 /\n (e - 3))", 3, "division by zero in '1 /\\n (e - 3)'"),
        ("lambda e: (1 /\r\n (e - 3))", 3, "division by zero in '1 /\\r\\n (e - 3)'"),
        ("lambda e: (1 /\f (e - 3))", 3, "division by zero in '1 /\\x0c (e - 3)'"),
        ("lambda e:\\\n 1/(e-3)", 3, "division by zero in '1/(e-3)'"),
        ("lambda époque: 1 / (époque - 3)", 3, "division by zero in '1 / (époque - 3)'"),
        ("lambda é: (é + 1) * 0 + log(é - 5)", 0, "logarithm of a number <= 0 in 'log(é - 5)'"),
        (
            "lambda e: (2 ** (e * 100) +\n  sqrt(e - 7))",
            0,
            "square root of a negative number in 'sqrt(e - 7)'",
        ),
        (
            "lambda e: 1 / (e - 3." + "0" * 80 + "1)",
            3,
            "division by zero in '1 / (e - 3." + "0" * 66 + "...'",
        ),
    ],
)
def test_domain_error_is_the_first_raising_argument_with_the_reason(
    source: str, first: int, why: str
) -> None:
    x = np.arange(0, 2000, dtype=np.int64)
    assert compile_expression(source).domain_error(x) == (first, why)
    assert_matches_python(source, range(0, 2000))


def test_log_base_one_divides_by_zero() -> None:
    expression = compile_expression("lambda e: log(8, e)")
    assert expression.domain_error(np.array([2, 1], dtype=np.int64)) == (
        1,
        "division by zero (logarithm base 1) in 'log(8, e)'",
    )


@pytest.mark.parametrize(
    "source",
    [
        "lambda e: 1 / e if e > 0 else 1.0",
        "lambda e: 1.0 if e == 0 else 1 / e",
        "lambda e: e > 0 and 1 / e",
        "lambda e: e == 0 or 1 / e",
        "lambda e: e > 0 and log(e) and 1 / log(e) or 7",
        "lambda e: 0 < e < 1 / e",
        "lambda e: e != 0 and 1 / e > 0.5 > 1 / e",
        "lambda e: min(1, 1 / e) if e else 0",
        "lambda e: sqrt(e) if e >= 0 else sqrt(-e)",
    ],
)
def test_errors_in_branches_python_skips_are_not_reported(source: str) -> None:
    x = np.arange(-5, 5, dtype=np.int64)
    assert compile_expression(source).domain_error(x) is None
    assert_matches_python(source, range(-50, 50))


def test_first_error_is_by_position_in_the_array_not_by_value() -> None:
    expression = compile_expression("lambda e: 1 / (e - 7) + log(e)")
    x = np.array([9, 7, 0, 3], dtype=np.int64)
    evaluation = expression.evaluate(x)
    assert evaluation.first_error == (1, "division by zero in '1 / (e - 7)'")
    assert evaluation.failed.tolist() == [False, True, True, False]
    assert np.isnan(evaluation.values[[1, 2]]).all()
    assert expression.domain_error(x) == (7, "division by zero in '1 / (e - 7)'")
    assert expression.domain_error(x[2:]) == (0, "logarithm of a number <= 0 in 'log(e)'")


def test_left_operand_error_wins_like_python_evaluation_order() -> None:
    expression = compile_expression("lambda e: log(e) + 1 / e")
    assert expression.domain_error(np.array([0], dtype=np.int64)) == (
        0,
        "logarithm of a number <= 0 in 'log(e)'",
    )


def test_non_finite_results_without_python_raising_are_not_errors() -> None:
    x = np.array([0, 1, 2], dtype=np.int64)
    for source in ["inf * epoch", "math.inf", "epoch * 1e300 * 1e300", "inf - inf * epoch"]:
        evaluation = compile_expression(source).evaluate(x)
        assert evaluation.first_error is None
        assert not np.isfinite(evaluation.values[1:]).any()


def test_evaluation_keeps_shape_and_accepts_any_integer_dtype() -> None:
    expression = compile_expression("lambda e: e / 2")
    grid = np.arange(6, dtype=np.int32).reshape(2, 3)
    values = expression(grid)
    assert values.dtype == np.float64
    assert values.shape == (2, 3)
    assert values.tolist() == [[0.0, 0.5, 1.0], [1.5, 2.0, 2.5]]
    assert expression(np.array([], dtype=np.int64)).shape == (0,)
    assert expression.domain_error(np.array([], dtype=np.int64)) is None
    assert compile_expression("lambda e: 0.5")(grid).shape == (2, 3)
    with pytest.raises(TypeError, match="integer array"):
        expression(np.array([0.5]))


def test_large_arguments_evaluate_without_per_element_python() -> None:
    expression = compile_expression(
        "lambda step: min(1.0, (step + 1) / 500) * 0.5 ** (step // 1000)"
    )
    x = np.arange(1_000_000, dtype=np.int64)
    values = expression(x)
    assert values[999_999] == 0.5**999
    assert values[499] == 1.0


def test_compilation_is_cached() -> None:
    source = "lambda e: 0.5 ** (e // 7)"
    assert compile_expression(source) is compile_expression(source)
    assert compile_expression(source) == compile_expression(source)


# --- working set: chunks, many operands, deep trees ----------------------------------------------


def numpy_min_max(operands: list[Floats], *, largest: bool) -> Floats:
    """Python's ``min``/``max`` element by element, the plain numpy way: keep the earlier value
    unless a later one compares strictly less (greater). Unlike ``np.minimum.reduce`` this keeps
    a NaN that comes first and skips a later one, and keeps the first of ``0.0`` and ``-0.0``."""
    best = operands[0]
    for other in operands[1:]:
        best = np.where(other > best if largest else other < best, other, best)
    return best


def many_operands(order: int, e: Floats) -> list[tuple[str, Floats]]:
    """About 40 operands in ``e`` with their values: NaN at some arguments (``inf - inf``, which
    Python does not raise on), signed zeros and plain multiples, shuffled by ``order``."""
    with np.errstate(invalid="ignore"):
        nan = np.subtract(np.inf, np.inf)  # the NaN the engine computes, bit for bit
        operands = [
            *((f"e*{k}", e * k) for k in range(-14, 16)),
            *(
                (f"(inf-inf if e%{m}<1 else e*{k})", np.where(np.mod(e, m) < 1, nan, e * k))
                for m, k in [(3, 2), (5, -1), (7, 0), (2, 0.5), (11, -3), (4, 0.0)]
            ),
            ("-0.0", np.full(e.shape, -0.0)),
            ("0.0*e", 0.0 * e),
            ("0", np.zeros(e.shape)),
        ]
    shuffled = [operands[i] for i in np.random.default_rng(order).permutation(len(operands))]
    if order % 2 == 0:  # a NaN first: it wins throughout min() and max()
        shuffled.sort(key=lambda operand: not operand[0].startswith("(inf-inf"))
    return shuffled


@pytest.mark.parametrize("order", range(4))
@pytest.mark.parametrize("function", ["min", "max"])
def test_min_and_max_of_many_operands_are_bit_identical_to_a_plain_numpy_fold(
    function: str, order: int
) -> None:
    x = np.arange(-1000, 2 * CHUNK + 1000, dtype=np.int64)  # three chunks
    operands = many_operands(order, x.astype(np.float64))
    source = f"lambda e: {function}({', '.join(source for source, _ in operands)})"
    values = compile_expression(source)(x)
    expected = numpy_min_max([value for _, value in operands], largest=function == "max")
    assert np.isnan(expected).any() == (order % 2 == 0)
    np.testing.assert_array_equal(values.view(np.uint64), expected.view(np.uint64), err_msg=source)
    # ... which is Python's min/max: NaN first wins, NaN later loses, 0.0 and -0.0 keep order.
    builtin = {"min": min, "max": max}[function]
    for index in range(0, x.size, 997):
        python = builtin(*(float(value[index]) for _, value in operands))
        assert struct.pack("<d", python) == struct.pack("<d", values[index]), (source, x[index])


def test_the_first_error_is_found_across_chunks_with_python_argument_order() -> None:
    x = np.arange(0, 3 * CHUNK + 5, dtype=np.int64)
    first, second = CHUNK + 1234, 3 * CHUNK + 2
    source = f"lambda e: min(e, 1 // (e - {first}), 1 / (e - {first}), 1 / (e - {second}), -e)"
    expression = compile_expression(source)
    evaluation = expression.evaluate(x)
    assert evaluation.failed.nonzero()[0].tolist() == [first, second]
    assert np.isnan(evaluation.values[[first, second]]).all()
    assert evaluation.first_error == (first, f"division by zero in '1 // (e - {first})'")
    assert expression.domain_error(x[first + 1 :]) == (
        second,
        f"division by zero in '1 / (e - {second})'",
    )


@pytest.mark.parametrize(
    "source",
    [
        *FUNCTION_SOURCES,
        *PYTORCH_DOCS,
        "lambda e: 1 / (e - 40000) + log(e - 7) if e % 3 else sqrt(e - 70000)",
        "lambda e: 0 < e % 1000 < 1 / (e - 50000) < 7 < e ** 0.5",
    ],
)
def test_values_and_errors_do_not_depend_on_how_the_arguments_are_chunked(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.arange(-500, 2 * CHUNK + 500, dtype=np.int64)
    whole = compile_expression(source).evaluate(x)
    monkeypatch.setattr(expressions, "CHUNK", 999)
    pieces = compile_expression(source).evaluate(x)
    np.testing.assert_array_equal(pieces.values.view(np.uint64), whole.values.view(np.uint64))
    np.testing.assert_array_equal(pieces.failed, whole.failed)
    assert pieces.first_error == whole.first_error


def peak_bytes(expression: Expression, x: NDArray[np.int64]) -> int:
    """Peak memory traced while evaluating ``expression`` at ``x``."""
    tracemalloc.start()
    try:
        expression.evaluate(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_a_wide_min_evaluates_in_a_few_arrays_of_the_results_size() -> None:
    """One operand at a time is folded into the result: 66 operands used to be 66 temporaries
    (about 90 float64 arrays of the result's size with their int flags and error codes)."""
    x = np.arange(4 * CHUNK, dtype=np.int64)
    expression = compile_expression("min(" + ", ".join(f"epoch*{i}" for i in range(66)) + ")")
    float64_array = 8 * x.size
    assert peak_bytes(expression, x) < 8 * float64_array


def _nested_conditionals(levels: int) -> str:
    source = "-e"
    for _ in range(levels):
        source = f"-e if -e else {source}"
    return f"lambda e: {source}"


DEEP_AND_WIDE = {
    # each conditional keeps its test's and its body's value while the next one runs
    "nested conditionals": _nested_conditionals(MAX_DEPTH - 3),
    "nested sums": "lambda e: " + "e * 1.5 + (" * 29 + "e" + ")" * 29,
    "nested min and max": "lambda e: " + "min(e * 1.5, max(e * 2.5, " * 10 + "e" + "))" * 10,
    "widest min": "lambda e: min(" + ", ".join(["e"] * (MAX_NODES - 3)) + ")",
    "longest comparison": "lambda e: " + " < ".join(["-e"] * 66),
    "costliest to compile": "min(" + ",".join(f"epoch**{i % 9}.0000" for i in range(1, 65)) + ",0)",
}


@pytest.mark.parametrize("source", DEEP_AND_WIDE.values(), ids=DEEP_AND_WIDE.keys())
def test_deep_and_wide_expressions_evaluate_within_the_documented_bound(source: str) -> None:
    """API.md bounds memory; the service allows 32 float64 arrays of the output's size. The
    evaluation's working set is at most about 2 * MAX_DEPTH + 6 intermediate results of CHUNK
    elements (11 bytes each): 8 chunks' worth of arguments must stay well within that."""
    x = np.arange(8 * CHUNK, dtype=np.int64)
    float64_array = 8 * x.size
    assert peak_bytes(compile_expression(source), x) < 32 * float64_array


# --- rejected sources ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os').system('ls')", "dunder names are not allowed: '__import__'"),
        (
            "().__class__.__bases__[0].__subclasses__()",
            "attribute access is not allowed: '().__class__.__bases__[0].__subclasses__'",
        ),
        ("epoch.__class__", "attribute access is not allowed: 'epoch.__class__'"),
        ("math.__dict__", "attribute access is not allowed: 'math.__dict__'"),
        ("math.tau", "attribute access is not allowed: 'math.tau'"),
        ("math.cos.__call__(1)", "attribute access is not allowed: 'math.cos.__call__'"),
        ("lambda math: math.cos(1)", "attribute access is not allowed: 'math.cos'"),
        ("math.fabs(epoch)", "math.fabs is not one of the allowed functions: 'math.fabs(epoch)'"),
        ("import os", "statements are not allowed: 'import os'"),
        ("a = 1", "statements are not allowed: 'a = 1'"),
        ("1; 2", "expected one expression, got 2 statements"),
        ("lambda: 1", "a lambda must take one argument, not 0: 'lambda: 1'"),
        ("lambda a, b: a", "a lambda must take one argument, not 2: 'lambda a, b: a'"),
        ("lambda x=1: x", "argument defaults are not allowed: 'lambda x=1: x'"),
        ("lambda *a: 1", "*args, **kwargs and keyword-only arguments are not allowed"),
        ("lambda **k: 1", "*args, **kwargs and keyword-only arguments are not allowed"),
        ("lambda e, *, k: 1", "*args, **kwargs and keyword-only arguments are not allowed"),
        ("lambda __x: 1", "dunder names are not allowed: '__x'"),
        ("[e for e in range(10)]", "comprehensions are not allowed: '[e for e in range(10)]'"),
        ("(e for e in x)", "generator expressions are not allowed"),
        ("'a' * 10", "strings are not allowed: \"'a'\""),
        ("f'{epoch}'", "f-strings are not allowed: \"f'{epoch}'\""),
        ("b'x' * epoch", "bytes are not allowed: \"b'x'\""),
        ("open('/etc/passwd')", "unknown function 'open': \"open('/etc/passwd')\""),
        ("getattr(math, 'cos')", "unknown function 'getattr': \"getattr(math, 'cos')\""),
        ("(lambda x: x)(1)", "only the allowed functions may be called: '(lambda x: x)(1)'"),
        ("lambda e: (lambda x: x)", "a lambda inside the expression is not allowed: 'lambda x: x'"),
        ("e := 1", "invalid syntax at ':= 1'"),
        ("(epoch := 1)", "assignment expressions (:=) are not allowed: 'epoch := 1'"),
        ("x", "unknown name 'x'; the argument is 'epoch': 'x'"),
        ("lambda step: epoch", "unknown name 'epoch'; the argument is 'step': 'epoch'"),
        ("1j * epoch", "complex numbers are not allowed: '1j'"),
        ("None", "None is not allowed: 'None'"),
        ("epoch[0]", "subscripts are not allowed: 'epoch[0]'"),
        ("[epoch, 1]", "lists are not allowed: '[epoch, 1]'"),
        ("(epoch, 1)", "tuples are not allowed: '(epoch, 1)'"),
        ("{epoch: 1}", "dicts are not allowed: '{epoch: 1}'"),
        ("{epoch}", "sets are not allowed: '{epoch}'"),
        ("min(epoch, key=abs)", "keyword arguments are not allowed: 'key=abs'"),
        ("max(*[epoch, 1])", "starred arguments are not allowed: '*[epoch, 1]'"),
        ("min(epoch)", "min() takes 2 to 200 arguments, not 1: 'min(epoch)'"),
        ("pow(epoch, 2, 5)", "pow() takes 2 arguments, not 3: 'pow(epoch, 2, 5)'"),
        ("log(epoch, 2, 3)", "log() takes 1 to 2 arguments, not 3: 'log(epoch, 2, 3)'"),
        ("abs()", "abs() takes 1 arguments, not 0: 'abs()'"),
        ("min", "the function 'min' must be called: 'min'"),
        ("math.cos", "the function 'math.cos' must be called: 'math.cos'"),
        ("math", "'math' may only be used as math.<name>: 'math'"),
        ("lambda min: min(1, 2)", "unknown function 'min': 'min(1, 2)'"),
        ("~epoch", "the operator '~' is not allowed: '~epoch'"),
        ("epoch @ 2", "the operator '@' is not allowed: 'epoch @ 2'"),
        ("epoch << 2", "the operator '<<' is not allowed: 'epoch << 2'"),
        ("epoch | 2", "the operator '|' is not allowed: 'epoch | 2'"),
        ("epoch in 3", "the operator 'in' is not allowed: 'epoch in 3'"),
        ("epoch is not 3", "the operator 'is not' is not allowed: 'epoch is not 3'"),
        ("epoch +", "invalid syntax at"),
        ("9 ** 9 ** 9", "exponent 3.8742e+08 exceeds the limit of 1024: '9 ** 9 ** 9'"),
        ("pow(2, 1025)", "exponent 1025 exceeds the limit of 1024: 'pow(2, 1025)'"),
        ("math.pow(epoch, -2000)", "exponent -2000 exceeds the limit of 1024"),
        ("1e400", "numbers must be at most 1e+300 in magnitude: '1e400'"),
        ("epoch * 2e300", "numbers must be at most 1e+300 in magnitude: '2e300'"),
        ("1" + "0" * 301, "numbers must be at most 1e+300 in magnitude"),
    ],
)
def test_rejected_source_names_the_offending_part(source: str, message: str) -> None:
    assert message in rejection(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("lambda e: (e +\n\n 'é')", "strings are not allowed: \"'é'\""),
        ("lambda é: é.real", "attribute access is not allowed: 'é.real'"),
        ("lambda e: (e,\r\n e)", "tuples are not allowed: '(e,\\r\\n e)'"),
    ],
)
def test_a_rejected_node_is_quoted_wherever_it_is(source: str, message: str) -> None:
    assert rejection(source) == message


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert "characters long" in rejection("(" * 5000 + "1" + ")" * 5000)
    assert "nests 400 brackets deep" in rejection("(" * 400 + "1" + ")" * 400)
    assert "nodes; the limit is 200" in rejection("-" * 999 + "1")
    # lambda, 40 unary minuses, the argument
    assert "nests 42 deep" in rejection("lambda e: " + "-" * 40 + "e")


def test_limits_are_inclusive() -> None:
    assert compile_expression("1" + " " * (MAX_LENGTH - 1))
    assert "1001 characters long; the limit is 1000" in rejection("1" + " " * MAX_LENGTH)
    assert "2000 characters long" in rejection("1" * 2000)
    # min(1, 1, ...): the call, the name min and the arguments.
    assert compile_expression("min(" + ", ".join(["1"] * (MAX_NODES - 2)) + ")")
    assert "201 nodes" in rejection("min(" + ", ".join(["1"] * (MAX_NODES - 1)) + ")")
    assert "601 nodes; the limit is 200" in rejection("1+" * 300 + "1")
    nested = "(" * MAX_DEPTH + "epoch" + ")" * MAX_DEPTH
    assert compile_expression(nested)
    assert "nests 33 brackets deep; the nesting limit is 32" in rejection("(" + nested + ")")
    assert compile_expression("-" * (MAX_DEPTH - 1) + "epoch")
    assert "nests 33 deep; the nesting limit is 32" in rejection("-" * MAX_DEPTH + "epoch")
    assert compile_expression("1e300 + -1e300 + 10 ** 300")
    assert compile_expression("lambda e: 2 ** -1024 + e ** 1024")
    assert compile_expression("lambda e: 0.5 ** (1000 + 24)")
    assert "exponent 1025" in rejection("lambda e: 0.5 ** (1000 + 25)")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x.y + " + "+".join(["1"] * 200), "expression has 402 nodes; the limit is 200"),
        ("-" * 40 + "x.y", "expression nests 42 deep; the nesting limit is 32"),
        ("lambda __e: " + "+".join(["e"] * 200), "expression has 400 nodes; the limit is 200"),
        ("lambda a, b: " + "-" * 40 + "a", "expression nests 42 deep; the nesting limit is 32"),
        ("x + __y + " + "-" * 40 + "1", "dunder names are not allowed: '__y'"),
        ("math.floor(" * 31 + "epoch" + ")" * 31, "expression nests 33 deep"),
        ("min(" + "math.pi, " * 99 + "1)", "expression has 201 nodes; the limit is 200"),
        ("lambda e: min(" + "e, " * 197 + "e)", "expression has 201 nodes; the limit is 200"),
    ],
)
def test_the_size_of_a_tree_is_reported_before_anything_in_it(source: str, message: str) -> None:
    """As if the whole tree were measured before compiling it: the size limits and dunder names
    come first, and ``math.<name>`` counts as two nodes, one level below its call."""
    assert message in rejection(source)


def test_math_names_count_towards_the_limits() -> None:
    assert compile_expression("math.floor(" * 30 + "epoch" + ")" * 30)
    assert compile_expression("min(" + "math.pi, " * 98 + "1)")
    assert compile_expression("lambda e: min(" + "e, " * 196 + "e)")


def test_the_compiler_never_uses_eval_exec_or_compile() -> None:
    engine = Path(__file__).parents[2] / "service" / "engine"
    for path in [engine / "expressions.py", *engine.glob("_expression_*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, path


# --- property: random expressions agree with Python ----------------------------------------------


class _Check(ast.NodeTransformer):
    """Python's evaluation, made comparable bit for bit with float64 and numpy.

    Every operation's result passes through ``check``: an int beyond 2**53 (float64 rounds it;
    beyond 1.8e308 the compiler refuses it where Python would carry it on) raises
    UnrepresentableError, and such arguments are left out of the comparison; a complex result
    raises ComplexResultError, which counts as raising. ``**`` and ``pow`` go through ``power``,
    which guards int powers before Python builds astronomically large ints.

    Elementary float functions (``cos``, ``exp``, float ``**``, ...) keep Python's types and
    exceptions but take their value from numpy: libm and numpy may differ in the last bit, and
    ``cos(step ** 2.5)`` turns that into 1e-10. Those last bits are covered by the parametrized
    tests against plain Python; this property checks the compiler's own work: operators,
    types, conditionals and exactly where Python raises.
    """

    def wrap(self, node: ast.expr, function: str, *args: ast.expr) -> ast.expr:
        call = ast.Call(ast.Name(function, ast.Load()), [*args] or [node], [])
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            return self.wrap(node, "power", node.left, node.right)
        return self.wrap(node, "check")

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        return self.wrap(node, "check")

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "pow":
            return self.wrap(node, "power", *node.args)
        return self.wrap(node, "check")


def _check(value: Any) -> Any:
    if isinstance(value, complex):
        raise ComplexResultError(value)
    if isinstance(value, int) and abs(value) > 2**53:
        raise UnrepresentableError(value)
    return value


def _numpy_valued(python: Callable[..., Any], numpy: Callable[..., Any]) -> Callable[..., Any]:
    """Python's function for types and exceptions, numpy's for the float it returns."""

    def function(*args: Any) -> Any:
        result = _check(python(*args))
        if isinstance(result, float):
            with np.errstate(all="ignore"):
                return float(numpy(*(np.array([float(a)]) for a in args))[0])
        return result

    return function


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 60:
        raise UnrepresentableError(f"{base} ** {exponent}")
    return _numpy_valued(operator.pow, np.power)(base, exponent)


_NUMPY_VALUED = {
    name: _numpy_valued(getattr(math, name), getattr(np, name))
    for name in ("sqrt", "exp", "log2", "log10", "cos", "sin", "tan", "tanh")
}
_NUMPY_VALUED["log"] = _numpy_valued(
    math.log, lambda x, b=None: np.log(x) / np.log(b) if b is not None else np.log(x)
)
_NUMPY_VALUED["pow"] = _numpy_valued(math.pow, np.power)
CHECKED_NAMESPACE: dict[str, Any] = {
    **NAMESPACE,
    **_NUMPY_VALUED,
    "math": SimpleNamespace(**{**vars(math), **_NUMPY_VALUED}),
    "pow": pow,
    "check": _check,
    "power": _power,
}


def checked_python_lambda(source: str) -> Callable[[int], Any]:
    tree = _Check().visit(ast.parse(source, mode="eval"))
    code = compile(ast.fix_missing_locations(tree), "<reference>", "eval")
    function: Callable[[int], Any] = eval(code, dict(CHECKED_NAMESPACE))
    return function


LEAVES = ["step", "step", "step", "0", "1", "2", "3", "7", "True", "False"]
LEAVES += ["0.0", "0.5", "2.5", "1e-3", "100.0", "1e300", "pi", "e", "math.e", "inf"]
BINARY = ["+", "-", "*", "/", "//", "%", "**"]
COMPARISONS = ["<", "<=", ">", ">=", "==", "!="]
ONE_ARGUMENT = [*FUNCTIONS, "abs", "float", "int", "round", *(f"math.{name}" for name in FUNCTIONS)]
TWO_ARGUMENTS = ["pow", "math.pow", "log", "math.log"]


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.tuples(children, children)
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({' '.join(t)})"),
        st.tuples(st.sampled_from(["-", "+", "not "]), children).map(lambda t: f"({''.join(t)})"),
        st.tuples(
            children,
            st.lists(st.tuples(st.sampled_from(COMPARISONS), children), min_size=1, max_size=2),
        ).map(lambda t: "(" + t[0] + "".join(f" {op} {right}" for op, right in t[1]) + ")"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(children, st.sampled_from(["and", "or"]), children).map(
            lambda t: f"({' '.join(t)})"
        ),
        st.tuples(st.sampled_from(ONE_ARGUMENT), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(TWO_ARGUMENTS), pairs).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(children, min_size=2, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
    )


EXPRESSIONS = st.recursive(st.sampled_from(LEAVES), _grow, max_leaves=10)
PROPERTY_ARGUMENTS = np.arange(-40, 400, dtype=np.int64)


# derandomize: numpy's and libm's transcendental functions may differ in the last bit, and a
# crafted expression can turn that into a different floor(); fixed examples keep CI stable.
@settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(body=EXPRESSIONS)
def test_random_expressions_agree_with_python(body: str) -> None:
    source = f"lambda step: {body}"
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        assert "limit" in exc.message, exc.message
        reject()
    function = checked_python_lambda(source)
    comparable, raised, expected = [], [], []
    for value in PROPERTY_ARGUMENTS.tolist():
        try:
            outcome = python_outcome(function, value)
        except UnrepresentableError:
            comparable.append(False)
            raised.append(False)
            expected.append(np.nan)
            continue
        comparable.append(True)
        raised.append(isinstance(outcome, Exception))
        expected.append(np.nan if isinstance(outcome, Exception) else outcome)
    keep = np.array(comparable)
    evaluation = expression.evaluate(PROPERTY_ARGUMENTS)
    np.testing.assert_array_equal(evaluation.failed[keep], np.array(raised)[keep], err_msg=source)
    np.testing.assert_allclose(
        evaluation.values[keep], np.array(expected)[keep], rtol=1e-12, atol=0, err_msg=source
    )
    if keep.all():
        first = expression.domain_error(PROPERTY_ARGUMENTS)
        if any(raised):
            assert first is not None and first[0] == PROPERTY_ARGUMENTS[raised.index(True)]
        else:
            assert first is None
