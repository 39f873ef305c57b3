"""A one-group schedule fetched whole, for frameworks that call a schedule with a step count
(optax's ``count -> value``, Keras's ``LearningRateSchedule(step)``).

The values come from ``POST /v1/schedules`` in binary (raw float32, or an exact float64
``.npy``); steps past the end hold the last value, as optax's and Keras's own schedules hold
their end value. Needs numpy (which jax and Keras install).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lrsched_client._calls import Dtype
from lrsched_client.client import Client

if TYPE_CHECKING:
    import numpy
    import numpy.typing as npt


def fetch_table(
    spec: Mapping[str, Any],
    steps: int,
    lr: float,
    dtype: Dtype,
    client: Client | None,
    url: str | None = None,
) -> npt.NDArray[numpy.floating[Any]]:
    """The lr of ``spec`` at steps ``0..steps-1`` for one param group of lr ``lr``, fetched
    with ``client``, else with a client of ``url`` (default ``$LRSCHED_URL``).

    Raises:
        ValueError: ``steps < 1``, ``lr`` is not one number, or the schedule has several
            param groups (a framework schedule is one value per step).
        ValidationError: the service refused the spec (``errors`` name the field).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}: expected a positive integer")
    if isinstance(lr, bool) or not isinstance(lr, int | float):
        raise ValueError(f"lr={lr!r}: expected one number (one param group)")
    if client is not None:
        values = client.curve(spec, float(lr), steps, dtype=dtype)
    else:
        with Client(url) as own:
            values = own.curve(spec, float(lr), steps, dtype=dtype)
    if values.shape[0] != 1:
        raise ValueError(
            f"the schedule has {values.shape[0]} param groups; a framework schedule has one"
        )
    return values[0]
