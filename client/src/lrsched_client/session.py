"""A plateau session held by its id and bearer token: report, read, export, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from lrsched_client import _calls
from lrsched_client._http import AsyncHttp, SyncHttp
from lrsched_client.models import HistoryRow, Report, SessionState, from_wire

__all__ = ["AsyncSession", "Session"]


def _torch_state_dict(exported: dict[str, Any]) -> dict[str, Any]:
    return {key: from_wire(value) for key, value in exported.items()}


class Session:
    """A server-side ReduceLROnPlateau, shared by every rank that holds ``id`` and ``token``.

    Get one from :meth:`Client.create_session`, or reattach with :meth:`Client.session`.
    ``token`` is a secret: pass it to other ranks (e.g. with
    ``torch.distributed.broadcast_object_list``), do not log it.
    """

    def __init__(self, http: SyncHttp, id: str, token: str) -> None:
        self._http = http
        self.id = id
        self.token = token

    def __repr__(self) -> str:
        return f"Session(id={self.id!r})"

    def report(self, epoch: int, metric: float, rank: int = 0) -> Report:
        """Report ``rank``'s ``metric`` for ``epoch`` (counted from 0; send them in order).

        Safe to repeat: a repeated report changes nothing and gets the same answer.
        The answer's ``decided`` is false until every rank reported ``epoch``.

        Raises:
            EpochConflictError: ``epoch`` skips ahead; ``expected_epoch`` is the next one.
        """
        call = _calls.report_call(self.id, self.token, epoch, metric, rank)
        return Report.from_json(self._http.send(call).json())

    def state(self) -> SessionState:
        """The current lr, next epoch, plateau counters, pending ranks and options."""
        return SessionState.from_json(self._http.send(_calls.get_call(self.id, self.token)).json())

    def history(self, start: int = 0, page_size: int = 1000) -> Iterator[HistoryRow]:
        """Every decided epoch from ``start`` on, in order (pages are fetched as needed)."""
        next_start: int | None = start
        while next_start is not None:
            call = _calls.get_call(
                self.id, self.token, "/history", start=next_start, limit=page_size
            )
            page = self._http.send(call).json()
            for row in page["rows"]:
                yield HistoryRow.from_json(row)
            next_start = page["next_start"]

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's ``ReduceLROnPlateau.state_dict()`` after the same steps.

        Non-finite values (``best``, ``mode_worse``) are floats again, so the dict loads
        with ``torch.optim.lr_scheduler.ReduceLROnPlateau.load_state_dict`` as is.
        """
        call = _calls.get_call(self.id, self.token, "/state_dict")
        return _torch_state_dict(self._http.send(call).json())

    def delete(self) -> None:
        """Delete the session and its history (also fine if a lost answer already did)."""
        self._http.send(_calls.delete_call(self.id, self.token))


class AsyncSession:
    """The ``async`` twin of :class:`Session`."""

    def __init__(self, http: AsyncHttp, id: str, token: str) -> None:
        self._http = http
        self.id = id
        self.token = token

    def __repr__(self) -> str:
        return f"AsyncSession(id={self.id!r})"

    async def report(self, epoch: int, metric: float, rank: int = 0) -> Report:
        """See :meth:`Session.report`."""
        call = _calls.report_call(self.id, self.token, epoch, metric, rank)
        return Report.from_json((await self._http.send(call)).json())

    async def state(self) -> SessionState:
        """See :meth:`Session.state`."""
        response = await self._http.send(_calls.get_call(self.id, self.token))
        return SessionState.from_json(response.json())

    async def history(self, start: int = 0, page_size: int = 1000) -> AsyncIterator[HistoryRow]:
        """See :meth:`Session.history` (an async iterator)."""
        next_start: int | None = start
        while next_start is not None:
            call = _calls.get_call(
                self.id, self.token, "/history", start=next_start, limit=page_size
            )
            page = (await self._http.send(call)).json()
            for row in page["rows"]:
                yield HistoryRow.from_json(row)
            next_start = page["next_start"]

    async def state_dict(self) -> dict[str, Any]:
        """See :meth:`Session.state_dict`."""
        call = _calls.get_call(self.id, self.token, "/state_dict")
        return _torch_state_dict((await self._http.send(call)).json())

    async def delete(self) -> None:
        """See :meth:`Session.delete`."""
        await self._http.send(_calls.delete_call(self.id, self.token))
