"""While its Redis is down, the service answers session calls with a retryable 503, not a 500.

A store outage is transient: clients (and load balancers) retry a 503 with ``Retry-After``,
while a 500 says the request itself broke the server. ``/readyz`` reports the outage too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.multiprocess.conftest import Services
from tests.redis_server import MISSING_REASON, REDIS_SERVER, start_redis_server

PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}


def test_session_calls_while_redis_is_down_are_retryable_503s(
    services: Services, tmp_path: Path
) -> None:
    """Stop the service's own redis-server; every session call is then a 503 with Retry-After."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    redis = start_redis_server(tmp_path / "redis")
    try:
        service = services.start(redis.url)
        with httpx.Client(timeout=10.0) as client:
            created = client.post(
                f"{service.url}/v1/sessions", json={"schedule": PLATEAU, "lr": 0.1}
            )
            assert created.status_code == 201, created.text
        session = created.json()
        headers = {"Authorization": f"Bearer {session['token']}"}
        base = f"{service.url}/v1/sessions"
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("POST", f"{base}/{session['id']}/reports", {"epoch": 0, "metric": 1.0}),
            ("GET", f"{base}/{session['id']}", None),
            ("GET", f"{base}/{session['id']}/history", None),
            ("GET", f"{base}/{session['id']}/state_dict", None),
            ("POST", base, {"schedule": PLATEAU, "lr": 0.1}),
        ]
        redis.stop()
        for method, url, body in calls:
            # A fresh connection per call: after a 500 uvicorn drops the connection.
            with httpx.Client(timeout=10.0) as client:
                response = client.request(method, url, json=body, headers=headers)
            assert response.status_code == 503, (method, url, response.status_code, response.text)
            assert "retry-after" in response.headers, (method, url, response.headers)
        with httpx.Client(timeout=10.0) as client:
            assert client.get(f"{service.url}/readyz").status_code == 503
            assert client.get(f"{service.url}/healthz").status_code == 200
        assert service.running, service.output()
    finally:
        redis.stop()
