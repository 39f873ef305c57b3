"""The training-control parts of a session document and of its history rows (JSON-ready):
early stopping (options and state) and the LR range test (options and state).

Documents written before sessions had these parts lack their keys and decode to None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from schemas.numbers import format_nonfinite
from service.engine.early_stopping import EarlyStoppingConfig, EarlyStoppingState
from service.engine.lr_finder import LrFinderConfig, LrFinderState


def encode(config: EarlyStoppingConfig | None, state: EarlyStoppingState | None) -> dict[str, Any]:
    """The keys to add to a document: ``early_stopping`` (options), ``stopping`` (state)."""
    encoded: dict[str, Any] = {}
    if config is not None:
        encoded["early_stopping"] = asdict(config)
    if state is not None:
        encoded["stopping"] = {
            **asdict(state),
            "best": None if state.best is None else format_nonfinite(state.best),
        }
    return encoded


def decode(
    data: Mapping[str, Any],
) -> tuple[EarlyStoppingConfig | None, EarlyStoppingState | None]:
    """The options and state stored under the keys :func:`encode` writes (None if absent)."""
    config = data.get("early_stopping")
    state = data.get("stopping")
    return (
        None if config is None else EarlyStoppingConfig(**config),
        None
        if state is None
        else EarlyStoppingState(
            **{**state, "best": None if state["best"] is None else float(state["best"])}
        ),
    )


def _number(value: float | None) -> float | str | None:
    return None if value is None else format_nonfinite(value)


def encode_finder(config: LrFinderConfig | None, state: LrFinderState | None) -> dict[str, Any]:
    """The keys to add to a document: ``lr_finder`` (options), ``finder`` (state)."""
    encoded: dict[str, Any] = {}
    if config is not None:
        encoded["lr_finder"] = asdict(config)
    if state is not None:
        numbers = {name: _number(getattr(state, name)) for name in ("avg", "smoothed", "best")}
        encoded["finder"] = {**asdict(state), **numbers}
    return encoded


def decode_finder(data: Mapping[str, Any]) -> tuple[LrFinderConfig | None, LrFinderState | None]:
    """The options and state stored under the keys :func:`encode_finder` writes."""
    config, state = data.get("lr_finder"), data.get("finder")
    if state is not None:
        numbers = ("avg", "smoothed", "best")
        state = {**state, **{n: None if state[n] is None else float(state[n]) for n in numbers}}
    return (
        None if config is None else LrFinderConfig(**config),
        None if state is None else LrFinderState(**state),
    )
