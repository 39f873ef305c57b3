"""Routes with a shortcut: the common, well-formed request answered without the machinery.

FastAPI solves every dependency and validates every body through generic per-request code
that costs more than the work of the hottest routes. A :class:`ShortcutRoute` first offers
the request to its :meth:`ShortcutRoute.shortcut`, which either answers it (making the same
checks directly) or returns ``None`` to hand it to the declared route unchanged, so every
refusal keeps its canonical form, and the route's OpenAPI stays what was declared.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class ShortcutRoute(APIRoute):
    """An :class:`APIRoute` whose requests are first offered to :meth:`shortcut`."""

    async def shortcut(self, request: Request) -> Response | None:
        """The answer, or ``None`` for the declared route to answer."""
        return None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()

        async def handler(request: Request) -> Response:
            answer = await self.shortcut(request)
            return answer if answer is not None else await declared(request)

        return handler
