"""Against a real ``python -m service`` on loopback: the event loop stays responsive while the
largest bodies the limits allow (and the hostile ones past them) are read, refused or
computed, and a client that goes away mid-body is a disconnect, not a server error."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.server import HOST, Service
from service.limits import BODY_MAX_ITEMS

STEP_LR = {"type": "StepLR", "step_size": 2}
PLATEAU = {"type": "ReduceLROnPlateau"}


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with Service() as running:
        yield running


def _million_keys() -> bytes:
    keys = ",".join(f'"k{i}":1' for i in range(1_000_000))
    return (
        '{"schedule":{"type":"StepLR","step_size":2},"lr":0.1,"steps":10,' + keys + "}"
    ).encode()


BODIES: dict[str, tuple[str, Callable[[], bytes], int]] = {
    "issue-11MB-of-keys": ("/v1/schedules", _million_keys, 413),
    "1e6-groups": (
        "/v1/schedules",
        lambda: json.dumps({"schedule": STEP_LR, "lr": [0.1] * 10**6, "steps": 10}).encode(),
        413,
    ),
    "1e5-groups": (
        "/v1/schedules",
        lambda: json.dumps({"schedule": STEP_LR, "lr": [0.1] * 10**5, "steps": 10}).encode(),
        422,
    ),
    "1e6-milestones": (
        "/v1/schedules",
        lambda: json.dumps(
            {"schedule": {"type": "MultiStepLR", "milestones": [1] * 10**6}, "steps": 10}
        ).encode(),
        413,
    ),
    "1e6-brackets": ("/v1/schedules", lambda: b"[" * 10**6 + b"]" * 10**6, 422),
    "most-metrics-allowed": (
        "/v1/plateau/replay",
        lambda: json.dumps({"schedule": PLATEAU, "metrics": [0.5] * BODY_MAX_ITEMS}).encode(),
        200,
    ),
}


def _poll(url: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(timeout=10.0) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(f"{url}/healthz").raise_for_status()
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)


def _healthz_latencies(service: Service, work: Callable[[], None]) -> list[float]:
    """/healthz latencies, polled every 10 ms on a connection of its own while ``work`` runs."""
    stop, latencies = threading.Event(), []
    poller = threading.Thread(target=_poll, args=(service.url, stop, latencies))
    poller.start()
    try:
        time.sleep(0.2)
        work()
        time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
    return latencies


@pytest.mark.parametrize("name", sorted(BODIES))
def test_healthz_answers_within_100_ms_while_a_body_is_refused_or_computed(
    service: Service, name: str
) -> None:
    """Issue #12 item 1: an 11 MB body of keys froze the process for two minutes; a million
    groups or milestones for seconds. Compared with /healthz on an idle server, no answer
    may take 100 ms longer."""
    url, make, status = BODIES[name]
    body = make()
    idle = _healthz_latencies(service, lambda: time.sleep(0.5))
    answers: list[httpx.Response] = []

    def send() -> None:
        headers = {"Content-Type": "application/json"}
        answers.append(httpx.post(service.url + url, content=body, headers=headers, timeout=60))

    busy = _healthz_latencies(service, send)
    [answer] = answers
    assert answer.status_code == status, answer.text[:300]
    assert len(answer.content) < max(2000, len(body) // 10) or status == 200
    assert len(busy) >= 5
    assert max(busy) < max(idle) + 0.1, (name, sorted(busy)[-5:], max(idle))


def _counted(service: Service, status: int) -> float:
    text = httpx.get(f"{service.url}/metrics").text
    labels = rf'[^}}]*route="/v1/schedules"[^}}]*status="{status}"[^}}]*'
    pattern = rf"lrsched_http_requests_total\{{{labels}\}} (\S+)"
    return sum(float(value) for value in re.findall(pattern, text))


def test_a_client_that_disconnects_mid_body_is_counted_as_499_not_500(service: Service) -> None:
    """Issue #12 item 7: half a body, then the connection closes."""
    before = _counted(service, 499)
    head = (
        "POST /v1/schedules HTTP/1.1\r\n"
        f"Host: {HOST}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection((HOST, service.port)) as sock:
        sock.sendall(head.encode() + b'{"schedule": {"type": "StepLR", "step_size": 2}')
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while _counted(service, 499) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _counted(service, 499) == before + 1
    assert _counted(service, 500) == 0
    log = Path(service.log.name).read_text(errors="replace")
    assert "Traceback" not in log and '"level":"error"' not in log
    lines = [line for line in log.splitlines() if '"status":499' in line]
    assert lines and all('"level":"info"' in line for line in lines)


def test_a_declared_body_over_the_limit_is_a_json_413_before_it_is_sent(service: Service) -> None:
    """A Content-Length past LRSCHED_MAX_BODY_BYTES (16 MiB here) is refused at once, as the
    API's JSON error with the headers of every other answer (it was text/plain)."""
    head = (
        "POST /v1/schedules HTTP/1.1\r\n"
        f"Host: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {17 << 20}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection((HOST, service.port)) as sock:
        sock.settimeout(5)
        sock.sendall(head.encode() + b'{"schedule": {"type": "StepLR", "step_size": 2}')
        answer = b""
        while not answer.endswith(b'{"detail":"Content Too Large"}'):
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    status, _, headers = answer.partition(b"\r\n\r\n")[0].partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413 ")
    lines = headers.lower().split(b"\r\n")
    assert b"content-type: application/json" in lines
    assert b"x-content-type-options: nosniff" in lines
    assert any(line.startswith(b"x-request-id: ") for line in lines)
