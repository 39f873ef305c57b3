"""Optional API keys on ``/v1``: ``X-API-Key`` must be one of ``LRSCHED_API_KEYS``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from service.config import Settings

_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Required on /v1 when the service is started with LRSCHED_API_KEYS.",
)


async def require_api_key(
    request: Request, key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """401 unless API keys are off or ``X-API-Key`` is one of them (constant-time compare).

    ``async`` (it does no I/O) so every ``/v1`` request is spared a thread-pool hop, and
    the settings are read directly rather than through a sub-dependency: this runs on every
    ``/v1`` request, and each level of dependency costs more than the check itself.
    """
    settings: Settings = request.app.state.settings
    keys = settings.api_key_list
    if not keys:
        return
    offered = (key or "").encode()
    # Compare with every key (no early exit) so timing does not tell which key is close.
    matched = False
    for candidate in keys:
        matched |= hmac.compare_digest(offered, candidate.encode())
    if not matched:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API key: send X-API-Key",
            headers={"WWW-Authenticate": "ApiKey"},
        )
