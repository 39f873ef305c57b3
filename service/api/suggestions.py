"""The field names a request body accepts at a place in it, read off the body's pydantic
model, so that an unknown field can be answered with the nearest known ones."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def fields_at(model: Any, path: Sequence[str | int], body: Any) -> list[str]:
    """The names (aliases where set) of the fields the object at ``path`` in ``body`` may
    have, for a body of type ``model``; ``[]`` where the type cannot be told."""
    annotation, node = model, body
    for part in path:
        annotation = _resolved(annotation, node)
        if _is_model(annotation):
            annotation = _field_annotation(annotation, part)
        else:
            arguments = get_args(annotation)
            annotation = arguments[-1] if arguments else None  # list[X]: X, dict[K, V]: V
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return []
        if annotation is None:
            return []
    annotation = _resolved(annotation, node)
    if not _is_model(annotation):
        return []
    return [field.alias or name for name, field in annotation.model_fields.items()]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_annotation(model: type[BaseModel], part: str | int) -> Any:
    for name, field in model.model_fields.items():
        if part in (name, field.alias):
            return field.annotation
    return None


def _resolved(annotation: Any, node: Any) -> Any:
    """``annotation`` without ``Annotated``, and for a union the member ``node`` is meant
    for: the model whose ``type`` is the node's, else the first model (an object) or list."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) not in (Union, types.UnionType):
        return annotation
    members = [_resolved(member, node) for member in get_args(annotation)]
    if isinstance(node, dict):
        models = [member for member in members if _is_model(member)]
        tagged = [model for model in models if node.get("type") in _type_tags(model)]
        return (tagged or models or [None])[0]
    if isinstance(node, list):
        return next((member for member in members if get_origin(member) is list), None)
    return None


def _type_tags(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return ()
    return get_args(field.annotation)
