"""From a parsed Python AST to a vectorized program (private to ``service.engine.expressions``).

The compiler walks the tree once, accepting only the language of API.md ("Expressions"); anything
else raises :class:`Rejected` with a message that quotes the offending source. Each accepted node
becomes a step of ``_expression_steps`` (numpy operations from ``_expression_ops``), its operands'
programs bound to it; each way a node can raise at evaluation time gets an entry in the
:class:`Reasons` table, whose 1-based index is its error code.

Compiling is on the request path (during body validation, up to 1,024 expressions a request),
so it does only what an accepted expression needs: the size limits are counted along the walk,
and the reasons keep only where their node is; its source is quoted once a message is asked for.
What a program costs and holds in memory is in ``_expression_steps``; how messages quote the
source, in ``_expression_source``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from service.engine import _expression_ops as ops
from service.engine import _expression_steps as steps
from service.engine._expression_source import (
    FORBIDDEN,
    OPERATOR_SYMBOLS,
    Reasons,
    Rejected,
    Span,
    quote,
    span,
)
from service.engine._expression_steps import Program
from service.limits import (
    MAX_ARGUMENTS,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_LITERAL,
    MAX_NDIGITS,
    MAX_NODES,
)

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "inf": math.inf}
_MATH_FUNCTIONS = frozenset(
    {"floor", "ceil", "sqrt", "exp", "log", "log2", "log10", "cos", "sin", "tan", "tanh", "pow"}
)
_BUILTIN_FUNCTIONS = frozenset({"min", "max", "abs", "pow", "float", "int", "round"})
_BARE_FUNCTIONS = _MATH_FUNCTIONS | _BUILTIN_FUNCTIONS
_ARITIES: dict[str, tuple[int, int]] = {"min": (2, MAX_ARGUMENTS), "max": (2, MAX_ARGUMENTS)}
_ARITIES |= {"log": (1, 2), "pow": (2, 2), "round": (1, 2)}
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
        """Charge an operation of ``kind`` (see ``_expression_steps.SLOW``) beyond one unit and
        one floor, which every operation is charged."""
        work, floors = steps.SLOW[kind]
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
                FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed"), node
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
            return partial(steps.constant, float(value), not isinstance(value, float)), False
        kind = {str: "strings", bytes: "bytes", complex: "complex numbers"}.get(type(value))
        raise self.fail(f"{kind or repr(value)} {'are' if kind else 'is'} not allowed", node)

    def name(self, node: ast.Name) -> tuple[Program, bool]:
        name = node.id
        if name == self.argument:
            return ops.argument, True
        if name.startswith("__"):
            raise self.fail("dunder names are not allowed", node)
        if name in _CONSTANTS:
            return partial(steps.constant, _CONSTANTS[name], False), False
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
            return partial(steps.constant, _CONSTANTS[name], False), False
        if name in _MATH_FUNCTIONS:
            raise self.fail(f"the function 'math.{name}' must be called", node)
        raise self.fail("attribute access is not allowed", node)

    def unary(self, node: ast.UnaryOp) -> tuple[Program, bool]:
        operand, depends = self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            return partial(steps.unary, ops.negative, operand), depends
        if isinstance(node.op, ast.UAdd):
            return operand, depends
        if isinstance(node.op, ast.Not):
            return partial(steps.unary, ops.logical_not, operand), depends
        raise self.fail(f"the operator '{OPERATOR_SYMBOLS[type(node.op)]}' is not allowed", node)

    def binary(self, node: ast.BinOp) -> tuple[Program, bool]:
        left, left_depends = self.compile(node.left)
        right, right_depends = self.compile(node.right)
        depends = left_depends or right_depends
        op = type(node.op)
        if op in steps.ARITHMETIC:
            function = steps.ARITHMETIC[op]
            too_large = self.code("integer too large to convert to float", span(node))
            return partial(steps.arithmetic, function, too_large, left, right), depends
        if op in steps.DIVISIONS:
            if op is not ast.Div:
                self.charge(self.modulo_kind(node.left, node.right))
            divide = steps.DIVISIONS[op]
            by_zero = self.code("division by zero", span(node))
            return partial(steps.division, divide, by_zero, left, right), depends
        if op is ast.Pow:
            exponent = (node.right, right, right_depends)
            return self.power(node, left, exponent, always_float=False), depends
        symbol = OPERATOR_SYMBOLS[type(node.op)]
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
        return partial(steps.power, codes, always_float, base, raise_to)

    def boolean(self, node: ast.BoolOp) -> tuple[Program, bool]:
        compiled = self.compile_all(node.values)
        combine = ops.logical_and if isinstance(node.op, ast.And) else ops.logical_or
        self.charge_links(len(compiled) - 2)
        program = compiled[0][0]
        for right, _ in compiled[1:]:
            program = partial(steps.binary, combine, program, right)
        return program, any(depends for _, depends in compiled)

    def comparison(self, node: ast.Compare) -> tuple[Program, bool]:
        comparisons: list[ops.Comparison] = []
        for op in node.ops:
            if type(op) not in steps.COMPARISONS:
                symbol = OPERATOR_SYMBOLS[type(op)]
                raise self.fail(f"the operator '{symbol}' is not allowed", node)
            comparisons.append(steps.COMPARISONS[type(op)])
        compiled = self.compile_all([node.left, *node.comparators])
        self.charge_links(len(comparisons) - 1)
        programs = [program for program, _ in compiled]
        return (
            partial(steps.compare_chain, comparisons, programs),
            any(depends for _, depends in compiled),
        )

    def conditional(self, node: ast.IfExp) -> tuple[Program, bool]:
        compiled = self.compile_all([node.test, node.body, node.orelse])
        (test, _), (body, _), (orelse, _) = compiled
        return (
            partial(steps.if_else, test, body, orelse),
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
            return partial(steps.extremum, largest, programs)
        if name == "abs":
            return partial(steps.unary, ops.absolute, first)
        if name in ("pow", "math.pow"):
            exponent = (node.args[1], *compiled[1])
            return self.power(node, first, exponent, always_float=name == "math.pow")
        if name == "float":
            return partial(steps.unary, ops.to_float, first)
        where = span(node)
        if name == "round" and len(programs) == 2:
            self.charge("round to digits")
            return partial(steps.round_digits, self.ndigits(node.args[1]), first)
        if name in steps.TO_INT:
            not_finite = self.code("cannot convert infinity or NaN to an integer", where)
            return partial(steps.round_to_int, steps.TO_INT[name], not_finite, first)
        if name == "log" and len(programs) == 2:
            base = programs[1]
            self.charge("log with a base")
            domain = self.code("logarithm of a number <= 0", where)
            base_one = self.code("division by zero (logarithm base 1)", where)
            return partial(steps.logarithm_base, domain, base_one, first, base)
        ufunc, invalid, why = steps.FLOAT_FUNCTIONS[name]
        if name in steps.SLOW:
            self.charge(name)
        code = self.code(why, where) if why else 0
        return partial(steps.float_function, ufunc, invalid, code, first)

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
