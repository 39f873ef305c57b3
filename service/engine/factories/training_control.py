"""The training-control rules' configs from their validated options: ReduceLROnPlateau
(shared by replay and sessions) and early stopping. (The LR range test's options are its
config as they are: :func:`service.engine.registry.lr_finder_config`.)

As the schedule factories do, these take the options as keyword arguments and make the
checks that need the optimizer's param groups, or that decide what options mean together
(``min_delta`` beside ``threshold``); ``schemas`` makes the checks of the wire shape.
"""

from __future__ import annotations

from typing import Literal

from rules.errors import ScheduleError
from service.engine.early_stopping import EarlyStoppingConfig, Semantics
from service.engine.plateau import PlateauConfig

ThresholdMode = Literal["rel", "abs", "both"]


def reduce_lr_on_plateau(
    groups: int,
    *,
    mode: Literal["min", "max"],
    factor: float,
    patience: int,
    threshold: float,
    threshold_mode: ThresholdMode,
    cooldown: int,
    min_lr: float | list[float],
    eps: float,
    patience_semantics: Literal["torch", "keras"],
    min_delta: float | None,
    sign_safe_threshold: bool,
    accumulation_size: int,
    threshold_given: bool,
) -> PlateauConfig:
    """``ReduceLROnPlateau`` on an optimizer with ``groups`` param groups; ``threshold_given``
    says whether the request gave ``threshold`` (see :func:`_margins`).

    Raises:
        ScheduleError: as :func:`_min_lrs`, then as :func:`_margins`.
    """
    min_lrs = _min_lrs(min_lr, groups)
    threshold, absolute = _margins(threshold, threshold_mode, min_delta, threshold_given)
    return PlateauConfig(
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lrs=min_lrs,
        eps=eps,
        patience_semantics=patience_semantics,
        min_delta=absolute,
        sign_safe=sign_safe_threshold,
        accumulation_size=accumulation_size,
    )


def _min_lrs(min_lr: float | list[float], groups: int) -> tuple[float, ...]:
    """One floor per param group: a number for all of them, or a list of one each.

    Raises:
        ScheduleError: a list whose length is not ``groups`` (loc ``("min_lr",)``),
            PyTorch's ``expected N min_lrs, got M``.
    """
    if not isinstance(min_lr, list):
        return (min_lr,) * groups
    if len(min_lr) != groups:
        raise ScheduleError(
            f"expected {groups} min_lrs, got {len(min_lr)} (one per param group in lr)",
            ("min_lr",),
        )
    return tuple(min_lr)


def _margins(
    threshold: float, threshold_mode: ThresholdMode, min_delta: float | None, threshold_given: bool
) -> tuple[float, float]:
    """The ``(threshold, min_delta)`` of the config: ``min_delta`` (Keras's and fastai's
    absolute margin) is the threshold of ``threshold_mode="abs"`` and the absolute part of
    ``"both"`` (optax ``atol``, ``threshold`` being ``rtol``).

    Raises:
        ScheduleError: ``min_delta`` with ``"rel"``, or with ``"abs"`` and ``threshold``
            given too (loc ``("min_delta",)``).
    """
    if min_delta is None:
        return threshold, 0.0
    if threshold_mode == "rel":
        raise ScheduleError(
            'min_delta is an absolute margin: use threshold_mode "abs" or "both"', ("min_delta",)
        )
    if threshold_mode == "both":
        return threshold, min_delta
    if threshold_given:
        raise ScheduleError(
            'give threshold or min_delta with threshold_mode "abs", not both', ("min_delta",)
        )
    return min_delta, 0.0


def early_stopping(
    *,
    semantics: Semantics,
    mode: Literal["min", "max"],
    patience: int,
    min_delta: float,
    baseline: float | None,
    start_from_epoch: int,
    check_finite: bool | None,
    stopping_threshold: float | None,
    divergence_threshold: float | None,
) -> EarlyStoppingConfig:
    """One library's early-stopping callback; ``check_finite`` not given is Lightning's
    default, true. (``schemas`` refuses an option of another library than ``semantics``.)"""
    return EarlyStoppingConfig(
        semantics=semantics,
        mode=mode,
        patience=patience,
        min_delta=min_delta,
        baseline=baseline,
        start_from_epoch=start_from_epoch,
        check_finite=True if check_finite is None else check_finite,
        stopping_threshold=stopping_threshold,
        divergence_threshold=divergence_threshold,
    )
