"""Where a node is in an expression's source, and how messages quote it (private to
``service.engine.expressions``).

A refusal (:class:`Rejected`) and an evaluation error (a :class:`Reasons` entry) both quote
the source of the node they are about, the way :func:`ast.get_source_segment` finds it; the
tables at the end word the refusals of constructs and operators outside the language.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

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


FORBIDDEN: dict[type[ast.AST], str] = {
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
"""Why a construct outside the language is refused (any other: "<Node> is not allowed")."""

OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
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
"""How a refusal writes the operators outside the language."""
