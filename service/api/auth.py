"""Optional API keys on ``/v1``: ``X-API-Key`` must be one of ``LRSCHED_API_KEYS``.

The key a request was allowed with is its *owner*: sessions are scoped to it. Owners are
stored as fingerprints (:func:`key_fingerprint`), never as keys.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.config import Settings

_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Required on /v1 when the service is started with LRSCHED_API_KEYS.",
)


_metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsKey",
    description="LRSCHED_METRICS_KEY, required on /metrics when it is set (or as X-API-Key).",
)

NO_KEY = ""
"""The owner of requests (and sessions) when API keys are off."""


@lru_cache(maxsize=256)
def key_fingerprint(key: str) -> str:
    """The stored identity of an API key: hex SHA-256 of a domain-separated encoding.

    Not reversible, and the same in every process and replica (no per-process secret), so a
    session created through one replica belongs to the same key through any other. Cached:
    only configured keys are ever fingerprinted.
    """
    return hashlib.sha256(b"lrsched api key\x00" + key.encode()).hexdigest()


async def require_api_key(
    request: Request, key: Annotated[str | None, Security(_api_key_header)]
) -> str:
    """401 unless API keys are off or ``X-API-Key`` is one of them (constant-time compare);
    the request's owner: the key's fingerprint, or :data:`NO_KEY` when keys are off.

    ``async`` (it does no I/O) so every ``/v1`` request is spared a thread-pool hop, and
    the settings are read directly rather than through a sub-dependency: this runs on every
    ``/v1`` request, and each level of dependency costs more than the check itself.
    """
    settings: Settings = request.app.state.settings
    keys = settings.api_key_list
    if not keys:
        return NO_KEY
    offered = (key or "").encode()
    # Compare with every key (no early exit) so timing does not tell which key is close.
    matched: str | None = None
    for candidate in keys:
        if hmac.compare_digest(offered, candidate.encode()):
            matched = candidate
    if matched is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API key: send X-API-Key",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    return key_fingerprint(matched)


async def api_key_gate(request: Request) -> str:
    """:func:`require_api_key` of the request alone (its direct form, for route shortcuts)."""
    return await require_api_key(request, await _api_key_header(request))


Owner = Annotated[str, Depends(require_api_key)]
"""The fingerprint of the request's API key (:data:`NO_KEY` with keys off)."""


async def require_metrics_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_metrics_bearer)],
    key: Annotated[str | None, Security(_api_key_header)],
) -> None:
    """401 unless ``LRSCHED_METRICS_KEY`` is unset or sent as a bearer token or ``X-API-Key``.

    Both headers are compared (constant time) whatever either holds.
    """
    settings: Settings = request.app.state.settings
    expected = settings.metrics_key.get_secret_value().encode()
    if not expected:
        return
    by_bearer = hmac.compare_digest((bearer.credentials if bearer else "").encode(), expected)
    by_header = hmac.compare_digest((key or "").encode(), expected)
    if not (by_bearer | by_header):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid metrics key: send Authorization: Bearer <LRSCHED_METRICS_KEY> "
            "or X-API-Key",
            headers={"WWW-Authenticate": "Bearer"},
        )
