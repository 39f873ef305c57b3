"""A structural pre-scan of a JSON body: nesting depth, array items, object members and string
sizes, counted on the raw bytes before anything parses them.

Parsers and validators are C code that holds the GIL for as long as they run: a body of a
million keys keeps them (and with them the event loop) busy for seconds whatever thread they
run in. The scan is a bytes tokenizer in Python: it stops at the first limit passed, costs
about a microsecond per token (a run of comma-separated numbers is one token), and, running
in a worker thread, lets the event loop take the GIL every switch interval. It checks
structure only; anything malformed is left to the parser, which stops at the same place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from service.limits import (
    BODY_MAX_DEPTH,
    BODY_MAX_ITEMS,
    BODY_MAX_MEMBERS,
    BODY_MAX_STRING_BYTES,
)

Loc = tuple[str | int, ...]
Kind = Literal["depth", "items", "members", "string"]

_RUN = 4096
"""Most scalars one token holds, so that one regular-expression call stays short."""
_TOKEN = re.compile(
    rb"[ \t\r\n]*+(?:"
    rb"(?P<run>[-+.\w]++(?:[ \t\r\n]*+,[ \t\r\n]*+[-+.\w]++){0,%d}+)"
    rb'|(?P<string>"(?:[^"\\]++|\\.)*+")'
    rb"|(?P<mark>[\[\]{}:,]))" % (_RUN - 1),
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class BodyProblem:
    """The first limit a body passes: which, where (a ``loc`` under ``body``), and why."""

    kind: Kind
    loc: Loc
    message: str


@dataclass(slots=True)
class _Container:
    is_object: bool
    count: int = 0
    key: bytes = b""
    expect_key: bool = field(default=False)


def quick_pass(body: bytes) -> bool:
    """Whether ``body`` is certainly within every limit, judged from byte counts alone.

    A body no longer than the longest string allowed, than two bytes per array item allowed
    (``0,``) and five per member (``"":0,``) cannot pass those limits; its brackets, in
    strings or not, bound its depth.
    """
    short = min(BODY_MAX_STRING_BYTES, 2 * BODY_MAX_ITEMS, 5 * BODY_MAX_MEMBERS)
    return len(body) <= short and body.count(b"[") + body.count(b"{") <= BODY_MAX_DEPTH


def scan(body: bytes) -> BodyProblem | None:
    """The first limit of :mod:`service.limits` that ``body`` passes, or ``None``."""
    scanner = _Scanner()
    position, end = 0, len(body)
    while position < end:
        token = _TOKEN.match(body, position)
        if token is None:
            return None  # not JSON (or only whitespace left): the parser says so
        position = token.end()
        problem = scanner.feed(token)
        if problem is not None:
            return problem
        if scanner.done:
            return None
    return None


class _Scanner:
    """The containers open at the current token, and the totals so far."""

    def __init__(self) -> None:
        self.stack: list[_Container] = []
        self.items = 0
        self.members = 0
        self.done = False

    def feed(self, token: re.Match[bytes]) -> BodyProblem | None:
        run, string, mark = token.group("run", "string", "mark")
        if mark is not None:
            return self._mark(mark)
        if string is not None:
            return self._string(string)
        return self._values(run.count(b",") + 1)

    def _mark(self, mark: bytes) -> BodyProblem | None:
        if mark in (b"{", b"["):
            problem = self._values(1)
            if len(self.stack) >= BODY_MAX_DEPTH:
                return BodyProblem(
                    "depth", self._loc(), f"nested deeper than {BODY_MAX_DEPTH} levels"
                )
            self.stack.append(_Container(mark == b"{", expect_key=mark == b"{"))
            return problem
        if mark in (b"}", b"]"):
            if self.stack:
                self.stack.pop()
            self.done = not self.stack
        elif mark == b"," and self.stack and self.stack[-1].is_object:
            self.stack[-1].expect_key = True
        return None

    def _string(self, string: bytes) -> BodyProblem | None:
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_object and top.expect_key:
            top.key, top.expect_key = string, False
            top.count += 1
            self.members += 1
            if self.members > BODY_MAX_MEMBERS:
                return BodyProblem(
                    "members",
                    self._loc()[:-1],
                    f"the body holds more than {BODY_MAX_MEMBERS} object members in all",
                )
            problem = None
        else:
            problem = self._values(1)
        if len(string) - 2 > BODY_MAX_STRING_BYTES:
            return BodyProblem(
                "string", self._loc(), f"a string longer than {BODY_MAX_STRING_BYTES} bytes"
            )
        return problem

    def _values(self, count: int) -> BodyProblem | None:
        """``count`` values start: items of the enclosing array, or a member's value."""
        top = self.stack[-1] if self.stack else None
        if top is None or top.is_object:
            return None
        top.count += count
        self.items += count
        if self.items > BODY_MAX_ITEMS:
            return BodyProblem(
                "items",
                self._loc()[:-1],
                f"the body holds more than {BODY_MAX_ITEMS} array items in all "
                f"(this array: {top.count} so far)",
            )
        return None

    def _loc(self) -> Loc:
        """Where the current value sits: each open container's current key or index."""
        return tuple(
            _key(container.key) if container.is_object else container.count - 1
            for container in self.stack
        )


def _key(raw: bytes) -> str:
    """A member's name as the parser will read it (shortened: it only names a place)."""
    try:
        name = json.loads(raw)
    except ValueError:
        name = raw[1:-1].decode("utf-8", "replace")
    return name if isinstance(name, str) and len(name) <= 100 else str(name)[:100] + "..."
