"""A throwaway ``redis-server`` on a free loopback port, for tests that need a real Redis.

Used by the ``redis_server`` / ``redis_url`` fixtures in ``tests/conftest.py``. No persistence
(``--save ''``, ``--appendonly no``): the server's data lives and dies with the test run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")
"""The ``redis-server`` binary, or None when it is not installed."""

MISSING_REASON = "redis-server not installed; .ci/run installs it"


class RedisServer:
    """A running ``redis-server`` child process; ``stop()`` terminates it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        """Terminate the server and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_redis_server(directory: Path, *, attempts: int = 5, timeout: float = 10.0) -> RedisServer:
    """Start ``redis-server`` in ``directory`` on a free port and wait until it answers.

    A free port is found by binding port 0 and releasing it, so another process may take it
    before the server does; the server then exits and another port is tried.
    """
    if REDIS_SERVER is None:
        raise FileNotFoundError(MISSING_REASON)
    directory.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for attempt in range(attempts):
        port = _free_port()
        log = directory / f"redis-{port}.log"
        with log.open("wb") as out:
            options = {
                "--port": str(port),
                "--bind": "127.0.0.1",
                "--save": "",
                "--appendonly": "no",
                "--daemonize": "no",
                "--dir": str(directory),
            }
            process = subprocess.Popen(
                [REDIS_SERVER, *(part for option in options.items() for part in option)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
        server = RedisServer(process, port, log)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if _is_serving(port, process.pid):
                return server
            time.sleep(0.02)
        server.stop()
        failures.append(f"attempt {attempt + 1}, port {port}: {log.read_text(errors='replace')}")
    raise RuntimeError("redis-server did not start:\n" + "\n".join(failures))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _is_serving(port: int, pid: int) -> bool:
    """Whether the server on ``port`` answers and is process ``pid`` (not a neighbour's server
    that won the race for the same port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"INFO server\r\n")
            reply = b""
            while b"\r\nprocess_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                reply += chunk
    except OSError:
        return False
    return f"\r\nprocess_id:{pid}\r\n".encode() in reply
