"""``Client`` and ``AsyncClient``: curves, plateau replays and plateau sessions over HTTP.

Both hold one pooled connection set (close them, or use them as context managers) and
send every call through the retry policy of :mod:`lrsched_client._http`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

import httpx

from lrsched_client import _calls
from lrsched_client._calls import Dtype, LearningRates, Series, SessionOptions, Spec
from lrsched_client._http import AsyncHttp, Retry, SyncHttp
from lrsched_client.finder import AsyncLrFinder, LrFinder
from lrsched_client.models import Replay
from lrsched_client.session import AsyncSession, Session

if TYPE_CHECKING:
    import numpy
    import numpy.typing as npt

__all__ = ["DEFAULT_URL", "AsyncClient", "Client"]

DEFAULT_URL = "http://127.0.0.1:8000"
"""Where ``python -m service`` listens by default; used when neither argument nor env say."""
_VERSION = "0.1.0"


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The base URL and default headers from the arguments, else ``LRSCHED_URL``/``_API_KEY``."""
    url = base_url or os.environ.get("LRSCHED_URL") or DEFAULT_URL
    key = api_key if api_key is not None else os.environ.get("LRSCHED_API_KEY") or None
    headers = {"User-Agent": f"lrsched-client/{_VERSION}", "Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    return url, headers


class Client:
    """A synchronous client of the lrsched service.

    Args:
        base_url: the service's root URL; default ``$LRSCHED_URL``, else
            ``http://127.0.0.1:8000``.
        api_key: sent as ``X-API-Key``; default ``$LRSCHED_API_KEY`` (none if unset).
        timeout: seconds allowed for connecting, and for each read or write.
        retries: how many times a failed call is retried (see :class:`Retry`), or a policy.
        transport: an ``httpx`` transport to send through (tests, proxies, mounts).

    Example::

        with Client() as client:
            lrs = client.curve({"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 1000},
                               lr=0.004, steps=1001)   # numpy array, shape (1, 1001)
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retries: int | Retry = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, headers = _settings(base_url, api_key)
        http = httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=transport)
        self._http = SyncHttp(http, Retry.of(retries))
        self.base_url = url

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections (sessions made by this client stop working)."""
        self._http.close()

    def curve(
        self,
        spec: Spec,
        lr: LearningRates,
        steps: int,
        start: int = 0,
        stride: int = 1,
        series: Series = "lr",
        dtype: Dtype = "float32",
    ) -> npt.NDArray[numpy.floating[Any]]:
        """The schedule's lr (or momentum) at steps ``range(start, steps, stride)``.

        The value at step k is ``optimizer.param_groups[g]["lr"]`` after the PyTorch
        scheduler ``spec`` was built and ``step()`` called k times. Transferred in binary:
        raw float32 (4 bytes a value) or, with ``dtype="float64"``, an exact ``.npy``.

        Args:
            spec: one scheduler spec, e.g. ``{"type": "StepLR", "step_size": 30}``.
            lr: the optimizer's lr: a number, or one per param group.
            steps: the length of the schedule (steps, not epochs).
            series: ``"momentum"`` for schedules that cycle it (CyclicLR, OneCycleLR).

        Returns:
            An array of shape ``(groups, len(range(start, steps, stride)))``.

        Raises:
            ImportError: numpy is not installed (use :meth:`curve_json`).
            ValidationError: the spec is invalid; ``errors`` name the field.
        """
        _calls.require_numpy()
        call = _calls.curve_call(spec, lr, steps, start, stride, series, dtype)
        return _calls.decode_curve(self._http.send(call), dtype)

    def curve_json(
        self, spec: Spec, lr: LearningRates, steps: int, start: int = 0, stride: int = 1
    ) -> dict[str, Any]:
        """The service's JSON curve: ``{"start", "stop", "stride", "groups", "lr",
        "momentum"}``, one row per param group (``momentum`` is None unless cycled).
        Needs no numpy; floats are exact (shortest round-trip decimals)."""
        response = self._http.send(_calls.curve_json_call(spec, lr, steps, start, stride))
        document: dict[str, Any] = response.json()
        return document

    def replay(self, plateau_spec: Spec, lr: LearningRates, metrics: Sequence[float]) -> Replay:
        """What ``ReduceLROnPlateau(**plateau_spec)`` does when stepped with ``metrics``.

        ``"type": "ReduceLROnPlateau"`` may be left out of ``plateau_spec``; metrics may be
        non-finite (PyTorch's behaviour is reproduced).
        """
        return Replay.from_json(
            self._http.send(_calls.replay_call(plateau_spec, lr, metrics)).json()
        )

    def create_session(
        self,
        schedule: Spec | None = None,
        lr: LearningRates | None = None,
        **options: Unpack[SessionOptions],
    ) -> Session:
        """Start a plateau session from options, or resume one from a PyTorch state_dict.

        Args:
            schedule: ReduceLROnPlateau options (``mode``, ``factor``, ``patience``, ...).
            lr: the optimizer's lr, one per param group (default: 0.001, or the state
                dict's ``_last_lr``).
            state_dict: ``ReduceLROnPlateau.state_dict()`` to continue from (instead of
                ``schedule``); the session then expects epoch ``last_epoch`` next.
            world_size: ranks that report every epoch; the epoch is decided when all did.
            reduce: how the ranks' metrics combine: ``"mean"``, ``"min"`` or ``"max"``.
            ttl_seconds: the session's lifetime after its last write (server default: 7 days).
            warmup_steps: epochs of linear warmup before the plateau rule applies.
            warmup_start_factor: the warmup's first lr as a fraction of ``lr``.
            early_stopping: early-stopping options (``semantics`` ``"keras"``, ``"hf"`` or
                ``"lightning"``, ``mode``, ``patience``, ``min_delta``, ...): every answer
                then says ``stop``; alone (no ``schedule``), the session only decides that.

        Creation is retried only when the request certainly was not processed (see
        :mod:`lrsched_client._http`): a blind retry could create a second session.
        """
        call = _calls.create_session_call(schedule, lr, **options)
        created = self._http.send(call).json()
        return Session(self._http, created["id"], created["token"])

    def session(self, id: str, token: str) -> Session:
        """Reattach to an existing session (no request is sent)."""
        return Session(self._http, id, token)

    def create_lr_finder(self, **options: Any) -> LrFinder:
        """Start an LR range test (``start_lr``, ``end_lr``, ``num_steps``, ``mode``,
        ``smooth``, ``smoothing``, ``diverge_threshold``, ``world_size``, ``reduce``)."""
        created = self._http.send(_calls.create_lr_finder_call(options)).json()
        return LrFinder(self._http, created["id"], created["token"])

    def lr_finder(self, id: str, token: str) -> LrFinder:
        """Reattach to an existing LR range test (no request is sent)."""
        return LrFinder(self._http, id, token)


class AsyncClient:
    """The ``async`` twin of :class:`Client` (same arguments, same methods, awaited)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retries: int | Retry = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, headers = _settings(base_url, api_key)
        http = httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )
        self._http = AsyncHttp(http, Retry.of(retries))
        self.base_url = url

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def curve(
        self,
        spec: Spec,
        lr: LearningRates,
        steps: int,
        start: int = 0,
        stride: int = 1,
        series: Series = "lr",
        dtype: Dtype = "float32",
    ) -> npt.NDArray[numpy.floating[Any]]:
        """See :meth:`Client.curve`."""
        _calls.require_numpy()
        call = _calls.curve_call(spec, lr, steps, start, stride, series, dtype)
        return _calls.decode_curve(await self._http.send(call), dtype)

    async def curve_json(
        self, spec: Spec, lr: LearningRates, steps: int, start: int = 0, stride: int = 1
    ) -> dict[str, Any]:
        """See :meth:`Client.curve_json`."""
        response = await self._http.send(_calls.curve_json_call(spec, lr, steps, start, stride))
        document: dict[str, Any] = response.json()
        return document

    async def replay(
        self, plateau_spec: Spec, lr: LearningRates, metrics: Sequence[float]
    ) -> Replay:
        """See :meth:`Client.replay`."""
        response = await self._http.send(_calls.replay_call(plateau_spec, lr, metrics))
        return Replay.from_json(response.json())

    async def create_session(
        self,
        schedule: Spec | None = None,
        lr: LearningRates | None = None,
        **options: Unpack[SessionOptions],
    ) -> AsyncSession:
        """See :meth:`Client.create_session`."""
        call = _calls.create_session_call(schedule, lr, **options)
        created = (await self._http.send(call)).json()
        return AsyncSession(self._http, created["id"], created["token"])

    def session(self, id: str, token: str) -> AsyncSession:
        """Reattach to an existing session (no request is sent)."""
        return AsyncSession(self._http, id, token)

    async def create_lr_finder(self, **options: Any) -> AsyncLrFinder:
        """See :meth:`Client.create_lr_finder`."""
        created = (await self._http.send(_calls.create_lr_finder_call(options))).json()
        return AsyncLrFinder(self._http, created["id"], created["token"])

    def lr_finder(self, id: str, token: str) -> AsyncLrFinder:
        """Reattach to an existing LR range test (no request is sent)."""
        return AsyncLrFinder(self._http, id, token)
