"""The ceiling part's server (bench.free_work_service) makes free exactly what it says."""

from __future__ import annotations

import numpy as np
import pytest

from bench import free_work_service
from schemas.requests import ScheduleRequest
from service import encoding
from service.api import curve_job
from service.config import Settings
from service.engine import StepRange

STEPS = StepRange(0, 100, 1)


def job(max_lr: float) -> curve_job.Job:
    request = ScheduleRequest.model_validate(
        {"schedule": {"type": "OneCycleLR", "max_lr": max_lr, "total_steps": 100}, "steps": 100}
    )
    return curve_job.Job(request, STEPS, encoding.JSON, "lr", Settings(store="memory"))


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever make_free replaces is put back after the test."""
    monkeypatch.setattr(curve_job, "plan", curve_job.plan)
    monkeypatch.setattr(curve_job, "compute", curve_job.compute)
    monkeypatch.setattr(curve_job.Job, "encoded", curve_job.Job.encoded)


def test_first_answer_answers_every_call_with_the_first_result() -> None:
    calls: list[int] = []
    answer = free_work_service.first_answer(lambda value: calls.append(value) or value)
    assert [answer(1), answer(2), answer(3)] == [1, 1, 1]
    assert calls == [1]


def test_a_free_engine_computes_once_and_still_encodes_every_request(restored: None) -> None:
    free_work_service.make_free("engine")
    first, second = job(0.1).curve(), job(0.5).curve()
    assert second is first  # the second request got the first one's curve
    assert job(0.5).encoded().body == job(0.1).encoded().body
    assert float(np.max(first.lr)) == pytest.approx(0.1)


def test_a_free_engine_and_encoding_answer_the_first_body(restored: None) -> None:
    free_work_service.make_free("engine+json")
    assert job(0.5).encoded() is job(0.1).encoded()


def test_an_unknown_part_is_refused(restored: None) -> None:
    with pytest.raises(SystemExit, match="expected engine or engine"):
        free_work_service.make_free("everything")
