"""Routes with a shortcut: the common, well-formed request answered without the machinery.

FastAPI solves every dependency and validates every body through generic per-request code
that costs more than the work of the hottest routes. A :class:`ShortcutRoute` first offers
the request to its :meth:`ShortcutRoute.shortcut`, which either answers it (making the same
checks directly) or returns ``None`` to hand it to the declared route unchanged, so every
refusal keeps its canonical form, and the route's OpenAPI stays what was declared.
"""

from __future__ import annotations

from fastapi import Request, Response

from service.api.bodies import GatedRoute, Handler
from service.limits import BODY_INLINE_BYTES


class ShortcutRoute(GatedRoute):
    """A :class:`GatedRoute` whose admitted requests are first offered to :meth:`shortcut`.

    Only bodies the gate checked on the event loop (at most ``BODY_INLINE_BYTES``) are
    offered: a larger one is already parsed, and the declared route validates that.
    """

    async def shortcut(self, request: Request) -> Response | None:
        """The answer, or ``None`` for the declared route to answer."""
        return None

    async def respond(self, request: Request, declared: Handler) -> Response:
        if len(await request.body()) <= BODY_INLINE_BYTES:
            answer = await self.shortcut(request)
            if answer is not None:
                return answer
        return await declared(request)
