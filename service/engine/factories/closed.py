"""One factory for every schedule that is a library function of its fields alone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rules.errors import Loc
from service.engine.families.base import Closed, Formula
from service.engine.nodes import Node
from service.engine.registry import register
from service.engine.types import FloatArray, IntArray

Curve = Callable[[IntArray], FloatArray]
Check = Callable[[Loc, Mapping[str, Any]], None]
"""``check(loc, fields)``: raises ``ScheduleError`` where the library would refuse."""


def register_closed(
    functions: Mapping[str, Callable[..., Curve]],
    shape: Callable[[Curve], Formula],
    ignored: tuple[str, ...] = (),
    check: Check | None = None,
) -> None:
    """Register each ``type`` of ``functions`` as ``Closed(shape(function(**fields)))``: the
    spec's fields (but ``ignored``) are the function's keyword arguments, as the library
    names them; ``check`` (if any) sees them first; ``shape`` makes the curve a formula (an
    absolute lr, or a multiplier of the lrs)."""
    for type_, function in functions.items():
        register(type_)(_factory(type_, function, shape, ignored, check))


def _factory(
    type_: str,
    function: Callable[..., Curve],
    shape: Callable[[Curve], Formula],
    ignored: tuple[str, ...],
    check: Check | None,
) -> Callable[..., Node]:
    def factory(loc: Loc, groups: int, **fields: Any) -> Node:
        for name in ignored:
            del fields[name]
        if check is not None:
            check(loc, fields)
        return Closed(loc, shape(function(**fields)))

    factory.__doc__ = f"``{type_}``: :func:`{function.__module__}.{function.__name__}`."
    return factory
