"""Session security and expiry through a real service process, on SQLite and on Redis.

Ids are unguessable (at least 128 random bits, URL-safe), every call needs the session's own
bearer token (401 without one, 403 or 404 with another), the token is never shown again, and
a session whose ``ttl_seconds`` ran out since its last write is gone (404) with its history.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.multiprocess.conftest import Service, Services

PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("GET", "/history", None),
    ("GET", "/state_dict", None),
    ("POST", "/reports", {"epoch": 0, "metric": 1.0, "rank": 0}),
    ("DELETE", "", None),
]
"""Every call on an existing session: method, path after ``/v1/sessions/{id}``, body."""


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One service process per store for the module: an SQLite file, or the suite's Redis."""
    directory = tmp_path_factory.mktemp(f"auth-{request.param}")
    if request.param == "sqlite":
        store = f"sqlite:///{directory / 'sessions.db'}"
    else:
        store = request.getfixturevalue("redis_server").url
    logs = directory / "logs"
    logs.mkdir()
    started = Services(logs)
    try:
        yield started.start(store)
    finally:
        started.stop_all()


def create(client: httpx.Client, service: Service, **body: Any) -> dict[str, Any]:
    """``POST /v1/sessions`` with ``body`` added; asserts 201."""
    response = client.post(f"{service.url}/v1/sessions", json={"schedule": PLATEAU} | body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def call(
    client: httpx.Client,
    service: Service,
    session_id: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One call on ``/v1/sessions/{session_id}{path}``."""
    return client.request(
        method, f"{service.url}/v1/sessions/{session_id}{path}", json=body, headers=headers
    )


def random_bits(value: str) -> int:
    """How many bits a URL-safe base64 string holds (an upper bound on its entropy)."""
    return 8 * len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def test_ids_and_tokens_are_long_random_url_safe_strings(service: Service) -> None:
    """Ids and tokens: URL-safe, >= 128 bits, all distinct, and the token is never echoed."""
    with httpx.Client(timeout=10.0) as client:
        created = [create(client, service) for _ in range(20)]
        for session in created:
            for secret in (session["id"], session["token"]):
                assert URL_SAFE.fullmatch(secret), secret
                assert random_bits(secret) >= 128, secret
            for method, path, _ in CALLS[:3]:
                response = call(
                    client, service, session["id"], method, path, None, bearer(session["token"])
                )
                assert response.status_code == 200, response.text
                assert session["token"] not in response.text
        ids = {session["id"] for session in created}
        tokens = {session["token"] for session in created}
        assert len(ids) == len(tokens) == len(created)
        assert not ids & tokens
        # 20 random ids share no common prefix beyond chance (no counter, no timestamp prefix)
        assert len({session_id[:4] for session_id in ids}) >= 18


def test_every_call_needs_the_sessions_own_bearer_token(service: Service) -> None:
    """401 without a token (or with another scheme), 403/404 with a wrong or another's token."""
    with httpx.Client(timeout=10.0) as client:
        mine, other = create(client, service), create(client, service)
        for method, path, body in CALLS:
            missing = call(client, service, mine["id"], method, path, body)
            assert missing.status_code == 401, (method, path, missing.text)
            basic = call(
                client, service, mine["id"], method, path, body, {"Authorization": "Basic eDp5"}
            )
            assert basic.status_code == 401, (method, path, basic.text)
            for token in ("wrong", other["token"], mine["token"] + "x"):
                wrong = call(client, service, mine["id"], method, path, body, bearer(token))
                assert wrong.status_code in (403, 404), (method, path, wrong.text)
            unknown = call(client, service, "no-such-session", method, path, body, bearer("x"))
            assert unknown.status_code == 404, (method, path, unknown.text)
        # nothing above changed the session
        view = call(client, service, mine["id"], "GET", "", None, bearer(mine["token"]))
        assert view.status_code == 200 and view.json()["epoch"] == 0
        assert view.json()["pending_ranks"] == []


def test_a_session_is_gone_once_its_ttl_has_passed(service: Service) -> None:
    """``ttl_seconds=1``: there at once, 404 on every call (history too) after 1.5 s."""
    with httpx.Client(timeout=10.0) as client:
        session = create(client, service, ttl_seconds=1)
        created_at = time.time()
        headers = bearer(session["token"])
        assert call(client, service, session["id"], "GET", "", None, headers).status_code == 200
        time.sleep(max(0.0, created_at + 1.5 - time.time()))
        for method, path, body in CALLS:
            gone = call(client, service, session["id"], method, path, body, headers)
            assert gone.status_code == 404, (method, path, gone.text)


def test_a_write_refreshes_the_ttl_and_a_read_does_not(service: Service) -> None:
    """``ttl_seconds=2``: a report at ~1 s keeps the session past 2 s; it is gone 2 s later."""
    with httpx.Client(timeout=10.0) as client:
        session = create(client, service, ttl_seconds=2, world_size=2)
        headers = bearer(session["token"])
        time.sleep(1.0)
        sent = time.time()
        report = {"epoch": 0, "metric": 0.5, "rank": 1}
        answer = call(client, service, session["id"], "POST", "/reports", report, headers)
        assert answer.status_code == 200 and answer.json()["waiting_for"] == [0]
        answered = time.time()
        time.sleep(max(0.0, sent + 1.5 - time.time()))
        view = call(client, service, session["id"], "GET", "", None, headers)
        if time.time() < sent + 2.0:  # surely before the refreshed expiry (a slow box skips it)
            assert view.status_code == 200, "a report did not refresh the ttl"
            assert view.json()["pending_ranks"] == [1]
        time.sleep(max(0.0, answered + 2.5 - time.time()))
        for method, path, body in CALLS:
            gone = call(client, service, session["id"], method, path, body, headers)
            assert gone.status_code == 404, (method, path, gone.text)
