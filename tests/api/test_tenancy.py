"""API keys as tenants: sessions are scoped to the key that created them, with quotas."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.api.sessions as session_routes
from service.config import Settings
from service.main import create_app
from service.sessions import access
from service.store_holder import StoreHolder
from tests.api.shortcut_checks import never

URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
KEY_A, KEY_B = "key-a-7f3c9d", "key-b-41e0aa"
PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}


def _client(**settings: Any) -> TestClient:
    options: dict[str, Any] = {"store": "memory", "api_keys": f"{KEY_A},{KEY_B}", **settings}
    return TestClient(create_app(Settings(**options)))


def _create(client: TestClient, key: str | None = KEY_A, **body: Any) -> Any:
    headers = {} if key is None else {"X-API-Key": key}
    return client.post(
        "/v1/sessions", json={"schedule": PLATEAU, "lr": 0.1, **body}, headers=headers
    )


def _auth(key: str | None, token: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["X-API-Key"] = key
    return headers


def _stored_owner(client: TestClient, session_id: str) -> str:
    holder: StoreHolder = client.app.state.store  # type: ignore[attr-defined]
    record = holder.get().get(session_id)
    assert record is not None
    return record.owner


def _declared_route_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the report route hand every request to the declared route."""
    monkeypatch.setattr(session_routes, "_report_directly", never)


# Every session route, as (method, path suffix, body): each must hide a session from other keys.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("GET", "/history", None),
    ("GET", "/state_dict", None),
    ("POST", "/reports", {"epoch": 0, "metric": 0.5}),
    ("DELETE", "", None),
]


@pytest.mark.parametrize("shortcut", [True, False], ids=["shortcut", "declared"])
@pytest.mark.parametrize(("method", "suffix", "body"), ROUTES)
def test_another_key_gets_404_with_the_right_token_and_changes_nothing(
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    shortcut: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _client()
    if not shortcut:
        _declared_route_only(monkeypatch)
    created = _create(client).json()
    url = f"/v1/sessions/{created['id']}{suffix}"
    for token in (created["token"], "not-the-token"):
        answer = client.request(method, url, json=body, headers=_auth(KEY_B, token))
        assert (answer.status_code, answer.json()) == (404, {"detail": "session not found"})
    own = client.get(f"/v1/sessions/{created['id']}", headers=_auth(KEY_A, created["token"]))
    assert own.status_code == 200
    assert (own.json()["epoch"], own.json()["pending_ranks"]) == (0, [])
    mine = client.request(method, url, json=body, headers=_auth(KEY_A, created["token"]))
    assert mine.status_code == (204 if method == "DELETE" else 200)


def test_the_owner_is_stored_as_a_fingerprint_never_as_the_key() -> None:
    client = _client()
    created = _create(client, KEY_B).json()
    owner = _stored_owner(client, created["id"])
    expected = hashlib.sha256(b"lrsched api key\x00" + KEY_B.encode()).hexdigest()
    assert owner == expected
    assert KEY_B not in owner


def test_with_keys_off_sessions_have_no_owner_and_stay_usable() -> None:
    client = TestClient(create_app(Settings(store="memory")))
    created = _create(client, key=None).json()
    assert _stored_owner(client, created["id"]) == ""
    url = f"/v1/sessions/{created['id']}"
    answer = client.post(
        f"{url}/reports", json={"epoch": 0, "metric": 1.0}, headers=_auth(None, created["token"])
    )
    assert (answer.status_code, answer.json()["lr"]) == (200, [0.1])
    assert client.delete(url, headers=_auth(None, created["token"])).status_code == 204


def test_a_session_created_with_keys_off_is_hidden_once_keys_are_on(tmp_path: Any) -> None:
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    with TestClient(create_app(Settings(store=store))) as before:
        created = _create(before, key=None).json()
    with TestClient(create_app(Settings(store=store, api_keys=KEY_A))) as after:
        answer = after.get(f"/v1/sessions/{created['id']}", headers=_auth(KEY_A, created["token"]))
        assert answer.status_code == 404
    with TestClient(create_app(Settings(store=store))) as off_again:
        answer = off_again.get(
            f"/v1/sessions/{created['id']}", headers=_auth(None, created["token"])
        )
        assert (answer.status_code, answer.json()["id"]) == (200, created["id"])


# -- quotas ----------------------------------------------------------------------------------


def test_live_sessions_past_the_keys_quota_are_429_naming_the_setting() -> None:
    client = _client(max_sessions_per_key=2)
    first = _create(client).json()
    assert _create(client).status_code == 201
    refused = _create(client)
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert (detail["limit"], detail["setting"], detail["max"]) == (
        "max_sessions_per_key",
        "LRSCHED_MAX_SESSIONS_PER_KEY",
        2,
    )
    assert "LRSCHED_MAX_SESSIONS_PER_KEY" in detail["msg"]
    assert _create(client, KEY_B).status_code == 201  # another key has its own quota
    client.delete(f"/v1/sessions/{first['id']}", headers=_auth(KEY_A, first["token"]))
    assert _create(client).status_code == 201
    assert _create(client).status_code == 429


def test_expired_sessions_leave_the_quota() -> None:
    client = _client(max_sessions_per_key=1)
    assert _create(client, ttl_seconds=1).status_code == 201
    assert _create(client).status_code == 429
    time.sleep(1.1)
    assert _create(client).status_code == 201


@pytest.mark.parametrize(
    ("field", "setting", "limit"),
    [("world_size", "max_world_size", 4), ("ttl_seconds", "max_ttl_seconds", 3600)],
)
@pytest.mark.parametrize("source", ["schedule", "state_dict"])
def test_world_size_and_ttl_past_their_maximum_are_422_naming_the_field(
    field: str, setting: str, limit: int, source: str
) -> None:
    client = _client(**{setting: limit})
    body: dict[str, Any] = {"schedule": PLATEAU, "lr": 0.1}
    if source == "state_dict":
        body = {"state_dict": _STATE_DICT, "lr": [0.1]}
    at = client.post("/v1/sessions", json={**body, field: limit}, headers={"X-API-Key": KEY_A})
    assert at.status_code == 201
    past = client.post(
        "/v1/sessions", json={**body, field: limit + 1}, headers={"X-API-Key": KEY_A}
    )
    assert past.status_code == 422
    [error] = past.json()["detail"]
    assert error["loc"] == ["body", field]
    assert f"{field}={limit + 1}" in error["msg"]
    assert f"at most {limit} (LRSCHED_{setting.upper()})" in error["msg"]


_STATE_DICT = {
    "factor": 0.5,
    "min_lrs": [0.0],
    "patience": 1,
    "cooldown": 0,
    "eps": 1e-8,
    "last_epoch": 3,
    "mode": "min",
    "threshold": 1e-4,
    "threshold_mode": "rel",
    "best": "inf",
    "cooldown_counter": 0,
    "num_bad_epochs": 0,
}


def test_default_quotas_are_sane() -> None:
    settings = Settings()
    assert (settings.max_sessions_per_key, settings.max_world_size, settings.max_ttl_seconds) == (
        1000,
        1024,
        30 * 86400,
    )
    assert settings.max_ttl_seconds >= 604800  # the default ttl_seconds is allowed


def test_ids_and_tokens_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command line reads ``--token -x...`` as a missing value: a draw that starts with a
    dash is drawn again (the CLI's session commands take both as arguments)."""
    draws = iter(["-first", "-second", "third-", "-fourth", "fifth"])
    monkeypatch.setattr(access.secrets, "token_urlsafe", lambda size: next(draws))
    created = _create(_client())
    assert created.status_code == 201, created.text
    assert (created.json()["token"], created.json()["id"]) == ("third-", "fifth")


def test_unguessable_text_keeps_its_length_and_alphabet() -> None:
    for size, length in ((16, 22), (32, 43)):
        texts = {access.unguessable(size) for _ in range(500)}
        assert len(texts) == 500
        assert all(len(text) == length and not text.startswith("-") for text in texts)
        assert all(set(text) <= set(URL_SAFE) for text in texts)
