"""Keras 3 learning-rate schedules (``keras.optimizers.schedules``), as ``keras.<ClassName>``.

The value is the lr of every param group (the request's ``lr`` is not used; wrap in
``scale`` for per-group values); step ``k`` is ``optimizer.iterations``. ``name`` is accepted
(so a serialized config copies over) and ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from schemas.families.common import Real, config
from schemas.numbers import A_NUMBER, Boolean
from service.limits import MAX_INT, MAX_MILESTONES, MAX_MULTIPLIER, MAX_NAME_CHARS

_DOCS = "https://keras.io/api/optimizers/learning_rate_schedules/{}/"
DecaySteps = Annotated[
    float, Field(gt=0, le=float(MAX_INT), description="Must be > 0 (Keras raises)."), A_NUMBER
]
Name = Annotated[str | None, Field(max_length=MAX_NAME_CHARS, description="Ignored.")]


class KerasExponentialDecay(BaseModel):
    """Keras `ExponentialDecay`: `initial_learning_rate * decay_rate ** (k / decay_steps)`."""

    model_config = config(
        {
            "type": "keras.ExponentialDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 100,
            "decay_rate": 0.96,
            "staircase": True,
        },
        _DOCS.format("exponential_decay"),
    )
    type: Literal["keras.ExponentialDecay"]
    initial_learning_rate: Real
    decay_steps: DecaySteps
    decay_rate: Real
    staircase: Boolean = False
    name: Name = None


class KerasPiecewiseConstantDecay(BaseModel):
    """Keras `PiecewiseConstantDecay`: `values[j]` for `boundaries[j-1] < k <= boundaries[j]`."""

    model_config = config(
        {
            "type": "keras.PiecewiseConstantDecay",
            "boundaries": [300, 600],
            "values": [0.1, 0.01, 0.001],
        },
        _DOCS.format("piecewise_constant_decay"),
    )
    type: Literal["keras.PiecewiseConstantDecay"]
    boundaries: Annotated[list[Real], Field(min_length=1, max_length=MAX_MILESTONES)]
    values: Annotated[list[Real], Field(min_length=2, max_length=MAX_MILESTONES + 1)]
    name: Name = None

    @field_validator("values")
    @classmethod
    def _lengths(cls, values: list[float], info: ValidationInfo) -> list[float]:
        boundaries = info.data.get("boundaries")
        if boundaries is not None and len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries of length {len(boundaries)}, and values of "
                f"length {len(values)}."
            )
        return values


class KerasPolynomialDecay(BaseModel):
    """Keras `PolynomialDecay`: `(init - end)(1 - k/T)^power + end`, or cycling (`cycle`)."""

    model_config = config(
        {
            "type": "keras.PolynomialDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 500,
            "end_learning_rate": 0.001,
            "power": 0.5,
            "cycle": True,
        },
        _DOCS.format("polynomial_decay"),
    )
    type: Literal["keras.PolynomialDecay"]
    initial_learning_rate: Real
    decay_steps: DecaySteps
    end_learning_rate: Real = 0.0001
    power: Real = 1.0
    cycle: Boolean = False
    name: Name = None


class KerasInverseTimeDecay(BaseModel):
    """Keras `InverseTimeDecay`: `initial_learning_rate / (1 + decay_rate k / decay_steps)`."""

    model_config = config(
        {
            "type": "keras.InverseTimeDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 100,
            "decay_rate": 0.5,
        },
        _DOCS.format("inverse_time_decay"),
    )
    type: Literal["keras.InverseTimeDecay"]
    initial_learning_rate: Real
    decay_steps: DecaySteps
    decay_rate: Real
    staircase: Boolean = False
    name: Name = None


class KerasCosineDecay(BaseModel):
    """Keras `CosineDecay`: optional linear warmup to `warmup_target`, then cosine (+ `alpha`).

    `decay_steps` excludes the warmup: the decay ends at `warmup_steps + decay_steps`.
    """

    model_config = config(
        {
            "type": "keras.CosineDecay",
            "initial_learning_rate": 0.0,
            "decay_steps": 900,
            "alpha": 0.01,
            "warmup_target": 0.1,
            "warmup_steps": 100,
        },
        _DOCS.format("cosine_decay"),
    )
    type: Literal["keras.CosineDecay"]
    initial_learning_rate: Real
    decay_steps: DecaySteps
    alpha: Real = 0.0
    name: Name = None
    warmup_target: Real | None = None
    warmup_steps: Annotated[float, Field(ge=0, le=float(MAX_INT)), A_NUMBER] = 0


class KerasCosineDecayRestarts(BaseModel):
    """Keras `CosineDecayRestarts` (SGDR): periods grow by `t_mul`, peaks by `m_mul`; forever."""

    model_config = config(
        {
            "type": "keras.CosineDecayRestarts",
            "initial_learning_rate": 0.1,
            "first_decay_steps": 100,
            "t_mul": 2.0,
            "m_mul": 0.8,
            "alpha": 0.01,
        },
        _DOCS.format("cosine_decay_restarts"),
    )
    type: Literal["keras.CosineDecayRestarts"]
    initial_learning_rate: Real
    first_decay_steps: DecaySteps
    t_mul: Annotated[float, Field(gt=0, le=float(MAX_MULTIPLIER)), A_NUMBER] = 2.0
    m_mul: Real = 1.0
    alpha: Real = 0.0
    name: Name = None


KERAS_MODELS = (
    KerasExponentialDecay,
    KerasPiecewiseConstantDecay,
    KerasPolynomialDecay,
    KerasInverseTimeDecay,
    KerasCosineDecay,
    KerasCosineDecayRestarts,
)
