"""Safe, vectorized ``lr_lambda`` / ``scale_fn`` expressions.

PyTorch's LambdaLR and MultiplicativeLR take ``lr_lambda`` and CyclicLR takes ``scale_fn``: Python
callables of one int. On the wire they are strings, either lambda source
(``"lambda epoch: 0.95 ** epoch"``, one positional argument of any name) or a bare expression in
``epoch`` (``"max(0.0, 1 - epoch / 100)"``). :func:`compile_expression` parses the string once
with :func:`ast.parse`, accepts only the small language of API.md ("Expressions") and builds a
function evaluating it over a whole int64 array of arguments with numpy: no Python loop over
elements, and never ``eval``/``exec``/``compile``.

Language: int/float literals and ``True``/``False``; the argument; ``+ - * / // % **``, unary
``-``/``+``; comparisons, chained too; ``a if c else b``; ``and``/``or``/``not``; the functions
``min max abs pow`` (builtins) and ``floor ceil sqrt exp log log2 log10 cos sin tan tanh``, the
constants ``pi e inf``, those also as ``math.<name>`` (plus ``math.pow``). An argument named ``e``
shadows the constant ``e``.

Semantics are Python's, element by element (see ``_expression_ops``), including where Python
raises: :meth:`Expression.evaluate` finds the arguments at which the lambda would raise (or
return a complex number), ignoring branches Python would not evaluate. Ints are carried as
float64, so ints beyond 2**53 are rounded, and an int beyond float range (``2 ** 2000``) is an
error where it is produced. Python would carry the big int and fail only when PyTorch multiplies
it by the base lr, unless it is first reduced again (``2 ** 2000 % 7``); that is the one place
where we refuse what Python accepts.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from service.engine._expression_compiler import (
    MAX_EXPONENT,
    MAX_LITERAL,
    Compiler,
    Program,
    Rejected,
    quote,
)
from service.engine.errors import ScheduleError

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_LITERAL",
    "MAX_NODES",
    "Evaluation",
    "Expression",
    "ExpressionError",
    "compile_expression",
]

MAX_LENGTH = 1000
MAX_NODES = 200
MAX_DEPTH = 32
DEFAULT_ARGUMENT = "epoch"


class ExpressionError(ScheduleError):
    """Rejected source: message quotes the offending part, e.g.
    "attribute access is not allowed: 'x.__class__'"."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation of an :class:`Expression` over an array of arguments.

    ``values``: float64, same shape as the arguments, NaN where Python would raise.
    ``failed``: bool, same shape, True exactly where Python would raise.
    ``first_error``: ``(index, why)`` for the smallest flat index where Python would raise.
    """

    values: NDArray[np.float64]
    failed: NDArray[np.bool_]
    first_error: tuple[int, str] | None


@dataclass(frozen=True)
class Expression:
    """A compiled expression; call it on an int64 array of argument values.

    ``depends_on_argument`` is syntactic: False when the argument's name does not occur in the
    body (``lambda e: 0.95``), so callers may use a closed form.
    """

    source: str
    argument: str
    depends_on_argument: bool
    _program: Program = field(repr=False, compare=False)
    _messages: tuple[str, ...] = field(repr=False, compare=False)

    def evaluate(self, x: NDArray[np.integer]) -> Evaluation:
        """Evaluate element-wise, in O(len(x) * nodes) numpy operations and no Python loop."""
        arguments = np.asarray(x)
        if arguments.dtype.kind not in "iu":
            raise TypeError(f"expected an integer array, got dtype {arguments.dtype}")
        with np.errstate(all="ignore"):
            result = self._program(arguments.astype(np.float64))
        failed = result.error != 0
        values = np.where(failed, np.nan, result.values)
        if not failed.any():
            return Evaluation(values, failed, None)
        index = int(np.argmax(failed.ravel()))
        why = self._messages[int(result.error.ravel()[index]) - 1]
        return Evaluation(values, failed, (index, why))

    def __call__(self, x: NDArray[np.integer]) -> NDArray[np.float64]:
        """Values for each argument (float64, same shape); NaN where Python would raise."""
        return self.evaluate(x).values

    def domain_error(self, x: NDArray[np.integer]) -> tuple[int, str] | None:
        """The first argument value (smallest index) where Python would raise, and why."""
        first_error = self.evaluate(x).first_error
        if first_error is None:
            return None
        index, why = first_error
        return int(np.asarray(x).ravel()[index]), why


@functools.lru_cache(maxsize=512)
def compile_expression(source: str) -> Expression:
    """Parse, check and compile ``source`` (cached); raises :class:`ExpressionError`.

    Limits, checked in this order: at most MAX_LENGTH characters, brackets nested at most
    MAX_DEPTH deep, a single expression of at most MAX_NODES nodes nested at most MAX_DEPTH deep,
    literals at most MAX_LITERAL in magnitude, exponents not depending on the argument at most
    MAX_EXPONENT in magnitude.
    """
    if not isinstance(source, str):
        raise TypeError(f"expected the expression as a str, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(source)} characters long; the limit is {MAX_LENGTH}"
        )
    text = source.strip()
    _check_bracket_depth(text)
    try:
        module = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise ExpressionError(_syntax_message(text, exc)) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"expression cannot be parsed: {type(exc).__name__}") from None
    if len(module.body) != 1:
        raise ExpressionError(f"expected one expression, got {len(module.body)} statements")
    statement = module.body[0]
    if not isinstance(statement, ast.Expr):
        raise ExpressionError(f"statements are not allowed: {quote(text, statement)}")
    tree = statement.value
    _check_size(text, tree)
    argument, body = DEFAULT_ARGUMENT, tree
    if isinstance(tree, ast.Lambda):
        argument, body = _lambda_argument(text, tree), tree.body
    compiler = Compiler(text, argument)
    try:
        program, depends = compiler.compile(body)
    except Rejected as exc:
        raise ExpressionError(exc.message) from None
    return Expression(source, argument, depends, program, tuple(compiler.messages))


def _syntax_message(text: str, exc: SyntaxError) -> str:
    lines = text.splitlines() or [""]
    line = lines[min(max((exc.lineno or 1) - 1, 0), len(lines) - 1)]
    at = quote(line[max((exc.offset or 1) - 1, 0) :] or line)
    if exc.msg == "invalid syntax":
        return f"invalid syntax at {at}"
    return f"invalid syntax ({exc.msg}) at {at}"


def _check_bracket_depth(text: str) -> None:
    """Cheap guard before parsing: deeply nested brackets exhaust the parser's stack."""
    depth = deepest = 0
    for character in text:
        if character in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in ")]}":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise ExpressionError(
            f"expression nests {deepest} brackets deep; the nesting limit is {MAX_DEPTH}"
        )


def _check_size(text: str, tree: ast.expr) -> None:
    """At most MAX_NODES expression nodes nested at most MAX_DEPTH deep, and no dunder names
    anywhere (walked with a stack: the compiler's recursion only starts once this passed)."""
    nodes = deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            nodes, depth = nodes + 1, depth + 1
            deepest = max(deepest, depth)
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise ExpressionError(f"dunder names are not allowed: {quote(text, node)}")
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    if nodes > MAX_NODES:
        raise ExpressionError(f"expression has {nodes} nodes; the limit is {MAX_NODES}")
    if deepest > MAX_DEPTH:
        raise ExpressionError(f"expression nests {deepest} deep; the nesting limit is {MAX_DEPTH}")


def _lambda_argument(text: str, tree: ast.Lambda) -> str:
    """The name of the lambda's single plain positional argument."""
    args = tree.args
    if args.vararg is not None or args.kwarg is not None or args.kwonlyargs:
        raise ExpressionError(
            f"*args, **kwargs and keyword-only arguments are not allowed: {quote(text, tree)}"
        )
    if args.defaults:
        raise ExpressionError(f"argument defaults are not allowed: {quote(text, tree)}")
    positional = [*args.posonlyargs, *args.args]
    if len(positional) != 1:
        count = len(positional)
        raise ExpressionError(f"a lambda must take one argument, not {count}: {quote(text, tree)}")
    name = positional[0].arg
    if name.startswith("__"):
        raise ExpressionError(f"dunder names are not allowed: {name!r}")
    return name
