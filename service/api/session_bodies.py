"""A ``POST /v1/sessions`` body as a new session: from ReduceLROnPlateau options, from a
saved ``state_dict`` (resumed), or early stopping alone."""

from __future__ import annotations

from typing import Any

from rules.errors import ScheduleError
from schemas.sessions import SessionCreate
from service import sessions
from service.engine import registry
from service.engine.plateau import PlateauConfig, PlateauState

DEFAULT_LR = 0.001
"""The lr of a session created without one (PyTorch optimizers' usual default)."""


def new_session(body: SessionCreate) -> sessions.Session:
    """The session ``body`` asks for; an inconsistent body is a 422 naming the field."""
    options: dict[str, Any] = {
        "world_size": body.world_size,
        "reduce": body.reduce,
        "warmup_steps": body.warmup_steps,
        "warmup_start_factor": body.warmup_start_factor,
        "early_stopping": None
        if body.early_stopping is None
        else registry.early_stopping_config(body.early_stopping),
    }
    if body.schedule is None and body.state_dict is None:  # early stopping only
        return sessions.new_session(None, None, _lrs(body.lr, None), **options)
    if body.schedule is not None:
        lrs = _lrs(body.lr, None)
        try:
            config = registry.plateau_config(body.schedule, len(lrs))
        except ScheduleError as error:
            raise error.within("schedule") from None
        default_min_lr = None if isinstance(body.schedule.min_lr, list) else body.schedule.min_lr
        return sessions.new_session(config, default_min_lr, lrs, **options)
    return _resumed(body, options)


def _resumed(body: SessionCreate, options: dict[str, Any]) -> sessions.Session:
    """The session a saved PyTorch ``state_dict`` continues."""
    saved = body.state_dict
    assert saved is not None
    lrs = _lrs(body.lr, saved.last_lr)
    if len(saved.min_lrs) != len(lrs):
        raise ScheduleError(
            f"expected {len(lrs)} min_lrs (one per param group in lr), got {len(saved.min_lrs)}",
            ("state_dict", "min_lrs"),
        )
    config = PlateauConfig(
        mode=saved.mode,
        factor=saved.factor,
        patience=saved.patience,
        threshold=saved.threshold,
        threshold_mode=saved.threshold_mode,
        cooldown=saved.cooldown,
        min_lrs=tuple(saved.min_lrs),
        eps=saved.eps,
    )
    resumed = PlateauState(
        lrs=lrs,
        best=saved.best,
        num_bad_epochs=saved.num_bad_epochs,
        cooldown_counter=saved.cooldown_counter,
        last_epoch=saved.last_epoch,
    )
    return sessions.new_session(config, saved.default_min_lr, lrs, resumed=resumed, **options)


def _lrs(lr: float | list[float] | None, fallback: list[float] | None) -> tuple[float, ...]:
    """The lr of every param group: the body's, else the saved one, else ``DEFAULT_LR``."""
    if lr is None:
        return tuple(fallback) if fallback else (DEFAULT_LR,)
    return tuple(lr) if isinstance(lr, list) else (lr,)
