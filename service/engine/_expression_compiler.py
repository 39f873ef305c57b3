"""From a checked Python AST to a vectorized program (private to ``service.engine.expressions``).

The compiler walks the tree once, accepting only the language of API.md ("Expressions"); anything
else raises :class:`Rejected` with a message that quotes the offending source. Each accepted node
becomes a closure over numpy operations from ``_expression_ops``; each way a node can raise at
evaluation time gets an entry in the message table, whose 1-based index is its error code.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

import numpy as np

from service.engine import _expression_ops as ops

MAX_LITERAL = 1e300
MAX_EXPONENT = 1024
MAX_ARGUMENTS = 200

Program = Callable[[ops.Floats], ops.Value]


class Rejected(Exception):
    """The source is outside the language; ``message`` says where and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def quote(text: str, node: ast.AST | None = None) -> str:
    """``repr`` of the node's source (or of ``text``), shortened to stay readable."""
    segment = (ast.get_source_segment(text, node) if node is not None else text) or text
    if len(segment) > 80:
        segment = segment[:77] + "..."
    return repr(segment)


_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "inf": math.inf}
_MATH_FUNCTIONS = frozenset(
    {"floor", "ceil", "sqrt", "exp", "log", "log2", "log10", "cos", "sin", "tan", "tanh", "pow"}
)
_BUILTIN_FUNCTIONS = frozenset({"min", "max", "abs", "pow"})
_BARE_FUNCTIONS = _MATH_FUNCTIONS | _BUILTIN_FUNCTIONS
_ARITIES: dict[str, tuple[int, int]] = {"min": (2, MAX_ARGUMENTS), "max": (2, MAX_ARGUMENTS)}
_ARITIES |= {"log": (1, 2), "pow": (2, 2)}


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


class Compiler:
    """Turns a checked AST into a :data:`Program`, collecting the error messages it may need."""

    def __init__(self, text: str, argument: str) -> None:
        self.text = text
        self.argument = argument
        self.messages: list[str] = []

    def fail(self, what: str, node: ast.AST) -> Rejected:
        return Rejected(f"{what}: {quote(self.text, node)}")

    def code(self, why: str, node: ast.AST) -> int:
        """Register the message for one way ``node`` can raise; returns its error code."""
        self.messages.append(f"{why} in {quote(self.text, node)}")
        return len(self.messages)

    def compile(self, node: ast.expr) -> tuple[Program, bool]:
        """The program for ``node`` and whether it depends on the argument."""
        if isinstance(node, ast.Constant):
            return self.literal(node), False
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Attribute):
            return self.math_constant(node), False
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.BoolOp):
            return self.boolean(node)
        if isinstance(node, ast.Compare):
            return self.comparison(node)
        if isinstance(node, ast.IfExp):
            return self.conditional(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(_FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed"), node)

    def literal(self, node: ast.Constant) -> Program:
        value = node.value
        if isinstance(value, bool | int | float):
            if not abs(value) <= MAX_LITERAL:
                raise self.fail(f"numbers must be at most {MAX_LITERAL:g} in magnitude", node)
            return _constant(float(value), not isinstance(value, float))
        kind = {str: "strings", bytes: "bytes", complex: "complex numbers"}.get(type(value))
        raise self.fail(f"{kind or repr(value)} {'are' if kind else 'is'} not allowed", node)

    def name(self, node: ast.Name) -> tuple[Program, bool]:
        name = node.id
        if name == self.argument:
            return ops.argument, True
        if name.startswith("__"):
            raise self.fail("dunder names are not allowed", node)
        if name in _CONSTANTS:
            return _constant(_CONSTANTS[name], False), False
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

    def math_constant(self, node: ast.Attribute) -> Program:
        name = self.math_name(node)
        if name in _CONSTANTS:
            return _constant(_CONSTANTS[name], False)
        if name in _MATH_FUNCTIONS:
            raise self.fail(f"the function 'math.{name}' must be called", node)
        raise self.fail("attribute access is not allowed", node)

    def unary(self, node: ast.UnaryOp) -> tuple[Program, bool]:
        operand, depends = self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            return _map(ops.negative, operand), depends
        if isinstance(node.op, ast.UAdd):
            return operand, depends
        if isinstance(node.op, ast.Not):
            return _map(ops.logical_not, operand), depends
        raise self.fail(f"the operator '{_OPERATOR_SYMBOLS[type(node.op)]}' is not allowed", node)

    def binary(self, node: ast.BinOp) -> tuple[Program, bool]:
        (left, left_depends), (right, right_depends) = self.compile_all([node.left, node.right])
        depends = left_depends or right_depends
        op = type(node.op)
        if op in _ARITHMETIC:
            function = _ARITHMETIC[op]
            too_large = self.code("integer too large to convert to float", node)
            return lambda x: ops.arithmetic(function, left(x), right(x), too_large), depends
        if op in _DIVISIONS:
            divide = _DIVISIONS[op]
            by_zero = self.code("division by zero", node)
            return lambda x: divide(left(x), right(x), by_zero), depends
        if op is ast.Pow:
            return self.power(node, left, (right, right_depends), always_float=False), depends
        symbol = _OPERATOR_SYMBOLS[type(node.op)]
        raise self.fail(f"the operator '{symbol}' is not allowed", node)

    def power(
        self, node: ast.expr, base: Program, exponent: tuple[Program, bool], *, always_float: bool
    ) -> Program:
        """``**``; an exponent not depending on the argument must be at most MAX_EXPONENT."""
        raise_to, depends = exponent
        if not depends:
            with np.errstate(all="ignore"):
                constant = raise_to(np.zeros(1))
            if constant.error[0] == 0 and abs(constant.values[0]) > MAX_EXPONENT:
                raise self.fail(
                    f"exponent {constant.values[0]:.6g} exceeds the limit of {MAX_EXPONENT}", node
                )
        codes = ops.PowerErrors(
            zero_to_negative=self.code("0.0 cannot be raised to a negative power", node),
            complex_result=self.code("negative number raised to a fractional power", node),
            overflow=self.code("result too large", node),
            too_large=self.code("integer too large to convert to float", node),
        )
        return lambda x: ops.power(base(x), raise_to(x), codes, always_float=always_float)

    def boolean(self, node: ast.BoolOp) -> tuple[Program, bool]:
        compiled = self.compile_all(node.values)
        combine = ops.logical_and if isinstance(node.op, ast.And) else ops.logical_or
        program = compiled[0][0]
        for right, _ in compiled[1:]:
            program = _combine(combine, program, right)
        return program, any(depends for _, depends in compiled)

    def comparison(self, node: ast.Compare) -> tuple[Program, bool]:
        comparisons: list[ops.Comparison] = []
        for op in node.ops:
            if type(op) not in _COMPARISONS:
                symbol = _OPERATOR_SYMBOLS[type(op)]
                raise self.fail(f"the operator '{symbol}' is not allowed", node)
            comparisons.append(_COMPARISONS[type(op)])
        compiled = self.compile_all([node.left, *node.comparators])
        programs = [program for program, _ in compiled]
        return (
            lambda x: ops.compare_chain([program(x) for program in programs], comparisons),
            any(depends for _, depends in compiled),
        )

    def conditional(self, node: ast.IfExp) -> tuple[Program, bool]:
        compiled = self.compile_all([node.test, node.body, node.orelse])
        (test, _), (body, _), (orelse, _) = compiled
        return (
            lambda x: ops.if_else(test(x), body(x), orelse(x)),
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
        elif isinstance(function, ast.Name):
            name = function.id
            if name.startswith("__"):
                raise self.fail("dunder names are not allowed", function)
            if name not in _BARE_FUNCTIONS or name == self.argument:
                raise self.fail(f"unknown function {name!r}", node)
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
            largest = name == "max"
            return lambda x: ops.extremum([program(x) for program in programs], largest=largest)
        if name == "abs":
            return _map(ops.absolute, first)
        if name in ("pow", "math.pow"):
            return self.power(node, first, compiled[1], always_float=name == "math.pow")
        if name in ("floor", "ceil"):
            rounding = np.floor if name == "floor" else np.ceil
            not_finite = self.code("cannot convert infinity or NaN to an integer", node)
            return lambda x: ops.round_to_int(first(x), rounding, not_finite)
        if name == "log" and len(programs) == 2:
            base = programs[1]
            domain = self.code("logarithm of a number <= 0", node)
            base_one = self.code("division by zero (logarithm base 1)", node)
            return lambda x: ops.logarithm_base(first(x), base(x), domain, base_one)
        ufunc, invalid, why = _FLOAT_FUNCTIONS[name]
        code = self.code(why, node) if why else 0
        return lambda x: ops.float_function(ufunc, first(x), invalid, code)

    def compile_all(self, nodes: list[ast.expr]) -> list[tuple[Program, bool]]:
        return [self.compile(node) for node in nodes]


def _constant(number: float, is_int: bool) -> Program:
    return lambda x: ops.constant(x.shape, number, is_int)


def _map(operation: Callable[[ops.Value], ops.Value], operand: Program) -> Program:
    return lambda x: operation(operand(x))


def _combine(
    operation: Callable[[ops.Value, ops.Value], ops.Value], left: Program, right: Program
) -> Program:
    return lambda x: operation(left(x), right(x))
