"""The session document (opaque to stores): JSON with non-finite floats spelled as
strings; and PyTorch's ``state_dict`` of a session."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from service import training_control_codec as codec
from service.engine.plateau import PlateauConfig, PlateauState, mode_worse
from service.sessions.records import (
    Decision,
    Session,
    Warmup,
)


def state_dict(session: Session) -> dict[str, Any] | None:
    """``ReduceLROnPlateau.state_dict()`` after the same steps (PyTorch's keys and values);
    None for an early-stopping-only session."""
    config, state = session.config, session.state
    if config is None:
        return None
    return {
        "factor": config.factor,
        "default_min_lr": session.default_min_lr,
        "min_lrs": list(config.min_lrs),
        "patience": config.patience,
        "cooldown": config.cooldown,
        "eps": config.eps,
        "last_epoch": state.last_epoch,
        "_last_lr": list(state.lrs),
        "mode_worse": mode_worse(config),
        "mode": config.mode,
        "threshold": config.threshold,
        "threshold_mode": config.threshold_mode,
        "best": state.best,
        "cooldown_counter": state.cooldown_counter,
        "num_bad_epochs": state.num_bad_epochs,
    }


# -- the document codec ------------------------------------------------------------------


def _num(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _float(value: float | str) -> float:
    return float(value)


def _state_json(state: PlateauState) -> dict[str, Any]:
    document: dict[str, Any] = {
        "lrs": list(state.lrs),
        "best": _num(state.best),
        "num_bad_epochs": state.num_bad_epochs,
        "cooldown_counter": state.cooldown_counter,
        "last_epoch": state.last_epoch,
    }
    if state.accumulated_count:  # only sessions with accumulation_size > 1
        document["accumulated"] = _num(state.accumulated)
        document["accumulated_count"] = state.accumulated_count
    return document


def _state(data: Mapping[str, Any]) -> PlateauState:
    return PlateauState(
        lrs=tuple(data["lrs"]),
        best=_float(data["best"]),
        num_bad_epochs=data["num_bad_epochs"],
        cooldown_counter=data["cooldown_counter"],
        last_epoch=data["last_epoch"],
        accumulated=_float(data.get("accumulated", 0.0)),
        accumulated_count=data.get("accumulated_count", 0),
    )


_VARIANT_DEFAULTS: dict[str, Any] = {
    "patience_semantics": "torch",
    "min_delta": 0.0,
    "sign_safe": False,
    "accumulation_size": 1,
}
"""Plateau variant options; documents written before they existed decode to these."""


def _config_json(config: PlateauConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {
        "mode": config.mode,
        "factor": config.factor,
        "patience": config.patience,
        "threshold": config.threshold,
        "threshold_mode": config.threshold_mode,
        "cooldown": config.cooldown,
        "min_lrs": list(config.min_lrs),
        "eps": config.eps,
        **{
            name: getattr(config, name)
            for name, default in _VARIANT_DEFAULTS.items()
            if getattr(config, name) != default
        },
    }


def _config(config: Mapping[str, Any] | None) -> PlateauConfig | None:
    if config is None:
        return None
    return PlateauConfig(
        mode=config["mode"],
        factor=config["factor"],
        patience=config["patience"],
        threshold=config["threshold"],
        threshold_mode=config["threshold_mode"],
        cooldown=config["cooldown"],
        min_lrs=tuple(config["min_lrs"]),
        eps=config["eps"],
        **{name: config.get(name, default) for name, default in _VARIANT_DEFAULTS.items()},
    )


def encode_session(session: Session) -> bytes:
    """The stored document of ``session``."""
    warmup = session.warmup
    return orjson.dumps(
        {
            "config": _config_json(session.config),
            "default_min_lr": session.default_min_lr,
            "world_size": session.world_size,
            "reduce": session.reduce,
            "state": _state_json(session.state),
            "first_epoch": session.first_epoch,
            "epoch": session.epoch,
            "pending": {str(rank): _num(m) for rank, m in sorted(session.pending.items())},
            "warmup": None
            if warmup is None
            else {
                "steps": warmup.steps,
                "start_factor": warmup.start_factor,
                "base_lrs": list(warmup.base_lrs),
            },
            **codec.encode(session.early_stopping, session.stopping),
            **codec.encode_finder(session.lr_finder, session.finder),
        }
    )


def decode_session(document: bytes) -> Session:
    """The session stored as ``document``."""
    data = orjson.loads(document)
    warmup = data["warmup"]
    early_stopping_config, stopping = codec.decode(data)
    finder_config, finder = codec.decode_finder(data)
    return Session(
        config=_config(data["config"]),
        default_min_lr=data["default_min_lr"],
        world_size=data["world_size"],
        reduce=data["reduce"],
        state=_state(data["state"]),
        first_epoch=data["first_epoch"],
        epoch=data["epoch"],
        pending={int(rank): _float(m) for rank, m in data["pending"].items()},
        warmup=None
        if warmup is None
        else Warmup(warmup["steps"], warmup["start_factor"], tuple(warmup["base_lrs"])),
        early_stopping=early_stopping_config,
        stopping=stopping,
        lr_finder=finder_config,
        finder=finder,
    )


def encode_decision(decision: Decision) -> bytes:
    """The stored history row of ``decision``."""
    return orjson.dumps(
        {
            "epoch": decision.epoch,
            "metric": _num(decision.metric),
            "metrics": [_num(m) for m in decision.metrics],
            "lrs": list(decision.lrs),
            "reduced": decision.reduced,
            "warmup": decision.warmup,
            "state": _state_json(decision.state),
            **codec.encode(None, decision.stopping),
            **codec.encode_finder(None, decision.finder),
        }
    )


def decode_decision(row: bytes) -> Decision:
    """The decision stored as history ``row``."""
    data = orjson.loads(row)
    return Decision(
        epoch=data["epoch"],
        metric=_float(data["metric"]),
        metrics=tuple(_float(m) for m in data["metrics"]),
        lrs=tuple(data["lrs"]),
        reduced=data["reduced"],
        warmup=data["warmup"],
        state=_state(data["state"]),
        stopping=codec.decode(data)[1],
        finder=codec.decode_finder(data)[1],
    )
