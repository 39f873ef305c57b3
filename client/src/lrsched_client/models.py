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


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


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
        stop: early stopping says stop training (false without early stopping).
        best_epoch: early stopping's best epoch so far (None: none, or no early stopping).
        best_metric: the metric of ``best_epoch``.
    """

    epoch: int
    decided: bool
    lr: tuple[float, ...]
    reduced: bool
    state: PlateauProgress
    waiting_for: tuple[int, ...]
    stop: bool = False
    best_epoch: int | None = None
    best_metric: float | None = None

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
            stop=bool(data.get("stop", False)),
            best_epoch=data.get("best_epoch"),
            best_metric=_optional_float(data.get("best_metric")),
        )


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session's current state and options (``GET /v1/sessions/{id}``).

    Attributes:
        epoch: the next epoch the session expects a report for.
        pending_ranks: the ranks that already reported that epoch.
        schedule: the ReduceLROnPlateau options in force (None: early stopping only).
        early_stopping: the early-stopping options (None: none).
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
    schedule: Mapping[str, Any] | None
    ttl_seconds: int
    expires_at: float
    early_stopping: Mapping[str, Any] | None = None

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
            schedule=None
            if data["schedule"] is None
            else {key: from_wire(value) for key, value in data["schedule"].items()},
            ttl_seconds=int(data["ttl_seconds"]),
            expires_at=float(data["expires_at"]),
            early_stopping=data.get("early_stopping"),
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


@dataclass(frozen=True, slots=True)
class FinderStep:
    """The answer to an LR range test report (``POST /v1/lr-finder/{id}/reports``).

    Attributes:
        lr: the lr to train the next step with (the last one once ``stop``).
        stop: the test is over (diverged or ``num_steps`` reached), for every rank.
        stop_reason: ``"diverged"``, ``"num_steps"`` or None.
        smoothed_loss: the step's smoothed loss (None while ``decided`` is false).
    """

    step: int
    decided: bool
    lr: float
    stop: bool
    stop_reason: str | None
    smoothed_loss: float | None
    waiting_for: tuple[int, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FinderStep:
        """Parse a report answer."""
        return cls(
            step=int(data["step"]),
            decided=bool(data["decided"]),
            lr=float(data["lr"]),
            stop=bool(data["stop"]),
            stop_reason=data.get("stop_reason"),
            smoothed_loss=_optional_float(data.get("smoothed_loss")),
            waiting_for=tuple(int(rank) for rank in data.get("waiting_for", ())),
        )


@dataclass(frozen=True, slots=True)
class FinderState:
    """An LR range test now (``GET /v1/lr-finder/{id}``): the next step and its lr."""

    step: int
    lr: float
    stop: bool
    stop_reason: str | None
    options: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FinderState:
        """Parse the view."""
        return cls(
            step=int(data["step"]),
            lr=float(data["lr"]),
            stop=bool(data["stop"]),
            stop_reason=data.get("stop_reason"),
            options=dict(data["options"]),
        )


@dataclass(frozen=True, slots=True)
class FinderResult:
    """An LR range test's curve and each library's suggestion (``GET .../result``).

    ``suggestions`` maps ``fastai_minimum``, ``fastai_steep``, ``fastai_valley``,
    ``fastai_slide``, ``lightning`` and ``torch_lr_finder`` to an lr (None: none).
    """

    lr: tuple[float, ...]
    loss: tuple[float, ...]
    smoothed_loss: tuple[float, ...]
    stop: bool
    stop_reason: str | None
    suggestions: Mapping[str, float | None]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FinderResult:
        """Parse a result."""
        suggested = data["suggestions"]
        flat = {f"fastai_{name}": value for name, value in suggested["fastai"].items()}
        flat |= {
            "lightning": suggested["lightning"],
            "torch_lr_finder": suggested["torch_lr_finder"],
        }
        return cls(
            lr=_floats(data["lr"]),
            loss=_floats(data["loss"]),
            smoothed_loss=_floats(data["smoothed_loss"]),
            stop=bool(data["stop"]),
            stop_reason=data.get("stop_reason"),
            suggestions={name: _optional_float(value) for name, value in flat.items()},
        )
