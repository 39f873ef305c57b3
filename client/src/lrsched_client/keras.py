"""Keras 3 adapters: a schedule computed by the service as a ``LearningRateSchedule``, and a
``Callback`` that applies a plateau session's decisions (``ReduceLROnPlateau`` shared by
every worker of a job).

Import it explicitly (``from lrsched_client.keras import RemoteSchedule``); it needs Keras
(any backend), which ``import lrsched_client`` never imports. Install with
``pip install 'lrsched-client[keras]'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from lrsched_client._calls import Dtype
from lrsched_client._table import fetch_table
from lrsched_client._waiting import MAX_POLL, POLL_INTERVAL, WAIT_TIMEOUT, until_decided
from lrsched_client.client import Client
from lrsched_client.session import Session

__all__ = ["RemotePlateau", "RemoteSchedule"]


@keras.saving.register_keras_serializable(package="lrsched")
class RemoteSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """A Keras learning-rate schedule with the service's values of ``spec``.

    ``schedule(step)`` is the lr at step ``step`` of the scheduler ``spec`` built on an
    optimizer of lr ``lr``; steps past ``steps - 1`` hold the last value (as Keras's own
    schedules hold their end value), negative steps the first. The values are fetched once,
    at construction, into a tensor looked up by index (traceable by every backend).

    Serializable: :meth:`get_config` holds the spec, not the values, so a saved model
    fetches them again when loaded (from ``url``, else ``$LRSCHED_URL``).

    Args:
        spec: any spec the service computes, e.g. ``{"type": "keras.CosineDecay", ...}``
            or PyTorch's ``{"type": "OneCycleLR", ...}``.
        steps: how many steps to fetch (optimizer iterations, not epochs).
        lr: the optimizer's lr the spec is applied to.
        dtype: the values' precision: ``"float32"`` or ``"float64"`` (exact; with the jax
            backend it needs ``jax_enable_x64``).
        url: the service's URL (default ``$LRSCHED_URL``); kept in the config.
        client: the client to fetch with (default ``Client(url)``); not serialized.
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        steps: int,
        lr: float = 0.001,
        dtype: Dtype = "float32",
        url: str | None = None,
        client: Client | None = None,
    ) -> None:
        self.spec = dict(spec)
        self.steps = steps
        self.lr = lr
        self.dtype = dtype
        self.url = url if url is not None or client is None else client.base_url
        values = fetch_table(self.spec, steps, lr, dtype, client, self.url)
        self._values = keras.ops.convert_to_tensor(values, dtype=dtype)

    def __call__(self, step: Any) -> Any:
        index = keras.ops.clip(keras.ops.cast(step, "int32"), 0, self.steps - 1)
        return keras.ops.take(self._values, index)

    def get_config(self) -> dict[str, Any]:
        """The spec and how to fetch it again (never the values nor an API key)."""
        return {
            "spec": self.spec,
            "steps": self.steps,
            "lr": self.lr,
            "dtype": self.dtype,
            "url": self.url,
        }


class RemotePlateau(keras.callbacks.Callback):  # type: ignore[misc]
    """``ReduceLROnPlateau`` decided by a service session, for ``model.fit`` on many workers.

    At the end of each epoch it reports ``logs[monitor]`` as this worker's (``rank``) metric
    for the session's next epoch, waits until every rank has reported it, then sets the
    decided lr on the model's optimizer. Reports are idempotent by ``(epoch, rank)``, so a
    worker restarted from a checkpoint gets the recorded decisions back. The session's
    current lr is set when training begins. The session has one lr (one param group).

    Args:
        session: the session (``Client.create_session`` or ``Client.session(id, token)``).
        monitor: the ``logs`` key reported (``"val_loss"`` as in Keras's
            ``ReduceLROnPlateau``).
        rank: this worker's rank (``0..world_size-1`` of the session).
        wait_timeout: seconds to wait for the other ranks before ``NotDecidedError``.
    """

    def __init__(
        self,
        session: Session,
        monitor: str = "val_loss",
        rank: int = 0,
        *,
        wait_timeout: float = WAIT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.session = session
        self.monitor = monitor
        self.rank = rank
        self.wait_timeout = wait_timeout
        self.epoch = 0
        """The next epoch to report (the session's)."""

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        state = self.session.state()
        if len(state.lr) != 1:
            raise ValueError(f"the session has {len(state.lr)} lrs; a Keras optimizer has one")
        self.epoch = state.epoch
        self._set_lr(state.lr[0])

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"RemotePlateau monitors {self.monitor!r}, which the logs lack "
                f"(available: {sorted(logs)}); every epoch must be reported"
            )
        value, epoch = float(logs[self.monitor]), self.epoch
        report = until_decided(
            lambda: self.session.report(epoch, value, self.rank),
            epoch,
            wait_timeout=self.wait_timeout,
            poll_interval=POLL_INTERVAL,
            max_poll=MAX_POLL,
        )
        self._set_lr(report.lr[0])
        self.epoch += 1

    def _set_lr(self, lr: float) -> None:
        self.model.optimizer.learning_rate = lr
