"""The engine's entry point for the wire contract: scheduler ``type`` -> factory -> node.

``schemas`` validates a request's shape (types, ranges, PyTorch's constructor checks that
need nothing else) and hands the validated spec to :func:`build`. A spec is any object with
a ``type`` whose attributes are its fields (a pydantic model is one); the factory registered
for that ``type`` receives the fields as keyword arguments, makes the remaining checks (those
that need the number of param groups, or that the library makes while building), raising
:class:`~rules.errors.ScheduleError` naming the field, and returns the node. This module and
:func:`compile_source` (expressions are compiled while validating) are all that ``schemas``
imports from the engine.

The training-control rules' options (ReduceLROnPlateau, early stopping, the LR range test)
enter the same way, validated by ``schemas`` and handed over by the service:
:func:`plateau_config`, :func:`early_stopping_config`, :func:`lr_finder_config`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from typing import Any, Protocol, TypeVar

from rules.errors import Loc
from service.engine.early_stopping import EarlyStoppingConfig
from service.engine.expressions import compile_source
from service.engine.factories import training_control
from service.engine.lr_finder import LrFinderConfig
from service.engine.nodes import Node
from service.engine.plateau import PlateauConfig

__all__ = [
    "FACTORIES",
    "Factory",
    "GivenOptions",
    "Node",
    "Spec",
    "build",
    "compile_source",
    "early_stopping_config",
    "lr_finder_config",
    "plateau_config",
    "register",
]


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


class GivenOptions(Protocol):
    """Validated options that also know which of them the request gave (a pydantic model's
    ``model_fields_set``): where an option may be given in two ways, giving both is refused."""

    @property
    def model_fields_set(self) -> set[str]: ...


def plateau_config(spec: GivenOptions, groups: int) -> PlateauConfig:
    """The ReduceLROnPlateau rule of ``spec`` for ``groups`` param groups.

    Raises:
        ScheduleError: as :func:`~service.engine.factories.training_control.reduce_lr_on_plateau`,
            the field's path relative to ``spec``.
    """
    given = "threshold" in spec.model_fields_set
    return training_control.reduce_lr_on_plateau(groups, threshold_given=given, **fields(spec))


def early_stopping_config(spec: object) -> EarlyStoppingConfig:
    """The early-stopping rule of ``spec``."""
    return training_control.early_stopping(**fields(spec))


def lr_finder_config(spec: object) -> LrFinderConfig:
    """The LR range test of ``spec``: its options that are the rule's (a session's own,
    ``world_size`` and the like, are not)."""
    return LrFinderConfig(
        **{field.name: getattr(spec, field.name) for field in dataclass_fields(LrFinderConfig)}
    )


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
