"""Curve work against session calls, admission and cancellation, on a real
``python -m service`` (issue #12.3 and #12.4), scaled down through its settings."""

from __future__ import annotations

import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from tests.multiprocess.conftest import Service, Services

NPY = {"accept": "application/x-npy"}
HEAVY: dict[str, Any] = {
    "schedule": {
        "type": "LambdaLR",
        "lr_lambda": "lambda e: sin(e*1.1)*cos(e/3) + sin(e/7)*cos(e*0.3) + 2",
    },
    "lr": 0.1,
    "steps": 3_000_000,
}
"""About a second of one core per curve here."""
SLOW: dict[str, Any] = {
    "schedule": {
        "type": "ChainedScheduler",
        "schedulers": [
            {"type": "MultiplicativeLR", "lr_lambda": "lambda e: 0.99999 if e % 2 else 1.0"}
        ]
        * 4,
    },
    "lr": 0.1,
    "steps": 10_000_000,
}
"""Stepped block by block for several seconds (within the stepping and expression budgets)."""


def metric(service: Service, name: str) -> float:
    """A sample of ``/metrics`` (0 when absent)."""
    text = httpx.get(f"{service.url}/metrics", timeout=5).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wait_for(condition: Any, within: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.05)


def heavy_lr(step: int) -> float:
    """HEAVY's lr at ``step``, from its formula."""
    e = float(step)
    return 0.1 * (np.sin(e * 1.1) * np.cos(e / 3) + np.sin(e / 7) * np.cos(e * 0.3) + 2)


def test_session_reports_are_prompt_while_curve_work_is_saturated(services: Services) -> None:
    service = services.start(
        "memory", env={"LRSCHED_CURVE_THREADS": "1", "LRSCHED_CURVE_JOBS": "3"}
    )
    with httpx.Client(base_url=service.url, timeout=60) as client, ThreadPoolExecutor(3) as pool:
        body = {"schedule": {"type": "ReduceLROnPlateau", "patience": 0}, "lr": 0.1}
        created = client.post("/v1/sessions", json=body).json()
        auth = {"authorization": f"Bearer {created['token']}"}
        curves = [pool.submit(client.post, "/v1/schedules", json=HEAVY, headers=NPY) for _ in "abc"]
        wait_for(lambda: metric(service, "lrsched_curve_jobs") == 3, 30, "3 curves admitted")
        refused = client.post("/v1/schedules", json=HEAVY, headers=NPY)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "LRSCHED_CURVE_JOBS=3" in refused.json()["detail"]
        lrs, slowest = [], 0.0
        for epoch, value in enumerate([1.0, 2.0, 3.0]):
            started = time.monotonic()
            report = client.post(
                f"/v1/sessions/{created['id']}/reports",
                json={"epoch": epoch, "metric": value},
                headers=auth,
            )
            slowest = max(slowest, time.monotonic() - started)
            lrs.append(report.json()["lr"][0])
        assert metric(service, "lrsched_curve_jobs") >= 1  # still computing meanwhile
        answers = [curve.result() for curve in curves]
    assert slowest < 1.0
    assert lrs == [0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1]
    for answer in answers:
        assert answer.status_code == 200
        values = np.load(io.BytesIO(answer.content))
        assert values.shape == (1, 3_000_000)
        assert values[0, 2_999_999] == heavy_lr(2_999_999)


def test_a_curve_answered_504_stops_computing_and_frees_its_admission(
    services: Services,
) -> None:
    service = services.start(
        "memory", env={"LRSCHED_CURVE_THREADS": "1", "LRSCHED_REQUEST_TIMEOUT_SECONDS": "0.3"}
    )
    answer = httpx.post(f"{service.url}/v1/schedules", json=SLOW, headers=NPY, timeout=30)
    assert answer.status_code == 504
    wait_for(lambda: metric(service, "lrsched_curves_cancelled_total") == 1, 5, "cancelled")
    wait_for(lambda: metric(service, "lrsched_curve_jobs") == 0, 5, "admission given back")
    assert metric(service, "lrsched_curve_admitted_bytes") == 0


def test_a_curve_whose_client_went_away_stops_computing(services: Services) -> None:
    service = services.start("memory", env={"LRSCHED_CURVE_THREADS": "1"})
    try:
        httpx.post(f"{service.url}/v1/schedules", json=SLOW, headers=NPY, timeout=0.5)
        raise AssertionError("the slow curve was answered within 0.5 s")
    except httpx.ReadTimeout:
        pass  # the client closes its connection
    wait_for(lambda: metric(service, "lrsched_curves_cancelled_total") == 1, 5, "cancelled")
    wait_for(lambda: metric(service, "lrsched_curve_jobs") == 0, 5, "admission given back")
    small = {"schedule": {"type": "StepLR", "step_size": 2}, "lr": 1.0, "steps": 40_000}
    answer = httpx.post(f"{service.url}/v1/schedules", json=small, timeout=30)
    assert answer.json()["lr"][0][:5] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01], rel=1e-12)


def test_memory_is_handed_back_after_a_burst(services: Services) -> None:
    service = services.start(
        "memory", env={"LRSCHED_CURVE_THREADS": "2", "LRSCHED_TRIM_AFTER_IDLE_SECONDS": "0.2"}
    )
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.post(
                    f"{service.url}/v1/schedules", json=HEAVY, headers=NPY, timeout=60
                ),
                range(4),
            )
        )
    assert [answer.status_code for answer in answers] == [200] * 4
    wait_for(lambda: metric(service, "lrsched_memory_trims_total") >= 1, 5, "a trim")
