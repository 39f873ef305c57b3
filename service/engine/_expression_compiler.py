"""From a parsed Python AST to a vectorized program (private to ``service.engine.expressions``).

The compiler walks the tree once, accepting only the language of API.md ("Expressions"); anything
else raises :class:`Rejected` with a message that quotes the offending source. Each accepted node
becomes a step over numpy operations from ``_expression_ops``, its operands' programs bound to it;
each way a node can raise at evaluation time gets an entry in the :class:`Reasons` table, whose
1-based index is its error code.

Compiling is on the request path (during body validation, up to 1,024 expressions a request),
so it does only what an accepted expression needs: the size limits are counted along the walk,
and the reasons keep only where their node is; its source is quoted once a message is asked for.

Cost of a program: each operation it performs per evaluation is charged a *work* per argument
and a number of *call floors* (see :data:`CALL_FLOOR` and :data:`_SLOW`), summed while compiling;
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
import math
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from service.engine import _expression_ops as ops
from service.limits import (
    MAX_ARGUMENTS,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_LITERAL,
    MAX_NDIGITS,
    MAX_NODES,
)

Program = Callable[[ops.Floats], ops.Value]

CALL_FLOOR = 4096
"""What one operation costs per evaluation whatever the number of arguments, in arguments'
worth of its work: numpy's per-call overhead. Measured here (2 vCPUs, numpy 2.4): a numpy ufunc
costs about 0.6 us a call plus 0.2-0.7 ns an element, so a call is worth about 1,000-3,000
elements; an operation of a program (its values, int flags and error codes: 3-5 numpy calls)
costs 4-8 us a call plus about 2 ns an argument, so a call is worth about 3,600 arguments."""

_SLOW: dict[str, tuple[int, int]] = {
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

Span = tuple[int, int, int | None, int | None]
"""Where a node's source is, as ``ast`` gives it: its first and last line (1-based) and its
start and end column on them, in UTF-8 bytes; the end is None for nodes without one."""


class Rejected(Exception):
    """The source is outside the language; ``message`` says where and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def span(node: ast.expr | ast.stmt | ast.keyword) -> Span:
    """Where ``node`` is in the source."""
    return (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)


def quote(text: str, where: ast.expr | ast.stmt | ast.keyword | Span | None = None) -> str:
    """``repr`` of the source at ``where`` (a node or its span; all of ``text`` if None),
    shortened to stay readable."""
    if isinstance(where, ast.AST):
        where = span(where)
    segment = (_source_segment(text, where) if where is not None else None) or text
    if len(segment) > 80:
        segment = segment[:77] + "..."
    return repr(segment)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
"""A line with its line break, split where the parser splits lines (\\f does not split)."""


def _source_segment(text: str, where: Span) -> str | None:
    """What :func:`ast.get_source_segment` gives for a node at ``where``."""
    lineno, col_offset, end_lineno, end_col_offset = where
    if end_lineno is None or end_col_offset is None:
        return None
    found: list[str] = _LINE.findall(text)
    lines = [line.encode() for line in found[lineno - 1 : end_lineno]]
    if len(lines) == 1:
        return lines[0][col_offset:end_col_offset].decode()
    return (lines[0][col_offset:] + b"".join(lines[1:-1]) + lines[-1][:end_col_offset]).decode()


@dataclass(frozen=True, slots=True)
class Reasons:
    """The table of error codes: why a program's element raises, quoting where in ``text``.

    Messages are made when asked for (rarely: an evaluation that fails), not when compiling:
    quoting each node's source would cost more than all the rest of compiling.
    """

    text: str
    whys: tuple[str, ...]
    spans: tuple[Span, ...]

    def __getitem__(self, code: int) -> str:
        """The message for error code ``code`` (1-based), e.g. "division by zero in '1 / e'"."""
        return f"{self.whys[code - 1]} in {quote(self.text, self.spans[code - 1])}"


_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "inf": math.inf}
_MATH_FUNCTIONS = frozenset(
    {"floor", "ceil", "sqrt", "exp", "log", "log2", "log10", "cos", "sin", "tan", "tanh", "pow"}
)
_BUILTIN_FUNCTIONS = frozenset({"min", "max", "abs", "pow", "float", "int", "round"})
_BARE_FUNCTIONS = _MATH_FUNCTIONS | _BUILTIN_FUNCTIONS
_ARITIES: dict[str, tuple[int, int]] = {"min": (2, MAX_ARGUMENTS), "max": (2, MAX_ARGUMENTS)}
_ARITIES |= {"log": (1, 2), "pow": (2, 2), "round": (1, 2)}


def _never(argument: ops.Floats, result: ops.Floats) -> ops.Flags:
    return np.zeros(argument.shape, dtype=np.bool_)


# name -> (numpy function, where Python raises given argument and result, why; "" if never)
_FLOAT_FUNCTIONS: dict[
    str, tuple[ops.FloatUfunc, Callable[[ops.Floats, ops.Floats], ops.Flags], str]
]
_FLOAT_FUNCTIONS = {
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
_ARITHMETIC: dict[type[ast.operator], Callable[[ops.Floats, ops.Floats], ops.Floats]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
}
_DIVISIONS = {ast.Div: ops.true_divide, ast.FloorDiv: ops.floor_divide, ast.Mod: ops.modulo}
_COMPARISONS: dict[type[ast.cmpop], ops.Comparison] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FORBIDDEN: dict[type[ast.AST], str] = {
    ast.Lambda: "a lambda inside the expression is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


TOO_LARGE = "expression exceeds the size limits"
"""Why :class:`Compiler` stops at a limit; callers check the whole tree for a precise message."""


class Compiler:
    """Turns a parsed expression into a :data:`Program`, collecting the :class:`Reasons` it may
    need.

    It counts the expression nodes it meets and how deep they nest (``enclosing``: nodes around
    the one compiled, 1 for a lambda's body), and stops with ``Rejected(TOO_LARGE)`` beyond
    MAX_NODES or MAX_DEPTH: its recursion stays shallow whatever the tree, and an accepted tree
    is within the limits. Rejected trees are not walked to the end, so the counts cannot say by
    how much: callers re-check those whole, and that check's message comes first.
    """

    def __init__(self, text: str, argument: str, enclosing: int = 0) -> None:
        self.text = text
        self.argument = argument
        self.whys: list[str] = []
        self.spans: list[Span] = []
        self.nodes = self.depth = enclosing
        self.work = 0
        self.floors = 0

    def charge(self, kind: str) -> None:
        """Charge an operation of ``kind`` (see :data:`_SLOW`) beyond one unit and one floor,
        which every operation is charged."""
        work, floors = _SLOW[kind]
        self.work += work - 1
        self.floors += floors - 1

    def charge_links(self, links: int) -> None:
        """Charge the ``links`` operations that fold a node's operands (``and``, comparisons in
        a chain, ``min``/``max``) beyond the one its node is charged."""
        self.work += links
        self.floors += links

    def table(self) -> Reasons:
        return Reasons(self.text, tuple(self.whys), tuple(self.spans))

    def fail(self, what: str, node: ast.expr | ast.keyword) -> Rejected:
        return Rejected(f"{what}: {quote(self.text, node)}")

    def code(self, why: str, where: Span) -> int:
        """Register one way the node at ``where`` can raise; returns its error code."""
        self.whys.append(why)
        self.spans.append(where)
        return len(self.whys)

    def codes(self, where: Span, *whys: str) -> range:
        """Register several ways the node at ``where`` can raise; returns their error codes."""
        first = len(self.whys) + 1
        self.whys += whys
        self.spans += [where] * len(whys)
        return range(first, first + len(whys))

    def count(self, below: int = 1) -> None:
        """Count one more node, ``below`` levels under the one being compiled."""
        self.nodes += 1
        if self.nodes > MAX_NODES or self.depth + below > MAX_DEPTH:
            raise Rejected(TOO_LARGE)

    def compile(self, node: ast.expr) -> tuple[Program, bool]:
        """The program for ``node`` and whether it depends on the argument."""
        self.count()
        kind = _KINDS.get(type(node))
        if kind is None:
            raise self.fail(
                _FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed"), node
            )
        self.work += 1
        self.floors += 1
        self.depth += 1
        compiled = kind(self, node)
        self.depth -= 1
        return compiled

    def compile_all(self, nodes: list[ast.expr]) -> list[tuple[Program, bool]]:
        return [self.compile(node) for node in nodes]

    def literal(self, node: ast.Constant) -> tuple[Program, bool]:
        value = node.value
        if isinstance(value, bool | int | float):
            if not abs(value) <= MAX_LITERAL:
                raise self.fail(f"numbers must be at most {MAX_LITERAL:g} in magnitude", node)
            return partial(_constant, float(value), not isinstance(value, float)), False
        kind = {str: "strings", bytes: "bytes", complex: "complex numbers"}.get(type(value))
        raise self.fail(f"{kind or repr(value)} {'are' if kind else 'is'} not allowed", node)

    def name(self, node: ast.Name) -> tuple[Program, bool]:
        name = node.id
        if name == self.argument:
            return ops.argument, True
        if name.startswith("__"):
            raise self.fail("dunder names are not allowed", node)
        if name in _CONSTANTS:
            return partial(_constant, _CONSTANTS[name], False), False
        if name in _BARE_FUNCTIONS:
            raise self.fail(f"the function {name!r} must be called", node)
        if name == "math":
            raise self.fail("'math' may only be used as math.<name>", node)
        raise self.fail(f"unknown name {name!r}; the argument is {self.argument!r}", node)

    def math_name(self, node: ast.Attribute) -> str | None:
        """``'cos'`` for ``math.cos`` (module not shadowed by the argument), else None."""
        module = node.value
        is_math = isinstance(module, ast.Name) and module.id == "math" != self.argument
        return node.attr if is_math else None

    def math_constant(self, node: ast.Attribute) -> tuple[Program, bool]:
        name = self.math_name(node)
        if name in _CONSTANTS:
            self.count()  # the name math
            return partial(_constant, _CONSTANTS[name], False), False
        if name in _MATH_FUNCTIONS:
            raise self.fail(f"the function 'math.{name}' must be called", node)
        raise self.fail("attribute access is not allowed", node)

    def unary(self, node: ast.UnaryOp) -> tuple[Program, bool]:
        operand, depends = self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            return partial(_unary, ops.negative, operand), depends
        if isinstance(node.op, ast.UAdd):
            return operand, depends
        if isinstance(node.op, ast.Not):
            return partial(_unary, ops.logical_not, operand), depends
        raise self.fail(f"the operator '{_OPERATOR_SYMBOLS[type(node.op)]}' is not allowed", node)

    def binary(self, node: ast.BinOp) -> tuple[Program, bool]:
        left, left_depends = self.compile(node.left)
        right, right_depends = self.compile(node.right)
        depends = left_depends or right_depends
        op = type(node.op)
        if op in _ARITHMETIC:
            function = _ARITHMETIC[op]
            too_large = self.code("integer too large to convert to float", span(node))
            return partial(_arithmetic, function, too_large, left, right), depends
        if op in _DIVISIONS:
            if op is not ast.Div:
                self.charge(self.modulo_kind(node.left, node.right))
            divide = _DIVISIONS[op]
            by_zero = self.code("division by zero", span(node))
            return partial(_division, divide, by_zero, left, right), depends
        if op is ast.Pow:
            exponent = (node.right, right, right_depends)
            return self.power(node, left, exponent, always_float=False), depends
        symbol = _OPERATOR_SYMBOLS[type(node.op)]
        raise self.fail(f"the operator '{symbol}' is not allowed", node)

    def modulo_kind(self, dividend: ast.expr, divisor: ast.expr) -> str:
        """``%`` and ``//`` take time in proportion to how many bits of exponent the dividend
        has over the divisor: few for the argument (an int below 2**50) by a constant >= 1."""
        constant = _literal_value(divisor)
        is_argument = isinstance(dividend, ast.Name) and dividend.id == self.argument
        if is_argument and constant is not None and abs(constant) >= 1:
            return "modulo by a constant"
        return "modulo"

    def power(
        self,
        node: ast.expr,
        base: Program,
        exponent: tuple[ast.expr, Program, bool],
        *,
        always_float: bool,
    ) -> Program:
        """``**``; an exponent not depending on the argument must be at most MAX_EXPONENT."""
        exponent_node, raise_to, depends = exponent
        if not depends:
            value = _literal_value(exponent_node)
            if value is None:
                with np.errstate(all="ignore"):
                    constant = raise_to(np.zeros(1))
                if constant.error[0] == 0:
                    value = float(constant.values[0])
            if value is not None and abs(value) > MAX_EXPONENT:
                raise self.fail(f"exponent {value:.6g} exceeds the limit of {MAX_EXPONENT}", node)
        self.charge("pow")
        codes = ops.PowerErrors(
            *self.codes(
                span(node),
                "0.0 cannot be raised to a negative power",
                "negative number raised to a fractional power",
                "result too large",
                "integer too large to convert to float",
            )
        )
        return partial(_power, codes, always_float, base, raise_to)

    def boolean(self, node: ast.BoolOp) -> tuple[Program, bool]:
        compiled = self.compile_all(node.values)
        combine = ops.logical_and if isinstance(node.op, ast.And) else ops.logical_or
        self.charge_links(len(compiled) - 2)
        program = compiled[0][0]
        for right, _ in compiled[1:]:
            program = partial(_binary, combine, program, right)
        return program, any(depends for _, depends in compiled)

    def comparison(self, node: ast.Compare) -> tuple[Program, bool]:
        comparisons: list[ops.Comparison] = []
        for op in node.ops:
            if type(op) not in _COMPARISONS:
                symbol = _OPERATOR_SYMBOLS[type(op)]
                raise self.fail(f"the operator '{symbol}' is not allowed", node)
            comparisons.append(_COMPARISONS[type(op)])
        compiled = self.compile_all([node.left, *node.comparators])
        self.charge_links(len(comparisons) - 1)
        programs = [program for program, _ in compiled]
        return (
            partial(_compare_chain, comparisons, programs),
            any(depends for _, depends in compiled),
        )

    def conditional(self, node: ast.IfExp) -> tuple[Program, bool]:
        compiled = self.compile_all([node.test, node.body, node.orelse])
        (test, _), (body, _), (orelse, _) = compiled
        return (
            partial(_if_else, test, body, orelse),
            any(depends for _, depends in compiled),
        )

    def call(self, node: ast.Call) -> tuple[Program, bool]:
        function = node.func
        if isinstance(function, ast.Attribute):
            attribute = self.math_name(function)
            if attribute is None:
                raise self.fail("attribute access is not allowed", function)
            if attribute not in _MATH_FUNCTIONS:
                raise self.fail(f"math.{attribute} is not one of the allowed functions", node)
            name = "math.pow" if attribute == "pow" else attribute
            self.count()  # the attribute
            self.count(below=2)  # the name math
        elif isinstance(function, ast.Name):
            name = function.id
            if name.startswith("__"):
                raise self.fail("dunder names are not allowed", function)
            if name not in _BARE_FUNCTIONS or name == self.argument:
                raise self.fail(f"unknown function {name!r}", node)
            self.count()  # the function's name
        else:
            raise self.fail("only the allowed functions may be called", node)
        if node.keywords:
            raise self.fail("keyword arguments are not allowed", node.keywords[0])
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise self.fail("starred arguments are not allowed", argument)
        lowest, highest = _ARITIES.get(name.removeprefix("math."), (1, 1))
        if not lowest <= len(node.args) <= highest:
            count = f"{lowest}" if lowest == highest else f"{lowest} to {highest}"
            raise self.fail(f"{name}() takes {count} arguments, not {len(node.args)}", node)
        compiled = self.compile_all(node.args)
        depends = any(depends for _, depends in compiled)
        return self.function(name, node, compiled), depends

    def function(self, name: str, node: ast.Call, compiled: list[tuple[Program, bool]]) -> Program:
        programs = [program for program, _ in compiled]
        first = programs[0]
        if name in ("min", "max"):
            self.charge_links(len(programs) - 2)
            largest = name == "max"
            return partial(_extremum, largest, programs)
        if name == "abs":
            return partial(_unary, ops.absolute, first)
        if name in ("pow", "math.pow"):
            exponent = (node.args[1], *compiled[1])
            return self.power(node, first, exponent, always_float=name == "math.pow")
        if name == "float":
            return partial(_unary, ops.to_float, first)
        where = span(node)
        if name == "round" and len(programs) == 2:
            self.charge("round to digits")
            return partial(_round_digits, self.ndigits(node.args[1]), first)
        if name in _TO_INT:
            not_finite = self.code("cannot convert infinity or NaN to an integer", where)
            return partial(_round_to_int, _TO_INT[name], not_finite, first)
        if name == "log" and len(programs) == 2:
            base = programs[1]
            self.charge("log with a base")
            domain = self.code("logarithm of a number <= 0", where)
            base_one = self.code("division by zero (logarithm base 1)", where)
            return partial(_logarithm_base, domain, base_one, first, base)
        ufunc, invalid, why = _FLOAT_FUNCTIONS[name]
        if name in _SLOW:
            self.charge(name)
        code = self.code(why, where) if why else 0
        return partial(_float_function, ufunc, invalid, code, first)

    def ndigits(self, node: ast.expr) -> int:
        """``round``'s second argument: an integer literal (clamped to :data:`MAX_NDIGITS`)."""
        number = _literal_value(node)
        literal = node.operand if isinstance(node, ast.UnaryOp) else node
        if (
            number is None
            or not isinstance(literal, ast.Constant)
            or isinstance(literal.value, float)
        ):
            raise self.fail("round()'s ndigits must be an integer literal", node)
        return int(max(-MAX_NDIGITS, min(MAX_NDIGITS, number)))


_TO_INT: dict[str, ops.FloatUfunc] = {
    "floor": np.floor,
    "ceil": np.ceil,
    "int": np.trunc,
    "round": np.rint,
}
"""The functions that turn a number into an int, and how (``np.rint``: half to even)."""


_KINDS: dict[type[ast.expr], Callable[[Compiler, Any], tuple[Program, bool]]] = {
    ast.Constant: Compiler.literal,
    ast.Name: Compiler.name,
    ast.Attribute: Compiler.math_constant,
    ast.UnaryOp: Compiler.unary,
    ast.BinOp: Compiler.binary,
    ast.BoolOp: Compiler.boolean,
    ast.Compare: Compiler.comparison,
    ast.IfExp: Compiler.conditional,
    ast.Call: Compiler.call,
}
"""How :meth:`Compiler.compile` compiles each kind of node it accepts."""


def _literal_value(node: ast.expr) -> float | None:
    """The number a literal, or a signed literal, evaluates to; None for anything else.

    Saves evaluating the usual constant exponent (``epoch ** 2``) with numpy while compiling.
    """
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float):
        return sign * float(node.value)
    return None


# The steps of a program: each node's program is one of them with everything but ``x`` bound by
# functools.partial. A partial is two objects, where a closure is a function, its closure tuple
# and a cell per variable: compiling allocates less, and the collector has less to walk.


def _constant(number: float, is_int: bool, x: ops.Floats) -> ops.Value:
    return ops.constant(x.shape, number, is_int)


def _unary(
    operation: Callable[[ops.Value], ops.Value], operand: Program, x: ops.Floats
) -> ops.Value:
    return operation(operand(x))


def _binary(
    operation: Callable[[ops.Value, ops.Value], ops.Value],
    left: Program,
    right: Program,
    x: ops.Floats,
) -> ops.Value:
    return operation(left(x), right(x))


def _arithmetic(
    function: Callable[[ops.Floats, ops.Floats], ops.Floats],
    too_large: int,
    left: Program,
    right: Program,
    x: ops.Floats,
) -> ops.Value:
    return ops.arithmetic(function, left(x), right(x), too_large)


def _division(
    divide: Callable[[ops.Value, ops.Value, int], ops.Value],
    by_zero: int,
    left: Program,
    right: Program,
    x: ops.Floats,
) -> ops.Value:
    return divide(left(x), right(x), by_zero)


def _power(
    codes: ops.PowerErrors, always_float: bool, base: Program, exponent: Program, x: ops.Floats
) -> ops.Value:
    return ops.power(base(x), exponent(x), codes, always_float=always_float)


def _compare_chain(
    comparisons: list[ops.Comparison], operands: list[Program], x: ops.Floats
) -> ops.Value:
    return ops.compare_chain(_one_by_one(operands, x), comparisons)


def _if_else(test: Program, body: Program, orelse: Program, x: ops.Floats) -> ops.Value:
    return ops.if_else(test(x), body(x), orelse(x))


def _extremum(largest: bool, operands: list[Program], x: ops.Floats) -> ops.Value:
    return ops.extremum(_one_by_one(operands, x), largest=largest)


def _round_to_int(
    rounding: ops.FloatUfunc, not_finite: int, operand: Program, x: ops.Floats
) -> ops.Value:
    return ops.round_to_int(operand(x), rounding, not_finite)


def _round_digits(ndigits: int, operand: Program, x: ops.Floats) -> ops.Value:
    return ops.round_digits(operand(x), ndigits)


def _logarithm_base(
    domain: int, base_one: int, operand: Program, base: Program, x: ops.Floats
) -> ops.Value:
    return ops.logarithm_base(operand(x), base(x), domain, base_one)


def _float_function(
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
