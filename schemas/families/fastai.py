"""fastai's ``Learner.fit_one_cycle`` and ``Learner.fit_flat_cos``, as ``fastai.<name>``.

Step ``k`` is the k-th training batch (from 0, over all epochs): ``pos = k / (n_epoch *
n_iter)`` with ``n_iter`` the batches per epoch (``len(dls.train)``). ``lr_max`` / ``lr``
default to the optimizer's lr of each param group (fastai's ``learn.lr`` / hypers) and may be
a list, one per group (fastai's discriminative lrs).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel

from schemas.families.common import PositiveSteps, Real, config
from schemas.fields import PerGroup

_DOCS = "https://docs.fast.ai/callback.schedule.html#learner.{}"


def _fastai_fraction(value: float) -> float:
    """fastai's own checks of ``pct_start`` (``combine_scheds([pct, 1 - pct], ...)``):
    ``assert sum(pcts) == 1.`` in float64, then ``assert torch.all(tensor([0, pct, 1 - pct])
    >= 0)`` in float32, which lets through exactly ``[-2**-150, 1]`` (a tinier negative
    rounds to ``-0.0``)."""
    with np.errstate(over="ignore"):
        refused = value + (1 - value) != 1.0 or np.float32(value) < 0 or np.float32(1 - value) < 0
    if refused:
        raise ValueError(
            f"pct_start={value!r}: fastai asserts 0 <= pct_start <= 1 (AssertionError in "
            "combine_scheds)"
        )
    return value


PctStart = Annotated[Real, AfterValidator(_fastai_fraction)]
"""The fraction of training in the first phase, checked as fastai checks it."""


class FastaiOneCycle(BaseModel):
    """fastai `fit_one_cycle`: cosine `lr_max/div -> lr_max -> lr_max/div_final`; momentum
    `moms[0] -> moms[1] -> moms[2]` on the same phases."""

    model_config = config(
        {"type": "fastai.one_cycle", "n_epoch": 4, "n_iter": 250, "lr_max": 0.1},
        _DOCS.format("fit_one_cycle"),
    )
    type: Literal["fastai.one_cycle"]
    n_epoch: PositiveSteps
    n_iter: PositiveSteps
    lr_max: PerGroup | None = None
    div: Real = 25.0
    div_final: Real = 1e5
    pct_start: PctStart = 0.25
    moms: tuple[Real, Real, Real] = (0.95, 0.85, 0.95)


class FastaiFlatCos(BaseModel):
    """fastai `fit_flat_cos`: flat at `lr` for `pct_start` of training, then cosine to
    `lr/div_final` (no warmup)."""

    model_config = config(
        {"type": "fastai.flat_cos", "n_epoch": 4, "n_iter": 250, "lr": 0.1},
        _DOCS.format("fit_flat_cos"),
    )
    type: Literal["fastai.flat_cos"]
    n_epoch: PositiveSteps
    n_iter: PositiveSteps
    lr: PerGroup | None = None
    div_final: Real = 1e5
    pct_start: PctStart = 0.75


FASTAI_MODELS = (FastaiOneCycle, FastaiFlatCos)
