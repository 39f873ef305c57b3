"""Start ``python -m service`` as real child processes, and stop them.

Every process listens on 127.0.0.1 only, on a free port. A service runs in its own process
group, so a stop reaches uvicorn's worker processes too (``--workers N``); only processes
started here are ever signalled, by their own process group id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
"""The repository root: the working directory of every child process."""

START_TIMEOUT = 60.0
"""Seconds a service may take to answer ``/readyz`` (imports are slow on a loaded CI box)."""

STOP_TIMEOUT = 15.0
"""Seconds a SIGTERM-ed service may take to exit before it is SIGKILL-ed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServiceError(RuntimeError):
    """A service process did not start, or exited when it should not have."""


class Service:
    """One ``python -m service`` child process (restartable on the same port and store).

    Args:
        store: the ``LRSCHED_STORE`` URL.
        port: the port to listen on (127.0.0.1).
        workers: uvicorn worker processes (``--workers``).
        logs: directory for the processes' output (one file per start).
        env: extra environment variables (``LRSCHED_*`` of the parent are dropped).
    """

    def __init__(
        self,
        store: str,
        port: int,
        workers: int,
        logs: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.port = port
        self.workers = workers
        self.logs = logs
        self.extra_env = dict(env or {})
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def _environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LRSCHED_")}
        env.update(
            LRSCHED_HOST="127.0.0.1",
            LRSCHED_PORT=str(self.port),
            LRSCHED_STORE=self.store,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until it serves ``/readyz`` with 200.

        Ready means: the process is alive, its own log says uvicorn bound the port (so the
        answer is not from a neighbour that won the race for the port), and ``/readyz`` is 200.
        """
        if self.running:
            raise ServiceError(f"{self.url} is already running")
        self.starts += 1
        self.log = self.logs / f"service-{self.port}-{self.starts}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "--workers", str(self.workers)],
                cwd=REPO,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: workers are stopped with it
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServiceError(f"{self.url} exited at start:\n{self.output()}")
                if "Uvicorn running on" in self.output():
                    try:
                        if client.get(f"{self.url}/readyz").status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                time.sleep(0.05)
        self.stop(kill=True)
        raise ServiceError(f"{self.url} did not become ready in {timeout} s:\n{self.output()}")

    def stop(self, *, kill: bool = False) -> int | None:
        """Stop the process: SIGTERM (SIGKILL after ``STOP_TIMEOUT``), or SIGKILL right away.

        The signal goes to the process group, i.e. the uvicorn supervisor and its workers.
        Returns the exit status (None if the process was not started).
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        return process.returncode

    def kill(self) -> None:
        """SIGKILL the process group (the supervisor and every worker) and reap the process."""
        self.stop(kill=True)

    def restart(self) -> None:
        """Start again on the same port and store (after ``stop``/``kill``)."""
        self.start()

    def output(self) -> str:
        """What the current (or last) process has written so far."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(encoding="utf-8", errors="replace")


class Services:
    """Starts services for one test and stops every one of them at its end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Service] = []

    def start(
        self,
        store: str,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        attempts: int = 3,
    ) -> Service:
        """A running service on a fresh free port (retried on another port if one is taken)."""
        failures: list[str] = []
        for _ in range(attempts):
            service = Service(store, free_port(), workers, self.logs, env)
            self.started.append(service)
            try:
                service.start()
            except ServiceError as error:
                failures.append(str(error))
                if "address already in use" not in str(error).lower():
                    break
                continue
            return service
        raise ServiceError("\n".join(failures))

    def stop_all(self) -> None:
        """Stop every service started (SIGTERM, then SIGKILL if it hangs)."""
        for service in self.started:
            service.stop()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Start ``python -m service`` processes; all are stopped when the test ends."""
    logs = tmp_path / "logs"
    logs.mkdir()
    started = Services(logs)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for the service: an SQLite file under ``tmp_path``, or a real Redis.

    The Redis is the suite's ``redis_url`` fixture (``tests/conftest.py``: a real
    ``redis-server`` on a free loopback port, flushed for each test; skipped only when the
    binary is absent).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url
