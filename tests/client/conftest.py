"""Fixtures for the client's tests: a real service process, clients, a flaky proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lrsched_client import Client, Retry

from tests.client.proxy import FlakyProxy
from tests.client.server import ServerProcess

FAST_RETRY = Retry(attempts=4, backoff=0.01, max_backoff=0.05)
"""Retries that keep the suite fast: up to 3 retries, at most 50 ms apart."""


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``python -m service`` with the memory store on a free port, for the whole run."""
    server = ServerProcess("memory", tmp_path_factory.mktemp("service") / "service.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def url(service: ServerProcess) -> str:
    """The base URL of the running service."""
    return service.url


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    """A client of the running service (closed after the test)."""
    with Client(url, retries=FAST_RETRY) as test_client:
        yield test_client


@pytest.fixture
def proxy(service: ServerProcess) -> Iterator[FlakyProxy]:
    """A proxy in front of the service that fails the requests a test plans."""
    with FlakyProxy(service.port) as flaky:
        yield flaky


@pytest.fixture
def flaky_client(proxy: FlakyProxy) -> Iterator[Client]:
    """A client that talks to the service through ``proxy``."""
    with Client(proxy.url, retries=FAST_RETRY) as test_client:
        yield test_client
