"""Keras 3 schedules (``keras.optimizers.schedules``): the value is the lr of every group;
``name`` is accepted on the wire and ignored."""

from __future__ import annotations

from service.engine.factories.closed import register_closed
from service.engine.families import keras
from service.engine.families.base import absolute

register_closed(
    {
        "keras.ExponentialDecay": keras.exponential_decay,
        "keras.PiecewiseConstantDecay": keras.piecewise_constant,
        "keras.PolynomialDecay": keras.polynomial_decay,
        "keras.InverseTimeDecay": keras.inverse_time_decay,
        "keras.CosineDecay": keras.cosine_decay,
        "keras.CosineDecayRestarts": keras.cosine_decay_restarts,
    },
    absolute,
    ignored=("name",),
)
