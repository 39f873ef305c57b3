"""The LR range test (Leslie Smith) as a pure function of (config, state, step, loss),
and the learning-rate suggestions of fastai, Lightning and torch-lr-finder on its curve.

Step ``k`` (``0 <= k < num_steps``) trains with

- exponential: ``start_lr * (end_lr / start_lr) ** (k / (num_steps - 1))``
- linear: ``start_lr + (end_lr - start_lr) * k / (num_steps - 1)``

(torch-lr-finder's schedules: the last step uses ``end_lr``). Each step's loss is smoothed:

- ``debiased`` (fastai ``AvgSmoothLoss``, Lightning ``lr_find``): ``avg = smooth * avg +
  (1 - smooth) * loss`` from ``avg = 0``, smoothed ``avg / (1 - smooth ** (k + 1))``;
- ``ema`` (torch-lr-finder with ``smooth_f = 1 - smooth``): the first loss as is, then
  ``(1 - smooth) * loss + smooth * previous``.

``best`` is the least smoothed loss so far; the test stops after the step whose smoothed
loss is non-finite or above ``diverge_threshold * best`` (fastai, torch-lr-finder and
Lightning compare this way; Lightning also stops on NaN), or after step ``num_steps - 1``.

The suggestions are each library's code on the curve's (lr, smoothed loss) points, with
its own trimming and its own float32 arithmetic where it builds float32 tensors; a
suggestion the library cannot make (too few points: it raises or returns None) is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

Mode = Literal["exponential", "linear"]
Smoothing = Literal["debiased", "ema"]
StopReason = Literal["diverged", "num_steps"]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class LrFinderConfig:
    """The range test's options, already checked (``start_lr < end_lr``, ``num_steps >= 2``)."""

    start_lr: float
    end_lr: float
    num_steps: int
    mode: Mode = "exponential"
    smooth: float = 0.98
    smoothing: Smoothing = "debiased"
    diverge_threshold: float = 4.0


@dataclass(frozen=True, slots=True)
class LrFinderState:
    """What the test remembers between steps.

    Attributes:
        steps: steps decided so far.
        avg: the running average (``debiased``) or the last smoothed loss (``ema``).
        smoothed: the last step's smoothed loss (None before the first step).
        best: the least smoothed loss so far.
        stop: whether the test is over; once true it stays true.
        stop_step: the step after which it stopped.
        reason: why.
    """

    steps: int = 0
    avg: float = 0.0
    smoothed: float | None = None
    best: float = math.inf
    stop: bool = False
    stop_step: int | None = None
    reason: StopReason | None = None


def lr_at(config: LrFinderConfig, step: int) -> float:
    """The learning rate step ``step`` trains with (see the module docstring)."""
    fraction = step / (config.num_steps - 1)
    if config.mode == "linear":
        return config.start_lr + (config.end_lr - config.start_lr) * fraction
    return float(config.start_lr * (config.end_lr / config.start_lr) ** fraction)


def _smoothed(config: LrFinderConfig, state: LrFinderState, loss: float) -> tuple[float, float]:
    """The running average and the smoothed loss after ``loss``."""
    if config.smoothing == "ema":
        value = loss if state.steps == 0 else (1 - config.smooth) * loss + config.smooth * state.avg
        return value, value
    avg = config.smooth * state.avg + (1 - config.smooth) * loss
    return avg, avg / (1 - config.smooth ** (state.steps + 1))


def step(config: LrFinderConfig, state: LrFinderState, loss: float) -> LrFinderState:
    """The state after the loss of step ``state.steps`` (a stopped state is returned as is)."""
    if state.stop:
        return state
    avg, smoothed = _smoothed(config, state, loss)
    best = min(state.best, smoothed) if not math.isnan(smoothed) else state.best
    current = state.steps
    updated = replace(state, steps=current + 1, avg=avg, smoothed=smoothed, best=best)
    if not math.isfinite(smoothed) or smoothed > config.diverge_threshold * best:
        return replace(updated, stop=True, stop_step=current, reason="diverged")
    if current + 1 >= config.num_steps:
        return replace(updated, stop=True, stop_step=current, reason="num_steps")
    return updated


# -- suggestions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suggestions:
    """Each library's suggested learning rate on one curve (None: it makes none)."""

    fastai_minimum: float | None
    fastai_steep: float | None
    fastai_valley: float | None
    fastai_slide: float | None
    lightning: float | None
    torch_lr_finder: float | None


def suggest(lrs: Sequence[float], losses: Sequence[float], num_steps: int) -> Suggestions:
    """All suggestions for the points ``(lrs[i], losses[i])`` (smoothed losses) of a test
    configured for ``num_steps`` steps (fastai trims by its ``num_it``)."""
    lr, loss = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    f_lr, f_loss = _fastai_points(lr, loss, num_steps)
    return Suggestions(
        fastai_minimum=_fastai_minimum(f_lr, f_loss),
        fastai_steep=_fastai_steep(f_lr, f_loss),
        fastai_valley=_fastai_valley(f_lr, f_loss),
        fastai_slide=_fastai_slide(f_lr, f_loss),
        lightning=_lightning(lr, loss),
        torch_lr_finder=_torch_lr_finder(lr, loss),
    )


def _fastai_points(
    lrs: npt.NDArray[np.float64], losses: npt.NDArray[np.float64], num_it: int
) -> tuple[F32, F32]:
    """``Learner.lr_find``: ``tensor(recorder.lrs[num_it//10:-5])`` (float32), the same for
    the losses, cut at the first NaN loss."""
    lr = lrs[num_it // 10 : -5].astype(np.float32)
    with np.errstate(over="ignore"):
        loss = losses[num_it // 10 : -5].astype(np.float32)
    nans = np.flatnonzero(np.isnan(loss))
    if len(nans):
        lr, loss = lr[: nans[0]], loss[: nans[0]]
    return lr, loss


def _fastai_minimum(lrs: F32, losses: F32) -> float | None:
    """``fastai.callback.schedule.minimum``: a tenth of the lr of the least loss."""
    if len(losses) == 0:
        return None
    return float(lrs[np.argmin(losses)]) / 10


def _fastai_steep(lrs: F32, losses: F32) -> float | None:
    """``steep``: the lr where the loss falls fastest per unit of log(lr) (float32)."""
    if len(losses) < 2:
        return None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    return float(lrs[_argmin_nan_first(grads)])


def _argmin_nan_first(values: F32) -> int:
    """torch's ``argmin``: the first NaN if there is one, else the first least value."""
    nans = np.flatnonzero(np.isnan(values))
    return int(nans[0]) if len(nans) else int(np.argmin(values))


def _fastai_valley(lrs: F32, losses: F32) -> float | None:
    """``valley``: the lr 1/3 + 1/6 of the way into the longest strictly decreasing run of
    losses (a longest decreasing subsequence ending at the first index reaching each record)."""
    n = len(losses)
    if n == 0:
        return None
    lds = np.ones(n, dtype=np.int64)
    max_start = max_end = 0
    for i in range(1, n):
        longer = losses[i] < losses[:i]
        if longer.any():
            lds[i] = int(lds[:i][longer].max()) + 1
        if lds[max_end] < lds[i]:
            max_end = i
            max_start = max_end - int(lds[max_end])
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


def _fastai_slide(lrs: F32, losses: F32, lr_diff: int = 15, thresh: float = 0.005) -> float | None:
    """``slide``: walk left from the end until the loss gradient ``lr_diff`` points apart
    differs by at most ``thresh``; the lr reached."""
    if len(losses) < max(lr_diff + 1, 2):
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        grad = np.gradient(losses)
    r_idx, l_idx = -1, -1 - lr_diff
    local_min_lr = lrs[l_idx]
    with np.errstate(invalid="ignore"):
        while l_idx >= -len(losses) and abs(grad[r_idx] - grad[l_idx]) > thresh:
            local_min_lr = lrs[l_idx]
            r_idx -= 1
            l_idx -= 1
    return float(local_min_lr)


def _lightning(lrs: npt.NDArray[np.float64], losses: npt.NDArray[np.float64]) -> float | None:
    """``_LRFinder.suggestion(skip_begin=10, skip_end=1)``: the steepest d(loss)/d(lr) of the
    finite points, in float32 (``torch.gradient`` with the lrs as spacing)."""
    index = np.arange(len(losses))[10:-1]
    with np.errstate(over="ignore"):
        loss = losses[10:-1].astype(np.float32)
    lr = lrs[10:-1].astype(np.float32)
    finite = np.isfinite(loss)
    loss, lr, index = loss[finite], lr[finite], index[finite]
    if len(loss) < 2:
        return None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        gradient = np.gradient(loss, lr)  # torch.gradient's formula (ported from numpy's)
    return float(lrs[index[_argmin_nan_first(gradient)]])


def _torch_lr_finder(lrs: npt.NDArray[np.float64], losses: npt.NDArray[np.float64]) -> float | None:
    """``LRFinder.plot(skip_start=10, skip_end=5, suggest_lr=True)``: the lr of the least
    ``np.gradient`` of the trimmed losses (it needs at least 17 points)."""
    if len(losses) < 10 + 5 + 2:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        gradient = np.gradient(losses[10:-5])
    return float(lrs[10:-5][int(np.argmin(gradient))])
