"""/metrics aggregates every uvicorn worker (Prometheus multiprocess mode)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.multiprocess.conftest import Services


def _requests_counted(text: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("lrsched_http_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels.get("route") == "/v1/schedules" and labels.get("status") == "200":
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_from_any_worker_count_requests_served_by_all_workers(
    services: Services, tmp_path: Path
) -> None:
    service = services.start(f"sqlite:///{tmp_path / 'sessions.db'}", workers=2)
    body = {"schedule": {"type": "StepLR", "step_size": 3}, "lr": 0.1, "steps": 10}
    sent = 40
    for _ in range(sent):
        # A new connection per request, so the kernel spreads them over both workers.
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.post("/v1/schedules", json=body).status_code == 200
    for _ in range(5):  # whichever worker answers the scrape sees every worker's samples
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert _requests_counted(client.get("/metrics").text) == sent
