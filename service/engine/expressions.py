"""Safe, vectorized ``lr_lambda`` / ``scale_fn`` expressions.

PyTorch's LambdaLR and MultiplicativeLR take ``lr_lambda`` and CyclicLR takes ``scale_fn``: Python
callables of one int. On the wire they are strings, either lambda source
(``"lambda epoch: 0.95 ** epoch"``, one positional argument of any name) or a bare expression in
``epoch`` (``"max(0.0, 1 - epoch / 100)"``). :func:`compile_expression` parses the string once
with :func:`ast.parse`, accepts only the small language of API.md ("Expressions") and builds a
function evaluating it over a whole int64 array of arguments with numpy: no Python loop over
elements (but for ``round(x, n)`` of arguments exact float arithmetic cannot settle, which
Python's own ``round`` rounds one by one), and never ``eval``/``exec``/``compile``.

Language: int/float literals and ``True``/``False``; the argument; ``+ - * / // % **``, unary
``-``/``+``; comparisons, chained too; ``a if c else b``; ``and``/``or``/``not``; the functions
``min max abs pow float int round`` (builtins) and ``floor ceil sqrt exp log log2 log10 cos sin
tan tanh``, the constants ``pi e inf``, those also as ``math.<name>`` (plus ``math.pow``). An
argument named ``e`` shadows the constant ``e``. ``int``, ``round(x)``, ``floor`` and ``ceil``
return ints (``round`` half to even); ``round(x, n)`` takes an integer literal ``n``.

Semantics are Python's, element by element (see ``_expression_ops``), including where Python
raises: :meth:`Expression.evaluate` finds the arguments at which the lambda would raise (or
return a complex number), ignoring branches Python would not evaluate. Ints are carried as
float64, so ints beyond 2**53 are rounded, and an int beyond float range (``2 ** 2000``) is an
error where it is produced. Python would carry the big int and fail only when PyTorch multiplies
it by the base lr, unless it is first reduced again (``2 ** 2000 % 7``); that is the one place
where we refuse what Python accepts.

Cost: compiling is one walk over the tree after :func:`ast.parse`, which takes most of the time
(a fraction of a millisecond for a maximal expression). Evaluating takes O(len(x) * nodes)
numpy work in pieces of :data:`CHUNK` arguments, so the memory it needs beyond its result is
bounded whatever the number of arguments (see :meth:`Expression.evaluate`); how long it takes is
estimated by :meth:`Expression.cost`, before evaluating.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from rules.errors import ScheduleError
from service.engine._expression_compiler import Compiler
from service.engine._expression_source import Reasons, Rejected, quote
from service.engine._expression_steps import CALL_FLOOR, Program
from service.engine.cancel import checkpoint
from service.limits import MAX_DEPTH, MAX_LENGTH, MAX_NODES

__all__ = [
    "CALL_FLOOR",
    "CHUNK",
    "Evaluation",
    "Expression",
    "ExpressionError",
    "CompiledSource",
    "compile_expression",
    "compile_source",
    "compiled",
]

DEFAULT_ARGUMENT = "epoch"
CHUNK = 1 << 15
"""Arguments evaluated at once. At most about 2 * MAX_DEPTH + 6 intermediate results of this
many elements, 11 bytes each, are alive during an evaluation (see ``_expression_steps``):
about 25 MB at most, whatever the expression and the number of arguments."""


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
    body (``lambda e: 0.95``), so callers may use a closed form. ``work`` and ``overhead``
    price an evaluation (see :meth:`cost`).
    """

    source: str
    argument: str
    depends_on_argument: bool
    _program: Program = field(repr=False, compare=False)
    _reasons: Reasons = field(repr=False, compare=False)
    nodes: int = field(compare=False)
    """Syntax nodes in the body."""
    work: int = field(compare=False)
    """Cost units per argument (see :meth:`cost`): one for most operations, more for the slow
    ones (``**``, ``%``, ``//``, ``sin``, ...)."""
    overhead: int = field(compare=False)
    """Cost units per call of the program (see :meth:`cost`): :data:`CALL_FLOOR` for most
    operations, more for a few."""

    def cost(self, arguments: int) -> int:
        """The estimated cost of one evaluation at ``arguments`` arguments, in units of about
        2 ns of this machine's time at worst, whatever the arguments' values: the work per
        argument, plus the overhead for each piece of :data:`CHUNK` arguments the program is
        called on, plus one :data:`CALL_FLOOR` for the evaluation itself."""
        calls = -(-arguments // CHUNK)
        return self.work * arguments + self.overhead * calls + CALL_FLOOR

    def evaluate(self, x: NDArray[np.integer]) -> Evaluation:
        """Evaluate element-wise, in O(len(x) * nodes) numpy operations and no Python loop over
        elements.

        Arguments are taken :data:`CHUNK` at a time, so the working set beyond the result
        (float64 values and bool flags, 9 bytes an argument) is bounded: about 25 MB at most,
        the size of 3 float64 arrays of a million. Every operation is element-wise, so the
        values do not depend on the chunking.
        """
        arguments = np.asarray(x)
        if arguments.dtype.kind not in "iu":
            raise TypeError(f"expected an integer array, got dtype {arguments.dtype}")
        flat = arguments.reshape(-1)
        values = np.empty(flat.shape, dtype=np.float64)
        failed = np.empty(flat.shape, dtype=np.bool_)
        first_error: tuple[int, str] | None = None
        with np.errstate(all="ignore"):
            for start in range(0, flat.size, CHUNK):
                checkpoint()
                stop = start + CHUNK
                result = self._program(flat[start:stop].astype(np.float64))
                chunk_failed = failed[start:stop]
                np.not_equal(result.error, 0, out=chunk_failed)
                np.copyto(values[start:stop], result.values)
                np.copyto(values[start:stop], np.nan, where=chunk_failed)
                if first_error is None and chunk_failed.any():
                    index = int(np.argmax(chunk_failed))
                    first_error = (start + index, self._reasons[int(result.error[index])])
        return Evaluation(
            values.reshape(arguments.shape), failed.reshape(arguments.shape), first_error
        )

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
    MAX_EXPONENT in magnitude (all in :mod:`service.limits`).
    """
    if not isinstance(source, str):
        raise TypeError(f"expected the expression as a str, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(source)} characters long; the limit is {MAX_LENGTH}"
        )
    text = source.strip()
    tree = _parse(text)
    try:
        argument, body, enclosing = DEFAULT_ARGUMENT, tree, 0
        if isinstance(tree, ast.Lambda):
            argument, body, enclosing = _lambda_argument(text, tree), tree.body, 1
        compiler = Compiler(text, argument, enclosing)
        program, depends = compiler.compile(body)
    except (Rejected, ExpressionError) as exc:
        # The compiler counts the limits only as far as it got: the whole tree's size and its
        # dunder names are reported first, as if checked before anything else.
        _check_size(text, tree)
        raise ExpressionError(exc.message) from None
    return Expression(
        source,
        argument,
        depends,
        program,
        compiler.table(),
        compiler.nodes,
        compiler.work,
        compiler.floors * CALL_FLOOR,
    )


def _parse(text: str) -> ast.expr:
    """The single expression ``text`` holds, parsed; raises :class:`ExpressionError` for
    brackets nested too deep, a syntax error, or anything but one expression statement."""
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
    return statement.value


def _syntax_message(text: str, exc: SyntaxError) -> str:
    lines = text.splitlines() or [""]
    line = lines[min(max((exc.lineno or 1) - 1, 0), len(lines) - 1)]
    at = quote(line[max((exc.offset or 1) - 1, 0) :] or line)
    if exc.msg == "invalid syntax":
        return f"invalid syntax at {at}"
    return f"invalid syntax ({exc.msg}) at {at}"


_NOT_BRACKETS = re.compile(r"[^()[\]{}]+")
_BRACKET_STEPS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


def _check_bracket_depth(text: str) -> None:
    """Cheap guard before parsing: deeply nested brackets exhaust the parser's stack."""
    brackets = _NOT_BRACKETS.sub("", text)
    deepest = max(itertools.accumulate(map(_BRACKET_STEPS.__getitem__, brackets)), default=0)
    if deepest > MAX_DEPTH:
        raise ExpressionError(
            f"expression nests {deepest} brackets deep; the nesting limit is {MAX_DEPTH}"
        )


def _check_size(text: str, tree: ast.expr) -> None:
    """At most MAX_NODES expression nodes nested at most MAX_DEPTH deep, and no dunder names
    anywhere (walked with a stack, as the tree may be deeper than Python's recursion limit).

    Needed only for a rejected tree, to name its first problem: the compiler counts the same
    limits on the way, and its recursion stops at MAX_DEPTH."""
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


class CompiledSource(str):
    """An expression's source as the request gave it, carrying its compiled form: validation
    compiles every expression, and building the schedule uses that rather than compiling it
    again (the compile cache may not hold every expression of a request)."""

    __slots__ = ("expression",)
    expression: Expression

    def __new__(cls, expression: Expression) -> CompiledSource:
        source = super().__new__(cls, expression.source)
        source.expression = expression
        return source

    def __copy__(self) -> CompiledSource:
        return self  # immutable, as its expression is

    def __deepcopy__(self, memo: dict[int, object]) -> CompiledSource:
        return self

    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return compile_source, (str(self),)


def compile_source(source: str) -> str:
    """``source`` checked and compiled, kept as the string it was (a :class:`CompiledSource`);
    raises :class:`ExpressionError` (a ``ValueError``, so pydantic reports it on the field)."""
    return CompiledSource(compile_expression(source))


def compiled(source: str) -> Expression:
    """The compiled form of a validated source (compiled here if it was not validated)."""
    if isinstance(source, CompiledSource):
        return source.expression
    return compile_expression(source)
