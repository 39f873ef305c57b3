"""The service's answers as small frozen records (non-finite values back as floats).

JSON has no infinities or NaN, so the service writes them as ``"inf"``, ``"-inf"`` and
``"nan"``; these records hold real floats again, and :func:`wire_number` does the reverse
for what the client sends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HistoryRow",
    "PlateauProgress",
    "Replay",
    "Report",
    "SessionState",
    "from_wire",
    "wire_number",
]


def wire_number(value: float) -> float | str:
    """``value`` as the service accepts it: a JSON number, or ``"inf"``/``"-inf"``/``"nan"``."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def from_wire(value: Any) -> Any:
    """``value`` with ``"inf"``/``"-inf"``/``"nan"`` strings (also inside lists) as floats."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    return value


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


@dataclass(frozen=True, slots=True)
class PlateauProgress:
    """The plateau rule's counters (PyTorch's ``ReduceLROnPlateau`` attributes)."""

    best: float
    num_bad_epochs: int
    cooldown_counter: int
    last_epoch: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlateauProgress:
        """Parse the service's ``state`` object."""
        return cls(
            best=float(data["best"]),
            num_bad_epochs=int(data["num_bad_epochs"]),
            cooldown_counter=int(data["cooldown_counter"]),
            last_epoch=int(data["last_epoch"]),
        )


@dataclass(frozen=True, slots=True)
class Report:
    """The answer to a report: the epoch's decision, or that it still waits for ranks.

    Attributes:
        lr: the lr of every param group to use now (while ``decided`` is false: the lr
            before this epoch's decision).
        reduced: whether this epoch cut the lr.
        waiting_for: the ranks that have not reported this epoch yet.
    """

    epoch: int
    decided: bool
    lr: tuple[float, ...]
    reduced: bool
    state: PlateauProgress
    waiting_for: tuple[int, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """Parse a ``POST /v1/sessions/{id}/reports`` answer."""
        return cls(
            epoch=int(data["epoch"]),
            decided=bool(data["decided"]),
            lr=_floats(data["lr"]),
            reduced=bool(data["reduced"]),
            state=PlateauProgress.from_json(data["state"]),
            waiting_for=tuple(int(rank) for rank in data.get("waiting_for", ())),
        )


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session's current state and options (``GET /v1/sessions/{id}``).

    Attributes:
        epoch: the next epoch the session expects a report for.
        pending_ranks: the ranks that already reported that epoch.
        schedule: the ReduceLROnPlateau options in force.
    """

    id: str
    lr: tuple[float, ...]
    epoch: int
    best: float
    num_bad_epochs: int
    cooldown_counter: int
    last_epoch: int
    pending_ranks: tuple[int, ...]
    world_size: int
    reduce: str
    warmup_steps: int
    warmup_start_factor: float
    in_warmup: bool
    schedule: Mapping[str, Any]
    ttl_seconds: int
    expires_at: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionState:
        """Parse a ``GET /v1/sessions/{id}`` answer."""
        return cls(
            id=str(data["id"]),
            lr=_floats(data["lr"]),
            epoch=int(data["epoch"]),
            best=float(data["best"]),
            num_bad_epochs=int(data["num_bad_epochs"]),
            cooldown_counter=int(data["cooldown_counter"]),
            last_epoch=int(data["last_epoch"]),
            pending_ranks=tuple(int(rank) for rank in data["pending_ranks"]),
            world_size=int(data["world_size"]),
            reduce=str(data["reduce"]),
            warmup_steps=int(data["warmup_steps"]),
            warmup_start_factor=float(data["warmup_start_factor"]),
            in_warmup=bool(data["in_warmup"]),
            schedule={key: from_wire(value) for key, value in data["schedule"].items()},
            ttl_seconds=int(data["ttl_seconds"]),
            expires_at=float(data["expires_at"]),
        )


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One decided epoch: the combined metric, each rank's metric, the lr, whether cut."""

    epoch: int
    metric: float
    metrics: tuple[float, ...]
    lr: tuple[float, ...]
    reduced: bool
    warmup: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryRow:
        """Parse one row of ``GET /v1/sessions/{id}/history``."""
        return cls(
            epoch=int(data["epoch"]),
            metric=float(data["metric"]),
            metrics=_floats(data["metrics"]),
            lr=_floats(data["lr"]),
            reduced=bool(data["reduced"]),
            warmup=bool(data["warmup"]),
        )


@dataclass(frozen=True, slots=True)
class Replay:
    """What ReduceLROnPlateau does with a metric history (``POST /v1/plateau/replay``).

    Attributes:
        lr: one row per param group, one value per metric: the lr after that ``step``.
        reduced: per metric, whether that step cut some group's lr.
    """

    lr: tuple[tuple[float, ...], ...]
    reduced: tuple[bool, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Replay:
        """Parse a replay answer."""
        return cls(
            lr=tuple(_floats(row) for row in data["lr"]),
            reduced=tuple(bool(flag) for flag in data.get("reduced", ())),
        )
