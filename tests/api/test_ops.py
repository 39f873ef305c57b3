"""/healthz and /readyz."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app


def test_healthz_answers_without_dependencies() -> None:
    client = TestClient(create_app(Settings(store="redis://127.0.0.1:1/0")))
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_ok_when_the_store_answers() -> None:
    with TestClient(create_app(Settings(store="memory"))) as client:
        assert client.get("/readyz").json() == {"status": "ok"}


def test_readyz_is_503_when_the_store_does_not_answer() -> None:
    client = TestClient(create_app(Settings(store="redis://127.0.0.1:1/0")))  # nothing listens
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}
