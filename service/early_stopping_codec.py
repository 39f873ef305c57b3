"""The early-stopping part of a session document and of its history rows (JSON-ready).

Documents written before sessions had early stopping have neither key and decode to None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from schemas.numbers import format_nonfinite
from service.engine.early_stopping import EarlyStoppingConfig, EarlyStoppingState


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
