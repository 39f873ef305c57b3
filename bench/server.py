"""Start ``python -m service`` (and ``redis-server``) as child processes on loopback.

Each :class:`Service` is a real server as deployed: uvicorn with N workers, JSON access
logs (discarded), the chosen session store. Its memory is read from ``/proc``: ``VmHWM``
(peak resident set) of the process that serves (with one worker, uvicorn serves in the
main process).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Service:
    """``python -m service --workers N`` on a free loopback port; a context manager.

    ``module`` runs another entry point with the same command line (the ceiling part's
    :mod:`bench.free_work_service`)."""

    def __init__(
        self, workers: int = 1, store: str = "memory", module: str = "service", **settings: str
    ) -> None:
        self.workers = workers
        self.module = module
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        env = dict(os.environ)
        env.update(
            {
                "LRSCHED_STORE": store,
                "LRSCHED_HOST": HOST,
                "LRSCHED_PORT": str(self.port),
                "LRSCHED_LIMIT_CONCURRENCY": "2048",
                "PYTHONPATH": str(REPO),
            }
        )
        env.update({f"LRSCHED_{name.upper()}": value for name, value in settings.items()})
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None
        # The server's stderr (its JSON access and error logs, as deployed): a file, so a
        # failing part can show why.
        self.log = tempfile.NamedTemporaryFile(prefix="lrsched-bench-", suffix=".log")

    def __enter__(self) -> Service:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--workers", str(self.workers)],
            cwd=REPO,
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}")
            if self._answers():
                if self.workers > 1:
                    time.sleep(1.0)  # let every worker finish starting
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the service did not answer /healthz within 60 s")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
        if error is not None:
            print(f"# server log (last lines):\n{self.log_tail()}", file=sys.stderr)
        self.log.close()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def serving_pid(self) -> int:
        """The process that answers requests (the main one with a single worker)."""
        assert self.process is not None
        return self.process.pid

    def peak_rss_bytes(self) -> int:
        """``VmHWM`` of the serving process: its peak resident set size so far."""
        return _status_kib(self.serving_pid(), "VmHWM") * 1024

    def rss_bytes(self) -> int:
        """``VmRSS`` of the serving process now."""
        return _status_kib(self.serving_pid(), "VmRSS") * 1024

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server wrote to stderr."""
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the server (uvicorn stops its workers) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


@contextmanager
def redis_url() -> Iterator[str]:
    """A throwaway ``redis-server`` (tests/redis_server.py's helper), as a URL."""
    from tests.redis_server import start_redis_server

    with tempfile.TemporaryDirectory(prefix="lrsched-bench-redis-") as directory:
        server = start_redis_server(Path(directory))
        try:
            yield server.url
        finally:
            server.stop()
