"""optax adapter: a schedule computed by the service, as an optax schedule.

Import it explicitly (``from lrsched_client import optax as remote``); it needs jax, which
``import lrsched_client`` never imports. Install with ``pip install 'lrsched-client[optax]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from lrsched_client._calls import Dtype
from lrsched_client._table import fetch_table
from lrsched_client.client import Client

__all__ = ["schedule"]


def schedule(
    spec: Mapping[str, Any],
    steps: int,
    *,
    lr: float = 0.001,
    dtype: Dtype = "float32",
    client: Client | None = None,
) -> Callable[[Any], jax.Array]:
    """An optax schedule (``count -> value``) with the service's values of ``spec``.

    The value at count ``k`` is the lr at step ``k`` of the scheduler ``spec`` built on an
    optimizer of lr ``lr`` (``0 <= k < steps``); counts past the end hold the last value and
    negative counts the first, as optax's own schedules hold their end value. The values are
    fetched once into a ``jnp`` array and looked up by index, so the schedule is pure and
    traceable: usable under ``jit``/``vmap`` and in ``optax.inject_hyperparams``.

    Args:
        spec: any spec the service computes, e.g. ``{"type": "OneCycleLR", "max_lr": 0.1,
            "total_steps": 1000}`` or ``{"type": "optax.warmup_cosine_decay", ...}``.
        steps: how many steps to fetch (the table's length; steps, not epochs).
        lr: the optimizer's lr the spec is applied to (one param group).
        dtype: ``"float32"`` (raw float32 transfer) or ``"float64"`` (exact; needs
            ``jax_enable_x64``).
        client: the client to fetch with; default ``Client()`` (``LRSCHED_URL``).

    Raises:
        ValueError: float64 without ``jax_enable_x64``, or a bad ``steps``/``lr``.
        ValidationError: the service refused the spec.
    """
    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            'dtype="float64" needs jax_enable_x64 (jax.config.update("jax_enable_x64", True))'
        )
    table = jnp.asarray(fetch_table(spec, steps, lr, dtype, client), dtype=dtype)
    last = steps - 1

    def lookup(count: Any) -> jax.Array:
        return table[jnp.clip(jnp.asarray(count), 0, last)]

    return lookup
