"""Applications for the session tests: one per store kind, and one on the memory store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The application on a fresh store of each kind (Redis: the test server)."""
    store = {
        "memory": lambda: "memory",
        "sqlite": lambda: f"sqlite:///{tmp_path / 'sessions.db'}",
        "redis": lambda: request.getfixturevalue("redis_url"),
    }[request.param]()
    with TestClient(create_app(Settings(store=store))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def memory_client() -> Iterator[TestClient]:
    """The application on the memory store, shared by a module's tests."""
    with TestClient(create_app(Settings(store="memory"))) as test_client:
        yield test_client
