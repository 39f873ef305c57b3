"""The engine's entry point for the wire contract: scheduler ``type`` -> factory -> node.

``schemas`` validates a request's shape (types, ranges, PyTorch's constructor checks that
need nothing else) and hands the validated spec to :func:`build`. A spec is any object with
a ``type`` whose attributes are its fields (a pydantic model is one); the factory registered
for that ``type`` receives the fields as keyword arguments, makes the remaining checks (those
that need the number of param groups, or that the library makes while building), raising
:class:`~rules.errors.ScheduleError` naming the field, and returns the node. This module and
:func:`compile_source` (expressions are compiled while validating) are all that ``schemas``
imports from the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from rules.errors import Loc
from service.engine.expressions import compile_source
from service.engine.nodes import Node

__all__ = ["FACTORIES", "Factory", "Node", "Spec", "build", "compile_source", "register"]


class Spec(Protocol):
    """A validated spec: its ``type``, and its fields as attributes."""

    @property
    def type(self) -> str: ...


Factory = Callable[..., Node]
"""``factory(loc, groups, **fields) -> Node``."""
F = TypeVar("F", bound=Factory)

FACTORIES: dict[str, Factory] = {}
"""Every scheduler ``type`` and the factory that builds it."""


def register(*types: str) -> Callable[[F], F]:
    """Register the decorated factory for ``types``."""

    def decorate(factory: F) -> F:
        for name in types:
            FACTORIES[name] = factory
        return factory

    return decorate


def build(spec: Spec, groups: int, loc: Loc = ()) -> Node:
    """The engine node of ``spec`` for ``groups`` param groups; ``loc`` is its field path."""
    return FACTORIES[spec.type](loc, groups, **fields(spec))


def fields(spec: object) -> dict[str, Any]:
    """The fields of ``spec`` (a validated model) but its ``type``."""
    return {name: value for name, value in vars(spec).items() if name != "type"}


# The factory modules register themselves; they import this module first, so it is complete
# whichever of them is imported first.
from service.engine.factories import (  # noqa: E402
    composition,
    fastai,
    hf,
    keras,
    optax,
    pytorch,
    timm,
)

del composition, fastai, hf, keras, optax, pytorch, timm
