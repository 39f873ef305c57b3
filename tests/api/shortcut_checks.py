"""Helpers for the side-by-side tests of route shortcuts (see service.api.shortcuts)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


def spy_on_shortcut(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> list[bool]:
    """Record, per request, whether ``module.name`` (a shortcut) answered it: True when it
    returned an answer or raised one (a refusal of a well-formed request), False when it
    handed the request on to the declared route."""
    taken: list[bool] = []
    direct = getattr(module, name)

    async def spy(http: Any, *passed: Any) -> Any:
        try:
            answer = await direct(http, *passed)
        except Exception:
            taken.append(True)
            raise
        taken.append(answer is not None)
        return answer

    monkeypatch.setattr(module, name, spy)
    return taken


async def never(http: Any, *passed: Any) -> None:
    """A shortcut that hands every request on."""
    return None


def described(response: Any) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and the headers that describe the answer (not the per-request ones)."""
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    return response.status_code, response.content, headers
