"""Routes with a shortcut: the common, well-formed request answered without the machinery.

FastAPI solves every dependency and validates every body through generic per-request code
that costs more than the work of the hottest routes. A :class:`ShortcutRoute` first offers
the request to its :meth:`ShortcutRoute.shortcut`, which either answers it or returns
``None`` to hand it to the declared route unchanged, so every refusal keeps its canonical
form, and the route's OpenAPI stays what was declared.

The shortcut is not a second set of checks. The checks every request passes are one list:
the body gate (:func:`service.api.bodies.admit`: content type, size, structure) runs before
either path, and the route's own ``dependencies`` (the router's, such as the API key) run
on the shortcut too, each through its *direct form* (:data:`DIRECT_FORMS`), before the
shortcut is offered the request. A route with a dependency that has no direct form takes
the declared route for every request, so a dependency added to a router cannot be skipped.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import fastapi.routing
from fastapi import Request, Response, params
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute

from service.api.auth import api_key_gate, require_api_key
from service.api.bodies import GatedRoute, Handler
from service.limits import BODY_INLINE_BYTES

Gate = Callable[[Request], Awaitable[Any]]
"""A dependency's direct form: the request in, the dependency's value out (or a refusal)."""

Passed = Mapping[Callable[..., Any], Any]
"""What each of a route's dependencies returned, keyed by the dependency."""

DIRECT_FORMS: dict[Callable[..., Any], Gate] = {require_api_key: api_key_gate}
"""Router dependencies that need more than the request, with their direct forms. A
dependency whose only parameter is the request is its own direct form."""


def direct_form(dependency: Callable[..., Any] | None) -> Gate | None:
    """How the shortcut runs ``dependency``, or ``None`` if it cannot (FastAPI must)."""
    if dependency is None:
        return None
    if dependency in DIRECT_FORMS:
        return DIRECT_FORMS[dependency]
    if not inspect.iscoroutinefunction(dependency):
        return None
    try:
        parameters = list(inspect.signature(dependency, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError):
        return None
    if len(parameters) == 1 and parameters[0].annotation is Request:
        return dependency
    return None


class ShortcutRoute(GatedRoute):
    """A :class:`GatedRoute` whose admitted requests are first offered to :meth:`shortcut`,
    once the route's dependencies (in their direct forms) and its declared path and query
    parameters passed.

    Only bodies the gate checked on the event loop (at most ``BODY_INLINE_BYTES``) are
    offered: a larger one is already parsed, and the declared route validates that.
    """

    async def shortcut(self, request: Request, passed: Passed) -> Response | None:
        """The answer, or ``None`` for the declared route to answer."""
        return None

    def admitted(self, declared: Handler) -> Handler:
        gates = _gates(_effective_dependencies(self))
        if gates is None:
            return declared  # a dependency only FastAPI can run: no shortcut

        async def handler(request: Request) -> Response:
            if len(await request.body()) <= BODY_INLINE_BYTES and self._params_pass(request):
                passed = {dependency: await gate(request) for dependency, gate in gates}
                answer = await self.shortcut(request, passed)
                if answer is not None:
                    return answer
            return await declared(request)

        return handler

    def _params_pass(self, request: Request) -> bool:
        """Whether the path and query parameters pass the route's declared constraints (if
        not, the declared route answers with its canonical 422)."""
        dependant = self.dependant
        if not (dependant.path_params or dependant.query_params):
            return True
        _, path_errors = request_params_to_args(dependant.path_params, request.path_params)
        _, query_errors = request_params_to_args(dependant.query_params, request.query_params)
        return not (path_errors or query_errors)


def _gates(dependencies: list[params.Depends]) -> list[tuple[Callable[..., Any], Gate]] | None:
    """``dependencies`` with their direct forms; ``None`` if one has none."""
    gates = []
    for depends in dependencies:
        dependency = depends.dependency
        gate = direct_form(dependency)
        if dependency is None or gate is None:
            return None
        gates.append((dependency, gate))
    return gates


def _effective_dependencies(route: APIRoute) -> list[params.Depends]:
    """The route-level dependencies of the handler being built for ``route``.

    FastAPI (0.165 on) builds one handler per inclusion of a router, each with that
    inclusion's dependencies (those given to ``include_router``, the router's, the
    route's), and names the inclusion being built in a context variable, which
    ``APIRoute.get_route_handler`` reads the same way; a route added directly has its own.
    """
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = None if context_var is None else context_var.get()
    if context is not None and context.original_route is route:
        return list(context.dependencies)
    return list(route.dependencies)
