"""An LR range test held by its id and bearer token: report a step's loss, read the result."""

from __future__ import annotations

from lrsched_client import _calls
from lrsched_client._http import AsyncHttp, SyncHttp
from lrsched_client.models import FinderResult, FinderState, FinderStep

__all__ = ["AsyncLrFinder", "LrFinder"]


class LrFinder:
    """A server-side LR range test shared by every rank that holds ``id`` and ``token``.

    Get one from :meth:`Client.create_lr_finder`, or reattach with :meth:`Client.lr_finder`.
    """

    def __init__(self, http: SyncHttp, id: str, token: str) -> None:
        self._http = http
        self.id = id
        self.token = token

    def __repr__(self) -> str:
        return f"LrFinder(id={self.id!r})"

    def report(self, step: int, loss: float, rank: int = 0) -> FinderStep:
        """Report ``rank``'s training loss at ``step`` (safe to repeat: same answer).

        Raises:
            EpochConflictError: ``step`` skips ahead; ``expected_epoch`` is the next step.
        """
        call = _calls.finder_report_call(self.id, self.token, step, loss, rank)
        return FinderStep.from_json(self._http.send(call).json())

    def state(self) -> FinderState:
        """The next step to report and the lr to train it with."""
        call = _calls.get_call(self.id, self.token, root=_calls.LR_FINDER)
        return FinderState.from_json(self._http.send(call).json())

    def result(self) -> FinderResult:
        """The curve so far and every library's suggestion on it."""
        call = _calls.get_call(self.id, self.token, "/result", _calls.LR_FINDER)
        return FinderResult.from_json(self._http.send(call).json())

    def delete(self) -> None:
        """Remove the range test."""
        self._http.send(_calls.delete_call(self.id, self.token, _calls.LR_FINDER))


class AsyncLrFinder:
    """The ``async`` twin of :class:`LrFinder` (same methods, awaited).

    Get one from :meth:`AsyncClient.create_lr_finder`, or reattach with
    :meth:`AsyncClient.lr_finder`.
    """

    def __init__(self, http: AsyncHttp, id: str, token: str) -> None:
        self._http = http
        self.id = id
        self.token = token

    def __repr__(self) -> str:
        return f"AsyncLrFinder(id={self.id!r})"

    async def report(self, step: int, loss: float, rank: int = 0) -> FinderStep:
        """See :meth:`LrFinder.report`."""
        call = _calls.finder_report_call(self.id, self.token, step, loss, rank)
        return FinderStep.from_json((await self._http.send(call)).json())

    async def state(self) -> FinderState:
        """See :meth:`LrFinder.state`."""
        call = _calls.get_call(self.id, self.token, root=_calls.LR_FINDER)
        return FinderState.from_json((await self._http.send(call)).json())

    async def result(self) -> FinderResult:
        """See :meth:`LrFinder.result`."""
        call = _calls.get_call(self.id, self.token, "/result", _calls.LR_FINDER)
        return FinderResult.from_json((await self._http.send(call)).json())

    async def delete(self) -> None:
        """See :meth:`LrFinder.delete`."""
        await self._http.send(_calls.delete_call(self.id, self.token, _calls.LR_FINDER))
